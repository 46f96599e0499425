//! The `pump` applet (facts §2.4): runs a build with an include server.
//!
//! `pump COMMAND ARGS...` starts the include server's loop inside this
//! process (threads, see `include_server::event_loop`), exports
//! `INCLUDE_SERVER_PORT`, `INCLUDE_SERVER_DIR` and `PATH`, runs COMMAND,
//! reports discrepancies, shuts the server down and exits with COMMAND's
//! status. `pump --startup` starts the `include-server` applet of this binary
//! detached and prints only the `export NAME='value'` lines stock prints, for
//! `eval`; `pump --shutdown` stops it using those variables. Hosts are
//! checked as stock does: `DISTCC_POTENTIAL_HOSTS` through our `lsdistcc`
//! applet, else `distcc --show-hosts` must list a `,cpp` host. As with
//! stock's script, the progress banners (`__________Using ...`, `Shutting
//! down ...`) go to stdout and warnings and errors to stderr; `--startup`
//! prints no banner, so its stdout stays fit for `eval`.

use crate::include_server::{event_loop, normalise, signals};
use distcc::applet::Invocation;
use distcc::args::cross::find_in_path;
use distcc::includes::server::Options;
use distcc::{Error, Kind, Result};
use std::ffi::{OsStr, OsString};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const HELP: &str = "Usage:
  pump COMMAND [ARG...]
or
  pump --startup
  pump --shutdown

Runs COMMAND with a distcc include server (pump mode), or starts/stops one
for use by later commands: eval \"$(pump --startup)\" ... pump --shutdown.

Environment: DISTCC_HOSTS (needs ',cpp' hosts), DISTCC_POTENTIAL_HOSTS,
LSDISTCC_ARGS, INCLUDE_SERVER_ARGS, DISTCC_LOCATION, DISTCC_MAX_DISCREPANCY,
TMPDIR.
";

/// Runs the applet.
pub fn main(inv: Invocation) -> Result<ExitCode> {
    let first = inv.args.first().map(|a| a.to_string_lossy().into_owned());
    match first.as_deref() {
        None | Some("-h") | Some("--help") => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        Some("--startup") => startup(&inv.started_as),
        Some("--shutdown") => shutdown(),
        Some(_) => run(&inv.started_as, &inv.args),
    }
}

/// Where the distcc client lives (its directory goes first on the build's
/// PATH): `DISTCC_LOCATION` when set; else, as stock's pump looks beside
/// itself, the directory `pump` was run from (argv[0], or the PATH entry
/// it was found in), and then the directory of this binary itself, for a
/// `pump` link elsewhere. `started_as` is the process's argv[0] (for
/// `distcc pump`, the `distcc`: the applet's name would find another
/// installation's `pump` on PATH; sweep Z, D4). A directory whose `distcc`
/// is this binary wins; failing that, the first that holds a `distcc`.
fn location(started_as: &OsStr) -> Result<PathBuf> {
    let explicit = std::env::var_os("DISTCC_LOCATION").filter(|v| !v.is_empty());
    let exe = std::env::current_exe().ok();
    let candidates: Vec<PathBuf> = match &explicit {
        Some(l) => vec![PathBuf::from(l)],
        None => {
            let mut dirs = Vec::new();
            dirs.extend(invoked_from(started_as));
            if let Some(own) = exe.as_deref().and_then(Path::parent) {
                dirs.push(own.to_path_buf());
            }
            dirs
        }
    };
    let has_distcc = |d: &&PathBuf| d.join("distcc").is_file();
    let ours = |d: &&PathBuf| {
        exe.as_deref()
            .is_some_and(|e| same_file(&d.join("distcc"), e))
    };
    // Without DISTCC_LOCATION, this binary under another name (no `distcc`
    // beside it resolves to it) takes the first directory with a `distcc`.
    let found = match explicit {
        Some(_) => candidates.iter().find(has_distcc),
        None => candidates
            .iter()
            .find(ours)
            .or_else(|| candidates.iter().find(has_distcc)),
    };
    if let Some(found) = found {
        // Absolute, as it goes on PATH for commands that may change directory.
        return std::path::absolute(found).map_err(|e| Error::io("find distcc's directory", e));
    }
    let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    Err(Error::new(
        Kind::Failed,
        format!(
            "can't find distcc (looked in {}); set DISTCC_LOCATION to its directory",
            looked.join(", ")
        ),
    ))
}

/// The directory a program was started from: argv[0]'s own when it has a
/// slash, else the PATH entry the shell found it in.
fn invoked_from(argv0: &OsStr) -> Option<PathBuf> {
    let found = if argv0.as_encoded_bytes().contains(&b'/') {
        PathBuf::from(argv0)
    } else {
        find_in_path(argv0, std::env::var_os("PATH").as_deref())?
    };
    found.parent().map(Path::to_path_buf)
}

/// Whether `a` and `b` name the same file (links followed).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

/// The files a pump session keeps in its directory.
const SESSION_FILES: [&str; 5] = ["socket", "pid", "stdout", "stderr", "discrepancy_counter"];

/// Removes a pump session's directory: the files pump and the include
/// server put there, then the directory if that leaves it empty. Never a
/// recursive removal: `pump --shutdown` takes the directory from
/// `INCLUDE_SERVER_DIR`, and a wrong value (stock removes it with
/// `rm -rf`) must not cost anyone a directory of their own.
fn remove_session_dir(dir: &Path) {
    for name in SESSION_FILES {
        let _ = std::fs::remove_file(dir.join(name));
    }
    if std::fs::remove_dir(dir).is_err() && dir.exists() {
        log::warn!(
            "{} holds more than a pump session's files: left in place",
            dir.display()
        );
    }
}

fn make_socket_dir() -> Result<PathBuf> {
    let tmp = std::env::var_os("TMPDIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let mut last = None;
    for n in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let word = format!(
            "{:06x}",
            (nanos ^ std::process::id().rotate_left(12) ^ n) & 0xff_ffff
        );
        let dir = tmp.join(format!("distcc-pump.{word}"));
        // Private, as stock's mktemp -d: only this user may reach the
        // include server's socket.
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    Err(Error::io(
        format!("create pump socket directory in {}", tmp.display()),
        last.unwrap_or_else(|| std::io::Error::other("no name")),
    ))
}

/// Checks or discovers the hosts (facts §2.4); returns a new DISTCC_HOSTS
/// value when it must be overridden. `verbose`: say how many were found
/// (not for `--startup`, which stays quiet apart from errors, as stock's).
fn determine_hosts(loc: &Path, verbose: bool) -> Result<Option<String>> {
    if let Some(potential) = std::env::var_os("DISTCC_POTENTIAL_HOSTS").filter(|v| !v.is_empty()) {
        let exe = std::env::current_exe().map_err(|e| Error::io("find own executable", e))?;
        let mut cmd = Command::new(exe);
        cmd.arg("lsdistcc").arg("-c150");
        let words = |v: Option<OsString>| -> Vec<String> {
            v.map(|s| {
                s.to_string_lossy()
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
        };
        cmd.args(words(std::env::var_os("LSDISTCC_ARGS")));
        cmd.args(words(Some(potential)));
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| Error::io("run lsdistcc", e))?;
        let hosts: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{},cpp,lzo", l.trim()))
            .collect();
        if verbose {
            println!("__________Found {} available distcc servers", hosts.len());
        }
        return Ok(Some(format!("--randomize {}", hosts.join(" "))));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let have_hosts = std::env::var_os("DISTCC_HOSTS").is_some_and(|v| !v.is_empty())
        || std::env::var_os("DISTCC_DIR").is_some_and(|d| Path::new(&d).join("hosts").is_file())
        || home.is_some_and(|h| h.join(".distcc/hosts").is_file())
        || Path::new("/etc/distcc/hosts").is_file();
    if !have_hosts {
        return Err(Error::new(
            Kind::Failed,
            "expected environment variables \"DISTCC_HOSTS\" or \"DISTCC_POTENTIAL_HOSTS\" to be \
             set, or to find a distcc hosts file in \"$DISTCC_DIR/hosts\", \"$HOME/.distcc/hosts\", \
             or \"/etc/distcc/hosts\".",
        ));
    }
    let out = Command::new(loc.join("distcc"))
        .arg("--show-hosts")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::io("run distcc --show-hosts", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hosts: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let pump = hosts.iter().filter(|l| l.contains(",cpp")).count();
    if hosts.is_empty() {
        return Err(Error::new(Kind::Failed, "distcc hosts list is empty!"));
    }
    if pump == 0 {
        return Err(Error::new(
            Kind::Failed,
            "pump mode requested, but distcc hosts list does not contain any hosts with ',cpp' option",
        ));
    }
    let word = if hosts.len() == 1 {
        "server"
    } else {
        "servers"
    };
    if verbose && pump == hosts.len() {
        println!("__________Using {} distcc {word} in pump mode", hosts.len());
    } else if verbose {
        println!(
            "__________Using {} distcc {word}, of which only {pump} support(s) pump mode",
            hosts.len()
        );
    }
    Ok(None)
}

fn new_path(loc: &Path) -> OsString {
    let mut p = loc.as_os_str().to_os_string();
    if let Some(old) = std::env::var_os("PATH") {
        p.push(":");
        p.push(old);
    }
    p
}

/// `INCLUDE_SERVER_ARGS` split as stock's pump splits it (through the
/// shell's `eval`: quotes group words), or why it cannot be.
fn server_words() -> std::result::Result<Vec<String>, String> {
    let raw = std::env::var_os("INCLUDE_SERVER_ARGS").unwrap_or_default();
    distcc::shell_words::split(&raw.to_string_lossy())
        .map_err(|e| format!("INCLUDE_SERVER_ARGS: {e}"))
}

/// Says why the include server cannot start, as stock's pump does, and
/// gives its exit status.
fn could_not_start(why: &str) -> ExitCode {
    eprintln!("include-server: ERROR: {why}");
    eprintln!("__________Could not start distcc-pump include server");
    ExitCode::from(1)
}

/// Prints the discrepancy warnings of a finished build (facts §2.4, §2.6).
fn report_discrepancies(dir: &Path) {
    let n = std::fs::metadata(dir.join("discrepancy_counter")).map_or(0, |m| m.len());
    if n == 0 {
        return;
    }
    eprintln!(
        "__________Warning: {n} pump-mode compilation(s) failed on server, but succeeded locally."
    );
    let max = std::env::var("DISTCC_MAX_DISCREPANCY")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    if n >= max {
        eprintln!("__________Distcc-pump was demoted to plain mode.");
    }
    eprintln!("See the Distcc Discrepancy Symptoms section in the include_server(1) man page.");
}

fn run(started_as: &OsStr, args: &[OsString]) -> Result<ExitCode> {
    if let Some(code) = bad_max_discrepancy() {
        return Ok(code);
    }
    // The include server runs in this process: its warnings (one line per
    // translation unit it cannot cover) go to our stderr, and more with
    // INCLUDE_SERVER_ARGS' `-dN`.
    // Options stock's include server refuses stop the build here as they
    // stop stock's (sweep W, D2).
    let server_args = match server_words().and_then(|w| {
        let words: Vec<OsString> = w.into_iter().map(OsString::from).collect();
        match normalise(&words) {
            Ok(Some(args)) => Ok(args),
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }) {
        Ok(args) => args,
        Err(why) => return Ok(could_not_start(&why)),
    };
    let debug = server_args
        .iter()
        .position(|w| w == "--debug-pattern")
        .and_then(|i| server_args.get(i + 1))
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1);
    distcc::logging::init(
        "include-server",
        crate::include_server::level_for(debug),
        distcc::logging::Destination::Stderr,
    );
    let loc = location(started_as)?;
    println!("__________Using distcc-pump from {}", loc.display());
    let hosts = determine_hosts(&loc, true)?;
    let dir = make_socket_dir()?;
    let socket = dir.join("socket");
    let options = Options {
        no_force_dirs: server_args.iter().any(|w| w == "--no-force-dirs"),
    };
    signals::install();
    let running = match event_loop::start(&socket, options, Arc::new(AtomicBool::new(false))) {
        Ok(r) => r,
        Err(e) => {
            remove_session_dir(&dir);
            return Err(e);
        }
    };
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..])
        .env("INCLUDE_SERVER_PORT", &socket)
        .env("INCLUDE_SERVER_DIR", &dir)
        .env("PATH", new_path(&loc));
    if let Some(h) = &hosts {
        cmd.env("DISTCC_HOSTS", h);
    }
    let status = match cmd.spawn() {
        Ok(mut child) => {
            // A signal to pump now goes on to the command; pump shuts the
            // server down once it has gone.
            signals::forward_to(child.id() as i32);
            let st = child.wait();
            signals::forward_to(0);
            st.map_err(|e| Error::io("wait for command", e))
        }
        Err(e) => {
            // As a shell says it: 127 not found, 126 not runnable.
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            eprintln!("pump: {}: {e}", Path::new(&args[0]).display());
            Ok(std::process::ExitStatus::from_raw(code << 8))
        }
    };
    report_discrepancies(&dir);
    println!("__________Shutting down distcc-pump include server");
    running.shutdown();
    remove_session_dir(&dir);
    let status = status?;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn quote(v: &OsStr) -> String {
    v.to_string_lossy().replace('\'', "'\\''")
}

/// Stock's pump checks DISTCC_MAX_DISCREPANCY before anything else: a bad
/// value stops `pump CMD` and `pump --startup` alike (sweep W, D7), where
/// every compile of the build would fail with it.
fn bad_max_discrepancy() -> Option<ExitCode> {
    let env = distcc::env::ClientEnv::from_process().ok()?;
    let e = env.max_discrepancy().err()?;
    eprintln!("pump: {}", e.context());
    Some(ExitCode::from(1))
}

fn startup(started_as: &OsStr) -> Result<ExitCode> {
    if let Some(code) = bad_max_discrepancy() {
        return Ok(code);
    }
    let words = match server_words() {
        Ok(w) => w,
        Err(why) => return Ok(could_not_start(&why)),
    };
    warn_of_running_session();
    let loc = location(started_as)?;
    let hosts = determine_hosts(&loc, false)?;
    let dir = make_socket_dir()?;
    let socket = dir.join("socket");
    let pid_file = dir.join("pid");
    let exe = std::env::current_exe().map_err(|e| Error::io("find own executable", e))?;
    let file = |name: &str| {
        std::fs::File::create(dir.join(name)).map_err(|e| Error::io(format!("create {name}"), e))
    };
    let mut child = Command::new(exe);
    child
        .arg("include-server")
        .arg("--port")
        .arg(&socket)
        .arg("--pid_file")
        .arg(&pid_file)
        .arg("-d1")
        .args(words)
        .stdin(Stdio::null())
        .stdout(file("stdout")?)
        .stderr(file("stderr")?)
        .process_group(0);
    // The server outlives the shell that ran us: it must not keep that
    // shell's other descriptors (a pipe someone waits on, a make jobserver)
    // open. Marked close-on-exec in the child, so exec drops them.
    // SAFETY: only a system call between fork and exec, nothing allocated.
    unsafe {
        child.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            Ok(())
        });
    }
    let child = child.spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            remove_session_dir(&dir);
            return Err(Error::io("start include-server", e));
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<u32>()
            && socket.exists()
        {
            break pid;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
            remove_session_dir(&dir);
            eprint!("{err}");
            eprintln!("__________Could not start distcc-pump include server");
            return Ok(ExitCode::from(1));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The server outlives us; it is reaped by init after `pump --shutdown`.
    drop(child);
    println!("export INCLUDE_SERVER_PID='{pid}'");
    println!("export INCLUDE_SERVER_DIR='{}'", quote(dir.as_os_str()));
    println!("export INCLUDE_SERVER_PORT='{}'", quote(socket.as_os_str()));
    let hosts = hosts
        .map(OsString::from)
        .or_else(|| std::env::var_os("DISTCC_HOSTS"));
    if let Some(h) = hosts.filter(|h| !h.is_empty()) {
        println!("export DISTCC_HOSTS='{}'", quote(&h));
    }
    println!("export PATH='{}'", quote(&new_path(&loc)));
    Ok(ExitCode::SUCCESS)
}

/// `pump --startup` run where a session's variables name a live include
/// server: as stock, another one is started (a script in a subshell may
/// want its own), but when both are this shell's, the exports replace the
/// first one's and nothing would stop it any more (sweep O, doubtful 2).
/// Said on stderr: stdout is for the shell to evaluate.
fn warn_of_running_session() {
    let Some(pid) = std::env::var("INCLUDE_SERVER_PID")
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return;
    };
    if signals::alive(pid) && runs_this_program(pid) {
        eprintln!(
            "__________Warning: include server {pid} (INCLUDE_SERVER_PID) is still running; \
             starting another. If this shell started it, run `pump --shutdown` before \
             `pump --startup`, or it stays running."
        );
    }
}

fn shutdown() -> Result<ExitCode> {
    let dir = std::env::var_os("INCLUDE_SERVER_DIR").map(PathBuf::from);
    let pid = std::env::var("INCLUDE_SERVER_PID")
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok());
    if let Some(d) = &dir {
        report_discrepancies(d);
    }
    let mut stuck = None;
    if let Some(pid) = pid
        && signals::alive(pid)
    {
        // Only an include server of ours is signalled: a stale or mistyped
        // INCLUDE_SERVER_PID may name any process (stock kills it anyway).
        if !runs_this_program(pid) {
            eprintln!(
                "__________Warning: INCLUDE_SERVER_PID={pid} is not a distcc-pump include server; not stopped"
            );
            return Ok(ExitCode::FAILURE);
        }
        println!("__________Shutting down distcc-pump include server");
        signals::terminate(pid);
        let deadline = Instant::now() + Duration::from_secs(20);
        while signals::alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if signals::alive(pid) {
            stuck = Some(pid);
        }
    }
    if let Some(d) = &dir {
        if let Ok(out) = std::fs::read(d.join("stdout")) {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&out);
        }
        if let Ok(err) = std::fs::read(d.join("stderr")) {
            use std::io::Write;
            let _ = std::io::stderr().write_all(&err);
        }
        remove_session_dir(d);
    }
    if let Some(pid) = stuck {
        eprintln!("__________Warning: the include server (pid {pid}) did not stop within 20 s");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether process `pid` is an include server: it runs this very program
/// (what `pump --startup` leaves), or one whose command names the include
/// server (this program replaced by an upgrade, or stock's).
fn runs_this_program(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let named = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        c.split(|&b| b == 0)
            .any(|w| w.ends_with(b"include-server") || w.ends_with(b"include_server.py"))
    });
    match (id(&format!("/proc/{pid}/exe")), id("/proc/self/exe")) {
        (Some(theirs), Some(ours)) => theirs == ours || named,
        // No /proc to ask: as stock, trust the variable.
        (None, None) => true,
        _ => named,
    }
}
