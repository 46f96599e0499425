//! Log set-up for every applet, in distcc's line format.
//!
//! distcc writes `distcc[<pid>] (<where>) <Severity prefix><message>` with
//! prefixes `ERROR: `, `Warning: ` and none below warning (facts §4.9). The
//! client logs to `DISTCC_LOG`, else the fd in `UNCACHED_ERR_FD`, else stderr,
//! and only warnings unless `DISTCC_VERBOSE=1`; the daemon has `--log-file`,
//! `--log-stderr`, `--log-level` and `--verbose`. Callers decide the
//! destination; this module only formats and installs the logger.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub use log::LevelFilter;

/// Where log lines go.
pub enum Destination {
    /// Standard error.
    Stderr,
    /// An already open file or descriptor, appended to.
    File(File),
}

/// Opens `path` for appending (mode 0666 & umask, as distcc does).
pub fn open_log_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o666)
        .open(path)
}

/// Parses a distccd `--log-level` word. Unknown words give `None` (stock only warns).
pub fn parse_level(word: &str) -> Option<LevelFilter> {
    Some(match word.to_ascii_lowercase().as_str() {
        "emerg" | "emergency" | "alert" | "crit" | "critical" | "err" | "error" => {
            LevelFilter::Error
        }
        "warn" | "warning" => LevelFilter::Warn,
        "note" | "notice" | "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        _ => return None,
    })
}

/// Installs the process-wide logger. `program` is `distcc` or `distccd` and
/// so on. A second call is ignored (tests may call it repeatedly).
pub fn init(program: &'static str, level: LevelFilter, dest: Destination) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    builder.format(move |buf, record| {
        // Asked per line: a daemon that detaches (forks) after the logger
        // is installed logs under its own pid, the one in its pid file.
        let pid = std::process::id();
        let prefix = match record.level() {
            log::Level::Error => "ERROR: ",
            log::Level::Warn => "Warning: ",
            _ => "",
        };
        let target = record.target();
        let short = target.rsplit("::").next().unwrap_or(target);
        writeln!(buf, "{program}[{pid}] ({short}) {prefix}{}", record.args())
    });
    match dest {
        Destination::Stderr => {
            builder.target(env_logger::Target::Stderr);
        }
        Destination::File(file) => {
            builder.target(env_logger::Target::Pipe(Box::new(file)));
        }
    }
    let _ = builder.try_init();
}

/// `argv` as one line a shell would split back into the same words (for
/// log lines): plain words as they are, others in single quotes.
pub fn command_line<S: AsRef<std::ffi::OsStr>>(argv: &[S]) -> String {
    let word = |w: &std::ffi::OsStr| {
        let w = w.to_string_lossy();
        let plain = !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=+/.,:@%^".contains(&b));
        if plain {
            w.into_owned()
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    argv.iter()
        .map(|a| word(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_back() {
        assert_eq!(
            command_line(&["gcc", "-DX=\"a b\"", "-c", "it's.c", ""]),
            "gcc '-DX=\"a b\"' -c 'it'\\''s.c' ''"
        );
    }

    #[test]
    fn daemon_level_words() {
        assert_eq!(parse_level("notice"), Some(LevelFilter::Info));
        assert_eq!(parse_level("WARNING"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("crit"), Some(LevelFilter::Error));
        assert_eq!(parse_level("debug"), Some(LevelFilter::Debug));
        assert_eq!(parse_level("chatty"), None);
    }
}
