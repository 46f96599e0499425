//! One client connection of the daemon and its explicit phase.
//!
//! A connection reads its request through the I/O-free decoder, is checked
//! as soon as its argv is in (so a refused compiler or option closes the
//! connection before a large body is read), waits for a worker slot, is
//! watched while compiling (EOF from the client means it is gone: the
//! compiler's process group is killed), and finally writes its reply and
//! closes. The socket is never half-closed. The event loop (`server.rs`)
//! drives it; this file only knows about one connection.

use super::compiler::{Checked, Config};
use super::runner::{self, JobControl, Task};
use super::spliced::{self, Received, SplicedSource};
use super::summary::Refusal;
use distcc::Kind;
use distcc::protocol::{Limits, Request, RequestDecoder};
use mio::net::TcpStream;
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Where a connection is in its life.
pub enum Phase {
    /// Reading DIST .. DOTI/NFIL; `checked` is set once the argv passed.
    ReadingRequest {
        decoder: Box<RequestDecoder>,
        checked: Option<Checked>,
        splice: Splice,
    },
    /// Complete request, waiting for a free worker.
    WaitingForSlot(Box<Task>),
    /// A worker runs the compiler. `kill_sent`: when the loop last signalled it.
    Compiling {
        control: Arc<JobControl>,
        kill_sent: Option<Instant>,
    },
    /// Sending the reply: the bytes, then the object's file (`sent` of it).
    WritingReply {
        buf: Vec<u8>,
        pos: usize,
        file: Option<(std::fs::File, u64)>,
        sent: u64,
    },
}

/// Whether a plain source goes into pipes instead of memory (`spliced`).
pub enum Splice {
    /// Not decided yet (the source's header is not in).
    Undecided,
    /// Its bytes are being spliced into pipes.
    Receiving(Box<SplicedSource>),
    /// Into memory, as every other payload.
    Declined,
}

/// What a splice step did (`Connection::splice_step`).
enum SpliceStep {
    /// The source is not being spliced: read as usual.
    NotSplicing,
    /// Bytes moved; try for more.
    Progress,
    /// The socket is empty for now.
    WouldBlock,
    /// The request is complete (`Queued`) or the connection must close.
    Finished(Step),
}

/// What the loop must do after an event on the connection.
pub enum Step {
    /// Nothing more to do now.
    Continue,
    /// The request is complete: queue it for a worker.
    Queued,
    /// Close the connection; the string says why (for the log).
    Close(String),
    /// Close a connection whose request is refused or was never completed:
    /// why (for the log), whether the bytes were not a request at all
    /// (stock's REJ_BAD_REQ, else OTHER), and the distcc exit code of the
    /// reason (the summary's `ret:`).
    Refuse {
        why: String,
        refusal: Refusal,
        ret: u8,
        /// Logged as an error (a refused compiler), not a warning.
        error: bool,
    },
    /// The client closed its end while its job waited or ran.
    ClientGone,
    /// The reply is fully written: close.
    Finished,
}

fn refuse(why: String, refusal: Refusal, kind: Kind) -> Step {
    Step::Refuse {
        why,
        refusal,
        ret: kind.exit_code(),
        error: false,
    }
}

/// A client connection.
pub struct Connection {
    pub id: usize,
    /// None once the client is gone (the job may still be running).
    pub stream: Option<TcpStream>,
    pub peer: SocketAddr,
    pub phase: Phase,
    pub deadline: Option<Instant>,
    /// When it was accepted (the summary's time of a refused request).
    pub accepted: Instant,
    /// Bytes of the request read so far (into memory or pipes).
    received: u64,
}

/// How much a payload buffer may grow ahead of the bytes that arrived.
const DIRECT_CHUNK: usize = 1024 * 1024;

/// `recv` into uninitialised room; returns how many bytes it initialised.
fn recv_into(stream: &TcpStream, room: &mut [std::mem::MaybeUninit<u8>]) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: recv writes at most room.len() bytes into memory we own.
    let n = unsafe { libc::recv(stream.as_raw_fd(), room.as_mut_ptr().cast(), room.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// `send` with flags on the non-blocking socket.
fn send(stream: &TcpStream, data: &[u8], flags: i32) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: send reads from a slice we own.
    let n = unsafe { libc::send(stream.as_raw_fd(), data.as_ptr().cast(), data.len(), flags) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// `sendfile` of up to `len` bytes of `file` from `offset` (the file's
/// own position is not used) into the non-blocking socket.
fn send_file(
    stream: &TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut off = libc::off_t::try_from(offset).map_err(std::io::Error::other)?;
    let chunk = usize::try_from(len).unwrap_or(usize::MAX).min(1 << 30);
    // SAFETY: sendfile between descriptors we own; `off` is ours.
    let n = unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut off, chunk) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

impl Connection {
    /// A new connection that starts reading its request.
    pub fn new(id: usize, stream: TcpStream, peer: SocketAddr, limits: Limits) -> Connection {
        Connection {
            id,
            stream: Some(stream),
            peer,
            phase: Phase::ReadingRequest {
                decoder: Box::new(RequestDecoder::new(limits)),
                checked: None,
                splice: Splice::Undecided,
            },
            deadline: None,
            accepted: Instant::now(),
            received: 0,
        }
    }

    /// Reads everything available (the socket is edge-triggered). A large
    /// payload is read straight into its buffer, other bytes go through
    /// `scratch` into the decoder.
    pub fn on_readable(&mut self, scratch: &mut [u8], cfg: &Config) -> Step {
        let mut step = Step::Continue;
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return step;
            };
            let fd = std::os::fd::AsRawFd::as_raw_fd(stream);
            match self.splice_step(fd, cfg) {
                SpliceStep::NotSplicing => {}
                SpliceStep::Progress => continue,
                SpliceStep::WouldBlock => return step,
                SpliceStep::Finished(Step::Queued) => {
                    step = Step::Queued;
                    continue;
                }
                SpliceStep::Finished(other) => return other,
            }
            let Some(stream) = self.stream.as_mut() else {
                return step;
            };
            let room = match &mut self.phase {
                Phase::ReadingRequest { decoder, .. } => decoder.payload_room(DIRECT_CHUNK),
                _ => None,
            };
            let direct = room.is_some();
            let n = match room {
                Some(room) => recv_into(stream, room),
                None => stream.read(scratch),
            };
            let n = match n {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return step,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(self.phase, Phase::ReadingRequest { .. }) => {
                    return self.left_early(format!("read error: {e}"), Kind::Io);
                }
                Err(e) => return Step::Close(format!("read error: {e}")),
            };
            if n > 0 && matches!(self.phase, Phase::ReadingRequest { .. }) {
                self.received += n as u64;
            }
            if n == 0 {
                return match self.phase {
                    Phase::ReadingRequest { .. } => self.left_early(
                        "client closed before sending the whole request".into(),
                        Kind::Truncated,
                    ),
                    _ => Step::ClientGone,
                };
            }
            match &mut self.phase {
                Phase::ReadingRequest {
                    decoder, checked, ..
                } => {
                    let request = if direct {
                        // SAFETY: recv_into initialised the first n bytes of the room.
                        unsafe { decoder.payload_filled(n) }
                    } else {
                        decoder.feed(&scratch[..n])
                    };
                    let request = match request {
                        Ok(r) => r,
                        Err(e) => {
                            return refuse(
                                format!("bad request: {e}"),
                                Refusal::BadRequest,
                                e.kind(),
                            );
                        }
                    };
                    // Once the request is complete the decoder has handed
                    // its argv over to it.
                    let argv = match &request {
                        Some(r) => Some(&r.argv[..]),
                        None => decoder.argv(),
                    };
                    if checked.is_none()
                        && let Some(argv) = argv
                    {
                        match cfg.check(argv) {
                            Ok(c) => *checked = Some(c),
                            Err(e) => {
                                return Step::Refuse {
                                    why: format!("refused: {e}"),
                                    refusal: Refusal::NotServed,
                                    ret: e.kind().exit_code(),
                                    error: super::compiler::is_refused_compiler(&e),
                                };
                            }
                        }
                    }
                    if let Some(req) = request {
                        step = self.queue(req);
                        if !matches!(step, Step::Queued) {
                            return step;
                        }
                    }
                }
                _ => {
                    // Stock logs "Bug!" and carries on; so do we.
                    log::warn!("Bug! client {} sent {n} bytes after its request", self.peer);
                }
            }
        }
    }

    /// The client left, or its stream failed, before its request was
    /// whole ([`Refusal::of_early_end`]).
    fn left_early(&self, why: String, kind: Kind) -> Step {
        let in_body =
            matches!(&self.phase, Phase::ReadingRequest { decoder, .. } if decoder.in_body());
        let (refusal, kind) = Refusal::of_early_end(in_body, kind);
        refuse(why, refusal, kind)
    }

    /// While a plain source arrives: decides once whether it goes into
    /// pipes, and if so moves the bytes the socket has. None: read as usual.
    fn splice_step(&mut self, fd: std::os::fd::RawFd, cfg: &Config) -> SpliceStep {
        let Phase::ReadingRequest {
            decoder,
            checked,
            splice,
        } = &mut self.phase
        else {
            return SpliceStep::NotSplicing;
        };
        if matches!(splice, Splice::Undecided) {
            let Some(remaining) = decoder.source_remaining() else {
                return SpliceStep::NotSplicing;
            };
            // DISTCC_SAVE_TEMPS keeps the source: it must be in memory.
            let eligible = remaining >= spliced::MIN_SOURCE
                && !cfg.save_temps
                && checked.as_ref().is_some_and(runner::source_goes_to_stdin);
            let started = eligible
                .then(|| SplicedSource::start(decoder.source_so_far().unwrap_or(&[]), remaining))
                .flatten();
            *splice = match started {
                Some(s) => Splice::Receiving(Box::new(s)),
                None => Splice::Declined,
            };
        }
        let Splice::Receiving(source) = splice else {
            return SpliceStep::NotSplicing;
        };
        let n = match source.receive(fd) {
            Ok(Received::Moved(n)) => n,
            Ok(Received::WouldBlock) => return SpliceStep::WouldBlock,
            Ok(Received::Closed) => {
                return SpliceStep::Finished(refuse(
                    "client closed before sending the whole request".into(),
                    Refusal::ClientLeft,
                    Kind::Io,
                ));
            }
            Err(e) => {
                return SpliceStep::Finished(refuse(
                    format!("read error: {e}"),
                    Refusal::ClientLeft,
                    Kind::Io,
                ));
            }
        };
        self.received += n as u64;
        match decoder.source_moved(n) {
            Ok(None) => SpliceStep::Progress,
            Ok(Some(req)) => SpliceStep::Finished(self.queue(req)),
            Err(e) => SpliceStep::Finished(refuse(
                format!("bad request: {e}"),
                Refusal::BadRequest,
                e.kind(),
            )),
        }
    }

    /// The request is complete: it waits for a worker.
    fn queue(&mut self, req: Request) -> Step {
        let Phase::ReadingRequest {
            checked, splice, ..
        } = &mut self.phase
        else {
            return Step::Close("request completed twice".into());
        };
        let Some(checked) = checked.take() else {
            return Step::Close("request without argv".into());
        };
        let spliced = match std::mem::replace(splice, Splice::Declined) {
            Splice::Receiving(s) => Some(*s),
            _ => None,
        };
        self.phase = Phase::WaitingForSlot(Box::new(Task {
            id: self.id,
            version: req.version,
            cwd: req.cwd,
            checked,
            body: req.body,
            spliced,
            control: Arc::new(JobControl::default()),
        }));
        Step::Queued
    }

    /// Writes as much of the reply as the socket takes.
    pub fn on_writable(&mut self) -> Step {
        let Phase::WritingReply {
            buf,
            pos,
            file,
            sent,
        } = &mut self.phase
        else {
            return Step::Continue;
        };
        let Some(stream) = self.stream.as_mut() else {
            return Step::Close("client gone before the reply".into());
        };
        while *pos < buf.len() {
            // More follows from the file: no need to push this out alone.
            let flags = if file.is_some() { libc::MSG_MORE } else { 0 };
            match send(stream, &buf[*pos..], flags) {
                Ok(0) => return Step::Close("write returned 0".into()),
                Ok(n) => *pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Step::Close(format!("write error: {e}")),
            }
        }
        if let Some((f, len)) = file {
            while *sent < *len {
                match send_file(stream, f, *sent, *len - *sent) {
                    Ok(0) => return Step::Close("the object shrank while sent".into()),
                    Ok(n) => *sent += n as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Continue,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Step::Close(format!("write error: {e}")),
                }
            }
        }
        Step::Finished
    }

    /// Whether this connection made progress-based deadlines (reading and
    /// writing phases) rather than job deadlines.
    /// Bytes of an unfinished request this connection holds in the loop:
    /// while it is read and while it waits for a worker (a running job's
    /// bytes are its worker's, bounded by `--jobs`).
    pub fn held(&self) -> u64 {
        match self.phase {
            Phase::ReadingRequest { .. } | Phase::WaitingForSlot(_) => self.received,
            _ => 0,
        }
    }

    /// Whether its request is still being read.
    pub fn is_reading(&self) -> bool {
        matches!(self.phase, Phase::ReadingRequest { .. })
    }

    pub fn is_io_phase(&self) -> bool {
        matches!(
            self.phase,
            Phase::ReadingRequest { .. } | Phase::WritingReply { .. }
        )
    }
}
