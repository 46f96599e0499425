//! Cross-compilation rewrites of the compiler name (facts §4.5).
//!
//! A server may have several compilers; sending `cc` or `gcc` could pick the
//! wrong one there. distcc therefore turns `cc`/`c++` into what they link to,
//! `gcc` into the target-qualified `x86_64-linux-gnu-gcc` when that exists
//! here, and gives clang an explicit `-target`. `DISTCC_NO_REWRITE_CROSS`
//! turns it off (the caller checks it).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The GNU host triple distcc reports (`GNU_HOST`), e.g. `x86_64-pc-linux-gnu`.
pub fn gnu_host() -> String {
    let arch = std::env::consts::ARCH;
    let vendor = if matches!(arch, "x86_64" | "x86") {
        "pc"
    } else {
        "unknown"
    };
    format!("{arch}-{vendor}-linux-gnu")
}

/// The Debian-style triple gcc binaries are prefixed with (`-pc-` collapsed).
fn gcc_prefix() -> String {
    gnu_host().replace("-pc-", "-").replace("-unknown-", "-")
}

/// Finds an executable named `name` in the colon-separated `path`.
pub fn find_in_path(name: &OsStr, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = path?;
    for dir in path.as_encoded_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        // SAFETY: a piece of a valid OsStr split at an ASCII colon.
        let candidate = Path::new(unsafe { OsStr::from_encoded_bytes_unchecked(dir) }).join(name);
        if let Ok(meta) = std::fs::metadata(&candidate)
            && meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
        {
            return Some(candidate);
        }
    }
    None
}

/// Whether `compiler` is Clang by its name (`clang`, `clang++-14`,
/// `x86_64-linux-gnu-clang`, a path to one of them).
pub fn named_clang(compiler: &OsStr) -> bool {
    std::path::Path::new(compiler)
        .file_name()
        .is_some_and(|n| n.as_encoded_bytes().windows(5).any(|w| w == b"clang"))
}

/// Whether `compiler` is a C++ driver by name: its file name has `++`
/// (`g++`, `c++`, `clang++`, with a target prefix, a version or other
/// suffix such as `g++-12`, `clang++-14`, MinGW's `g++-posix`, or a
/// directory). Such a driver compiles `.c` (and `.i`) files as C++.
pub fn cxx_driver(compiler: &OsStr) -> bool {
    std::path::Path::new(compiler)
        .file_name()
        .is_some_and(|n| n.as_encoded_bytes().windows(2).any(|w| w == b"++"))
}

/// Whether the driver's name says it compiles `.c` and `.i` as C: `gcc`,
/// `cc` or `clang`, with a target before it (`x86_64-linux-gnu-gcc`) and a
/// version after it (`gcc-12`, `clang-14`) or not.
pub fn c_driver(compiler: &OsStr) -> bool {
    let Some(name) = std::path::Path::new(compiler).file_name() else {
        return false;
    };
    let name = name.as_encoded_bytes();
    // Without a trailing version (`-12`, `-14.0`).
    let base = match name.iter().rposition(|&b| b == b'-') {
        Some(dash)
            if dash + 1 < name.len()
                && name[dash + 1..]
                    .iter()
                    .all(|b| b.is_ascii_digit() || *b == b'.') =>
        {
            &name[..dash]
        }
        _ => name,
    };
    [&b"gcc"[..], b"cc", b"clang"]
        .iter()
        .any(|d| base == *d || (base.ends_with(d) && base[base.len() - d.len() - 1] == b'-'))
}

/// Applies the rewrites to argv in place.
pub fn rewrite_cross(argv: &mut Vec<OsString>, path_env: Option<&OsStr>) {
    let Some(compiler) = argv.first().cloned() else {
        return;
    };
    let name = compiler.to_string_lossy().into_owned();
    if (name == "cc" || name == "c++")
        && let Some(real) = resolve_alias(&compiler, path_env)
    {
        let ok = if name == "cc" {
            real == "gcc" || real == "clang"
        } else {
            real == "g++" || real == "clang++"
        };
        if ok {
            log::debug!("rewriting '{name}' to '{real}'");
            argv[0] = OsString::from(real);
        }
    }
    let name = argv[0].to_string_lossy().into_owned();
    let is_clang = name == "clang"
        || name == "clang++"
        || name.starts_with("clang-")
        || name.starts_with("clang++-");
    if is_clang {
        let has_target = argv
            .iter()
            .any(|a| a == "-target" || a.as_encoded_bytes().starts_with(b"--target"));
        if !has_target {
            argv.push(OsString::from("-target"));
            argv.push(OsString::from(gnu_host()));
        }
        return;
    }
    let is_gcc =
        name == "gcc" || name == "g++" || name.starts_with("gcc-") || name.starts_with("g++-");
    if is_gcc {
        let qualified = format!("{}-{name}", gcc_prefix());
        if find_in_path(OsStr::new(&qualified), path_env).is_some() {
            log::debug!("rewriting '{name}' to '{qualified}'");
            argv[0] = OsString::from(qualified);
        }
    }
}

/// What `cc`/`c++` on PATH links to: the link's file name, following one
/// more hop through `/etc/alternatives`.
fn resolve_alias(name: &OsStr, path_env: Option<&OsStr>) -> Option<String> {
    let found = find_in_path(name, path_env)?;
    let mut target = std::fs::read_link(&found).ok()?;
    if target.starts_with("/etc/alternatives/")
        && let Ok(next) = std::fs::read_link(&target)
    {
        target = next;
    }
    Some(target.file_name()?.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn cxx_drivers_by_name() {
        for name in [
            "g++",
            "c++",
            "clang++",
            "g++-12",
            "/usr/bin/clang++-14",
            "x86_64-linux-gnu-g++-12",
            "x86_64-w64-mingw32-g++-posix",
        ] {
            assert!(cxx_driver(OsStr::new(name)), "{name}");
        }
        for name in [
            "gcc",
            "cc",
            "clang-14",
            "gcc-12",
            "x86_64-linux-gnu-gcc",
            "/opt/g++/bin/gcc",
            "",
        ] {
            assert!(!cxx_driver(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn clang_gets_target_once() {
        let mut a = argv("clang -c x.c");
        rewrite_cross(&mut a, None);
        assert_eq!(a[a.len() - 2], "-target");
        assert_eq!(a[a.len() - 1], OsString::from(gnu_host()));
        let mut b = argv("clang++-14 --target=aarch64-linux-gnu -c x.c");
        rewrite_cross(&mut b, None);
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn gcc_is_qualified_when_available() {
        let dir = std::env::temp_dir().join(format!("dcc-cross-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join(format!("{}-gcc", gcc_prefix()));
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("gcc", dir.join("cc")).unwrap();
        let path = dir.as_os_str().to_os_string();
        let mut a = argv("gcc -c x.c");
        rewrite_cross(&mut a, Some(&path));
        assert_eq!(a[0], OsString::from(format!("{}-gcc", gcc_prefix())));
        let mut b = argv("g++ -c x.cc");
        rewrite_cross(&mut b, Some(&path));
        assert_eq!(b[0], "g++", "no qualified g++ in this PATH");
        let mut c = argv("cc -c x.c");
        std::fs::write(dir.join("gcc"), "").unwrap();
        std::fs::set_permissions(dir.join("gcc"), std::fs::Permissions::from_mode(0o755)).unwrap();
        rewrite_cross(&mut c, Some(&path));
        assert_eq!(c[0], OsString::from(format!("{}-gcc", gcc_prefix())));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
