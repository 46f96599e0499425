//! The include server's shared cache, read without locks.
//!
//! Worker threads of the include server share one [`Cache`]: parsed files
//! (by path, revalidated by size, mtime, ctime, inode and device on every use, so a
//! header regenerated during the build is re-read), compiler probes, and the
//! record of which compressed copies were written into the client root.
//!
//! The storage is an append-only hash map ([`AppendMap`]): each bucket is a
//! singly linked list of immutable nodes pushed at the head with a
//! compare-and-swap. Lookups only load atomics and follow pointers: no lock
//! is ever taken. Nodes are never removed or mutated while the map is alive
//! (a newer version of a key is pushed in front of the older one), so a
//! reference obtained from a lookup stays valid as long as the map; the map
//! frees its nodes only in `Drop`, when no other reference exists. Memory
//! grows only when a file changes during the build, which is rare.
//!
//! This module and the mmap in [`map_file`] are the only `unsafe` code of
//! the include analysis.

use super::fsview::FsView;
use super::scanner::{Parsed, parse, parse_as};
use super::unseen::{SysHeader, Writer, WriterIndex, writes};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// A fast non-cryptographic hasher (the Fx multiply-rotate scheme) for the
/// byte-string keys of the cache and of per-request maps. Keys come from the
/// local file system, so hash flooding is not a concern.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, v: u64) {
        self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        let rest = chunks.remainder();
        w[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Builder for [`FxHasher`].
pub type FastBuild = BuildHasherDefault<FxHasher>;
/// A `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, FastBuild>;
/// A `HashSet` with [`FxHasher`].
pub type FastSet<K> = HashSet<K, FastBuild>;

/// The entries of a directory: name → [`ENTRY_FILE`], [`ENTRY_DIR`] or
/// [`ENTRY_OTHER`] (symlinks and the rest, which need a `stat`).
pub type Listing = Arc<FastMap<Vec<u8>, u8>>;
/// A regular file.
pub const ENTRY_FILE: u8 = 0;
/// A directory.
pub const ENTRY_DIR: u8 = 1;
/// Anything else.
pub const ENTRY_OTHER: u8 = 2;

/// Whether a file or directory changed so recently that a further change
/// within the file system's timestamp granularity could go unnoticed; such
/// versions are used but not cached ("racy" entries, as git calls them).
pub fn too_recent(id: &FileId) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    now - id.mtime < 2_000_000_000
}
/// A directory's identity when listed, and its names.
pub type DirListing = (FileId, Listing);

/// The key of a path in the cache: its bytes (hashing `Path` walks its
/// components, which costs more than the lookup itself).
pub fn key(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

struct Node<K, V> {
    key: K,
    value: V,
    next: *mut Node<K, V>,
}

/// Superseded text a cache holds before the server starts a fresh one
/// ([`Cache::worn`]): some tens of MB in parsed form. A day of edits to a
/// few headers stays well below it; a generator rewriting a megabyte of
/// headers per build reaches it every few builds, and the next request
/// then walks from a cold cache (tens of milliseconds).
pub const SUPERSEDED_BUDGET: u64 = 4 << 20;

/// A concurrent, append-only hash map with lock-free lookups.
pub struct AppendMap<K, V> {
    buckets: Box<[AtomicPtr<Node<K, V>>]>,
}

// SAFETY: the map owns its nodes (created by Box::into_raw in `insert`, freed
// only in `Drop` with exclusive access). Shared access only reads immutable
// nodes and pushes new ones with CAS, so sending or sharing the map across
// threads is sound when keys and values are themselves Send + Sync.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for AppendMap<K, V> {}
// SAFETY: as above; ownership of the nodes moves with the map.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for AppendMap<K, V> {}

impl<K: Hash + Eq, V> AppendMap<K, V> {
    /// A map with `2^bits` buckets.
    pub fn new(bits: u32) -> AppendMap<K, V> {
        let n = 1usize << bits.min(24);
        AppendMap {
            buckets: (0..n).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
        }
    }

    fn bucket<Q: Hash + ?Sized>(&self, key: &Q) -> &AtomicPtr<Node<K, V>> {
        let mut h = FxHasher::default();
        key.hash(&mut h);
        let x = h.finish();
        let i = ((x ^ (x >> 29)) as usize) & (self.buckets.len() - 1);
        &self.buckets[i]
    }

    /// The values stored under `key`, newest first.
    pub fn versions<'a, 'k, Q>(
        &'a self,
        key: &'k Q,
    ) -> impl Iterator<Item = &'a V> + use<'a, 'k, K, V, Q>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut p = self.bucket(key).load(Ordering::Acquire);
        std::iter::from_fn(move || {
            while !p.is_null() {
                // SAFETY: non-null pointers in a bucket list point to nodes
                // made by `insert` (published with Release, read with
                // Acquire) that are not freed or mutated before the map is
                // dropped; `&self` keeps the map alive for the lifetime 'a.
                let node = unsafe { &*p };
                p = node.next;
                if node.key.borrow() == key {
                    return Some(&node.value);
                }
            }
            None
        })
    }

    /// The newest value stored under `key` for which `accept` holds.
    pub fn find<Q>(&self, key: &Q, accept: impl Fn(&V) -> bool) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Older versions of the same key are stale: only the newest counts.
        self.versions(key).next().filter(|v| accept(v))
    }

    /// Whether any value stored under `key` (every version, for maps used
    /// as multi-maps) satisfies `accept`.
    pub fn any<Q>(&self, key: &Q, accept: impl Fn(&V) -> bool) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.versions(key).any(accept)
    }

    /// Stores `value` under `key` in front of any older version, and returns it.
    pub fn insert(&self, key: K, value: V) -> &V {
        let bucket = self.bucket(&key);
        let node = Box::into_raw(Box::new(Node {
            key,
            value,
            next: ptr::null_mut(),
        }));
        let mut head = bucket.load(Ordering::Acquire);
        loop {
            // SAFETY: `node` is ours alone until the CAS below publishes it.
            unsafe { (*node).next = head };
            match bucket.compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        // SAFETY: the node is now immutable and lives until the map drops.
        unsafe { &(*node).value }
    }
}

impl<K, V> Drop for AppendMap<K, V> {
    fn drop(&mut self) {
        for b in self.buckets.iter_mut() {
            let mut p = *b.get_mut();
            while !p.is_null() {
                // SAFETY: `&mut self` means no reader exists; each node was
                // made by Box::into_raw and is freed exactly once here.
                let node = unsafe { Box::from_raw(p) };
                p = node.next;
            }
        }
    }
}

/// What identifies one version of a file: size, mtime and ctime (ns),
/// inode, device. The ctime catches an edit whose mtime was set back
/// (`touch -d`, `cp -p`, `rsync -t`): setting the mtime updates the ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds.
    pub mtime: i128,
    /// Status-change time in nanoseconds.
    pub ctime: i128,
    /// Inode number.
    pub ino: u64,
    /// Device number.
    pub dev: u64,
}

impl FileId {
    /// The identity of a file from its metadata.
    pub fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            size: m.size(),
            mtime: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

/// The contents of a file, memory-mapped when non-empty.
pub enum Contents {
    /// A read-only mapping.
    Mapped(memmap2::Mmap),
    /// An empty file (which cannot be mapped).
    Empty,
}

impl std::ops::Deref for Contents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Contents::Mapped(m) => m,
            Contents::Empty => &[],
        }
    }
}

/// Opens and maps `path`; returns its contents and identity.
pub fn map_file(path: &Path) -> Result<(Contents, FileId)> {
    let f = File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let meta = f
        .metadata()
        .map_err(|e| Error::io(format!("stat {}", path.display()), e))?;
    let id = FileId::of(&meta);
    if meta.len() == 0 {
        return Ok((Contents::Empty, id));
    }
    // The length is given, so the mapping does not ask the kernel for it
    // again (one system call less per file read).
    let len = usize::try_from(meta.len()).map_err(|_| {
        Error::io(
            format!("mmap {}", path.display()),
            std::io::ErrorKind::FileTooLarge.into(),
        )
    })?;
    // SAFETY: the mapping is read-only and private to this call's owner. A
    // concurrent truncation by another process could fault; the include server
    // accepts that risk exactly as every compiler that mmaps sources does, and
    // the (size, mtime, ctime, inode) check re-reads files that were rewritten.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(&f) }
        .map_err(|e| Error::io(format!("mmap {}", path.display()), e))?;
    Ok((Contents::Mapped(map), id))
}

/// A parsed file and the version it was parsed from.
pub struct ParsedFile {
    /// The identity at parse time.
    pub id: FileId,
    /// The directives.
    pub parsed: Arc<Parsed>,
}

/// The latest value for a key whose values change over the server's life
/// (a directory's listing, a mirror copy): replaced in place, so memory
/// does not grow with the number of versions. Only `get` and `set` touch
/// the lock, each for a clone of an `Arc` or a small record.
pub struct Latest<T>(std::sync::Mutex<T>);

impl<T: Clone> Latest<T> {
    pub fn new(value: T) -> Latest<T> {
        Latest(std::sync::Mutex::new(value))
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the value; returns the old one.
    pub fn set(&self, value: T) -> T {
        std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(|e| e.into_inner()),
            value,
        )
    }
}

/// A compressed copy written into the client root.
#[derive(Debug, Clone)]
pub struct Written {
    /// The version of the source it was made from.
    pub id: FileId,
    /// Hash of the `#line` name and directive rewrites it was made with.
    pub variant: u64,
    /// Its bytes, while the memory budget for them lasts (for the file list
    /// handed to the client: [`super::bundle`]).
    pub packed: Option<Arc<[u8]>>,
    /// The copy was written into the client root (a reply to our client,
    /// which sends the list passed with it, needs only the bytes).
    pub on_disk: bool,
}

/// The most compressed-copy bytes kept in memory.
pub const PACKED_BUDGET: usize = 256 << 20;

/// The shared cache of the include server.
pub struct Cache {
    parsed: AppendMap<Vec<u8>, ParsedFile>,
    /// Bytes of text whose parsed form a newer version replaced (still
    /// held: the map only grows).
    superseded: AtomicU64,
    /// Compiler probes by key (see [`super::compiler`]).
    pub compilers: AppendMap<Vec<std::ffi::OsString>, Arc<super::compiler::CompilerInfo>>,
    /// Mirror files written into the client root, with the source version.
    /// `is_file` answers for paths inside system directories.
    pub system_is_file: AppendMap<Vec<u8>, (u64, bool)>,
    /// Canonical paths of paths inside system directories.
    pub system_real: AppendMap<Vec<u8>, (u64, Option<PathBuf>)>,
    /// System headers by canonical path: id, directives, whether they have
    /// a computed include (see [`super::unseen`]).
    pub system_headers: AppendMap<Vec<u8>, (u64, Arc<SysHeader>)>,
    /// Macro name → system headers that may change it.
    pub writers: WriterIndex,
    next_header: AtomicU32,
    /// Memoised system-header scans (see `closure::sysscan`).
    pub system_scans: AppendMap<Vec<u8>, (u64, Arc<super::closure::sysscan::SysScan>)>,
    /// Directory listings with the directory's identity when listed: the
    /// latest only (a directory that holds the objects changes with every
    /// compile, and its old listings must not pile up).
    pub listings: AppendMap<Vec<u8>, Latest<(FileId, Listing)>>,
    /// The value is the source version and a hash of the `#line` name and
    /// directive rewrites the copy was made with: the latest only, so the
    /// bytes of a regenerated header's old copies are freed.
    pub written: AppendMap<Vec<u8>, Latest<Written>>,
    /// Canonical paths of files some unit reached through a rewritten
    /// absolute `#include`: their `#line` stays in every unit from then on,
    /// so units analysed at the same time write one version of the mirror
    /// copy (a stock client reads it after the reply).
    pub kept_lines: AppendMap<Vec<u8>, ()>,
    /// Bytes of compressed copies kept in `written` (bounded).
    pub packed_kept: std::sync::atomic::AtomicUsize,
    /// Answers about user files and directories, kept current by inotify.
    pub fs: FsView,
    /// Sent files with the same bytes as another but another local mtime.
    pub twins: super::twins::Twins,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache::new()
    }
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Cache {
        Cache {
            superseded: AtomicU64::new(0),
            parsed: AppendMap::new(16),
            compilers: AppendMap::new(6),
            written: AppendMap::new(16),
            kept_lines: AppendMap::new(8),
            packed_kept: std::sync::atomic::AtomicUsize::new(0),
            twins: Default::default(),
            system_is_file: AppendMap::new(16),
            system_real: AppendMap::new(16),
            listings: AppendMap::new(14),
            system_scans: AppendMap::new(12),
            system_headers: AppendMap::new(14),
            writers: AppendMap::new(16),
            next_header: AtomicU32::new(0),
            fs: FsView::new(),
        }
    }

    /// The system header at canonical path `path`: parsed once while the
    /// compiler's include directories stay as they are
    /// ([`FsView::system_generation`]), given an id, and the macro names it
    /// writes recorded in [`Cache::writers`] before the header can be found
    /// here, so whoever sees the id sees its names.
    pub fn system_header(&self, path: &Path) -> Result<Arc<SysHeader>> {
        let generation = self.fs.system_generation();
        if let Some((_, h)) = self
            .system_headers
            .find(key(path), |(g, _)| *g == generation)
        {
            return Ok(h.clone());
        }
        let keep = self.fs.watch_system(path);
        let (contents, _) = map_file(path)?;
        let parsed = Arc::new(parse_as(&contents, true));
        let (names, computed) = writes(&parsed);
        let id = self.next_header.fetch_add(1, Ordering::Relaxed);
        for (name, sticky) in names {
            self.writers
                .insert(name.into(), Writer { header: id, sticky });
        }
        let h = Arc::new(SysHeader {
            id,
            parsed,
            computed,
        });
        if keep {
            if self.system_headers.versions(key(path)).next().is_some() {
                self.superseded
                    .fetch_add(contents.len() as u64, Ordering::Relaxed);
            }
            self.system_headers
                .insert(key(path).to_vec(), (generation, h.clone()));
        }
        Ok(h)
    }

    /// The entry names of directory `dir` whose identity is now `id`,
    /// listed again only when the directory changed.
    pub fn listing(&self, dir: &Path, id: FileId) -> Option<Listing> {
        let slot = self.listings.find(key(dir), |_| true);
        if let Some((known, names)) = slot.map(Latest::get)
            && known == id
        {
            return Some(names);
        }
        let names: FastMap<Vec<u8>, u8> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| {
                let kind = match e.file_type() {
                    Ok(t) if t.is_file() => ENTRY_FILE,
                    Ok(t) if t.is_dir() => ENTRY_DIR,
                    _ => ENTRY_OTHER,
                };
                (e.file_name().as_bytes().to_vec(), kind)
            })
            .collect();
        let names = Arc::new(names);
        if !too_recent(&id) {
            match slot {
                Some(slot) => drop(slot.set((id, names.clone()))),
                None => drop(
                    self.listings
                        .insert(key(dir).to_vec(), Latest::new((id, names.clone()))),
                ),
            }
        }
        Some(names)
    }

    /// The directives of `path`, parsed at most once per file version.
    pub fn parsed(&self, path: &Path) -> Result<Arc<Parsed>> {
        self.parsed_as(path, None)
    }

    /// Like [`Cache::parsed`] when the caller already has the file's
    /// identity from a stat made for this request.
    /// Why this cache should give way to a fresh one, if it should: the
    /// text of superseded file versions it holds passed
    /// [`SUPERSEDED_BUDGET`] (each costs about ten times its size in
    /// parsed form).
    pub fn worn(&self) -> Option<String> {
        let superseded = self.superseded.load(Ordering::Relaxed);
        (superseded > SUPERSEDED_BUDGET)
            .then(|| format!("{} MB of superseded file versions", superseded >> 20))
    }

    pub fn parsed_as(&self, path: &Path, id: Option<FileId>) -> Result<Arc<Parsed>> {
        let id = match id {
            Some(id) => id,
            None => FileId::of(
                &std::fs::metadata(path)
                    .map_err(|e| Error::io(format!("stat {}", path.display()), e))?,
            ),
        };
        if let Some(pf) = self.parsed.find(key(path), |pf| pf.id == id) {
            return Ok(pf.parsed.clone());
        }
        let (contents, id) = map_file(path)?;
        let parsed = Arc::new(parse(&contents));
        if too_recent(&id) {
            return Ok(parsed);
        }
        if self.parsed.versions(key(path)).next().is_some() {
            self.superseded
                .fetch_add(contents.len() as u64, Ordering::Relaxed);
        }
        self.parsed.insert(
            key(path).to_vec(),
            ParsedFile {
                id,
                parsed: parsed.clone(),
            },
        );
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changing_directory_keeps_one_listing() {
        let d = std::env::temp_dir().join(format!("cache-listing-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let cache = Cache::new();
        let settle = |d: &Path| {
            // Listings of a directory changed in the last two seconds are
            // not kept: date it back.
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
            std::fs::File::open(d).unwrap().set_modified(t).unwrap();
            FileId::of(&std::fs::metadata(d).unwrap())
        };
        for round in 0..20 {
            std::fs::write(d.join(format!("f{round}.o")), b"x").unwrap();
            let id = settle(&d);
            let names = cache.listing(&d, id).unwrap();
            assert_eq!(names.len(), round + 1);
            // Asked again: the kept listing, not a new one.
            assert!(Arc::ptr_eq(&names, &cache.listing(&d, id).unwrap()));
        }
        assert_eq!(cache.listings.versions(key(&d)).count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn append_map_versions_and_threads() {
        let m: Arc<AppendMap<u32, u32>> = Arc::new(AppendMap::new(4));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        m.insert(t * 1000 + i, i);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().expect("thread");
        }
        assert_eq!(m.find(&3499, |_| true), Some(&499));
        m.insert(7, 1);
        m.insert(7, 2);
        assert_eq!(m.find(&7, |_| true), Some(&2));
        assert_eq!(m.find(&7, |v| *v == 1), None);
        assert_eq!(m.find(&99999, |_| true), None);
    }

    #[test]
    fn reparses_a_changed_file() {
        let dir = std::env::temp_dir().join(format!("inc-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let f = dir.join("h.h");
        std::fs::write(&f, "#include \"a.h\"\n").expect("write");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&f)
            .and_then(|h| h.set_modified(old))
            .expect("set mtime");
        let c = Cache::new();
        assert_eq!(c.parsed(&f).expect("parse").nodes.len(), 1);
        assert!(Arc::ptr_eq(
            &c.parsed(&f).expect("parse"),
            &c.parsed(&f).expect("parse")
        ));
        // A fresh rewrite (same inode) is seen, and not cached while racy.
        std::fs::write(&f, "#include \"a.h\"\n#include \"b.h\"\n").expect("write");
        assert_eq!(c.parsed(&f).expect("parse").nodes.len(), 2);
        assert!(!Arc::ptr_eq(
            &c.parsed(&f).expect("parse"),
            &c.parsed(&f).expect("parse")
        ));
        std::fs::write(&f, "").expect("write");
        assert_eq!(c.parsed(&f).expect("parse").nodes.len(), 0);
        // Same size, mtime set back to the cached version's: the ctime
        // still tells them apart.
        std::fs::write(&f, "#include \"c.h\"\n").expect("write");
        File::options()
            .write(true)
            .open(&f)
            .and_then(|h| h.set_modified(old))
            .expect("set mtime");
        assert_eq!(c.parsed(&f).expect("parse").nodes.len(), 1);
        std::fs::write(&f, "#include \"d.h\"\n").expect("write");
        File::options()
            .write(true)
            .open(&f)
            .and_then(|h| h.set_modified(old))
            .expect("set mtime");
        let again = c.parsed(&f).expect("parse");
        assert_eq!(again.nodes.len(), 1);
        assert!(
            format!("{:?}", again.nodes).contains(&format!("{:?}", b"\"d.h\"")),
            "{:?}",
            again.nodes
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
