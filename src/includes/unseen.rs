//! What system headers may do to macros behind the walker's back, so that
//! every other name not defined in the environment is known to be
//! undefined, as it is for the compiler.
//!
//! [`super::closure`] walks the directives of non-system files but only
//! scans system headers ([`super::closure::sysscan`]): it follows their
//! literal includes and ignores their `#define`s. After a system header, a
//! name the walk has no definition for might still be defined, so `#if` on
//! it cannot be decided from the walk alone. Treating every such name as
//! unknown keeps both branches of every `#ifdef` on any macro (libgit2's
//! `#ifdef GIT_WIN32` then pulls the whole win32 layer in). Instead, each
//! system header, when first parsed, is given an id and the names it may
//! change are recorded in a shared index ([`WriterIndex`]): name → ids of
//! the headers that write it. A request keeps the set of system headers it
//! has scanned ([`Unseen::scanned`]) and a generation count of system
//! inclusions ([`Unseen::generation`]); [`super::macros::Env`] asks
//! [`Unseen::may_write`] before trusting what it knows about a name.
//!
//! # Why this never misses a header
//!
//! The compiler's macro state at any point of the translation unit results
//! from: its predefined macros, `-D`/`-U` in order (both in the
//! environment from the start), and the directives of every file it read so
//! far. Files outside system directories are walked, so their directives
//! are in the environment (as possibilities where a branch is uncertain).
//! A system header can only change a macro through one of these, each
//! accounted for:
//!
//! 1. `#define NAME` / `#undef NAME` in the header, in any branch: the
//!    name is recorded for the header regardless of conditions, so a macro
//!    defined only under some condition is covered too.
//! 2. `#pragma pop_macro("NAME")` (restores an earlier definition):
//!    recorded like `#undef`. `_Pragma("pop_macro(\"NAME\")")` written in
//!    ordinary lines is recorded the same way (the scanner looks for it);
//!    written in a macro body, it acts wherever that macro is expanded,
//!    even after a later `#define NAME`, so it is recorded as *sticky*:
//!    NAME stays unknown for the rest of the translation unit.
//! 3. Another file it includes. Literal includes are followed by the scan
//!    in every branch (`#include_next` to every later hit), so every
//!    system header the compiler could open from there is scanned and
//!    recorded, and every non-system one is walked. An include whose name
//!    comes from a macro (a computed include) could open anything: the
//!    header is marked *computed*, and once one is scanned the request is
//!    *open*: every name is unknown after the next system inclusion, as if
//!    any file could have been read. A header that cannot be read is
//!    treated the same way.
//! 4. Built-in macros that `-dM` does not list (`__has_include`,
//!    `__LINE__`, `_Pragma`, ...) are never "undefined": see
//!    [`super::macros::Env::lookup`].
//!
//! A name the walk wrote (certainly) at generation g is trusted unless a
//! header that writes it was scanned and a system inclusion happened after
//! g (or it is sticky). Checking "any scanned header" instead of "a header
//! included after g" over-approximates, which is safe: an already scanned
//! header may be included again (its guard is not evaluated), and every
//! header it can reach was scanned with it, so it is in the set. The
//! answer is then "unknown", and both branches are walked. Names no
//! scanned header writes are undefined unless the walk defined them, which
//! is exactly what the compiler sees.
//!
//! Details that keep the argument true:
//! - The predefined macros are those of a `-dM` probe run with every
//!   option that may change them (`-O2` gives `__OPTIMIZE__`, `-std=`
//!   `__cplusplus`, `-pthread` `_REENTRANT`, ...): see
//!   [`super::compiler`]. Options that inject macros the probe cannot see
//!   (`-Wp,`, `-Xpreprocessor`) make the command not covered.
//! - Non-system files reached from a system header are walked after its
//!   names are marked, with their definitions as possibilities only.
//! - `#pragma pop_macro` and `_Pragma` in walked files make the name
//!   unknown too ([`super::macros::Env::forget`]), sticky when written in
//!   a macro body.
//! - Unknown is never guessed: in `#if` both branches are walked; an
//!   `#include MACRO` whose expansion involves an unknown name makes the
//!   translation unit not covered (the client preprocesses it locally);
//!   `#include X` in an undecided branch is skipped only when X is
//!   certainly undefined there (the compiler would fail on it).
//!
//! Known limit, unchanged by this module: a non-system file reached only
//! through a computed include inside a system header is not seen (the
//! scan cannot evaluate it), although the macros after it are unknown.

use super::cache::AppendMap;
use super::lex::{TokKind, lex};
use super::scanner::{Node, Parsed};
use crate::bytes::find;
use std::sync::Arc;

/// The id of a system header (dense, from 0, per server).
pub type HeaderId = u32;

/// A system header that may change a macro name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Writer {
    /// The header.
    pub header: HeaderId,
    /// Whether it may change the name wherever one of its macros is
    /// expanded (a `_Pragma("pop_macro")` in a macro body).
    pub sticky: bool,
}

/// Macro name → every system header that may change it. Multi-valued:
/// one entry per (name, header); read with [`AppendMap::any`].
pub type WriterIndex = AppendMap<Box<[u8]>, Writer>;

/// A system header as the scan sees it.
#[derive(Debug)]
pub struct SysHeader {
    /// Its id.
    pub id: HeaderId,
    /// Its directives.
    pub parsed: Arc<Parsed>,
    /// Whether it has a computed include (see the module docs, case 3).
    pub computed: bool,
}

/// The macro names a file's directives may change, in every branch, each
/// with whether the change is sticky; and whether it has a computed
/// include.
pub fn writes(parsed: &Parsed) -> (Vec<(Vec<u8>, bool)>, bool) {
    let mut names = Vec::new();
    let mut computed = false;
    let mut stack: Vec<&[Node]> = vec![&parsed.nodes];
    while let Some(nodes) = stack.pop() {
        for n in nodes {
            match n {
                Node::Define(name, _) => names.push((name.to_vec(), false)),
                Node::Undef(name) => names.push((name.clone(), false)),
                Node::PopMacro { name, sticky } => names.push((name.clone(), *sticky)),
                Node::Include { body, .. } => {
                    computed |= !matches!(body.first(), Some(b'"' | b'<'));
                }
                Node::Cond(branches) => stack.extend(branches.iter().map(|(_, b)| b.as_slice())),
                Node::Once | Node::Dependency(_) => {}
            }
        }
    }
    names.sort();
    names.dedup();
    (names, computed)
}

/// The macro names `pop_macro` pragmas in `text` restore:
/// `pop_macro("NAME")`, with the quotes possibly escaped (inside
/// `_Pragma("...")`).
pub fn popped_names(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let needle = b"pop_macro";
    let mut i = 0;
    while let Some(p) = find(&text[i..], needle) {
        let rest = &text[i + p + needle.len()..];
        let clean: Vec<u8> = rest
            .iter()
            .take(256)
            .copied()
            .filter(|&c| c != b'\\')
            .collect();
        let toks = lex(&clean);
        if let [open, s, ..] = toks.as_slice()
            && open.is(b"(")
            && s.kind == TokKind::Str
            && s.text.len() > 2
        {
            out.push(s.text[1..s.text.len() - 1].to_vec());
        }
        i += p + needle.len();
    }
    out
}

/// A set of header ids.
#[derive(Clone, Debug, Default)]
pub struct IdSet(Vec<u64>);

impl IdSet {
    /// Adds `id`; whether it was new.
    pub fn insert(&mut self, id: HeaderId) -> bool {
        let (w, b) = (id as usize / 64, id % 64);
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        let new = self.0[w] & (1 << b) == 0;
        self.0[w] |= 1 << b;
        new
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: HeaderId) -> bool {
        self.0
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// What one translation unit's system headers may have written.
#[derive(Default)]
pub struct Unseen<'c> {
    index: Option<&'c WriterIndex>,
    /// The system headers scanned so far.
    pub scanned: IdSet,
    /// Whether a scanned header has a computed include.
    pub open: bool,
    /// System inclusions so far.
    pub generation: u32,
}

impl std::fmt::Debug for Unseen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unseen")
            .field("open", &self.open)
            .field("generation", &self.generation)
            .finish()
    }
}

impl<'c> Unseen<'c> {
    /// Tracking against the shared `index`.
    pub fn new(index: &'c WriterIndex) -> Unseen<'c> {
        Unseen {
            index: Some(index),
            ..Unseen::default()
        }
    }

    /// Records one system inclusion (before its headers are added).
    pub fn include(&mut self) {
        self.generation += 1;
    }

    /// Whether a system header may have changed `name` since the walk last
    /// wrote it (certainly) at generation `written`.
    pub fn may_write(&self, name: &[u8], written: u32) -> bool {
        if self.generation == 0 {
            return false;
        }
        let after = written < self.generation;
        if self.open && after {
            return true;
        }
        self.index.is_some_and(|index| {
            index.any(name, |w| {
                (w.sticky || after) && self.scanned.contains(w.header)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::includes::scanner::parse;

    #[test]
    fn writes_in_every_branch() {
        let p = parse(
            b"#ifndef G\n#define G\n#if X\n#define A 1\n#else\n#undef B\n#endif\n\
              #pragma pop_macro(\"C\")\n#define D _Pragma(\"pop_macro(\\\"E\\\")\")\n\
              #include <x.h>\n#endif\n",
        );
        let (names, computed) = writes(&p);
        let want: Vec<(Vec<u8>, bool)> = vec![
            (b"A".to_vec(), false),
            (b"B".to_vec(), false),
            (b"C".to_vec(), false),
            (b"D".to_vec(), false),
            (b"E".to_vec(), true),
            (b"G".to_vec(), false),
        ];
        assert_eq!(names, want);
        assert!(!computed);
        let light = crate::includes::scanner::parse_as(
            b"#if X(1)\n#define F(a) a\n#elif defined Y\n#undef Z /* c */\n#endif\n#include \"q.h\"\n",
            true,
        );
        let full = parse(
            b"#if X(1)\n#define F(a) a\n#elif defined Y\n#undef Z /* c */\n#endif\n#include \"q.h\"\n",
        );
        assert_eq!(writes(&light), writes(&full));
        assert!(writes(&parse(b"#if 0\n#include HDR\n#endif\n")).1);
    }

    #[test]
    fn may_write_follows_generations() {
        let index = WriterIndex::new(4);
        index.insert(
            b"A".to_vec().into(),
            Writer {
                header: 3,
                sticky: false,
            },
        );
        index.insert(
            b"S".to_vec().into(),
            Writer {
                header: 70,
                sticky: true,
            },
        );
        let mut u = Unseen::new(&index);
        assert!(!u.may_write(b"A", 0));
        u.include();
        assert!(!u.may_write(b"A", 0), "header 3 not scanned yet");
        u.scanned.insert(3);
        u.scanned.insert(70);
        assert!(u.may_write(b"A", 0));
        assert!(!u.may_write(b"B", 0));
        assert!(!u.may_write(b"A", 1), "written after the inclusion");
        assert!(u.may_write(b"S", 1), "sticky");
        u.open = true;
        assert!(u.may_write(b"B", 0));
        assert!(!u.may_write(b"B", 1));
    }

    #[test]
    fn id_set() {
        let mut s = IdSet::default();
        assert!(s.insert(130));
        assert!(!s.insert(130));
        assert!(s.contains(130) && !s.contains(129) && !s.contains(100_000));
    }
}
