//! What the daemon learns about each compiler by running it once: whether
//! it takes `-fmacro-prefix-map` (line_prefix.rs) and whether it is Clang.
//! Clang names a source read from stdin `-` in its debug information, where
//! GCC takes the name from the first line marker (the daemon then passes
//! the name with `-main-file-name`, [`main_file_name`]); the name also goes
//! into PGO counter names of static functions.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one compiler does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traits {
    /// It accepts `-fmacro-prefix-map` (GCC 8, Clang 10).
    pub macro_prefix_map: bool,
    /// It defines `__clang__`.
    pub clang: bool,
}

/// The traits of each compiler run so far, learned once each.
#[derive(Default, Debug)]
pub struct Known {
    known: Mutex<HashMap<OsString, Traits>>,
}

impl Known {
    /// The traits of `compiler`, run with the environment a compile gets
    /// (`PATH`, the recursion safeguard) the first time: it preprocesses an
    /// empty C input with `-dM`, with `-fmacro-prefix-map` and, if that
    /// fails, without.
    /// The probe is given up (None, nothing learned) as soon as `stopped`
    /// says the job it is for was stopped (its client left, the daemon is
    /// shutting down): a compiler slow to answer must not hold either up.
    pub fn of(
        &self,
        compiler: &OsStr,
        path: Option<&OsStr>,
        safeguard: &str,
        stopped: &dyn Fn() -> bool,
    ) -> Option<Traits> {
        if let Some(&t) = self.lock().get(compiler) {
            return Some(t);
        }
        let run = |extra: &[&str]| -> Probe {
            let mut cmd = Command::new(compiler);
            cmd.args(extra)
                .args(["-dM", "-E", "-x", "c", "/dev/null"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .env("_DISTCC_SAFEGUARD", safeguard);
            if let Some(p) = path {
                cmd.env("PATH", p);
            }
            run_bounded(cmd, PROBE_LIMIT, stopped)
        };
        let with_map = match run(&["-fmacro-prefix-map=/a=/b"]) {
            Probe::Stopped => return None,
            Probe::Done(out) => out,
        };
        let macros = match with_map.clone() {
            Some(out) => out,
            None => match run(&[]) {
                Probe::Stopped => return None,
                Probe::Done(out) => out.unwrap_or_default(),
            },
        };
        let traits = Traits {
            macro_prefix_map: with_map.is_some(),
            clang: macros
                .split(|&b| b == b'\n')
                .any(|l| l.starts_with(b"#define __clang__ ")),
        };
        self.lock().insert(compiler.to_os_string(), traits);
        Some(traits)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OsString, Traits>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `compiler` is Clang, told by the name of the file it runs
/// (found in `path`, else `PATH`, symlinks resolved: `cc` is the
/// alternatives' `gcc` or `clang`), when the name says: a plain-mode job
/// needs only that, and an `--inetd` job (a process per job, ssh) would
/// otherwise run the probe every time. None: the probe must tell.
pub fn clang_by_name(compiler: &OsStr, path: Option<&OsStr>) -> Option<bool> {
    let program = std::path::Path::new(compiler);
    let found = if compiler.as_bytes().contains(&b'/') {
        program.to_path_buf()
    } else {
        let search = path
            .map(OsStr::to_os_string)
            .or_else(|| std::env::var_os("PATH"))?;
        std::env::split_paths(&search)
            .map(|d| d.join(program))
            .find(|p| p.is_file())?
    };
    let real = std::fs::canonicalize(found).ok()?;
    let name = real.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.contains("clang") {
        Some(true)
    } else if name.contains("gcc") || name.contains("g++") {
        Some(false)
    } else {
        None
    }
}

/// How long a compiler may take to answer (a compiler that does not is
/// taken to have no trait).
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// How long a probe killed with SIGTERM gets before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// Most bytes of a probe's output kept.
const PROBE_OUTPUT: usize = 1 << 20;

/// What running a probe gave.
enum Probe {
    /// The standard output, if the compiler exited successfully in time.
    Done(Option<Vec<u8>>),
    /// The job was stopped first; the compiler was killed.
    Stopped,
}

/// Runs `cmd` in a process group of its own and waits at most `limit`, or
/// until `stopped` says so; the group is killed when it does not finish.
fn run_bounded(mut cmd: Command, limit: Duration, stopped: &dyn Fn() -> bool) -> Probe {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let Ok(mut child) = cmd.stdout(Stdio::piped()).process_group(0).spawn() else {
        return Probe::Done(None);
    };
    // SIGTERM first (a wrapper may clean up), SIGKILL after a grace.
    let kill = |child: &mut std::process::Child| {
        let Ok(pid) = i32::try_from(child.id()) else {
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        // SAFETY: our child's own process group.
        unsafe { libc::kill(-pid, libc::SIGTERM) };
        let grace = Instant::now() + KILL_GRACE;
        while Instant::now() < grace && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above; the group may be gone already.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = child.wait();
    };
    let Some(mut stdout) = child.stdout.take() else {
        kill(&mut child);
        return Probe::Done(None);
    };
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    // Bounded by the deadline: each round sleeps or reads.
    loop {
        match stdout.read(&mut chunk) {
            Ok(n) if n > 0 && out.len() < PROBE_OUTPUT => {
                out.extend_from_slice(&chunk[..n]);
                continue;
            }
            _ => {}
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                // Whatever is left in the pipe after the exit.
                while let Ok(n @ 1..) = stdout.read(&mut chunk) {
                    if out.len() < PROBE_OUTPUT {
                        out.extend_from_slice(&chunk[..n]);
                    }
                }
                return Probe::Done(status.success().then_some(out));
            }
            Ok(None) if stopped() => {
                kill(&mut child);
                return Probe::Stopped;
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            _ => {
                kill(&mut child);
                return Probe::Done(None);
            }
        }
    }
}

/// The name a compile of a preprocessed `source` (when its bytes are at
/// hand) or of `input` (the client's name for it) gives its main file: the
/// name in the source's first line marker (`# 1 "src/a.c"`), if it has one
/// without escapes, else `input`.
pub fn main_file_name(source: Option<&[u8]>, input: &OsStr) -> OsString {
    let marked = source.and_then(|s| {
        let rest = s
            .strip_prefix(b"# 1 \"")
            .or_else(|| s.strip_prefix(b"#line 1 \""))?;
        let end = rest.iter().take(4096).position(|&b| b == b'"')?;
        let name = &rest[..end];
        (!name.is_empty() && !name.contains(&b'\\') && !name.contains(&b'\n')).then_some(name)
    });
    match marked {
        Some(name) => OsStr::from_bytes(name).to_os_string(),
        None => input.to_os_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_file_name_comes_from_the_first_line_marker() {
        let input = OsStr::new("src/a.c");
        assert_eq!(
            main_file_name(Some(b"# 1 \"gen/a.c\"\n# 1 \"<built-in>\"\n"), input),
            "gen/a.c"
        );
        assert_eq!(
            main_file_name(Some(b"#line 1 \"/abs/a.c\"\nint x;"), input),
            "/abs/a.c"
        );
        for odd in [
            &b"int x;\n"[..],
            b"# 1 \"a\\\\b.c\"\n",
            b"# 1 \"\"\n",
            b"# 1 \"no end",
            b"# 2 \"a.c\"\n",
        ] {
            assert_eq!(main_file_name(Some(odd), input), "src/a.c");
        }
        assert_eq!(main_file_name(None, input), "src/a.c");
    }

    #[test]
    fn compilers_known_by_name() {
        assert_eq!(clang_by_name(OsStr::new("gcc"), None), Some(false));
        assert_eq!(clang_by_name(OsStr::new("/usr/bin/g++"), None), Some(false));
        if std::path::Path::new("/usr/bin/clang").exists() {
            assert_eq!(clang_by_name(OsStr::new("clang"), None), Some(true));
        }
        assert_eq!(clang_by_name(OsStr::new("sh"), None), None);
        assert_eq!(clang_by_name(OsStr::new("no-such-compiler"), None), None);
    }

    #[test]
    fn gcc_takes_the_macro_map_and_is_not_clang() {
        let known = Known::default();
        let go_on = || false;
        let gcc = known.of(OsStr::new("gcc"), None, "1", &go_on);
        assert_eq!(
            gcc,
            Some(Traits {
                macro_prefix_map: true,
                clang: false
            })
        );
        let missing = known.of(OsStr::new("/nonexistent/cc"), None, "1", &go_on);
        assert_eq!(missing, Some(Traits::default()));
    }

    /// A compiler slow to answer the probe is killed, with what it started,
    /// as soon as its job is stopped (sweep M, D2: a client that left, or a
    /// daemon told to stop, waited for the probe), and nothing is learned.
    #[test]
    fn a_stopped_job_gives_up_the_probe() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("distcc-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let slow = dir.join("slowcc");
        let marker = dir.join("finished");
        std::fs::write(
            &slow,
            format!("#!/bin/sh\nsleep 20\ntouch {}\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
        let known = Known::default();
        let started = Instant::now();
        let stop_after = || started.elapsed() > Duration::from_millis(300);
        assert_eq!(known.of(slow.as_os_str(), None, "1", &stop_after), None);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            known.lock().get(slow.as_os_str()).is_none(),
            "nothing learned"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert!(!marker.exists(), "the probe's group was killed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_probe_that_hangs_is_killed() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 30"]);
        let t = Instant::now();
        let go_on = || false;
        let out = run_bounded(cmd, Duration::from_millis(200), &go_on);
        assert!(matches!(out, Probe::Done(None)));
        assert!(t.elapsed() < Duration::from_secs(5));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "head -c 200000 /dev/zero"]);
        let out = run_bounded(cmd, Duration::from_secs(10), &go_on);
        assert!(matches!(out, Probe::Done(Some(o)) if o.len() == 200000));
    }
}
