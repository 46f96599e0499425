//! A typed snapshot of the client's environment, read once at start-up.
//!
//! distcc 3.4 reads `DISTCC_*`, `TMPDIR`, `INCLUDE_SERVER_*` and friends with
//! `getenv` wherever it needs them (facts §4.9). We read them once into
//! [`ClientEnv`] and pass that down, so the client's behaviour is a function
//! of its arguments and tests can build an environment without touching the
//! process's own. Invalid values that stock rejects are errors with exit
//! 101: `DISTCC_IO_TIMEOUT<=0` at once, `DISTCC_MAX_DISCREPANCY<=0` (read as
//! C's `atoi`) only when a pump-mode compile needs it, as for stock.

use crate::error::{Error, Kind, Result};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the client reads from its environment.
#[derive(Clone, Debug)]
pub struct ClientEnv {
    /// `DISTCC_HOSTS`, if set (even empty).
    pub hosts: Option<OsString>,
    /// `DISTCC_DIR`, or `$HOME/.distcc`.
    pub dir: PathBuf,
    /// Whether `DISTCC_DIR` was given explicitly (stock creates only the default one).
    pub dir_explicit: bool,
    /// `TMPDIR`, default `/tmp`.
    pub tmpdir: PathBuf,
    /// `DISTCC_VERBOSE=1`.
    pub verbose: bool,
    /// `DISTCC_LOG`.
    pub log: Option<PathBuf>,
    /// `UNCACHED_ERR_FD`, when a positive number.
    pub uncached_err_fd: Option<i32>,
    /// `DISTCC_FALLBACK` is not `0`.
    pub fallback: bool,
    /// `DISTCC_BACKOFF_PERIOD` (default 60 s; 0 disables backoff files).
    pub backoff_period: Duration,
    /// `DISTCC_IO_TIMEOUT` (default 300 s).
    pub io_timeout: Duration,
    /// `DISTCC_PAUSE_TIME_MSEC` (default 1000).
    pub pause_time: Duration,
    /// `DISTCC_SAVE_TEMPS=1`.
    pub save_temps: bool,
    /// `DISTCC_TCP_CORK` is not `0`.
    pub tcp_cork: bool,
    /// `DISTCC_SSH`, default `ssh`.
    pub ssh: OsString,
    /// `DISTCC_SKIP_LOCAL_RETRY` is set (any value).
    pub skip_local_retry: bool,
    /// `DISTCC_NO_REWRITE_CROSS` is set (any value).
    pub no_rewrite_cross: bool,
    /// `DISTCC_MAX_DISCREPANCY` (default 1); Err(value) when it is not a
    /// positive number ([`ClientEnv::max_discrepancy`]).
    max_discrepancy: std::result::Result<u64, String>,
    /// `DEPENDENCIES_OUTPUT`.
    pub dependencies_output: Option<OsString>,
    /// `SUNPRO_DEPENDENCIES` is set (and `DEPENDENCIES_OUTPUT`, which the
    /// preprocessor prefers, is not): only a local preprocessor writes it.
    pub sunpro_dependencies: bool,
    /// The first of `CPATH`, `C_INCLUDE_PATH`, `CPLUS_INCLUDE_PATH`,
    /// `OBJC_INCLUDE_PATH`, `OBJCPLUS_INCLUDE_PATH` that is set.
    pub include_path_var: Option<&'static str>,
    /// `INCLUDE_SERVER_PORT`.
    pub include_server_port: Option<PathBuf>,
    /// `INCLUDE_SERVER_STUB`: a whitespace-separated file list used instead of the server.
    pub include_server_stub: Option<OsString>,
    /// `DISTCC_TESTING_INCLUDE_SERVER=1`: include-server failure is fatal.
    pub testing_include_server: bool,
    /// `_DISTCC_SAFEGUARD` recursion level (0 when unset; non-numeric counts as 1).
    pub safeguard: u32,
    /// `PATH`.
    pub path: Option<OsString>,
}

impl ClientEnv {
    /// `DISTCC_MAX_DISCREPANCY`, or stock's error (exit 101) when it is not
    /// a positive number; asked only by pump-mode compiles.
    pub fn max_discrepancy(&self) -> Result<u64> {
        self.max_discrepancy.clone().map_err(|v| {
            Error::new(
                Kind::BadArguments,
                format!("Bad DISTCC_MAX_DISCREPANCY value: \"{v}\". Needs to be 1 or greater."),
            )
        })
    }

    /// Reads the process environment.
    pub fn from_process() -> Result<ClientEnv> {
        ClientEnv::from_vars(std::env::vars_os())
    }

    /// Builds the snapshot from name/value pairs (for tests).
    pub fn from_vars<I: IntoIterator<Item = (OsString, OsString)>>(vars: I) -> Result<ClientEnv> {
        let map: HashMap<OsString, OsString> = vars.into_iter().collect();
        let get = |k: &str| map.get(OsStr::new(k)).cloned();
        let text = |k: &str| get(k).map(|v| v.to_string_lossy().trim().to_string());
        let set = |k: &str| map.contains_key(OsStr::new(k));

        let (dir, dir_explicit) = match get("DISTCC_DIR").filter(|d| !d.is_empty()) {
            Some(d) => (PathBuf::from(d), true),
            None => {
                // No HOME: a name that does not exist, so that nothing is
                // made at the file system's root (see `dir_usable`).
                let home = get("HOME")
                    .filter(|h| !h.is_empty())
                    .map_or_else(|| PathBuf::from("/nonexistent"), PathBuf::from);
                (home.join(".distcc"), false)
            }
        };
        let tmpdir = get("TMPDIR")
            .filter(|t| !t.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| "/tmp".into());
        let io_timeout = match text("DISTCC_IO_TIMEOUT") {
            None => 300,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n > 0 => n as u64,
                _ => {
                    return Err(Error::new(
                        Kind::BadArguments,
                        format!("bad DISTCC_IO_TIMEOUT value: {v:?}"),
                    ));
                }
            },
        };
        let max_discrepancy = match get("DISTCC_MAX_DISCREPANCY") {
            None => Ok(1),
            Some(v) => {
                let v = v.to_string_lossy();
                match crate::c_number::atoi(&v).value {
                    n if n > 0 => Ok(n as u64),
                    _ => Err(v.into_owned()),
                }
            }
        };
        let number = |k: &str, default: u64| {
            text(k)
                .and_then(|v| v.parse::<i64>().ok())
                .map(|n| n.max(0) as u64)
                .unwrap_or(default)
        };
        // The Objective-C ones too (sweep S, D6; stock's list has the
        // first three only): gcc and clang search them for .m and .mm.
        let include_path_var = [
            "CPATH",
            "C_INCLUDE_PATH",
            "CPLUS_INCLUDE_PATH",
            "OBJC_INCLUDE_PATH",
            "OBJCPLUS_INCLUDE_PATH",
        ]
        .into_iter()
        .find(|k| set(k));
        let safeguard = match text("_DISTCC_SAFEGUARD") {
            None => 0,
            Some(v) => v.parse::<u32>().unwrap_or(1),
        };
        Ok(ClientEnv {
            hosts: get("DISTCC_HOSTS"),
            dir,
            dir_explicit,
            tmpdir,
            verbose: text("DISTCC_VERBOSE").is_some_and(|v| v == "1"),
            log: get("DISTCC_LOG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            uncached_err_fd: text("UNCACHED_ERR_FD")
                .and_then(|v| v.parse::<i32>().ok())
                .filter(|&fd| fd > 0),
            // Exactly "0" turns it off, as stock's dcc_getenv_bool reads it.
            fallback: get("DISTCC_FALLBACK").is_none_or(|v| v != "0"),
            backoff_period: Duration::from_secs(number("DISTCC_BACKOFF_PERIOD", 60)),
            io_timeout: Duration::from_secs(io_timeout),
            pause_time: Duration::from_millis(number("DISTCC_PAUSE_TIME_MSEC", 1000)),
            save_temps: text("DISTCC_SAVE_TEMPS").is_some_and(|v| v == "1"),
            tcp_cork: text("DISTCC_TCP_CORK").is_none_or(|v| v != "0"),
            ssh: get("DISTCC_SSH")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "ssh".into()),
            skip_local_retry: set("DISTCC_SKIP_LOCAL_RETRY"),
            no_rewrite_cross: set("DISTCC_NO_REWRITE_CROSS"),
            max_discrepancy,
            dependencies_output: get("DEPENDENCIES_OUTPUT"),
            sunpro_dependencies: get("DEPENDENCIES_OUTPUT").is_none()
                && get("SUNPRO_DEPENDENCIES").is_some_and(|v| !v.is_empty()),
            include_path_var,
            include_server_port: get("INCLUDE_SERVER_PORT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            include_server_stub: get("INCLUDE_SERVER_STUB"),
            // A boolean as stock reads it: only "1" turns it on.
            testing_include_server: text("DISTCC_TESTING_INCLUDE_SERVER").is_some_and(|v| v == "1"),
            safeguard,
            path: get("PATH"),
        })
    }

    /// Whether the lock and state directories may be made: always for a
    /// `DISTCC_DIR` the user named (parents included), and for
    /// `$HOME/.distcc` only when `$HOME` exists (a system user's
    /// `/nonexistent` is not created).
    pub fn dir_usable(&self) -> bool {
        self.dir_explicit || self.dir.parent().is_none_or(Path::is_dir)
    }

    /// `$DISTCC_DIR/lock`.
    pub fn lock_dir(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// `$DISTCC_DIR/state`.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<ClientEnv> {
        ClientEnv::from_vars(pairs.iter().map(|(k, v)| (k.into(), v.into())))
    }

    #[test]
    fn defaults() {
        let e = env(&[("HOME", "/home/u")]).unwrap();
        assert_eq!(e.dir, PathBuf::from("/home/u/.distcc"));
        assert!(!e.dir_explicit);
        assert_eq!(e.tmpdir, PathBuf::from("/tmp"));
        assert!(e.fallback);
        assert_eq!(e.io_timeout, Duration::from_secs(300));
        assert_eq!(e.backoff_period, Duration::from_secs(60));
        assert_eq!(e.ssh, OsString::from("ssh"));
        assert_eq!(e.safeguard, 0);
        assert!(e.hosts.is_none());
    }

    #[test]
    fn values() {
        let e = env(&[
            ("DISTCC_HOSTS", ""),
            ("DISTCC_DIR", "/d"),
            ("DISTCC_FALLBACK", "0"),
            ("DISTCC_IO_TIMEOUT", "5"),
            ("_DISTCC_SAFEGUARD", "zz"),
            ("C_INCLUDE_PATH", ""),
            ("DISTCC_SKIP_LOCAL_RETRY", ""),
        ])
        .unwrap();
        assert_eq!(e.hosts, Some(OsString::new()));
        assert!(e.dir_explicit);
        assert!(!e.fallback);
        // Only exactly "0" turns fallbacks off, as for stock.
        for other in [" 0", "00", "no", "false", ""] {
            assert!(
                env(&[("DISTCC_FALLBACK", other)]).unwrap().fallback,
                "{other:?}"
            );
        }
        assert_eq!(e.io_timeout, Duration::from_secs(5));
        assert_eq!(e.safeguard, 1);
        assert_eq!(e.include_path_var, Some("C_INCLUDE_PATH"));
        assert!(e.skip_local_retry);
        let e = env(&[("OBJCPLUS_INCLUDE_PATH", "/o")]).unwrap();
        assert_eq!(e.include_path_var, Some("OBJCPLUS_INCLUDE_PATH"));
    }

    #[test]
    fn sunpro_dependencies_unless_dependencies_output() {
        let e = env(&[("SUNPRO_DEPENDENCIES", "d.d a.o")]).unwrap();
        assert!(e.sunpro_dependencies);
        let e = env(&[
            ("SUNPRO_DEPENDENCIES", "d.d"),
            ("DEPENDENCIES_OUTPUT", "o.d"),
        ])
        .unwrap();
        assert!(!e.sunpro_dependencies);
        assert!(
            !env(&[("SUNPRO_DEPENDENCIES", "")])
                .unwrap()
                .sunpro_dependencies
        );
    }

    #[test]
    fn testing_include_server_is_a_stock_boolean() {
        let on = |v: &str| {
            env(&[("DISTCC_TESTING_INCLUDE_SERVER", v)])
                .unwrap()
                .testing_include_server
        };
        assert!(on("1"));
        for v in ["0", "", "yes"] {
            assert!(!on(v), "{v:?}");
        }
    }

    #[test]
    fn bad_timeouts_are_bad_arguments() {
        for v in ["0", "-3", "soon"] {
            let e = env(&[("DISTCC_IO_TIMEOUT", v)]).unwrap_err();
            assert_eq!(e.kind(), Kind::BadArguments);
        }
        // A bad DISTCC_MAX_DISCREPANCY fails only a pump compile, as for
        // stock (sweep O, D2: every run failed, plain ones too).
        for v in ["0", "-1", "abc"] {
            let e = env(&[("DISTCC_MAX_DISCREPANCY", v)]).unwrap();
            assert_eq!(e.max_discrepancy().unwrap_err().kind(), Kind::BadArguments);
        }
        let e = env(&[("DISTCC_MAX_DISCREPANCY", "3x")]).unwrap();
        assert_eq!(e.max_discrepancy().unwrap(), 3);
        assert_eq!(env(&[]).unwrap().max_discrepancy().unwrap(), 1);
    }
}
