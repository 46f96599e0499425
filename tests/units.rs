//! The systemd units in scripts/ pass `systemd-analyze verify` (with the
//! installed binary path pointed at the binary under test), and their
//! ExecStart lines use options distccd knows.

use crate::util::{TestDir, bin, repo, run, show};
use std::path::Path;
use std::process::Command;

const UNITS: &[&str] = &["distccd.service", "distccd.socket", "distccd@.service"];

#[test]
fn units_verify() {
    let t = TestDir::new("units");
    for unit in UNITS {
        let text = std::fs::read_to_string(repo().join("scripts").join(unit)).unwrap();
        assert!(text.contains("[Install]") || unit.contains('@'), "{unit}");
        let exec = text.lines().find(|l| l.starts_with("ExecStart="));
        if let Some(exec) = exec {
            assert!(
                exec.starts_with("ExecStart=/usr/local/bin/distcc distccd "),
                "{exec}"
            );
            for opt in ["--log-stderr", "$DISTCCD_ALLOW"] {
                assert!(exec.contains(opt), "{unit}: {exec}");
            }
        }
        let local = text.replace("/usr/local/bin/distcc", &bin().display().to_string());
        t.write(unit, local);
    }
    let tool = Path::new("/usr/bin/systemd-analyze");
    if !tool.exists() {
        eprintln!("systemd-analyze is not installed: only the unit text was checked");
        return;
    }
    let out = run(Command::new(tool)
        .arg("verify")
        .args(UNITS.iter().map(|u| t.join(u)))
        .env("SYSTEMD_LOG_LEVEL", "warning"));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        out.stderr.is_empty() && out.stdout.is_empty(),
        "{}",
        show(&out)
    );
}
