//! The compilation directory of a Clang compile in plain mode.
//!
//! GCC takes the working directory for its debug information from the
//! preprocessed source (the `# 1 "/dir//"` line marker `-E -g` writes).
//! Clang does not: a plain-mode compile on a server records the server's
//! directory, and gdb then cannot find the relative source names in the
//! object. The client names its own directory, as a local Clang would
//! record it, with `-fdebug-compilation-dir`.
//!
//! In pump mode the compiler on the server records the working directory
//! the client sent (the physical one, as stock sends it). A compiler here
//! records `$PWD` when that names the directory through a symlink, so a
//! unit with debug information compiled there is preprocessed here instead
//! ([`logical_differs`], [`records_debug_info`]).

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `-fdebug-compilation-dir=<cwd>` for `argv` when its compiler is Clang
/// (by name) and it names no compilation directory of its own.
pub fn clang_option(argv: &[OsString], cwd: &Path) -> Option<OsString> {
    if !super::cross::named_clang(argv.first()?) {
        return None;
    }
    let own = argv.iter().skip(1).any(|a| {
        let a = a.as_encoded_bytes();
        a.starts_with(b"-fdebug-compilation-dir") || a.starts_with(b"-ffile-compilation-dir")
    });
    if own {
        return None;
    }
    let mut option = OsString::from("-fdebug-compilation-dir=");
    option.push(cwd);
    Some(option)
}

/// The working directory as a compiler here records it: `$PWD` when it
/// names this directory (through symlinks too), else the physical one.
pub fn recorded_cwd() -> Option<PathBuf> {
    let here = std::fs::metadata(".").ok()?;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from)
        && pwd.is_absolute()
        && let Ok(m) = std::fs::metadata(&pwd)
        && (m.dev(), m.ino()) == (here.dev(), here.ino())
    {
        return Some(pwd);
    }
    std::env::current_dir().ok()
}

/// The logical working directory (`$PWD`) when this directory was entered
/// through a symlink, so that a compiler here records another name for it
/// than its physical path; None when the two agree.
pub fn logical_differs() -> Option<PathBuf> {
    let logical = recorded_cwd()?;
    let physical = std::env::current_dir().ok()?;
    (logical != physical).then_some(logical)
}

/// Options after `-g` that change how debug information is written, not
/// whether: they leave the level as it was.
const DEBUG_MODIFIERS: &[&str] = &[
    "-gsplit-dwarf",
    "-gcolumn-info",
    "-gstrict-dwarf",
    "-gas-loc-support",
    "-gas-locview-support",
    "-gvariable-location-views",
    "-ginline-points",
    "-ginternal-reset-location-views",
    "-gdescribe-dies",
    "-gpubnames",
    "-ggnu-pubnames",
    "-grecord-gcc-switches",
    "-gstatement-frontiers",
    "-gembed-source",
    "-gdwarf64",
    "-gdwarf32",
];

/// Whether the compile writes debug information, which records the
/// working directory (`DW_AT_comp_dir`): the last `-g` level option
/// decides, as for the compiler (`-g0`, `-ggdb0`, ... turn it off).
/// Options that only shape debug information (`-gz`, `-gno-*`,
/// `-gsplit-dwarf`, ...) leave it as it was.
pub fn records_debug_info(argv: &[OsString]) -> bool {
    let mut on = false;
    for arg in argv.iter().skip(1) {
        let Some(a) = arg.to_str() else { continue };
        if !a.starts_with("-g") || a.starts_with("-gno-") || a.starts_with("-gz") {
            continue;
        }
        if DEBUG_MODIFIERS.contains(&a) || a.starts_with("-gsplit-dwarf") {
            continue;
        }
        on = !a.ends_with('0');
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_debug_level_decides() {
        for (cmd, want) in [
            ("gcc -c a.c", false),
            ("gcc -g -c a.c", true),
            ("gcc -g3 -c a.c", true),
            ("gcc -ggdb -c a.c", true),
            ("gcc -gdwarf-4 -c a.c", true),
            ("gcc -g -g0 -c a.c", false),
            ("gcc -g0 -g1 -c a.c", true),
            ("gcc -ggdb3 -ggdb0 -c a.c", false),
            ("gcc -gz -c a.c", false),
            ("gcc -gsplit-dwarf -c a.c", false),
            ("gcc -g -gno-column-info -gz=zlib -c a.c", true),
            ("gcc -g0 -gno-column-info -c a.c", false),
            ("gcc -gcolumn-info -c a.c", false),
        ] {
            assert_eq!(records_debug_info(&argv(cmd)), want, "{cmd}");
        }
    }

    fn argv(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn only_clang_without_its_own_directory() {
        let cwd = Path::new("/home/u/w");
        for cmd in [
            "clang -g -c a.c",
            "/usr/bin/clang++-14 -c a.cc",
            "x86_64-linux-gnu-clang -c a.c",
        ] {
            assert_eq!(
                clang_option(&argv(cmd), cwd),
                Some(OsString::from("-fdebug-compilation-dir=/home/u/w")),
                "{cmd}"
            );
        }
        for cmd in [
            "gcc -g -c a.c",
            "cc -c a.c",
            "clang -g -fdebug-compilation-dir=. -c a.c",
            "clang -g -fdebug-compilation-dir /x -c a.c",
            "clang -g -ffile-compilation-dir=. -c a.c",
        ] {
            assert_eq!(clang_option(&argv(cmd), cwd), None, "{cmd}");
        }
    }
}
