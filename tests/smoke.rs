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
