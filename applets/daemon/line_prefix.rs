//! Keeping gcc's multiple-include optimisation in pump mode.
//!
//! The include server prefixes each file found through an absolute search
//! directory with `#line 1 "<client path>"` (facts §2.3), so that
//! `__FILE__` names the client's path rather than the server's root. But a
//! directive before the include guard defeats the compiler's
//! multiple-include optimisation: every further `#include` of the header
//! reopens and rescans it (libgit2's `git2/common.h` 52 times per unit
//! instead of once), which cost a fifth of the compile's CPU on the server.
//!
//! When the compiler understands `-fmacro-prefix-map` (GCC 8, Clang 10)
//! and the client passed no prefix map of its own, the daemon drops that
//! first line while unpacking, if our include server marked it as safe to
//! drop, and maps the root away instead (the root map is given whenever
//! the compiler takes it, and the client's own maps are repeated with the
//! root in front, [`rerooted_maps`]): `__FILE__`
//! comes out exactly as the `#line` made it, the file is the client's file
//! byte for byte, and diagnostics are mapped back by removing the root
//! from the compiler's stderr (debug information and the `.d` file are
//! rewritten as before). Unmarked lines stay: a stock include server's,
//! the line of a file reached through a rewritten absolute `#include`
//! (opened on the server through `../..`, which no prefix map undoes), and
//! a file's own first line.

use distcc::includes::mirror::STRIPPABLE_LINE_MARK;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The first line our include server inserts and marks as replaceable by
/// a prefix map ([`STRIPPABLE_LINE_MARK`]), if `data` starts with one: its
/// length. An unmarked `#line` is kept: a stock include server's, one our
/// server needs kept (an absolute `#include`'s target), or the file's own.
pub fn inserted_line(data: &[u8]) -> Option<usize> {
    let rest = data.strip_prefix(b"#line 1 \"/")?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    let name = rest[..end].strip_suffix(STRIPPABLE_LINE_MARK)?;
    (name.ends_with(b"\"") && !name[..name.len() - 1].contains(&b'"'))
        .then_some(b"#line 1 \"/".len() + end + 1)
}

/// Whether the client's argv already maps file prefixes (then its own map
/// must apply to the `#line` names, so they are kept).
pub fn has_own_map(argv: &[OsString]) -> bool {
    argv.iter().any(|a| {
        let a = a.as_bytes();
        a.starts_with(b"-fmacro-prefix-map=") || a.starts_with(b"-ffile-prefix-map=")
    })
}

/// Whether the command makes the compiler record source file names that
/// `-fmacro-prefix-map` does not reach: sanitizers put the location of
/// globals and checks into the object (AddressSanitizer's global
/// descriptors, UndefinedBehaviorSanitizer's reports) as the file was
/// opened, so a file must keep the `#line` naming its client path.
pub fn records_source_locations(argv: &[OsString]) -> bool {
    argv.iter().any(|a| {
        let a = a.as_bytes();
        a.starts_with(b"-fsanitize=") && a != b"-fsanitize="
    })
}

/// The client's own prefix maps whose old prefix is absolute, again with
/// the job's `root` in front of that prefix: on the server the compiler
/// sees the client's files under the root, where the client's maps would
/// not match. Put after the daemon's own `-fmacro-prefix-map=ROOT=`, each
/// copy wins over it both where the last matching map wins (GCC) and where
/// the longest does (Clang).
pub fn rerooted_maps(argv: &[OsString], root: &std::path::Path) -> Vec<OsString> {
    const MAPS: [&[u8]; 4] = [
        b"-ffile-prefix-map=",
        b"-fdebug-prefix-map=",
        b"-fmacro-prefix-map=",
        b"-fcoverage-prefix-map=",
    ];
    let mut out = Vec::new();
    for a in argv.iter().skip(1) {
        let a = a.as_bytes();
        let Some(option) = MAPS.iter().find(|m| a.starts_with(m)) else {
            continue;
        };
        let value = &a[option.len()..];
        if !value.starts_with(b"/") || !value.contains(&b'=') {
            continue;
        }
        let root = root.as_os_str().as_bytes();
        let root = root.strip_suffix(b"/").unwrap_or(root);
        out.push(OsString::from_vec([*option, root, value].concat()));
    }
    out
}

/// For a Clang pump job with `-fcoverage-mapping`: the options that make
/// its coverage mapping record the client's directory and paths, as a
/// local compile does, instead of the server's root (the compilation
/// directory `cdir` unless the client set one, and the root mapped away).
/// They go before [`rerooted_maps`], whose copies of the client's own maps
/// then win.
pub fn coverage_maps(argv: &[OsString], cdir: &[u8], root: &std::path::Path) -> Vec<OsString> {
    let clang = argv
        .first()
        .is_some_and(|c| distcc::args::cross::named_clang(c));
    let mut mapping = false;
    let mut own_dir = false;
    for a in argv.iter().skip(1) {
        let a = a.as_bytes();
        if a == b"-fcoverage-mapping" {
            mapping = true;
        } else if a == b"-fno-coverage-mapping" {
            mapping = false;
        } else if a.starts_with(b"-fcoverage-compilation-dir=")
            || a.starts_with(b"-ffile-compilation-dir=")
        {
            own_dir = true;
        }
    }
    if !clang || !mapping {
        return Vec::new();
    }
    let mut out = Vec::new();
    if !own_dir {
        out.push(OsString::from_vec(
            [&b"-fcoverage-compilation-dir="[..], cdir].concat(),
        ));
    }
    let root = root.as_os_str().as_bytes();
    let root = root.strip_suffix(b"/").unwrap_or(root);
    out.push(OsString::from_vec(
        [&b"-fcoverage-prefix-map="[..], root, b"="].concat(),
    ));
    out
}

/// Removes every occurrence of `root` from the compiler's messages.
pub fn unroot_messages(text: &[u8], root: &[u8]) -> Vec<u8> {
    if root.is_empty() {
        return text.to_vec();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(root) {
            i += root.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn coverage_maps_only_for_clang_coverage() {
        let v = |s: &str| s.split(' ').map(OsString::from).collect::<Vec<_>>();
        let root = std::path::Path::new("/tmp/distccd_1/root/");
        assert_eq!(
            coverage_maps(&v("clang -fcoverage-mapping -c m.c"), b"/home/u", root),
            v("-fcoverage-compilation-dir=/home/u -fcoverage-prefix-map=/tmp/distccd_1/root=")
        );
        // The client's own directory stays; no mapping, no options.
        assert_eq!(
            coverage_maps(
                &v("clang -fcoverage-mapping -ffile-compilation-dir=. -c m.c"),
                b"/home/u",
                root
            ),
            v("-fcoverage-prefix-map=/tmp/distccd_1/root=")
        );
        assert!(coverage_maps(&v("clang -c m.c"), b"/h", root).is_empty());
        assert!(
            coverage_maps(
                &v("clang -fcoverage-mapping -fno-coverage-mapping -c m.c"),
                b"/h",
                root
            )
            .is_empty()
        );
        assert!(coverage_maps(&v("gcc -fcoverage-mapping -c m.c"), b"/h", root).is_empty());
    }

    use super::*;

    #[test]
    fn client_maps_are_rerooted() {
        let argv: Vec<OsString> = [
            "gcc",
            "-ffile-prefix-map=/home/u/w=.",
            "-fdebug-prefix-map=/x=/src",
            "-fmacro-prefix-map=rel=x",
            "-fdebug-prefix-map=/no-new-prefix",
            "-c",
            "-fmacro-prefix-map=/a=b=c",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let got = rerooted_maps(&argv, std::path::Path::new("/tmp/distccd_1/root"));
        let want: Vec<OsString> = [
            "-ffile-prefix-map=/tmp/distccd_1/root/home/u/w=.",
            "-fdebug-prefix-map=/tmp/distccd_1/root/x=/src",
            "-fmacro-prefix-map=/tmp/distccd_1/root/a=b=c",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(got, want);
        assert!(rerooted_maps(&argv[..1], std::path::Path::new("/r")).is_empty());
    }

    #[test]
    fn recognises_only_the_inserted_line() {
        let marked = |first: &[u8], rest: &[u8]| [first, STRIPPABLE_LINE_MARK, rest].concat();
        let line = marked(b"#line 1 \"/a/b.h\"", b"\n#ifndef B\n");
        assert_eq!(
            inserted_line(&line),
            Some(line.len() - b"#ifndef B\n".len())
        );
        assert_eq!(inserted_line(&marked(b"#line 1 \"a/b.h\"", b"\nx")), None);
        assert_eq!(inserted_line(&marked(b"#line 2 \"/a/b.h\"", b"\nx")), None);
        assert_eq!(
            inserted_line(&marked(b"#line 1 \"/a/b.h\" 3", b"\nx")),
            None
        );
        assert_eq!(inserted_line(&marked(b"#line 1 \"/a/b.h\"", b"")), None);
        assert_eq!(inserted_line(b"int x;\n"), None);
        // Unmarked: a stock include server's, a kept one, the file's own.
        assert_eq!(inserted_line(b"#line 1 \"/a/b.h\"\n#ifndef B\n"), None);
    }

    #[test]
    fn messages_lose_the_root() {
        let root = b"/tmp/distccd_x/root";
        let msg = b"/tmp/distccd_x/root/p/a.h:3:1: error: x\nIn file included from /tmp/distccd_x/root/p/b.c:1:\n";
        assert_eq!(
            unroot_messages(msg, root),
            b"/p/a.h:3:1: error: x\nIn file included from /p/b.c:1:\n".to_vec()
        );
    }

    #[test]
    fn own_maps_are_noticed() {
        assert!(has_own_map(&[
            "gcc".into(),
            "-ffile-prefix-map=/a=/b".into()
        ]));
        assert!(!has_own_map(&["gcc".into(), "-O2".into()]));
    }

    #[test]
    fn sanitizers_record_locations() {
        for on in [
            "-fsanitize=address",
            "-fsanitize=undefined",
            "-fsanitize=thread,undefined",
        ] {
            assert!(records_source_locations(&["gcc".into(), on.into()]), "{on}");
        }
        for off in ["-fno-sanitize=all", "-fsanitize-recover=all", "-O2"] {
            assert!(
                !records_source_locations(&["gcc".into(), off.into()]),
                "{off}"
            );
        }
    }
}
