//! The distcc client front end: options, the three invocation modes, logging.
//!
//! `distcc --help | --version | --show-hosts | -j` answer and exit;
//! `distcc --scan-includes CMD` prints the pump-mode file list;
//! `distcc COMPILER ARGS` is explicit mode, `distcc -c x.c` (first word an
//! option, a source or a `.o`) is implicit mode with `cc`; any other program
//! name is masquerade mode (facts §4.1, §4.6). The environment is read once
//! into a [`ClientEnv`] after masquerade PATH trimming, logging goes where
//! `DISTCC_LOG` / `UNCACHED_ERR_FD` say, and [`build::Build`] does the work.

mod build;
mod job_log;
mod local;
mod masquerade;
mod pick;
mod pump;
mod remote;
mod settle;
mod transport;
mod working_dir;

use distcc::applet::{Applet, Invocation};
use distcc::args::extensions::is_source;
use distcc::env::ClientEnv;
use distcc::logging::{self, Destination, LevelFilter};
use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

const VERSION: &str = "3.4";

/// The `--version` text; the first two lines are what scripts match.
pub fn version_text(program: &str) -> String {
    format!(
        "{program} {VERSION} {host}\n  (protocols 1, 2 and 3) (default port 3632)\n  built as part of the distcc Rust rewrite {ours}\n\
Copyright (C) 2002, 2003, 2004 by Martin Pool.\nIncludes an LZO1X implementation.\nPortions Copyright (C) 2007-2008 Google.\n\n\
{program} comes with ABSOLUTELY NO WARRANTY.  {program} is free software, and\nyou may use, modify and redistribute it under the terms of the GNU \nGeneral Public License version 2 or later.\n\n",
        host = distcc::args::cross::gnu_host(),
        ours = env!("CARGO_PKG_VERSION"),
    )
}

const USAGE: &str = "Usage:
   distcc [--scan-includes] [COMPILER] [compile options] -o OBJECT -c SOURCE
   distcc [--help|--version|--show-hosts|-j]
   distcc --install-links [--compilers] DIR
   distcc APPLET [ARGS...]    (APPLET: distccd, pump, distcc-pump, lsdistcc,
                              include-server, distccmon-text)

Options:
   COMPILER                   Defaults to \"cc\".
   --help                     Explain usage, and exit.
   --version                  Show version, and exit.
   --show-hosts               Show host list, and exit.
   -j                         Show the concurrency level, as calculated from
                              the host list, and exit.
   --scan-includes            Show the files that distcc would send to the
                              remote machine, and exit.  (Pump mode only.)
   --show-principal           Print stock's GSS-API principal line, and exit.
                              (GSS-API is not supported by this build.)
   --install-links DIR        Make links to this binary in DIR, named
                              distcc, distccd, pump, distcc-pump, lsdistcc,
                              include-server and distccmon-text, and exit.
   --install-links --compilers DIR
                              Make links named as the compilers here (gcc,
                              g++, cc, c++, ...), to masquerade as them.
   The binary is every applet above, by the name it runs under, or as
   `distcc APPLET ARGS...`: one static file is a whole build server.

Environment variables:
   See the manual page for a complete list.
   DISTCC_VERBOSE=1           Give debug messages.
   DISTCC_LOG                 Send messages to file, not stderr.
   DISTCC_SSH                 Command to run to open SSH connections.
   DISTCC_DIR                 Directory for host list and locks.

Server specification:
A list of servers is taken from the environment variable $DISTCC_HOSTS, or
$DISTCC_DIR/hosts, or ~/.distcc/hosts, or /etc/distcc/hosts.
Each host can be given in any of these forms, see the manual for details:

   localhost                  Run in place.
   HOST                       TCP connection, port 3632.
   HOST:PORT                  TCP connection, specified port.
   @HOST                      SSH connection to specified host.
   USER@HOST                  SSH connection to specified username at host.
   HOSTSPEC,lzo               Enable compression.
   HOSTSPEC,cpp,lzo           Use pump mode (remote preprocessing).
   HOSTSPEC,auth              Enable GSS-API based mutual authenticaton
                              (parsed; not supported by this build).
   --randomize                Randomize the server list before execution.

distcc distributes compilation jobs across volunteer machines running
distccd.  Jobs that cannot be distributed, such as linking, are run locally.
distcc should be used with make's -jN option to execute in parallel on
several machines.
";

/// What the command line asks for.
enum Action {
    Help,
    Version,
    ShowHosts,
    ShowPrincipal,
    Concurrency,
    Compile { argv: Vec<OsString>, scan: bool },
}

fn missing(what: &str) -> Error {
    Error::new(
        Kind::BadArguments,
        format!("{what}\nTry `distcc --help' for more information."),
    )
}

/// Inserts `cc` when the first word is not a compiler (facts §4.1).
fn with_compiler(mut args: Vec<OsString>) -> Vec<OsString> {
    if let Some(first) = args.first() {
        let b = first.as_encoded_bytes();
        if b.starts_with(b"-") || is_source(first) || b.ends_with(b".o") {
            args.insert(0, OsString::from("cc"));
        }
    }
    args
}

fn parse_client_args(args: Vec<OsString>) -> Result<Action> {
    let Some(first) = args.first() else {
        return Err(missing("missing option/operand"));
    };
    Ok(match first.to_str() {
        Some("--help") => Action::Help,
        Some("--version") => Action::Version,
        Some("--show-hosts") => Action::ShowHosts,
        Some("--show-principal") => Action::ShowPrincipal,
        Some("-j") => Action::Concurrency,
        Some("--scan-includes") => {
            let rest: Vec<OsString> = args[1..].to_vec();
            if rest.is_empty() {
                return Err(missing("missing operand"));
            }
            Action::Compile {
                argv: with_compiler(rest),
                scan: true,
            }
        }
        _ => Action::Compile {
            argv: with_compiler(args),
            scan: false,
        },
    })
}

fn setup_logging(env: &ClientEnv) {
    let verbose = env.verbose;
    if let Some(path) = &env.log {
        match logging::open_log_file(path) {
            Ok(f) => {
                let level = if verbose {
                    LevelFilter::Debug
                } else {
                    LevelFilter::Info
                };
                logging::init("distcc", level, Destination::File(f));
                crate::LOGS_ELSEWHERE.store(true, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "distcc[{}] ERROR: failed to open logfile {}: {e}",
                    std::process::id(),
                    path.display()
                );
            }
        }
    }
    let level = if verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Warn
    };
    if let Some(fd) = env.uncached_err_fd {
        // SAFETY: dup of a descriptor number given to us; failure is checked.
        let copy = unsafe { libc::dup(fd) };
        if copy >= 0 {
            // SAFETY: `copy` is a fresh descriptor that we own.
            let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(copy) };
            logging::init("distcc", level, Destination::File(f));
            crate::LOGS_ELSEWHERE.store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        }
    }
    logging::init("distcc", level, Destination::Stderr);
}

/// Runs the client applet (`distcc ...` or a masquerade name).
pub fn main(mut inv: Invocation) -> Result<ExitCode> {
    // Response files first, as stock 3.4 does (libiberty's expandargv):
    // the server could not read them.
    inv.args = distcc::args::response::expand(std::mem::take(&mut inv.args));
    let (action, trimmed) = if inv.applet == Applet::Masquerade {
        let path = std::env::var_os("PATH");
        let t = masquerade::trim(&inv.argv0, path.as_deref());
        if let Some(p) = &t.path {
            // SAFETY: the client is single-threaded at this point; nothing
            // else reads or writes the environment concurrently.
            unsafe { std::env::set_var("PATH", p) };
        }
        let mut argv = vec![t.compiler];
        argv.extend(inv.args);
        (Action::Compile { argv, scan: false }, t.path.is_some())
    } else {
        (parse_client_args(inv.args)?, false)
    };
    let env = ClientEnv::from_process()?;
    // SAFETY: still single-threaded; nothing else touches the environment.
    unsafe { local::set_own_safeguard(env.safeguard) };
    setup_logging(&env);
    let mut out = std::io::stdout().lock();
    let code = match action {
        Action::Help => {
            let _ = write!(out, "{}{USAGE}", version_text("distcc"));
            0
        }
        Action::Version => {
            let _ = write!(out, "{}", version_text("distcc"));
            0
        }
        Action::ShowHosts => {
            match pick::load(&env) {
                Ok(Some(list)) => {
                    for h in &list.hosts {
                        let _ = writeln!(out, "{}", h.text);
                    }
                }
                Ok(None) => log::warn!("no hostlist is set"),
                Err(e) => log::error!("{e}; failed to get host list"),
            }
            0
        }
        Action::ShowPrincipal => {
            // Stock's GSS-API build answers this; scripts may ask. The
            // line is stock's; nothing here ever authenticates with it.
            match std::env::var_os("DISTCC_PRINCIPAL").filter(|p| !p.is_empty()) {
                Some(p) => {
                    let _ = writeln!(out, "Principal is\t: {}", p.to_string_lossy());
                }
                None => {
                    let _ = writeln!(out, "Principal\t: Not Set.");
                }
            }
            log::warn!(
                "GSS-API authentication is not supported by this build: DISTCC_PRINCIPAL and ,auth hosts are not used"
            );
            0
        }
        Action::Concurrency => {
            match pick::load(&env) {
                Ok(Some(list)) => {
                    let _ = writeln!(out, "{}", list.total_slots());
                }
                Ok(None) => log::warn!("no hostlist is set"),
                Err(e) => log::error!("{e}; failed to get host list"),
            }
            0
        }
        Action::Compile { argv, scan } => {
            drop(out);
            masquerade::check_recursion(env.safeguard, trimmed)?;
            let started = std::time::Instant::now();
            let code = build::Build::new(&env).run(argv, scan)?;
            if env.safeguard == 0 {
                job_log::elapsed(started.elapsed());
            }
            code
        }
    };
    Ok(ExitCode::from(code))
}
