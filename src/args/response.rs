//! Response files (`@file` arguments), expanded by the client before
//! anything else, as Debian's distcc 3.4 does with libiberty's `expandargv`
//! (facts §4.1).
//!
//! Build systems (CMake with Ninja, MSBuild-style generators, long include
//! lists) put compiler options in a file and pass `@file`. The file is on
//! the client; the server cannot read it (and our daemon refuses `@`
//! arguments outright). Expanding it here sends the options themselves.
//!
//! The rules are libiberty's: an argument `@name` whose file can be read is
//! replaced by the words of that file, which may themselves be `@name`
//! arguments; one that cannot be read (missing, a directory, unreadable) is
//! left as it is, for the compiler to report. Words are separated by
//! whitespace; a backslash takes the next character literally; single and
//! double quotes group characters, whitespace included, and are removed.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Most `@file` expansions in one command line (libiberty stops at 2000
/// too: a file that names itself would expand forever).
const MAX_EXPANSIONS: usize = 2000;
/// Largest response file read.
const MAX_FILE: u64 = 64 << 20;

/// `args` with every readable `@file` replaced by the words of the file.
pub fn expand(args: Vec<OsString>) -> Vec<OsString> {
    if !args.iter().any(|a| a.as_bytes().starts_with(b"@")) {
        return args;
    }
    let mut out = args;
    let mut i = 0;
    let mut expansions = 0;
    while i < out.len() {
        let Some(name) = out[i].as_bytes().strip_prefix(b"@") else {
            i += 1;
            continue;
        };
        if expansions >= MAX_EXPANSIONS {
            break;
        }
        let Some(text) = read(Path::new(std::ffi::OsStr::from_bytes(name))) else {
            i += 1;
            continue;
        };
        expansions += 1;
        let words: Vec<OsString> = split(&text).into_iter().map(OsString::from_vec).collect();
        // The inserted words are looked at next (nested response files).
        out.splice(i..=i, words);
    }
    out
}

fn read(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    std::fs::read(path).ok()
}

/// The words of a response file (libiberty's `buildargv`).
pub fn split(text: &[u8]) -> Vec<Vec<u8>> {
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut words = Vec::new();
    let mut i = 0;
    while i < text.len() {
        while i < text.len() && space(text[i]) {
            i += 1;
        }
        if i >= text.len() {
            break;
        }
        let (mut squote, mut dquote, mut escaped) = (false, false, false);
        let mut word = Vec::new();
        while i < text.len() {
            let c = text[i];
            if space(c) && !squote && !dquote && !escaped {
                break;
            }
            if escaped {
                escaped = false;
                word.push(c);
            } else if c == b'\\' {
                escaped = true;
            } else if squote {
                if c == b'\'' {
                    squote = false;
                } else {
                    word.push(c);
                }
            } else if dquote {
                if c == b'"' {
                    dquote = false;
                } else {
                    word.push(c);
                }
            } else if c == b'\'' {
                squote = true;
            } else if c == b'"' {
                dquote = true;
            } else {
                word.push(c);
            }
            i += 1;
        }
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split(s.as_bytes())
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn splits_like_libiberty() {
        assert_eq!(words("  -O2\t-DX=1\n\n-I/a "), ["-O2", "-DX=1", "-I/a"]);
        assert_eq!(
            words("-I\"/with space\" '-DS=\"q\"'"),
            ["-I/with space", "-DS=\"q\""]
        );
        assert_eq!(words(r"-DP=a\ b c\\d"), ["-DP=a b", r"c\d"]);
        assert_eq!(words("'' x"), ["", "x"]);
        assert!(words(" \n\t").is_empty());
        assert_eq!(words("\"unterminated word"), ["unterminated word"]);
    }

    #[test]
    fn expands_nested_files_and_leaves_unreadable_ones() {
        let dir = std::env::temp_dir().join(format!("distcc-rsp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.rsp"), dir.join("b.rsp"));
        std::fs::write(&a, format!("-O2 @{} -c", b.display())).unwrap();
        std::fs::write(&b, "-DX=1 \"-I/p q\"").unwrap();
        let looped = dir.join("self.rsp");
        std::fs::write(&looped, format!("-g @{}", looped.display())).unwrap();
        let args: Vec<OsString> = vec![
            "gcc".into(),
            format!("@{}", a.display()).into(),
            "x.c".into(),
            "@/nonexistent/file".into(),
            format!("@{}", dir.display()).into(),
        ];
        let got = expand(args);
        let want: Vec<OsString> = vec![
            "gcc".into(),
            "-O2".into(),
            "-DX=1".into(),
            "-I/p q".into(),
            "-c".into(),
            "x.c".into(),
            "@/nonexistent/file".into(),
            format!("@{}", dir.display()).into(),
        ];
        assert_eq!(got, want);
        // A file that names itself stops at the expansion limit.
        let got = expand(vec![format!("@{}", looped.display()).into()]);
        assert_eq!(got.iter().filter(|a| *a == "-g").count(), MAX_EXPANSIONS);
        std::fs::remove_dir_all(&dir).ok();
    }
}
