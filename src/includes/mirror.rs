//! The client root: a mirror of the client's file system holding what the
//! client sends for a translation unit (facts §2.2).
//!
//! The include server creates one root directory of exactly three path
//! components (`<tmp>/tmpXXXXXXXX.include_server-<pid>-<gen>`, padded with
//! `/padding`), and for each translation unit writes into it:
//! `<root><realpath>.lzo` (LZO copy of the file), `<root><realpath>.lzo.abs`
//! (copy prefixed with `#line 1 "<path>"` for files opened through an
//! absolute path), system-directory links (`"../" × (20 + slashes) + dir`),
//! mirrored symlinks (absolute canonical targets), and empty
//! `forcing_technique_271828` files in directories that must exist. The
//! reply lists these paths; the client reads them to build its request
//! (ours gets that request part ready-made: [`super::bundle`], and for it
//! nothing is written unless no list can be passed: `to_disk`).
//! Compressed copies are made once per file version, and written once
//! when a client reads them (see [`super::cache::Cache::written`]).

use super::bundle::{Body, Entry, client_name};
use super::cache::{Cache, FileId, Latest, PACKED_BUDGET, Written, key, map_file};
use super::closure::{Closure, Sent};
use super::fsview::FsLookup;
use super::twins;
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Name of the empty file that makes a directory exist on the server.
pub const FORCING_FILE: &str = "forcing_technique_271828";

/// The client root of one include-server generation.
#[derive(Debug, Clone)]
pub struct ClientRoot {
    /// The padded root (three components).
    pub path: PathBuf,
    /// The directory to delete at shutdown (the mkdtemp directory).
    pub top: PathBuf,
}

/// The directory holding client roots: `$DISTCC_CLIENT_TMP` (absolute, at
/// most two components), else `/dev/shm` if writable, else `/tmp`.
pub fn client_tmp(env_value: Option<&OsStr>) -> PathBuf {
    if let Some(v) = env_value {
        let p = Path::new(v);
        if p.is_absolute() && p.components().count() <= 3 {
            return p.to_path_buf();
        }
    }
    let shm = Path::new("/dev/shm");
    let probe = shm.join(format!(".distcc-probe-{}", std::process::id()));
    if std::fs::write(&probe, b"").is_ok() {
        let _ = std::fs::remove_file(&probe);
        return shm.to_path_buf();
    }
    PathBuf::from("/tmp")
}

fn random_word() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut v = h.finish();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    (0..8)
        .map(|_| {
            let c = alphabet[(v % alphabet.len() as u64) as usize] as char;
            v /= alphabet.len() as u64;
            c
        })
        .collect()
}

impl ClientRoot {
    /// Creates a fresh root under `tmp` for server `pid`, generation `generation`.
    pub fn create(tmp: &Path, pid: u32, generation: u32) -> Result<ClientRoot> {
        let mut last = None;
        for _ in 0..100 {
            let top = tmp.join(format!(
                "tmp{}.include_server-{pid}-{generation}",
                random_word()
            ));
            // Private, as stock's mkdtemp makes it: the copies are of the
            // user's sources, which other users may not be able to read.
            use std::os::unix::fs::DirBuilderExt;
            match std::fs::DirBuilder::new().mode(0o700).create(&top) {
                Ok(()) => {
                    let mut path = top.clone();
                    while path.components().count() < 4 {
                        path.push("padding");
                    }
                    std::fs::create_dir_all(&path)
                        .map_err(|e| Error::io(format!("mkdir {}", path.display()), e))?;
                    return Ok(ClientRoot { path, top });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(Error::io(format!("mkdir {}", top.display()), e)),
            }
        }
        Err(Error::io(
            "create client root",
            last.unwrap_or_else(|| std::io::Error::other("no name")),
        ))
    }

    /// Deletes the root and everything in it.
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.top);
    }

    /// The mirror path of client path `p` (absolute) plus `suffix`.
    pub fn under(&self, p: &Path, suffix: &str) -> PathBuf {
        let mut s = self.path.clone().into_os_string().into_vec();
        s.extend_from_slice(p.as_os_str().as_bytes());
        s.extend_from_slice(suffix.as_bytes());
        PathBuf::from(OsString::from_vec(s))
    }
}

/// Removes roots of include servers that are no longer running (facts §2.2).
pub fn clean_dead_roots(tmp: &Path) {
    let Ok(rd) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in rd.flatten().take(10_000) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Some(rest) = name.split(".include_server-").nth(1) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Removes from the client root under `root` what mirrors a file, link or
/// directory that no longer exists on the client (scratch directories of
/// configure tests and CMake `try_compile`, deleted headers), then the
/// directories left empty; returns how many entries went. Run only while
/// no request is being answered: a copy that is needed again is written
/// again (its record finds the file missing).
pub fn sweep_gone(root: &Path) -> usize {
    fn source_of(root: &Path, mirror: &Path) -> Option<PathBuf> {
        let below = mirror.strip_prefix(root).ok()?;
        let mut bytes = Path::new("/").join(below).into_os_string().into_vec();
        for suffix in [&b".abs"[..], b".lzo"] {
            if bytes.ends_with(suffix) {
                bytes.truncate(bytes.len() - suffix.len());
            }
        }
        Some(PathBuf::from(OsString::from_vec(bytes)))
    }
    fn walk(root: &Path, dir: &Path, budget: &mut usize, removed: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if *budget == 0 {
                return;
            }
            *budget -= 1;
            let path = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                walk(root, &path, budget, removed);
                // Only an empty one goes.
                if std::fs::remove_dir(&path).is_ok() {
                    *removed += 1;
                }
                continue;
            }
            let source = if e.file_name() == FORCING_FILE {
                path.parent().and_then(|d| source_of(root, d))
            } else {
                source_of(root, &path)
            };
            let gone = source.is_some_and(|s| {
                std::fs::symlink_metadata(s)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            });
            if gone && std::fs::remove_file(&path).is_ok() {
                *removed += 1;
            }
        }
    }
    let mut removed = 0;
    walk(root, root, &mut 1_000_000, &mut removed);
    removed
}

/// The reply paths, and what a client sends for each (when every
/// compressed copy's bytes were at hand).
#[derive(Debug, Default)]
pub struct Materialized {
    pub paths: Vec<PathBuf>,
    pub entries: Option<Vec<Entry>>,
    /// Absolute `#include` names rewritten to relative ones in the copies
    /// (our client restores them in the `.d` file).
    pub absolute_names: Vec<Vec<u8>>,
    /// [`Closure::date_or_time`].
    pub date_or_time: bool,
}

/// Writes what `closure` needs into `root` and returns the reply paths:
/// compressed files, system-directory links, mirrored symlinks, forcing files.
pub fn materialize(
    root: &ClientRoot,
    cache: &Cache,
    closure: &Closure,
    force_dirs: bool,
    to_disk: bool,
) -> Result<Materialized> {
    let mut reply = Vec::new();
    let mut entries = Some(Vec::new());
    let mut fs = FsLookup::new(&cache.fs);
    // Plain copies by (device, inode): a hard link to a file already sent
    // goes as a link to it, so that the server, like the client, has one
    // file under two names (Clang tells `#pragma once` files apart by
    // inode; two copies were read twice).
    let mut sent_inodes: HashMap<(u64, u64), &Path> = HashMap::new();
    for f in &closure.files {
        let plain = f.line_name.is_none() && f.rewrites.is_empty();
        if plain && let Some(id) = f.id {
            match sent_inodes.get(&(id.dev, id.ino)) {
                Some(first) => {
                    let dest = root.under(&f.real, "");
                    if to_disk {
                        make_link(&root.path, &dest, first)?;
                    }
                    if let Some(list) = &mut entries {
                        list.push(Entry {
                            name: f.real.as_os_str().as_bytes().to_vec(),
                            body: Body::Link(first.as_os_str().as_bytes().to_vec()),
                        });
                    }
                    reply.push(dest);
                    continue;
                }
                None => {
                    sent_inodes.insert((id.dev, id.ino), &f.real);
                }
            }
        }
        let suffix = if f.line_name.is_some() {
            ".lzo.abs"
        } else {
            ".lzo"
        };
        let dest = root.under(&f.real, suffix);
        let packed = write_copy(
            cache,
            &mut fs,
            &root.path,
            f,
            &dest,
            closure.imports,
            to_disk,
        )?;
        match (packed, &mut entries) {
            (Some(bytes), Some(list)) => list.push(Entry {
                name: f.real.as_os_str().as_bytes().to_vec(),
                body: Body::File(bytes),
            }),
            _ => entries = None,
        }
        reply.push(dest);
    }
    let systems = outermost(&closure.system_dirs);
    for d in &systems {
        let dest = root.under(d, "");
        let slashes = d
            .as_os_str()
            .as_bytes()
            .iter()
            .filter(|&&c| c == b'/')
            .count();
        let mut target = b"../".repeat(20 + slashes);
        target.extend_from_slice(&d.as_os_str().as_bytes()[1..]);
        if to_disk {
            make_link(&root.path, &dest, Path::new(OsStr::from_bytes(&target)))?;
        }
        if let Some(list) = &mut entries {
            list.push(Entry {
                name: client_name(d.as_os_str().as_bytes()),
                body: Body::Link(target),
            });
        }
        reply.push(dest);
    }
    let mut links = Vec::new();
    let mut must_exist = Vec::new();
    for p in &closure.opened {
        walk_components(p, &systems, &mut links, &mut must_exist);
    }
    if !closure.search_dirs.is_empty() {
        // A directory holding a sent file exists on the server anyway.
        let holding: HashSet<&[u8]> = (closure.files.iter())
            .filter_map(|f| f.real.parent().map(key))
            .collect();
        for (spelled, real) in &closure.search_dirs {
            if key(spelled) != key(real) {
                // Through symlinks or `..`: mirrored like an opened path.
                walk_components(spelled, &systems, &mut links, &mut must_exist);
            }
            if !holding.contains(key(real)) && !must_exist.contains(real) {
                must_exist.push(real.clone());
            }
        }
    }
    let mut seen = HashSet::new();
    for (at, target) in links {
        if seen.insert(at.clone()) {
            let dest = root.under(&at, "");
            if to_disk {
                make_link(&root.path, &dest, &target)?;
            }
            if let Some(list) = &mut entries {
                list.push(Entry {
                    name: client_name(at.as_os_str().as_bytes()),
                    body: Body::Link(target.as_os_str().as_bytes().to_vec()),
                });
            }
            reply.push(dest);
        }
    }
    if force_dirs {
        for d in must_exist {
            if seen.insert(d.clone()) && !systems.iter().any(|s| d.starts_with(s)) {
                let name = d.join(FORCING_FILE);
                let dest = root.under(&name, "");
                if to_disk && fs.lstat(&dest).is_none() {
                    mkdir_parent(&root.path, &dest)?;
                    std::fs::write(&dest, b"")
                        .map_err(|e| Error::io(format!("create {}", dest.display()), e))?;
                }
                if let Some(list) = &mut entries {
                    list.push(Entry {
                        name: client_name(name.as_os_str().as_bytes()),
                        body: Body::Empty,
                    });
                }
                reply.push(dest);
            }
        }
    }
    Ok(Materialized {
        paths: reply,
        entries,
        absolute_names: absolute_names(closure),
        date_or_time: closure.date_or_time,
    })
}

/// The absolute names of the `#include` directives rewritten in `closure`'s
/// files, each once, without their quotes or angle brackets, then those of
/// the files found beside them (`Closure::climbing`).
fn absolute_names(closure: &Closure) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    for f in &closure.files {
        for (from, _) in &f.rewrites {
            let name = &from[1..from.len().saturating_sub(1).max(1)];
            if !names.iter().any(|n| n == name) {
                names.push(name.to_vec());
            }
        }
    }
    for spelled in &closure.climbing {
        let name = spelled.as_os_str().as_bytes();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_vec());
        }
    }
    names
}

/// System directories not nested in another one (a link inside a link would
/// be written through it).
fn outermost(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter()
        .filter(|d| !dirs.iter().any(|o| o != *d && d.starts_with(o)))
        .cloned()
        .collect()
}

/// Follows absolute path `p` component by component from `/`: every symlink
/// met becomes a (link, canonical target) pair, and every directory followed
/// by `..` must exist on the server. Stops inside system directories.
fn walk_components(
    p: &Path,
    systems: &[PathBuf],
    links: &mut Vec<(PathBuf, PathBuf)>,
    must_exist: &mut Vec<PathBuf>,
) {
    let mut cur = PathBuf::from("/");
    for (n, c) in p.components().enumerate() {
        if n > 4096 {
            return;
        }
        if systems.iter().any(|s| cur.starts_with(s)) {
            return;
        }
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !must_exist.contains(&cur) {
                    must_exist.push(cur.clone());
                }
                cur.pop();
            }
            Component::Normal(name) => {
                let next = cur.join(name);
                let is_link = std::fs::symlink_metadata(&next).is_ok_and(|m| m.is_symlink());
                if is_link && !systems.iter().any(|s| next.starts_with(s)) {
                    match std::fs::canonicalize(&next) {
                        Ok(real) => {
                            links.push((next, real.clone()));
                            cur = real;
                        }
                        Err(_) => return,
                    }
                } else {
                    cur = next;
                }
            }
        }
    }
}

/// Makes the directories above `dest` in the client root `root`. Every
/// path written here is canonical below the root, so a symlink met on the
/// way (or a file) was mirrored for an earlier state of the client's tree
/// (a symlinked `-I` directory that became a real one): it is replaced by
/// a directory, and nothing is ever written through it.
fn mkdir_parent(root: &Path, dest: &Path) -> Result<()> {
    let Some(parent) = dest.parent() else {
        return Ok(());
    };
    // Every step is taken from a real directory of the root, so nothing is
    // ever looked at, removed or made through a link: a system
    // directory's link leads to the real /usr/include.
    let below = parent.strip_prefix(root).map_err(|_| {
        Error::new(
            crate::error::Kind::Io,
            format!("{} is outside the client root", dest.display()),
        )
    })?;
    let mut cur = root.to_path_buf();
    for c in below.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => std::fs::remove_file(&cur)
                .map_err(|e| Error::io(format!("remove {}", cur.display()), e))?,
            Err(_) => break,
        }
    }
    std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("mkdir {}", parent.display()), e))
}

/// Makes `dest` in the client root a symlink to `target`. Whatever an
/// earlier state of the client's tree left there (a link to another
/// target, a directory of copies for a path that was a user directory in
/// another request) is replaced: a stock client reads this tree.
///
/// The directories above `dest` are made real directories first (a link
/// among them, such as the link of a system directory that an earlier
/// request left where this one needs a directory, gives way), so `dest`
/// is looked at and replaced in the root itself. Looked at through such a
/// link, `<root>/usr/include/c++/12` was the system's own directory, and
/// replacing it removed the system's C++ headers.
fn make_link(root: &Path, dest: &Path, target: &Path) -> Result<()> {
    // The common case, a link an earlier request made, costs one read
    // (reading through a link is harmless; only changes must not).
    if std::fs::read_link(dest).is_ok_and(|l| l == target) {
        return Ok(());
    }
    mkdir_parent(root, dest)?;
    let found = std::fs::symlink_metadata(dest).ok();
    match found.map(|m| m.file_type()) {
        None => {}
        Some(t) if t.is_symlink() && std::fs::read_link(dest).is_ok_and(|l| l == target) => {
            return Ok(());
        }
        Some(kind) => {
            let removed = if kind.is_dir() {
                std::fs::remove_dir_all(dest)
            } else {
                std::fs::remove_file(dest)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(format!("replace {}", dest.display()), e));
                }
                _ => {}
            }
        }
    }
    match std::os::unix::fs::symlink(target, dest) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(Error::io(format!("symlink {}", dest.display()), e))
        }
        _ => Ok(()),
    }
}

/// What follows the name in a `#line` this server inserts that our daemon
/// may drop (and map the root away with `-fmacro-prefix-map` instead,
/// applets/daemon/line_prefix.rs): only there, the file's path on the
/// server is its root plus `name`. A comment, so it is only whitespace to
/// the compiler and to a stock daemon, and a file's own `#line` never
/// carries it.
pub const STRIPPABLE_LINE_MARK: &[u8] =
    b" /* distcc-pump: -fmacro-prefix-map may replace this line */";

/// A UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The `#line 1 "<path>"` prefix, the path escaped by [`push_string_body`]
/// (a raw newline ended the directive, sweep U, D10; a trigraph in a
/// directory name changed `__FILE__`, sweep U, D9); `strippable` adds
/// [`STRIPPABLE_LINE_MARK`].
pub fn line_prefix(name: &Path, strippable: bool) -> Vec<u8> {
    let mut out = b"#line 1 \"".to_vec();
    push_string_body(&mut out, name.as_os_str().as_bytes());
    out.push(b'"');
    if strippable {
        out.extend_from_slice(STRIPPABLE_LINE_MARK);
    }
    out.push(b'\n');
    out
}

/// Appends `text` as the body of a C string literal in a directive
/// (`#line`, a line marker): `\\` and `"` escaped, a newline or other
/// control byte as an octal escape (a raw newline ends the directive), and
/// a `?` after a `?` as `\\?`, so that no trigraph forms when the compiler
/// replaces them.
pub fn push_string_body(out: &mut Vec<u8>, text: &[u8]) {
    let mut previous = 0u8;
    for &c in text {
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            b'?' if previous == b'?' => out.extend_from_slice(b"\\?"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\{c:03o}").as_bytes()),
            _ => out.push(c),
        }
        previous = c;
    }
}

/// Replaces `from` by `to` in include directive lines (`#include`,
/// `#include_next`, `#import`), not in other directives, where the same
/// text may be a string (`#define CONFIG "/abs/config.h"`).
pub fn rewrite_directives(data: &[u8], rewrites: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    for line in data.split_inclusive(|&c| c == b'\n') {
        let mut line = line.to_vec();
        if is_include_line(&line) {
            for (from, to) in rewrites {
                if let Some(p) = line.windows(from.len()).position(|w| w == &from[..]) {
                    line.splice(p..p + from.len(), to.iter().copied());
                }
            }
        }
        out.extend(line);
    }
    out
}

/// Whether `line` is `#include`, `#include_next` or `#import` (with any
/// blanks around the `#`).
fn is_include_line(line: &[u8]) -> bool {
    let blank = |c: &u8| c == &b' ' || c == &b'\t';
    let Some(hash) = line.iter().position(|c| !blank(c)) else {
        return false;
    };
    if line[hash] != b'#' {
        return false;
    }
    let rest = &line[hash + 1..];
    let word = &rest[rest.iter().position(|c| !blank(c)).unwrap_or(rest.len())..];
    word.starts_with(b"include") || word.starts_with(b"import")
}

/// Writes the compressed copy of `f` at `dest` unless this version of the
/// file (with this `#line` name and these rewrites) is already there;
/// returns its bytes when they are kept in memory. Unless `to_disk`, only
/// the bytes are made (or found): nothing is written.
fn write_copy(
    cache: &Cache,
    fs: &mut FsLookup,
    root: &Path,
    f: &Sent,
    dest: &Path,
    imports: bool,
    to_disk: bool,
) -> Result<Option<std::sync::Arc<[u8]>>> {
    let src = &f.real;
    let id = match f.id {
        Some(id) => id,
        None => FileId::of(
            &std::fs::metadata(src).map_err(|e| Error::io(format!("stat {}", src.display()), e))?,
        ),
    };
    let variant = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&f.line_name, f.line_kept, &f.rewrites, imports).hash(&mut h);
        h.finish()
    };
    let slot = cache.written.find(key(dest), |_| true);
    if let Some(w) = slot.map(Latest::get)
        && w.id == id
        && w.variant == variant
    {
        if !to_disk && w.packed.is_some() {
            return Ok(w.packed);
        }
        if w.on_disk && fs.lstat(dest).is_some() {
            return Ok(w.packed);
        }
        if let (true, Some(packed), Some(slot)) = (to_disk, &w.packed, slot) {
            // Made for our client's list before: now written as it is.
            write_file(root, dest, packed)?;
            slot.set(Written {
                on_disk: true,
                ..w.clone()
            });
            return Ok(w.packed);
        }
    }
    let (contents, id) = map_file(src)?;
    let mut data: std::borrow::Cow<[u8]> = match &f.line_name {
        Some(n) => {
            // A byte-order mark must stay first (the compiler skips it only
            // there); such a line is not marked (our daemon keeps it).
            let (bom, body) = match contents.strip_prefix(BOM) {
                Some(body) => (BOM, body),
                None => (&b""[..], &contents[..]),
            };
            let mut v = bom.to_vec();
            v.extend_from_slice(&line_prefix(n, !f.line_kept && bom.is_empty()));
            v.extend_from_slice(body);
            v.into()
        }
        None => (&contents[..]).into(),
    };
    if !f.rewrites.is_empty() {
        data = rewrite_directives(&data, &f.rewrites).into();
    }
    // Identical bytes with another local mtime: GCC reads such a copy again
    // under `#pragma once` (or `#import`), so the server must not take it
    // for the other. Other files go as they are (sweep U, D3).
    if (imports || twins::once_only(cache, src, id, &contents))
        && let Some(suffix) = cache.twins.suffix(&contents, id.mtime)
    {
        data.to_mut().extend_from_slice(&suffix);
    }
    let packed = crate::compress::compress(&data);
    if to_disk {
        write_file(root, dest, &packed)?;
    }
    use std::sync::atomic::Ordering;
    let kept = cache.packed_kept.fetch_add(packed.len(), Ordering::Relaxed) + packed.len();
    let packed: Option<std::sync::Arc<[u8]>> = match kept <= PACKED_BUDGET {
        true => Some(packed.into()),
        false => {
            cache.packed_kept.fetch_sub(packed.len(), Ordering::Relaxed);
            None
        }
    };
    let written = Written {
        id,
        variant,
        packed: packed.clone(),
        on_disk: to_disk,
    };
    let old = match slot {
        Some(slot) => slot.set(written).packed,
        None => {
            cache
                .written
                .insert(key(dest).to_vec(), Latest::new(written));
            None
        }
    };
    if let Some(old) = old {
        // The previous version's bytes go (once no reply holds them).
        cache.packed_kept.fetch_sub(old.len(), Ordering::Relaxed);
    }
    Ok(packed)
}

/// Writes `bytes` at `dest` in the client root `root` through a temporary
/// file renamed over it.
fn write_file(root: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    mkdir_parent(root, dest)?;
    // A short name of its own beside the copy: a name built from the
    // copy's could pass NAME_MAX where the copy's own fits (sweep U, D1).
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dest.with_file_name(format!(".tmp{serial}"));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(format!("rename {}", dest.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_directives() {
        let src =
            b"#include \"/a/x.h\"\nconst char *p = \"/a/x.h\";\n  # include \"/a/x.h\" // again\n";
        let rw = vec![(b"\"/a/x.h\"".to_vec(), b"\"../../a/x.h\"".to_vec())];
        assert_eq!(
            rewrite_directives(src, &rw),
            b"#include \"../../a/x.h\"\nconst char *p = \"/a/x.h\";\n  # include \"../../a/x.h\" // again\n".to_vec()
        );
        // Other directives keep the text: there it may be a string.
        let src = b"#define WHERE \"/a/x.h\"\n#\timport \"/a/x.h\"\n#include_next \"/a/x.h\"\n";
        assert_eq!(
            rewrite_directives(src, &rw),
            b"#define WHERE \"/a/x.h\"\n#\timport \"../../a/x.h\"\n#include_next \"../../a/x.h\"\n"
                .to_vec()
        );
    }

    #[test]
    fn dead_servers_roots_are_removed() {
        let tmp = std::env::temp_dir().join(format!("inc-dead-{}", std::process::id()));
        let dead = tmp.join("tmpabc.include_server-999999999-1");
        let live = tmp.join(format!("tmpdef.include_server-{}-1", std::process::id()));
        let other = tmp.join("unrelated");
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d.join("padding")).expect("mkdir");
        }
        clean_dead_roots(&tmp);
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn links_replace_what_an_earlier_tree_left() {
        let root = std::env::temp_dir().join(format!("inc-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/lib/clang/include")).unwrap();
        std::fs::write(root.join("usr/lib/clang/include/stddef.h.lzo"), b"c").unwrap();
        std::os::unix::fs::symlink("old", root.join("p-link")).unwrap();
        // A directory of copies where a system directory's link now goes.
        let sys = root.join("usr/lib/clang/include");
        make_link(&root, &sys, Path::new("../../../../x")).unwrap();
        assert_eq!(
            std::fs::read_link(&sys).unwrap(),
            Path::new("../../../../x")
        );
        // A link retargeted on the client.
        make_link(&root, &root.join("p-link"), Path::new("new")).unwrap();
        assert_eq!(
            std::fs::read_link(root.join("p-link")).unwrap(),
            Path::new("new")
        );
        // The same link again: left as it is.
        make_link(&root, &root.join("p-link"), Path::new("new")).unwrap();
        assert_eq!(
            std::fs::read_link(root.join("p-link")).unwrap(),
            Path::new("new")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A system directory's link (to `/usr/include`, say) left by one
    /// request where another needs the link of a directory below it
    /// (`/usr/include/c++/12`, under `-nostdinc` or another compiler):
    /// the real directory behind the first link is never removed or
    /// written; the link gives way to a directory of the root.
    #[test]
    fn a_link_below_a_system_link_never_touches_the_system() {
        let base = std::env::temp_dir().join(format!("inc-nested-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let system = base.join("system/usr/include");
        std::fs::create_dir_all(system.join("c++/12")).unwrap();
        std::fs::write(system.join("c++/12/vector"), b"precious").unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("usr")).unwrap();
        // <root>/usr/include leads to the "system" directory.
        std::os::unix::fs::symlink(&system, root.join("usr/include")).unwrap();
        let nested = root.join("usr/include/c++/12");
        make_link(
            &root,
            &nested,
            Path::new("../../../../../usr/include/c++/12"),
        )
        .unwrap();
        assert_eq!(
            std::fs::read(system.join("c++/12/vector")).unwrap(),
            b"precious"
        );
        assert!(
            std::fs::symlink_metadata(root.join("usr/include"))
                .unwrap()
                .is_dir()
        );
        assert!(
            std::fs::symlink_metadata(&nested)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // And back: the outer link replaces the root's directory, not the
        // system's.
        make_link(&root, &root.join("usr/include"), &system).unwrap();
        make_link(&root, &nested, Path::new("x")).unwrap();
        assert_eq!(
            std::fs::read(system.join("c++/12/vector")).unwrap(),
            b"precious"
        );
        assert!(!system.join("c++/x").exists() && system.join("c++/12").is_dir());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn stale_mirrored_links_give_way_to_directories() {
        let root = std::env::temp_dir().join(format!("inc-stale-{}", std::process::id()));
        std::fs::create_dir_all(root.join("p/real1")).unwrap();
        std::fs::write(root.join("p/real1/h.h.lzo"), b"old").unwrap();
        // `-Ilink` was a symlink to real1, and is a real directory now; an
        // older link whose target is gone; a file where a directory goes.
        std::os::unix::fs::symlink("real1", root.join("p/link")).unwrap();
        std::os::unix::fs::symlink("gone", root.join("p/dangling")).unwrap();
        std::fs::write(root.join("p/file"), b"x").unwrap();
        for dir in ["link", "dangling", "file"] {
            mkdir_parent(&root, &root.join(format!("p/{dir}/sub/h.h.lzo"))).unwrap();
            let m = std::fs::symlink_metadata(root.join("p").join(dir)).unwrap();
            assert!(m.is_dir(), "{dir}");
            assert!(root.join(format!("p/{dir}/sub")).is_dir());
        }
        // Nothing was made through the old link.
        let names: Vec<_> = std::fs::read_dir(root.join("p/real1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["h.h.lzo"]);
        // Outside the root a symlink is followed, never removed.
        let outside = std::env::temp_dir().join(format!("inc-stale-out-{}", std::process::id()));
        std::os::unix::fs::symlink(&root, &outside).unwrap();
        mkdir_parent(&outside.join("q"), &outside.join("q/r/h.h.lzo")).unwrap();
        assert!(outside.symlink_metadata().unwrap().is_symlink());
        std::fs::remove_file(&outside).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn sweep_removes_only_what_mirrors_something_gone() {
        let base = std::env::temp_dir().join(format!("inc-sweep-{}", std::process::id()));
        let root = base.join("root");
        let real = base.join("proj");
        std::fs::create_dir_all(real.join("inc")).unwrap();
        std::fs::write(real.join("inc/kept.h"), b"x").unwrap();
        let mirror = |p: &Path, suffix: &str| {
            let mut s = root.join(p.strip_prefix("/").unwrap()).into_os_string();
            s.push(suffix);
            PathBuf::from(s)
        };
        let kept = mirror(&real.join("inc/kept.h"), ".lzo");
        let kept_abs = mirror(&real.join("inc/kept.h"), ".lzo.abs");
        let gone = mirror(&real.join("scratch/t.c"), ".lzo");
        let forcing_kept = mirror(&real.join("inc"), "").join(FORCING_FILE);
        let forcing_gone = mirror(&real.join("scratch/sub"), "").join(FORCING_FILE);
        for f in [&kept, &kept_abs, &gone, &forcing_kept, &forcing_gone] {
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, b"c").unwrap();
        }
        // A mirrored link to a system directory stays while it exists.
        let sys = mirror(Path::new("/usr/include"), "");
        std::fs::create_dir_all(sys.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("../../../usr/include", &sys).unwrap();
        let removed = sweep_gone(&root);
        assert!(kept.exists() && kept_abs.exists() && forcing_kept.exists());
        assert!(sys.symlink_metadata().is_ok());
        assert!(!gone.exists() && !forcing_gone.exists());
        // The scratch directories went with their last entries.
        assert!(!mirror(&real.join("scratch"), "").exists());
        assert_eq!(removed, 4, "2 files and 2 directories");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn line_prefix_escapes() {
        assert_eq!(
            line_prefix(Path::new("/a\\b\"c.h"), false),
            b"#line 1 \"/a\\\\b\\\"c.h\"\n".to_vec()
        );
        // No trigraph can form, no newline ends the directive early.
        assert_eq!(
            line_prefix(Path::new("/t??=x/n\nl/q???/h.h"), false),
            b"#line 1 \"/t?\\?=x/n\\012l/q?\\?\\?/h.h\"\n".to_vec()
        );
        let marked = line_prefix(Path::new("/a.h"), true);
        assert_eq!(
            marked,
            [&b"#line 1 \"/a.h\""[..], STRIPPABLE_LINE_MARK, b"\n"].concat()
        );
    }

    #[test]
    fn root_has_three_components() {
        let tmp = std::env::temp_dir();
        let r = ClientRoot::create(&tmp, std::process::id(), 1).expect("root");
        assert_eq!(r.path.components().count(), 4);
        assert!(r.path.is_dir());
        assert_eq!(
            r.under(Path::new("/x/y.h"), ".lzo"),
            PathBuf::from(format!("{}/x/y.h.lzo", r.path.display()))
        );
        r.remove();
        assert!(!r.top.exists());
        assert_eq!(
            outermost(&[
                PathBuf::from("/usr/include"),
                PathBuf::from("/usr/include/x")
            ]),
            vec![PathBuf::from("/usr/include")]
        );
    }
}
