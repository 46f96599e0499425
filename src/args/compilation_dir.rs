//! The compilation directory of a Clang compile in plain mode.
//!
//! GCC takes the working directory for its debug information from the
//! preprocessed source (the `# 1 "/dir//"` line marker `-E -g` writes).
//! Clang does not: a plain-mode compile on a server records the server's
//! directory, and gdb then cannot find the relative source names in the
//! object. The client names its own directory, as a local Clang would
//! record it, with `-fdebug-compilation-dir`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
