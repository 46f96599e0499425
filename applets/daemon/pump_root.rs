//! Unpacking a protocol-3 (pump) request into the job's private root.
//!
//! Stock 3.4 concatenates root + NAME without any check, so a NAME like
//! `/../../victim` overwrites and deletes files outside the root, and a
//! planted `LINK` lets a later `FILE` write through it (facts §7). Here:
//! CDIR and every NAME must be absolute, free of `.` and `..` components
//! (empty components from `//` are dropped); directories are walked one
//! component at a time with `openat(O_NOFOLLOW | O_DIRECTORY)` and files
//! are created with `O_NOFOLLOW`, so no write ever passes through a
//! symlink; a LINK is created by `symlinkat` in a directory reached that
//! way, so the link itself always lies beneath the root. Relative link
//! targets are kept verbatim (system directories are `../` chains by
//! design), absolute ones are re-rooted, as in stock (facts §1.10.1).

use super::jobdir::cstr;
use distcc::protocol::{FileContent, FileEntry};
use distcc::{Error, Kind, Result};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn hostile(what: &str, path: &[u8]) -> Error {
    Error::new(
        Kind::Protocol,
        format!("{what}: {:?}", String::from_utf8_lossy(path)),
    )
}

/// The components of an absolute client path, checked.
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>> {
    if !path.starts_with(b"/") {
        return Err(hostile("path is not absolute", path));
    }
    if path.contains(&0) {
        return Err(hostile("path contains NUL", path));
    }
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    if parts.iter().any(|&c| c == b"." || c == b"..") {
        return Err(hostile("path has a . or .. component", path));
    }
    Ok(parts)
}

/// The root directory, open, plus its path.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn open_dir_at(dir: &OwnedFd, name: &[u8], create: bool) -> Result<OwnedFd> {
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
fn read_link_at(dir: &OwnedFd, name: &std::ffi::CStr) -> Option<Vec<u8>> {
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

impl Root {
    /// Creates the root directory at `path` (inside the job directory).
    pub fn create(path: PathBuf) -> Result<Root> {
        std::fs::create_dir(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let fd =
            File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Root {
            fd: fd.into(),
            path,
        })
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Walks (creating) the directories `parts` below the root.
    fn walk(&self, parts: &[&[u8]]) -> Result<OwnedFd> {
        let mut dir = self.fd.try_clone().map_err(|e| Error::io("dup", e))?;
        for part in parts {
            dir = open_dir_at(&dir, part, true)?;
        }
        Ok(dir)
    }

    /// Creates the client's working directory; returns its server path.
    pub fn make_cwd(&self, cdir: &[u8]) -> Result<PathBuf> {
        let parts = components(cdir)?;
        self.walk(&parts)?;
        let mut p = self.path.clone();
        for part in parts {
            p.push(std::ffi::OsStr::from_bytes(part));
        }
        Ok(p)
    }

    /// Writes every NAME entry; `budget` caps the decompressed bytes in all.
    pub fn unpack(&self, entries: &[FileEntry], mut budget: usize) -> Result<()> {
        for entry in entries {
            let parts = components(&entry.name)?;
            let Some((last, dirs)) = parts.split_last() else {
                return Err(hostile("NAME names the root itself", &entry.name));
            };
            let dir = self.walk(dirs)?;
            let name = cstr(last)?;
            match &entry.content {
                FileContent::File(lzo) => {
                    let data = distcc::compress::decompress(lzo, budget)?;
                    budget -= data.len();
                    let flags = libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_TRUNC
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC;
                    // SAFETY: openat with a valid directory fd and name.
                    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0o666) };
                    if fd < 0 {
                        let e = std::io::Error::last_os_error();
                        if e.raw_os_error() == Some(libc::ELOOP) {
                            return Err(hostile("FILE would write through a symlink", &entry.name));
                        }
                        return Err(Error::io("creating a pump file", e));
                    }
                    // SAFETY: fd was just returned by openat.
                    let mut file = unsafe { File::from_raw_fd(fd) };
                    file.write_all(&data)
                        .map_err(|e| Error::io("writing a pump file", e))?;
                }
                FileContent::Link(target) => {
                    let target = if target.starts_with(b"/") {
                        let mut t = self.path.as_os_str().as_bytes().to_vec();
                        t.extend_from_slice(target);
                        t
                    } else {
                        target.clone()
                    };
                    let t = cstr(&target)?;
                    // SAFETY: symlinkat with valid strings and directory fd.
                    if unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), name.as_ptr()) } != 0 {
                        let err = std::io::Error::last_os_error();
                        // The same link sent twice is harmless.
                        if err.raw_os_error() == Some(libc::EEXIST)
                            && read_link_at(&dir, &name).as_deref() == Some(&target[..])
                        {
                            continue;
                        }
                        return Err(Error::io(
                            format!("creating link {:?}", String::from_utf8_lossy(&entry.name)),
                            err,
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, data: &[u8]) -> FileEntry {
        FileEntry {
            name: name.as_bytes().to_vec(),
            content: FileContent::File(distcc::compress::compress(data)),
        }
    }

    fn link(name: &str, target: &str) -> FileEntry {
        FileEntry {
            name: name.as_bytes().to_vec(),
            content: FileContent::Link(target.as_bytes().to_vec()),
        }
    }

    #[test]
    fn path_checks() {
        assert_eq!(components(b"/a//b/c").unwrap(), vec![&b"a"[..], b"b", b"c"]);
        for bad in [&b"a/b"[..], b"/a/../b", b"/./a", b"/a/..", b""] {
            assert!(
                components(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn no_write_through_links() {
        let base = std::env::temp_dir().join(format!("pumproot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let root = Root::create(base.join("root")).unwrap();
        root.unpack(
            &[
                file("/home/u/a.c", b"int x;\n"),
                link("/usr/include", "../../usr/include"),
            ],
            1 << 20,
        )
        .unwrap();
        assert_eq!(
            std::fs::read(base.join("root/home/u/a.c")).unwrap(),
            b"int x;\n"
        );
        // The same link again is fine, a different target at that name is not.
        let again = [link("/usr/include", "../../usr/include")];
        root.unpack(&again, 1 << 20).unwrap();
        assert!(
            root.unpack(&[link("/usr/include", "/etc")], 1 << 20)
                .is_err()
        );
        let escape = format!("{}", outside.display());
        // A link pointing outside, then a FILE through it: refused.
        root.unpack(
            &[link("/evil", &format!("../../../../../../..{escape}"))],
            1 << 20,
        )
        .unwrap();
        assert!(root.unpack(&[file("/evil/victim", b"x")], 1 << 20).is_err());
        // A link named like an existing file, then a FILE at the link: refused.
        root.unpack(&[link("/home/u/l.h", "/etc/passwd")], 1 << 20)
            .unwrap();
        assert!(root.unpack(&[file("/home/u/l.h", b"x")], 1 << 20).is_err());
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        // Absolute link targets are re-rooted.
        let t = std::fs::read_link(base.join("root/home/u/l.h")).unwrap();
        assert!(t.starts_with(base.join("root")), "{t:?}");
        // Decompression budget.
        assert!(root.unpack(&[file("/big", &vec![0u8; 4096])], 100).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
