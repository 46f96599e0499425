//! distccd's default log destination: syslog, facility daemon, as stock
//! does when neither `--log-file` nor `--log-stderr` is given (facts §5.1).
//!
//! A small `log::Log` that hands each record to libc's `syslog(3)` with
//! the matching priority; `openlog` adds the `distccd[pid]` tag.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::ffi::CString;

struct Syslog {
    level: LevelFilter,
}

impl Log for Syslog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let priority = match record.level() {
            Level::Error => libc::LOG_ERR,
            Level::Warn => libc::LOG_WARNING,
            Level::Info => libc::LOG_NOTICE,
            Level::Debug | Level::Trace => libc::LOG_DEBUG,
        };
        let target = record.target();
        let short = target.rsplit("::").next().unwrap_or(target);
        let text = format!("({short}) {}", record.args()).replace('\0', "\\0");
        if let Ok(msg) = CString::new(text) {
            // SAFETY: a constant "%s" format with one valid C string.
            unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
        }
    }

    fn flush(&self) {}
}

/// Installs the syslog logger (ignored if a logger is already installed).
pub fn init(level: LevelFilter) {
    // SAFETY: the identity is a static C string; openlog keeps the pointer.
    unsafe { libc::openlog(c"distccd".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    if log::set_boxed_logger(Box::new(Syslog { level })).is_ok() {
        log::set_max_level(level);
    }
}
