//! `distccd --inetd`: one job over stdin/stdout (inetd, ssh, or a pipe),
//! then exit (facts §5.6).
//!
//! Blocking I/O on fd 0 and 1, the same decoder, checks and job runner as
//! the daemon. When stdin is an IP socket the access list applies; through
//! a pipe there is no peer address and it is skipped, as in stock; a socket
//! of another family (unix) is refused when `--allow` is given, as in stock. While
//! compiling, a socket is watched for a hang-up, and pipes for the end of
//! stdin or the reader of stdout going away (as stock, which takes the end
//! of stdin for a client gone: no client half-closes). The job is summed up in stock's
//! line, as in daemon mode (summary.rs).

use super::compiler::{Checked, Config};
use super::runner::{self, JobControl, JobResult, Stop, Task};
use super::summary::Refusal;
use distcc::acl::AccessList;
use distcc::protocol::{Request, RequestDecoder};
use distcc::{Error, Kind, Result};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

/// The peer address of fd 0, if it is an IP socket.
fn peer_of_stdin() -> Option<SocketAddr> {
    // SAFETY: getpeername into a zeroed sockaddr_storage of the given size.
    unsafe {
        let mut ss: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(0, (&mut ss as *mut libc::sockaddr_storage).cast(), &mut len) != 0 {
            return None;
        }
        match i32::from(ss.ss_family) {
            libc::AF_INET => {
                let sin = &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                let ip = IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                Some(SocketAddr::new(ip, u16::from_be(sin.sin_port)))
            }
            libc::AF_INET6 => {
                let sin6 = &*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                let ip = IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr));
                Some(SocketAddr::new(ip, u16::from_be(sin6.sin6_port)))
            }
            _ => None,
        }
    }
}

/// Whether fd 0 is a socket (stock's auto mode then means inetd).
pub fn stdin_is_socket() -> bool {
    // SAFETY: fstat into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(0, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    }
}

/// A client that goes away while its job runs gets its compiler killed,
/// as in daemon mode. On a socket (real inetd) that is a hang-up of fd 0.
/// Through pipes (ssh) it is the end of stdin, as for stock (no client
/// half-closes: when the client or its ssh dies, sshd closes the pipe and
/// nothing else tells), or the reader of stdout going away: nobody is left
/// to take the reply.
fn watch_for_hangup(
    control: Arc<JobControl>,
    done: Arc<std::sync::atomic::AtomicBool>,
    socket: bool,
) {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let mut scratch = [0u8; 4096];
        while !done.load(Ordering::Acquire) {
            let mut pfds = if socket {
                [
                    libc::pollfd {
                        fd: 0,
                        events: libc::POLLRDHUP,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: -1,
                        events: 0,
                        revents: 0,
                    },
                ]
            } else {
                [
                    // POLLERR is reported for a pipe whose reader is gone.
                    libc::pollfd {
                        fd: 1,
                        events: 0,
                        revents: 0,
                    },
                    // POLLHUP once the writer is gone; POLLIN for bytes
                    // after the request (read and dropped, or EOF).
                    libc::pollfd {
                        fd: 0,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ]
            };
            // SAFETY: poll on valid pollfds (fd -1 is ignored) for at most a second.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), 2, 1000) };
            let gone = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR;
            let mut hung_up = n > 0 && pfds.iter().any(|p| p.revents & gone != 0);
            if n > 0 && !socket && !hung_up && pfds[1].revents & libc::POLLIN != 0 {
                // SAFETY: read into our own buffer from stdin.
                let got = unsafe { libc::read(0, scratch.as_mut_ptr().cast(), scratch.len()) };
                hung_up = got == 0;
            }
            // A job that ended meanwhile was answered: its client may
            // hang up as it likes.
            if hung_up && !done.load(Ordering::Acquire) {
                log::warn!("client hung up, killing its compiler");
                control.stop(Stop::ClientGone, libc::SIGTERM);
                return;
            }
            // Not a descriptor that can be watched (closed): stop, rather
            // than spin on poll's instant answers.
            let interrupted =
                n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
            if (n < 0 && !interrupted) || pfds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
                return;
            }
        }
    });
}

/// Reads and checks the request on stdin; an error says whether the bytes
/// were not a request at all.
fn read_request(cfg: &Config) -> std::result::Result<(Request, Checked), (Error, Refusal)> {
    let mut decoder = RequestDecoder::new(super::compiler::request_limits());
    let mut checked = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut stdin = std::io::stdin().lock();
    let request = loop {
        let n = match stdin.read(&mut buf) {
            Ok(n) => n,
            Err(e) => return Err(client_left(&decoder, Error::io("reading stdin", e))),
        };
        if n == 0 {
            let e = Error::new(Kind::Truncated, "stdin ended before the request did");
            return Err(client_left(&decoder, e));
        }
        let req = decoder
            .feed(&buf[..n])
            .map_err(|e| (e, Refusal::BadRequest))?;
        let argv = match &req {
            Some(r) => Some(&r.argv[..]),
            None => decoder.argv(),
        };
        if checked.is_none()
            && let Some(argv) = argv
        {
            checked = Some(cfg.check(argv).map_err(|e| (e, Refusal::NotServed))?);
        }
        if let Some(r) = req {
            break r;
        }
    };
    let checked = checked.ok_or_else(|| {
        (
            Error::new(Kind::Protocol, "request without argv"),
            Refusal::BadRequest,
        )
    })?;
    Ok((request, checked))
}

/// A client that left before its request was whole
/// ([`Refusal::of_early_end`]).
fn client_left(decoder: &RequestDecoder, e: Error) -> (Error, Refusal) {
    match Refusal::of_early_end(decoder.in_body(), e.kind()) {
        (Refusal::ClientLeft, kind) => (
            Error::new(kind, format!("client left mid-request: {}", e.context())),
            Refusal::ClientLeft,
        ),
        (refusal, _) => (e, refusal),
    }
}

/// Serves one job on stdin/stdout.
pub fn serve(cfg: Arc<Config>, acl: &AccessList) -> Result<ExitCode> {
    let peer = peer_of_stdin();
    match peer {
        Some(addr) if !acl.allows(addr.ip()) => {
            return Err(Error::new(
                Kind::AccessDenied,
                format!("client {} not allowed", addr.ip()),
            ));
        }
        Some(addr) => log::debug!("inetd client {addr}"),
        // A socket of another family (a unix socket a service manager
        // accepted on) has no address to check: with --allow given it is
        // refused, as stock refuses it, rather than let any local user who
        // can reach the socket past the list.
        None if stdin_is_socket() && !acl.is_empty() => {
            return Err(Error::new(
                Kind::AccessDenied,
                "client on a socket that is not TCP: it cannot be checked against --allow",
            ));
        }
        None => log::debug!("stdin is not a socket: no access check (ssh, a pipe)"),
    }
    let started = std::time::Instant::now();
    let (request, checked) = match read_request(&cfg) {
        Ok(r) => r,
        Err((e, refusal)) => {
            // Logged, not printed: through ssh the daemon's stderr is the
            // user's terminal, and a client that drops the connection (its
            // own preprocessing failed) is routine.
            let peer = super::summary::peer_name(peer.as_ref());
            let level = if super::compiler::is_refused_compiler(&e) {
                log::Level::Error
            } else {
                log::Level::Warn
            };
            log::log!(level, "client: {peer} closed: {e}");
            super::summary::log_refused(&peer, refusal, e.exit_code(), started.elapsed());
            // A command refused here was served as it should be: exit 0, as
            // stock, so that a service manager (distccd@.service) does not
            // count every refused request as a failed instance.
            let refused = refusal == Refusal::NotServed && e.kind() == Kind::BadArguments;
            return Ok(ExitCode::from(if refused { 0 } else { e.exit_code() }));
        }
    };
    let control = Arc::new(JobControl::default());
    if let Some(limit) = cfg.job_lifetime {
        let c = Arc::clone(&control);
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            c.stop(Stop::Lifetime, libc::SIGTERM);
            std::thread::sleep(std::time::Duration::from_secs(3));
            c.stop(Stop::Lifetime, libc::SIGKILL);
        });
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    watch_for_hangup(Arc::clone(&control), Arc::clone(&done), stdin_is_socket());
    let task = Task {
        id: 0,
        version: request.version,
        cwd: request.cwd,
        checked,
        body: request.body,
        spliced: None,
        control,
    };
    let outcome = runner::run(task, &cfg, &mut super::jobdir::Slot::default());
    done.store(true, std::sync::atomic::Ordering::Release);
    super::summary::log(
        &super::summary::peer_name(peer.as_ref()),
        outcome.result,
        &outcome,
    );
    let Some(reply) = outcome.reply else {
        return Err(Error::new(
            Kind::Io,
            outcome.error.unwrap_or_else(|| "job failed".into()),
        ));
    };
    let reply = reply.into_bytes()?;
    let mut out = std::io::stdout().lock();
    out.write_all(&reply)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing stdout", e))?;
    Ok(match outcome.result {
        JobResult::CompileOk | JobResult::CompileError => ExitCode::SUCCESS,
        JobResult::CompileTimeout => ExitCode::from(Kind::Timeout.exit_code()),
        _ => ExitCode::from(Kind::Io.exit_code()),
    })
}
