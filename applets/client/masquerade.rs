//! Masquerade mode: our binary installed as `gcc`, `cc`, `g++`, ... early on PATH.
//!
//! To run the real compiler we must not find ourselves again, so the PATH
//! element we were found in and every element before it are removed
//! (facts §4.6): if argv[0] contains a `/`, the element equal to its
//! directory; otherwise the first element holding an executable of that
//! name. The recursion safeguard (`_DISTCC_SAFEGUARD`) catches the cases
//! trimming cannot (two copies of us on PATH): see [`check_recursion`].

use distcc::{Error, Kind, Result};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Result of trimming PATH for a masquerade call.
#[derive(Debug, PartialEq, Eq)]
pub struct Trimmed {
    /// The compiler name to run (argv[0]'s basename).
    pub compiler: OsString,
    /// The new PATH, if an element was removed.
    pub path: Option<OsString>,
}

fn same_dir(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Works out the compiler name and the trimmed PATH for `argv0`.
pub fn trim(argv0: &OsStr, path: Option<&OsStr>) -> Trimmed {
    let p = Path::new(argv0);
    let compiler = p
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| argv0.to_os_string());
    let Some(path) = path else {
        return Trimmed {
            compiler,
            path: None,
        };
    };
    let elements: Vec<&[u8]> = path.as_bytes().split(|&b| b == b':').collect();
    let has_slash = argv0.as_bytes().contains(&b'/');
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
    let hit = elements.iter().position(|e| {
        let e = Path::new(OsStr::from_bytes(if e.is_empty() { b"." } else { e }));
        if has_slash {
            dir.is_some_and(|d| same_dir(e, d))
        } else {
            is_executable(&e.join(&compiler))
        }
    });
    let path = hit.map(|i| OsString::from(OsStr::from_bytes(&elements[i + 1..].join(&b':'))));
    Trimmed { compiler, path }
}

/// distcc 3.4's recursion rule: `level − (1 if PATH was trimmed) > 0` is an error (exit 111).
pub fn check_recursion(level: u32, trimmed: bool) -> Result<()> {
    if level.saturating_sub(u32::from(trimmed)) > 0 {
        return Err(Error::new(
            Kind::Recursion,
            "distcc seems to have invoked itself recursively!",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_up_to_our_dir() {
        let t = trim(
            OsStr::new("/opt/dcc/gcc"),
            Some(OsStr::new("/a:/opt/dcc:/usr/bin:/bin")),
        );
        assert_eq!(t.compiler, "gcc");
        assert_eq!(t.path, Some(OsString::from("/usr/bin:/bin")));
        let t = trim(OsStr::new("/elsewhere/gcc"), Some(OsStr::new("/usr/bin")));
        assert_eq!(t.path, None);
    }

    #[test]
    fn bare_name_is_looked_up() {
        let t = trim(
            OsStr::new("sh"),
            Some(OsStr::new("/nonexistent:/bin:/usr/bin")),
        );
        assert_eq!(t.path, Some(OsString::from("/usr/bin")));
    }

    #[test]
    fn recursion_rule() {
        assert!(check_recursion(0, false).is_ok());
        assert!(check_recursion(1, true).is_ok());
        assert_eq!(
            check_recursion(1, false).unwrap_err().kind(),
            Kind::Recursion
        );
        assert_eq!(
            check_recursion(2, true).unwrap_err().kind(),
            Kind::Recursion
        );
    }
}
