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
}

/// Stock options we accept and ignore: (name, takes a value).
const IGNORED: &[(&str, bool)] = &[
    ("-e", false),
    ("--email", false),
    ("--no-email", false),
    ("--email_bound", true),
    ("--path_observation_re", true),
    ("-s", false),
    ("--statistics", false),
    ("-t", false),
    ("--time", false),
    ("-v", false),
    ("--verify", false),
    ("-w", false),
    ("--write_include_closure", false),
    ("-x", false),
    ("--exact_analysis", false),
    ("--simple_algorithm", false),
];

/// Options of [`Opts`] that take a value, in argh's spelling.
const VALUED: &[&str] = &[
    "--port",
    "--pid-file",
    "--debug-pattern",
    "--stat-reset-triggers",
];

/// Rewrites `--opt=value` and `-dN` into separate words, stock's underscore
/// spellings (`--pid_file`) into argh's dashes, and drops the stock options
/// this server ignores, so argh sees only what it knows. An option given
/// twice counts once, the last one winning, as for stock's getopt (pump
/// passes `-d1` before INCLUDE_SERVER_ARGS, where a user's `-d7` goes).
pub fn normalise(args: &[OsString]) -> Vec<String> {
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        let (name, mut value) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ if a.starts_with("-d") && a.len() > 2 => ("-d".to_string(), Some(a[2..].to_string())),
            _ => (a.clone(), None),
        };
        if let Some(&(_, takes)) = IGNORED.iter().find(|(n, _)| *n == name) {
            if takes && value.is_none() {
                it.next();
            }
            continue;
        }
        let name = match name.as_str() {
            "-d" => "--debug-pattern".to_string(),
            n if n.starts_with("--") => n.replace('_', "-"),
            _ => name,
        };
        if value.is_none() && VALUED.contains(&name.as_str()) {
            value = it.next();
        }
        options.retain(|(n, _)| *n != name);
        options.push((name, value));
    }
    let mut out = Vec::new();
    for (name, value) in options {
        out.push(name);
        out.extend(value);
    }
    out
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
    let words = normalise(&inv.args);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_stock_forms() {
        let args: Vec<OsString> = [
            "--port=/s",
            "-d1",
            "--email_bound",
            "3",
            "-s",
            "--pid_file",
            "p",
            "--no_force_dirs",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            normalise(&args),
            vec![
                "--port",
                "/s",
                "--debug-pattern",
                "1",
                "--pid-file",
                "p",
                "--no-force-dirs"
            ]
        );
    }

    /// The last of a repeated option wins, as for stock's getopt (sweep O,
    /// D1: pump's `-d1` and the user's `-d7` in INCLUDE_SERVER_ARGS made
    /// the server refuse to start).
    #[test]
    fn the_last_of_a_repeated_option_wins() {
        let words = |a: &[&str]| normalise(&a.iter().map(OsString::from).collect::<Vec<_>>());
        for user in [
            &["-d7"][..],
            &["-d", "7"],
            &["--debug_pattern=7"],
            &["--debug-pattern", "7"],
        ] {
            let mut args = vec!["--port", "/s", "-d1"];
            args.extend(user);
            assert_eq!(
                words(&args),
                vec!["--port", "/s", "--debug-pattern", "7"],
                "{user:?}"
            );
            let refs: Vec<String> = words(&args);
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            let opts = Opts::from_args(&["include-server"], &refs)
                .unwrap_or_else(|e| panic!("{}", e.output));
            assert_eq!(opts.debug_pattern, 7);
        }
        assert_eq!(
            words(&["--no_force_dirs", "--no-force-dirs"]),
            vec!["--no-force-dirs"]
        );
    }
}
