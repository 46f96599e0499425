//! Asking the compiler what it knows: default include directories and
//! predefined macros.
//!
//! One probe per (compiler, language, flags that matter) runs
//! `<compiler> <flags> -x LANG -v -dM -E /dev/null`: stderr lists the search
//! directories (between `#include <...> search starts here:` and `End of
//! search list.`), stdout the `#define`s. The result is kept in the shared
//! cache ([`super::cache::Cache::compilers`]) for the life of the server.

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

/// The probe result for `cmd` run from `cwd`, probing at most once.
pub fn info(cache: &Cache, cmd: &Command, cwd: &Path) -> Result<Arc<CompilerInfo>> {
    let lang = cmd.lang.unwrap_or(Lang::C);
    let mut compiler = cmd.compiler.clone();
    if compiler.as_bytes().contains(&b'/') && !compiler.as_bytes().starts_with(b"/") {
        compiler = cwd.join(&compiler).into_os_string();
    }
    let mut key = vec![compiler.clone(), OsString::from(lang.name())];
    key.extend(cmd.probe_flags.iter().cloned());
    if let Some(found) = cache.compilers.find(&key, |_| true) {
        return Ok(found.clone());
    }
    let info = Arc::new(probe(&compiler, lang, &cmd.probe_flags, cwd)?);
    cache.compilers.insert(key, info.clone());
    Ok(info)
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
    let (quote_dirs, angle_dirs) = parse_search_list(&out.stderr)?;
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
/// a directory that cannot be resolved makes the compiler unusable).
pub fn parse_search_list(stderr: &[u8]) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
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
            let Ok(real) = std::fs::canonicalize(path) else {
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
        let (q, a) = parse_search_list(text).expect("parses");
        assert!(q.is_empty());
        assert_eq!(a, vec![PathBuf::from("/usr/include")]);
        assert!(parse_search_list(b"nothing").is_err());
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
}
