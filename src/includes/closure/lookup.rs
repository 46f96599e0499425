//! The walker's look-ups in the file system: whether a spelled path is a
//! file (answered from cached directory listings where it can be), the
//! resolution of a header name through the search path (memoised per
//! request, and recorded while a system scan runs), real paths, and which
//! files and probes go into the reply.

use super::super::cache::{DirListing, ENTRY_DIR, ENTRY_FILE, key};
use super::super::fsview::EntryKind;
use super::super::resolve::{Found, join, join_cow};
use super::{Walker, sysscan};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

impl Walker<'_> {
    /// Whether `abs` (an absolute, spelled path) lies in a system directory.
    /// System directories are canonical, so such a path has no symlink
    /// before the directory; lookups there are cached across requests while
    /// the watched system directories do not change
    /// (`FsView::system_generation`).
    pub(super) fn in_system(&self, abs: &Path) -> bool {
        let p = key(abs);
        self.system_bytes.iter().any(|d| {
            p.starts_with(d) && (p.len() == d.len() || p[d.len()] == b'/' || d.ends_with(b"/"))
        })
    }

    pub(super) fn file(&mut self, spelled: &Path) -> bool {
        if let Some(&b) = self.is_file.get(key(spelled)) {
            return b;
        }
        let abs = join(self.cwd, spelled);
        let stable = self.in_system(&abs);
        let generation = self.cache.fs.system_generation();
        let cached = if stable {
            (self.cache.system_is_file)
                .find(key(&abs), |(g, _)| *g == generation)
                .map(|&(_, b)| b)
        } else {
            None
        };
        let b = match cached {
            Some(b) => b,
            None if stable => {
                let keep = self.cache.fs.watch_system(&abs);
                let b = std::fs::metadata(&abs).is_ok_and(|m| m.is_file());
                if keep {
                    (self.cache.system_is_file).insert(key(&abs).to_vec(), (generation, b));
                }
                b
            }
            // The canonical path has no symlinks: its own lstat says whether
            // the spelled path leads to a regular file.
            None => match self.realpath(&abs) {
                Some(real) => self
                    .fs
                    .lstat(&real)
                    .is_some_and(|m| m.kind == EntryKind::File),
                None => false,
            },
        };
        self.is_file.insert(key(spelled).to_vec(), b);
        b
    }

    pub(super) fn find(
        &mut self,
        name: &Path,
        quote: bool,
        dir: Option<&Path>,
        next: Option<Option<usize>>,
    ) -> Arc<[Found]> {
        // Resolutions are memoised per request (a header is included from
        // many places). While a system scan records its dependencies, a
        // separate memo keeps the dependencies of each resolution and
        // replays them into the recording on a hit.
        let mut k = std::mem::take(&mut self.key_buf);
        k.clear();
        k.push(quote as u8);
        match next {
            None => k.push(0),
            Some(None) => k.push(1),
            Some(Some(i)) => {
                k.push(2);
                k.extend_from_slice(&i.to_le_bytes());
            }
        }
        if quote && next.is_none() {
            k.extend_from_slice(key(dir.unwrap_or(Path::new(""))));
        }
        k.push(0);
        k.extend_from_slice(key(name));
        let search = self.search;
        if self.recording.is_some() {
            let found = match self.resolved_rec.get(&k) {
                Some((hit, deps)) => {
                    if let Some(rec) = &mut self.recording {
                        deps.iter().for_each(|d| rec.replay(d));
                    }
                    hit.clone()
                }
                None => {
                    let outer = self.recording.replace(sysscan::Recording::default());
                    let found: Arc<[Found]> = search
                        .find(name, quote, dir, next, &mut |d, n| self.file_in(d, n))
                        .into();
                    let inner = std::mem::replace(&mut self.recording, outer);
                    let deps: Arc<[sysscan::Dep]> =
                        inner.map(|r| r.into_deps()).unwrap_or_default().into();
                    if let Some(rec) = &mut self.recording {
                        deps.iter().for_each(|d| rec.replay(d));
                    }
                    self.resolved_rec.insert(k.clone(), (found.clone(), deps));
                    found
                }
            };
            self.key_buf = k;
            return found;
        }
        if let Some(hit) = self.resolved.get(&k) {
            let hit = hit.clone();
            self.key_buf = k;
            return hit;
        }
        let found: Arc<[Found]> = search
            .find(name, quote, dir, next, &mut |d, n| self.file_in(d, n))
            .into();
        self.resolved.insert(k.clone(), found.clone());
        self.key_buf = k;
        found
    }

    /// Whether `dir/name` is a regular file, answered from a listing of its
    /// directory (revalidated by the directory's own size, mtime and inode
    /// once per request): one `stat` per directory instead of one per
    /// lookup. Symlinks and odd entries are stat'ed.
    pub(super) fn file_in(&mut self, dir: &Path, name: &Path) -> bool {
        // The common case needs no new path: a plain file name in an
        // absolute user directory is looked up in that directory as given.
        let (d, n) = (key(dir), key(name));
        let plain = d.starts_with(b"/")
            && !d.ends_with(b"/")
            && !n.is_empty()
            && n != b"."
            && n != b".."
            && !n.contains(&b'/')
            && !self.in_system(dir);
        let full;
        let (parent, last) = if plain {
            (dir, name.as_os_str())
        } else {
            full = join(dir, name);
            let system = if full.is_absolute() {
                self.in_system(&full)
            } else {
                self.in_system(&join(self.cwd, &full))
            };
            if system || key(&full).ends_with(b"/.") {
                return self.file(&full);
            }
            let (Some(parent), Some(last)) = (full.parent(), full.file_name()) else {
                return self.file(&full);
            };
            (parent, last)
        };
        let listing = self.listing(parent);
        if let Some(rec) = &mut self.recording {
            rec.listing(parent, listing.as_ref().map(|l| l.0));
        }
        match listing.and_then(|(_, names)| names.get(last.as_bytes()).copied()) {
            None | Some(ENTRY_DIR) => false,
            Some(ENTRY_FILE) => true,
            Some(_) => {
                let found = self.file(&join(parent, Path::new(last)));
                if let Some(rec) = &mut self.recording {
                    rec.probe(parent, last, found);
                }
                found
            }
        }
    }

    /// The entry names of `dir` (spelled relative to cwd), or None if it is
    /// not a readable directory.
    pub(super) fn listing(&mut self, dir: &Path) -> Option<DirListing> {
        if let Some(l) = self.listings.get(key(dir)) {
            return l.clone();
        }
        let abs = join(self.cwd, dir);
        // The directory's identity (its mtime changes with its entries)
        // from the cached view; listed again only when it changed. That
        // answer comes from its parent's watch, which sees no file created
        // inside it: the directory is watched itself first (a header
        // generated into `gen/` of a search directory, sweep AA, D3).
        let meta = self.realpath(&abs).and_then(|real| {
            self.fs.dir(&real);
            self.fs.lstat(&real)
        });
        let l = meta
            .filter(|m| m.kind == EntryKind::Dir)
            .and_then(|m| self.cache.listing(&abs, m.id).map(|l| (m.id, l)));
        self.listings.insert(key(dir).to_vec(), l.clone());
        l
    }

    pub(super) fn realpath(&mut self, abs: &Path) -> Option<Rc<Path>> {
        if let Some(r) = self.real.get(key(abs)) {
            return r.clone();
        }
        let stable = self.in_system(abs);
        let generation = self.cache.fs.system_generation();
        let r = match (self.cache.system_real).find(key(abs), |(g, _)| *g == generation) {
            Some((_, r)) if stable => r.clone(),
            _ if stable => {
                let keep = self.cache.fs.watch_system(abs);
                let r = std::fs::canonicalize(abs).ok();
                if keep {
                    (self.cache.system_real).insert(key(abs).to_vec(), (generation, r.clone()));
                }
                r
            }
            _ => self.resolve_user(abs),
        };
        let r: Option<Rc<Path>> = r.map(Rc::from);
        self.real.insert(key(abs).to_vec(), r.clone());
        r
    }

    /// Canonical path of a user path: the canonical parent (memoised per
    /// request, so directories shared by many headers are resolved once)
    /// plus one `lstat` of the last component, whose identity is kept for
    /// the parse cache and the mirror. Symlinks and `..` fall back to the
    /// system's realpath.
    pub(super) fn resolve_user(&mut self, abs: &Path) -> Option<PathBuf> {
        if key(abs) == b"/" {
            return Some(PathBuf::from("/"));
        }
        let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
            return std::fs::canonicalize(abs).ok();
        };
        if key(abs).ends_with(b"/.") || key(abs).ends_with(b"/..") {
            return std::fs::canonicalize(abs).ok();
        }
        let dir = self.realpath(parent)?;
        let candidate = join(&dir, Path::new(name));
        let meta = self.fs.lstat(&candidate)?;
        match meta.kind {
            EntryKind::Symlink => return std::fs::canonicalize(abs).ok(),
            EntryKind::File => {
                self.ids.insert(key(&candidate).to_vec(), meta.id);
            }
            EntryKind::Dir | EntryKind::Other => {}
        }
        Some(candidate)
    }

    /// Records a path the compiler opens, for mirroring its symlinks. Paths
    /// spelled inside a system directory have none to mirror.
    pub(super) fn opened(&mut self, abs: PathBuf) {
        if !self.in_system(&abs) && self.opened.insert(key(&abs).to_vec()) {
            self.out.opened.push(abs);
        }
    }

    pub(super) fn is_system(&self, real: &Path) -> bool {
        self.in_system(real)
    }

    /// Sends the file at canonical path `real`, found as `found`, unless
    /// it is sent already.
    pub(super) fn send_found(&mut self, found: &Found, real: &Path) {
        if !self.index.contains_key(key(real)) {
            let line_name = found.spelled.is_absolute().then(|| found.spelled.clone());
            let line_kept = self.rewritten.contains(key(&found.spelled))
                || self.climbing.contains(key(&found.spelled))
                || (line_name.is_some() && self.cache.kept_lines.any(key(real), |_| true));
            self.send(real, line_name, line_kept);
        }
        if self.clang
            && let Some(&at) = self.index.get(key(real))
        {
            self.entered_as(at, &found.spelled);
        }
    }

    /// A header that `__has_include` found: sent, and its path mirrored, so
    /// that the server finds it too; not read (the compiler does not read
    /// it either). System headers are the server's own.
    pub(super) fn probed(&mut self, found: &Found) {
        let Some(real) = self.resolve_found(found) else {
            return;
        };
        if !self.is_system(&real) {
            let real = real.to_path_buf();
            self.send_found(found, &real);
        }
    }

    /// The canonical path of `found`, its spelled path recorded for
    /// mirroring when it does not resolve or resolves elsewhere (only paths
    /// through symlinks or `..` need mirroring; a path that differs only in
    /// spelling, like `a//b`, is mirrored harmlessly).
    pub(super) fn resolve_found(&mut self, found: &Found) -> Option<Rc<Path>> {
        let abs = join_cow(self.cwd, &found.spelled);
        let Some(real) = self.realpath(&abs) else {
            self.opened(abs.into_owned());
            return None;
        };
        if key(&real) != key(&abs) {
            self.opened(abs.into_owned());
        }
        Some(real)
    }
}
