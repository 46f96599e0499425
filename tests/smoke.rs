//! The binary starts under every applet name and never panics on an
//! applet that is not there yet.

use crate::util::*;

#[test]
fn every_applet_name_runs_without_panic() {
    for name in distcc::applet::LINK_NAMES {
        let out = run(ours(name).arg("--version"));
        let code = out.status.code();
        assert!(code.is_some(), "{name} died by a signal: {}", show(&out));
        assert_ne!(code, Some(101 + 100), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{name} panicked: {err}");
    }
}

#[test]
fn distccd_answers_version_like_stock() {
    for cmd in [ours("distccd"), {
        let mut c = ours("distcc");
        c.arg("distccd");
        c
    }] {
        let mut cmd = cmd;
        let out = run(cmd.arg("--version"));
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("distccd 3.4 "), "{text}");
        assert!(
            text.contains("(protocols 1, 2 and 3) (default port 3632)"),
            "{text}"
        );
    }
}
