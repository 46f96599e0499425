//! The outcome of one system call on a non-blocking descriptor, classified
//! once: bytes moved, end of stream, or nothing to do now. Interrupted
//! calls are repeated (a bounded number of times). Used by the source
//! hand-over (`source_feed`, `spliced`), where the same classification was
//! otherwise written out around every `splice`, `recv` and `write`.

/// What a call on a non-blocking descriptor did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It moved this many bytes (never 0).
    Moved(usize),
    /// It returned 0: end of stream (or nothing to move).
    End,
    /// The descriptor is not ready (EAGAIN).
    WouldBlock,
}

/// Runs `call` (a raw system call returning a byte count or -1 with errno)
/// and classifies its result; other errors are returned as they are.
pub fn call(mut call: impl FnMut() -> isize) -> std::io::Result<Outcome> {
    // Bounded: only an interrupted call is repeated.
    for _ in 0..100 {
        let n = call();
        if n > 0 {
            return Ok(Outcome::Moved(n as usize));
        }
        if n == 0 {
            return Ok(Outcome::End);
        }
        let err = std::io::Error::last_os_error();
        match err.kind() {
            std::io::ErrorKind::Interrupted => continue,
            std::io::ErrorKind::WouldBlock => return Ok(Outcome::WouldBlock),
            _ => return Err(err),
        }
    }
    Ok(Outcome::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn classifies_pipe_results() {
        let (r, w) = super::super::source_feed::pipe().unwrap();
        // SAFETY: non-blocking read end of our own pipe.
        unsafe {
            let fl = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(r.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        let mut buf = [0u8; 8];
        let read = |buf: &mut [u8]| unsafe {
            libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
        };
        assert_eq!(call(|| read(&mut buf)).unwrap(), Outcome::WouldBlock);
        let write = |d: &[u8]| unsafe { libc::write(w.as_raw_fd(), d.as_ptr().cast(), d.len()) };
        assert_eq!(call(|| write(b"abc")).unwrap(), Outcome::Moved(3));
        assert_eq!(call(|| read(&mut buf)).unwrap(), Outcome::Moved(3));
        drop(w);
        assert_eq!(call(|| read(&mut buf)).unwrap(), Outcome::End);
        assert!(call(|| unsafe { libc::read(-1, buf.as_mut_ptr().cast(), 1) }).is_err());
    }
}
