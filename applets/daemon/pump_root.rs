//! The client's tree of a protocol-3 (pump) request, unpacked below the
//! job's private `root/` and kept from one job to the next.
//!
//! Safety first. Stock 3.4 concatenates root + NAME without any check, so
//! a NAME like `/../../victim` overwrites and deletes files outside the
//! root, and a planted `LINK` lets a later `FILE` write through it (facts
//! §7). Here CDIR and every NAME must be absolute, free of `.` and `..`
//! components (empty components from `//` are dropped); directories are
//! walked one component at a time with `openat(O_NOFOLLOW | O_DIRECTORY)`
//! and files are created with `O_NOFOLLOW` (fsat.rs), so no write or
//! removal ever passes through a symlink; a LINK is created by `symlinkat`
//! in a directory reached that way, so the link itself always lies beneath
//! the root. Relative link targets are kept verbatim (system directories
//! are `../` chains by design), absolute ones are re-rooted, as in stock
//! (facts §1.10.1).
//!
//! Speed second. Consecutive jobs of one build send mostly the same
//! headers, and creating then deleting a few hundred files per job made
//! ext4's inode allocator (which skips recently deleted inodes) the largest
//! part of the daemon's CPU in pump mode. So a worker keeps its tree and
//! remembers what it holds ([`Tree::sync`]). A file is left alone when the
//! client sent the same wire bytes as last time (same length and the same
//! keyed SipHash, whose per-process random key a client cannot know, so it
//! cannot craft a collision) and the file on disk is untouched since we
//! wrote it (same inode, size and mtime; the compiler, the only other
//! process that runs here, is not allowed to name files in the tree:
//! compiler.rs); then it is neither decompressed nor read. A file this
//! tree lacks is linked from the daemon-wide store when another worker
//! already unpacked the same bytes (pump_store.rs);
//! anything else is replaced, and
//! everything the new request does not name is removed before the compiler
//! starts. The compiler therefore sees exactly the tree a
//! fresh unpack would give. If anything goes wrong the caller drops the
//! tree and the next job starts from an empty root.

use super::fsat::{Stamp, hostile, open_dir_at, read_link_at, remove_at, stamp_at};
use super::jobdir::cstr;
use super::pump_store::{Store, wire_hash};
use distcc::protocol::{FileContent, FileEntry};
use distcc::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Most components a NAME or CDIR may have: as many as a path the kernel
/// takes can have (PATH_MAX 4096 bytes, two per component), so any tree a
/// client can build is served (stock serves them; a cap of 256 refused
/// legal trees and made clients back the server off: sweep U, D6). The
/// walks are loops, one step per component, and the tree kept between jobs
/// is cleaned up per path; a longer hostile NAME is refused.
pub const MAX_COMPONENTS: usize = 2048;

/// Most directory descriptors one tree sync holds open at once.
const MAX_OPEN_DIRS: usize = 256;

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
    if parts.len() > MAX_COMPONENTS {
        return Err(hostile(
            "path is nested too deeply",
            &path[..path.len().min(200)],
        ));
    }
    Ok(parts)
}

/// What one path of the tree is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    /// A regular file as written from a FILE element.
    File(Written),
    /// A symlink with this (server-side) target.
    Link(Vec<u8>),
}

/// What we know of a file we wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Written {
    /// Length and keyed hash of the wire (compressed) bytes.
    wire_len: usize,
    wire_hash: u64,
    /// Decompressed length (counted against the budget when kept).
    data_len: usize,
    /// Written without the include server's `#line` (line_prefix.rs).
    stripped: bool,
    /// Keyed hash of the bytes as written (after any `#line` was taken
    /// out): copies with these bytes get one mtime.
    content: u64,
    /// The file's identity and change time right after writing.
    stamp: Stamp,
}

/// A worker's pump tree: the root directory, open, and what it holds.
pub struct Tree {
    fd: OwnedFd,
    path: PathBuf,
    /// What the last job left, by client path without the leading `/`.
    known: HashMap<Vec<u8>, Node>,
    /// Directories opened by walking down from the root outside a pass's
    /// own (for the tests' count of the work done).
    #[cfg(test)]
    walked_opens: std::cell::Cell<usize>,
}

/// The state of one [`Tree::sync`]: directories opened so far and what
/// the new request names.
struct Pass {
    /// Directory key -> index into `fds` (the root is "" -> 0).
    dirs: HashMap<Vec<u8>, usize>,
    fds: Vec<OwnedFd>,
    new: HashMap<Vec<u8>, Node>,
    /// Inodes of the files named so far in this pass.
    inodes: std::collections::HashSet<u64>,
    /// The mtime of the first file of this pass with given bytes (wire
    /// hash, wire length, `#line` stripped or not).
    bytes_mtime: HashMap<(u64, bool), (i64, i64)>,
}

/// Keyed hash of a file's bytes as written (with their length).
fn content_hash(data: &[u8]) -> u64 {
    super::pump_store::wire_hash(data)
}

fn key_of(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

impl Tree {
    /// Creates an empty root directory at `path` (inside the job directory).
    pub fn create(path: PathBuf) -> Result<Tree> {
        std::fs::create_dir(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let fd =
            File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Tree {
            fd: fd.into(),
            path,
            known: HashMap::new(),
            #[cfg(test)]
            walked_opens: std::cell::Cell::new(0),
        })
    }

    /// The root's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the tree hold exactly the client's working directory `cdir`
    /// and the NAME entries (`budget` caps their decompressed bytes in
    /// all). Files this tree lacks come from `store` when it has them.
    /// `strip_line`: files are written without the `#line` the include
    /// server put first (line_prefix.rs; the store and the kept tree only
    /// ever hold one form: a worker or store serves one daemon, whose
    /// choice per compiler is fixed). Returns the working directory's
    /// server path.
    pub fn sync(
        &mut self,
        cdir: &[u8],
        entries: &[FileEntry],
        mut budget: usize,
        store: Option<&Store>,
        strip_line: bool,
    ) -> Result<PathBuf> {
        let root = self.fd.try_clone().map_err(|e| Error::io("dup", e))?;
        let mut pass = Pass {
            dirs: HashMap::from([(Vec::new(), 0)]),
            fds: vec![root],
            new: HashMap::with_capacity(self.known.len().max(64)),
            inodes: std::collections::HashSet::with_capacity(self.known.len().max(64)),
            bytes_mtime: HashMap::with_capacity(self.known.len().max(64)),
        };
        let cwd_parts = components(cdir)?;
        self.dir_index(&mut pass, &cwd_parts)?;
        for entry in entries {
            let parts = components(&entry.name)?;
            let Some((last, dirs)) = parts.split_last() else {
                return Err(hostile("NAME names the root itself", &entry.name));
            };
            let dir = self.dir_index(&mut pass, dirs)?;
            let key = key_of(&parts);
            let name = cstr(last)?;
            let node = match &entry.content {
                FileContent::File(lzo) => {
                    match pass.new.get(&key) {
                        Some(Node::Dir) => {
                            return Err(hostile("FILE names a directory", &entry.name));
                        }
                        Some(Node::Link(_)) => {
                            return Err(hostile("FILE would write through a symlink", &entry.name));
                        }
                        _ => {}
                    }
                    let wire_hash = wire_hash(lzo);
                    let kept = match self.known.get(&key) {
                        Some(Node::File(w))
                            if !pass.new.contains_key(&key)
                                && w.wire_len == lzo.len()
                                && w.wire_hash == wire_hash
                                && w.data_len <= budget
                                && w.stripped == strip_line
                                && stamp_at(&pass.fds[dir], &name) == Some(w.stamp) =>
                        {
                            Some(w.clone())
                        }
                        _ => None,
                    };
                    let written = match kept {
                        Some(w) => w,
                        None => {
                            if self.may_hold(&pass, &key) {
                                remove_at(&pass.fds[dir], &name, 0)?;
                            }
                            let linked = store.and_then(|s| {
                                let fd = &pass.fds[dir];
                                s.link_into(wire_hash, lzo.len(), strip_line, budget, fd, &name)
                            });
                            let (stamp, data_len, content) = match linked {
                                Some(l) => l,
                                None => {
                                    let data = distcc::compress::decompress(lzo, budget)?;
                                    let fd = &pass.fds[dir];
                                    let skip = if strip_line {
                                        super::line_prefix::inserted_line(&data).unwrap_or(0)
                                    } else {
                                        0
                                    };
                                    let stamp = write_new_file(
                                        fd,
                                        &name,
                                        &data[skip..],
                                        &entry.name,
                                        store,
                                    )?;
                                    let content = content_hash(&data[skip..]);
                                    if let Some(s) = store {
                                        let stored = (wire_hash, lzo.len(), strip_line);
                                        s.add(stored, data.len(), content, fd, &name);
                                    }
                                    (stamp, data.len(), content)
                                }
                            };
                            Written {
                                wire_len: lzo.len(),
                                wire_hash,
                                data_len,
                                stripped: strip_line,
                                content,
                                stamp,
                            }
                        }
                    };
                    // Two names of one request never share an inode (as
                    // linked from the store, or kept from earlier jobs):
                    // Clang tells `#pragma once` files apart by inode and
                    // must see two files, as on the client and with a
                    // stock daemon. The copy keeps the other's mtime, so
                    // GCC, which compares size, mtime and bytes, still
                    // takes them for one, as locally for `cp -p` copies.
                    // Likewise every file with the same bytes gets the
                    // mtime of the first, whichever job wrote each: the
                    // include server sends identical bytes only for copies
                    // with one local mtime (twins.rs), so a file kept
                    // from an earlier job must not look newer or older.
                    // By the bytes as written: a copy sent with the include
                    // server's `#line` (found through an absolute directory)
                    // and one sent without it are the same file once the
                    // line is taken out (sweep J, D7).
                    let same_bytes = (written.content, written.stripped);
                    let first_mtime = pass.bytes_mtime.get(&same_bytes).copied();
                    let shares_inode = !pass.inodes.insert(written.stamp.ino());
                    let other_mtime = first_mtime.is_some_and(|m| m != written.stamp.mtime());
                    let written = if !shares_inode && !other_mtime {
                        written
                    } else {
                        let fd = &pass.fds[dir];
                        remove_at(fd, &name, 0)?;
                        let data = distcc::compress::decompress(lzo, budget)?;
                        let skip = if strip_line {
                            super::line_prefix::inserted_line(&data).unwrap_or(0)
                        } else {
                            0
                        };
                        write_new_file(fd, &name, &data[skip..], &entry.name, store)?;
                        let mtime = first_mtime.unwrap_or(written.stamp.mtime());
                        super::fsat::set_mtime_at(fd, &name, mtime)
                            .map_err(|e| Error::io("setting a copy's mtime", e))?;
                        let stamp = stamp_at(fd, &name)
                            .ok_or_else(|| Error::new(distcc::Kind::Io, "a fresh copy vanished"))?;
                        pass.inodes.insert(stamp.ino());
                        Written { stamp, ..written }
                    };
                    pass.bytes_mtime
                        .entry(same_bytes)
                        .or_insert(written.stamp.mtime());
                    budget -= written.data_len;
                    Node::File(written)
                }
                FileContent::Link(target) => {
                    let target = if target.starts_with(b"/") {
                        let mut t = self.path.as_os_str().as_bytes().to_vec();
                        t.extend_from_slice(target);
                        t
                    } else {
                        target.clone()
                    };
                    let node = Node::Link(target);
                    match pass.new.get(&key) {
                        // The same link sent twice is harmless.
                        Some(n) if *n == node => continue,
                        Some(_) => {
                            return Err(hostile("LINK conflicts with an entry", &entry.name));
                        }
                        None => {}
                    }
                    let Node::Link(target) = &node else {
                        unreachable!("built as a link above")
                    };
                    let unchanged = self.known.get(&key) == Some(&node)
                        && read_link_at(&pass.fds[dir], &name).as_deref() == Some(&target[..]);
                    if !unchanged {
                        if self.may_hold(&pass, &key) {
                            remove_at(&pass.fds[dir], &name, 0)?;
                        }
                        let t = cstr(target)?;
                        // SAFETY: symlinkat with valid strings and directory fd.
                        let r = unsafe {
                            libc::symlinkat(t.as_ptr(), pass.fds[dir].as_raw_fd(), name.as_ptr())
                        };
                        if r != 0 {
                            return Err(Error::io(
                                format!("creating link {:?}", String::from_utf8_lossy(&entry.name)),
                                std::io::Error::last_os_error(),
                            ));
                        }
                    }
                    node
                }
            };
            pass.new.insert(key, node);
        }
        self.confine_links(&mut pass)?;
        self.remove_stale(&pass)?;
        self.known = pass.new;
        let mut cwd = self.path.clone();
        for part in cwd_parts {
            cwd.push(std::ffi::OsStr::from_bytes(part));
        }
        Ok(cwd)
    }

    /// Removes every link of the request that leads out of the root to
    /// anything but a directory (the include server's system-directory
    /// links lead to `/usr/include` and the like). The compiler writes some
    /// files into its working directory under names of its own
    /// (`-fdump-ada-spec`'s `.ads`, Clang's `-ftime-trace=NAME`): a link
    /// planted under such a name must not carry that write out of the job,
    /// to an existing file or to a new one. A removed link reads as the
    /// missing file it leads to on this server (or as a file that is not
    /// the client's), so no compile that could succeed changes.
    fn confine_links(&self, pass: &mut Pass) -> Result<()> {
        let links: Vec<Vec<u8>> = (pass.new.iter())
            .filter(|(_, n)| matches!(n, Node::Link(_)))
            .map(|(k, _)| k.clone())
            .collect();
        if links.is_empty() {
            return Ok(());
        }
        let root = std::fs::canonicalize(&self.path)
            .map_err(|e| Error::io(format!("resolving {}", self.path.display()), e))?;
        for key in links {
            let path = self.path.join(std::ffi::OsStr::from_bytes(&key));
            let outside_file = match std::fs::canonicalize(&path) {
                Ok(real) if real.starts_with(&root) => continue,
                Ok(real) if std::fs::metadata(&real).is_ok_and(|m| m.is_dir()) => continue,
                Ok(_) => true,
                // Leads nowhere: a system directory this server lacks, say.
                Err(_) => false,
            };
            let parts: Vec<&[u8]> = key.split(|&b| b == b'/').collect();
            let Some((last, above)) = parts.split_last() else {
                continue;
            };
            let dir = self.dir_index(pass, above)?;
            remove_at(&pass.fds[dir], &cstr(last)?, 0)?;
            pass.new.remove(&key);
            let shown = String::from_utf8_lossy(&key);
            if outside_file {
                log::warn!("link /{shown} leads out of the job to a file: not made");
            } else {
                log::debug!("link /{shown} leads nowhere: not made");
            }
        }
        Ok(())
    }

    /// The directory `parts` below the root, walked (and created) once per
    /// pass; replaces a file or link the last job left at that name.
    fn dir_index(&self, pass: &mut Pass, parts: &[&[u8]]) -> Result<usize> {
        let key = key_of(parts);
        if let Some(&i) = pass.dirs.get(&key) {
            return Ok(i);
        }
        let Some((last, above)) = parts.split_last() else {
            return Ok(0);
        };
        // At most MAX_OPEN_DIRS directories are held open (the daemon's
        // descriptors serve every client): past that, all but the root are
        // closed and opened again as needed.
        if pass.fds.len() >= MAX_OPEN_DIRS {
            pass.fds.truncate(1);
            pass.dirs.retain(|k, _| k.is_empty());
        }
        let parent = self.dir_index(pass, above)?;
        let made_in_this_pass = match pass.new.get(&key) {
            Some(Node::Dir) => true,
            None => false,
            Some(_) => return Err(hostile("directory conflicts with a FILE or LINK", &key)),
        };
        if !made_in_this_pass
            && matches!(
                self.known.get(&key),
                Some(Node::File(_)) | Some(Node::Link(_))
            )
        {
            remove_at(&pass.fds[parent], &cstr(last)?, 0)?;
        }
        let fd = open_dir_at(&pass.fds[parent], last, true)?;
        pass.fds.push(fd);
        let i = pass.fds.len() - 1;
        pass.dirs.insert(key.clone(), i);
        pass.new.insert(key, Node::Dir);
        Ok(i)
    }

    /// Whether something may exist at `key`: the tree holds only what the
    /// last job or this pass put there (anything else makes the exclusive
    /// create fail, and the tree is then dropped), so a path neither named
    /// needs no unlink first.
    fn may_hold(&self, pass: &Pass, key: &[u8]) -> bool {
        self.known.contains_key(key) || pass.new.contains_key(key)
    }

    /// Removes what the last job left and this one does not name. Only the
    /// topmost such entries are removed, each with everything below it:
    /// every directory above a name of this pass is named in it too, so all
    /// that lies below a stale directory is stale as well. (Removing each
    /// stale path on its own, reopened from the root, cost time quadratic
    /// in the depth of a deep tree: sweep X, D3.)
    fn remove_stale(&self, pass: &Pass) -> Result<()> {
        for key in self.known.keys() {
            if pass.new.contains_key(key) {
                continue;
            }
            let (above, last) = match key.iter().rposition(|&b| b == b'/') {
                Some(i) => (&key[..i], &key[i + 1..]),
                None => (&key[..0], &key[..]),
            };
            // Below a stale directory: removed with it.
            if !above.is_empty() && !pass.new.contains_key(above) {
                continue;
            }
            let parts: Vec<&[u8]> = if above.is_empty() {
                Vec::new()
            } else {
                above.split(|&b| b == b'/').collect()
            };
            // A parent that is no longer a directory took the stale entry
            // with it.
            let Some(parent) = self.open_existing(pass, &parts) else {
                continue;
            };
            remove_at(&parent, &cstr(last)?, 0)?;
        }
        Ok(())
    }

    /// Opens an existing directory below the root without creating it.
    fn open_existing(&self, pass: &Pass, parts: &[&[u8]]) -> Option<OwnedFd> {
        if let Some(&i) = pass.dirs.get(&key_of(parts)) {
            return pass.fds[i].try_clone().ok();
        }
        let mut dir = self.fd.try_clone().ok()?;
        for part in parts {
            #[cfg(test)]
            self.walked_opens.set(self.walked_opens.get() + 1);
            dir = open_dir_at(&dir, part, false).ok()?;
        }
        Some(dir)
    }
}

/// Creates `name` (which must not exist) with `data`; returns its stamp.
/// Creates `name` in `dir` holding `data`. When the file system is full,
/// the store's files (which may be all that holds the space) are let go and
/// the file is tried once more.
fn write_new_file(
    dir: &OwnedFd,
    name: &std::ffi::CStr,
    data: &[u8],
    client: &[u8],
    store: Option<&Store>,
) -> Result<Stamp> {
    match try_write_new_file(dir, name, data, client) {
        Err(Attempt::NoSpace(_)) if store.is_some_and(Store::release) => {
            try_write_new_file(dir, name, data, client).map_err(Attempt::into_error)
        }
        other => other.map_err(Attempt::into_error),
    }
}

enum Attempt {
    NoSpace(Error),
    Failed(Error),
}

impl Attempt {
    fn into_error(self) -> Error {
        match self {
            Attempt::NoSpace(e) | Attempt::Failed(e) => e,
        }
    }

    fn io(what: &str, e: std::io::Error) -> Attempt {
        let full = matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT));
        let e = Error::io(what, e);
        if full {
            Attempt::NoSpace(e)
        } else {
            Attempt::Failed(e)
        }
    }
}

fn try_write_new_file(
    dir: &OwnedFd,
    name: &std::ffi::CStr,
    data: &[u8],
    client: &[u8],
) -> std::result::Result<Stamp, Attempt> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: openat with a valid directory fd and name.
    // Read-only: the compiler reads these files, never writes them, and a
    // file may be a hard link shared with the store and other trees; a
    // compiler option that writes into its working directory under a name
    // a client chose must not rewrite it for everyone.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0o444) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::EEXIST)) {
            return Err(Attempt::Failed(hostile(
                "FILE would write through a symlink",
                client,
            )));
        }
        return Err(Attempt::io("creating a pump file", e));
    }
    // SAFETY: fd was just returned by openat.
    let mut file = unsafe { File::from_raw_fd(fd) };
    if let Err(e) = file.write_all(data) {
        // Not left half-written: the name is free for another attempt.
        // SAFETY: unlinkat of the regular file just created in `dir`.
        unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
        return Err(Attempt::io("writing a pump file", e));
    }
    Stamp::of(&file).map_err(|e| Attempt::io("stat of a pump file", e))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A FILE element with `data`, compressed as clients send it.
    pub(in super::super) fn file(name: &str, data: &[u8]) -> FileEntry {
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

    fn scratch(tag: &str) -> PathBuf {
        let base = std::env::temp_dir().join(format!("pumproot-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        base
    }

    /// Every path below `dir`, with "d", "f:<bytes>" or "l:<target>".
    /// Asserts that the kept tree at `base/root` holds exactly what a fresh
    /// tree (made at `base/fresh`) synced to `entries` holds.
    fn assert_like_fresh(base: &Path, fresh: &str, entries: &[FileEntry]) {
        let mut tree = Tree::create(base.join(fresh)).unwrap();
        tree.sync(b"/p/src", entries, 1 << 20, None, false).unwrap();
        assert_eq!(listing(&base.join("root")), listing(&base.join(fresh)));
    }

    fn listing(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                let t = e.file_type().unwrap();
                let what = if t.is_symlink() {
                    format!("l:{}", std::fs::read_link(e.path()).unwrap().display())
                } else if t.is_dir() {
                    stack.push(e.path());
                    "d".to_string()
                } else {
                    format!(
                        "f:{}",
                        String::from_utf8_lossy(&std::fs::read(e.path()).unwrap())
                    )
                };
                out.push((rel, what));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn path_checks() {
        assert_eq!(components(b"/a//b/c").unwrap(), vec![&b"a"[..], b"b", b"c"]);
        let deep = |n: usize| b"/a".repeat(n);
        assert_eq!(
            components(&deep(MAX_COMPONENTS)).unwrap().len(),
            MAX_COMPONENTS
        );
        assert!(components(&deep(MAX_COMPONENTS + 1)).is_err());
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
        let base = scratch("links");
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let mut tree = Tree::create(base.join("root")).unwrap();
        let cwd = tree
            .sync(
                b"/home/u",
                &[
                    file("/home/u/a.c", b"int x;\n"),
                    link("/usr/include", "../../usr/include"),
                    link("/usr/include", "../../usr/include"),
                ],
                1 << 20,
                None,
                false,
            )
            .unwrap();
        assert_eq!(cwd, base.join("root/home/u"));
        assert_eq!(
            std::fs::read(base.join("root/home/u/a.c")).unwrap(),
            b"int x;\n"
        );
        // A different target at the same name in one request is refused.
        let twice = [link("/l", "a"), link("/l", "b")];
        assert!(tree.sync(b"/", &twice, 1 << 20, None, false).is_err());
        // A link pointing outside, then a FILE through it: refused.
        let escape = format!("../../../../../../..{}", outside.display());
        let through = [link("/evil", &escape), file("/evil/victim", b"x")];
        assert!(tree.sync(b"/", &through, 1 << 20, None, false).is_err());
        // A FILE at the name of a link of the same request: refused.
        let at_link = [
            link("/home/u/l.h", "/etc/passwd"),
            file("/home/u/l.h", b"x"),
        ];
        assert!(tree.sync(b"/", &at_link, 1 << 20, None, false).is_err());
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        // Absolute link targets are re-rooted.
        let mut tree = Tree::create(base.join("root2")).unwrap();
        tree.sync(
            b"/",
            &[
                file("/etc/passwd", b"mine\n"),
                link("/home/u/l.h", "/etc/passwd"),
            ],
            1 << 20,
            None,
            false,
        )
        .unwrap();
        let t = std::fs::read_link(base.join("root2/home/u/l.h")).unwrap();
        assert!(t.starts_with(base.join("root2")), "{t:?}");
        // A link out of the root to a file, or to nothing, is not made; one
        // to a directory (a system directory's) is.
        let outside_file = base.join("outside-file");
        std::fs::write(&outside_file, b"precious").unwrap();
        let up = "../".repeat(30);
        let rel = |p: &Path| format!("{up}{}", p.display().to_string().trim_start_matches('/'));
        tree.sync(
            b"/w",
            &[
                link("/w/to_file", &rel(&outside_file)),
                link("/w/to_nothing", &rel(&base.join("nothing"))),
                link("/w/to_dir", &rel(&outside)),
            ],
            1 << 20,
            None,
            false,
        )
        .unwrap();
        let made = |n: &str| base.join("root2/w").join(n).symlink_metadata().is_ok();
        assert!(!made("to_file") && !made("to_nothing") && made("to_dir"));
        assert_eq!(std::fs::read(&outside_file).unwrap(), b"precious");
        // Decompression budget.
        assert!(
            tree.sync(b"/", &[file("/big", &vec![0u8; 4096])], 100, None, false)
                .is_err()
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn files_with_the_same_bytes_get_one_mtime_whichever_job_wrote_them() {
        use std::os::unix::fs::MetadataExt;
        let base = scratch("twins");
        let mut tree = Tree::create(base.join("root")).unwrap();
        let once = b"#pragma once\nint twin;\n";
        tree.sync(b"/p", &[file("/p/a/t.h", once)], 1 << 20, None, false)
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = [
            file("/p/a/t.h", once),
            file("/p/b/t.h", once),
            file("/p/c.h", b"other\n"),
        ];
        tree.sync(b"/p", &second, 1 << 20, None, false).unwrap();
        let meta = |p: &str| std::fs::metadata(base.join("root/p").join(p)).unwrap();
        let (a, b) = (meta("a/t.h"), meta("b/t.h"));
        assert_eq!((a.mtime(), a.mtime_nsec()), (b.mtime(), b.mtime_nsec()));
        assert_ne!(a.ino(), b.ino());
        // Kept as they are by the next job with the same request.
        tree.sync(b"/p", &second, 1 << 20, None, false).unwrap();
        assert_eq!(meta("b/t.h").ino(), b.ino());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn many_directories_are_synced_with_few_descriptors() {
        let base = scratch("manydirs");
        let mut tree = Tree::create(base.join("root")).unwrap();
        let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let before = fds();
        let many: Vec<FileEntry> = (0..3 * MAX_OPEN_DIRS)
            .map(|i| {
                file(
                    &format!("/p/d{}/e{i}/f.h", i % 7),
                    format!("int v{i};\n").as_bytes(),
                )
            })
            .collect();
        tree.sync(b"/p", &many, 1 << 24, None, false).unwrap();
        for i in [0, MAX_OPEN_DIRS, 3 * MAX_OPEN_DIRS - 1] {
            let f = base.join(format!("root/p/d{}/e{i}/f.h", i % 7));
            assert_eq!(
                std::fs::read(&f).unwrap(),
                format!("int v{i};\n").as_bytes()
            );
        }
        // Half of them again: the other half goes.
        let half: Vec<FileEntry> = many[..many.len() / 2].to_vec();
        tree.sync(b"/p", &half, 1 << 24, None, false).unwrap();
        assert!(
            !base
                .join(format!(
                    "root/p/d{}/e{}",
                    (many.len() - 1) % 7,
                    many.len() - 1
                ))
                .exists()
        );
        assert!(fds() <= before + 2, "descriptors left open");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_kept_tree_holds_exactly_the_new_request() {
        let base = scratch("reuse");
        let mut tree = Tree::create(base.join("root")).unwrap();
        let first = [
            file("/p/inc/a.h", b"int a;\n"),
            file("/p/inc/b.h", b"int b;\n"),
            file("/p/old/gone.h", b"gone\n"),
            link("/p/sys", "../usr/include"),
            file("/p/x", b"file that becomes a directory\n"),
        ];
        tree.sync(b"/p/src", &first, 1 << 20, None, false).unwrap();
        let a_inode = std::fs::metadata(base.join("root/p/inc/a.h"))
            .unwrap()
            .ino();
        let second = [
            file("/p/inc/a.h", b"int a;\n"),
            file("/p/inc/b.h", b"int B;\n"),
            file("/p/inc/c.h", b"int c;\n"),
            file("/p/sys", b"a file where a link was\n"),
            file("/p/x/y.h", b"int y;\n"),
        ];
        tree.sync(b"/p/src", &second, 1 << 20, None, false).unwrap();
        assert_like_fresh(&base, "fresh", &second);
        // The unchanged header was left in place.
        let again = std::fs::metadata(base.join("root/p/inc/a.h"))
            .unwrap()
            .ino();
        assert_eq!(a_inode, again);
        // A file changed on disk behind our back is rewritten (after a pause
        // longer than the kernel's timestamp granularity, so its ctime moves).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(base.join("root/p/inc/a.h"), b"int z;\n").unwrap();
        tree.sync(b"/p/src", &second, 1 << 20, None, false).unwrap();
        assert_eq!(
            std::fs::read(base.join("root/p/inc/a.h")).unwrap(),
            b"int a;\n"
        );
        // And back to the first request, from the second.
        tree.sync(b"/p/src", &first, 1 << 20, None, false).unwrap();
        assert_like_fresh(&base, "fresh1", &first);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_deep_stale_chain_is_removed_in_one_walk() {
        // Each job a different 300-deep chain (sweep X, D3): the old chain
        // goes with its top directory, not path by path from the root.
        let base = scratch("deep");
        let mut tree = Tree::create(base.join("root")).unwrap();
        let chain = |top: &str| format!("/p/{top}/{}/x.h", vec!["d"; 300].join("/"));
        let first = [file(&chain("a"), b"int a;\n")];
        tree.sync(b"/p/src", &first, 1 << 20, None, false).unwrap();
        let second = [file(&chain("b"), b"int b;\n")];
        tree.sync(b"/p/src", &second, 1 << 20, None, false).unwrap();
        assert_like_fresh(&base, "fresh", &second);
        assert!(
            tree.walked_opens.get() <= 300,
            "{} directories opened from the root",
            tree.walked_opens.get()
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
