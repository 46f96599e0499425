//! The compiler command the daemon actually runs, built from the client's
//! argv: the daemon's own input, output and dependency paths substituted,
//! and for protocol 3 the include paths re-rooted (facts §1.10.2).
//!
//! The client's `-MF` is always dropped: the server decides where
//! dependencies go. For protocol 3 the first separate `-MT t` pair is
//! removed and `t` becomes the .d target, `-MMD` is added when neither
//! `-MD` nor `-MMD` is present, and `-MF <job>/deps.d` is appended. Unlike
//! stock, a command that names more than one target keeps all of them
//! (stock loses the first: the compiler then names only the others).

use distcc::args::policy::{OutputArg, Shape};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// The command to run and what the reply needs to know about it.
#[derive(Debug, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<OsString>,
    /// Protocol 3: the .d target the client expects.
    pub dotd_target: Option<Vec<u8>>,
}

/// Include options whose absolute paths are re-rooted, in stock's order
/// (so `-iwithprefixbefore` is matched by `-iwithprefix` and never rewritten).
const INCLUDE_OPTIONS: &[&str] = &[
    "-I",
    "-include",
    "-imacros",
    "-idirafter",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-isystem",
    "-iquote",
];

fn os(bytes: Vec<u8>) -> OsString {
    OsString::from_vec(bytes)
}

fn rooted(root: &Path, path: &[u8]) -> OsString {
    let mut v = root.as_os_str().as_bytes().to_vec();
    let trimmed = &path[path.iter().take_while(|&&b| b == b'/').count()..];
    v.push(b'/');
    v.extend_from_slice(trimmed);
    os(v)
}

/// What replaces the client's source argument.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// v1/v2: the daemon's copy of the preprocessed source.
    Path(&'a Path),
    /// v1/v2: the preprocessed source on stdin, `-x LANG -`.
    Stdin(&'static str),
    /// v3: the client's own path (re-rooted if absolute).
    Client,
}

/// Builds the command.
pub fn build(
    argv: &[OsString],
    shape: &Shape,
    input: Source,
    output: &Path,
    deps: &Path,
    root: Option<&Path>,
) -> Command {
    let mut out: Vec<OsString> = Vec::with_capacity(argv.len() + 4);
    let mut target = None;
    let mut client_output: Option<Vec<u8>> = None;
    let mut has_md = false;
    // With several targets the compiler names them all itself.
    let take_target = distcc::args::dotd::target_options(argv) < 2;
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i].as_bytes();
        if i == shape.input && i > 0 {
            match (input, root) {
                (Source::Path(p), _) => out.push(p.as_os_str().to_owned()),
                (Source::Stdin(lang), _) => out.extend(["-x".into(), lang.into(), "-".into()]),
                (Source::Client, Some(r)) if arg.starts_with(b"/") => out.push(rooted(r, arg)),
                _ => out.push(argv[i].clone()),
            }
            i += 1;
            continue;
        }
        match shape.output {
            Some(OutputArg::Separate(at)) if at == i + 1 => {
                client_output = Some(argv[at].as_bytes().to_vec());
                out.push("-o".into());
                out.push(output.as_os_str().to_owned());
                i += 2;
                continue;
            }
            Some(OutputArg::Glued(at)) if at == i => {
                client_output = Some(arg[2..].to_vec());
                out.push("-o".into());
                out.push(output.as_os_str().to_owned());
                i += 1;
                continue;
            }
            _ => {}
        }
        if i > 0 && arg == b"-MF" {
            i += 2;
            continue;
        }
        if i > 0 && arg.starts_with(b"-MF") {
            i += 1;
            continue;
        }
        if let Some(r) = root {
            if take_target && arg == b"-MT" && target.is_none() && i + 1 < argv.len() {
                target = Some(argv[i + 1].as_bytes().to_vec());
                i += 2;
                continue;
            }
            if arg == b"-MD" || arg == b"-MMD" {
                has_md = true;
            }
            if let Some(opt) = INCLUDE_OPTIONS
                .iter()
                .find(|o| arg.starts_with(o.as_bytes()))
            {
                if arg == opt.as_bytes() {
                    out.push(argv[i].clone());
                    if let Some(next) = argv.get(i + 1) {
                        let n = next.as_bytes();
                        out.push(if n.starts_with(b"/") {
                            rooted(r, n)
                        } else {
                            next.clone()
                        });
                    }
                    i += 2;
                    continue;
                }
                let rest = &arg[opt.len()..];
                if rest.starts_with(b"/") {
                    let mut v = opt.as_bytes().to_vec();
                    v.extend_from_slice(rooted(r, rest).as_bytes());
                    out.push(os(v));
                    i += 1;
                    continue;
                }
            }
        }
        out.push(argv[i].clone());
        i += 1;
    }
    if shape.output.is_none() {
        out.push("-o".into());
        out.push(output.as_os_str().to_owned());
    }
    let dotd_target = root.map(|_| {
        if !has_md {
            out.push("-MMD".into());
        }
        out.push("-MF".into());
        out.push(deps.as_os_str().to_owned());
        target
            .or(client_output)
            .unwrap_or_else(|| default_object(argv[shape.input].as_os_str()))
    });
    Command {
        argv: out,
        dotd_target,
    }
}

/// `dir/name.c` -> `name.o` (the object a compile without `-o` writes).
fn default_object(source: &OsStr) -> Vec<u8> {
    let name = Path::new(source)
        .file_name()
        .map_or(&b"a"[..], |n| n.as_bytes());
    let stem = match name.iter().rposition(|&b| b == b'.') {
        Some(d) if d > 0 => &name[..d],
        _ => name,
    };
    let mut v = stem.to_vec();
    v.extend_from_slice(b".o");
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use distcc::args::policy::check;

    fn argv(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    fn words(v: &[OsString]) -> String {
        v.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn plain_substitution() {
        let a = argv("gcc -c hello.c -o hello.o -MF x.d -O2");
        let shape = check(&a).unwrap();
        let c = build(
            &a,
            &shape,
            Source::Path(Path::new("/j/in.i")),
            Path::new("/j/out.o"),
            Path::new("/j/deps.d"),
            None,
        );
        assert_eq!(words(&c.argv), "gcc -c /j/in.i -o /j/out.o -O2");
        assert_eq!(c.dotd_target, None);
        let a = argv("gcc -c hello.c -ohello.o");
        let c = build(
            &a,
            &check(&a).unwrap(),
            Source::Path(Path::new("/j/in.i")),
            Path::new("/j/out.o"),
            Path::new("/j/d"),
            None,
        );
        assert_eq!(words(&c.argv), "gcc -c /j/in.i -o /j/out.o");
        let c = build(
            &a,
            &check(&a).unwrap(),
            Source::Stdin("cpp-output"),
            Path::new("/j/out.o"),
            Path::new("/j/d"),
            None,
        );
        assert_eq!(words(&c.argv), "gcc -c -x cpp-output - -o /j/out.o");
    }

    /// The protocol-3 command for `line` under the root `/j/root`.
    fn pump_build(line: &str) -> Command {
        let a = argv(line);
        build(
            &a,
            &check(&a).unwrap(),
            Source::Client,
            Path::new("/j/out.o"),
            Path::new("/j/deps.d"),
            Some(Path::new("/j/root")),
        )
    }

    #[test]
    fn pump_rewrite_as_stock() {
        let c = pump_build(
            "gcc -c hello.c -o hello.o -I/home/u/inc -isystem /usr/x -iquote rel -MT tgt -g",
        );
        assert_eq!(
            words(&c.argv),
            "gcc -c hello.c -o /j/out.o -I/j/root/home/u/inc -isystem /j/root/usr/x -iquote rel -g -MMD -MF /j/deps.d"
        );
        assert_eq!(c.dotd_target.as_deref(), Some(&b"tgt"[..]));
        // Several targets: all stay for the compiler (stock drops `tgt`).
        let c = pump_build("gcc -c hello.c -o hello.o -MT tgt -MQ second");
        assert_eq!(
            words(&c.argv),
            "gcc -c hello.c -o /j/out.o -MT tgt -MQ second -MMD -MF /j/deps.d"
        );
        let c = pump_build("gcc -c /home/u/hello.c -o hello.o -MD -MF hello.d");
        assert_eq!(
            words(&c.argv),
            "gcc -c /j/root/home/u/hello.c -o /j/out.o -MD -MF /j/deps.d"
        );
        assert_eq!(c.dotd_target.as_deref(), Some(&b"hello.o"[..]));
    }
}
