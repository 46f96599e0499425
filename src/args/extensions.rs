//! File-name extensions that decide what a compiler input is (facts §4.3).
//!
//! distcc only distributes sources with one of a fixed, case-sensitive set of
//! extensions; `.s`/`.S` assembler inputs run locally. Preprocessed inputs
//! (`.i .ii .mi .mii`) skip the local preprocessor. The same map chooses the
//! extension of the client's cpp output and of the daemon's input file.

use std::ffi::OsStr;

/// The extension of `path` (the bytes after the last `.` of the file name).
pub fn extension(path: &OsStr) -> Option<&[u8]> {
    let bytes = path.as_encoded_bytes();
    let name_start = bytes.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let name = &bytes[name_start..];
    let dot = name.iter().rposition(|&b| b == b'.')?;
    Some(&name[dot + 1..])
}

/// Whether distcc treats `path` as a source file it can distribute.
pub fn is_source(path: &OsStr) -> bool {
    matches!(
        extension(path),
        Some(
            b"i" | b"ii"
                | b"c"
                | b"cc"
                | b"cpp"
                | b"cxx"
                | b"cp"
                | b"c++"
                | b"C"
                | b"m"
                | b"mm"
                | b"mi"
                | b"mii"
                | b"M"
        )
    )
}

/// Whether `path` is already preprocessed.
pub fn is_preprocessed(path: &OsStr) -> bool {
    matches!(extension(path), Some(b"i" | b"ii" | b"mi" | b"mii"))
}

/// The extension a preprocessed form of `path` gets (without the dot):
/// `i`, `ii`, `mi`, `mii`, `s`, or `tmp` for anything else.
pub fn preprocessed_extension(path: &OsStr) -> &'static str {
    match extension(path) {
        Some(b"c" | b"i") => "i",
        Some(b"cc" | b"cpp" | b"cxx" | b"cp" | b"c++" | b"C" | b"ii") => "ii",
        Some(b"m" | b"mi") => "mi",
        Some(b"mm" | b"M" | b"mii") => "mii",
        Some(e) if e.eq_ignore_ascii_case(b"s") => "s",
        _ => "tmp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn sources_are_case_sensitive() {
        for s in ["a.c", "dir.x/b.cpp", "c.C", "d.M", "e.c++", "f.mii", "g.cp"] {
            assert!(is_source(os(s)), "{s}");
        }
        for s in ["a.s", "a.S", "a.h", "a.CPP", "a.o", "noext", "dir.c/file"] {
            assert!(!is_source(os(s)), "{s}");
        }
    }

    #[test]
    fn preprocessed_map() {
        assert!(is_preprocessed(os("x.ii")));
        assert!(!is_preprocessed(os("x.c")));
        assert_eq!(preprocessed_extension(os("x.c")), "i");
        assert_eq!(preprocessed_extension(os("x.C")), "ii");
        assert_eq!(preprocessed_extension(os("x.mm")), "mii");
        assert_eq!(preprocessed_extension(os("x.m")), "mi");
        assert_eq!(preprocessed_extension(os("x.S")), "s");
        assert_eq!(preprocessed_extension(os("x.f90")), "tmp");
    }
}
