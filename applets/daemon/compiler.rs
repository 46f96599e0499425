//! Which compilers a client may run (facts §5.3), and the daemon settings
//! every job needs.
//!
//! The checks run as soon as a request's argv has arrived: `DISTCC_CMDLIST`
//! (argv[0]'s last N components must match a listed command, which then
//! replaces it), else the masquerade-directory whitelist (a link named like
//! the compiler in `<LIBDIR>/distcc` or `/usr/lib/distcc`; absolute paths
//! only under `/bin` and `/usr/bin`), unless `--enable-tcp-insecure`; then
//! the argument policy (`distcc::args::policy`). A refusal closes the
//! connection without a reply and is logged with its reason.

use distcc::args::policy::{self, Shape};
use distcc::args::{Verdict, classify};
use distcc::{Error, Kind, Result};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::time::Duration;

/// What one request may hold: the codec's defaults with tighter payload
/// caps, since every open connection may buffer this much.
pub fn request_limits() -> distcc::protocol::Limits {
    distcc::protocol::Limits {
        max_payload: 256 * 1024 * 1024,
        max_total: 512 * 1024 * 1024,
        ..distcc::protocol::Limits::default()
    }
}

/// Default of [`Config::request_memory`]: room for two of the largest
/// requests (`request_limits`), or 32 MiB per job slot on big servers.
pub const DEFAULT_REQUEST_MEMORY: u64 = 1 << 30;

/// The masquerade directories searched for whitelisted compiler names.
pub const WHITELIST_DIRS: &[&str] = &["/usr/lib/distcc", "/usr/local/lib/distcc"];

/// One `DISTCC_CMDLIST` entry: the key (last N path components) and the
/// full command that replaces argv[0].
pub type CmdEntry = (Vec<Vec<u8>>, Vec<u8>);

/// Settings shared by the event loop and the workers.
#[derive(Debug)]
pub struct Config {
    /// `$TMPDIR` (default `/tmp`): job directories are created below it.
    pub tmpdir: PathBuf,
    /// `--enable-tcp-insecure`.
    pub insecure: bool,
    /// `DISTCC_CMDLIST` entries: (key components, full command).
    pub cmdlist: Option<Vec<CmdEntry>>,
    /// How many trailing components of argv[0] form the key.
    pub cmdlist_words: usize,
    /// `DISTCCD_PATH`, which replaces PATH for compilers (None: inherited).
    pub path: Option<OsString>,
    /// `_DISTCC_SAFEGUARD` for compilers (ours + 1).
    pub safeguard: String,
    /// `DISTCC_IO_TIMEOUT`.
    pub io_timeout: Duration,
    /// `--job-lifetime` (None = unlimited).
    pub job_lifetime: Option<Duration>,
    /// Most bytes of unfinished requests held at once, all connections
    /// together (`DISTCCD_REQUEST_MEMORY`; server.rs).
    pub request_memory: u64,
    /// Cap on decompressed bytes per job.
    pub max_decompressed: usize,
    /// `DISTCC_SAVE_TEMPS=1`: keep job directories.
    pub save_temps: bool,
    /// What each compiler run so far does (traits.rs).
    pub compilers: super::traits::Known,
}

/// An argv that passed every check.
#[derive(Debug)]
pub struct Checked {
    /// The argv to run (argv[0] possibly replaced by `DISTCC_CMDLIST`).
    pub argv: Vec<OsString>,
    /// Where the source and output are.
    pub shape: Shape,
}

impl Config {
    /// Reads `DISTCC_CMDLIST` (one full command path per line).
    pub fn load_cmdlist(path: &OsStr, words: usize) -> Result<Vec<CmdEntry>> {
        let text = std::fs::read(path)
            .map_err(|e| Error::io(format!("reading DISTCC_CMDLIST {path:?}"), e))?;
        Ok(text
            .split(|&b| b == b'\n')
            .map(|l| l.trim_ascii())
            .filter(|l| !l.is_empty())
            .map(|l| (last_components(l, words), l.to_vec()))
            .collect())
    }

    /// Applies the compiler and argument checks to a received argv.
    pub fn check(&self, argv: &[Vec<u8>]) -> Result<Checked> {
        let Some(compiler) = argv.first() else {
            return Err(Error::new(Kind::BadArguments, "empty argv"));
        };
        let mut argv: Vec<OsString> = argv.iter().map(|a| OsString::from_vec(a.clone())).collect();
        if let Some(list) = &self.cmdlist {
            let key = last_components(compiler, self.cmdlist_words);
            let Some((_, full)) = list.iter().find(|(k, _)| *k == key) else {
                return Err(refused(compiler, "not in DISTCC_CMDLIST"));
            };
            argv[0] = OsString::from_vec(full.clone());
        } else if !self.insecure {
            whitelisted(compiler)?;
        }
        let shape = policy::check_serving(&argv)?;
        // A print query (accepted above) is answered as stock answers it,
        // by running it: the compiler prints and stops. Our client would
        // have kept it local, so the client's classifier is not asked.
        if argv
            .iter()
            .any(|a| policy::is_print_query(a.as_encoded_bytes()))
        {
            return Ok(Checked { argv, shape });
        }
        // Stock runs the client's classifier on the server too: a job it
        // would keep local is not a remote compile (facts §1.7). The server
        // adds `-MMD -MF` to a pump job itself, so the client's `-MT`/`-MQ`
        // for its `.d` (DEPENDENCIES_OUTPUT: no `-MD` in the command) are
        // classified with it (sweep O, D5: every such job was refused).
        let mut classified = argv.clone();
        classified.push("-MMD".into());
        if let Verdict::Local(reason) = classify(&classified)? {
            return Err(Error::new(
                Kind::BadArguments,
                format!("job would run locally on a client: {}", reason.why),
            ));
        }
        Ok(Checked { argv, shape })
    }
}

/// How a refused compiler's error starts ([`is_refused_compiler`]).
const REFUSED_COMPILER: &str = "compiler ";

fn refused(compiler: &[u8], why: &str) -> Error {
    Error::new(
        Kind::BadArguments,
        format!(
            "{REFUSED_COMPILER}{:?} refused: {why}",
            String::from_utf8_lossy(compiler)
        ),
    )
}

/// Whether `e` refuses the compiler a client named (whitelist or
/// DISTCC_CMDLIST): logged as an error, as stock logs it as critical, so
/// that the attempts show at any `--log-level`.
pub fn is_refused_compiler(e: &Error) -> bool {
    e.context().starts_with(REFUSED_COMPILER) && e.context().contains(" refused: ")
}

fn last_components(path: &[u8], n: usize) -> Vec<Vec<u8>> {
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let start = parts.len().saturating_sub(n.max(1));
    parts[start..].iter().map(|p| p.to_vec()).collect()
}

/// The stock whitelist: strip `/bin/` or `/usr/bin/` (case-insensitively),
/// refuse any other path, and require an executable masquerade link.
fn whitelisted(compiler: &[u8]) -> Result<()> {
    let lower = compiler.to_ascii_lowercase();
    let name = if lower.starts_with(b"/usr/bin/") {
        &compiler[9..]
    } else if lower.starts_with(b"/bin/") {
        &compiler[5..]
    } else {
        compiler
    };
    if name.contains(&b'/') {
        return Err(refused(
            compiler,
            "compiler name cannot be an absolute path (or must be in /usr/bin or /bin)",
        ));
    }
    if name.is_empty() || name == b"." || name == b".." {
        return Err(refused(compiler, "not a compiler name"));
    }
    let found = WHITELIST_DIRS.iter().any(|dir| {
        let mut p = PathBuf::from(dir);
        p.push(OsStr::from_bytes(name));
        is_executable(&p)
    });
    if found {
        Ok(())
    } else {
        Err(refused(
            compiler,
            &format!("not in the {} whitelist", WHITELIST_DIRS[0]),
        ))
    }
}

fn is_executable(p: &std::path::Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) with a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// Whether any masquerade directory exists (stock refuses to start without
/// one unless `--enable-tcp-insecure`, exit 110).
pub fn whitelist_dir_exists() -> bool {
    WHITELIST_DIRS
        .iter()
        .any(|d| std::path::Path::new(d).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(insecure: bool) -> Config {
        Config {
            tmpdir: "/tmp".into(),
            insecure,
            cmdlist: None,
            cmdlist_words: 1,
            path: None,
            safeguard: "1".into(),
            io_timeout: Duration::from_secs(300),
            job_lifetime: None,
            request_memory: DEFAULT_REQUEST_MEMORY,
            max_decompressed: 1 << 20,
            save_temps: false,
            compilers: Default::default(),
        }
    }

    fn argv(line: &str) -> Vec<Vec<u8>> {
        line.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn absolute_paths_only_under_bin() {
        let c = cfg(false);
        let e = c
            .check(&argv("/usr/local/bin/gcc -c x.c -o x.o"))
            .unwrap_err();
        assert!(e.to_string().contains("absolute path"), "{e}");
        assert!(is_refused_compiler(&e));
        let e = c.check(&argv("sh -c x.c -o x.o")).unwrap_err();
        // Logged as an error, as stock's critical line (sweep M, D5).
        assert!(is_refused_compiler(&e), "{e}");
        assert!(c.check(&argv("../../bin/sh -c x.c -o x.o")).is_err());
        if std::path::Path::new("/usr/lib/distcc/gcc").exists() {
            c.check(&argv("/usr/bin/gcc -c x.c -o x.o")).unwrap();
            c.check(&argv("gcc -c x.c -o x.o")).unwrap();
        }
        // Insecure mode skips the whitelist but never the argument policy.
        let i = cfg(true);
        i.check(&argv("/opt/cc -c x.c -o x.o")).unwrap();
        // A pump job's .d target without -MD: the server adds -MMD itself.
        i.check(&argv("/opt/cc -c x.c -o x.o -MQ x.o")).unwrap();
        i.check(&argv("/opt/cc -c x.c -o x.o -MT x.o")).unwrap();
        let e = i
            .check(&argv("/opt/cc -c x.c -o x.o -fplugin=x.so"))
            .unwrap_err();
        assert!(
            !is_refused_compiler(&e),
            "an option refused: a warning, as stock"
        );
    }

    #[test]
    fn cmdlist_replaces_compiler() {
        let mut c = cfg(false);
        c.cmdlist = Some(vec![(vec![b"gcc".to_vec()], b"/usr/bin/gcc".to_vec())]);
        let ok = c.check(&argv("gcc -c x.c -o x.o")).unwrap();
        assert_eq!(ok.argv[0], OsString::from("/usr/bin/gcc"));
        let e = c.check(&argv("clang -c x.c -o x.o")).unwrap_err();
        assert!(e.to_string().contains("DISTCC_CMDLIST"));
    }
}
