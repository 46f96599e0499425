//! Shared helpers for the integration tests: temp dirs, free ports, running
//! our binary under any name, and daemons (ours or stock) guarded by PID.
//!
//! Every process started here is killed by its own PID when its guard drops;
//! every wait is bounded.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_distcc"))
}

/// Root of the source tree (for testdata).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path under testdata/.
pub fn testdata(rel: &str) -> PathBuf {
    repo().join("testdata").join(rel)
}

/// Whether stock distcc 3.4 is installed (scripts/test installs it as root).
pub fn have_stock() -> bool {
    Path::new("/usr/bin/distccd").exists() && Path::new("/usr/bin/distcc").exists()
}

/// Fails loudly when a needed stock tool is missing: tests must not pass by
/// skipping on a machine where scripts/test ran.
pub fn require_stock() {
    assert!(
        have_stock(),
        "stock distcc 3.4 is not installed: run scripts/test (it installs it) or apt-get install distcc"
    );
}

/// A temporary directory removed on drop.
pub struct TestDir {
    pub path: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = std::env::var_os("DISTCC_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let path = base.join(format!("dcct-{}-{}-{}", tag, std::process::id(), n));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir { path }
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Lists every file below the directory (relative paths), sorted.
    pub fn listing(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        walk(&p, base, out);
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.path, &self.path, &mut v);
        v.sort();
        v
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os("DISTCC_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
/// Sets the modification time of the existing file `path` to `when`.
pub fn set_mtime(path: &std::path::Path, when: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A command running our binary as `name` (argv[0]).
pub fn ours(name: &str) -> Command {
    let mut c = Command::new(bin());
    c.arg0(name);
    c
}

/// Runs a command with a time limit; panics if it does not finish.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(limit).is_err() {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let _ = t.join();
        panic!("command timed out after {limit:?}: {cmd:?}");
    }
    t.join().unwrap().expect("wait")
}

/// Like [`run_with_timeout`] with 120 s.
pub fn run(cmd: &mut Command) -> Output {
    run_with_timeout(cmd, Duration::from_secs(120))
}

/// Text of stdout and stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A background process killed (by PID) on drop.
pub struct Guard {
    pub child: Child,
    pub name: String,
}

impl Guard {
    pub fn spawn(mut cmd: Command, name: &str) -> Guard {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Guard {
            child,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Already reaped (by `alive` or here): its pid may belong to another
        // process by now (pid_max is 32768 on small machines and a test run
        // wraps it), so it is not signalled.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.child.id() as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Waits until a TCP port accepts connections (bounded).
pub fn wait_for_port(addr: &str, port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect((addr, port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A daemon on loopback, ours or stock, with its work dir and log.
pub struct Daemon {
    pub guard: Guard,
    pub port: u16,
    pub dir: TestDir,
}

impl Daemon {
    /// The log file path.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The log text so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The daemon's TMPDIR (everything it writes must stay below it).
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Host spec for DISTCC_HOSTS with the given options (`""`, `",lzo"`, ...).
    pub fn host(&self, opts: &str) -> String {
        format!("127.0.0.1:{}{}", self.port, opts)
    }
}

fn start_daemon(program: &OsStr, argv0: Option<&str>, tag: &str, extra: &[&str]) -> Daemon {
    let dir = TestDir::new(tag);
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    // Run as root, both daemons drop to an unprivileged user (distccd):
    // it must be able to write its log and its TMPDIR.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    for _attempt in 0..5 {
        let port = free_port();
        let mut cmd = Command::new(program);
        if let Some(a) = argv0 {
            cmd.arg0(a);
        }
        cmd.args(["--no-detach", "--daemon", "--log-file"])
            .arg(dir.join("daemon.log"))
            .arg("--port")
            .arg(port.to_string())
            .args(["--listen", "127.0.0.1"])
            .args(extra)
            .env("TMPDIR", dir.join("tmp"))
            .env_remove("DISTCC_HOSTS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // A caller's own --allow replaces the default (access-denied tests).
        if !extra.contains(&"--allow") {
            cmd.args(["--allow", "127.0.0.1"]);
        }
        let mut guard = Guard::spawn(cmd, tag);
        // Another test may have taken the port between free_port() and the
        // bind: then someone else listens there and this daemon has exited
        // (bind failed). Only a daemon still running after that owns it.
        if wait_for_port("127.0.0.1", port, Duration::from_secs(10)) {
            std::thread::sleep(Duration::from_millis(50));
            if guard.alive() {
                return Daemon { guard, port, dir };
            }
            continue;
        }
        assert!(
            !guard.alive() || port == 0,
            "daemon {tag} runs but does not listen on {port}"
        );
    }
    panic!("could not start daemon {tag}");
}

/// Starts our daemon on 127.0.0.1 with extra options.
pub fn our_daemon(extra: &[&str]) -> Daemon {
    start_daemon(bin().as_os_str(), Some("distccd"), "ours", extra)
}

/// [`our_daemon`], its TMPDIR in a directory whose name has `tag` in it.
pub fn our_daemon_tagged(tag: &str, extra: &[&str]) -> Daemon {
    start_daemon(bin().as_os_str(), Some("distccd"), tag, extra)
}

/// Starts stock distccd 3.4 on 127.0.0.1 with extra options.
pub fn stock_daemon(extra: &[&str]) -> Daemon {
    require_stock();
    start_daemon(OsStr::new("/usr/bin/distccd"), None, "stock", extra)
}

/// Environment for a distcc client run: hermetic DISTCC_DIR and TMPDIR.
pub fn client_env(cmd: &mut Command, dir: &TestDir, hosts: &str) {
    std::fs::create_dir_all(dir.join("distccdir")).unwrap();
    std::fs::create_dir_all(dir.join("ctmp")).unwrap();
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("DISTCC_") || k.starts_with("INCLUDE_SERVER") || k == "_DISTCC_SAFEGUARD" {
            cmd.env_remove(&k);
        }
    }
    cmd.env("DISTCC_HOSTS", hosts)
        .env("DISTCC_DIR", dir.join("distccdir"))
        .env("TMPDIR", dir.join("ctmp"))
        .current_dir(&dir.path);
}
