//! The private directory of a job: `mkdtemp("$TMPDIR/distccd_PID_XXXXXX")`,
//! mode 0700. Everything a job leaves in it is removed when the job ends,
//! whatever happens (unless `DISTCC_SAVE_TEMPS=1`: then the name is stock's
//! `distccd_XXXXXX`, and it stays).
//!
//! The daemon's pid in the name is for a daemon that died without cleaning
//! up (`kill -9`, the OOM killer, a crash): the next one to start removes
//! the directories, and the pump store, of pids no longer running and held
//! by no process (each directory is open with a shared `flock` while it
//! lives, which also covers a daemon in another pid namespace sharing this
//! TMPDIR) ([`remove_orphans`]). Stock's names (`distccd_` and six characters from
//! mkdtemp's alphabet, which has no `_`) never match, so a stock daemon's
//! directories on the same machine are left alone.
//!
//! Each worker keeps its emptied directory in a [`Slot`] for its next job:
//! creating and deleting a directory per job was the largest part of the
//! daemon's own CPU time (ext4 inode allocation). The pump tree under
//! `root/` is kept too, and brought up to date by the next pump job
//! (pump_root.rs). A directory that cannot be emptied completely is
//! removed and replaced by a fresh one; the directory itself goes when its
//! worker ends.
//!
//! Layout: `in.<ext>` (a v1/v2 source of unknown language; known ones go
//! to the compiler on stdin), `out.o`, `deps.d`, anything the
//! compiler puts in its `TMPDIR`, and for protocol 3 the client's tree
//! under `root/`. Only `root/` is shaped by the client, so nothing it sends
//! can pre-empt the paths the compiler writes.

use super::pump_root::Tree;
use distcc::{Error, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// A job directory, removed on drop.
pub struct JobDir {
    path: PathBuf,
    keep: bool,
    /// The directory, open with a shared `flock` for as long as it lives:
    /// how another daemon tells it from an orphan, whatever the pid
    /// namespace ([`remove_orphans`]).
    _held: Option<std::fs::File>,
}

/// Opens directory `path` (not through a symlink).
fn open_dir(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// Opens directory `path` and takes a shared `flock` on it.
fn hold(path: &Path) -> std::io::Result<std::fs::File> {
    let dir = open_dir(path)?;
    // SAFETY: flock on a descriptor we own.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&dir),
            libc::LOCK_SH | libc::LOCK_NB,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(dir)
}

/// Whether no process holds directory `path` (see [`hold`]): an orphan.
fn unheld(path: &Path) -> bool {
    let Ok(dir) = open_dir(path) else {
        return false;
    };
    // SAFETY: flock on a descriptor we own; released when it closes.
    unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&dir),
            libc::LOCK_EX | libc::LOCK_NB,
        ) == 0
    }
}

impl JobDir {
    /// Creates a fresh directory below `tmpdir`.
    pub fn create(tmpdir: &Path, keep: bool) -> Result<JobDir> {
        if keep {
            JobDir::create_named(tmpdir, "distccd_XXXXXX", keep)
        } else {
            let template = format!("distccd_{}_XXXXXX", std::process::id());
            JobDir::create_named(tmpdir, &template, keep)
        }
    }

    /// Creates a fresh directory below `tmpdir` from a mkdtemp template,
    /// held (see [`hold`]) unless it is kept.
    pub fn create_named(tmpdir: &Path, template: &str, keep: bool) -> Result<JobDir> {
        let mut last = None;
        // A directory that another daemon's sweep took for an orphan in
        // the moment before it was held is made again.
        for _ in 0..5 {
            let mut buf = tmpdir.join(template).into_os_string().into_vec();
            buf.push(0);
            // SAFETY: mkdtemp rewrites the X's of a NUL-terminated buffer we own.
            let p = unsafe { libc::mkdtemp(buf.as_mut_ptr().cast()) };
            if p.is_null() {
                return Err(Error::io(
                    format!("creating a job directory in {}", tmpdir.display()),
                    std::io::Error::last_os_error(),
                ));
            }
            buf.pop();
            let path = PathBuf::from(std::ffi::OsString::from_vec(buf));
            if keep {
                return Ok(JobDir {
                    path,
                    keep,
                    _held: None,
                });
            }
            match hold(&path) {
                Ok(held) => {
                    return Ok(JobDir {
                        path,
                        keep,
                        _held: Some(held),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Error::io(
            format!("holding a job directory in {}", tmpdir.display()),
            last.unwrap_or_else(|| std::io::Error::other("no directory")),
        ))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Once the daemon stops, removed after it exits.
        let path = std::mem::take(&mut self.path);
        let Some((path, _held)) = super::deferred_removal::take(path, self._held.take()) else {
            return;
        };
        // remove_dir_all does not follow symlinks, so links a pump client
        // planted under root/ are removed, never their targets.
        if let Err(e) = std::fs::remove_dir_all(&path) {
            log::warn!("removing {}: {e}", path.display());
        }
    }
}

/// The name of the pump tree inside a job directory.
const TREE: &str = "root";

/// A worker's reusable job directory, pump tree and source buffer, and the
/// daemon's shared pump store.
#[derive(Default)]
pub struct Slot {
    dir: Option<JobDir>,
    tree: Option<Tree>,
    store: Option<std::sync::Arc<super::pump_store::Store>>,
    source: Vec<u8>,
}

/// A decoded source buffer is kept for the worker's next job up to this
/// capacity (multi-megabyte C++ units fit; an outlier is not held on to).
const KEEP_SOURCE_BUFFER: usize = 16 << 20;

impl Slot {
    /// A slot whose pump trees share `store`.
    pub fn with_store(store: Option<std::sync::Arc<super::pump_store::Store>>) -> Slot {
        Slot {
            store,
            ..Slot::default()
        }
    }

    /// The daemon's shared pump store, if there is one.
    pub fn store(&self) -> Option<&super::pump_store::Store> {
        self.store.as_deref()
    }

    /// An empty private directory for the next job.
    /// A kept directory that a temp cleaner (systemd-tmpfiles, tmpreaper,
    /// an admin) removed meanwhile is replaced, with its pump tree.
    pub fn take(&mut self, tmpdir: &Path, keep: bool) -> Result<JobDir> {
        match self.dir.take() {
            Some(d) if !keep && d.path.starts_with(tmpdir) && is_dir(&d.path) => Ok(d),
            Some(mut gone) if !is_dir(&gone.path) => {
                log::warn!(
                    "job directory {} was removed; creating a new one",
                    gone.path.display()
                );
                gone.keep = true;
                self.tree = None;
                JobDir::create(tmpdir, keep)
            }
            _ => JobDir::create(tmpdir, keep),
        }
    }

    /// The buffer to decode the next LZO source into: the last job's, so a
    /// worker does not fault in and grow fresh memory for every source.
    pub fn take_source_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.source)
    }

    /// Keeps `buffer` for the next job if it is larger than the one kept
    /// (a plain job's small body does not displace a decode buffer) and not
    /// oversized. Only once the compiler's group is gone: its pages were
    /// lent to its stdin pipe.
    pub fn give_back_source_buffer(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() > self.source.capacity() && buffer.capacity() <= KEEP_SOURCE_BUFFER {
            self.source = buffer;
        }
    }

    /// The pump tree of `dir`: the one the last job left there, or a new
    /// empty one.
    pub fn take_tree(&mut self, dir: &JobDir) -> Result<Tree> {
        let path = dir.join(TREE);
        match self.tree.take() {
            Some(t) if t.path() == path && is_dir(&path) => Ok(t),
            _ => Tree::create(path),
        }
    }

    /// Empties `dir` and keeps it for the next job, with `tree` (the job's
    /// pump tree, if it is sound) left in place; a directory that cannot be
    /// emptied is dropped (removed) instead.
    pub fn give_back(&mut self, dir: JobDir, tree: Option<Tree>) {
        if dir.keep {
            return;
        }
        let keep_tree = tree.is_some();
        match clear(&dir.path, keep_tree) {
            Ok(()) => {
                self.dir = Some(dir);
                self.tree = tree;
            }
            Err(e) => log::warn!("emptying {}: {e}; replacing it", dir.path.display()),
        }
    }
}

/// The pid in the name of a directory made by [`JobDir::create`] without
/// `keep`, or of a pump store (`distccd_store_PID_XXXXXX`).
fn owner_pid(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(b"distccd_")?;
    let rest = rest.strip_prefix(b"store_").unwrap_or(rest);
    let (pid, random) = rest.split_at(rest.iter().position(|&c| c == b'_')?);
    let random = &random[1..];
    if pid.is_empty() || pid.len() > 10 || !pid.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if random.len() != 6 || !random.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}

/// Removes the job directories and pump stores in `tmpdir` that daemons no
/// longer running left behind: ours by name, owned by this user, real
/// directories (not links), whose pid has no `/proc` entry. Returns how
/// many were removed.
pub fn remove_orphans(tmpdir: &Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmpdir) else {
        return 0;
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten().take(100_000) {
        let Some(pid) = owner_pid(entry.file_name().as_bytes()) else {
            continue;
        };
        let path = entry.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        // A live daemon holds its directories, whatever its pid namespace
        // (a /proc of our own would not show it).
        if !ours || Path::new(&format!("/proc/{pid}")).exists() || !unheld(&path) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                log::info!(
                    "removed {}, left by distccd[{pid}], which is no longer running",
                    path.display()
                );
                removed += 1;
            }
            Err(e) => log::warn!("removing {}: {e}", path.display()),
        }
    }
    removed
}

/// Whether `path` is still a directory (not followed if a link).
fn is_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Removes every entry of `dir` without following symlinks (but the pump
/// tree when `keep_tree`).
fn clear(dir: &Path, keep_tree: bool) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if keep_tree && entry.file_name() == TREE {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// A C string for a path component (no NUL possible: the decoder refuses them).
pub fn cstr(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| {
        Error::new(
            distcc::Kind::Protocol,
            "path contains a NUL byte".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_removed() {
        let base = std::env::temp_dir();
        let path = {
            let d = JobDir::create(&base, false).unwrap();
            std::fs::write(d.join("x"), b"1").unwrap();
            assert!(
                d.path()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("distccd_")
            );
            d.path().to_path_buf()
        };
        assert!(!path.exists());
    }

    #[test]
    fn names_carry_the_pid_unless_kept() {
        let base = std::env::temp_dir();
        let d = JobDir::create(&base, false).unwrap();
        let name = d.path().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            owner_pid(name.as_bytes()),
            Some(std::process::id()),
            "{name}"
        );
        let kept = JobDir::create(&base, true).unwrap();
        let name = kept
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(owner_pid(name.as_bytes()), None, "{name}");
        std::fs::remove_dir(kept.path()).unwrap();
        assert_eq!(owner_pid(b"distccd_store_12_aB3xYz"), Some(12));
        for stockish in [
            &b"distccd_aB3xYz"[..],
            b"distccd_12_aB3xY",
            b"distccd__aB3xYz",
            b"distccd_1x_aB3xYz",
            b"distccd_12_aB3x.z",
            b"distccd_store_aB3xYz",
        ] {
            assert_eq!(owner_pid(stockish), None, "{stockish:?}");
        }
    }

    #[test]
    fn orphans_of_dead_daemons_are_removed_and_nothing_else() {
        let base = std::env::temp_dir().join(format!("distccd-orphans-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        // A pid that ran and ended (not reaped until `wait`, so not reused).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let dead_job = base.join(format!("distccd_{dead}_aB3xYz"));
        let dead_store = base.join(format!("distccd_store_{dead}_Qr5tUv"));
        let live = base.join(format!("distccd_{me}_aB3xYz"));
        let stock = base.join("distccd_aB3xYz");
        let file = base.join(format!("distccd_{dead}_fILE01"));
        for d in [&dead_job, &dead_store, &live, &stock] {
            std::fs::create_dir_all(d.join("root/usr")).unwrap();
            std::fs::write(d.join("root/usr/a.h"), b"x").unwrap();
        }
        std::fs::write(&file, b"not a directory").unwrap();
        // A link with an orphan's name: neither it nor its target goes.
        let link = base.join(format!("distccd_{dead}_LiNk01"));
        std::os::unix::fs::symlink(&stock, &link).unwrap();
        // A pid this /proc does not show, but a live holder (a daemon in
        // another pid namespace sharing the TMPDIR).
        let elsewhere = base.join(format!("distccd_{dead}_HeLd01"));
        std::fs::create_dir(&elsewhere).unwrap();
        let held = hold(&elsewhere).unwrap();
        assert_eq!(remove_orphans(&base), 2);
        assert!(elsewhere.is_dir(), "a held directory was removed");
        drop(held);
        assert_eq!(remove_orphans(&base), 1);
        assert!(!dead_job.exists() && !dead_store.exists());
        assert!(live.join("root/usr/a.h").exists());
        assert!(stock.join("root/usr/a.h").exists());
        assert!(file.exists() && link.symlink_metadata().is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn slot_reuses_an_emptied_directory() {
        let base = std::env::temp_dir();
        let mut slot = Slot::default();
        let d = slot.take(&base, false).unwrap();
        let first = d.path().to_path_buf();
        std::fs::create_dir_all(d.join("root/a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("root/link")).unwrap();
        std::fs::write(d.join("out.o"), b"x").unwrap();
        slot.give_back(d, None);
        let d = slot.take(&base, false).unwrap();
        assert_eq!(d.path(), first);
        assert!(std::fs::read_dir(d.path()).unwrap().next().is_none());
        assert!(std::path::Path::new("/etc").exists());
        drop(d);
        assert!(!first.exists());
    }

    #[test]
    fn a_kept_directory_removed_by_a_cleaner_is_replaced() {
        let base = std::env::temp_dir();
        let mut slot = Slot::default();
        let d = slot.take(&base, false).unwrap();
        let tree = slot.take_tree(&d).unwrap();
        slot.give_back(d, Some(tree));
        let kept = slot.dir.as_ref().unwrap().path().to_path_buf();
        std::fs::remove_dir_all(&kept).unwrap();
        let d = slot.take(&base, false).unwrap();
        assert_ne!(d.path(), kept);
        assert!(d.path().is_dir());
        let tree = slot.take_tree(&d).unwrap();
        assert!(tree.path().is_dir());
        // Only the pump tree gone: the directory stays, the tree is new.
        let path = d.path().to_path_buf();
        slot.give_back(d, Some(tree));
        std::fs::remove_dir_all(path.join(TREE)).unwrap();
        let d = slot.take(&base, false).unwrap();
        assert_eq!(d.path(), path);
        let tree = slot.take_tree(&d).unwrap();
        assert!(tree.path().is_dir());
    }
}
