//! One probe per resolved host, all on one mio loop (facts §6).
//!
//! A probe connects without blocking (deadline `-c`), then, with `-p`, sends
//! the canned request and reads the reply with the project's response
//! decoder (deadline `-k` from the moment the connection is up). The host is
//! up when the connection succeeds (no `-p`) or when the reply is a complete
//! `DONE<proto> STAT00000000 ...`. A dead or black-holed host costs its
//! timeout, no more: nothing here blocks.

use distcc::protocol::{Limits, ResponseDecoder, Version};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a probe ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The host answered as a distcc server should.
    Up,
    /// It did not; the reason is for `-v`.
    Down(String),
}

enum Phase {
    Connecting,
    Sending { written: usize },
    Receiving(Box<ResponseDecoder>),
}

/// One host being checked.
pub struct Probe {
    stream: TcpStream,
    phase: Phase,
    /// When the probe started (for `-l`).
    pub started: Instant,
    deadline: Instant,
    request: Option<Arc<Vec<u8>>>,
    version: Version,
    compile_time: Duration,
}

/// What a probe needs to know about the run.
pub struct Plan {
    /// Connect timeout.
    pub connect: Duration,
    /// Compile timeout (after connect).
    pub compile: Duration,
    /// The canned request, when a test compile is wanted.
    pub request: Option<Arc<Vec<u8>>>,
    /// Its protocol.
    pub version: Version,
}

impl Probe {
    /// Starts a non-blocking connect and registers the socket under `token`.
    pub fn start(
        addr: SocketAddr,
        plan: &Plan,
        registry: &Registry,
        token: Token,
    ) -> Result<Probe, String> {
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| format!("register: {e}"))?;
        let now = Instant::now();
        Ok(Probe {
            stream,
            phase: Phase::Connecting,
            started: now,
            deadline: now + plan.connect,
            request: plan.request.clone(),
            version: plan.version,
            compile_time: plan.compile,
        })
    }

    /// When this probe gives up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The outcome at the deadline.
    pub fn timed_out(&self) -> Outcome {
        let what = match self.phase {
            Phase::Connecting => "connect timed out",
            _ => "test compile timed out",
        };
        Outcome::Down(what.into())
    }

    /// Advances on readiness; `Some` when the probe is over.
    pub fn ready(&mut self) -> Option<Outcome> {
        loop {
            match &mut self.phase {
                Phase::Connecting => {
                    if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
                        return Some(Outcome::Down(format!("connect: {e}")));
                    }
                    match self.stream.peer_addr() {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::NotConnected => return None,
                        Err(e) => return Some(Outcome::Down(format!("connect: {e}"))),
                    }
                    if self.compile_time.is_zero() || self.request.is_none() {
                        return Some(Outcome::Up);
                    }
                    self.deadline = Instant::now() + self.compile_time;
                    self.phase = Phase::Sending { written: 0 };
                }
                Phase::Sending { written } => {
                    let Some(request) = &self.request else {
                        return Some(Outcome::Up);
                    };
                    while *written < request.len() {
                        match self.stream.write(&request[*written..]) {
                            Ok(0) => return Some(Outcome::Down("connection closed".into())),
                            Ok(n) => *written += n,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) => return Some(Outcome::Down(format!("send: {e}"))),
                        }
                    }
                    self.phase = Phase::Receiving(Box::new(ResponseDecoder::new(
                        self.version,
                        Limits::default(),
                    )));
                }
                Phase::Receiving(decoder) => {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        match self.stream.read(&mut buf) {
                            Ok(0) => return Some(Outcome::Down("no answer".into())),
                            Ok(n) => match decoder.feed(&buf[..n]) {
                                Ok(Some(resp)) if resp.status == 0 => return Some(Outcome::Up),
                                Ok(Some(resp)) => {
                                    return Some(Outcome::Down(format!(
                                        "test compile failed with status {:#x}",
                                        resp.status
                                    )));
                                }
                                Ok(None) => {}
                                Err(e) => return Some(Outcome::Down(e.to_string())),
                            },
                            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) => return Some(Outcome::Down(format!("receive: {e}"))),
                        }
                    }
                }
            }
        }
    }

    /// Deregisters the socket (it is closed on drop).
    pub fn finish(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }
}
