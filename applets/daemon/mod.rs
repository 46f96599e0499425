//! The `distccd` applet: the build-server daemon.
//!
//! Startup follows stock's order (facts §5.1): options, nice, log, drop
//! root, `chdir($TMPDIR)`, PATH, `DISTCC_IO_TIMEOUT`, the masquerade
//! directory check, then either one inetd job on stdin/stdout or the
//! standalone daemon: bind, detach (the parent writes the pid file once the
//! socket listens), and the event loop of `server.rs` with its worker pool.
//! One deviation: the log file is opened before root is dropped, so a log
//! in a root-owned directory works.

mod compiler;
mod connection;
mod deferred_removal;
mod fsat;
mod inetd;
mod jobdir;
mod language;
mod line_prefix;
mod metrics;
mod nonblocking;
mod options;
mod pool;
mod process;
mod pump_root;
mod pump_store;
mod reply;
mod rewrite;
mod runner;
mod server;
mod source_feed;
mod spawn;
mod spliced;
mod startup;
mod stats;
mod summary;
mod syslog;
mod traits;

use compiler::Config;
use distcc::acl::AccessList;
use distcc::applet::Invocation;
use distcc::logging::{self, Destination};
use distcc::{Error, Kind, Result};
use options::{Mode, Options, Request};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The version block (first two lines as stock, facts §4.1).
fn version_text() -> String {
    format!(
        "distccd 3.4 x86_64-pc-linux-gnu\n  (protocols 1, 2 and 3) (default port 3632)\n  \
         built from the Rust rewrite, version {}\n\
         Copyright (C) 2002, 2003, 2004 by Martin Pool.\n\
         Portions Copyright (C) 2007-2008 Google.\n\n\
         distcc comes with ABSOLUTELY NO WARRANTY.  distcc is free software, and\n\
         you may use, modify and redistribute it under the terms of the GNU\n\
         General Public License version 2 or later.\n",
        env!("CARGO_PKG_VERSION")
    )
}

const USAGE: &str = "Usage:
   distccd [OPTIONS]
   distcc distccd [OPTIONS]   (the same binary, without a distccd link)
   distcc --inetd [OPTIONS]   (as `@host:/path/to/distcc` runs it over ssh)

Options:
    --help                     explain usage and exit
    --version                  show version and exit
    -P, --pid-file FILE        save daemon process id to file
    -N, --nice LEVEL           lower priority, 20=most nice
    --user USER                if run by root, change to this persona
    --jobs, -j LIMIT           maximum tasks at any time (1..1000; default:
                               number of CPUs + 2)
    --job-lifetime SECONDS     maximum lifetime of a compile request
  Networking:
    -p, --port PORT            TCP port to listen on
    --listen ADDRESS           IP address to listen on
    -a, --allow IP[/BITS]      client address access control (or a host name)
    --allow-private            allow loopback and the private networks
    --stats                    enable statistics reporting via HTTP server
    --stats-port PORT          TCP port to listen on for statistics requests
    --enable-tcp-insecure      accept any compiler (no masquerade whitelist)
  Debug and trace:
    --log-level=LEVEL          set detail level for log file
      levels: critical, error, warning, notice, info, debug
    --verbose                  set log level to \"debug\"
    --no-detach                don't detach from parent (for daemontools, etc)
    --log-file=FILE            send messages here instead of syslog
    --log-stderr               send messages to stderr
    --wizard                   for running under gdb
  Mode of operation:
    --inetd                    serve client connected to stdin
    --daemon                   bind and listen on socket

distccd runs either from inetd or as a standalone daemon to compile
files submitted by the distcc client.

distccd should only run on trusted networks.
";

/// Runs the applet.
pub fn main(inv: Invocation) -> Result<ExitCode> {
    match options::parse(&inv.args)? {
        Request::Help => {
            print!("{}\n{USAGE}", version_text());
            Ok(ExitCode::SUCCESS)
        }
        Request::Version => {
            print!("{}", version_text());
            Ok(ExitCode::SUCCESS)
        }
        Request::Serve(opts) => serve(*opts),
    }
}

fn open_log(o: &Options) -> Result<()> {
    let elsewhere = || crate::LOGS_ELSEWHERE.store(true, std::sync::atomic::Ordering::Relaxed);
    // Under a classic inetd, stderr is the client's connection: nothing may
    // be written there (stock logs to syslog then).
    let stderr_usable = !stderr_is_socket();
    match &o.log_file {
        Some(path) => match logging::open_log_file(path) {
            Ok(f) => {
                elsewhere();
                logging::init("distccd", o.log_level, Destination::File(f));
            }
            Err(e) => {
                // As stock: said, and the daemon serves, logging to syslog
                // (an ssh host's wrapper with a bad --log-file lost every job).
                if stderr_usable {
                    eprintln!("distccd: ERROR: failed to open {}: {e}", path.display());
                }
                elsewhere();
                syslog::init(o.log_level);
                log::error!("failed to open {}: {e}; logging to syslog", path.display());
            }
        },
        None if o.log_stderr && stderr_usable => {
            logging::init("distccd", o.log_level, Destination::Stderr)
        }
        None => {
            elsewhere();
            syslog::init(o.log_level);
        }
    }
    for name in &o.ignored {
        log::info!("{name} accepted for compatibility; it has no effect here");
    }
    if let Some(word) = &o.bad_log_level {
        log::warn!("invalid --log-level {word:?}, using notice");
    }
    Ok(())
}

/// Whether fd 2 is a socket (inetd gives the connection as 0, 1 and 2).
pub fn stderr_is_socket() -> bool {
    // SAFETY: fstat into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(2, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    }
}

fn config(o: &Options, tmpdir: PathBuf) -> Result<Config> {
    let io_timeout = match std::env::var("DISTCC_IO_TIMEOUT") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Duration::from_secs(n),
            _ => {
                return Err(Error::new(
                    Kind::BadArguments,
                    format!("DISTCC_IO_TIMEOUT={v}: must be a positive number"),
                ));
            }
        },
        Err(_) => Duration::from_secs(300),
    };
    let cmdlist_words = std::env::var("DISTCC_CMDLIST_NUMWORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let cmdlist = match std::env::var_os("DISTCC_CMDLIST") {
        Some(p) => Some(Config::load_cmdlist(&p, cmdlist_words)?),
        None => None,
    };
    // Only DISTCCD_PATH changes the compilers' PATH.
    let path = std::env::var_os("DISTCCD_PATH");
    log::debug!(
        "compiler PATH: {}",
        path.clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default()
            .to_string_lossy()
    );
    let safeguard = std::env::var("_DISTCC_SAFEGUARD")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
        + 1;
    let request_memory = match std::env::var("DISTCCD_REQUEST_MEMORY") {
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(Error::new(
                    Kind::BadArguments,
                    format!("DISTCCD_REQUEST_MEMORY={v}: must be a positive number of bytes"),
                ));
            }
        },
        Err(_) => compiler::DEFAULT_REQUEST_MEMORY.max(o.jobs as u64 * (32 << 20)),
    };
    Ok(Config {
        tmpdir,
        insecure: o.insecure,
        cmdlist,
        cmdlist_words,
        path,
        safeguard: safeguard.to_string(),
        io_timeout,
        job_lifetime: (o.job_lifetime > 0).then(|| Duration::from_secs(o.job_lifetime)),
        request_memory,
        max_decompressed: 256 * 1024 * 1024,
        save_temps: std::env::var("DISTCC_SAVE_TEMPS").is_ok_and(|v| v == "1"),
        compilers: Default::default(),
    })
}

fn access_list(o: &Options, inetd: bool) -> Result<AccessList> {
    let mut acl = AccessList::parse(&o.allow)?;
    if o.allow_private {
        acl.add_private();
    }
    if acl.is_empty() && !inetd {
        log::info!("no --allow option specified: allowing loopback and private networks only");
        acl = AccessList::private();
    }
    Ok(acl)
}

/// Connections the kernel queues for us (stock listens with 1024 too):
/// under a small descriptor limit a burst waits there (server.rs).
const LISTEN_BACKLOG: libc::c_int = 1024;

fn bind(addr: IpAddr, port: u16) -> Result<mio::net::TcpListener> {
    listen_on(SocketAddr::new(addr, port)).map_err(|e| {
        Error::new(
            Kind::BindFailed,
            format!("failed to bind {addr} port {port}: {e}"),
        )
    })
}

/// A non-blocking listening socket on `at` with [`LISTEN_BACKLOG`] (mio's
/// and std's bind listen with 128).
fn listen_on(at: SocketAddr) -> std::io::Result<mio::net::TcpListener> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let family = if at.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) with constant arguments; the result is checked and
    // owned at once.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live int and its size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    // SAFETY: zeroed sockaddr structs are valid; each is filled for its
    // family and passed with its own size.
    let bound = unsafe {
        match at {
            SocketAddr::V4(v4) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_port = v4.port().to_be();
                sa.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            SocketAddr::V6(v6) => {
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = v6.port().to_be();
                sa.sin6_addr.s6_addr = v6.ip().octets();
                sa.sin6_flowinfo = v6.flowinfo();
                sa.sin6_scope_id = v6.scope_id();
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    // SAFETY: listen on the socket we own.
    if bound != 0 || unsafe { libc::listen(fd, LISTEN_BACKLOG) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let std_listener = std::net::TcpListener::from(socket);
    Ok(mio::net::TcpListener::from_std(std_listener))
}

fn serve(o: Options) -> Result<ExitCode> {
    startup::nice(o.nice);
    startup::keep_freed_memory();
    open_log(&o)?;
    let tmpdir = std::env::var_os("TMPDIR")
        .filter(|t| !t.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    // A relative pid file is in TMPDIR, where stock (which changes there
    // first) puts it; named in full, it is removed at exit from anywhere.
    let pid_path = o.pid_file.as_ref().map(|p| tmpdir.join(p));
    let pid_file = match &pid_path {
        Some(p) if o.mode != Mode::Inetd => Some(startup::PidFile::open(p)?),
        _ => None,
    };
    // Only a file this start made is handed to the daemon user.
    let owned: Vec<&std::fs::File> = pid_file
        .iter()
        .filter(|p| p.created())
        .map(|p| &p.file)
        .collect();
    startup::drop_root(o.user.as_deref(), &owned)?;
    std::env::set_current_dir(&tmpdir)
        .map_err(|e| Error::io(format!("chdir {}", tmpdir.display()), e))?;
    startup::check_work_dir(&tmpdir)?;
    let cfg = Arc::new(config(&o, tmpdir)?);
    if !o.insecure && cfg.cmdlist.is_none() && !compiler::whitelist_dir_exists() {
        return Err(Error::new(
            Kind::CompilerMissing,
            format!(
                "{} not found: install distcc's masquerade directory or use --enable-tcp-insecure",
                compiler::WHITELIST_DIRS[0]
            ),
        ));
    }
    let inetd = match o.mode {
        Mode::Inetd => true,
        Mode::Daemon => false,
        Mode::Auto => inetd::stdin_is_socket(),
    };
    let acl = access_list(&o, inetd)?;
    if inetd {
        startup::set_lifetime(o.lifetime);
        return inetd::serve(cfg, &acl);
    }
    let addr: IpAddr = match &o.listen {
        Some(a) => listen_address(a)?,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let listener = bind(addr, o.port)?;
    let stats = if o.stats {
        Some(bind(addr, o.stats_port)?)
    } else {
        None
    };
    // Hundreds of connections and their compilers must fit.
    distcc::fd_limit::raise();
    // Handlers first: a SIGTERM right after the parent reports the pid must
    // still go through the clean shutdown (pid file removed).
    let signals = startup::signal_pipe()?;
    if o.detach {
        startup::detach(pid_file)?;
    } else if let Some(mut file) = pid_file {
        file.write(std::process::id())?;
    }
    startup::set_lifetime(o.lifetime);
    log::info!(
        "listening on {addr} port {} with {} job slots",
        o.port,
        o.jobs
    );
    let mut server = server::Server::new(listener, stats, signals, o.jobs, cfg, acl)?;
    let result = server.run();
    drop(server);
    deferred_removal::finish();
    if let Some(p) = &pid_path {
        let _ = std::fs::remove_file(p);
    }
    let server::Stopped(sig) = result?;
    startup::reraise(sig)
}

/// The address `--listen` names: an IP address, or a host name resolved as
/// stock resolves it (its first address).
fn listen_address(name: &str) -> Result<IpAddr> {
    if let Ok(ip) = name.parse() {
        return Ok(ip);
    }
    distcc::name_service::use_builtin_sources();
    use std::net::ToSocketAddrs;
    (name, 0u16)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(|a| a.ip())
        .ok_or_else(|| {
            Error::new(
                Kind::BadArguments,
                format!("--listen {name}: not an IP address or a host name that resolves"),
            )
        })
}
