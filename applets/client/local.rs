//! Running the compiler (or preprocessor) on this machine.
//!
//! Every child gets `_DISTCC_SAFEGUARD=<level+1>` so that a masquerade link
//! that finds itself again on PATH stops with exit 111 instead of forking
//! forever (facts §4.6). The exit status passes through unchanged; a signal
//! becomes 128 + N, as a shell would report it. Also here: the client's
//! temporary files (`$TMPDIR/distcc_XXXXXXXX.<ext>`, created exclusively,
//! only when `DISTCC_SAVE_TEMPS` keeps the preprocessor's output; otherwise
//! that output stays in memory).

use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// The safeguard variable distcc sets in its children.
pub const SAFEGUARD_VAR: &str = "_DISTCC_SAFEGUARD";

/// A command for `argv` with the safeguard set for a child of level `level`.
pub fn command(argv: &[OsString], level: u32) -> Result<Command> {
    let Some(program) = argv.first() else {
        return Err(Error::new(Kind::BadArguments, "empty compiler command"));
    };
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..]);
    let value = (level + 1).to_string();
    // When our own environment already carries the value (see
    // [`set_own_safeguard`]) the child inherits it as is: no copy of the
    // whole environment is built for the spawn.
    if std::env::var_os(SAFEGUARD_VAR).is_none_or(|v| v != value.as_str()) {
        cmd.env(SAFEGUARD_VAR, value);
    }
    Ok(cmd)
}

/// Puts `_DISTCC_SAFEGUARD=<level+1>` into this process's own environment,
/// where every child inherits it (the client's children all get that value).
///
/// # Safety
/// No other thread may read or write the environment at the same time:
/// call it while the process is single-threaded.
pub unsafe fn set_own_safeguard(level: u32) {
    // SAFETY: the caller guarantees no concurrent environment access.
    unsafe { std::env::set_var(SAFEGUARD_VAR, (level + 1).to_string()) };
}

/// Exit code of a finished child: its status, or 128 + signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return (code & 0xff) as u8;
    }
    status.signal().map_or(1, |s| (128 + s).min(255) as u8)
}

/// Spawns a child, mapping "not found" to distcc's 110.
pub fn spawn(cmd: &mut Command, what: &str) -> Result<Child> {
    cmd.spawn()
        .map_err(|e| Error::new(spawn_error_kind(&e), format!("failed to exec {what}: {e}")))
}

/// The distcc kind of a failure to start a child.
fn spawn_error_kind(e: &std::io::Error) -> Kind {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            Kind::CompilerMissing
        }
        // fork(2) refused (`ulimit -u`, memory): stock's
        // EXIT_OUT_OF_MEMORY, 105 (sweep T, doubtful point).
        _ if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM)) => Kind::OutOfMemory,
        _ => Kind::Failed,
    }
}

/// Runs the compiler here with the caller's stdio; returns its exit code.
pub fn run(argv: &[OsString], level: u32) -> Result<u8> {
    let mut cmd = command(argv, level)?;
    let what = argv[0].to_string_lossy().into_owned();
    let mut child = spawn(&mut cmd, &what)?;
    let status = child
        .wait()
        .map_err(|e| Error::io(format!("waiting for {what}"), e))?;
    Ok(exit_code(status))
}

/// Creates a new empty temp file `<dir>/<prefix>XXXXXXXX<suffix>` (mode 0600, exclusive).
pub fn temp_file(dir: &Path, prefix: &str, suffix: &str) -> Result<(PathBuf, File)> {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    let mut x = seed | 1;
    for _ in 0..100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let path = dir.join(format!("{prefix}{:08x}{suffix}", x as u32));
        match OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::io(
                    format!("create temp file in {}", dir.display()),
                    e,
                ));
            }
        }
    }
    Err(Error::new(
        Kind::Io,
        format!("no free temp file name in {}", dir.display()),
    ))
}

/// An anonymous in-memory file (`memfd_create`), for the preprocessor's
/// output: nothing touches the disk's filesystem (no inode to create, no
/// blocks to allocate, discard and free), and the client still sends it
/// with sendfile.
pub fn memory_file() -> Result<File> {
    // SAFETY: the name is a NUL-terminated literal; the result is checked.
    let fd = unsafe { libc::memfd_create(c"distcc-cpp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor that we own.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// A running local preprocessor writing to its stdout.
pub struct Cpp {
    child: Option<Child>,
    /// The output (shares its offset with what the preprocessor writes).
    out: Option<File>,
}

impl Cpp {
    /// Starts `cpp_argv` with stdin `/dev/null` and stdout into an
    /// in-memory file, or, with `keep` (`DISTCC_SAVE_TEMPS`), into a new
    /// temp file with extension `ext` in `tmpdir` that stays afterwards.
    pub fn start(
        cpp_argv: &[OsString],
        level: u32,
        tmpdir: &Path,
        ext: &str,
        keep: bool,
    ) -> Result<Cpp> {
        let file = if keep {
            let (path, file) = temp_file(tmpdir, "distcc_", &format!(".{ext}"))?;
            log::debug!("preprocessor output kept in {}", path.display());
            file
        } else {
            match memory_file() {
                Ok(f) => f,
                Err(e) => {
                    // No memfd here (an old kernel, a sandbox): an unnamed
                    // temp file serves as well; it vanishes with its fd.
                    log::debug!("{e}; using a temp file for the preprocessor output");
                    let (path, file) = temp_file(tmpdir, "distcc_", &format!(".{ext}"))?;
                    let _ = std::fs::remove_file(&path);
                    file
                }
            }
        };
        let stdout = file
            .try_clone()
            .map_err(|e| Error::io("dup of the preprocessor output", e))?;
        let mut cmd = command(cpp_argv, level)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::from(stdout));
        log::debug!(
            "running preprocessor: {}",
            distcc::logging::command_line(cpp_argv)
        );
        let child = spawn(&mut cmd, &cpp_argv[0].to_string_lossy())?;
        Ok(Cpp {
            child: Some(child),
            out: Some(file),
        })
    }

    /// Waits until it has exited, hands its output (rewound) to
    /// `meanwhile`, and only then reaps it; returns its exit code and what
    /// `meanwhile` made of the output (the output of a failed run is
    /// handed over too, and the caller drops what it made).
    ///
    /// Why not reap first: the kernel wakes a parent blocked in `wait4`
    /// while the exiting child still holds the task-list lock, and the
    /// parent's first step is to take that lock, so it spins (on a VM, the
    /// waiting vCPU halts and waits to be kicked). That was about a
    /// twentieth of the client's own CPU on a large unit. Woken by a pidfd
    /// instead, the client compresses the output first and reaps a child
    /// long gone.
    pub fn wait_then<T>(self, meanwhile: impl FnOnce(File) -> Result<T>) -> Result<(u8, T)> {
        self.wait_then_watching(await_exit, meanwhile)
    }

    /// [`Cpp::wait_then`] with the exit watch given (tests stand in for a
    /// kernel without pidfds).
    fn wait_then_watching<T>(
        mut self,
        exited: fn(&Child) -> bool,
        meanwhile: impl FnOnce(File) -> Result<T>,
    ) -> Result<(u8, T)> {
        let (Some(mut child), Some(mut out)) = (self.child.take(), self.out.take()) else {
            return Err(Error::new(Kind::Failed, "preprocessor already reaped"));
        };
        let mut reaped = None;
        if !exited(&child) {
            // Without a pidfd, the output is complete only once reaped.
            reaped = Some(child.wait());
        }
        let made = std::io::Seek::rewind(&mut out)
            .map_err(|e| Error::io("rewinding the preprocessor output", e))
            .and_then(|()| meanwhile(out));
        let status = match reaped {
            Some(status) => status,
            None => child.wait(),
        }
        .map_err(|e| Error::io("waiting for the preprocessor", e))?;
        Ok((exit_code(status), made?))
    }
}

/// Most interrupted polls tolerated while waiting for a child to exit.
const MAX_INTERRUPTS: usize = 10_000;

/// Blocks until `child` has exited, without reaping it, by polling a pidfd;
/// true once it has. False at once where pidfds are missing (kernels before
/// 5.3, seccomp filters) or the poll fails: the caller must reap it first.
fn await_exit(child: &Child) -> bool {
    // SAFETY: pidfd_open(2) with a pid we have not reaped (it cannot be
    // reused meanwhile) and no flags; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    let Ok(fd) = i32::try_from(fd) else {
        return false;
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: `fd` is a fresh descriptor that we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut poll = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    };
    for _ in 0..MAX_INTERRUPTS {
        // SAFETY: one valid pollfd, no timeout.
        let r = unsafe { libc::poll(&mut poll, 1, -1) };
        if r > 0 {
            return poll.revents & libc::POLLIN != 0;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
    false
}

impl Drop for Cpp {
    fn drop(&mut self) {
        // Abandoned (the connection failed): stop it, by its own pid.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_failures_map_to_stocks_codes() {
        let kind = |errno| spawn_error_kind(&std::io::Error::from_raw_os_error(errno));
        assert_eq!(kind(libc::ENOENT), Kind::CompilerMissing);
        assert_eq!(kind(libc::EACCES), Kind::CompilerMissing);
        assert_eq!(kind(libc::EAGAIN), Kind::OutOfMemory);
        assert_eq!(kind(libc::ENOMEM), Kind::OutOfMemory);
        assert_eq!(kind(libc::EMFILE), Kind::Failed);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(run(&["true".into()], 0).unwrap(), 0);
        assert_eq!(run(&["false".into()], 0).unwrap(), 1);
        let sig = run(&["sh".into(), "-c".into(), "kill -SEGV $$".into()], 0).unwrap();
        assert_eq!(sig, 128 + 11);
        let e = run(&["/no/such/compiler".into()], 0).unwrap_err();
        assert_eq!(e.kind(), Kind::CompilerMissing);
    }

    #[test]
    fn preprocessor_output_is_read_back_from_the_start() {
        use std::io::Read;
        let tmp = std::env::temp_dir();
        let sh = |script: &str| -> Vec<OsString> { vec!["sh".into(), "-c".into(), script.into()] };
        let cpp = Cpp::start(
            &sh("printf 'int x;\\n'; echo warn >&2"),
            0,
            &tmp,
            "i",
            false,
        )
        .unwrap();
        let (code, mut out) = cpp.wait_then(Ok).unwrap();
        assert_eq!(code, 0);
        let mut text = String::new();
        out.read_to_string(&mut text).unwrap();
        assert_eq!(text, "int x;\n");
        let cpp = Cpp::start(&sh("echo partial; exit 3"), 0, &tmp, "i", false).unwrap();
        assert_eq!(cpp.wait_then(Ok).unwrap().0, 3);
    }

    fn read_text(mut out: File) -> Result<String> {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut out, &mut text)
            .map_err(|e| Error::io("reading the output", e))?;
        Ok(text)
    }

    #[test]
    fn output_is_handed_over_only_once_the_preprocessor_has_exited() {
        let tmp = std::env::temp_dir();
        let script = "printf 'a'; sleep 0.3; printf 'b'; exit 4";
        let argv: Vec<OsString> = vec!["sh".into(), "-c".into(), script.into()];
        let cpp = Cpp::start(&argv, 0, &tmp, "i", false).unwrap();
        let (code, text) = cpp.wait_then(read_text).unwrap();
        assert_eq!((code, text.as_str()), (4, "ab"));
        // Where no pidfd tells of the exit, the reap comes first.
        let cpp = Cpp::start(&argv, 0, &tmp, "i", false).unwrap();
        let (code, text) = cpp.wait_then_watching(|_| false, read_text).unwrap();
        assert_eq!((code, text.as_str()), (4, "ab"));
        // A failure in between is reported, and the child is still reaped.
        let cpp = Cpp::start(&argv, 0, &tmp, "i", false).unwrap();
        let pid = cpp.child.as_ref().unwrap().id();
        let e = cpp
            .wait_then(|_| -> Result<()> { Err(Error::new(Kind::Io, "in between")) })
            .unwrap_err();
        assert!(e.to_string().contains("in between"), "{e}");
        // SAFETY: kill(2) with signal 0 only asks whether the pid exists.
        let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
        assert!(!alive, "the preprocessor {pid} was left unreaped");
    }

    #[test]
    fn safeguard_is_incremented() {
        let out = command(
            &["sh".into(), "-c".into(), "echo $_DISTCC_SAFEGUARD".into()],
            2,
        )
        .unwrap()
        .output()
        .unwrap();
        assert_eq!(out.stdout, b"3\n");
    }
}
