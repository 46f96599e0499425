//! `distcc --install-links [--compilers] DIR`: makes the links that turn
//! the one binary into every program.
//!
//! Without `--compilers`, DIR gets the applet links (`distcc`, `distccd`,
//! `pump` and Debian's name for it `distcc-pump`, `lsdistcc`,
//! `include-server`, `distccmon-text`). With it, DIR gets
//! a masquerade link for every compiler found on PATH, as Debian's
//! `update-distcc-symlinks` makes them in /usr/lib/distcc: put DIR first on
//! PATH and `make` runs distcc whenever it runs `gcc`; the daemon uses the
//! same directory as its compiler allow-list (facts §5.3). Every link points
//! at this binary and is replaced atomically (new link, then rename), so
//! running it again is safe.

use distcc::applet::{Invocation, LINK_NAMES};
use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs the applet.
pub fn main(inv: Invocation) -> Result<ExitCode> {
    let mut compilers = false;
    let mut dir: Option<PathBuf> = None;
    for arg in &inv.args {
        if arg == "--compilers" {
            compilers = true;
        } else if arg.to_str().is_some_and(|a| a.starts_with('-')) || dir.is_some() {
            return Err(usage(format!(
                "unexpected argument {}",
                arg.to_string_lossy()
            )));
        } else {
            dir = Some(PathBuf::from(arg));
        }
    }
    let dir = dir.ok_or_else(|| usage("no directory given".into()))?;
    let target = std::env::current_exe().map_err(|e| Error::io("finding this program", e))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let names = if compilers {
        compilers_on_path(std::env::var_os("PATH").unwrap_or_default(), &target, &dir)
    } else {
        LINK_NAMES.iter().map(|n| n.to_string()).collect()
    };
    for name in &names {
        link(&target, &dir.join(name))?;
    }
    log::info!("{} links in {}", names.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}

fn usage(why: String) -> Error {
    Error::new(
        Kind::BadArguments,
        format!("{why}; usage: distcc --install-links [--compilers] DIR"),
    )
}

/// Creates or replaces the symlink `at` -> `target`. Only a symlink is ever
/// replaced: a real file of that name is left alone and reported.
fn link(target: &Path, at: &Path) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(at)
        && !meta.file_type().is_symlink()
    {
        // The binary itself, installed under this name (`~/bin/distcc
        // --install-links ~/bin`): already what the link would be.
        if std::fs::metadata(target).is_ok_and(|t| t.dev() == meta.dev() && t.ino() == meta.ino()) {
            return Ok(());
        }
        return Err(Error::new(
            Kind::Failed,
            format!(
                "{} exists and is not a symlink; not replacing it",
                at.display()
            ),
        ));
    }
    let name = at.file_name().unwrap_or_default().to_string_lossy();
    let tmp = at.with_file_name(format!(".{name}.link-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .map_err(|e| Error::io(format!("creating link {}", tmp.display()), e))?;
    std::fs::rename(&tmp, at).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("installing link {}", at.display()), e)
    })
}

/// Whether `name` is a compiler distcc should masquerade as: `cc`, `c++`,
/// `gcc`, `g++`, `c89-gcc`, `c99-gcc`, `clang`, `clang++`, each optionally
/// with a `-VERSION` suffix and a `<cpu>-<vendor/os>-...-` target prefix
/// (`x86_64-linux-gnu-gcc-12`). Tools like `gcc-ar-12` are not compilers.
pub fn is_compiler_name(name: &str) -> bool {
    const BASES: &[&str] = &["gcc", "g++", "clang", "clang++"];
    if ["cc", "c++", "c89-gcc", "c99-gcc"].contains(&name) {
        return true;
    }
    // Strip a version suffix: -12, -12.2, -16.0.1.
    let unversioned = match name.rsplit_once('-') {
        Some((head, ver))
            if !ver.is_empty()
                && ver.starts_with(|c: char| c.is_ascii_digit())
                && ver.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            head
        }
        _ => name,
    };
    BASES.iter().any(|base| {
        if unversioned == *base {
            return true;
        }
        // A target prefix has at least one dash: x86_64-linux-gnu-gcc,
        // arm-none-eabi-gcc.
        unversioned
            .strip_suffix(base)
            .and_then(|p| p.strip_suffix('-'))
            .is_some_and(|triplet| {
                triplet.matches('-').count() >= 1
                    && triplet
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            })
    })
}

/// Compiler names found in the PATH directories (executables only), except
/// DIR itself and links that already lead to this binary elsewhere.
fn compilers_on_path(path: OsString, us: &Path, dir: &Path) -> Vec<String> {
    let us = std::fs::canonicalize(us).unwrap_or_else(|_| us.to_path_buf());
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut found = std::collections::BTreeSet::new();
    for entry_dir in std::env::split_paths(&path) {
        let canon = std::fs::canonicalize(&entry_dir).unwrap_or_else(|_| entry_dir.clone());
        if canon == dir {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&entry_dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_compiler_name(&name) {
                continue;
            }
            let full = entry.path();
            let executable = std::fs::metadata(&full)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            let is_us = std::fs::canonicalize(&full).is_ok_and(|p| p == us);
            if executable && !is_us {
                found.insert(name);
            }
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiler_names() {
        for yes in [
            "cc",
            "c++",
            "gcc",
            "g++",
            "gcc-12",
            "g++-12",
            "c89-gcc",
            "c99-gcc",
            "x86_64-linux-gnu-gcc",
            "x86_64-linux-gnu-gcc-12",
            "x86_64-linux-gnu-g++-12",
            "aarch64-linux-gnu-gcc-12.2",
            "clang",
            "clang++",
            "clang-16",
            "clang++-16",
            "x86_64-pc-linux-gnu-clang",
        ] {
            assert!(is_compiler_name(yes), "{yes}");
        }
        for no in [
            "gcc-ar",
            "gcc-ar-12",
            "gcc-nm-12",
            "x86_64-linux-gnu-gcc-ranlib-12",
            "x86_64-linux-gnu-gcc-ar",
            "gccgo",
            "clang-format",
            "cpp",
            "ld",
            "-gcc",
            "distcc",
            "gcc-",
        ] {
            assert!(!is_compiler_name(no), "{no}");
        }
    }
}
