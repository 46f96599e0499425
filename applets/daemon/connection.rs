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
use super::runner::{JobControl, Task};
use distcc::protocol::{Limits, RequestDecoder};
use mio::net::TcpStream;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Where a connection is in its life.
pub enum Phase {
    /// Reading DIST .. DOTI/NFIL; `checked` is set once the argv passed.
    ReadingRequest {
        decoder: Box<RequestDecoder>,
        checked: Option<Checked>,
    },
    /// Complete request, waiting for a free worker.
    WaitingForSlot(Box<Task>),
    /// A worker runs the compiler. `kill_sent`: when the loop last signalled it.
    Compiling {
        control: Arc<JobControl>,
        kill_sent: Option<Instant>,
    },
    /// Sending the reply.
    WritingReply { buf: Vec<u8>, pos: usize },
}

/// What the loop must do after an event on the connection.
pub enum Step {
    /// Nothing more to do now.
    Continue,
    /// The request is complete: queue it for a worker.
    Queued,
    /// Close the connection; the string says why (for the log).
    Close(String),
    /// The client closed its end while its job waited or ran.
    ClientGone,
    /// The reply is fully written: close.
    Finished,
}

/// A client connection.
pub struct Connection {
    pub id: usize,
    /// None once the client is gone (the job may still be running).
    pub stream: Option<TcpStream>,
    pub peer: SocketAddr,
    pub phase: Phase,
    pub deadline: Option<Instant>,
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
            },
            deadline: None,
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
                Err(e) => return Step::Close(format!("read error: {e}")),
            };
            if n == 0 {
                return match self.phase {
                    Phase::ReadingRequest { .. } => {
                        Step::Close("client closed before sending the whole request".into())
                    }
                    _ => Step::ClientGone,
                };
            }
            match &mut self.phase {
                Phase::ReadingRequest { decoder, checked } => {
                    let request = if direct {
                        // SAFETY: recv_into initialised the first n bytes of the room.
                        unsafe { decoder.payload_filled(n) }
                    } else {
                        decoder.feed(&scratch[..n])
                    };
                    let request = match request {
                        Ok(r) => r,
                        Err(e) => return Step::Close(format!("bad request: {e}")),
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
                            Err(e) => return Step::Close(format!("refused: {e}")),
                        }
                    }
                    if let Some(req) = request {
                        let Some(checked) = checked.take() else {
                            return Step::Close("request without argv".into());
                        };
                        self.phase = Phase::WaitingForSlot(Box::new(Task {
                            id: self.id,
                            version: req.version,
                            cwd: req.cwd,
                            checked,
                            body: req.body,
                            control: Arc::new(JobControl::default()),
                        }));
                        step = Step::Queued;
                    }
                }
                _ => {
                    // Stock logs "Bug!" and carries on; so do we.
                    log::warn!("Bug! client {} sent {n} bytes after its request", self.peer);
                }
            }
        }
    }

    /// Writes as much of the reply as the socket takes.
    pub fn on_writable(&mut self) -> Step {
        let Phase::WritingReply { buf, pos } = &mut self.phase else {
            return Step::Continue;
        };
        let Some(stream) = self.stream.as_mut() else {
            return Step::Close("client gone before the reply".into());
        };
        while *pos < buf.len() {
            match stream.write(&buf[*pos..]) {
                Ok(0) => return Step::Close("write returned 0".into()),
                Ok(n) => *pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Step::Close(format!("write error: {e}")),
            }
        }
        Step::Finished
    }

    /// Whether this connection made progress-based deadlines (reading and
    /// writing phases) rather than job deadlines.
    pub fn is_io_phase(&self) -> bool {
        matches!(
            self.phase,
            Phase::ReadingRequest { .. } | Phase::WritingReply { .. }
        )
    }
}
