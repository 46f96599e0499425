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
//! A plain source received into pipes (`spliced`) needs no lending: its
//! first pipe is the compiler's stdin, and the buffers of the others are
//! moved into it (splice, no copy) on the same wake-ups.
//! A memfd handed over complete was tried too: it wins on an idle machine
//! but loses a third under load (the copy and the page churn of varying
//! sizes), where the reader is mostly preempted and the spin rare.

use super::nonblocking::{self, Outcome};
use super::spliced::SplicedSource;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What the compiler's stdin is, and what is left for us to put into it.
pub struct SourceFeed<'a> {
    /// The read end for the compiler (None: /dev/null).
    read: Option<OwnedFd>,
    /// What still has to go in once the compiler reads.
    pending: Option<Pending<'a>>,
}

/// The write end of the compiler's stdin pipe and what still has to go
/// through it, in order.
pub struct Pending<'a> {
    write: OwnedFd,
    parts: VecDeque<Part<'a>>,
}

/// A piece of the source not yet in the compiler's pipe.
pub enum Part<'a> {
    /// Bytes of a buffer the caller keeps unchanged until the compiler's
    /// group is gone (lent with vmsplice).
    Lent(&'a [u8]),
    /// A pipe holding this many bytes (moved with splice, no copy).
    Pipe(OwnedFd, usize),
    /// Bytes we own, from this offset (copied in with write).
    Owned(Vec<u8>, usize),
}

impl<'a> SourceFeed<'a> {
    /// Prepares the compiler's stdin for `data` (None: /dev/null).
    pub fn prepare(data: Option<&'a [u8]>) -> std::io::Result<SourceFeed<'a>> {
        let Some(data) = data.filter(|d| !d.is_empty()) else {
            return Ok(SourceFeed {
                read: None,
                pending: None,
            });
        };
        let (read, write) = pipe()?;
        enlarge_for(&write, data);
        filled(read, write, data)
    }

    /// The compiler's stdin for a source received into pipes
    /// ([`SplicedSource`]): the first pipe is its stdin, the others and any
    /// bytes that had to be received into memory follow.
    pub fn spliced(source: SplicedSource) -> SourceFeed<'a> {
        let (read, write, rest) = source.into_parts();
        let pending = write.map(|write| Pending {
            write,
            parts: rest.into(),
        });
        SourceFeed {
            read: Some(read),
            pending,
        }
    }

    /// A default-sized pipe holding what it takes of `data`, the rest left
    /// to write as the reader goes (what a big source takes).
    #[cfg(test)]
    pub fn small_pipe(data: &'a [u8]) -> std::io::Result<SourceFeed<'a>> {
        let (read, write) = pipe()?;
        filled(read, write, data)
    }

    /// A standard input for one spawn attempt (a duplicate of the read end:
    /// the feed stays whole if the spawn fails).
    pub fn stdin(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        match &self.read {
            None => Ok(std::fs::File::open("/dev/null")?.into()),
            Some(r) => r.try_clone(),
        }
    }

    /// What is still to be written into the compiler's stdin once it runs.
    pub fn into_pending(self) -> Option<Pending<'a>> {
        self.pending
    }
}

impl Pending<'_> {
    /// The write end (for polling).
    pub fn fd(&self) -> i32 {
        self.write.as_raw_fd()
    }

    /// Moves as much as the pipe takes now. `Ok(true)` once everything is
    /// in (drop the `Pending` then: the compiler sees end of file). Stops at
    /// the first short move: trying again would only meet the reader's lock
    /// (see the header).
    pub fn advance(&mut self) -> std::io::Result<bool> {
        // Bounded: each round finishes a part or returns.
        while let Some(part) = self.parts.front_mut() {
            let (moved, want) = match part {
                Part::Lent(data) => {
                    let n = fill(&self.write, data)?;
                    *data = &data[n..];
                    (n, n + data.len())
                }
                Part::Pipe(from, left) => {
                    let n = splice_all_or_some(from, &self.write, *left)?;
                    *left -= n;
                    (n, n + *left)
                }
                Part::Owned(data, at) => {
                    let n = write_some(&self.write, &data[*at..])?;
                    *at += n;
                    (n, n + data.len() - *at)
                }
            };
            if moved < want {
                return Ok(false);
            }
            self.parts.pop_front();
        }
        Ok(true)
    }
}

/// The pipe with as much of `data` lent to it as it takes now, and the
/// rest, if any, left for `process` to write as the compiler reads.
fn filled(read: OwnedFd, write: OwnedFd, data: &[u8]) -> std::io::Result<SourceFeed<'_>> {
    let written = fill(&write, data)?;
    let pending = (written < data.len()).then(|| Pending {
        write,
        parts: VecDeque::from([Part::Lent(&data[written..])]),
    });
    Ok(SourceFeed {
        read: Some(read),
        pending,
    })
}

/// Moves up to `len` bytes from the pipe `from` into the non-blocking pipe
/// `to` (pipe buffers change hands, nothing is copied); 0 if `to` is full.
/// End of input before `len` is an error: we know what the pipe holds.
fn splice_all_or_some(from: &OwnedFd, to: &OwnedFd, len: usize) -> std::io::Result<usize> {
    // SAFETY: splice between two pipes we own.
    let moved = nonblocking::call(|| unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
        )
    })?;
    match moved {
        Outcome::Moved(n) => Ok(n),
        Outcome::WouldBlock => Ok(0),
        Outcome::End => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "a source pipe ended early",
        )),
    }
}

/// One `write` into the non-blocking pipe; 0 if it is full.
fn write_some(to: &OwnedFd, data: &[u8]) -> std::io::Result<usize> {
    // SAFETY: write from a slice we own.
    let written = nonblocking::call(|| unsafe {
        libc::write(to.as_raw_fd(), data.as_ptr().cast(), data.len())
    })?;
    Ok(match written {
        Outcome::Moved(n) => n,
        Outcome::End | Outcome::WouldBlock => 0,
    })
}

/// A pipe, both ends close-on-exec (the child's stdin is dup2'd anyway);
/// our write end is non-blocking, the compiler's read end is not.
pub fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
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
    if need > 16 * 4096 {
        enlarge(write, need);
    }
}

/// Enlarges the pipe towards `bytes` (as far as the system lets us: an
/// unprivileged process up to /proc/sys/fs/pipe-max-size, and not at all
/// past its user's pipe-user-pages-soft); returns its capacity in bytes.
pub fn enlarge(pipe: &OwnedFd, bytes: usize) -> usize {
    let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl on our own pipe; the kernel rounds up to a power of 2.
    unsafe {
        let fd = pipe.as_raw_fd();
        if libc::fcntl(fd, libc::F_SETPIPE_SZ, want) < 0 {
            libc::fcntl(fd, libc::F_SETPIPE_SZ, want.min(UNPRIVILEGED_PIPE_MAX));
        }
        usize::try_from(libc::fcntl(fd, libc::F_GETPIPE_SZ)).unwrap_or(0)
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
pub mod tests {
    use super::*;
    use std::io::Read;

    fn read_all(fd: OwnedFd) -> Vec<u8> {
        let mut f = std::fs::File::from(fd);
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    }

    /// Everything the compiler would read from `feed`, with a thread doing
    /// what the daemon's exchange does with the rest (blocking, for the
    /// test's simplicity).
    pub fn compiler_reads(feed: SourceFeed<'_>) -> Vec<u8> {
        let read = feed.read.as_ref().map(|r| r.try_clone().unwrap());
        let pending = feed.into_pending();
        std::thread::scope(|scope| {
            if let Some(mut p) = pending {
                scope.spawn(move || {
                    for _ in 0..1_000_000 {
                        if p.advance().unwrap() {
                            return;
                        }
                        std::thread::sleep(std::time::Duration::from_micros(50));
                    }
                    panic!("the rest never went in");
                });
            }
            read.map(read_all).unwrap_or_default()
        })
    }

    #[test]
    fn small_source_is_in_the_pipe_before_the_reader_exists() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let feed = SourceFeed::prepare(Some(&data)).unwrap();
        assert!(feed.pending.is_none());
        assert_eq!(compiler_reads(feed), data);
    }

    #[test]
    fn big_source_reaches_the_compiler_whole() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
        let feed = SourceFeed::prepare(Some(&big)).unwrap();
        assert_eq!(compiler_reads(feed), big);
    }

    #[test]
    fn no_source_is_null() {
        for feed in [SourceFeed::prepare(None), SourceFeed::prepare(Some(&[]))] {
            let feed = feed.unwrap();
            assert!(feed.read.is_none() && feed.pending.is_none());
        }
    }
}
