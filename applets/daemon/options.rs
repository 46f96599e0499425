//! distccd's command-line options (facts §5.1), parsed with argh.
//!
//! Stock distccd uses popt, so real init scripts write `--port=3632`,
//! `--allow=10.0.0.0/8`, `-j8` and `-p 3632`. [`normalise`] rewrites those
//! forms into the separate-word long options argh understands, and reports
//! an unknown option the way stock does (`--bogus-option: unknown option`,
//! exit 101) before argh ever sees it.

use argh::FromArgs;
use distcc::logging::{self, LevelFilter};
use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::path::PathBuf;

/// The raw options as argh sees them (after [`normalise`]).
#[derive(FromArgs, Debug, Default)]
/// distccd: the distcc build-server daemon.
struct Raw {
    /// bind and listen on a socket
    #[argh(switch)]
    daemon: bool,
    /// serve one client connected to stdin/stdout
    #[argh(switch)]
    inetd: bool,
    /// stay in the foreground
    #[argh(switch)]
    no_detach: bool,
    /// accepted for compatibility
    #[argh(switch)]
    no_fork: bool,
    /// accepted for compatibility
    #[argh(switch)]
    no_fifo: bool,
    /// log to stderr, stay in the foreground, debug level
    #[argh(switch)]
    wizard: bool,
    /// client address access control IP[/BITS]
    #[argh(option)]
    allow: Vec<String>,
    /// allow loopback and the private networks
    #[argh(switch)]
    allow_private: bool,
    /// IP address to listen on
    #[argh(option)]
    listen: Option<String>,
    /// TCP port to listen on
    #[argh(option)]
    port: Option<String>,
    /// maximum number of compilers at any time
    #[argh(option)]
    jobs: Option<String>,
    /// lower priority
    #[argh(option)]
    nice: Option<String>,
    /// save the daemon process id to this file
    #[argh(option)]
    pid_file: Option<PathBuf>,
    /// if run by root, change to this user
    #[argh(option)]
    user: Option<String>,
    /// maximum lifetime of a compile, in seconds
    #[argh(option)]
    job_lifetime: Option<String>,
    /// exit after this many seconds
    #[argh(option)]
    lifetime: Option<String>,
    /// send log messages to this file
    #[argh(option)]
    log_file: Option<PathBuf>,
    /// send log messages to stderr
    #[argh(switch)]
    log_stderr: bool,
    /// log level
    #[argh(option)]
    log_level: Option<String>,
    /// log level debug
    #[argh(switch)]
    verbose: bool,
    /// accept any compiler
    #[argh(switch)]
    enable_tcp_insecure: bool,
    /// serve statistics over HTTP
    #[argh(switch)]
    stats: bool,
    /// statistics port
    #[argh(option)]
    stats_port: Option<String>,
    /// accepted for compatibility (no mDNS support)
    #[argh(switch)]
    zeroconf: bool,
}

/// Known options: long name, short letter, whether a value follows, and the
/// canonical long name argh knows it by.
const TABLE: &[(&str, Option<char>, bool, &str)] = &[
    ("--daemon", None, false, "--daemon"),
    ("--inetd", None, false, "--inetd"),
    ("--no-detach", None, false, "--no-detach"),
    ("--no-fork", None, false, "--no-fork"),
    ("--no-fifo", None, false, "--no-fifo"),
    ("--wizard", Some('W'), false, "--wizard"),
    ("--allow", Some('a'), true, "--allow"),
    ("--allow-private", None, false, "--allow-private"),
    ("--listen", None, true, "--listen"),
    ("--port", Some('p'), true, "--port"),
    ("--jobs", Some('j'), true, "--jobs"),
    ("--nice", Some('N'), true, "--nice"),
    ("--pid-file", Some('P'), true, "--pid-file"),
    ("--user", None, true, "--user"),
    ("--job-lifetime", None, true, "--job-lifetime"),
    ("--lifetime", None, true, "--lifetime"),
    ("--log-file", None, true, "--log-file"),
    ("--log-stderr", None, false, "--log-stderr"),
    ("--log-level", None, true, "--log-level"),
    ("--verbose", None, false, "--verbose"),
    (
        "--enable-tcp-insecure",
        None,
        false,
        "--enable-tcp-insecure",
    ),
    ("--make-me-a-botnet", None, false, "--enable-tcp-insecure"),
    ("--stats", None, false, "--stats"),
    ("--stats-port", None, true, "--stats-port"),
    ("--zeroconf", None, false, "--zeroconf"),
];

/// What the command line asks for besides serving.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `--help`.
    Help,
    /// `--version`.
    Version,
    /// Serve with these options.
    Serve(Box<Options>),
}

/// How to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Listen on a TCP port.
    Daemon,
    /// One job on stdin/stdout.
    Inetd,
    /// Inetd if stdin is a socket, else daemon.
    Auto,
}

/// The daemon's settings.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    pub detach: bool,
    pub allow: Vec<String>,
    pub allow_private: bool,
    pub listen: Option<String>,
    pub port: u16,
    pub jobs: usize,
    pub nice: i32,
    pub pid_file: Option<PathBuf>,
    pub user: Option<String>,
    pub job_lifetime: u64,
    pub lifetime: u64,
    pub log_file: Option<PathBuf>,
    pub log_stderr: bool,
    pub log_level: LevelFilter,
    /// A `--log-level` word stock would only warn about.
    pub bad_log_level: Option<String>,
    pub insecure: bool,
    pub stats: bool,
    pub stats_port: u16,
    /// Options accepted for compatibility that change nothing here.
    pub ignored: Vec<&'static str>,
}

/// The default `--jobs`: number of CPUs + 2.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) + 2
}

fn bad(msg: String) -> Error {
    Error::new(Kind::BadArguments, msg)
}

/// Rewrites popt-style forms into separate words with canonical long names.
/// An option given more than once keeps its last value, as with popt (a
/// wrapper's `--jobs 2` followed by an admin's `--jobs 8`); `--allow` adds
/// up.
pub fn normalise(args: &[OsString]) -> Result<Vec<String>> {
    let words = popt_words(args)?;
    let mut out = Vec::with_capacity(words.len());
    for (n, (name, value)) in words.iter().enumerate() {
        let given_again =
            name != "--allow" && words[n + 1..].iter().any(|(later, _)| later == name);
        if given_again {
            continue;
        }
        out.push(name.clone());
        out.extend(value.iter().cloned());
    }
    Ok(out)
}

/// The options of stock's GSS-API build, refused with that reason.
const GSSAPI_ONLY: [&str; 3] = ["--auth", "--blacklist", "--whitelist"];

/// The options of `args` as (canonical long name, value) pairs.
fn popt_words(args: &[OsString]) -> Result<Vec<(String, Option<String>)>> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i]
            .to_str()
            .ok_or_else(|| bad(format!("{:?}: not valid UTF-8", args[i])))?;
        i += 1;
        if arg == "--help" || arg == "--version" || arg == "-?" {
            out.push((arg.to_string(), None));
            continue;
        }
        let (entry, glued) = if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let full = format!("--{name}");
            if GSSAPI_ONLY.contains(&full.as_str()) {
                // Stock's GSS-API build (Debian's) has these: serving without
                // the authentication they ask for would be worse than not
                // starting (sweep Z).
                return Err(bad(format!(
                    "{full}: GSS-API authentication is not supported by this build"
                )));
            }
            let entry = TABLE
                .iter()
                .find(|e| e.0 == full)
                .ok_or_else(|| bad(format!("{full}: unknown option")))?;
            (entry, value.map(str::to_string))
        } else if arg.len() >= 2 && arg.starts_with('-') {
            let letter = arg[1..].chars().next().unwrap_or('-');
            let entry = TABLE
                .iter()
                .find(|e| e.1 == Some(letter))
                .ok_or_else(|| bad(format!("{arg}: unknown option")))?;
            let rest = &arg[1 + letter.len_utf8()..];
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            (entry, (!rest.is_empty()).then(|| rest.to_string()))
        } else {
            return Err(bad(format!("{arg}: unexpected argument")));
        };
        let &(name, _, takes_value, canonical) = entry;
        let value = match (takes_value, glued) {
            (true, Some(v)) => Some(v),
            (true, None) => {
                let v = args
                    .get(i)
                    .and_then(|v| v.to_str())
                    .ok_or_else(|| bad(format!("{name}: missing argument")))?;
                i += 1;
                Some(v.to_string())
            }
            (false, Some(_)) => return Err(bad(format!("{name}: takes no argument"))),
            (false, None) => None,
        };
        out.push((canonical.to_string(), value));
    }
    Ok(out)
}

fn number<T: std::str::FromStr>(what: &str, text: &str) -> Result<T> {
    text.trim()
        .parse()
        .map_err(|_| bad(format!("{what} {text}: not a valid number")))
}

fn port(what: &str, text: &str) -> Result<u16> {
    let n: i64 = number(what, text)?;
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| bad(format!("{what} {text}: port must be 1..65535")))
}

/// Parses distccd's arguments (without argv[0]).
pub fn parse(args: &[OsString]) -> Result<Request> {
    let words = normalise(args)?;
    if words.iter().any(|w| w == "--help" || w == "-?") {
        return Ok(Request::Help);
    }
    if words.iter().any(|w| w == "--version") {
        return Ok(Request::Version);
    }
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let raw = Raw::from_args(&["distccd"], &refs).map_err(|e| bad(e.output.trim().to_string()))?;
    let jobs = match &raw.jobs {
        Some(j) => {
            let n: i64 = number("--jobs", j)?;
            usize::try_from(n)
                .ok()
                .filter(|&n| (1..=1000).contains(&n))
                .ok_or_else(|| bad(format!("--jobs {j}: must be 1..1000")))?
        }
        None => default_jobs(),
    };
    // As stock, --no-fork (and --wizard, which implies it) serves one job
    // at a time, in the order they come: for debugging a compile, or for a
    // small machine.
    let jobs = if raw.no_fork || raw.wizard { 1 } else { jobs };
    let mut log_level = LevelFilter::Info;
    let mut bad_log_level = None;
    if let Some(word) = &raw.log_level {
        match logging::parse_level(word) {
            Some(l) => log_level = l,
            None => bad_log_level = Some(word.clone()),
        }
    }
    if raw.verbose || raw.wizard {
        log_level = LevelFilter::Debug;
    }
    let mode = if raw.inetd {
        Mode::Inetd
    } else if raw.daemon || raw.wizard {
        Mode::Daemon
    } else {
        Mode::Auto
    };
    Ok(Request::Serve(Box::new(Options {
        mode,
        detach: !(raw.no_detach || raw.wizard),
        allow: raw.allow,
        allow_private: raw.allow_private,
        listen: raw.listen,
        port: raw
            .port
            .as_deref()
            .map_or(Ok(3632), |p| port("--port", p))?,
        jobs,
        nice: raw.nice.as_deref().map_or(Ok(5), |n| number("--nice", n))?,
        pid_file: raw.pid_file,
        user: raw.user,
        job_lifetime: raw
            .job_lifetime
            .as_deref()
            .map_or(Ok(0), |n| number("--job-lifetime", n))?,
        lifetime: raw
            .lifetime
            .as_deref()
            .map_or(Ok(0), |n| number("--lifetime", n))?,
        log_file: raw.log_file,
        log_stderr: raw.log_stderr || raw.wizard,
        log_level,
        bad_log_level,
        insecure: raw.enable_tcp_insecure,
        stats: raw.stats,
        stats_port: raw
            .stats_port
            .as_deref()
            .map_or(Ok(3633), |p| port("--stats-port", p))?,
        ignored: [("--no-fifo", raw.no_fifo), ("--zeroconf", raw.zeroconf)]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(line: &str) -> Options {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        match parse(&args).unwrap_or_else(|e| panic!("{line}: {e}")) {
            Request::Serve(o) => *o,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn err(line: &str) -> Error {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        parse(&args).expect_err(line)
    }

    #[test]
    fn popt_forms() {
        let o = serve(
            "--daemon --port=4200 --allow=10.0.0.0/8 -a 192.168.0.0/16 -j8 -N 10 --log-level=debug -P /run/d.pid",
        );
        assert_eq!(o.mode, Mode::Daemon);
        assert_eq!(o.port, 4200);
        assert_eq!(o.allow, vec!["10.0.0.0/8", "192.168.0.0/16"]);
        assert_eq!(o.jobs, 8);
        assert_eq!(o.nice, 10);
        assert_eq!(o.log_level, LevelFilter::Debug);
        assert_eq!(o.pid_file, Some(PathBuf::from("/run/d.pid")));
        let o = serve("-p 3633 --make-me-a-botnet --no-detach --stats --stats-port 9000");
        assert_eq!(
            (o.port, o.insecure, o.detach, o.stats, o.stats_port),
            (3633, true, false, true, 9000)
        );
        assert_eq!(o.mode, Mode::Auto);
        assert_eq!(serve("").jobs, default_jobs());
        assert!(serve("--log-level chatty").bad_log_level.is_some());
        // Given twice: the last value wins, as with popt; --allow adds up.
        let o = serve(
            "--jobs 2 -p 1 --no-detach -j 8 --port=2 --no-detach --allow 10.0.0.1 -a 10.0.0.2",
        );
        assert_eq!((o.jobs, o.port, o.detach), (8, 2, false));
        assert_eq!(o.allow, vec!["10.0.0.1", "10.0.0.2"]);
        // --no-fork and --wizard serve one job at a time, as stock's
        // (sweep M, D6: they had no effect).
        assert_eq!(serve("--no-fork -j 8").jobs, 1);
        assert_eq!(serve("--wizard").jobs, 1);
    }

    #[test]
    fn errors_are_bad_arguments() {
        let e = err("--bogus-option");
        assert_eq!(e.kind(), Kind::BadArguments);
        assert_eq!(e.context(), "--bogus-option: unknown option");
        for gss in ["--auth", "--blacklist=/etc/x", "--whitelist"] {
            let e = err(gss);
            assert!(
                e.context()
                    .ends_with("GSS-API authentication is not supported by this build"),
                "{gss}: {}",
                e.context()
            );
        }
        for line in [
            "--port 80000",
            "--port 0",
            "--port x",
            "-j 0",
            "--allow",
            "stray",
            "--daemon=1",
        ] {
            assert_eq!(err(line).kind(), Kind::BadArguments, "{line}");
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&[OsString::from("--help")]).unwrap(), Request::Help);
        assert_eq!(
            parse(&[OsString::from("--version")]).unwrap(),
            Request::Version
        );
    }
}
