//! The systemd units in scripts/ pass `systemd-analyze verify` (with the
//! installed binary path pointed at the binary under test), and their
//! ExecStart command lines really serve: the service's as a listening daemon,
//! the socket-activated one on an accepted connection given as stdin/stdout,
//! as systemd does with Accept=yes.

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

/// The ExecStart of `unit` as argv, with the unit's default environment
/// substituted and the binary under test in place of the installed one.
fn exec_start(unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("scripts").join(unit)).unwrap();
    let mut env = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(assign) = line.strip_prefix("Environment=") {
            let assign = assign.trim_matches('"');
            if let Some((k, v)) = assign.split_once('=') {
                env.insert(format!("${k}"), v.to_string());
            }
        }
    }
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut argv = Vec::new();
    for word in exec.split_whitespace() {
        match env.get(word) {
            Some(v) => argv.extend(v.split_whitespace().map(String::from)),
            None if word == "/usr/local/bin/distcc" => argv.push(bin().display().to_string()),
            None => argv.push(word.to_string()),
        }
    }
    argv
}

fn open_tmp(t: &TestDir) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let tmp = t.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    tmp
}

#[test]
fn service_command_line_serves_a_compile() {
    let t = TestDir::new("unit-service");
    let port = crate::util::free_port();
    let mut argv = exec_start("distccd.service");
    let at = argv.iter().position(|a| a == "3632").expect("--port 3632");
    argv[at] = port.to_string();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .args(["--listen", "127.0.0.1"])
        .env("TMPDIR", open_tmp(&t))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _daemon = crate::util::Guard::spawn(cmd, "service distccd");
    assert!(crate::util::wait_for_port(
        "127.0.0.1",
        port,
        std::time::Duration::from_secs(10)
    ));
    let out = run(crate::util::ours("lsdistcc").args([
        &format!("-r{port}"),
        "-pgcc",
        "-P2",
        "-k30000",
        "-x",
        "127.0.0.1",
    ]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("127.0.0.1:{port},lzo"),
        "{}",
        show(&out)
    );
}

#[test]
fn socket_activated_command_line_serves_one_connection() {
    // What systemd does for distccd.socket (Accept=yes): accept, then start
    // distccd@.service with the connection as stdin and stdout.
    let t = TestDir::new("unit-socket");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut probe = crate::util::ours("lsdistcc");
    probe
        .args([
            &format!("-r{port}"),
            "-pgcc",
            "-P1",
            "-c5000",
            "-k30000",
            "-x",
            "127.0.0.1",
        ])
        .stdout(std::process::Stdio::piped());
    let probe = probe.spawn().unwrap();
    let (conn, _) = listener.accept().unwrap();
    let fd = std::os::fd::OwnedFd::from(conn);
    let argv = exec_start("distccd@.service");
    assert!(argv.contains(&"--inetd".to_string()));
    let out_fd = fd.try_clone().unwrap();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env("TMPDIR", open_tmp(&t))
        .stdin(fd)
        .stdout(out_fd)
        .stderr(std::process::Stdio::null());
    let mut job = crate::util::Guard::spawn(cmd, "inetd distccd");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while job.alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = probe.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("127.0.0.1:{port}")
    );
}
