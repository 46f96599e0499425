//! Slot lock files and backoff files in `$DISTCC_DIR/lock`, shared with stock distcc.
//!
//! A job holds an exclusive `fcntl(F_SETLK, F_WRLCK)` lock on
//! `cpu_<key>_<slot>` for as long as it uses that slot (facts §4.7), with the
//! same names as distcc 3.4 (`cpu_localhost_N`, `cpu_tcp_<host>_<port>_N`,
//! `cpu_ssh_<host>_N`), so our client and a stock client on one machine share
//! the same limits. A failed host gets `backoff_<key>_0` (one byte, mtime =
//! failure time); hosts with a fresh backoff file are skipped. The lock is
//! released when the [`SlotLock`] is dropped (closing the descriptor drops
//! the fcntl lock).

use crate::error::{Error, Kind, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A held slot lock; dropping it releases the slot.
#[derive(Debug)]
pub struct SlotLock {
    _file: File,
    path: PathBuf,
    /// The slot number.
    pub slot: u32,
}

impl SlotLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Name of the lock file of `key` (see [`crate::hosts::HostSpec::lock_key`]) and `slot`.
pub fn cpu_lock_name(key: &str, slot: u32) -> String {
    format!("cpu_{key}_{slot}")
}

/// Name of the backoff file of `key`.
pub fn backoff_name(key: &str) -> String {
    format!("backoff_{key}_0")
}

/// Creates `dir` (and parents) if needed.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))
}

/// Whether lock files can be made in `dir` (a read-only file system or a
/// directory of another user's cannot).
pub fn writable_dir(dir: &Path) -> Result<()> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::new(Kind::Io, format!("{}: NUL in the name", dir.display())))?;
    // SAFETY: access(2) with a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        return Ok(());
    }
    Err(Error::io(
        format!("{} is not writable", dir.display()),
        std::io::Error::last_os_error(),
    ))
}

/// A lock directory of this user's own, `$TMPDIR/distcc-<uid>/lock`, for
/// when `$DISTCC_DIR/lock` cannot be used. Its parent is made with mode
/// 0700 and must be a real directory owned by this user (never a link or
/// a directory someone else made).
pub fn private_dir() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let top = std::env::temp_dir().join(format!("distcc-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&top);
    let meta = std::fs::symlink_metadata(&top)
        .map_err(|e| Error::io(format!("lstat {}", top.display()), e))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(Error::new(
            Kind::Io,
            format!("{} is not a private directory of uid {uid}", top.display()),
        ));
    }
    let dir = top.join("lock");
    ensure_dir(&dir)?;
    writable_dir(&dir)?;
    Ok(dir)
}

/// Tries to take slot `slot` of `key` without blocking. `Ok(None)` = busy.
pub fn try_lock(dir: &Path, key: &str, slot: u32) -> Result<Option<SlotLock>> {
    let path = dir.join(cpu_lock_name(key, slot));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(&path)
        .map_err(|e| Error::io(format!("open lock {}", path.display()), e))?;
    // SAFETY: an all-zero flock is a valid value; we fill the fields we use.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: fcntl on a descriptor we own with a valid flock pointer.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
    if rc == 0 {
        return Ok(Some(SlotLock {
            _file: file,
            path,
            slot,
        }));
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(None),
        _ => Err(Error::io(format!("lock {}", path.display()), err)),
    }
}

/// Whether `key` has a backoff file younger than `period` (0 = backoff disabled).
pub fn is_backed_off(dir: &Path, key: &str, period: Duration) -> bool {
    if period.is_zero() {
        return false;
    }
    let Ok(meta) = std::fs::metadata(dir.join(backoff_name(key))) else {
        return false;
    };
    let Ok(mtime) = meta.modified() else {
        return false;
    };
    match SystemTime::now().duration_since(mtime) {
        Ok(age) => age < period,
        Err(_) => true,
    }
}

/// Marks `key` as failed now (no-op when backoff is disabled).
pub fn mark_backoff(dir: &Path, key: &str, period: Duration) -> Result<()> {
    if period.is_zero() {
        return Ok(());
    }
    let path = dir.join(backoff_name(key));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o666)
        .open(&path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    f.write_all(b"x")
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Removes the backoff file of `key` after a successful job.
pub fn clear_backoff(dir: &Path, key: &str, period: Duration) {
    if !period.is_zero() {
        let _ = std::fs::remove_file(dir.join(backoff_name(key)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When `$DISTCC_DIR/lock` cannot be used, a private directory keeps
    /// the slot limits (sweep N, D5: there were none at all).
    #[test]
    fn a_private_lock_directory_is_made_private() {
        use std::os::unix::fs::MetadataExt;
        let dir = private_dir().unwrap();
        assert!(dir.ends_with("lock"));
        let top = std::fs::symlink_metadata(dir.parent().unwrap()).unwrap();
        assert!(top.is_dir() && top.mode() & 0o077 == 0, "{:o}", top.mode());
        writable_dir(&dir).unwrap();
        assert!(try_lock(&dir, "tcp_probe_1_0", 0).unwrap().is_some());
    }
    use std::process::Command;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("distcc-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn lock_is_exclusive_across_processes() {
        let dir = tmp("x");
        let held = try_lock(&dir, "tcp_h_1", 0).unwrap().expect("free");
        assert_eq!(
            held.path().file_name().unwrap().to_str(),
            Some("cpu_tcp_h_1_0")
        );
        // flock(1) uses flock(2), not fcntl; test with python's fcntl.lockf (fcntl-based).
        let probe = |d: &Path| {
            Command::new("python3")
                .arg("-c")
                .arg("import fcntl,sys\ntry:\n f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError: sys.exit(1)")
                .arg(d.join("cpu_tcp_h_1_0"))
                .status()
                .unwrap()
                .success()
        };
        assert!(!probe(&dir), "another process could take a held lock");
        drop(held);
        assert!(probe(&dir), "lock not released on drop");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn backoff_files() {
        let dir = tmp("b");
        let p = Duration::from_secs(60);
        assert!(!is_backed_off(&dir, "tcp_h_1", p));
        mark_backoff(&dir, "tcp_h_1", p).unwrap();
        assert_eq!(std::fs::read(dir.join("backoff_tcp_h_1_0")).unwrap(), b"x");
        assert!(is_backed_off(&dir, "tcp_h_1", p));
        assert!(!is_backed_off(&dir, "tcp_h_1", Duration::ZERO));
        clear_backoff(&dir, "tcp_h_1", p);
        assert!(!is_backed_off(&dir, "tcp_h_1", p));
        mark_backoff(&dir, "k", Duration::ZERO).unwrap();
        assert!(!dir.join("backoff_k_0").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
