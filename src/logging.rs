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
///
/// A daemon started as root opens its log before it drops root, so a name
/// planted where another user can write must not lead it elsewhere: a
/// symlink is followed only when root owns it (`/dev/stderr`), and a
/// regular file with other hard links is refused.
pub fn open_log_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    let open = |follow: bool| {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o666)
            .custom_flags(if follow { 0 } else { libc::O_NOFOLLOW })
            .open(path)
    };
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let file = match open(!root) {
        Err(e) if root && e.raw_os_error() == Some(libc::ELOOP) => {
            let link = std::fs::symlink_metadata(path)?;
            if link.uid() != 0 {
                return Err(std::io::Error::other(format!(
                    "{} is a symlink owned by uid {}: not followed as root",
                    path.display(),
                    link.uid()
                )));
            }
            open(true)?
        }
        other => other?,
    };
    let meta = file.metadata()?;
    if root && meta.is_file() && meta.nlink() > 1 {
        return Err(std::io::Error::other(format!(
            "{} has {} hard links: not written as root",
            path.display(),
            meta.nlink()
        )));
    }
    Ok(file)
}

/// `message` with control characters shown as escapes, so that text a
/// client chose (a file name with a newline) cannot forge log lines.
fn escape_controls(message: &str) -> std::borrow::Cow<'_, str> {
    if !message.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
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

/// The log target of lines written without the `(where)` tag, as stock
/// writes some lines scripts read (`exec on HOST: ...`).
pub const NONAME: &str = "noname";

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
        let message = record.args().to_string();
        let message = escape_controls(&message);
        if target == NONAME {
            return writeln!(buf, "{program}[{pid}] {prefix}{message}");
        }
        writeln!(buf, "{program}[{pid}] ({short}) {prefix}{message}")
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
    fn control_characters_cannot_forge_lines() {
        assert_eq!(escape_controls("plain\ttab"), "plain\ttab");
        assert_eq!(
            escape_controls("x\nnewroot::0:0::/root:/bin/sh\r\u{1b}.c"),
            "x\\nnewroot::0:0::/root:/bin/sh\\r\\x1b.c"
        );
    }

    /// As root, a log name that is another user's symlink is not followed,
    /// and a file with other hard links is not written (sweep M, D7: the
    /// daemon appended as root to whatever a planted link named).
    #[test]
    fn a_root_log_never_follows_another_users_link() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let dir = std::env::temp_dir().join(format!("distcc-logopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let planted = dir.join("planted.log");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        std::os::unix::fs::lchown(&planted, Some(65534), Some(65534)).unwrap();
        assert!(open_log_file(&planted).is_err());
        let ours = dir.join("root.log");
        std::os::unix::fs::symlink(&victim, &ours).unwrap();
        assert!(open_log_file(&ours).is_ok(), "root's own link is followed");
        let linked = dir.join("hard.log");
        std::fs::hard_link(&victim, &linked).unwrap();
        assert!(open_log_file(&linked).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        let fresh = dir.join("fresh.log");
        assert!(open_log_file(&fresh).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
