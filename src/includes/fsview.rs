//! A cached view of the user's file system, kept current by inotify.
//!
//! For every request the include server asks the same questions again: does
//! `dir/name` exist, is it a file, a directory or a symlink, what is its
//! identity (size, mtime, ctime, inode). Answered by `lstat` every time, that was
//! about 400 system calls per libgit2 unit, a third of the server's CPU.
//!
//! Here an answer is kept together with the state of the directory it came
//! from. Every directory an answer is taken from is watched with inotify
//! (added before the first `lstat` in it), and [`FsView::refresh`], called at
//! the start of every request, applies the queued events: each event bumps
//! the change count of the name it mentions, and a directory that is removed
//! or moved kills its watch. An answer is reused only while its name's change
//! count and its directory's watch are as they were when it was taken. The
//! kernel queues an event before the call that made the change returns, and
//! a request starts after the client's inputs were written (make ran their
//! generator first), so a change made before a request is always seen by it.
//!
//! A regular file's answer is kept only while a watch on the file itself
//! lives too (added, then the file asked again): a hard link made later in
//! another directory, and a write through it, raise no event in this one,
//! but they do on the file (its link count, its contents).
//!
//! Where inotify cannot be trusted the view asks the kernel every time:
//! directories on network, cluster, FUSE or automounted file systems (a
//! change made on another machine raises no event here), files with several hard links (a
//! write through another name raises no event in this directory), and any
//! directory once no watch can be added (the per-user watch limit, or our
//! own cap of [`MAX_WATCHES`]). An overflowed event queue, or a backlog too
//! long to drain, invalidates every answer. A file system mounted over a
//! watched directory while the server runs raises no event either; that is
//! not handled. Callers walk paths from the root one directory at a time
//! ([`FsLookup`]), so an answer about `/a/b/c` is only used after the answers
//! for `/a` and `/a/b` were checked in the same request.

use super::cache::{AppendMap, FastMap, FileId, key};
use std::fs::Metadata;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// Anything else.
    Other,
}

/// The `lstat` of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// What it is.
    pub kind: EntryKind,
    /// Its identity.
    pub id: FileId,
    /// Its hard link count.
    pub links: u64,
}

impl Meta {
    fn of(m: &Metadata) -> Meta {
        let t = m.file_type();
        let kind = if t.is_file() {
            EntryKind::File
        } else if t.is_dir() {
            EntryKind::Dir
        } else if t.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        Meta {
            kind,
            id: FileId::of(m),
            links: m.nlink(),
        }
    }
}

/// `lstat` by system call.
pub fn lstat_now(path: &Path) -> Option<Meta> {
    std::fs::symlink_metadata(path).ok().map(|m| Meta::of(&m))
}

/// A watched directory.
struct Watch {
    /// Unique for the life of the view (answers name the watch they came from).
    serial: u64,
    /// Device and inode of the directory the watch was added to (zero for
    /// a file's watch).
    dir: (u64, u64),
    /// False once the directory was removed or moved, or its watch dropped.
    alive: AtomicBool,
    /// False when its answers are not cached (see the module header).
    watched: bool,
    /// A watch on a regular file (its events name no entry).
    file: bool,
}

/// A directory reached from the root in this request: answers about its
/// entries may come from the cache while its watch lives.
#[derive(Clone)]
pub struct DirHandle(Option<Arc<Watch>>);

impl DirHandle {
    /// A directory whose entries are always asked of the kernel.
    pub fn uncached() -> DirHandle {
        DirHandle(None)
    }

    /// Whether answers about its entries are cached.
    pub fn is_watched(&self) -> bool {
        self.0.is_some()
    }
}

/// What the view knows of one path: its change count, bumped by events
/// naming it, and the last answer taken, behind a sequence lock (readers
/// never wait: a torn read is a miss).
#[derive(Default)]
struct PathEntry {
    changes: AtomicU64,
    seq: AtomicU64,
    /// The watch of the path's directory when the answer was taken.
    watch: AtomicU64,
    /// `changes` when the answer was taken.
    at_changes: AtomicU64,
    /// The view's epoch when the answer was taken.
    epoch: AtomicU64,
    /// 0: no answer; else bit 0 set, bit 1 exists, bits 2..5 kind,
    /// bits 8.. hard link count.
    state: AtomicU64,
    size: AtomicU64,
    mtime_hi: AtomicU64,
    mtime_lo: AtomicU64,
    ctime_hi: AtomicU64,
    ctime_lo: AtomicU64,
    ino: AtomicU64,
    dev: AtomicU64,
}

fn kind_code(k: EntryKind) -> u64 {
    match k {
        EntryKind::File => 0,
        EntryKind::Dir => 1,
        EntryKind::Symlink => 2,
        EntryKind::Other => 3,
    }
}

fn code_kind(c: u64) -> EntryKind {
    match c {
        0 => EntryKind::File,
        1 => EntryKind::Dir,
        2 => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

impl PathEntry {
    /// The answer taken under `watch`, if it is still current.
    fn answer(&self, watch: u64, changes: u64, epoch: u64) -> Option<Option<Meta>> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 == 1 {
            return None;
        }
        let fresh = self.watch.load(Ordering::Relaxed) == watch
            && self.at_changes.load(Ordering::Relaxed) == changes
            && self.epoch.load(Ordering::Relaxed) == epoch;
        let state = self.state.load(Ordering::Relaxed);
        let meta = Meta {
            kind: code_kind((state >> 2) & 7),
            id: FileId {
                size: self.size.load(Ordering::Relaxed),
                mtime: ((self.mtime_hi.load(Ordering::Relaxed) as i128) << 64)
                    | self.mtime_lo.load(Ordering::Relaxed) as i128,
                ctime: ((self.ctime_hi.load(Ordering::Relaxed) as i128) << 64)
                    | self.ctime_lo.load(Ordering::Relaxed) as i128,
                ino: self.ino.load(Ordering::Relaxed),
                dev: self.dev.load(Ordering::Relaxed),
            },
            links: state >> 8,
        };
        std::sync::atomic::fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s1 || !fresh || state == 0 {
            return None;
        }
        Some((state & 2 != 0).then_some(meta))
    }

    /// Records an answer (skipped if another thread is recording).
    fn record(&self, meta: Option<Meta>, watch: u64, changes: u64, epoch: u64) {
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 == 1
            || self
                .seq
                .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        std::sync::atomic::fence(Ordering::Release);
        self.watch.store(watch, Ordering::Relaxed);
        self.at_changes.store(changes, Ordering::Relaxed);
        self.epoch.store(epoch, Ordering::Relaxed);
        let m = meta.unwrap_or(Meta {
            kind: EntryKind::Other,
            id: FileId {
                size: 0,
                mtime: 0,
                ctime: 0,
                ino: 0,
                dev: 0,
            },
            links: 0,
        });
        let exists = if meta.is_some() { 2 } else { 0 };
        self.state.store(
            1 | exists | (kind_code(m.kind) << 2) | (m.links << 8),
            Ordering::Relaxed,
        );
        self.size.store(m.id.size, Ordering::Relaxed);
        self.mtime_hi
            .store((m.id.mtime >> 64) as u64, Ordering::Relaxed);
        self.mtime_lo.store(m.id.mtime as u64, Ordering::Relaxed);
        self.ctime_hi
            .store((m.id.ctime >> 64) as u64, Ordering::Relaxed);
        self.ctime_lo.store(m.id.ctime as u64, Ordering::Relaxed);
        self.ino.store(m.id.ino, Ordering::Relaxed);
        self.dev.store(m.id.dev, Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }
}

/// A watched directory's path and watch.
type WatchedDir = (Vec<u8>, Arc<Watch>);

/// What only the event reader and watch adder touch, under one lock.
#[derive(Default)]
struct Watches {
    /// inotify watch descriptor → the directories (paths, watches) it covers.
    by_wd: std::collections::HashMap<i32, Vec<WatchedDir>>,
    /// (Watches are counted by their live descriptors, [`Watches::live`]:
    /// a count of additions that never went down turned the cache off for
    /// good after some thousands of replaced files; sweep X, D2.)
    /// Watched directories of the compiler's own include directories, by
    /// path, and their watch descriptors (see [`FsView::watch_system`]).
    system_dirs: std::collections::HashMap<Vec<u8>, i32>,
    system_wds: std::collections::HashSet<i32>,
}

impl Watches {
    /// Kernel watches this view holds now: their descriptors, which an
    /// `IN_IGNORED` (or a directory's removal or move) takes out.
    fn live(&self) -> usize {
        self.by_wd.len() + self.system_wds.len()
    }
}

const EVENT_MASK: u32 = libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR
    | libc::IN_DONT_FOLLOW;
/// Events on a watched file's inode, whatever name it was changed through.
const FILE_EVENT_MASK: u32 = libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_DONT_FOLLOW;
const GONE_MASK: u32 =
    libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_IGNORED | libc::IN_UNMOUNT;
/// Events that change a directory's entry set (and so its mtime).
const ENTRY_SET_MASK: u32 =
    libc::IN_CREATE | libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_MOVED_TO;
/// Most watches the view adds: inotify watches are a per-user resource that
/// editors and other tools need too. Directories beyond are asked each time.
const MAX_WATCHES: usize = if cfg!(test) { 64 } else { 16_384 };
/// Bound on event reads per refresh; a longer backlog invalidates everything.
const MAX_READS: usize = 256;

/// File systems whose changes may come from elsewhere without an event
/// here (statfs magic numbers).
const UNWATCHABLE_FS: &[i64] = &[
    0x6969,      // NFS
    0x517b,      // SMB
    0xff53_4d42, // CIFS
    0xfe53_4d42, // SMB2
    0x6573_5546, // FUSE (sshfs, virtiofs, ...)
    0x0102_1997, // 9P
    0x00c3_6400, // Ceph
    0x5346_414f, // AFS
    0x6b41_4653, // kAFS
    0x7375_7245, // Coda
    0x0116_1970, // GFS2
    0x7461_636f, // OCFS2
    0x0bd0_0bd0, // Lustre
    0x1983_0326, // OrangeFS
    0x786f_4256, // vboxsf
    0x0187,      // autofs (mounts come and go without events)
];

/// The cached view. One per include server, shared by its workers.
pub struct FsView {
    inotify: Option<OwnedFd>,
    watches_lock: Mutex<Watches>,
    /// Directory path → its watches, newest first.
    watches: AppendMap<Vec<u8>, Arc<Watch>>,
    /// Path → what is known of it.
    paths: AppendMap<Vec<u8>, PathEntry>,
    /// Bumped when events may have been lost.
    epoch: AtomicU64,
    /// Bumped by every event in a watched system directory.
    system_changes: AtomicU64,
    next_serial: AtomicU64,
    root: OnceLock<DirHandle>,
}

impl Default for FsView {
    fn default() -> Self {
        FsView::new()
    }
}

impl FsView {
    /// A view with its own inotify instance (or, if none can be had, a view
    /// that asks the kernel every time).
    pub fn new() -> FsView {
        // SAFETY: inotify_init1 has no memory arguments; a non-negative
        // result is a new descriptor that we own.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        let inotify = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
        if inotify.is_none() {
            log::info!("no inotify: file system answers are not cached");
        }
        FsView {
            inotify,
            watches_lock: Mutex::new(Watches::default()),
            watches: AppendMap::new(12),
            paths: AppendMap::new(15),
            epoch: AtomicU64::new(0),
            system_changes: AtomicU64::new(0),
            next_serial: AtomicU64::new(1),
            root: OnceLock::new(),
        }
    }

    /// A view that caches nothing (every answer is a system call).
    pub fn uncached() -> FsView {
        let mut v = FsView::new();
        v.inotify = None;
        v
    }

    /// Applies the change events queued so far. Call at the start of each
    /// request, after its bytes arrived.
    pub fn refresh(&self) {
        let Some(fd) = &self.inotify else { return };
        let mut w = self.watches_lock.lock().unwrap_or_else(|e| e.into_inner());
        // u64 words: aligned for the event records.
        let mut buf = [0u64; 1024];
        for _ in 0..MAX_READS {
            match read_events(fd, &mut buf) {
                Some(bytes) => self.apply(&mut w, bytes),
                None => return,
            }
        }
        // Still more: rather than trust a partial drain, forget everything
        // and discard the rest.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for _ in 0..100_000 {
            if read_events(fd, &mut buf).is_none() {
                return;
            }
        }
    }

    /// Applies a buffer of `struct inotify_event` records.
    fn apply(&self, w: &mut Watches, mut bytes: &[u8]) {
        const HEAD: usize = 16;
        while bytes.len() >= HEAD {
            let word =
                |i: usize| u32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
            let wd = word(0) as i32;
            let mask = word(4);
            let len = word(12) as usize;
            let Some(name) = bytes.get(HEAD..HEAD + len) else {
                break;
            };
            bytes = &bytes[HEAD + len..];
            if mask & libc::IN_Q_OVERFLOW != 0 {
                self.epoch.fetch_add(1, Ordering::AcqRel);
                continue;
            }
            if w.system_wds.contains(&wd) {
                self.system_changes.fetch_add(1, Ordering::AcqRel);
                if mask & GONE_MASK != 0 {
                    w.system_wds.remove(&wd);
                    w.system_dirs.retain(|_, d| *d != wd);
                }
            }
            if mask & GONE_MASK != 0 {
                if let Some(dirs) = w.by_wd.remove(&wd) {
                    for (path, watch) in &dirs {
                        watch.alive.store(false, Ordering::Release);
                        if watch.file {
                            self.bump(path);
                        }
                    }
                }
                continue;
            }
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            // The directory's own answer (its mtime) changes with its entry
            // set and its attributes.
            let dir_changed = name.is_empty() || mask & ENTRY_SET_MASK != 0;
            if let Some(dirs) = w.by_wd.get(&wd) {
                for (dir, _) in dirs {
                    if dir_changed {
                        self.bump(dir);
                    }
                    if name.is_empty() {
                        continue;
                    }
                    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
                    path.extend_from_slice(dir);
                    if !dir.ends_with(b"/") {
                        path.push(b'/');
                    }
                    path.extend_from_slice(name);
                    self.bump(&path);
                }
            }
        }
    }

    /// The state of the compiler's own include directories: answers about
    /// them taken under one value hold while it stays (every change in a
    /// directory [`FsView::watch_system`] watches, and any lost events,
    /// move it on).
    pub fn system_generation(&self) -> u64 {
        self.system_changes.load(Ordering::Acquire) + (self.epoch.load(Ordering::Acquire) << 40)
    }

    /// Watches the directory holding `path`, a path in one of the
    /// compiler's own include directories (or its deepest existing
    /// ancestor, so that the path's appearing is seen), before an answer
    /// about `path` is kept across requests. False when it cannot be
    /// watched: the answer must then not be kept.
    pub fn watch_system(&self, path: &Path) -> bool {
        let Some(fd) = &self.inotify else {
            return false;
        };
        // The common case, asked for every header probed in a system
        // directory: its directory is watched already (a watch that dies
        // with its directory is dropped from the map), so no `lstat` is
        // needed to find it.
        if let Some(parent) = path.parent() {
            let w = self.watches_lock.lock().unwrap_or_else(|e| e.into_inner());
            if w.system_dirs.contains_key(key(parent)) {
                return true;
            }
        }
        let mut dir = path;
        let dir = loop {
            let Some(parent) = dir.parent() else {
                return false;
            };
            if lstat_now(parent).is_some_and(|m| m.kind == EntryKind::Dir) {
                break parent;
            }
            dir = parent;
        };
        let k = key(dir);
        let mut w = self.watches_lock.lock().unwrap_or_else(|e| e.into_inner());
        if w.system_dirs.contains_key(k) {
            return true;
        }
        if w.live() >= MAX_WATCHES || !watchable_fs(dir) {
            return false;
        }
        let Ok(c) = std::ffi::CString::new(k) else {
            return false;
        };
        // SAFETY: c is a valid NUL-terminated path for the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), EVENT_MASK) };
        if wd < 0 {
            return false;
        }
        w.system_dirs.insert(k.to_vec(), wd);
        w.system_wds.insert(wd);
        true
    }

    /// Invalidates the answers about `path`.
    fn bump(&self, path: &[u8]) {
        for e in self.paths.versions(path) {
            e.changes.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The root directory.
    pub fn root(&self) -> DirHandle {
        self.root
            .get_or_init(|| match lstat_now(Path::new("/")) {
                Some(m) => self.dir(Path::new("/"), &m),
                None => DirHandle::uncached(),
            })
            .clone()
    }

    /// The directory at canonical path `path`, whose `lstat` (taken through
    /// its parent's handle in this request) is `meta`.
    pub fn dir(&self, path: &Path, meta: &Meta) -> DirHandle {
        let Some(fd) = &self.inotify else {
            return DirHandle::uncached();
        };
        if meta.kind != EntryKind::Dir {
            return DirHandle::uncached();
        }
        let k = key(path);
        let ident = (meta.id.dev, meta.id.ino);
        let current = |v: &AppendMap<Vec<u8>, Arc<Watch>>| {
            v.find(k, |w| w.dir == ident && w.alive.load(Ordering::Acquire))
                .map(|w| DirHandle(w.watched.then(|| w.clone())))
        };
        if let Some(h) = current(&self.watches) {
            return h;
        }
        let mut w = self.watches_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = current(&self.watches) {
            return h;
        }
        let mut wd = -1;
        if w.live() < MAX_WATCHES
            && watchable_fs(path)
            && let Ok(c) = std::ffi::CString::new(k)
        {
            // SAFETY: c is a valid NUL-terminated path for the call.
            wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), EVENT_MASK) };
        }
        // The watch must be on the directory the caller reached: check the
        // path still names it now that events are being collected.
        let same = wd >= 0
            && lstat_now(path)
                .is_some_and(|m| m.kind == EntryKind::Dir && (m.id.dev, m.id.ino) == ident);
        let watch = Arc::new(Watch {
            serial: self.next_serial.fetch_add(1, Ordering::Relaxed),
            dir: ident,
            alive: AtomicBool::new(true),
            watched: same,
            file: false,
        });
        if same {
            w.by_wd
                .entry(wd)
                .or_default()
                .push((k.to_vec(), watch.clone()));
            // The directory's own answer (its mtime, which a listing is
            // checked against) may have been taken before this watch
            // collected events: it is asked again next time.
            self.bump(k);
        }
        self.watches.insert(k.to_vec(), watch.clone());
        DirHandle(same.then_some(watch))
    }

    /// The `lstat` of `path`, an entry of the directory `dir` (its parent,
    /// reached in this request).
    pub fn lstat_in(&self, dir: &DirHandle, path: &Path) -> Option<Meta> {
        let Some(watch) = &dir.0 else {
            return lstat_now(path);
        };
        if !watch.alive.load(Ordering::Acquire) {
            return lstat_now(path);
        }
        let k = key(path);
        let entry = match self.paths.find(k, |_| true) {
            Some(e) => e,
            None => self.paths.insert(k.to_vec(), PathEntry::default()),
        };
        let changes = entry.changes.load(Ordering::Acquire);
        let epoch = self.epoch.load(Ordering::Acquire);
        if let Some(answer) = entry.answer(watch.serial, changes, epoch) {
            return answer;
        }
        let meta = lstat_now(path);
        if meta.is_some_and(|m| m.kind != EntryKind::Dir && m.links > 1) {
            return meta;
        }
        if let Some(m) = meta
            && m.kind == EntryKind::File
        {
            if !self.watch_file(path) {
                return meta;
            }
            // Unchanged up to the moment the file's own watch began to
            // collect events, or asked again next time.
            let again = lstat_now(path);
            if again != meta {
                return again;
            }
        }
        entry.record(meta, watch.serial, changes, epoch);
        meta
    }

    /// Adds a watch on the regular file `path` (see the module header);
    /// false when none could be added, and the file's answers are then not
    /// kept.
    fn watch_file(&self, path: &Path) -> bool {
        let Some(fd) = &self.inotify else {
            return false;
        };
        let k = key(path);
        let Ok(c) = std::ffi::CString::new(k) else {
            return false;
        };
        let mut w = self.watches_lock.lock().unwrap_or_else(|e| e.into_inner());
        if w.live() >= MAX_WATCHES {
            return false;
        }
        // SAFETY: c is a valid NUL-terminated path for the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), FILE_EVENT_MASK) };
        if wd < 0 {
            return false;
        }
        let listed = w.by_wd.entry(wd).or_default();
        if !listed.iter().any(|(p, _)| p == k) {
            listed.push((
                k.to_vec(),
                Arc::new(Watch {
                    serial: 0,
                    dir: (0, 0),
                    alive: AtomicBool::new(true),
                    watched: true,
                    file: true,
                }),
            ));
        }
        true
    }
}

/// One non-blocking read of queued events into `buf`: the bytes read, or
/// None when the queue is empty (or the read failed).
fn read_events<'b>(fd: &OwnedFd, buf: &'b mut [u64]) -> Option<&'b [u8]> {
    // SAFETY: reads at most the buffer's size into it.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            std::mem::size_of_val(buf),
        )
    };
    let n = usize::try_from(n).ok().filter(|&n| n > 0)?;
    // SAFETY: the first n bytes were written by read.
    Some(unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) })
}

/// Whether changes under `dir` all raise events on this machine.
fn watchable_fs(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs fills the zeroed struct; c is a valid path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as i64 & 0xffff_ffff;
    !UNWATCHABLE_FS.contains(&magic)
}

/// Per-request memo over a [`FsView`]: directory handles by canonical path,
/// so each directory on a path is checked once per request.
pub struct FsLookup<'v> {
    view: &'v FsView,
    /// Canonical path → its handle, or None if it is not a directory
    /// reached without symlinks.
    dirs: FastMap<Vec<u8>, Option<DirHandle>>,
}

/// The parent of an absolute path, as bytes (`/` for `/x`).
fn parent_of(p: &[u8]) -> Option<&[u8]> {
    match p.iter().rposition(|&c| c == b'/')? {
        0 if p.len() > 1 => Some(b"/"),
        0 => None,
        i => Some(&p[..i]),
    }
}

impl<'v> FsLookup<'v> {
    /// A fresh memo (one per request).
    pub fn new(view: &'v FsView) -> FsLookup<'v> {
        FsLookup {
            view,
            dirs: FastMap::default(),
        }
    }

    /// The handle of the directory at canonical absolute path `dir`, or
    /// None if that is not a directory reached without symlinks.
    fn dir_at(&mut self, dir: &[u8]) -> Option<DirHandle> {
        if let Some(h) = self.dirs.get(dir) {
            return h.clone();
        }
        let h = match parent_of(dir) {
            None => Some(self.view.root()),
            Some(parent) => {
                let ph = self.dir_at(parent);
                let path = Path::new(std::ffi::OsStr::from_bytes(dir));
                let meta = match &ph {
                    Some(ph) => self.view.lstat_in(ph, path),
                    None => None,
                };
                match (ph, meta) {
                    (Some(ph), Some(m)) if m.kind == EntryKind::Dir => Some(if ph.is_watched() {
                        self.view.dir(path, &m)
                    } else {
                        DirHandle::uncached()
                    }),
                    _ => None,
                }
            }
        };
        self.dirs.insert(dir.to_vec(), h.clone());
        h
    }

    /// The handle of the directory at canonical absolute path `dir`
    /// (uncached when it is not a directory reached without symlinks).
    pub fn dir(&mut self, dir: &Path) -> DirHandle {
        self.dir_at(key(dir)).unwrap_or_else(DirHandle::uncached)
    }

    /// The `lstat` of absolute path `path` (cached when its directories are
    /// canonical).
    pub fn lstat(&mut self, path: &Path) -> Option<Meta> {
        match parent_of(key(path)).map(|p| self.dir_at(p)) {
            Some(Some(h)) => self.view.lstat_in(&h, path),
            _ => lstat_now(path),
        }
    }

    /// The canonical form of absolute `path`, resolved one component at a
    /// time from cached answers (a symlink on the way falls back to the
    /// system's realpath).
    pub fn canonical(&mut self, path: &Path) -> Option<PathBuf> {
        use std::path::Component;
        let mut cur = PathBuf::from("/");
        let mut comps = path.components().peekable();
        while let Some(c) = comps.next() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Prefix(_) => return std::fs::canonicalize(path).ok(),
                Component::ParentDir => {
                    cur.pop();
                }
                Component::Normal(n) => {
                    cur.push(n);
                    if self.dir_at(key(&cur)).is_some() {
                        continue;
                    }
                    match self.lstat(&cur)?.kind {
                        EntryKind::File if comps.peek().is_none() => {}
                        EntryKind::Symlink => return std::fs::canonicalize(path).ok(),
                        _ => return None,
                    }
                }
            }
        }
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fsview-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::canonicalize(d).unwrap()
    }

    /// One request's worth of questions: refresh, then a fresh memo.
    fn ask(view: &FsView, p: &Path) -> Option<Meta> {
        view.refresh();
        FsLookup::new(view).lstat(p)
    }

    /// Watches on directories that are removed and made again go with
    /// them: the count of live watches does not grow with the rounds, so
    /// the cap is never reached by churn (sweep X, D2).
    #[test]
    fn replaced_directories_give_their_watches_back() {
        let d = tmp("churn");
        let view = FsView::new();
        let live = |v: &FsView| v.watches_lock.lock().unwrap().live();
        let mut after_first = None;
        for round in 0..20 {
            let sub = d.join("gen");
            let _ = std::fs::remove_dir_all(&sub);
            std::fs::create_dir_all(&sub).unwrap();
            for i in 0..10 {
                std::fs::write(sub.join(format!("h{i}.h")), format!("{round}")).unwrap();
                let _ = ask(&view, &sub.join(format!("h{i}.h")));
            }
            view.refresh();
            after_first.get_or_insert(live(&view));
        }
        if view.inotify.is_some() {
            view.refresh();
            let first = after_first.unwrap();
            assert!(
                live(&view) <= first + 2,
                "{} live watches after 20 rounds, {first} after one",
                live(&view)
            );
            // More watches were added over the rounds than the cap (64 in
            // tests) allows at once: a new directory is still watched.
            let fresh = d.join("fresh");
            std::fs::create_dir_all(&fresh).unwrap();
            std::fs::write(fresh.join("x.h"), b"x").unwrap();
            let _ = ask(&view, &fresh.join("x.h"));
            assert!(FsLookup::new(&view).dir(&fresh).is_watched());
        }
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn answers_match_lstat_and_follow_changes() {
        let d = tmp("changes");
        let f = d.join("a.h");
        let view = FsView::new();
        assert_eq!(ask(&view, &f), None);
        std::fs::write(&f, b"one").unwrap();
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(3));
        assert_eq!(ask(&view, &f), lstat_now(&f));
        if FsLookup::new(&view).dir(&d).is_watched() {
            // The answer is cached: a change is seen only once the events
            // are applied, as at the start of the next request.
            std::fs::write(&f, b"three").unwrap();
            assert_eq!(FsLookup::new(&view).lstat(&f).map(|m| m.id.size), Some(3));
        }
        std::fs::write(&f, b"three").unwrap();
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(5));
        let g = d.join("b.h");
        std::fs::write(&g, b"other").unwrap();
        std::fs::rename(&g, &f).unwrap();
        assert_eq!(ask(&view, &f), lstat_now(&f));
        std::fs::remove_file(&f).unwrap();
        assert_eq!(ask(&view, &f), None);
        std::os::unix::fs::symlink("elsewhere", &f).unwrap();
        assert_eq!(ask(&view, &f).map(|m| m.kind), Some(EntryKind::Symlink));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_replaced_directory_is_seen() {
        let d = tmp("dirs");
        std::fs::create_dir_all(d.join("gen/sub")).unwrap();
        std::fs::write(d.join("gen/sub/x.h"), b"old").unwrap();
        let f = d.join("gen/sub/x.h");
        let view = FsView::new();
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(3));
        // Move the parent of the directory away and build a new one.
        std::fs::rename(d.join("gen"), d.join("gen.old")).unwrap();
        assert_eq!(ask(&view, &f), None);
        std::fs::create_dir_all(d.join("gen/sub")).unwrap();
        std::fs::write(&f, b"newer").unwrap();
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(5));
        // The moved directory still answers under its new name.
        let moved = d.join("gen.old/sub/x.h");
        assert_eq!(ask(&view, &moved).map(|m| m.id.size), Some(3));
        std::fs::remove_dir_all(d.join("gen")).unwrap();
        assert_eq!(ask(&view, &f), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn hard_linked_files_are_always_asked() {
        let d = tmp("links");
        let f = d.join("a.h");
        std::fs::create_dir_all(d.join("other")).unwrap();
        std::fs::write(&f, b"one").unwrap();
        std::fs::hard_link(&f, d.join("other/a.h")).unwrap();
        let view = FsView::new();
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(3));
        // A write through the other name raises no event in d.
        std::fs::write(d.join("other/a.h"), b"four").unwrap();
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(4));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_hard_link_made_later_and_written_through_is_seen() {
        let d = tmp("later-link");
        let f = d.join("inc/a.h");
        std::fs::create_dir_all(d.join("inc")).unwrap();
        std::fs::create_dir_all(d.join("other")).unwrap();
        std::fs::write(&f, b"one").unwrap();
        let view = FsView::new();
        let first = ask(&view, &f).unwrap();
        assert_eq!((first.id.size, first.links), (3, 1));
        // Linked from a directory the view never saw, then written in place
        // through that name: no event in inc/, but one on the file.
        std::fs::hard_link(&f, d.join("other/a.h")).unwrap();
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(d.join("other/a.h"))
            .unwrap();
        w.write_all(b"three").unwrap();
        drop(w);
        let now = ask(&view, &f).unwrap();
        assert_eq!((now.id.size, now.links), (5, 2));
        // The other name goes: one link again, answers kept, changes seen.
        std::fs::remove_file(d.join("other/a.h")).unwrap();
        assert_eq!(ask(&view, &f).map(|m| m.links), Some(1));
        std::fs::write(&f, b"seven!!").unwrap();
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(7));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn canonical_resolves_dots_and_symlinks() {
        let d = tmp("canon");
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/b/f.h"), b"").unwrap();
        std::os::unix::fs::symlink("a/b", d.join("l")).unwrap();
        let view = FsView::new();
        let mut l = FsLookup::new(&view);
        assert_eq!(
            l.canonical(&d.join("a/./b/../b/f.h")),
            Some(d.join("a/b/f.h"))
        );
        assert_eq!(l.canonical(&d.join("l/f.h")), Some(d.join("a/b/f.h")));
        assert_eq!(l.canonical(&d.join("a/missing")), None);
        assert_eq!(l.canonical(&d.join("a/b/f.h/x")), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_uncached_view_still_answers() {
        let d = tmp("uncached");
        let f = d.join("a.h");
        let view = FsView::uncached();
        assert_eq!(ask(&view, &f), None);
        std::fs::write(&f, b"xy").unwrap();
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(2));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn overflow_forgets_everything() {
        let d = tmp("overflow");
        let f = d.join("a.h");
        std::fs::write(&f, b"one").unwrap();
        let view = FsView::new();
        assert!(ask(&view, &f).is_some());
        let mut w = Watches::default();
        let mut ev = vec![0u8; 16];
        ev[0..4].copy_from_slice(&(-1i32).to_ne_bytes());
        ev[4..8].copy_from_slice(&libc::IN_Q_OVERFLOW.to_ne_bytes());
        let before = view.epoch.load(Ordering::Acquire);
        view.apply(&mut w, &ev);
        assert_eq!(view.epoch.load(Ordering::Acquire), before + 1);
        assert_eq!(ask(&view, &f).map(|m| m.id.size), Some(3));
        let _ = std::fs::remove_dir_all(&d);
    }
}
