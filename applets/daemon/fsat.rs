//! Directory-relative file operations (`openat` family) that never follow
//! a symlink, for the pump tree (pump_root.rs): walking into a directory,
//! reading a link, and removing an entry of any kind with everything below
//! it. Working from directory descriptors instead of path strings means a
//! symlink planted by a client can never redirect a walk, a write or a
//! removal outside the job's root.

use super::jobdir::cstr;
use distcc::{Error, Kind, Result};
use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Why a path could not be walked.
pub fn hostile(what: &str, path: &[u8]) -> Error {
    Error::new(
        Kind::Protocol,
        format!("{what}: {:?}", String::from_utf8_lossy(path)),
    )
}

/// Opens the directory `name` in `dir` without following a symlink,
/// creating it first when `create` is set and it does not exist.
pub fn open_dir_at(dir: &OwnedFd, name: &[u8], create: bool) -> Result<OwnedFd> {
    let c = cstr(name)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    for _ in 0..2 {
        // SAFETY: openat with a valid directory fd and NUL-terminated name.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
        if fd >= 0 {
            // SAFETY: fd was just returned by openat and is owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOENT) if create => {
                // SAFETY: mkdirat with a valid directory fd and name.
                if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o777) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(Error::io("mkdirat", e));
                    }
                }
            }
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                return Err(hostile("path passes through a symlink or file", name));
            }
            _ => return Err(Error::io("openat", err)),
        }
    }
    Err(hostile("directory vanished while created", name))
}

/// The target of the symlink `name` in `dir`, if it is one.
pub fn read_link_at(dir: &OwnedFd, name: &CStr) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: readlinkat into a buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A regular file's identity and last data change: a file replaced or
/// rewritten since the stamp was taken has another stamp. (Not ctime: hard
/// links to a shared file, pump_store.rs, change it without changing the
/// data.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    size: i64,
    mtime: (i64, i64),
}

impl Stamp {
    /// The inode.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The modification time (seconds, nanoseconds).
    pub fn mtime(&self) -> (i64, i64) {
        self.mtime
    }

    fn from_stat(st: &libc::stat) -> Stamp {
        Stamp {
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
        }
    }

    /// The stamp of an open file.
    pub fn of(file: &std::fs::File) -> std::io::Result<Stamp> {
        // SAFETY: fstat on an open descriptor into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Stamp::from_stat(&st))
    }
}

/// The stamp of the regular file `name` in `dir` (None: missing, not a
/// regular file, or a symlink).
/// Sets the access and modification times of regular file `name` in `dir`
/// (not following a link) to `mtime`.
pub fn set_mtime_at(dir: &OwnedFd, name: &CStr, mtime: (i64, i64)) -> std::io::Result<()> {
    let t = libc::timespec {
        tv_sec: mtime.0 as libc::time_t,
        tv_nsec: mtime.1 as libc::c_long,
    };
    let times = [t, t];
    // SAFETY: utimensat with a live directory fd, a NUL-terminated name and
    // two valid timespecs.
    let r = unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub fn stamp_at(dir: &OwnedFd, name: &CStr) -> Option<Stamp> {
    // SAFETY: fstatat without following links, into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG).then(|| Stamp::from_stat(&st))
}

/// Removes `name` from `dir` whatever it is (file, link, or a directory
/// with everything below it). A missing entry is not an error.
pub fn remove_at(dir: &OwnedFd, name: &CStr, depth: usize) -> Result<()> {
    // SAFETY: unlinkat with a valid directory fd and name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOENT) => return Ok(()),
        Some(libc::EISDIR) | Some(libc::EPERM) => {}
        _ => return Err(Error::io("unlinkat", err)),
    }
    if depth > 4096 {
        return Err(Error::new(Kind::Protocol, "pump tree nested too deeply"));
    }
    let sub = open_dir_at(dir, name.to_bytes(), false)?;
    for child in list_dir(&sub)? {
        remove_at(&sub, &child, depth + 1)?;
    }
    drop(sub);
    // SAFETY: unlinkat(AT_REMOVEDIR) with a valid directory fd and name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
        return Err(Error::io("rmdir", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The names in a directory, without `.` and `..`.
fn list_dir(dir: &OwnedFd) -> Result<Vec<std::ffi::CString>> {
    // fdopendir takes ownership of the descriptor it is given: give it a dup.
    let dup = dir.try_clone().map_err(|e| Error::io("dup", e))?;
    let raw = {
        use std::os::fd::IntoRawFd;
        dup.into_raw_fd()
    };
    // SAFETY: fdopendir on a descriptor we own; closedir below frees both.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let e = std::io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the descriptor is still ours to close.
        unsafe { libc::close(raw) };
        return Err(Error::io("fdopendir", e));
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: readdir on an open stream; the entry is copied before the next call.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is a NUL-terminated array inside the entry.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(name.to_owned());
        }
    }
    // SAFETY: closing the stream opened above.
    unsafe { libc::closedir(stream) };
    Ok(names)
}
