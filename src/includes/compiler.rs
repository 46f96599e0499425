//! Asking the compiler what it knows: default include directories and
//! predefined macros.
//!
//! One probe per (compiler, language, flags that matter) runs
//! `<compiler> <flags> -x LANG -v -dM -E /dev/null`: stderr lists the search
//! directories (between `#include <...> search starts here:` and `End of
//! search list.`), stdout the `#define`s. The result is kept in the shared
//! cache ([`super::cache::Cache::compilers`]) under the identity of the
//! compiler the name leads to now (through `PATH` and symlinks: its
//! canonical path, inode, size and mtime), so a compiler upgraded or
//! switched (`update-alternatives`) while a long-lived server runs is
//! probed again.

use super::cache::Cache;
use super::command::{Command, Lang};
use super::macros::{Base, Env, Macro, parse_define};
use crate::error::{Error, Kind, Result};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

/// What a compiler reports for one configuration.
#[derive(Debug)]
pub struct CompilerInfo {
    /// Default `#include "..."`-only directories (rare; from the environment).
    pub quote_dirs: Vec<PathBuf>,
    /// Default `#include <...>` directories, canonical, in search order.
    pub angle_dirs: Vec<PathBuf>,
    /// Predefined macros.
    pub macros: Vec<(Vec<u8>, Arc<Macro>)>,
    /// The same, as the shared base of every request's environment.
    pub base_env: Arc<Base>,
}

impl CompilerInfo {
    /// Whether the compiler is Clang (it predefines `__clang__`).
    pub fn clang(&self) -> bool {
        self.macros
            .iter()
            .any(|(n, _)| n.as_slice() == b"__clang__")
    }
}

/// The probe result for `cmd` run from `cwd`, probing at most once.
pub fn info(cache: &Cache, cmd: &Command, cwd: &Path) -> Result<Arc<CompilerInfo>> {
    let lang = cmd.lang.unwrap_or(Lang::C);
    let mut compiler = cmd.compiler.clone();
    if compiler.as_bytes().contains(&b'/') && !compiler.as_bytes().starts_with(b"/") {
        compiler = cwd.join(&compiler).into_os_string();
    }
    let mut key = vec![compiler.clone(), OsString::from(lang.name())];
    key.extend(cmd.probe_flags.iter().cloned());
    key.push(identity(&compiler, cwd));
    if relative_paths(&cmd.probe_flags) {
        // The compiler's directories are then the client's directory's.
        key.push(cwd.as_os_str().to_owned());
    }
    if let Some(found) = cache.compilers.find(&key, |_| true) {
        return Ok(found.clone());
    }
    let info = Arc::new(probe(&compiler, lang, &cmd.probe_flags, cwd)?);
    cache.compilers.insert(key, info.clone());
    Ok(info)
}

/// Whether a probe flag names a relative directory (`--sysroot=sr`,
/// `-isysroot sr`, `-B dir`, `-iprefix dir/`): the compiler resolves it
/// from its working directory, so its default directories depend on it.
fn relative_paths(flags: &[OsString]) -> bool {
    let mut after_b = false;
    flags.iter().any(|f| {
        let f = f.as_bytes();
        let value = if std::mem::take(&mut after_b) {
            Some(f)
        } else if f == b"-B" {
            after_b = true;
            None
        } else {
            ["--sysroot=", "-isysroot", "-iprefix", "-B"]
                .iter()
                .find_map(|o| f.strip_prefix(o.as_bytes()))
        };
        value.is_some_and(|v| !v.is_empty() && !v.starts_with(b"/"))
    })
}

/// What `compiler` names now: the canonical path and version of the file
/// it leads to (found on `PATH` when it has no `/`), or nothing.
fn identity(compiler: &OsString, cwd: &Path) -> OsString {
    let found = if compiler.as_bytes().contains(&b'/') {
        Some(cwd.join(compiler))
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| cwd.join(dir).join(compiler))
                .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        })
    };
    let Some(found) = found else {
        return OsString::new();
    };
    let (Ok(real), Ok(meta)) = (std::fs::canonicalize(&found), std::fs::metadata(&found)) else {
        return OsString::new();
    };
    let id = super::cache::FileId::of(&meta);
    let mut out = real.into_os_string();
    out.push(format!("\0{}:{}:{}:{}", id.dev, id.ino, id.size, id.mtime));
    out
}

fn probe(compiler: &OsString, lang: Lang, flags: &[OsString], cwd: &Path) -> Result<CompilerInfo> {
    let out = std::process::Command::new(compiler)
        .args(flags)
        .args(["-x", lang.name(), "-v", "-dM", "-E", "/dev/null"])
        .current_dir(cwd)
        // These make the preprocessor write a dependency file: a probe must
        // not overwrite the user's.
        .env_remove("DEPENDENCIES_OUTPUT")
        .env_remove("SUNPRO_DEPENDENCIES")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("run {}", Path::new(compiler).display()), e))?;
    if !out.status.success() {
        return Err(Error::new(
            Kind::Failed,
            format!(
                "{} -v -dM -E failed: {}",
                Path::new(compiler).display(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ),
        ));
    }
    let (quote_dirs, angle_dirs) = parse_search_list(&out.stderr, cwd)?;
    let macros: Vec<(Vec<u8>, Arc<Macro>)> = out
        .stdout
        .split(|&c| c == b'\n')
        .filter_map(|l| l.strip_prefix(b"#define "))
        .filter_map(parse_define)
        .map(|(n, m)| (n, Arc::new(m)))
        .collect();
    let mut env = Env::default();
    for (n, m) in &macros {
        env.define(n, m.clone(), false);
    }
    Ok(CompilerInfo {
        quote_dirs,
        angle_dirs,
        macros,
        base_env: Arc::new(env.into_base()),
    })
}

/// Parses the `-v` search list; each directory is canonicalised (facts §3:
/// a directory that cannot be resolved makes the compiler unusable), a
/// relative one from `cwd`, where the compiler ran.
pub fn parse_search_list(stderr: &[u8], cwd: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut quote = Vec::new();
    let mut angle = Vec::new();
    let mut section = 0;
    let mut ended = false;
    for line in stderr.split(|&c| c == b'\n') {
        if line.starts_with(b"#include \"...\" search starts here:") {
            section = 1;
        } else if line.starts_with(b"#include <...> search starts here:") {
            section = 2;
        } else if line.starts_with(b"End of search list.") {
            ended = true;
            break;
        } else if section > 0 && line.starts_with(b" ") {
            let dir = &line[1..];
            if dir.ends_with(b" (framework directory)") {
                continue;
            }
            let path = Path::new(std::ffi::OsStr::from_bytes(dir));
            let Ok(real) = std::fs::canonicalize(cwd.join(path)) else {
                continue;
            };
            if section == 1 {
                quote.push(real);
            } else {
                angle.push(real);
            }
        }
    }
    if !ended {
        return Err(Error::new(
            Kind::Failed,
            "compiler did not print its include search list",
        ));
    }
    Ok((quote, angle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_list() {
        let text = b"ignoring nonexistent directory \"/nope\"\n\
#include \"...\" search starts here:\n\
#include <...> search starts here:\n /usr/include\n /nonexistent/dir\n /System (framework directory)\n\
End of search list.\n";
        let (q, a) = parse_search_list(text, Path::new("/")).expect("parses");
        assert!(q.is_empty());
        assert_eq!(a, vec![PathBuf::from("/usr/include")]);
        assert!(parse_search_list(b"nothing", Path::new("/")).is_err());
    }

    #[test]
    fn probes_gcc_once() {
        let cache = Cache::new();
        let cmd = super::super::command::parse(&[
            OsString::from("gcc"),
            OsString::from("-c"),
            OsString::from("x.c"),
        ])
        .expect("parses");
        let a = info(&cache, &cmd, Path::new("/")).expect("probe");
        assert!(a.angle_dirs.contains(&PathBuf::from("/usr/include")));
        assert!(a.macros.iter().any(|(n, _)| n == b"__GNUC__"));
        let b = info(&cache, &cmd, Path::new("/")).expect("probe");
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn a_relative_sysroot_is_resolved_where_the_compiler_runs() {
        // `gcc --sysroot=sr -v` prints `sr/usr/include`: relative to the
        // client's directory, not the server's, and so different in each.
        let d = std::env::temp_dir().join(format!("probe-relsysroot-{}", std::process::id()));
        for w in ["one", "two"] {
            std::fs::create_dir_all(d.join(w).join("sr/usr/include")).unwrap();
        }
        let cache = Cache::new();
        let cmd = super::super::command::parse(&[
            OsString::from("gcc"),
            OsString::from("--sysroot=sr"),
            OsString::from("-c"),
            OsString::from("x.c"),
        ])
        .expect("parses");
        for w in ["one", "two"] {
            let cwd = d.join(w);
            let got = info(&cache, &cmd, &cwd).expect("probe");
            let want = std::fs::canonicalize(cwd.join("sr/usr/include")).unwrap();
            assert!(got.angle_dirs.contains(&want), "{w}: {:?}", got.angle_dirs);
            assert!(Arc::ptr_eq(&got, &info(&cache, &cmd, &cwd).expect("probe")));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_compiler_replaced_under_its_name_is_probed_again() {
        let d = std::env::temp_dir().join(format!("probe-swap-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let cc = d.join("cc");
        let fake = |value: u32| {
            // A "compiler" whose macro says which one answered.
            let text = format!(
                "#!/bin/sh\necho '#define WHICH {value}'\n\
                 printf '#include <...> search starts here:\\n /usr/include\\nEnd of search list.\\n' >&2\n"
            );
            let tmp = d.join("cc.new");
            std::fs::write(&tmp, text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, &cc).unwrap();
        };
        let which = |info: &CompilerInfo| {
            info.macros
                .iter()
                .find(|(n, _)| n == b"WHICH")
                .map(|(_, m)| String::from_utf8_lossy(&m.body[0].text).into_owned())
        };
        let cache = Cache::new();
        let argv = [cc.clone().into_os_string(), "-c".into(), "x.c".into()];
        let cmd = super::super::command::parse(&argv).expect("parses");
        fake(1);
        let a = info(&cache, &cmd, &d).expect("probe");
        assert_eq!(which(&a).as_deref(), Some("1"));
        assert!(Arc::ptr_eq(&a, &info(&cache, &cmd, &d).expect("probe")));
        fake(2);
        let b = info(&cache, &cmd, &d).expect("probe");
        assert_eq!(which(&b).as_deref(), Some("2"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
