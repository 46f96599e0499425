//! Client-side repair of a pump job's dependency file.
//!
//! Our include server sends copies in which `#include "/abs/x.h"` reads
//! `#include "../../abs/x.h"` (climbing from the includer's directory to the
//! server's root, so that the server opens its own copy). The compiler then
//! names that header in the `.d` file as `<includer's directory>/../../abs/x.h`
//! where a local compile names it `/abs/x.h`. Both reach the same file
//! through the kernel, but tools that clean paths as text (ninja) would go
//! wrong through a symlinked directory, and the text should be the local
//! one. Given the names the include server rewrote, this puts them back.

/// `deps` with every path `DIR/../../rest` whose `../` steps climb from
/// `DIR` exactly to `/` (`depth` gives how many directories the real `DIR`
/// lies below `/`) and where `/rest` is one of `names`, replaced by that
/// name. Names the compiler would escape (blanks, `$`, `#`, `\`, `:`) are
/// left alone. A header reached by one absolute name from two directories
/// came back under two climbing names, which are one name locally: it is
/// listed once, as the compiler lists it (a prerequisite, or an `-MP`
/// phony target, already written is not written again).
pub fn restore_absolute_names(
    deps: &[u8],
    names: &[Vec<u8>],
    depth: impl Fn(&[u8]) -> Option<usize>,
) -> Vec<u8> {
    let names: Vec<&[u8]> = names
        .iter()
        .map(Vec::as_slice)
        .filter(|n| n.len() > 1 && n[0] == b'/' && !n.iter().any(|b| b" \t\n\r$#\\:".contains(b)))
        .collect();
    if names.is_empty() {
        return deps.to_vec();
    }
    let mut out = Vec::with_capacity(deps.len());
    let mut copied = 0;
    // Words written so far, colon included (a prerequisite and an -MP
    // phony target of one name are told apart by it).
    let mut written: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    for span in crate::dotd_wrap::word_spans(deps) {
        let word = &deps[span.clone()];
        let (path, colon) = match word.strip_suffix(b":") {
            Some(p) => (p, &b":"[..]),
            None => (word, &b""[..]),
        };
        let climbs = |name: &&&[u8]| {
            climb(path, &name[1..]).is_some_and(|(dir, ups)| depth(dir) == Some(ups))
        };
        let Some(name) = names.iter().find(climbs) else {
            written.insert(word.to_vec());
            continue;
        };
        out.extend_from_slice(&deps[copied..span.start]);
        copied = span.end;
        let restored = [*name, colon].concat();
        if !written.contains(&restored) {
            out.extend_from_slice(&restored);
            written.insert(restored);
        } else if !colon.is_empty() && deps.get(copied) == Some(&b'\n') {
            // A repeated phony rule goes with its line.
            copied += 1;
        }
    }
    out.extend_from_slice(&deps[copied..]);
    out
}

/// `DIR` (possibly empty) and the number of `../` steps when `path` is
/// `[DIR/]../[../...]rest`.
fn climb<'p>(path: &'p [u8], rest: &[u8]) -> Option<(&'p [u8], usize)> {
    let mut before = path.strip_suffix(rest)?;
    let mut ups = 0;
    while let Some(b) = before.strip_suffix(b"../") {
        before = b;
        ups += 1;
    }
    (ups > 0 && (before.is_empty() || before.ends_with(b"/"))).then_some((before, ups))
}

/// How many directories below `/` the directory `dir` (as the compiler
/// spelled it, relative to the working directory) really is.
pub fn real_depth(dir: &[u8]) -> Option<usize> {
    use std::os::unix::ffi::OsStrExt;
    let dir = if dir.is_empty() { &b"."[..] } else { dir };
    let real = std::fs::canonicalize(std::ffi::OsStr::from_bytes(dir)).ok()?;
    Some(real.components().count().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<Vec<u8>> {
        n.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    /// Depths as if the working directory were /p (and `src` /p/src).
    fn depth(dir: &[u8]) -> Option<usize> {
        let full = if dir.starts_with(b"/") {
            dir.to_vec()
        } else {
            [&b"/p/"[..], dir].concat()
        };
        let parts = full
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".");
        Some(parts.count())
    }

    #[test]
    fn climbing_paths_get_their_absolute_name_back() {
        let d = b"a.o: src/a.c /usr/include/stdc-predef.h \\\n src/../../w/abs/x.h src/y.h\n";
        assert_eq!(
            restore_absolute_names(d, &names(&["/w/abs/x.h"]), depth),
            b"a.o: src/a.c /usr/include/stdc-predef.h \\\n /w/abs/x.h src/y.h\n".to_vec()
        );
        let d = b"c.o: /p/src/a.c /p/src/../../w/abs/x.h\n\n/p/src/../../w/abs/x.h:\n";
        assert_eq!(
            restore_absolute_names(d, &names(&["/w/abs/x.h"]), depth),
            b"c.o: /p/src/a.c /w/abs/x.h\n\n/w/abs/x.h:\n".to_vec()
        );
        // Directly in the working directory.
        assert_eq!(
            restore_absolute_names(b"t: ../w/x.h\n", &names(&["/w/x.h"]), depth),
            b"t: /w/x.h\n".to_vec()
        );
    }

    #[test]
    fn one_header_reached_from_two_directories_is_listed_once() {
        // /w/abs/b.h included by absolute name from src/ and from src/sub/.
        let d = b"a.o: src/a.c src/../../w/abs/b.h src/sub/h.h \\\n src/sub/../../../w/abs/b.h\nsrc/../../w/abs/b.h:\nsrc/sub/h.h:\nsrc/sub/../../../w/abs/b.h:\n";
        assert_eq!(
            String::from_utf8(restore_absolute_names(d, &names(&["/w/abs/b.h"]), depth)).unwrap(),
            "a.o: src/a.c /w/abs/b.h src/sub/h.h \\\n \n/w/abs/b.h:\nsrc/sub/h.h:\n"
        );
    }

    #[test]
    fn other_paths_are_left_alone() {
        // Climbing too little or too far, not climbing, escaped blanks.
        let d = b"a.o: src/a.c src/../w/x.h src/../../../w/x.h /w/x.h src/my../w/x.h sub/w/x.h x.h\\ \\ ../../w/x.h\n";
        assert_eq!(
            restore_absolute_names(d, &names(&["/w/x.h"]), depth),
            d.to_vec()
        );
        assert_eq!(
            restore_absolute_names(d, &[], depth),
            d.to_vec(),
            "no names, no change"
        );
        let odd = b"a.o: src/../../a\\ b/x.h\n";
        assert_eq!(
            restore_absolute_names(odd, &names(&["/a b/x.h"]), depth),
            odd.to_vec(),
            "names the compiler escapes are not touched"
        );
    }
}
