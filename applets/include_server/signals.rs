//! Termination signals for the include server and pump: SIGTERM, SIGINT and
//! SIGHUP end the include server cleanly (client root and socket removed)
//! instead of leaving them behind.
//!
//! Nothing polls for them: the handler writes one byte to a pipe that the
//! foreground include server blocks on ([`wait_for_stop`]), and while `pump`
//! runs a command the handler passes the same signal on to it
//! ([`forward_to`]); pump then shuts the server down when the command ends.
//! The same signal: after a Ctrl-C, make dies of SIGINT as it would without
//! pump, and pump exits 130, as stock's script does (not 143, or make's 2
//! for a build stopped by a SIGTERM while it handled the SIGINT).
//! A build that takes an hour therefore costs no wake-ups while it runs.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Set when a termination signal arrived and was not forwarded.
pub static STOP: AtomicBool = AtomicBool::new(false);
/// The last termination signal received (0 = none).
pub static LAST: AtomicI32 = AtomicI32::new(0);
/// The command a signal is passed on to (0 = none).
static FORWARD: AtomicI32 = AtomicI32::new(0);
/// The write end of the stop pipe (-1 = none yet).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The read end of the stop pipe (-1 = none yet).
static PIPE_READ: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomics, kill(2) and write(2): all async-signal-safe.
    LAST.store(sig, Ordering::SeqCst);
    let child = FORWARD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill(2) on a positive pid signals that one process.
        unsafe { libc::kill(child, sig) };
        return;
    }
    STOP.store(true, Ordering::SeqCst);
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: writes one byte from a live local to a descriptor this
        // module owns for the life of the process; a full pipe just fails.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// Creates the stop pipe and installs the handler for SIGTERM, SIGINT and
/// SIGHUP.
pub fn install() {
    if PIPE_WRITE.load(Ordering::SeqCst) < 0 {
        let mut fds = [-1; 2];
        // SAFETY: pipe2 fills the two-element array it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } == 0 {
            PIPE_READ.store(fds[0], Ordering::SeqCst);
            PIPE_WRITE.store(fds[1], Ordering::SeqCst);
        }
    }
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: `on_signal` is an `extern "C"` function that only does
        // async-signal-safe work; `signal` has no other preconditions.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Blocks until a termination signal has arrived (after [`install`]).
pub fn wait_for_stop() {
    let fd = PIPE_READ.load(Ordering::SeqCst);
    // Bounded by the signal; the poll timeout only guards a pipe that could
    // not be created, where the flag is all there is.
    while !STOP.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a negative fd is ignored by poll(2).
        unsafe { libc::poll(&mut pfd, 1, if fd >= 0 { -1 } else { 100 }) };
    }
}

/// Passes later termination signals on to `pid` (0: stop doing so). A
/// signal that arrived before the command existed is passed on now.
pub fn forward_to(pid: i32) {
    FORWARD.store(pid.max(0), Ordering::SeqCst);
    if pid > 0 && STOP.swap(false, Ordering::SeqCst) {
        let sig = match LAST.load(Ordering::SeqCst) {
            0 => libc::SIGTERM,
            s => s,
        };
        // SAFETY: kill(2) on a positive pid signals that one process.
        unsafe { libc::kill(pid, sig) };
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
