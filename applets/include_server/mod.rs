//! The `include-server` applet: the native include server in the foreground.
//!
//! Options follow stock's include_server.py (facts §2.5): `--port PATH`
//! (required), `--pid_file F` (our pid, written once the socket is bound),
//! `-dN` (1 = warnings, more bits = more detail), `--no_force_dirs`,
//! `--unsafe_absolute_includes`, `--stat_reset_triggers` (accepted: user
//! files are revalidated by size, mtime and inode, and the compiler's own
//! include directories are watched, so every change is seen anyway); the
//! other stock options are accepted and ignored. `pump --startup` runs this
//! applet detached; `pump COMMAND` runs the same loop inside its own process.

pub mod event_loop;
pub mod signals;
mod stock_options;

use argh::FromArgs;
use distcc::applet::Invocation;
use distcc::includes::server::Options;
use distcc::logging::{Destination, LevelFilter};
use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(FromArgs)]
/// Include server for distcc's pump mode.
#[argh(
    note = "Stock's spellings work too: --port=PATH, --pid_file, --debug_pattern=N (or -dN),\n--stat_reset_triggers, --unsafe_absolute_includes, --no_force_dirs. Stock's\n-v/--verify, -w/--write_include_closure, -s/--statistics, -t/--time,\n-e/--email and -x/--exact_analysis are accepted and do nothing here (the log\nsays so at start)."
)]
struct Opts {
    /// path of the Unix socket to serve on
    #[argh(option)]
    port: String,
    /// file to write the server's pid to once it is ready
    #[argh(option)]
    pid_file: Option<String>,
    /// debug bits: 1 warnings, 2 and up more detail
    #[argh(option, short = 'd', default = "1")]
    debug_pattern: u32,
    /// globs whose change clears caches (accepted; caches revalidate anyway)
    #[argh(option)]
    stat_reset_triggers: Option<String>,
    /// ignore absolute includes (accepted; they are analysed instead)
    #[argh(switch)]
    unsafe_absolute_includes: bool,
    /// do not send forcing files for directories that must exist
    #[argh(switch)]
    no_force_dirs: bool,
    /// a stock option accepted that does nothing here (--verify, -w, ...):
    /// said in the log at start
    #[argh(option, hidden_help)]
    no_effect: Vec<String>,
}

/// The words argh reads for `args` given in stock's forms
/// ([`stock_options`]); `Ok(None)` asks for the help text.
pub fn normalise(args: &[OsString]) -> Result<Option<Vec<String>>> {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    stock_options::read(&words).map_err(|e| Error::new(Kind::BadArguments, e))
}

/// The log level for a `-d` debug pattern.
pub fn level_for(debug: u32) -> LevelFilter {
    match debug {
        0 => LevelFilter::Error,
        1 => LevelFilter::Warn,
        2..=3 => LevelFilter::Info,
        4..=15 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Runs the applet.
pub fn main(inv: Invocation) -> Result<ExitCode> {
    let words = normalise(&inv.args)?.unwrap_or_else(|| vec!["--help".into()]);
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let opts = match Opts::from_args(&["include-server"], &refs) {
        Ok(o) => o,
        Err(e) if e.status.is_ok() => {
            print!("{}", e.output);
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(Error::new(Kind::BadArguments, e.output.trim().to_string())),
    };
    if opts.stat_reset_triggers.is_some() || opts.unsafe_absolute_includes {
        // Accepted for compatibility: every change is seen anyway (see the
        // module header), and absolute includes are analysed.
    }
    distcc::logging::init(
        "include-server",
        level_for(opts.debug_pattern),
        Destination::Stderr,
    );
    for name in &opts.no_effect {
        log::warn!("--{name}: a stock include server option, accepted; it does nothing here");
    }
    signals::install();
    let stop = Arc::new(AtomicBool::new(false));
    let options = Options {
        no_force_dirs: opts.no_force_dirs,
    };
    let running = event_loop::start(std::path::Path::new(&opts.port), options, stop.clone())?;
    if let Some(pid_file) = &opts.pid_file {
        std::fs::write(pid_file, format!("{}\n", std::process::id()))
            .map_err(|e| Error::io(format!("write {pid_file}"), e))?;
    }
    log::info!(
        "include server ready on {} (root {})",
        opts.port,
        running.root().display()
    );
    signals::wait_for_stop();
    running.shutdown();
    Ok(ExitCode::SUCCESS)
}
