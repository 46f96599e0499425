//! Include search rules: which file `#include "x"`, `#include <x>` and
//! `#include_next` open.
//!
//! The search list is built as GCC builds it (facts §3): quote-only
//! directories (`-iquote`), then the bracket chain (`-I`, `-isystem`, the
//! compiler's defaults unless `-nostdinc`, `-idirafter`). Like GCC, a
//! directory that does not exist is dropped, and so is a repeated directory
//! or a `-I` directory that is also a system directory (`-isystem`, a
//! default, or `-idirafter`: it keeps its system position). GCC, not Clang,
//! also drops an `-iquote` directory that is a system directory, and the
//! last `-iquote` directory when it is the first `-I` one (both compilers
//! print "ignoring duplicate directory"). `"x"` is first tried in the includer's directory as
//! opened (the path spelled through symlinks, never their targets), so
//! `..` behaves as on the compiler's side. Paths are formed as GCC forms
//! them (`dir/name`), relative to the client's working directory.

use super::command::Command;
use super::compiler::CompilerInfo;
use std::path::{Path, PathBuf};

/// `base/rest` as `Path::join` forms it (an absolute `rest` stands alone,
/// an empty `base` adds nothing), in one allocation of the exact size: the
/// walk joins paths for every lookup, and growing a copy of `base` was a
/// tenth of the include server's time.
pub fn join(base: &Path, rest: &Path) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let (b, r) = (base.as_os_str().as_bytes(), rest.as_os_str().as_bytes());
    if r.first() == Some(&b'/') || b.is_empty() {
        return rest.to_path_buf();
    }
    let mut v = Vec::with_capacity(b.len() + 1 + r.len());
    v.extend_from_slice(b);
    if !b.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(r);
    PathBuf::from(std::ffi::OsString::from_vec(v))
}

/// [`join`], borrowing `rest` when it is already absolute (or `base` empty).
pub fn join_cow<'a>(base: &Path, rest: &'a Path) -> std::borrow::Cow<'a, Path> {
    use std::os::unix::ffi::OsStrExt;
    if rest.as_os_str().as_bytes().first() == Some(&b'/') || base.as_os_str().is_empty() {
        std::borrow::Cow::Borrowed(rest)
    } else {
        std::borrow::Cow::Owned(join(base, rest))
    }
}

/// The ordered search directories of one command.
#[derive(Debug, Clone)]
pub struct SearchPath {
    /// Directories as spelled on the command line (relative to cwd or absolute).
    pub dirs: Vec<PathBuf>,
    /// Index in `dirs` where the bracket (`<...>`) chain starts.
    pub angle_start: usize,
    /// Index in `dirs` of the first system directory (`-isystem`, the
    /// compiler's own, `-idirafter`): GCC treats what it finds from there
    /// on, and everything such a header includes, as system headers.
    pub system_start: usize,
}

/// A search directory of `cmd` that GCC complains about: it exists but is
/// not a directory (`cc1: warning: F: not a directory`, an error with
/// `-Werror`), or cannot be looked at for another reason than not existing
/// (`F/` under a regular file, a symlink loop: an error). Nothing is
/// mirrored for it, so the server's compiler would skip it in silence and
/// succeed where the local compile fails. Clang calls all of these
/// nonexistent and skips them, as the server's compiler does.
///
/// `is_dir` tells whether an absolute path (symlinks followed) is a
/// directory, or why it cannot be looked at.
pub fn gcc_bad_directory(
    cmd: &Command,
    cwd: &Path,
    is_dir: &mut dyn FnMut(&Path) -> std::io::Result<bool>,
) -> Option<PathBuf> {
    cmd.quote_dirs
        .iter()
        .chain(&cmd.include_dirs)
        .chain(&cmd.system_dirs)
        .chain(&cmd.after_dirs)
        .find(|d| match is_dir(&join(cwd, d)) {
            Ok(dir) => !dir,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        })
        .cloned()
}

/// One file an include directive opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The path as the compiler forms it (`dir/name`, relative or absolute).
    pub spelled: PathBuf,
    /// The index of the search directory it was found in, if any.
    pub dir_index: Option<usize>,
    /// Opened by an absolute name (or the main source file itself): GCC
    /// gives such a file no place in the search path, so an
    /// `#include_next` in it searches as `#include` does. A file found
    /// beside its includer (`dir_index` None, this false) searches on from
    /// the start of the chain.
    pub plain_next: bool,
}

impl SearchPath {
    /// Builds the search path of `cmd` with the compiler defaults in `info`.
    pub fn new(cmd: &Command, info: &CompilerInfo, cwd: &Path) -> SearchPath {
        SearchPath::with_canonical(cmd, info, cwd, &mut |p| std::fs::canonicalize(p).ok())
    }

    /// Like [`SearchPath::new`], with `canonical` giving the canonical form
    /// of an absolute path (or None if it does not exist).
    pub fn with_canonical(
        cmd: &Command,
        info: &CompilerInfo,
        cwd: &Path,
        canonical: &mut dyn FnMut(&Path) -> Option<PathBuf>,
    ) -> SearchPath {
        let mut canon = |d: &Path| canonical(&join(cwd, d));
        // GCC's system chain: -isystem, the defaults, then -idirafter.
        let mut system: Vec<PathBuf> = cmd.system_dirs.iter().filter_map(|d| canon(d)).collect();
        system.extend(info.angle_dirs.iter().cloned());
        system.extend(cmd.after_dirs.iter().filter_map(|d| canon(d)));
        let gcc = !info.clang();
        let mut dirs = Vec::new();
        let mut seen: Vec<PathBuf> = Vec::new();
        for d in cmd.quote_dirs.iter().chain(&info.quote_dirs) {
            if let Some(c) = canon(d)
                && !seen.contains(&c)
                && !(gcc && system.contains(&c))
            {
                seen.push(c);
                dirs.push(d.clone());
            }
        }
        let mut angle_start = dirs.len();
        let last_quote = seen.pop();
        seen.clear();
        for d in &cmd.include_dirs {
            if let Some(c) = canon(d)
                && !seen.contains(&c)
                && !system.contains(&c)
            {
                if gcc && seen.is_empty() && last_quote.as_ref() == Some(&c) {
                    // GCC drops the last quote directory when the bracket
                    // chain it leads into starts with the same directory.
                    dirs.remove(angle_start - 1);
                    angle_start -= 1;
                }
                seen.push(c);
                dirs.push(d.clone());
            }
        }
        let system_start = dirs.len();
        let rest = cmd
            .system_dirs
            .iter()
            .chain(&info.angle_dirs)
            .chain(&cmd.after_dirs);
        for d in rest {
            if let Some(c) = canon(d)
                && !seen.contains(&c)
            {
                seen.push(c);
                dirs.push(d.clone());
            }
        }
        if gcc && angle_start == dirs.len() {
            // With no bracket directory left (-nostdinc), GCC searches
            // `<x>` in the quote directories; Clang finds nothing.
            angle_start = 0;
        }
        SearchPath {
            dirs,
            angle_start,
            system_start,
        }
    }

    /// The files `name` may open. `quote`: `"name"` (else `<name>`);
    /// `includer_dir`: directory of the including file as opened;
    /// `next`: `Some(index of the includer's directory)` for `#include_next`.
    /// `is_file(dir, name)` tells whether the spelled path `dir/name` is a
    /// regular file (the split lets the caller answer misses from a cached
    /// directory listing).
    ///
    /// `#include` yields the first hit; `#include_next` yields every hit after
    /// the includer's directory (a superset, as stock does).
    pub fn find(
        &self,
        name: &Path,
        quote: bool,
        includer_dir: Option<&Path>,
        next: Option<Option<usize>>,
        is_file: &mut dyn FnMut(&Path, &Path) -> bool,
    ) -> Vec<Found> {
        if name.is_absolute() {
            return if is_file(Path::new(""), name) {
                vec![Found {
                    spelled: name.to_path_buf(),
                    dir_index: None,
                    plain_next: true,
                }]
            } else {
                Vec::new()
            };
        }
        let mut out = Vec::new();
        let start = match next {
            Some(Some(i)) => i + 1,
            // After a file found beside its includer, GCC goes on from the
            // head of the quote chain, whatever the spelling.
            Some(None) => 0,
            None if quote => 0,
            None => self.angle_start,
        };
        let all = next.is_some();
        if quote
            && next.is_none()
            && let Some(dir) = includer_dir
            && is_file(dir, name)
        {
            return vec![Found {
                spelled: join(dir, name),
                dir_index: None,
                plain_next: false,
            }];
        }
        for (i, d) in self.dirs.iter().enumerate().skip(start) {
            if is_file(d, name) {
                out.push(Found {
                    spelled: join(d, name),
                    dir_index: Some(i),
                    plain_next: false,
                });
                if !all {
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a probe of GCC (or, with `clang`, of Clang: it predefines
    /// `__clang__`) would report, with `angle` as its default directories.
    fn compiler_info(clang: bool, angle: &[&str]) -> CompilerInfo {
        CompilerInfo {
            quote_dirs: vec![],
            angle_dirs: angle.iter().map(PathBuf::from).collect(),
            macros: clang
                .then(|| super::super::macros::parse_define(b"__clang__ 1"))
                .flatten()
                .map(|(n, m)| (n, std::sync::Arc::new(m)))
                .into_iter()
                .collect(),
            base_env: Default::default(),
        }
    }

    fn sp(dirs: &[&str], angle_start: usize) -> SearchPath {
        SearchPath {
            dirs: dirs.iter().map(PathBuf::from).collect(),
            angle_start,
            system_start: dirs.len(),
        }
    }

    fn names(v: Vec<Found>) -> Vec<String> {
        v.into_iter()
            .map(|f| f.spelled.display().to_string())
            .collect()
    }

    #[test]
    fn gcc_bad_directory_is_an_existing_non_directory_or_unreadable() {
        let mut std_is_dir = |p: &Path| std::fs::metadata(p).map(|m| m.is_dir());
        let t = std::env::temp_dir().join(format!("resolve-baddir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("d")).unwrap();
        std::fs::write(t.join("F"), b"x").unwrap();
        std::os::unix::fs::symlink("F", t.join("LF")).unwrap();
        std::os::unix::fs::symlink("d", t.join("LD")).unwrap();
        std::os::unix::fs::symlink("nowhere", t.join("DL")).unwrap();
        std::os::unix::fs::symlink("LOOP", t.join("LOOP")).unwrap();
        let cmd = |role: usize, d: &str| {
            let mut c = Command::default();
            [
                &mut c.quote_dirs,
                &mut c.include_dirs,
                &mut c.system_dirs,
                &mut c.after_dirs,
            ][role]
                .push(PathBuf::from(d));
            c
        };
        for role in 0..4 {
            for ok in ["d", "LD", "DL", "missing", "d/"] {
                assert_eq!(
                    gcc_bad_directory(&cmd(role, ok), &t, &mut std_is_dir),
                    None,
                    "{role} {ok}"
                );
            }
            for bad in ["F", "LF", "F/", "LOOP"] {
                assert_eq!(
                    gcc_bad_directory(&cmd(role, bad), &t, &mut std_is_dir),
                    Some(PathBuf::from(bad)),
                    "{role} {bad}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn join_is_path_join() {
        for (a, b) in [
            ("", "x.h"),
            ("a", "x.h"),
            ("a/", "x.h"),
            ("/a/b", "c/x.h"),
            ("a", "/abs/x.h"),
            ("a", ""),
            ("", ""),
            ("a//", "./x.h"),
            ("/", "x"),
        ] {
            assert_eq!(
                join(Path::new(a), Path::new(b)),
                Path::new(a).join(b),
                "{a:?} {b:?}"
            );
            assert_eq!(
                join(Path::new(a), Path::new(b)).as_os_str(),
                Path::new(a).join(b).as_os_str(),
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn quote_angle_next() {
        let s = sp(&["q", "i1", "i2", "/sys"], 1);
        let files = ["src/a.h", "q/a.h", "i1/b.h", "i2/b.h", "/sys/b.h", "i2/c.h"];
        let mut exists = |d: &Path, n: &Path| files.iter().any(|f| Path::new(f) == d.join(n));
        let a = Path::new("a.h");
        let b = Path::new("b.h");
        assert_eq!(
            names(s.find(a, true, Some(Path::new("src")), None, &mut exists)),
            vec!["src/a.h"]
        );
        assert_eq!(
            names(s.find(a, true, Some(Path::new("other")), None, &mut exists)),
            vec!["q/a.h"]
        );
        assert!(s.find(a, false, None, None, &mut exists).is_empty());
        assert_eq!(
            names(s.find(b, false, None, None, &mut exists)),
            vec!["i1/b.h"]
        );
        assert_eq!(
            names(s.find(b, false, None, Some(Some(1)), &mut exists)),
            vec!["i2/b.h", "/sys/b.h"]
        );
        assert_eq!(
            names(s.find(
                Path::new("i2/c.h"),
                true,
                Some(Path::new("")),
                None,
                &mut exists
            )),
            vec!["i2/c.h"]
        );
        assert_eq!(
            names(s.find(Path::new("/sys/b.h"), true, None, None, &mut exists)),
            vec!["/sys/b.h"]
        );
    }

    #[test]
    fn builds_like_gcc() {
        let dir = std::env::temp_dir().join(format!("inc-resolve-{}", std::process::id()));
        for d in ["a", "b"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        let cmd = super::super::command::parse(
            &[
                "gcc",
                "-Ia",
                "-Inope",
                "-Ia",
                "-I/usr/include",
                "-iquote",
                "b",
                "-c",
                "x.c",
            ]
            .map(std::ffi::OsString::from),
        )
        .expect("parses");
        let info = compiler_info(false, &["/usr/include"]);
        let s = SearchPath::new(&cmd, &info, &dir);
        assert_eq!(
            s.dirs,
            vec![
                PathBuf::from("b"),
                PathBuf::from("a"),
                PathBuf::from("/usr/include")
            ]
        );
        assert_eq!(s.angle_start, 1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn drops_duplicates_of_system_directories_as_the_compiler_does() {
        let dir = std::env::temp_dir().join(format!("inc-resolve-dup-{}", std::process::id()));
        for d in ["d", "e"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        let info = |clang: bool| compiler_info(clang, &["/usr/include"]);
        let search = |args: &[&str], clang: bool| {
            let mut argv = vec!["cc"];
            argv.extend_from_slice(args);
            argv.extend_from_slice(&["-c", "x.c"]);
            let argv: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
            let cmd = super::super::command::parse(&argv).expect("parses");
            let s = SearchPath::new(&cmd, &info(clang), &dir);
            let dirs: Vec<String> = s.dirs.iter().map(|d| d.display().to_string()).collect();
            (dirs, s.angle_start)
        };
        // Checked against `gcc -v` and `clang -v` ("ignoring duplicate
        // directory"). An -I directory that is also an -idirafter one
        // keeps its system place, for both compilers.
        for clang in [false, true] {
            assert_eq!(
                search(&["-idirafter", "d", "-Id", "-Ie"], clang),
                (vec!["e".into(), "/usr/include".into(), "d".into()], 0)
            );
        }
        // GCC drops a quote directory that is a system one; Clang keeps it.
        let quote_and_system = ["-iquote", "d", "-Ie", "-isystem", "d"];
        assert_eq!(
            search(&quote_and_system, false),
            (vec!["e".into(), "d".into(), "/usr/include".into()], 0)
        );
        assert_eq!(
            search(&quote_and_system, true),
            (
                vec!["d".into(), "e".into(), "d".into(), "/usr/include".into()],
                1
            )
        );
        let quote_and_after = ["-iquote", "d", "-idirafter", "d"];
        assert_eq!(
            search(&quote_and_after, false),
            (vec!["/usr/include".into(), "d".into()], 0)
        );
        // GCC drops the last quote directory when the -I chain starts with
        // it; Clang keeps it.
        let last_quote_first_bracket = ["-iquote", "e", "-iquote", "d", "-Id"];
        assert_eq!(
            search(&last_quote_first_bracket, false),
            (vec!["e".into(), "d".into(), "/usr/include".into()], 1)
        );
        assert_eq!(
            search(&last_quote_first_bracket, true),
            (
                vec!["e".into(), "d".into(), "d".into(), "/usr/include".into()],
                2
            )
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn gcc_searches_brackets_in_the_quote_chain_when_no_bracket_directory_is_left() {
        let dir = std::env::temp_dir().join(format!("inc-resolve-nobr-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("q")).expect("mkdir");
        let argv: Vec<std::ffi::OsString> = ["cc", "-nostdinc", "-iquote", "q", "-c", "x.c"]
            .iter()
            .map(Into::into)
            .collect();
        let cmd = super::super::command::parse(&argv).expect("parses");
        // Checked with `gcc -nostdinc -iquote q` and `#include <c.h>` in
        // q: GCC reads q/c.h, Clang reports it not found.
        for (clang, start) in [(false, 0), (true, 1)] {
            let info = compiler_info(clang, &[]);
            let s = SearchPath::new(&cmd, &info, &dir);
            assert_eq!(s.dirs, vec![PathBuf::from("q")]);
            assert_eq!(s.angle_start, start, "clang: {clang}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
