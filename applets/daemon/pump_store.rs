//! A daemon-wide store of the files pump clients sent, shared by the
//! workers' trees through hard links.
//!
//! Each worker keeps its own tree (pump_root.rs), so without this the
//! first job on every worker, and every header a worker has not seen yet,
//! meant decompressing and creating a file, and file creation (ext4 inode
//! allocation) dominated the daemon's CPU on large C++ units. With the
//! store a file is decompressed and written once per daemon: every other
//! tree that needs the same bytes gets a hard link to it (`linkat`, no new
//! inode, no data written).
//!
//! Files are named by the length and keyed SipHash of the client's wire
//! (LZO) bytes (the key is random per process, so a client cannot craft a
//! collision); the index remembers each one's decompressed length. Trees never change a file in
//! place (a changed file is unlinked and created anew), so sharing inodes
//! between trees is safe. The store is bounded: past [`MAX_FILES`] files,
//! [`MAX_BYTES`] bytes, or the free space left on its file system it is
//! emptied (links in the trees keep their inodes), and a tree that finds
//! the file system full empties it before trying once more. It lives in
//! `$TMPDIR/distccd_store_PID_XXXXXX`, removed when the daemon's workers end.

use super::fsat::{Stamp, stamp_at};
use super::jobdir::{JobDir, cstr};
use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Most files kept.
pub const MAX_FILES: usize = 100_000;
/// Most bytes kept.
pub const MAX_BYTES: u64 = 2 << 30;

/// The process-wide key of the wire-bytes hash (trees and the store).
pub fn wire_hash(wire: &[u8]) -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new).hash_one(wire)
}

/// The store.
pub struct Store {
    /// The directory; removed when the store is dropped.
    _dir: JobDir,
    fd: OwnedFd,
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    /// (wire hash, wire length, written without `#line`) -> decompressed
    /// length and the file's stamp when stored.
    names: HashMap<(u64, usize, bool), (usize, Stamp, u64)>,
    bytes: u64,
}

fn name_of(hash: u64, wire_len: usize, stripped: bool) -> String {
    format!("{hash:016x}-{wire_len}-{}", u8::from(stripped))
}

impl Store {
    /// Creates the store's directory below `tmpdir`.
    pub fn create(tmpdir: &Path) -> Option<Store> {
        let template = format!("distccd_store_{}_XXXXXX", std::process::id());
        let dir = match JobDir::create_named(tmpdir, &template, false) {
            Ok(d) => d,
            Err(e) => {
                log::warn!("pump file store unavailable: {e}");
                return None;
            }
        };
        let fd: OwnedFd = File::open(dir.path()).ok()?.into();
        Some(Store {
            _dir: dir,
            fd,
            index: Mutex::new(Index::default()),
        })
    }

    /// Links the stored file with these wire bytes as `name` in `dir` (which
    /// must not exist there) if it decompresses to at most `budget` bytes;
    /// its stamp and length, or None if the store lacks it.
    pub fn link_into(
        &self,
        hash: u64,
        wire_len: usize,
        stripped: bool,
        budget: usize,
        dir: &OwnedFd,
        name: &CStr,
    ) -> Option<(Stamp, usize, u64)> {
        let key = (hash, wire_len, stripped);
        let (data_len, stored_stamp, content) = *self.lock().names.get(&key)?;
        if data_len > budget {
            return None;
        }
        let stored = cstr(name_of(hash, wire_len, stripped).as_bytes()).ok()?;
        // SAFETY: linkat between two directory fds we hold, names checked;
        // flags 0: the stored name is a regular file we created.
        let r = unsafe {
            libc::linkat(
                self.fd.as_raw_fd(),
                stored.as_ptr(),
                dir.as_raw_fd(),
                name.as_ptr(),
                0,
            )
        };
        if r != 0 {
            return None;
        }
        // Files are read-only and never changed in place; one that changed
        // anyway (a compiler run as root writing through a name in its
        // working directory) is not handed on: it leaves the store.
        let stamp = stamp_at(dir, name);
        if stamp != Some(stored_stamp) {
            // SAFETY: unlinkat of the link just made, and of the stored name.
            unsafe {
                libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0);
                libc::unlinkat(self.fd.as_raw_fd(), stored.as_ptr(), 0);
            }
            let mut index = self.lock();
            if index.names.remove(&key).is_some() {
                index.bytes -= data_len as u64;
            }
            log::warn!("a stored pump file changed after it was written: dropped from the store");
            return None;
        }
        Some((stamp?, data_len, content))
    }

    /// Adds the file just written as `name` in `dir` to the store.
    pub fn add(
        &self,
        (hash, wire_len, stripped): (u64, usize, bool),
        data_len: usize,
        content: u64,
        dir: &OwnedFd,
        name: &CStr,
    ) {
        let key = (hash, wire_len, stripped);
        let mut index = self.lock();
        if index.names.contains_key(&key) {
            return;
        }
        if index.names.len() >= MAX_FILES || index.bytes + data_len as u64 > MAX_BYTES {
            self.empty(&mut index);
        }
        let Ok(stored) = cstr(name_of(hash, wire_len, stripped).as_bytes()) else {
            return;
        };
        // SAFETY: linkat between two directory fds we hold, names checked.
        let r = unsafe {
            libc::linkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                self.fd.as_raw_fd(),
                stored.as_ptr(),
                0,
            )
        };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) {
            // The stored file's own stamp (an older one of that name, if
            // linking found one: checked again when it is handed on).
            if let Some(stamp) = stamp_at(&self.fd, &stored) {
                index.names.insert(key, (data_len, stamp, content));
                index.bytes += data_len as u64;
            }
        }
        if index.bytes > self.free_bytes() {
            self.empty(&mut index);
        }
    }

    /// Lets every stored file go (the file system is full); whether there
    /// was anything to let go.
    pub fn release(&self) -> bool {
        let mut index = self.lock();
        let had = !index.names.is_empty();
        if had {
            log::warn!(
                "{}: no space left; emptying the pump file store ({} files, {} bytes)",
                self._dir.path().display(),
                index.names.len(),
                index.bytes
            );
            self.empty(&mut index);
        }
        had
    }

    /// The bytes still free on the store's file system (unlimited if it
    /// cannot be asked). The store never holds more than that: on a small
    /// or memory-backed `$TMPDIR` it must not crowd out the compiles.
    fn free_bytes(&self) -> u64 {
        // SAFETY: fstatvfs into a zeroed struct, on a descriptor we hold.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            if libc::fstatvfs(self.fd.as_raw_fd(), &mut st) != 0 {
                return u64::MAX;
            }
            (st.f_bavail as u64).saturating_mul(st.f_frsize as u64)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Unlinks every stored name (trees keep their own links).
    fn empty(&self, index: &mut Index) {
        for &(hash, wire_len, stripped) in index.names.keys() {
            if let Ok(c) = cstr(name_of(hash, wire_len, stripped).as_bytes()) {
                // SAFETY: unlinkat of a name in our store directory.
                unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) };
            }
        }
        index.names.clear();
        index.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::pump_root::Tree;
    use super::super::pump_root::tests::file;
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn trees_share_unpacked_files_through_links() {
        let base = std::env::temp_dir().join(format!("pumpstore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let store = Store::create(&base).unwrap();
        let mut a = Tree::create(base.join("a")).unwrap();
        let mut b = Tree::create(base.join("b")).unwrap();
        let req = [file("/p/x.h", b"int x;\n"), file("/p/y.h", b"int y;\n")];
        a.sync(b"/p", &req, 1 << 20, Some(&store), false).unwrap();
        b.sync(b"/p", &req, 1 << 20, Some(&store), false).unwrap();
        let ino = |p: &str| std::fs::metadata(base.join(p)).unwrap().ino();
        assert_eq!(ino("a/p/x.h"), ino("b/p/x.h"));
        assert_eq!(std::fs::read(base.join("b/p/y.h")).unwrap(), b"int y;\n");
        // Other bytes at the same name in one tree leave the other alone.
        b.sync(
            b"/p",
            &[file("/p/x.h", b"int X;\n")],
            1 << 20,
            Some(&store),
            false,
        )
        .unwrap();
        assert_eq!(std::fs::read(base.join("a/p/x.h")).unwrap(), b"int x;\n");
        assert_eq!(std::fs::read(base.join("b/p/x.h")).unwrap(), b"int X;\n");
        assert!(!base.join("b/p/y.h").exists());
        // A stored file is only linked where the budget allows it.
        let mut c = Tree::create(base.join("c")).unwrap();
        assert!(c.sync(b"/p", &req[..1], 3, Some(&store), false).is_err());
        drop(store);
        let left: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("distccd_store_"))
            .collect();
        assert!(left.is_empty(), "store left behind: {left:?}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_stored_file_changed_in_place_is_not_handed_on() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("pumpstore-poison-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let store = Store::create(&base).unwrap();
        let mut a = Tree::create(base.join("a")).unwrap();
        let req = [file("/p/x.h", b"int x;\n")];
        a.sync(b"/p", &req, 1 << 20, Some(&store), false).unwrap();
        let x = base.join("a/p/x.h");
        let mode = std::fs::metadata(&x).unwrap().permissions().mode();
        assert_eq!(mode & 0o222, 0, "pump files are read-only: {mode:o}");
        // What only a compiler run as root could do: rewrite it in place.
        std::fs::set_permissions(&x, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&x)
            .unwrap();
        f.write_all(b"pragma Ada_2012;\n").unwrap();
        drop(f);
        let mut b = Tree::create(base.join("b")).unwrap();
        b.sync(b"/p", &req, 1 << 20, Some(&store), false).unwrap();
        assert_eq!(std::fs::read(base.join("b/p/x.h")).unwrap(), b"int x;\n");
        drop(store);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
