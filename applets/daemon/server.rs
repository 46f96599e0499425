//! The daemon's one synchronous event loop (mio).
//!
//! Fixed tokens for the listener, the waker, the signal pipe and the stats
//! listener; connections live in a map keyed by their token, each with an
//! explicit `Phase` (connection.rs). Complete requests wait in a FIFO for
//! one of `--jobs` worker slots (they are never dropped for being early);
//! workers report on a channel and wake the loop. The poll timeout is the
//! nearest deadline: `DISTCC_IO_TIMEOUT` while reading or writing,
//! `--job-lifetime` while compiling, and the SIGKILL that follows a
//! SIGTERM which the compiler ignored.

use super::compiler::Config;
use super::connection::{Connection, Phase, Step};
use super::pool::Pool;
use super::runner::{JobResult, Outcome, Stop};
use super::stats::Stats;
use super::summary::Refusal;
use crossbeam_channel::Receiver;
use distcc::acl::AccessList;
use distcc::protocol::Limits;
use distcc::{Error, Result};
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
const STATS: Token = Token(3);
const FIRST_CONNECTION: usize = 16;
/// How long a compiler gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(3);
/// Most stats connections being answered at once.
const MAX_STATS_SENDERS: usize = 16;
/// Most simultaneous client connections (each holds at most a request).
const MAX_CONNECTIONS: usize = 4096;
/// Descriptors a running job may hold besides its connection (job
/// directory, the compiler's pipes and process handle, a few directories of
/// a pump tree).
const FDS_PER_JOB: u64 = 12;
/// How soon accepting is tried again after the process ran out of
/// descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Everything the loop owns.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    stats_listener: Option<TcpListener>,
    signals: RawFd,
    conns: HashMap<usize, Connection>,
    next_id: usize,
    queue: VecDeque<usize>,
    running: usize,
    jobs: usize,
    pool: Option<Pool>,
    results: Receiver<Outcome>,
    cfg: Arc<Config>,
    acl: AccessList,
    stats: Stats,
    stats_senders: Arc<AtomicUsize>,
    limits: Limits,
    /// Connections whose reading waits until the bytes held by unfinished
    /// requests fall below `cfg.request_memory` (in arrival order).
    paused: VecDeque<usize>,
    scratch: Vec<u8>,
    /// Most connections held at once under the descriptor limit: the rest
    /// wait in the kernel's backlog, as for stock's pre-forked workers,
    /// instead of failing for want of a descriptor (sweep T, D1).
    max_conns: usize,
    /// Connections may be waiting in the backlog: accept again once there
    /// is room (the listener's readiness is reported once).
    backlog_waiting: bool,
    /// After running out of descriptors, when to try accepting again.
    accept_retry: Option<Instant>,
}

/// How many connections fit under the descriptor limit: what is left once
/// the descriptors open now and `jobs` running jobs are counted.
fn connection_budget(jobs: usize) -> usize {
    let Some(limit) = distcc::fd_limit::soft() else {
        return MAX_CONNECTIONS;
    };
    let open = std::fs::read_dir("/proc/self/fd").map_or(16, |d| d.count() as u64);
    let room = limit
        .saturating_sub(open)
        .saturating_sub(jobs as u64 * FDS_PER_JOB);
    (room as usize).clamp(jobs.max(1), MAX_CONNECTIONS)
}

/// How the loop ended: by a signal (to re-raise after clean-up).
pub struct Stopped(pub i32);

impl Server {
    /// Builds the loop around an already bound listener (bound before
    /// detaching, so the parent can report bind failures).
    pub fn new(
        listener: TcpListener,
        stats_listener: Option<TcpListener>,
        signals: RawFd,
        jobs: usize,
        cfg: Arc<Config>,
        acl: AccessList,
    ) -> Result<Server> {
        let io = |what: &str, e: std::io::Error| Error::io(what, e);
        let poll = Poll::new().map_err(|e| io("epoll", e))?;
        let mut listener = listener;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| io("register listener", e))?;
        let mut stats_listener = stats_listener;
        if let Some(l) = stats_listener.as_mut() {
            poll.registry()
                .register(l, STATS, Interest::READABLE)
                .map_err(|e| io("register stats listener", e))?;
        }
        poll.registry()
            .register(&mut SourceFd(&signals), SIGNALS, Interest::READABLE)
            .map_err(|e| io("register signal pipe", e))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| io("waker", e))?);
        let (tx, results) = crossbeam_channel::unbounded();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = waker.wake();
        });
        let pool =
            Pool::start(jobs, Arc::clone(&cfg), tx, wake).map_err(|e| io("starting workers", e))?;
        Ok(Server {
            poll,
            listener,
            stats_listener,
            signals,
            conns: HashMap::new(),
            next_id: FIRST_CONNECTION,
            queue: VecDeque::new(),
            running: 0,
            jobs,
            pool: Some(pool),
            results,
            cfg,
            acl,
            stats: Stats::new(jobs),
            stats_senders: Arc::default(),
            limits: super::compiler::request_limits(),
            paused: VecDeque::new(),
            scratch: vec![0; 64 * 1024],
            max_conns: connection_budget(jobs),
            backlog_waiting: false,
            accept_retry: None,
        })
    }

    /// Serves until a termination signal arrives; returns that signal
    /// after every job was stopped and its directory removed.
    pub fn run(&mut self) -> Result<Stopped> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(Error::io("epoll_wait", e));
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    SIGNALS => {
                        if let Some(sig) = self.read_signal() {
                            log::info!("signal {sig} received, shutting down");
                            self.shutdown();
                            return Ok(Stopped(sig));
                        }
                    }
                    STATS => self.serve_stats(),
                    Token(id) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.readable(id);
                        }
                        if event.is_writable() {
                            self.writable(id);
                        }
                    }
                }
            }
            self.collect_results();
            self.expire(Instant::now());
            self.dispatch();
            let retry_due = self.accept_retry.is_some_and(|t| t <= Instant::now());
            if (self.backlog_waiting && self.conns.len() < self.max_conns) || retry_due {
                self.accept_retry = None;
                self.accept_all();
            }
            if !self.paused.is_empty() {
                self.resume_paused();
            }
        }
    }

    fn read_signal(&self) -> Option<i32> {
        let mut b = [0u8; 16];
        // SAFETY: read from our own non-blocking pipe into a local buffer.
        let n = unsafe { libc::read(self.signals, b.as_mut_ptr().cast(), b.len()) };
        (n > 0).then(|| i32::from(b[0]))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let conns = self.conns.values().filter_map(|c| c.deadline).min();
        match (conns, self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn accept_all(&mut self) {
        self.backlog_waiting = false;
        for _ in 0..4096 {
            if self.conns.len() >= self.max_conns {
                // Left in the backlog until a connection closes.
                self.backlog_waiting = true;
                return;
            }
            let (stream, peer) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                        // Out of descriptors: the client waits in the
                        // backlog; tried again shortly or when one closes.
                        log::debug!("accept: {e}; trying again later");
                        self.backlog_waiting = true;
                        self.accept_retry = Some(Instant::now() + ACCEPT_RETRY);
                    } else {
                        log::warn!("accept failed: {e}");
                    }
                    return;
                }
            };
            if !self.acl.allows(peer.ip()) {
                // Stock's words and tag, for log readers that match them.
                log::error!(target: "dcc_check_client", "connection from client '{peer}' denied by access list");
                continue;
            }
            self.stats.tcp_accept += 1;
            if self.conns.len() >= MAX_CONNECTIONS {
                self.stats.rej_overload += 1;
                log::warn!("client: {peer} REJ_OVERLOAD: {MAX_CONNECTIONS} connections open");
                continue;
            }
            // The reply goes out at once (its head corked until the object
            // follows, see connection.rs); no reason to wait for ACKs.
            let _ = stream.set_nodelay(true);
            let id = self.next_id;
            self.next_id += 1;
            let mut conn = Connection::new(id, stream, peer, self.limits);
            if let Some(s) = conn.stream.as_mut()
                && let Err(e) = self
                    .poll
                    .registry()
                    .register(s, Token(id), Interest::READABLE)
            {
                log::warn!("register {peer}: {e}");
                continue;
            }
            conn.deadline = Some(Instant::now() + self.cfg.io_timeout);
            log::debug!("client: {peer} TCP_ACCEPT");
            self.conns.insert(id, conn);
            // Data may already be waiting (edge-triggered registration).
            self.readable(id);
        }
    }

    fn readable(&mut self, id: usize) {
        if self.must_wait_for_memory(id) {
            if let Some(conn) = self.conns.get_mut(&id) {
                // Waiting on us, not on the client: no I/O deadline.
                conn.deadline = None;
            }
            if !self.paused.contains(&id) {
                self.paused.push_back(id);
            }
            return;
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let step = conn.on_readable(&mut self.scratch, &self.cfg);
        if conn.is_io_phase() {
            conn.deadline = Some(Instant::now() + self.cfg.io_timeout);
        }
        self.apply(id, step);
    }

    /// Whether reading more of `id`'s request must wait: the unfinished
    /// requests of all connections together hold `cfg.request_memory`
    /// bytes or more (so many clients sending at once, or a hostile one,
    /// cannot exhaust the daemon's memory). The connection that holds the
    /// most may always go on, so one request can always complete.
    fn must_wait_for_memory(&self, id: usize) -> bool {
        let Some(conn) = self.conns.get(&id) else {
            return false;
        };
        if !conn.is_reading() {
            return false;
        }
        let held: u64 = self.conns.values().map(Connection::held).sum();
        if held < self.cfg.request_memory {
            return false;
        }
        let most = self
            .conns
            .values()
            .filter(|c| c.is_reading())
            .map(Connection::held)
            .max()
            .unwrap_or(0);
        conn.held() < most || most == 0
    }

    /// Reads again from paused connections while memory allows (each is
    /// paused again by `readable` if it does not).
    fn resume_paused(&mut self) {
        for _ in 0..self.paused.len() {
            let Some(id) = self.paused.pop_front() else {
                break;
            };
            if !self.conns.contains_key(&id) {
                continue;
            }
            if self.must_wait_for_memory(id) {
                self.paused.push_back(id);
                continue;
            }
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.deadline = Some(Instant::now() + self.cfg.io_timeout);
            }
            // Edge-triggered: whatever arrived meanwhile is read now.
            self.readable(id);
        }
    }

    fn writable(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let step = conn.on_writable();
        conn.deadline = Some(Instant::now() + self.cfg.io_timeout);
        self.apply(id, step);
    }

    fn apply(&mut self, id: usize, step: Step) {
        match step {
            Step::Continue => {}
            Step::Queued => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.deadline = None;
                }
                self.queue.push_back(id);
            }
            Step::Close(why) => {
                if let Some(c) = self.conns.get(&id) {
                    log::warn!("client: {} closed: {why}", c.peer);
                }
                self.close(id);
            }
            Step::Refuse {
                why,
                refusal,
                ret,
                error,
            } => {
                if let Some(c) = self.conns.get(&id) {
                    match refusal {
                        Refusal::BadRequest => self.stats.rej_bad_req += 1,
                        Refusal::NotServed => {
                            self.stats.record(JobResult::Other, Duration::ZERO, "", "")
                        }
                        Refusal::ClientLeft => {
                            self.stats
                                .record(JobResult::CliDisconn, Duration::ZERO, "", "")
                        }
                    }
                    let level = if error {
                        log::Level::Error
                    } else {
                        log::Level::Warn
                    };
                    log::log!(level, "client: {} closed: {why}", c.peer);
                    let peer = super::summary::peer_name(Some(&c.peer));
                    super::summary::log_refused(&peer, refusal, ret, c.accepted.elapsed());
                }
                self.close(id);
            }
            Step::Finished => self.close(id),
            Step::ClientGone => self.client_gone(id),
        }
    }

    fn client_gone(&mut self, id: usize) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let Some(mut s) = conn.stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        match &mut conn.phase {
            Phase::Compiling { control, kill_sent } => {
                log::warn!("client {} disconnected, killing its compiler", conn.peer);
                control.stop(Stop::ClientGone, libc::SIGTERM);
                *kill_sent = Some(Instant::now());
                conn.deadline = Some(Instant::now() + KILL_GRACE);
            }
            Phase::WritingReply { .. } => {
                log::warn!("client {} closed before reading the whole reply", conn.peer);
                self.close(id);
            }
            _ => {
                log::warn!("client: {} CLI_DISCONN before its job ran", conn.peer);
                self.stats
                    .record(JobResult::CliDisconn, Duration::ZERO, "", "");
                self.close(id);
            }
        }
    }

    fn close(&mut self, id: usize) {
        if let Some(mut conn) = self.conns.remove(&id)
            && let Some(mut s) = conn.stream.take()
        {
            let _ = self.poll.registry().deregister(&mut s);
        }
    }

    fn expire(&mut self, now: Instant) {
        let due: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            match &mut conn.phase {
                Phase::Compiling { control, kill_sent } => match kill_sent {
                    None => {
                        log::warn!("job of {} exceeded --job-lifetime, killing", conn.peer);
                        control.stop(Stop::Lifetime, libc::SIGTERM);
                        *kill_sent = Some(now);
                        conn.deadline = Some(now + KILL_GRACE);
                    }
                    Some(_) => {
                        control.stop(Stop::Lifetime, libc::SIGKILL);
                        conn.deadline = Some(now + KILL_GRACE);
                    }
                },
                _ => {
                    log::warn!("client: {} IO timeout, closing", conn.peer);
                    self.close(id);
                }
            }
        }
    }

    fn dispatch(&mut self) {
        while self.running < self.jobs {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            if !matches!(conn.phase, Phase::WaitingForSlot(_)) {
                continue;
            }
            let placeholder = Phase::Compiling {
                control: Arc::default(),
                kill_sent: None,
            };
            let Phase::WaitingForSlot(task) = std::mem::replace(&mut conn.phase, placeholder)
            else {
                continue;
            };
            conn.phase = Phase::Compiling {
                control: Arc::clone(&task.control),
                kill_sent: None,
            };
            conn.deadline = self.cfg.job_lifetime.map(|l| Instant::now() + l);
            if let Some(pool) = &self.pool {
                pool.submit(*task);
                self.running += 1;
            }
        }
        self.stats.sample(self.running);
    }

    fn collect_results(&mut self) {
        while let Ok(outcome) = self.results.try_recv() {
            self.running = self.running.saturating_sub(1);
            self.finish(outcome);
        }
    }

    fn finish(&mut self, o: Outcome) {
        let Some(conn) = self.conns.get_mut(&o.id) else {
            return;
        };
        let result = if conn.stream.is_none() {
            JobResult::CliDisconn
        } else {
            o.result
        };
        super::summary::log(&super::summary::peer_name(Some(&conn.peer)), result, &o);
        self.stats.record(result, o.elapsed, &o.input, &o.compiler);
        match (o.reply, conn.stream.as_mut()) {
            (Some(reply), Some(stream)) => {
                if let Err(e) = self.poll.registry().reregister(
                    stream,
                    Token(o.id),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    log::warn!("reregister: {e}");
                }
                conn.phase = Phase::WritingReply {
                    buf: reply.bytes,
                    pos: 0,
                    file: reply.file,
                    sent: 0,
                };
                conn.deadline = Some(Instant::now() + self.cfg.io_timeout);
                self.writable(o.id);
            }
            _ => self.close(o.id),
        }
    }

    fn serve_stats(&mut self) {
        let Some(listener) = self.stats_listener.as_ref() else {
            return;
        };
        for _ in 0..4096 {
            let Ok((stream, peer)) = listener.accept() else {
                return;
            };
            if !self.acl.allows(peer.ip()) {
                continue;
            }
            // The page is built here (it needs the counters); the slow part,
            // waiting for the request and sending, runs off the loop so a
            // silent stats client cannot stall compiles.
            if self.stats_senders.load(Ordering::Relaxed) >= MAX_STATS_SENDERS {
                log::debug!("stats request from {peer} dropped: too many at once");
                continue;
            }
            let page = self.stats.page(&self.cfg.tmpdir);
            let senders = Arc::clone(&self.stats_senders);
            senders.fetch_add(1, Ordering::Relaxed);
            let spawned = std::thread::Builder::new()
                .name("stats".into())
                .spawn(move || {
                    send_stats(stream, &page);
                    senders.fetch_sub(1, Ordering::Relaxed);
                });
            if spawned.is_err() {
                self.stats_senders.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Stops every job, waits (bounded) for the workers, removes nothing
    /// else: job directories are removed by the workers themselves.
    fn shutdown(&mut self) {
        for conn in self.conns.values() {
            if let Phase::Compiling { control, .. } = &conn.phase {
                control.stop(Stop::Shutdown, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + KILL_GRACE;
        while self.running > 0 && Instant::now() < deadline {
            if let Ok(o) = self.results.recv_timeout(Duration::from_millis(100)) {
                self.running -= 1;
                drop(o);
            }
        }
        if self.running > 0 {
            for conn in self.conns.values() {
                if let Phase::Compiling { control, .. } = &conn.phase {
                    control.stop(Stop::Shutdown, libc::SIGKILL);
                }
            }
        }
        self.queue.clear();
        self.conns.clear();
        // The job directories and the pump store go after the exit.
        super::deferred_removal::defer();
        if let Some(pool) = self.pool.take() {
            pool.join();
        }
    }
}

fn send_stats(stream: mio::net::TcpStream, page: &str) {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: the fd comes from into_raw_fd and is owned by the new stream.
    let mut s = unsafe { std::net::TcpStream::from_raw_fd(stream.into_raw_fd()) };
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    let mut req = [0u8; 1024];
    let n = s.read(&mut req).unwrap_or(0);
    let _ = s.write_all(super::metrics::answer(&req[..n], page).as_bytes());
}
