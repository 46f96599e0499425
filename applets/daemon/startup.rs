//! Process set-up of distccd: niceness, dropping root, detaching, the pid
//! file and the termination signals (facts §5.1 "Startup order").
//!
//! Everything here runs before any thread exists, because `fork()` in a
//! threaded process only keeps the calling thread. Signals are turned into
//! bytes on a pipe that the event loop watches (the self-pipe trick), so
//! the loop can stop cleanly: kill running compilers, remove job
//! directories and the pid file, then re-raise the signal.

use distcc::{Error, Kind, Result};
use std::fs::File;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// Lowers the priority by `n` (stock's `--nice`, default 5).
pub fn nice(n: i32) {
    // SAFETY: nice() only changes this process's scheduling priority.
    unsafe {
        *libc::__errno_location() = 0;
        if libc::nice(n) == -1 && *libc::__errno_location() != 0 {
            log::warn!("nice({n}) failed: {}", io::Error::last_os_error());
        }
    }
}

/// The user and group a name or number stands for: `/etc/passwd` first,
/// then (dynamically linked builds only) the system's user database.
fn lookup_user(name: &str) -> Option<(libc::uid_t, libc::gid_t)> {
    if let Ok(text) = std::fs::read_to_string("/etc/passwd")
        && let Some(ids) = passwd_entry(&text, name)
    {
        return Some(ids);
    }
    // A statically linked glibc can only reach other sources (systemd,
    // LDAP) by loading their shared modules, and doing so crashes the
    // process: the static binary reads /etc/passwd alone.
    #[cfg(not(target_feature = "crt-static"))]
    if let Ok(c) = std::ffi::CString::new(name) {
        // SAFETY: getpwnam returns a pointer to static storage or NULL; we
        // copy the two ids out immediately, before any other call could
        // reuse it.
        unsafe {
            let pw = libc::getpwnam(c.as_ptr());
            if !pw.is_null() {
                return Some(((*pw).pw_uid, (*pw).pw_gid));
            }
        }
    }
    // A number is a uid: its group is its passwd entry's, else nobody's
    // group (never the number itself, which may name a privileged group).
    let uid = name.parse::<libc::uid_t>().ok()?;
    let gid = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| primary_group_of(&text, uid))
        .unwrap_or(NOBODY_GID);
    Some((uid, gid))
}

/// The group of nobody (`nogroup`), for a uid that has no passwd entry.
const NOBODY_GID: libc::gid_t = 65534;

/// The primary gid of the first passwd(5) entry with `uid`.
fn primary_group_of(text: &str, uid: libc::uid_t) -> Option<libc::gid_t> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':').skip(2);
        let this: libc::uid_t = fields.next()?.trim().parse().ok()?;
        (this == uid).then(|| fields.next()?.trim().parse().ok())?
    })
}

/// The uid and gid of `name` in passwd(5) text.
fn passwd_entry(text: &str, name: &str) -> Option<(libc::uid_t, libc::gid_t)> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.trim().parse().ok()?;
        let gid = fields.next()?.trim().parse().ok()?;
        Some((uid, gid))
    })
}

/// When running as root, becomes `user` (default: `distccd`, `distcc`,
/// `nobody`, else uid 65534), drops supplementary groups and sets
/// `PR_SET_NO_NEW_PRIVS`. Failure is exit 112, as in stock.
/// `files` (the pid file) are handed to that user first, so the daemon can
/// still remove them at exit.
pub fn drop_root(user: Option<&str>, files: &[&File]) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if let Some(u) = user {
            log::debug!("not root: --user {u} ignored");
        }
        return Ok(());
    }
    // As stock: the user asked for (default `distccd`, or `distcc`), else
    // `nobody`, else 65534.
    let wanted: &[&str] = match user {
        Some(u) => &[u],
        None => &["distccd", "distcc"],
    };
    let (uid, gid) = match wanted.iter().find_map(|u| lookup_user(u)) {
        Some(ids) => ids,
        None => {
            log::warn!(
                "no such user as \"{}\"; running as nobody",
                wanted.join("\" or \"")
            );
            lookup_user("nobody").unwrap_or((65534, 65534))
        }
    };
    if uid == 0 {
        // Stock ends the same way: any allowed client could run compilers
        // (and their plugins, specs, ...) as root.
        return Err(Error::new(
            Kind::SetuidFailed,
            "still root after dropping privileges: --user names root; refusing to serve as root",
        ));
    }
    for file in files {
        use std::os::fd::AsRawFd;
        // SAFETY: fchown on a descriptor we own.
        if unsafe { libc::fchown(file.as_raw_fd(), uid, gid) } != 0 {
            log::warn!(
                "cannot hand the pid file to uid {uid}: {}",
                io::Error::last_os_error()
            );
        }
    }
    let fail = |what: &str| {
        Error::new(
            Kind::SetuidFailed,
            format!("{what} failed: {}", io::Error::last_os_error()),
        )
    };
    // SAFETY: setgroups/setgid/setuid/prctl on this single-threaded process.
    unsafe {
        let groups = [gid];
        if libc::setgroups(1, groups.as_ptr()) != 0 {
            return Err(fail("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(fail("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(fail("setuid"));
        }
        if uid != 0 && libc::setuid(0) == 0 {
            return Err(Error::new(Kind::SetuidFailed, "could regain root"));
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(fail("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
    }
    log::info!("running as uid {uid} gid {gid}");
    Ok(())
}

/// The pid file, opened before root is dropped and before detaching, so
/// that a pid file the daemon cannot write is an error at start-up, not a
/// server left running with no pid file. Its contents are replaced only
/// once the server is listening: a start that fails (the port is taken by
/// the daemon already running) leaves a running daemon's pid in place, and
/// a file it created itself is removed again.
pub struct PidFile {
    pub file: File,
    path: std::path::PathBuf,
    /// Created by this start (removed if the start fails).
    created: bool,
    written: bool,
}

impl PidFile {
    /// Opens (or creates) the pid file. It is opened before root is
    /// dropped, so a name planted in a directory another user can write
    /// must not lead elsewhere: a symlink is refused, and so is anything
    /// but a regular file with one link.
    pub fn open(path: &Path) -> Result<PidFile> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let open = |create_new: bool| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(create_new)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(path)
        };
        let opened = match open(true) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open(false).map(|f| (f, false)),
            other => other.map(|f| (f, true)),
        };
        let (file, created) =
            opened.map_err(|e| Error::io(format!("creating pid file {}", path.display()), e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("pid file {}", path.display()), e))?;
        if !meta.is_file() || meta.nlink() != 1 {
            return Err(Error::new(
                Kind::Io,
                format!(
                    "pid file {} is not a regular file with one link: not written",
                    path.display()
                ),
            ));
        }
        Ok(PidFile {
            file,
            path: path.to_path_buf(),
            created,
            written: false,
        })
    }

    /// Whether this start created the file (only then is it handed to the
    /// daemon user).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Replaces the contents with `pid`.
    pub fn write(&mut self, pid: u32) -> Result<()> {
        use std::io::Write;
        self.file
            .set_len(0)
            .and_then(|()| writeln!(self.file, "{pid}"))
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io("writing pid file", e))?;
        self.written = true;
        Ok(())
    }

    /// Keeps the file as it is when dropped (the detached child: its
    /// parent wrote it).
    fn keep(mut self) {
        self.written = true;
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if self.created && !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Detaches from the terminal: the parent writes the child's pid to the pid
/// file and exits 0; the child continues in a new session with stdio on
/// /dev/null. Returns in the child only. If the parent cannot record the
/// pid it stops the child and fails, rather than leave an untracked server.
pub fn detach(pid_file: Option<PidFile>) -> Result<()> {
    // SAFETY: called before any thread is started (see module docs).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::io("fork", io::Error::last_os_error()));
    }
    if pid > 0 {
        if let Some(mut file) = pid_file
            && let Err(e) = file.write(pid as u32)
        {
            // SAFETY: signalling the child we just forked.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            return Err(e);
        }
        // SAFETY: the parent leaves without running destructors or atexit
        // handlers that belong to the child now.
        unsafe { libc::_exit(0) };
    }
    if let Some(file) = pid_file {
        file.keep();
    }
    // SAFETY: setsid and dup2 on our own descriptors.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops it.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Installs handlers for SIGTERM, SIGINT, SIGHUP and SIGALRM that write the
/// signal number to a non-blocking pipe; returns its read end. SIGPIPE is
/// ignored (write errors end the job instead).
pub fn signal_pipe() -> Result<RawFd> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 into a local array; sigaction with a handler that only
    // calls write(2).
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) != 0 {
            return Err(Error::io("pipe", io::Error::last_os_error()));
        }
        SIGNAL_PIPE.store(fds[1], Ordering::Relaxed);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGALRM] {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    Ok(fds[0])
}

/// `--lifetime N`: SIGALRM after N seconds ends the daemon.
pub fn set_lifetime(seconds: u64) {
    if seconds > 0 {
        // SAFETY: alarm has no preconditions.
        unsafe { libc::alarm(u32::try_from(seconds).unwrap_or(u32::MAX)) };
    }
}

/// Ends the process the way the signal would have, after clean-up.
pub fn reraise(sig: i32) -> ! {
    // SAFETY: restoring the default action and raising it on ourselves.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
        libc::_exit(128 + sig)
    }
}

/// Checks, as the user the daemon now runs as, that job directories can be
/// made in `dir` (its TMPDIR). Without this a daemon started as root with a
/// root-owned TMPDIR would accept every job and fail each one.
pub fn check_work_dir(dir: &Path) -> Result<()> {
    let probe = dir.join(format!("distccd_probe_{}", std::process::id()));
    match std::fs::create_dir(&probe) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&probe);
            Ok(())
        }
        Err(e) => Err(Error::new(
            Kind::Io,
            format!(
                "cannot create job directories in TMPDIR {} as uid {}: {e} \
                 (set TMPDIR to a directory this user can write, or --user)",
                dir.display(),
                // SAFETY: getuid cannot fail.
                unsafe { libc::getuid() }
            ),
        )),
    }
}

/// Sources, objects and replies are megabytes each, allocated and freed
/// once per job. By default glibc maps each of them afresh and unmaps it
/// when freed, so every job paid a page fault per 4 KiB of input and output
/// (a quarter of the daemon's CPU on large C++ units). Serving them from
/// the heap instead, and not trimming it, reuses the same pages: the
/// daemon's resident size stays near its peak rather than shrinking
/// between jobs. One arena for all threads: a buffer the loop frees after
/// a worker allocated it is reused by the next job whichever thread runs
/// it, instead of every worker keeping its own (RocksDB lzo, both daemons:
/// peak 30.2 against 46.6 MB, CPU per job within noise).
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator tuning; called before any
    // worker thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    distccd:x:102:65534::/nonexistent:/usr/sbin/nologin\n\
                    broken:x:abc:1::/:/bin/sh\n\
                    short:x:7\n";
        assert_eq!(passwd_entry(text, "distccd"), Some((102, 65534)));
        // A numeric --user takes its passwd entry's group (sweep M, D3:
        // it took the number as the group too).
        assert_eq!(primary_group_of(text, 102), Some(65534));
        assert_eq!(primary_group_of(text, 0), Some(0));
        assert_eq!(primary_group_of(text, 4321), None);
        assert_eq!(passwd_entry(text, "root"), Some((0, 0)));
        assert_eq!(passwd_entry(text, "distcc"), None);
        assert_eq!(passwd_entry(text, "broken"), None);
        assert_eq!(passwd_entry(text, "short"), None);
        assert_eq!(passwd_entry(text, ""), None);
    }
}
