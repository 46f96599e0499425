//! Receiving a plain (protocol 1) source without copying it.
//!
//! Receiving a multi-megabyte source with `recv` was most of the daemon's
//! own CPU: the kernel copies every byte into our memory (and faults in the
//! pages), only for the compiler to copy it again out of its stdin pipe.
//! Here the bytes are spliced from the socket into pipes instead: the
//! socket's buffers change hands (when the client sent with `sendfile`, as
//! stock's client does, they are the client's own page-cache pages), and
//! the first pipe becomes the compiler's standard input. The bytes are held
//! by the kernel, in the pipes, while the request waits for a worker.
//!
//! The event loop (`connection.rs`) starts one once the argv has passed its
//! checks and the source's header is in; bytes the decoder already holds
//! (those that came with the header) are written into the first pipe
//! first. A source larger than one pipe (1 MiB for an unprivileged
//! process) goes on into more pipes, whose buffers are moved into the first
//! as the compiler reads (`source_feed`). Pipes are limited per source and
//! in all (each costs descriptors, and a user's pipes are limited to 64 MiB
//! by default); when no more can be had, the rest is received into memory,
//! as without splicing. Nothing here changes what the compiler reads.

use super::nonblocking::{self, Outcome};
use super::source_feed::{self, Part};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Sources smaller than this are received into memory (a pipe costs a few
/// system calls; copying a few kilobytes costs less).
pub const MIN_SOURCE: usize = 32 * 1024;
/// Smallest pipe worth holding a source: below it, the user's pipe quota is
/// spent (the kernel then gives new pipes two pages).
const MIN_PIPE: usize = 256 * 1024;
/// Largest pipe asked for (a privileged daemon may get it).
const MAX_PIPE: usize = 8 * 1024 * 1024;
/// Most pipes for one source.
const MAX_PIPES_PER_SOURCE: usize = 32;
/// Most pipes held by all sources together (two descriptors at most each).
const MAX_PIPES: usize = 256;

/// Pipes held by all sources, for [`MAX_PIPES`].
static PIPES_HELD: AtomicUsize = AtomicUsize::new(0);

/// A place in [`PIPES_HELD`], given back when dropped.
struct PipeToken;

impl PipeToken {
    fn take() -> Option<PipeToken> {
        let taken = PIPES_HELD.fetch_add(1, Ordering::Relaxed);
        if taken >= MAX_PIPES {
            PIPES_HELD.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(PipeToken)
    }
}

impl Drop for PipeToken {
    fn drop(&mut self) {
        PIPES_HELD.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One pipe holding part of a source.
struct HeldPipe {
    read: OwnedFd,
    /// Open while bytes may still go in (the first pipe's stays open for
    /// what follows it).
    write: Option<OwnedFd>,
    bytes: usize,
    _token: PipeToken,
}

impl HeldPipe {
    /// A new pipe of at least [`MIN_PIPE`] (or `need`, if less), if the
    /// budget and the system allow.
    fn new(need: usize, largest: usize) -> Option<HeldPipe> {
        let token = PipeToken::take()?;
        let (read, write) = source_feed::pipe().ok()?;
        let want = need.next_power_of_two().clamp(64 * 1024, largest);
        let capacity = source_feed::enlarge(&write, want);
        (capacity >= MIN_PIPE.min(want)).then_some(HeldPipe {
            read,
            write: Some(write),
            bytes: 0,
            _token: token,
        })
    }
}

/// What one receive step did.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// This many source bytes came in.
    Moved(usize),
    /// Nothing more to read now.
    WouldBlock,
    /// The client closed its end.
    Closed,
}

/// A source being received into pipes (and, when they run out, memory).
pub struct SplicedSource {
    /// In source order; the first becomes the compiler's stdin.
    pipes: Vec<HeldPipe>,
    /// Most pipes this source may use.
    max_pipes: usize,
    /// Largest pipe it asks for.
    largest_pipe: usize,
    /// Bytes received into memory once no more pipes could be had.
    tail: Option<Vec<u8>>,
    /// Source bytes still to come from the socket.
    remaining: usize,
}

impl SplicedSource {
    /// Starts a source of which `prefix` has arrived and `remaining` bytes
    /// are still to come. None if the pipes cannot be had (the caller then
    /// receives the source into memory as usual).
    pub fn start(prefix: &[u8], remaining: usize) -> Option<SplicedSource> {
        Self::start_with(prefix, remaining, MAX_PIPES_PER_SOURCE, MAX_PIPE)
    }

    fn start_with(
        prefix: &[u8],
        remaining: usize,
        max_pipes: usize,
        largest_pipe: usize,
    ) -> Option<SplicedSource> {
        let first = HeldPipe::new(prefix.len() + remaining, largest_pipe)?;
        let mut source = SplicedSource {
            pipes: vec![first],
            max_pipes,
            largest_pipe,
            tail: None,
            remaining,
        };
        let pipe = &mut source.pipes[0];
        let write = pipe.write.as_ref()?;
        // The prefix is at most the loop's scratch buffer, well below the
        // pipe's capacity, so one write takes it all (or we give up).
        if !prefix.is_empty() {
            // SAFETY: write from a slice we own into our own pipe.
            let n = unsafe { libc::write(write.as_raw_fd(), prefix.as_ptr().cast(), prefix.len()) };
            if usize::try_from(n).ok() != Some(prefix.len()) {
                return None;
            }
            pipe.bytes = prefix.len();
        }
        Some(source)
    }

    /// Takes what the socket `sock` has now (up to what the source still
    /// needs) into the pipes, or into memory when they run out.
    pub fn receive(&mut self, sock: RawFd) -> std::io::Result<Received> {
        if self.remaining == 0 {
            return Ok(Received::WouldBlock);
        }
        // Bounded: a new pipe is opened at most MAX_PIPES_PER_SOURCE times,
        // then the tail takes over.
        for _ in 0..MAX_PIPES_PER_SOURCE + 2 {
            if self.tail.is_some() {
                return self.receive_into_tail(sock);
            }
            let last = self.pipes.last_mut().expect("at least one pipe");
            let Some(write) = last.write.as_ref() else {
                self.open_next();
                continue;
            };
            // SAFETY: splice from our socket into our own pipe.
            let spliced = nonblocking::call(|| unsafe {
                libc::splice(
                    sock,
                    std::ptr::null_mut(),
                    write.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.remaining,
                    libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                )
            });
            match spliced {
                Ok(Outcome::Moved(n)) => {
                    last.bytes += n;
                    self.remaining -= n;
                    return Ok(Received::Moved(n));
                }
                Ok(Outcome::End) => return Ok(Received::Closed),
                Ok(Outcome::WouldBlock) => {}
                // A socket the kernel cannot splice from: memory it is.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                    self.tail = Some(Vec::new());
                    continue;
                }
                Err(e) => return Err(e),
            }
            // Either the socket is empty or the pipe is full.
            if pending_bytes(sock)? == 0 {
                return Ok(Received::WouldBlock);
            }
            self.open_next();
        }
        Ok(Received::WouldBlock)
    }

    /// The last pipe is full: closes its write end and opens another, or
    /// switches to memory.
    fn open_next(&mut self) {
        let several = self.pipes.len() > 1;
        if let Some(last) = self.pipes.last_mut()
            && several
        {
            // The first pipe keeps its write end: the others are moved into
            // it as the compiler reads.
            last.write = None;
        }
        let next = (self.pipes.len() < self.max_pipes)
            .then(|| HeldPipe::new(self.remaining, self.largest_pipe))
            .flatten();
        match next {
            Some(p) => self.pipes.push(p),
            // The first pipe's write end stays open for the tail.
            None => self.tail = Some(Vec::new()),
        }
    }

    fn receive_into_tail(&mut self, sock: RawFd) -> std::io::Result<Received> {
        let tail = self.tail.as_mut().expect("tail mode");
        if tail.capacity() == tail.len() {
            // Grow with the bytes that arrive, as the decoder does.
            tail.reserve_exact(self.remaining.min(tail.len().max(1024 * 1024)));
        }
        let want = self.remaining.min(tail.capacity() - tail.len());
        let room = &mut tail.spare_capacity_mut()[..want];
        // SAFETY: recv writes at most room.len() bytes into memory we own.
        let received = nonblocking::call(|| unsafe {
            libc::recv(sock, room.as_mut_ptr().cast(), room.len(), 0)
        })?;
        Ok(match received {
            Outcome::Moved(n) => {
                // SAFETY: recv initialised these n bytes.
                unsafe { tail.set_len(tail.len() + n) };
                self.remaining -= n;
                Received::Moved(n)
            }
            Outcome::End => Received::Closed,
            Outcome::WouldBlock => Received::WouldBlock,
        })
    }

    /// For the compiler, once every byte is in: the first pipe's read end
    /// (its stdin), its write end if more has to follow (closed otherwise,
    /// so the compiler sees the end), and what follows, in order. The pipes
    /// leave the budget here: from now on `--jobs` bounds them.
    pub fn into_parts(self) -> (OwnedFd, Option<OwnedFd>, Vec<Part<'static>>) {
        let mut pipes = self.pipes.into_iter();
        let first = pipes.next().expect("at least one pipe");
        let mut rest: Vec<Part<'static>> = pipes.map(|p| Part::Pipe(p.read, p.bytes)).collect();
        if let Some(tail) = self.tail.filter(|t| !t.is_empty()) {
            rest.push(Part::Owned(tail, 0));
        }
        let write = if rest.is_empty() { None } else { first.write };
        (first.read, write, rest)
    }
}

/// Bytes waiting in the socket's receive queue.
fn pending_bytes(sock: RawFd) -> std::io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    if unsafe { libc::ioctl(sock, libc::FIONREAD, &mut n) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::source_feed::{SourceFeed, tests::compiler_reads};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    /// A connected loopback pair: (our non-blocking end, the client's end).
    fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (ours, client)
    }

    /// Receives `data` (sent in `pieces` writes) after `prefix`, with at
    /// most `max_pipes` pipes, and returns what the compiler would read and
    /// how many pipes were used and whether memory took the rest.
    fn receive(
        prefix: &[u8],
        data: &[u8],
        pieces: usize,
        max_pipes: usize,
    ) -> (Vec<u8>, usize, bool) {
        let (ours, mut client) = socket_pair();
        // Small pipes, so that a few megabytes span several.
        let mut source =
            SplicedSource::start_with(prefix, data.len(), max_pipes, MIN_PIPE).expect("pipes");
        let chunk = data.len().div_ceil(pieces);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for part in data.chunks(chunk) {
                    client.write_all(part).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            });
            let mut got = 0;
            for _ in 0..1_000_000 {
                match source.receive(ours.as_raw_fd()).unwrap() {
                    Received::Moved(n) => got += n,
                    Received::WouldBlock if got == data.len() => break,
                    Received::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_micros(200))
                    }
                    Received::Closed => panic!("closed after {got} bytes"),
                }
            }
            assert_eq!(got, data.len());
        });
        let (pipes, tail) = (source.pipes.len(), source.tail.is_some());
        (compiler_reads(SourceFeed::spliced(source)), pipes, tail)
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 253) as u8).collect()
    }

    #[test]
    fn a_small_source_arrives_whole_in_pipes() {
        let data = pattern(200_000);
        let prefix = b"# 1 \"a.c\"\n";
        let (read, pipes, tail) = receive(prefix, &data, 7, MAX_PIPES_PER_SOURCE);
        assert_eq!(&read[..prefix.len()], prefix);
        assert!(
            read[prefix.len()..] == data[..],
            "{} bytes read",
            read.len()
        );
        // Usually one pipe. A pipe holds a number of page slots, and each
        // splice of a few bytes takes one, so when the sender's pieces
        // arrive one by one (a loaded machine: many tests at once) a
        // second pipe may be opened. What counts: all bytes, in order, and
        // no overflow into memory.
        assert!(!tail);
        assert!((1..=MAX_PIPES_PER_SOURCE).contains(&pipes), "{pipes} pipes");
    }

    #[test]
    fn a_big_source_spans_pipes_in_order() {
        let data = pattern(5_000_000);
        let (read, pipes, tail) = receive(b"xy", &data, 50, MAX_PIPES_PER_SOURCE);
        assert!(
            read.len() == data.len() + 2 && read[2..] == data[..],
            "{} bytes",
            read.len()
        );
        // A slot holds one socket buffer fragment (up to 32 KiB here), so a
        // 64-slot pipe holds at most about 2 MB.
        assert!(pipes > 1, "5 MB in one pipe of 64 slots?");
        assert!(!tail);
    }

    #[test]
    fn past_the_pipe_limit_the_rest_goes_to_memory() {
        let data = pattern(3_000_000);
        let (read, pipes, tail) = receive(b"", &data, 20, 2);
        assert!(read == data, "{} bytes", read.len());
        assert_eq!((pipes, tail), (2, true));
    }

    #[test]
    fn a_client_that_vanishes_is_seen() {
        let (ours, client) = socket_pair();
        let mut source = SplicedSource::start(b"", 1_000_000).unwrap();
        (&client).write_all(&pattern(1000)).unwrap();
        drop(client);
        let mut got = 0;
        for _ in 0..10_000 {
            match source.receive(ours.as_raw_fd()).unwrap() {
                Received::Moved(n) => got += n,
                Received::WouldBlock => std::thread::sleep(std::time::Duration::from_millis(1)),
                Received::Closed => break,
            }
        }
        assert_eq!(got, 1000);
        assert_eq!(source.receive(ours.as_raw_fd()).unwrap(), Received::Closed);
    }
}
