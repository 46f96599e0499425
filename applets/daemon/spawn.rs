//! Starting a compiler with `posix_spawnp` (vfork semantics), always.
//!
//! std's `Command` uses `posix_spawn` only when it can find glibc's version
//! and `posix_spawn_file_actions_addchdir_np` at run time through `dlsym`.
//! In the static binary we ship for build servers `dlsym` finds nothing, so
//! std falls back to `fork`, which copies the page tables of the whole
//! multi-threaded daemon for every job and takes a copy-on-write fault for
//! every page the daemon then touches: measured at about 0.5 ms of daemon
//! CPU per job on libgit2 in lzo mode. Here the symbols are linked directly,
//! so static and dynamic builds spawn the same way.
//!
//! The child gets: `argv` (with its own `argv[0]`), the daemon's environment
//! plus `env` overrides, `cwd`, `stdin` on fd 0, fresh pipes on fds 1 and 2,
//! its own process group, an empty signal mask and default dispositions for
//! the signals a daemon may ignore. Every other descriptor of ours is
//! close-on-exec, as everything std and this crate open is.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A started child: its pid and the read ends of its stdout and stderr.
pub struct Spawned {
    pub pid: libc::pid_t,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

/// Signals reset to their default action in the child (ignoring SIGPIPE,
/// as Rust programs do, or SIGCHLD would change how the compiler runs).
const DEFAULT_SIGNALS: &[libc::c_int] = &[
    libc::SIGPIPE,
    libc::SIGCHLD,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGXFSZ,
];

fn cstring(s: &OsStr) -> std::io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL byte in an argument")
    })
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors that we own from here on.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The program to execute for `program`: as given if it contains a `/`,
/// else looked up in `path` (the PATH the child gets).
fn resolve(program: &OsStr, path: &OsStr) -> Option<OsString> {
    if program.as_bytes().contains(&b'/') {
        return Some(program.to_owned());
    }
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
        .map(|p| p.into_os_string())
}

/// Owns a `posix_spawn_file_actions_t` and a `posix_spawnattr_t`.
struct SpawnSetup {
    actions: libc::posix_spawn_file_actions_t,
    attr: libc::posix_spawnattr_t,
}

impl SpawnSetup {
    fn new() -> std::io::Result<Box<SpawnSetup>> {
        // SAFETY: both are plain C structs initialised by the init calls
        // below before any other use; boxed so their address stays put.
        let mut s: Box<SpawnSetup> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: init on zeroed storage we own.
        let r = unsafe { libc::posix_spawn_file_actions_init(&mut s.actions) };
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r));
        }
        // SAFETY: as above.
        let r = unsafe { libc::posix_spawnattr_init(&mut s.attr) };
        if r != 0 {
            // SAFETY: initialised just above.
            unsafe { libc::posix_spawn_file_actions_destroy(&mut s.actions) };
            return Err(std::io::Error::from_raw_os_error(r));
        }
        Ok(s)
    }
}

impl Drop for SpawnSetup {
    fn drop(&mut self) {
        // SAFETY: both were initialised in `new`.
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
            libc::posix_spawnattr_destroy(&mut self.attr);
        }
    }
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(r))
    }
}

/// The daemon's own environment as `NAME=value` strings, with each name,
/// read once: nothing changes it while the daemon runs, and copying it anew
/// for every compiler cost a few dozen allocations per job.
fn inherited_environment() -> &'static [(OsString, CString)] {
    static INHERITED: std::sync::OnceLock<Vec<(OsString, CString)>> = std::sync::OnceLock::new();
    INHERITED.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                Some((k, CString::new(kv).ok()?))
            })
            .collect()
    })
}

/// Starts `program` (looked up in PATH if it has no `/`) with `argv`, in
/// `cwd`, as described in the module header. An error means nothing runs.
pub fn spawn(
    program: &OsStr,
    argv: &[OsString],
    cwd: &Path,
    env: &[(&str, &OsStr)],
    stdin: OwnedFd,
) -> std::io::Result<Spawned> {
    // posix_spawnp searches our own PATH; only a PATH of the child's own
    // needs a lookup here.
    let own_path = env.iter().find(|(k, _)| *k == "PATH").map(|(_, v)| *v);
    let exe = match own_path {
        Some(path) => resolve(program, path).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "not found in PATH")
        })?,
        None => program.to_owned(),
    };
    let exe = cstring(&exe)?;
    let args: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
    let mut argp: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argp.push(std::ptr::null_mut());
    let mut vars: Vec<CString> = Vec::with_capacity(env.len());
    for (k, v) in env {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        vars.push(CString::new(kv).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "NUL byte in the environment",
            )
        })?);
    }
    let inherited = inherited_environment();
    let mut envp: Vec<*mut libc::c_char> = Vec::with_capacity(inherited.len() + vars.len() + 1);
    envp.extend(
        inherited
            .iter()
            .filter(|(k, _)| !env.iter().any(|(name, _)| OsStr::new(name) == k))
            .map(|(_, kv)| kv.as_ptr().cast_mut()),
    );
    envp.extend(vars.iter().map(|v| v.as_ptr().cast_mut()));
    envp.push(std::ptr::null_mut());
    let dir = cstring(cwd.as_os_str())?;

    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let mut s = SpawnSetup::new()?;
    // SAFETY: every pointer passed below points into storage (`s`, the
    // CStrings, the descriptors) that outlives the posix_spawn call.
    unsafe {
        check(libc::posix_spawn_file_actions_adddup2(
            &mut s.actions,
            stdin.as_raw_fd(),
            0,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut s.actions,
            out_w.as_raw_fd(),
            1,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut s.actions,
            err_w.as_raw_fd(),
            2,
        ))?;
        check(libc::posix_spawn_file_actions_addchdir_np(
            &mut s.actions,
            dir.as_ptr(),
        ))?;
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        check(libc::posix_spawnattr_setsigmask(&mut s.attr, &mask))?;
        let mut defaults: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut defaults);
        for &sig in DEFAULT_SIGNALS {
            libc::sigaddset(&mut defaults, sig);
        }
        check(libc::posix_spawnattr_setsigdefault(&mut s.attr, &defaults))?;
        check(libc::posix_spawnattr_setpgroup(&mut s.attr, 0))?;
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        check(libc::posix_spawnattr_setflags(
            &mut s.attr,
            flags as libc::c_short,
        ))?;
        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawnp(
            &mut pid,
            exe.as_ptr(),
            &s.actions,
            &s.attr,
            argp.as_ptr(),
            envp.as_ptr(),
        ))?;
        drop((out_w, err_w, stdin));
        Ok(Spawned {
            pid,
            stdout: Some(File::from(out_r)),
            stderr: Some(File::from(err_r)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn null() -> OwnedFd {
        OwnedFd::from(File::open("/dev/null").unwrap())
    }

    fn reap(pid: libc::pid_t) -> i32 {
        let mut status = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        status
    }

    #[test]
    fn runs_with_argv0_cwd_env_and_pipes() {
        let dir = std::env::temp_dir();
        let argv: Vec<OsString> = [
            "my-name",
            "-c",
            "echo $0 $PWD $ZZ_TEST; echo err >&2; exit 3",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let mut s = spawn(
            OsStr::new("sh"),
            &argv,
            &dir,
            &[("ZZ_TEST", OsStr::new("v1"))],
            null(),
        )
        .unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        s.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        s.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = reap(s.pid);
        let pwd = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(out.trim(), format!("my-name {} v1", pwd.display()));
        assert_eq!(err, "err\n");
        assert_eq!(libc::WEXITSTATUS(status), 3);
    }

    #[test]
    fn the_child_has_its_own_group_and_default_sigpipe() {
        let argv: Vec<OsString> = [
            "sh",
            "-c",
            "cut -d' ' -f5 /proc/$$/stat; grep SigIgn /proc/$$/status",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let mut s = spawn(OsStr::new("/bin/sh"), &argv, Path::new("/"), &[], null()).unwrap();
        let mut out = String::new();
        s.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        reap(s.pid);
        let mut lines = out.lines();
        let pgid: i32 = lines.next().unwrap().trim().parse().unwrap();
        assert_eq!(pgid, s.pid);
        let ignored =
            u64::from_str_radix(lines.next().unwrap().split_whitespace().nth(1).unwrap(), 16)
                .unwrap();
        assert_eq!(
            ignored & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE still ignored"
        );
    }

    #[test]
    fn a_missing_program_is_an_error() {
        let argv = vec![OsString::from("nope")];
        for program in ["/nonexistent/cc", "no-such-program-xyz"] {
            let r = spawn(OsStr::new(program), &argv, Path::new("/"), &[], null());
            assert_eq!(
                r.err().map(|e| e.kind()),
                Some(std::io::ErrorKind::NotFound),
                "{program}"
            );
        }
    }

    #[test]
    fn stdin_is_the_given_descriptor() {
        let (r, w) = pipe().unwrap();
        let mut w = File::from(w);
        std::io::Write::write_all(&mut w, b"hello from the pipe").unwrap();
        drop(w);
        let argv = vec![OsString::from("cat")];
        let mut s = spawn(OsStr::new("cat"), &argv, Path::new("/"), &[], r).unwrap();
        let mut out = String::new();
        s.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        reap(s.pid);
        assert_eq!(out, "hello from the pipe");
    }
}
