//! Waiting for a reply to be complete before reading it.
//!
//! distccd and the include server write a whole reply at once and then
//! close the connection. A client woken by the reply's first bytes went
//! straight into `recv`, which takes the socket's lock while the server, on
//! another CPU, still holds it to queue the rest of the reply or to close:
//! the client spun (on a VM its vCPU halts until it is kicked, which costs
//! up to hundreds of microseconds). Measured in pump mode on libgit2 units:
//! about an eighth of the client's own CPU. So once a reply has begun, the
//! client waits in `poll` (which takes no socket lock) a few milliseconds
//! at most for the close, and then reads the whole reply with nobody to
//! contend with. A server that keeps the connection open costs that short
//! wait once per reply, nothing more.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

/// Longest wait for the close once a reply has begun to arrive.
const SETTLE: Duration = Duration::from_millis(3);
/// Most interrupted polls tolerated in one wait.
const MAX_INTERRUPTS: usize = 10_000;

/// Waits up to `timeout` for a reply to begin on `fd`, then up to
/// [`SETTLE`] for the peer to close. Ok(false): nothing came in time.
pub fn await_reply(fd: BorrowedFd<'_>, timeout: Duration) -> std::io::Result<bool> {
    let hung_up = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR;
    let began = poll_until(fd, libc::POLLIN | libc::POLLRDHUP, Instant::now() + timeout)?;
    if began == 0 {
        return Ok(false);
    }
    if began & hung_up == 0 {
        // Readable, still open: the rest of the reply and the close are
        // on their way. Whatever happens (even an error) the read follows.
        let _ = poll_until(fd, libc::POLLRDHUP, Instant::now() + SETTLE);
    }
    Ok(true)
}

/// Polls `fd` for `events` until `deadline`; returns the events seen, 0
/// when the deadline passed first.
fn poll_until(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Instant,
) -> std::io::Result<libc::c_short> {
    for _ in 0..MAX_INTERRUPTS {
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up, so that a wait never ends before the deadline.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd for a descriptor the caller holds open.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        match r {
            0 => return Ok(0),
            1.. => return Ok(p.revents),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Err(std::io::Error::other("poll interrupted too often"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn nothing_within_the_timeout_is_false() {
        let (a, _b) = UnixStream::pair().unwrap();
        let t = Instant::now();
        assert!(!await_reply(a.as_fd(), Duration::from_millis(50)).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_reply_then_close_is_taken_at_once() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(b"reply").unwrap();
        drop(b);
        let t = Instant::now();
        assert!(await_reply(a.as_fd(), Duration::from_secs(5)).unwrap());
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_peer_that_stays_open_costs_only_the_short_wait() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            b.write_all(b"reply").unwrap();
            // Open well past the settling wait.
            std::thread::sleep(Duration::from_millis(500));
        });
        let t = Instant::now();
        assert!(await_reply(a.as_fd(), Duration::from_secs(5)).unwrap());
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(waited < Duration::from_millis(300), "{waited:?}");
        writer.join().unwrap();
    }
}
