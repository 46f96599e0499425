//! The binary root: choose the applet from argv[0], run it, and turn its
//! result into distcc's exit status.
//!
//! This is the only place where an error becomes a message on stderr and an
//! exit code (see `distcc::error`). Each applet sets up its own logging,
//! because each has its own log options.

mod client;
mod daemon;
mod include_server;
mod links;
mod lsdistcc;
mod monitor;
mod pump;

use distcc::applet::{self, Applet, Invocation};
use std::process::ExitCode;

fn main() -> ExitCode {
    let invocation = applet::select(std::env::args_os().collect());
    let applet = invocation.applet;
    let program = program_name(applet);
    match run(invocation) {
        Ok(code) => code,
        // pump is a shell script in stock: it says `pump: error: ...` and
        // exits 1 when it cannot start the build.
        Err(err) if applet == Applet::Pump => {
            eprintln!("{program}: error: {err}");
            ExitCode::from(1)
        }
        Err(err) => {
            log::error!("{err}");
            // (Never into a connection: under inetd stderr is the client's.)
            let connection = applet == Applet::Daemon && daemon::stderr_is_socket();
            if (!log::log_enabled!(log::Level::Error) || logs_elsewhere()) && !connection {
                eprintln!("{program}: ERROR: {err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// Whether the installed logger writes somewhere other than stderr, so that a
/// fatal error must also be printed to stderr for the user to see it.
fn logs_elsewhere() -> bool {
    LOGS_ELSEWHERE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Set by an applet that sends its log to a file or syslog-like target.
pub static LOGS_ELSEWHERE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn program_name(applet: Applet) -> &'static str {
    match applet {
        Applet::Client | Applet::Masquerade => "distcc",
        Applet::Daemon => "distccd",
        Applet::Pump => "pump",
        Applet::Lsdistcc => "lsdistcc",
        Applet::IncludeServer => "include-server",
        Applet::Monitor => "distccmon-text",
        Applet::InstallLinks => "distcc",
    }
}

fn run(inv: Invocation) -> distcc::Result<ExitCode> {
    match inv.applet {
        Applet::Client | Applet::Masquerade => client::main(inv),
        Applet::Daemon => daemon::main(inv),
        Applet::Pump => pump::main(inv),
        Applet::Lsdistcc => lsdistcc::main(inv),
        Applet::IncludeServer => include_server::main(inv),
        Applet::Monitor => monitor::main(inv),
        Applet::InstallLinks => links::main(inv),
    }
}
