//! System headers: followed only to find non-system files they may reach
//! (through user `-I` directories), and memoised across requests.
//!
//! A system header is never sent, but `#include <x>` inside it searches the
//! user's `-I` directories first, so a user file may be reached from it.
//! Scanning all system headers of every translation unit costs
//! milliseconds (C++ pulls hundreds), so the scan from each root header is
//! computed once per search configuration and stored in the shared cache
//! ([`Cache::system_scans`]) with what it depended on outside system
//! directories: the identity of each user directory it listed and the
//! result of each user path it stat'ed. A later request replays the memo
//! only when all of those still hold; a header created in a user directory
//! changes that directory's identity and forces a rescan.
//!
//! The scan ignores conditions inside system headers and follows every
//! literal `"x"`/`<x>` name, so the headers it records are a superset of
//! those the compiler opens from there. Their ids go into the request's
//! [`Unseen`](crate::includes::unseen::Unseen) set, which decides which
//! macro names a system header may have written. A computed include inside
//! a system header is not followed: the scan is then marked open (every
//! macro name becomes unknown after it), but a user file reached only
//! through such an include is not seen (a known limit).

use super::super::cache::{FastSet, FileId, key};
use super::super::resolve::{Found, SearchPath, join};
use super::super::scanner::IncludeKind;
use super::super::unseen::{HeaderId, IdSet};
use super::{NotCovered, Walker, collect_includes, header_name};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Something outside system directories a memoised scan depended on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dep {
    /// A directory (spelled relative to cwd) and its identity when listed
    /// (None: it did not exist).
    Listing(PathBuf, Option<FileId>),
    /// `dir/name` was (or was not) a regular file.
    Probe(PathBuf, PathBuf, bool),
}

/// The dependencies of a scan being computed, each recorded once.
#[derive(Default)]
pub struct Recording {
    deps: Vec<Dep>,
    seen: FastSet<Vec<u8>>,
    buf: Vec<u8>,
}

impl Recording {
    fn first(&mut self, tag: u8, parts: &[&[u8]]) -> bool {
        self.buf.clear();
        self.buf.push(tag);
        for p in parts {
            self.buf.extend_from_slice(p);
            self.buf.push(0);
        }
        if self.seen.contains(&self.buf) {
            return false;
        }
        self.seen.insert(self.buf.clone());
        true
    }

    /// Directory `dir` had identity `id` when listed.
    pub fn listing(&mut self, dir: &Path, id: Option<FileId>) {
        if self.first(b'L', &[key(dir)]) {
            self.deps.push(Dep::Listing(dir.to_path_buf(), id));
        }
    }

    /// `dir/name` was (or was not) a regular file.
    pub fn probe(&mut self, dir: &Path, name: &OsStr, found: bool) {
        if self.first(b'P', &[key(dir), name.as_bytes()]) {
            self.deps
                .push(Dep::Probe(dir.to_path_buf(), PathBuf::from(name), found));
        }
    }

    /// Records `d` again (from a memoised resolution).
    pub fn replay(&mut self, d: &Dep) {
        match d {
            Dep::Listing(dir, id) => self.listing(dir, *id),
            Dep::Probe(dir, name, found) => self.probe(dir, name.as_os_str(), *found),
        }
    }

    /// The dependencies recorded, each once.
    pub fn into_deps(self) -> Vec<Dep> {
        self.deps
    }
}

/// The memoised scan from one system header.
#[derive(Debug, Default)]
pub struct SysScan {
    /// Ids of every system header reached (see [`crate::includes::unseen`]).
    system: Vec<HeaderId>,
    /// Whether one of them has a computed include or could not be read.
    open: bool,
    /// Non-system files reached, to be walked normally.
    user: Vec<Found>,
    /// Paths opened outside system directories on the way (symlinked `-I`
    /// directories pointing into system directories).
    opened: Vec<PathBuf>,
    /// What must still hold for the memo to be valid.
    deps: Vec<Dep>,
}

/// A scan in progress.
#[derive(Default)]
struct Scan {
    seen: IdSet,
    ids: Vec<HeaderId>,
    open: bool,
    user: Vec<Found>,
}

/// The part of the memo key shared by all headers of one request.
pub fn config_key(cwd: &Path, search: &SearchPath) -> Vec<u8> {
    let mut k = key(cwd).to_vec();
    for d in &search.dirs {
        k.push(0);
        k.extend_from_slice(key(d));
    }
    k.push(1);
    k.extend_from_slice(search.angle_start.to_string().as_bytes());
    k.push(1);
    k.extend_from_slice(search.system_start.to_string().as_bytes());
    k
}

impl Walker<'_> {
    /// Follows system header `real` (opened as `found`).
    pub(super) fn scan_system(&mut self, real: PathBuf, found: &Found) -> Result<(), NotCovered> {
        // Every inclusion counts, even of a header scanned before: it may
        // write its macros again (see `unseen`).
        self.env.unseen.include();
        let header = match self.cache.system_header(&real) {
            Ok(h) => h,
            Err(_) => {
                // Unreadable: the compiler will fail on it, or read
                // something we cannot see.
                self.env.unseen.open = true;
                return Ok(());
            }
        };
        if self.env.unseen.scanned.contains(header.id) {
            return Ok(());
        }
        let mut k = self.config_key.clone();
        k.push(2);
        k.extend_from_slice(key(&found.spelled));
        k.push(3);
        k.extend_from_slice(format!("{:?}", found.dir_index).as_bytes());
        let cache = self.cache;
        let generation = cache.fs.system_generation();
        let cached = (cache.system_scans)
            .find(&k, |(g, _)| *g == generation)
            .map(|(_, m)| m.clone());
        let memo = match cached {
            Some(m) if self.revalidate(&m) => m,
            _ => {
                let m = Arc::new(self.compute(real, found)?);
                cache.system_scans.insert(k, (generation, m.clone()));
                m
            }
        };
        for &id in &memo.system {
            self.env.unseen.scanned.insert(id);
        }
        self.env.unseen.open |= memo.open;
        for p in &memo.opened {
            self.opened(p.clone());
        }
        for f in &memo.user {
            // Included from a system header: a system header too.
            self.visit(f, 1, false, true)?;
        }
        Ok(())
    }

    fn revalidate(&mut self, m: &SysScan) -> bool {
        for d in &m.deps {
            let ok = match d {
                // Listed already in this request: compare without a copy.
                Dep::Listing(dir, id) => match self.listings.get(key(dir)) {
                    Some(l) => l.as_ref().map(|l| l.0) == *id,
                    None => self.listing(dir).map(|l| l.0) == *id,
                },
                Dep::Probe(dir, name, was) => self.file(&join(dir, name)) == *was,
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// Scans from `real` with fresh visited sets, recording dependencies.
    fn compute(&mut self, real: PathBuf, found: &Found) -> Result<SysScan, NotCovered> {
        let saved_opened = std::mem::take(&mut self.opened);
        let saved_out = std::mem::take(&mut self.out.opened);
        let saved_rec = self.recording.replace(Recording::default());
        let mut scan = Scan::default();
        self.collect(real, found, &mut scan);
        let deps = std::mem::replace(&mut self.recording, saved_rec)
            .map(|r| r.deps)
            .unwrap_or_default();
        self.opened = saved_opened;
        let opened = std::mem::replace(&mut self.out.opened, saved_out);
        Ok(SysScan {
            system: scan.ids,
            open: scan.open,
            user: scan.user,
            opened,
            deps,
        })
    }

    fn collect(&mut self, real: PathBuf, found: &Found, scan: &mut Scan) {
        let header = match self.cache.system_header(&real) {
            Ok(h) => h,
            Err(_) => {
                scan.open = true;
                return;
            }
        };
        if !scan.seen.insert(header.id) {
            return;
        }
        scan.ids.push(header.id);
        scan.open |= header.computed;
        let parsed = &header.parsed;
        let dir = found
            .spelled
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let mut bodies = Vec::new();
        collect_includes(&parsed.nodes, &mut bodies);
        for (kind, body) in bodies {
            let Some((name, quote)) = header_name(body) else {
                continue;
            };
            let next = (kind == IncludeKind::Next).then_some(found.dir_index);
            for f in self.find(&name, quote, Some(&dir), next).iter() {
                let abs = join(self.cwd, &f.spelled);
                match self.realpath(&abs) {
                    Some(r) if self.is_system(&r) => {
                        self.opened(abs);
                        self.collect(r.to_path_buf(), f, scan);
                    }
                    Some(_) if !scan.user.contains(f) => scan.user.push(f.clone()),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_key_separates_dirs() {
        let a = SearchPath {
            dirs: vec![PathBuf::from("ab"), PathBuf::from("c")],
            angle_start: 0,
            system_start: 2,
        };
        let b = SearchPath {
            dirs: vec![PathBuf::from("a"), PathBuf::from("bc")],
            angle_start: 0,
            system_start: 2,
        };
        assert_ne!(
            config_key(Path::new("/w"), &a),
            config_key(Path::new("/w"), &b)
        );
    }
}
