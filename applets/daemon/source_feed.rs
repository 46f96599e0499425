//! How the preprocessed source reaches the compiler's standard input.
//!
//! Through a pipe, with `vmsplice`: our pages are lent to the pipe, not
//! copied (the caller keeps the buffer unchanged until the compiler and its
//! group are gone). The pipe is enlarged to hold the whole source when the
//! system lets us (an unprivileged process may go up to
//! /proc/sys/fs/pipe-max-size, 1 MiB by default) and filled before the
//! compiler starts, so its write end is closed at once and no write of ours
//! ever meets a read of the compiler's.
//!
//! A bigger source is written as the compiler reads, and there care is
//! needed: the reader holds the pipe's mutex while it copies, and a write
//! arriving meanwhile spins on that mutex (on an idle machine this was a
//! quarter of the daemon's CPU on multi-megabyte C++ sources: level-
//! triggered POLLOUT fires as soon as the reader has freed one slot). So
//! the rest is written only on the wake-up the reader sends after it has
//! released the mutex (edge-triggered EPOLLOUT, see `process`), and a short
//! write is never followed by another try that would only meet the lock.
//! A memfd handed over complete was tried too: it wins on an idle machine
//! but loses a third under load (the copy and the page churn of varying
//! sizes), where the reader is mostly preempted and the spin rare.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What the compiler's stdin is, and what is left for us to write to it.
pub enum SourceFeed {
    /// No source on stdin: /dev/null.
    Null,
    /// The read end for the compiler. `rest`: the write end and the offset
    /// from which the source still has to go in (only when the pipe could
    /// not take it all before the spawn).
    Pipe {
        read: OwnedFd,
        rest: Option<(OwnedFd, usize)>,
    },
}

impl SourceFeed {
    /// Prepares the compiler's stdin for `data` (None: /dev/null).
    pub fn prepare(data: Option<&[u8]>) -> std::io::Result<SourceFeed> {
        let Some(data) = data.filter(|d| !d.is_empty()) else {
            return Ok(SourceFeed::Null);
        };
        let (read, write) = pipe()?;
        enlarge_for(&write, data);
        filled(read, write, data)
    }

    /// A default-sized pipe holding what it takes of `data`, the rest left
    /// to write as the reader goes (what a big source takes).
    #[cfg(test)]
    pub fn small_pipe(data: &[u8]) -> std::io::Result<SourceFeed> {
        let (read, write) = pipe()?;
        filled(read, write, data)
    }

    /// The compiler's stdin, and what is still to be written into it.
    pub fn into_parts(self) -> (std::process::Stdio, Option<(OwnedFd, usize)>) {
        match self {
            SourceFeed::Null => (std::process::Stdio::null(), None),
            SourceFeed::Pipe { read, rest } => (read.into(), rest),
        }
    }
}

/// The pipe with as much of `data` lent to it as it takes now, and the
/// rest, if any, left for `process` to write as the compiler reads.
fn filled(read: OwnedFd, write: OwnedFd, data: &[u8]) -> std::io::Result<SourceFeed> {
    let written = fill(&write, data)?;
    let rest = (written < data.len()).then_some((write, written));
    Ok(SourceFeed::Pipe { read, rest })
}

/// A pipe, both ends close-on-exec (the child's stdin is dup2'd anyway);
/// our write end is non-blocking, the compiler's read end is not.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just returned to us.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on our own descriptor.
    unsafe {
        let fl = libc::fcntl(write.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(write.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    Ok((read, write))
}

/// Pages the pipe needs for `data`: vmsplice takes one slot per page the
/// buffer touches.
fn pages_spanned(data: &[u8]) -> usize {
    const PAGE: usize = 4096;
    let start = data.as_ptr() as usize % PAGE;
    (start + data.len()).div_ceil(PAGE)
}

/// The most an unprivileged process may enlarge a pipe to.
const UNPRIVILEGED_PIPE_MAX: libc::c_int = 1024 * 1024;

/// Enlarges the pipe to hold `data` whole if the system lets us, else as
/// far as an unprivileged process may (best effort either way).
fn enlarge_for(write: &OwnedFd, data: &[u8]) {
    let need = pages_spanned(data) * 4096;
    if need <= 16 * 4096 {
        return;
    }
    let want = libc::c_int::try_from(need).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl on our own pipe; the kernel rounds up to a power of 2.
    unsafe {
        if libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, want) < 0 {
            libc::fcntl(
                write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                want.min(UNPRIVILEGED_PIPE_MAX),
            );
        }
    }
}

/// Lends as much of `data` as the pipe takes now; the bytes moved. A
/// short write means the pipe is full: asking again would only lock the
/// pipe while the reader holds it (and spin), so it stops there.
pub fn fill(write: &OwnedFd, data: &[u8]) -> std::io::Result<usize> {
    // Bounded: only an interrupted call is repeated.
    for _ in 0..100 {
        return match lend(write.as_raw_fd(), data) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
    Ok(0)
}

/// Moves bytes of `data` into the non-blocking pipe `fd`: `vmsplice`
/// (no copy; the caller keeps `data` unchanged until the reader is gone),
/// or `write` where the kernel cannot splice.
fn lend(fd: i32, data: &[u8]) -> std::io::Result<usize> {
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: vmsplice reads the iovec, which describes memory the caller
    // keeps alive and unchanged until the compiler has exited.
    let n = unsafe { libc::vmsplice(fd, &iov, 1, libc::SPLICE_F_NONBLOCK) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let err = std::io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
        return Err(err);
    }
    // SAFETY: write from a slice we own.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_all(fd: OwnedFd) -> Vec<u8> {
        let mut f = std::fs::File::from(fd);
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    }

    /// Everything the compiler would read from `feed`, given `data`.
    fn compiler_reads(feed: SourceFeed, data: &[u8]) -> Vec<u8> {
        match feed {
            SourceFeed::Null => Vec::new(),
            SourceFeed::Pipe { read, rest } => {
                let writer = rest.map(|(w, at)| {
                    let tail = data[at..].to_vec();
                    std::thread::spawn(move || {
                        let mut f = std::fs::File::from(w);
                        // Blocking for the test's simplicity.
                        unsafe {
                            let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
                        }
                        std::io::Write::write_all(&mut f, &tail).unwrap();
                    })
                });
                let got = read_all(read);
                if let Some(w) = writer {
                    w.join().unwrap();
                }
                got
            }
        }
    }

    #[test]
    fn small_source_is_in_the_pipe_before_the_reader_exists() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let feed = SourceFeed::prepare(Some(&data)).unwrap();
        assert!(matches!(feed, SourceFeed::Pipe { rest: None, .. }));
        assert_eq!(compiler_reads(feed, &data), data);
    }

    #[test]
    fn big_source_reaches_the_compiler_whole() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
        let feed = SourceFeed::prepare(Some(&big)).unwrap();
        assert_eq!(compiler_reads(feed, &big), big);
    }

    #[test]
    fn no_source_is_null() {
        assert!(matches!(SourceFeed::prepare(None), Ok(SourceFeed::Null)));
        assert!(matches!(
            SourceFeed::prepare(Some(&[])),
            Ok(SourceFeed::Null)
        ));
    }
}
