//! The protocol-3 file list of a reply, ready to send, handed to the client
//! with the reply (an extension of ours; stock clients never see it).
//!
//! For every reply path a client opens, reads and closes the mirror file
//! (or reads the link) and encodes `NAME` + `FILE`/`LINK` tokens (facts
//! §2.2): about 80 files and a third of our client's CPU per libgit2 unit.
//! The include server has the compressed bytes of those files, so it
//! writes the exact same encoding once into an anonymous memory file
//! (`memfd`) and passes its descriptor along with the reply (`SCM_RIGHTS`
//! on the unix socket). Our client sends it to the distcc server with
//! `sendfile`, without opening a single mirror file; its request says so
//! (`server::READS_NO_COPIES`), and then the mirror files are not even
//! written unless no list can be passed.
//! When the daemon has answered, the client gives the file back
//! ([`LIST_DONE`]) and a later list is written over it ([`to_memfd_in`]).
//!
//! Compatibility: the reply bytes are unchanged. A client that reads the
//! reply with plain `read` (stock distcc) never receives the descriptor:
//! the kernel closes it. Our client checks that the list it got counts as
//! many files as the reply has paths, and builds the list itself when there
//! is none (stock include server) or it does not match.
//!
//! When the copies sent had absolute `#include` names rewritten to relative
//! ones (mirror.rs), the memory file starts with those names
//! ([`ABSOLUTE_NAMES`]) and the list follows: our client sends from there,
//! and writes the names back into the `.d` file the compiler made with the
//! relative ones.
//!
//! When the server gives up on a unit (`ARGC00000000`), it passes the
//! reason the same way ([`reason_to_memfd`]), so that our client's one
//! line about preprocessing locally says why.

use crate::protocol::token::{Token, put_header, put_payload};
use std::io::{IoSlice, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

/// What the client sends for one reply path.
#[derive(Debug, Clone)]
pub enum Body {
    /// `FILE` with these (already compressed) bytes.
    File(Arc<[u8]>),
    /// `LINK` to this target.
    Link(Vec<u8>),
    /// `FILE00000000` (a forcing file).
    Empty,
}

/// One reply path as the client would send it: its original name and body.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Vec<u8>,
    pub body: Body,
}

/// The name a client derives from a reply path without its root: a
/// trailing `.abs`, then a trailing `.lzo`, dropped (facts §2.2: the rule
/// is meant for copies, but clients apply it to every path, links and
/// forcing files too).
pub fn client_name(p: &[u8]) -> Vec<u8> {
    let p = p.strip_suffix(b".abs").unwrap_or(p);
    p.strip_suffix(b".lzo").unwrap_or(p).to_vec()
}

/// Iovecs per `writev` (the kernel's limit is 1024).
const BATCH: usize = 512;

/// A stretch of header bytes (`start..end` in the header buffer) and the
/// file contents that follow it, if any.
type Piece = (usize, usize, Option<Arc<[u8]>>);

/// The encoding of `entries` as header bytes and the file contents between
/// them, in order.
fn plan(entries: &[Entry]) -> crate::Result<(Vec<u8>, Vec<Piece>)> {
    let mut heads = Vec::with_capacity(64 + entries.len() * 160);
    let mut parts = Vec::with_capacity(entries.len() + 1);
    let count = u32::try_from(entries.len())
        .map_err(|_| crate::Error::new(crate::error::Kind::Protocol, "too many files"))?;
    put_header(&mut heads, Token::Nfil, count);
    let mut start = 0;
    for e in entries {
        put_payload(&mut heads, Token::Name, &e.name)?;
        match &e.body {
            Body::File(bytes) => {
                let len = u32::try_from(bytes.len()).map_err(|_| {
                    crate::Error::new(crate::error::Kind::Protocol, "file over 4 GiB")
                })?;
                put_header(&mut heads, Token::File, len);
                parts.push((start, heads.len(), Some(bytes.clone())));
                start = heads.len();
            }
            Body::Link(target) => put_payload(&mut heads, Token::Link, target)?,
            Body::Empty => put_header(&mut heads, Token::File, 0),
        }
    }
    parts.push((start, heads.len(), None));
    Ok((heads, parts))
}

/// The encoded list, in memory (for tests and comparisons).
pub fn encode(entries: &[Entry]) -> crate::Result<Vec<u8>> {
    let (heads, parts) = plan(entries)?;
    let mut out = Vec::new();
    for (a, b, bytes) in &parts {
        out.extend_from_slice(&heads[*a..*b]);
        if let Some(bytes) = bytes {
            out.extend_from_slice(bytes);
        }
    }
    Ok(out)
}

/// A fresh anonymous memory file (`memfd`) named `name`.
fn memory_file(name: &std::ffi::CStr) -> crate::Result<std::fs::File> {
    // SAFETY: memfd_create with a NUL-terminated name; checked below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(crate::Error::io(
            "memfd_create",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// What starts a memory file whose list follows the absolute names
/// rewritten in its copies: this, eight hex digits counting the bytes of the
/// names, and the names, each ended by a NUL.
pub const ABSOLUTE_NAMES: &[u8; 4] = b"ABSN";

/// What starts a memory file whose unit names `__DATE__` or `__TIME__`
/// (twelve bytes: this and `00000001`), before any other section.
pub const DATE_OR_TIME: &[u8; 12] = b"CLCK00000001";

/// Longest [`ABSOLUTE_NAMES`] section a client reads.
pub const MAX_ABSOLUTE_NAMES: usize = 1 << 20;

/// The encoded list in a fresh memory file, positioned at its start, after
/// the [`ABSOLUTE_NAMES`] section when `absolute_names` is not empty.
pub fn to_memfd(
    entries: &[Entry],
    absolute_names: &[Vec<u8>],
    date_or_time: bool,
) -> crate::Result<OwnedFd> {
    to_memfd_in(None, entries, absolute_names, date_or_time).map(OwnedFd::from)
}

/// [`to_memfd`], written over `spare` (a memory file a client has
/// released, see [`LIST_DONE`]) when there is one: its pages are reused
/// instead of allocated, and it is cut to the new length.
pub fn to_memfd_in(
    spare: Option<std::fs::File>,
    entries: &[Entry],
    absolute_names: &[Vec<u8>],
    date_or_time: bool,
) -> crate::Result<std::fs::File> {
    let (heads, parts) = plan(entries)?;
    let reused = spare.is_some();
    let mut file = match spare {
        Some(f) => {
            rewind(&f)?;
            f
        }
        None => memory_file(c"distcc-files")?,
    };
    let mut names = Vec::new();
    if date_or_time {
        names.extend_from_slice(DATE_OR_TIME);
    }
    if !absolute_names.is_empty() {
        let body: Vec<u8> = absolute_names.join(&b'\0').into_iter().chain([0]).collect();
        names.extend_from_slice(ABSOLUTE_NAMES);
        names.extend_from_slice(format!("{:08x}", body.len()).as_bytes());
        names.extend_from_slice(&body);
    }
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(parts.len() * 2 + 1);
    if !names.is_empty() {
        slices.push(IoSlice::new(&names));
    }
    for (a, b, bytes) in &parts {
        if b > a {
            slices.push(IoSlice::new(&heads[*a..*b]));
        }
        if let Some(bytes) = bytes
            && !bytes.is_empty()
        {
            slices.push(IoSlice::new(bytes));
        }
    }
    for batch in slices.chunks_mut(BATCH) {
        write_all_vectored(&mut file, batch)
            .map_err(|e| crate::Error::io("writing the file list", e))?;
    }
    // A reused file may have been longer: it ends where this list does.
    let written = rewind(&file)?;
    if reused {
        file.set_len(written)
            .map_err(|e| crate::Error::io("cutting the file list", e))?;
    }
    Ok(file)
}

/// Moves `file`'s offset to its start (reads, sendfile, start there);
/// returns where it was.
fn rewind(file: &std::fs::File) -> crate::Result<u64> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    // SAFETY: lseek on a descriptor `file` owns.
    let at = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    // SAFETY: as above.
    if at < 0 || unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } != 0 {
        return Err(crate::Error::io("lseek", std::io::Error::last_os_error()));
    }
    Ok(at as u64)
}

/// What our client writes on the include server's connection once it is
/// done with the file list passed with the reply: the daemon has answered,
/// so no byte of the list is still on its way. Until then the client keeps
/// the connection open; on this token (and only on it) the server may write
/// a later list over the same memory file, sparing a page allocation for
/// every page of every list, and the freeing of them all at the client's
/// exit. A client that just hangs up (stock's, an older one of ours, one
/// that failed) never releases its file.
pub const LIST_DONE: &[u8; 12] = b"DONE00000000";

/// The sections before the list in a memory file made by [`to_memfd`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sections {
    /// Where the list starts.
    pub start: u64,
    /// The absolute names rewritten in the copies.
    pub absolute_names: Vec<Vec<u8>>,
    /// The unit names `__DATE__` or `__TIME__` ([`DATE_OR_TIME`]).
    pub date_or_time: bool,
}

/// The sections before the list in `file`; None when one is malformed.
pub fn sections_in(file: &std::fs::File) -> Option<Sections> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 12];
    if file.read_exact_at(&mut head, 0).is_err() {
        return Some(Sections::default());
    }
    let date_or_time = head == *DATE_OR_TIME;
    let skip = if date_or_time {
        DATE_OR_TIME.len() as u64
    } else {
        0
    };
    let (start, absolute_names) = absolute_names_at(file, skip)?;
    Some(Sections {
        start,
        absolute_names,
        date_or_time,
    })
}

/// Where the list starts after the [`ABSOLUTE_NAMES`] section at `at` (if
/// there is one), and its names; None when the section is malformed.
fn absolute_names_at(file: &std::fs::File, at: u64) -> Option<(u64, Vec<Vec<u8>>)> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 12];
    if file.read_exact_at(&mut head, at).is_err() || head[..4] != ABSOLUTE_NAMES[..] {
        return Some((at, Vec::new()));
    }
    let len = std::str::from_utf8(&head[4..])
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .filter(|&n| n <= MAX_ABSOLUTE_NAMES)?;
    let mut body = vec![0u8; len];
    file.read_exact_at(&mut body, at + 12).ok()?;
    let names = body
        .strip_suffix(&[0])?
        .split(|&b| b == 0)
        .map(<[u8]>::to_vec)
        .collect();
    Some((at + 12 + len as u64, names))
}

/// What starts the memory file passed with a reply that gives up; the
/// reason follows, as text.
pub const REASON_HEAD: &[u8] = b"distcc include server gave up: ";

/// Longest reason passed (more is cut).
pub const MAX_REASON: usize = 2048;

/// A fresh memory file holding [`REASON_HEAD`] and `why`, at its start.
pub fn reason_to_memfd(why: &str) -> crate::Result<OwnedFd> {
    let mut file = memory_file(c"distcc-why")?;
    let mut why = why.as_bytes();
    why = &why[..why.len().min(MAX_REASON)];
    file.write_all(&[REASON_HEAD, why].concat())
        .map_err(|e| crate::Error::io("writing the reason", e))?;
    Ok(file.into())
}

/// The reason in a memory file made by [`reason_to_memfd`], read from its
/// start (at most [`MAX_REASON`] bytes, control characters shown as `?`).
pub fn reason_in(file: &std::fs::File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; REASON_HEAD.len() + MAX_REASON];
    let mut got = 0;
    // Bounded: each round reads something or stops.
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let why = buf[..got].strip_prefix(REASON_HEAD)?;
    let text = String::from_utf8_lossy(why);
    Some(
        text.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
    )
}

fn write_all_vectored(
    file: &mut std::fs::File,
    mut bufs: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    // Bounded: each round writes something or fails.
    for _ in 0..100_000 {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(());
        }
        match file.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many partial writes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<Entry> {
        vec![
            Entry {
                name: b"/src/a.h".to_vec(),
                body: Body::File(Arc::from(&b"compressed"[..])),
            },
            Entry {
                name: b"/usr/include".to_vec(),
                body: Body::Link(b"../../usr/include".to_vec()),
            },
            Entry {
                name: b"/src/sub/forcing_technique_271828".to_vec(),
                body: Body::Empty,
            },
            Entry {
                name: b"/src/empty.h".to_vec(),
                body: Body::File(Arc::from(&b""[..])),
            },
        ]
    }

    #[test]
    fn encoding_is_the_client_s() {
        let got = encode(&sample()).unwrap();
        let want = b"NFIL00000004NAME00000008/src/a.hFILE0000000acompressed\
NAME0000000c/usr/includeLINK00000011../../usr/include\
NAME00000021/src/sub/forcing_technique_271828FILE00000000\
NAME0000000c/src/empty.hFILE00000000";
        assert_eq!(got, want.to_vec());
    }

    #[test]
    fn reason_round_trips_and_is_bounded() {
        let fd = reason_to_memfd("absolute include /x.h in a.c\n\x1b[31m").unwrap();
        let file = std::fs::File::from(fd);
        assert_eq!(
            reason_in(&file).as_deref(),
            Some("absolute include /x.h in a.c??[31m")
        );
        let long = "y".repeat(MAX_REASON * 2);
        let file = std::fs::File::from(reason_to_memfd(&long).unwrap());
        assert_eq!(reason_in(&file).map(|r| r.len()), Some(MAX_REASON));
        let list = std::fs::File::from(to_memfd(&[], &[], false).unwrap());
        assert_eq!(reason_in(&list), None);
    }

    #[test]
    fn memfd_holds_the_encoding() {
        let mut many = sample();
        for i in 0..1500 {
            many.push(Entry {
                name: format!("/f{i}").into_bytes(),
                body: Body::File(Arc::from(vec![i as u8; i % 300].as_slice())),
            });
        }
        let fd = to_memfd(&many, &[], false).unwrap();
        let mut back = Vec::new();
        std::fs::File::from(fd).read_to_end(&mut back).unwrap();
        assert_eq!(back, encode(&many).unwrap());
    }

    #[test]
    fn absolute_names_come_first_and_the_list_follows() {
        let names = vec![b"/w/config.h".to_vec(), b"/abs/x y.h".to_vec()];
        let at = |f: &std::fs::File| sections_in(f).map(|s| (s.start, s.absolute_names));
        let file = std::fs::File::from(to_memfd(&sample(), &names, false).unwrap());
        let (start, back) = at(&file).unwrap();
        assert_eq!(back, names);
        let mut all = Vec::new();
        (&file).read_to_end(&mut all).unwrap();
        assert_eq!(
            &all[..start as usize],
            b"ABSN00000017/w/config.h\0/abs/x y.h\0"
        );
        assert_eq!(all[start as usize..], encode(&sample()).unwrap()[..]);

        let plain = std::fs::File::from(to_memfd(&sample(), &[], false).unwrap());
        assert_eq!(at(&plain), Some((0, Vec::new())));

        let mut bad = memory_file(c"bad").unwrap();
        bad.write_all(b"ABSN00000005/x.h").unwrap();
        assert_eq!(at(&bad), None, "no NUL at the end");
        let mut huge = memory_file(c"huge").unwrap();
        huge.write_all(b"ABSNffffffff").unwrap();
        assert_eq!(at(&huge), None);
    }

    /// A unit naming `__DATE__` or `__TIME__` is marked first, before the
    /// absolute names (sweep O, D6: our client needs to know, for the
    /// SOURCE_DATE_EPOCH of its own environment).
    #[test]
    fn the_clock_mark_comes_first() {
        let names = vec![b"/w/config.h".to_vec()];
        let file = std::fs::File::from(to_memfd(&sample(), &names, true).unwrap());
        let s = sections_in(&file).unwrap();
        assert!(s.date_or_time);
        assert_eq!(s.absolute_names, names);
        let mut all = Vec::new();
        (&file).read_to_end(&mut all).unwrap();
        assert!(all.starts_with(b"CLCK00000001ABSN"));
        assert_eq!(all[s.start as usize..], encode(&sample()).unwrap()[..]);
        let only = std::fs::File::from(to_memfd(&sample(), &[], true).unwrap());
        let s = sections_in(&only).unwrap();
        assert!(s.date_or_time && s.absolute_names.is_empty());
        assert_eq!(s.start, 12);
    }
}
