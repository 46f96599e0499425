//! Stock's per-job log lines, for scripts that read `DISTCC_LOG` (sweep W,
//! D3): `exec on HOST: COMMAND` before a compile runs, `compile FILE on
//! HOST completed ok` (or `failed`, `failed with exit code N`) after it,
//! `cpp FILE on localhost completed ok` after the local preprocessor, and
//! `elapsed compilation time S.UUUUUUs` at the end. Stock writes them
//! without its function tag, and they are written at info level (the
//! log file, or `DISTCC_VERBOSE`).
//!
//! Stock also prints a failed compile's line as an error on stderr; ours
//! keeps stderr the compiler's own (a failed remote compile is retried
//! here, and the local compiler says what is wrong), and writes the line
//! with its `ERROR: ` into the log file only.

use distcc::logging::{NONAME, command_line};
use std::ffi::OsStr;
use std::time::Duration;

/// `exec on HOST: COMMAND`.
pub fn execution<S: AsRef<OsStr>>(host: &str, argv: &[S]) {
    log::info!(target: NONAME, "exec on {host}: {}", command_line(argv));
}

/// How `command` (`compile`, `cpp`) of `input` on `host` ended, given its
/// exit code (128 + N for signal N). `to_log_file`: a failure is written as
/// an error (the log is a file; stderr stays the compiler's).
pub fn status(command: &str, input: &str, host: &str, code: u8, to_log_file: bool) {
    let failure = if to_log_file {
        log::Level::Error
    } else {
        log::Level::Info
    };
    match code {
        0 => log::info!(target: NONAME, "{command} {input} on {host} completed ok"),
        1 => log::log!(target: NONAME, failure, "{command} {input} on {host} failed"),
        129.. => log::log!(
            target: NONAME,
            failure,
            "{command} {input} on {host} terminated by signal {}",
            code - 128
        ),
        n => log::log!(
            target: NONAME,
            failure,
            "{command} {input} on {host} failed with exit code {n}"
        ),
    }
}

/// `elapsed compilation time S.UUUUUUs`.
pub fn elapsed(took: Duration) {
    log::info!(
        target: NONAME,
        "elapsed compilation time {}.{:06}s",
        took.as_secs(),
        took.subsec_micros()
    );
}
