//! Headers with the same bytes as another header but another mtime.
//!
//! GCC reads a `#pragma once` (or `#import`ed) header only once per unit,
//! and it takes a second file for the same header when the two have the
//! same size, the same mtime to the second, and the same bytes (libcpp's
//! check against the files it has already seen). So locally two copies of
//! a generated header, written at different times (gnustep-base installs
//! one beside its sources), are read twice and both appear in the `.d`
//! file, while two copies with one mtime (hard links, `cp -p`, a tarball,
//! a fresh checkout) are read once.
//!
//! Protocol 3 carries no mtimes: the server writes every file of a request
//! within the same moment, so it would read all identical copies once and
//! lose the later copies from the `.d` file. Here the include server groups
//! the files it sends by their bytes, and within one group by their local
//! mtime in seconds, numbered in the order it first meets them. The copy
//! sent for a file of group k > 0 ends with a comment naming k, so that on
//! the server copies with different local mtimes differ in size and bytes
//! (read twice, as locally) and copies with one mtime stay identical (read
//! once, as locally). A comment after the last line changes no line number,
//! no macro and no object.
//!
//! Only files GCC could take for one another get the comment: those with a
//! `#pragma once` (then every copy has it), and every file of a unit with an
//! `#import` (GCC compares an imported file with all files read before).
//! Other copies go as they are, so the bytes on the server are the local
//! ones: Clang's DWARF 5 line table records each file's MD5, and
//! `-Wnewline-eof` looks at its last byte (sweep U, D3). The comment itself
//! keeps whether the file ends with a newline.
//!
//! The table is consulted only when a mirror copy is written (once per file
//! version and build), never on the lookup path, so a mutex serves.

use super::cache::{Cache, FileId};
use super::scanner::Node;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::sync::Mutex;

/// The bytes of a file: their length and a hash. Two different files that
/// happen to share a key would at worst get a harmless trailing comment.
type ContentKey = (usize, u64);

/// Content groups seen so far: for each, the distinct local mtimes (in
/// seconds) in the order first seen.
#[derive(Default)]
pub struct Twins {
    seen: Mutex<HashMap<ContentKey, Vec<i64>>>,
}

impl Twins {
    /// The text to append to the copy sent for a file with `contents` and
    /// local mtime `mtime_ns`, or nothing when it is the first (or only)
    /// mtime its bytes were seen with.
    pub fn suffix(&self, contents: &[u8], mtime_ns: i128) -> Option<Vec<u8>> {
        if contents.is_empty() {
            return None;
        }
        let mut h = DefaultHasher::new();
        h.write(contents);
        let key = (contents.len(), h.finish());
        let secs = mtime_ns.div_euclid(1_000_000_000) as i64;
        let rank = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let times = seen.entry(key).or_default();
            match times.iter().position(|&t| t == secs) {
                Some(at) => at,
                None => {
                    times.push(secs);
                    times.len() - 1
                }
            }
        };
        (rank > 0).then(|| {
            let comment = format!(
                "/* distcc-pump: copy {rank} of these bytes with a local mtime of its own */"
            );
            // After a final newline (not a splice), a line of its own; else
            // on a new line without one, as the file ends.
            match contents.ends_with(b"\n") && !contents.ends_with(b"\\\n") {
                true => format!("{comment}\n"),
                false => format!("\n{comment}"),
            }
            .into_bytes()
        })
    }
}

/// Whether GCC marks the file at `path` (identity `id`, bytes `contents`)
/// as read once: it has a `#pragma once` (in any branch) or may have one
/// through `_Pragma`. Unreadable as directives: taken as yes.
pub fn once_only(cache: &Cache, path: &std::path::Path, id: FileId, contents: &[u8]) -> bool {
    fn any_once(nodes: &[Node]) -> bool {
        nodes.iter().any(|n| match n {
            Node::Once => true,
            Node::Cond(branches) => branches.iter().any(|(_, body)| any_once(body)),
            _ => false,
        })
    }
    let pragma_operator = crate::bytes::contains(contents, b"_Pragma");
    pragma_operator
        || cache
            .parsed_as(path, Some(id))
            .map_or(true, |p| any_once(&p.nodes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i128 = 1_000_000_000;

    #[test]
    fn first_mtime_of_a_content_is_sent_as_it_is() {
        let t = Twins::default();
        assert_eq!(t.suffix(b"#pragma once\nint f(void);\n", 100 * SEC), None);
        // The same mtime to the second: the same copy.
        assert_eq!(
            t.suffix(b"#pragma once\nint f(void);\n", 100 * SEC + 5),
            None
        );
        // Other bytes: a group of their own.
        assert_eq!(t.suffix(b"#pragma once\nint g(void);\n", 200 * SEC), None);
        assert_eq!(t.suffix(b"", 300 * SEC), None);
    }

    #[test]
    fn later_mtimes_get_distinct_suffixes_that_stay_stable() {
        let t = Twins::default();
        let body = b"#pragma once\nint f(void);\n";
        assert_eq!(t.suffix(body, 100 * SEC), None);
        let one = t.suffix(body, 105 * SEC).expect("second mtime");
        let two = t.suffix(body, 99 * SEC).expect("third mtime");
        assert_ne!(one, two);
        assert!(one.starts_with(b"/*") && one.ends_with(b"*/\n"));
        // A file without a final newline still ends without one.
        let bare = b"#pragma once\nint h(void);";
        assert_eq!(t.suffix(bare, 100 * SEC), None);
        let s = t.suffix(bare, 101 * SEC).expect("second mtime");
        assert!(s.starts_with(b"\n/*") && s.ends_with(b"*/"));
        // Asked again (another unit, or another file with that mtime).
        assert_eq!(t.suffix(body, 105 * SEC + 7), Some(one));
        assert_eq!(t.suffix(body, 99 * SEC), Some(two));
        assert_eq!(t.suffix(body, 100 * SEC), None);
    }
}
