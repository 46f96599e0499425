//! Termination signals for the include server and pump: SIGTERM, SIGINT and
//! SIGHUP set a flag that the event loop (or pump's wait) polls, so that the
//! client root and socket are cleaned up instead of left behind.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Set when a termination signal arrived.
pub static STOP: AtomicBool = AtomicBool::new(false);
/// The last termination signal received (0 = none).
pub static LAST: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    LAST.store(sig, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handler for SIGTERM, SIGINT and SIGHUP.
pub fn install() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: `on_signal` is an `extern "C"` function that only performs
        // atomic stores, which is async-signal-safe; `signal` has no other
        // preconditions.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Sends SIGTERM to `pid`; false if it does not exist.
pub fn terminate(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with a positive pid only signals that process; it has
    // no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the parenthesised command name.
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z'))
}
