//! The include server's event loop: one synchronous mio loop on the Unix
//! socket, analysis on worker threads.
//!
//! [`start`] binds the socket (so the caller knows the server is ready when
//! it returns), creates the client root, and spawns the loop thread and the
//! workers. The loop accepts connections, reads each request with the
//! I/O-free codec of `distcc::includes::server`, hands it to a worker over a
//! crossbeam channel, and gets the reply back on another channel followed by
//! a `Waker` wake-up; then it writes the reply and closes the connection
//! (one request per connection, facts §2.1). The first bytes of the reply
//! carry the descriptor of the ready-made file list, when there is one
//! (`SCM_RIGHTS`; see `distcc::includes::bundle`). Such a connection is
//! only half closed after the reply (the client reads its end as before):
//! our client releases the list with `LIST_DONE` once its daemon has
//! answered, and the memory file is then kept for a later list; a client
//! that hangs up instead keeps it for good.
//! [`Running::shutdown`] stops everything and removes the socket and the
//! client root. Used by the
//! `include-server` applet (foreground) and by `pump` (inside its process).

use crossbeam_channel::{Receiver, Sender, unbounded};
use distcc::includes::bundle::LIST_DONE;
use distcc::includes::mirror::{ClientRoot, clean_dead_roots, client_tmp, sweep_gone};
use distcc::includes::server::{Answer, MAX_REQUEST, Options, Request, Server, parse_request};
use distcc::{Error, Result};
use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Stack size of analysis workers.
const WORKER_STACK: usize = 32 << 20;
/// A connection that sends nothing for this long is dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(300);
/// After this long without a connection, copies in the client root of
/// files that are gone are removed (once per burst of requests), and also
/// at the first moment without one after this many connections.
const SWEEP_AFTER: Duration = Duration::from_secs(10);
const SWEEP_EVERY: usize = 1000;

/// A running include server.
pub struct Running {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    root: ClientRoot,
    socket: PathBuf,
}

impl Running {
    /// The client root directory in use.
    pub fn root(&self) -> &Path {
        &self.root.path
    }

    /// Stops the loop and the workers, removes the socket and the client root.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
        self.root.remove();
    }
}

/// A request for a worker, with the flag that tells it the client has gone.
type Job = (Token, Request, Arc<AtomicBool>);

enum Phase {
    Reading(Vec<u8>),
    /// A worker has the request; set the flag to stop it.
    Working(Arc<AtomicBool>),
    /// The reply, written up to this offset; the descriptor in it is
    /// passed with its first byte.
    Writing(Answer, usize),
    /// The reply is out, the client has the file list: waiting for its
    /// `LIST_DONE` (the bytes of it read so far).
    Lent(Vec<u8>),
}

struct Conn {
    stream: UnixStream,
    phase: Phase,
    since: Instant,
    /// The file list passed, kept while the client may still send it.
    lent: Option<OwnedFd>,
}

/// Binds `socket` and starts serving.
pub fn start(socket: &Path, options: Options, stop: Arc<AtomicBool>) -> Result<Running> {
    let tmp = client_tmp(std::env::var_os("DISTCC_CLIENT_TMP").as_deref());
    clean_dead_roots(&tmp);
    let listener = UnixListener::bind(socket)
        .map_err(|e| Error::io(format!("bind {}", socket.display()), e))?;
    let root = match ClientRoot::create(&tmp, std::process::id(), 1) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(socket);
            return Err(e);
        }
    };
    let poll = Poll::new().map_err(|e| Error::io("create poll", e))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("waker", e))?);
    let server = Arc::new(Server::new(root.clone(), options));
    let (job_tx, job_rx) = unbounded::<Job>();
    let (done_tx, done_rx) = unbounded::<(Token, Answer)>();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 16);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (rx, tx, server, waker) = (
            job_rx.clone(),
            done_tx.clone(),
            server.clone(),
            waker.clone(),
        );
        // Deeply nested includes recurse; give workers room.
        let spawned = std::thread::Builder::new()
            .name("include-worker".into())
            .stack_size(WORKER_STACK)
            .spawn(move || worker(rx, tx, &server, &waker))
            .map_err(|e| Error::io("spawn include-server worker", e))?;
        handles.push(spawned);
    }
    drop(job_rx);
    let loop_stop = stop.clone();
    let root_path = root.path.clone();
    let thread = std::thread::spawn(move || {
        if let Err(e) = serve(
            poll, listener, job_tx, done_rx, &loop_stop, &root_path, &server,
        ) {
            log::error!("include server loop failed: {e}");
        }
        for h in handles {
            let _ = h.join();
        }
    });
    Ok(Running {
        stop,
        waker,
        thread: Some(thread),
        root,
        socket: socket.to_path_buf(),
    })
}

fn worker(rx: Receiver<Job>, tx: Sender<(Token, Answer)>, server: &Server, waker: &Waker) {
    while let Ok((token, req, cancelled)) = rx.recv() {
        let reply = server.handle_until(&req, &cancelled);
        if tx.send((token, reply)).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

fn serve(
    mut poll: Poll,
    mut listener: UnixListener,
    jobs: Sender<Job>,
    done: Receiver<(Token, Answer)>,
    stop: &AtomicBool,
    root: &Path,
    server: &Server,
) -> Result<()> {
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| Error::io("register listener", e))?;
    let mut events = Events::with_capacity(256);
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 2usize;
    // Connections since the last sweep of the client root, and when the
    // last one ended.
    let mut unswept = false;
    let mut last_seen = Instant::now();
    let mut accepted = 0usize;
    while !stop.load(Ordering::SeqCst) {
        if !conns.is_empty() {
            unswept = true;
            last_seen = Instant::now();
        } else if unswept && (last_seen.elapsed() >= SWEEP_AFTER || accepted >= SWEEP_EVERY) {
            // No request is being answered, and none has been for a while
            // (a stock client reads the copies after its reply).
            let removed = sweep_gone(root);
            if removed > 0 {
                log::info!("removed {removed} copies of files that are gone from the client root");
            }
            unswept = false;
            accepted = 0;
        }
        // No wake-ups while idle: shutdown wakes the loop through the
        // waker, and only an open connection (or one sweep after the last)
        // has a deadline to keep.
        let timeout = conns
            .values()
            .filter(|c| !matches!(c.phase, Phase::Working(_)))
            .map(|c| IDLE_LIMIT.saturating_sub(c.since.elapsed()))
            .chain(
                (unswept && conns.is_empty())
                    .then(|| SWEEP_AFTER.saturating_sub(last_seen.elapsed())),
            )
            .min()
            .map(|left| left + Duration::from_millis(10));
        match poll.poll(&mut events, timeout) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("poll", e)),
            Ok(()) => {}
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next);
                            next = next.wrapping_add(1).max(2);
                            accepted += 1;
                            if poll
                                .registry()
                                .register(&mut stream, token, Interest::READABLE)
                                .is_ok()
                            {
                                conns.insert(
                                    token,
                                    Conn {
                                        stream,
                                        phase: Phase::Reading(Vec::new()),
                                        since: Instant::now(),
                                        lent: None,
                                    },
                                );
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::warn!("accept failed: {e}");
                            break;
                        }
                    }
                },
                WAKER => {}
                token => {
                    let close = match conns.get_mut(&token) {
                        Some(c) => step(c, token, &jobs, &poll, server),
                        None => false,
                    };
                    if close && let Some(mut c) = conns.remove(&token) {
                        let _ = poll.registry().deregister(&mut c.stream);
                    }
                }
            }
        }
        while let Ok((token, reply)) = done.try_recv() {
            let close = match conns.get_mut(&token) {
                Some(c) => {
                    c.phase = Phase::Writing(reply, 0);
                    let _ = poll
                        .registry()
                        .reregister(&mut c.stream, token, Interest::WRITABLE);
                    step(c, token, &jobs, &poll, server)
                }
                None => false,
            };
            if close && let Some(mut c) = conns.remove(&token) {
                let _ = poll.registry().deregister(&mut c.stream);
            }
        }
        conns.retain(|_, c| matches!(c.phase, Phase::Working(_)) || c.since.elapsed() < IDLE_LIMIT);
    }
    Ok(())
}

/// Advances one connection; returns true when it is finished.
fn step(c: &mut Conn, token: Token, jobs: &Sender<Job>, poll: &Poll, server: &Server) -> bool {
    match &mut c.phase {
        Phase::Reading(buf) => {
            let mut chunk = [0u8; 16384];
            for _ in 0..10_000 {
                match c.stream.read(&mut chunk) {
                    Ok(0) => return true,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if buf.len() > MAX_REQUEST {
                            return true;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return true,
                }
            }
            match parse_request(buf) {
                Ok(Some(req)) => {
                    let cancelled = Arc::new(AtomicBool::new(false));
                    c.phase = Phase::Working(cancelled.clone());
                    let _ = poll
                        .registry()
                        .reregister(&mut c.stream, token, Interest::READABLE);
                    jobs.send((token, req, cancelled)).is_err()
                }
                Ok(None) => false,
                Err(e) => {
                    log::warn!("bad include-server request: {e}");
                    true
                }
            }
        }
        Phase::Working(cancelled) => {
            // Readable while a worker has the request: the client hung up
            // (or sent more than one request, which no client does).
            let mut byte = [0u8; 1];
            match c.stream.read(&mut byte) {
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted =>
                {
                    false
                }
                _ => {
                    cancelled.store(true, Ordering::Relaxed);
                    true
                }
            }
        }
        Phase::Writing(answer, pos) => {
            for _ in 0..10_000 {
                if *pos >= answer.reply.len() {
                    if c.lent.is_none() {
                        return true;
                    }
                    // The client sees the end of the reply as before (some
                    // read to the end); only its release can still come.
                    let _ = c.stream.shutdown(std::net::Shutdown::Write);
                    c.phase = Phase::Lent(Vec::new());
                    let _ = poll
                        .registry()
                        .reregister(&mut c.stream, token, Interest::READABLE);
                    return false;
                }
                let sent = match &answer.passed {
                    Some(fd) => {
                        let rest = &answer.reply[*pos..];
                        distcc::fdpass::send_with_fd(c.stream.as_fd(), rest, fd.as_fd())
                    }
                    None => c.stream.write(&answer.reply[*pos..]),
                };
                if matches!(sent, Ok(n) if n > 0) {
                    // Passed (or the reader wanted none): a list is kept
                    // until its client releases it, anything else goes.
                    let passed = answer.passed.take();
                    if answer.reusable {
                        c.lent = passed;
                    }
                }
                match sent {
                    Ok(0) => return true,
                    Ok(n) => *pos += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return true,
                }
            }
            false
        }
        Phase::Lent(got) => {
            let mut chunk = [0u8; LIST_DONE.len()];
            // Bounded: each round reads a byte or more, or stops.
            for _ in 0..64 {
                match c.stream.read(&mut chunk) {
                    Ok(0) => return true,
                    Ok(n) => {
                        got.extend_from_slice(&chunk[..n]);
                        if !LIST_DONE.starts_with(got) {
                            return true;
                        }
                        if got.len() == LIST_DONE.len() {
                            if let Some(fd) = c.lent.take() {
                                server.give_back(std::fs::File::from(fd));
                            }
                            return true;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return true,
                }
            }
            false
        }
    }
}
