//! Parsing a compiler command line for include analysis.
//!
//! The include server receives the compiler argv from the client (facts
//! §2.1) and needs from it: the one source file and its language, the
//! search directories, the forced includes, the `-D`/`-U` operations in
//! order, and the options that change the compiler's predefined macros or
//! default directories (passed on to the probe in [`super::compiler`]).
//! Arguments are bytes (`OsString`): nothing is decoded.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The source language, which selects default directories and macros.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    /// C.
    C,
    /// C++.
    Cxx,
    /// Objective-C.
    ObjC,
    /// Objective-C++.
    ObjCxx,
}

impl Lang {
    /// The `-x` name of the language.
    pub fn name(self) -> &'static str {
        match self {
            Lang::C => "c",
            Lang::Cxx => "c++",
            Lang::ObjC => "objective-c",
            Lang::ObjCxx => "objective-c++",
        }
    }

    /// Whether `true`/`false` are keywords in `#if`.
    pub fn is_cplusplus(self) -> bool {
        matches!(self, Lang::Cxx | Lang::ObjCxx)
    }

    fn from_x(name: &[u8]) -> Option<Lang> {
        let base = name.strip_suffix(b"-header").unwrap_or(name);
        match base {
            b"c" | b"cpp-output" => Some(Lang::C),
            b"c++" | b"c++-cpp-output" => Some(Lang::Cxx),
            b"objective-c" | b"objc-cpp-output" => Some(Lang::ObjC),
            b"objective-c++" | b"objective-c++-cpp-output" => Some(Lang::ObjCxx),
            _ => None,
        }
    }

    fn from_suffix(path: &[u8]) -> Option<Lang> {
        let dot = path.iter().rposition(|&c| c == b'.')?;
        match &path[dot + 1..] {
            b"c" | b"i" => Some(Lang::C),
            b"cc" | b"cpp" | b"cxx" | b"C" | b"CXX" | b"ii" | b"c++" | b"cp" | b"CPP" => {
                Some(Lang::Cxx)
            }
            b"m" | b"mi" => Some(Lang::ObjC),
            b"mm" | b"M" | b"mii" => Some(Lang::ObjCxx),
            _ => None,
        }
    }
}

/// A `-D` or `-U`, in command-line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacroOp {
    /// `-DNAME[=VALUE]`, as the text of an equivalent `#define`.
    Define(Vec<u8>),
    /// `-UNAME`.
    Undef(Vec<u8>),
}

/// What include analysis needs from a compiler command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// argv[0].
    pub compiler: OsString,
    /// The source file as given.
    pub source: PathBuf,
    /// Its language.
    pub lang: Option<Lang>,
    /// `-iquote` directories.
    pub quote_dirs: Vec<PathBuf>,
    /// `-I` directories.
    pub include_dirs: Vec<PathBuf>,
    /// `-isystem` directories.
    pub system_dirs: Vec<PathBuf>,
    /// `-idirafter` directories.
    pub after_dirs: Vec<PathBuf>,
    /// `-imacros` files, in order.
    pub imacros: Vec<PathBuf>,
    /// `-include` files, in order.
    pub includes: Vec<PathBuf>,
    /// `-D`/`-U` in order.
    pub macro_ops: Vec<MacroOp>,
    /// `-fmax-include-depth=N` (GCC's default, 200, when absent).
    pub max_include_depth: Option<usize>,
    /// Trigraphs may be replaced: `-trigraphs`, or a strict ISO `-std=`
    /// that has them (C before C23, C++ before C++17).
    pub trigraphs: bool,
    /// Options passed on to the compiler probe (they may change predefined
    /// macros or default directories: `-m*`, `-f*`, `-O*`, `-std=`,
    /// `--sysroot`, `-nostdinc`, ...).
    pub probe_flags: Vec<OsString>,
}

/// Options whose argument is the next word (facts §3).
const TWO_WORD: &[&str] = &[
    "-o",
    "-MF",
    "-MT",
    "-MQ",
    "-arch",
    "-target",
    "-aux-info",
    "--param",
    "-Xassembler",
    "-Xlinker",
    "-Xclang",
    "-A",
    "-l",
    "-u",
    "-L",
    "-B",
    "-V",
    "-b",
    "-x",
    "-I",
    "-iquote",
    "-isystem",
    "-idirafter",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-include",
    "-imacros",
    "-D",
    "-U",
    "-isysroot",
    "--sysroot",
    "-dumpbase",
    "-dumpdir",
    "-F",
    "-T",
    "-z",
];

/// GNU long spellings both drivers turn into a short option (GCC's
/// `gcc.cc` option_map; Clang accepts the same): `--LONG=VALUE` or
/// `--LONG VALUE` is `SHORT VALUE`.
const LONG_ALIASES: &[(&str, &str, bool)] = &[
    ("--include-directory-after", "-idirafter", true),
    ("--include-directory", "-I", true),
    ("--include-prefix", "-iprefix", true),
    ("--include-with-prefix-before", "-iwithprefixbefore", true),
    ("--include-with-prefix-after", "-iwithprefix", true),
    ("--include-with-prefix", "-iwithprefix", true),
    ("--include-barrier", "-I-", false),
    ("--no-standard-includes", "-nostdinc", false),
    ("--include", "-include", true),
    ("--imacros", "-imacros", true),
    ("--define-macro", "-D", true),
    ("--undefine-macro", "-U", true),
    ("--language", "-x", true),
    ("--preprocess", "-E", false),
    ("--dependencies", "-M", false),
    ("--user-dependencies", "-MM", false),
];

/// Options that make analysis impossible (facts §3: "not covered").
const REFUSED: &[&str] = &["-I-", "-Xpreprocessor", "-imultilib", "-E", "-M", "-MM"];

/// Parses `argv` (argv[0] = compiler). The error says why the command
/// cannot be analysed.
pub fn parse(argv: &[OsString]) -> Result<Command, String> {
    let mut cmd = Command {
        compiler: argv.first().cloned().ok_or("empty command line")?,
        ..Command::default()
    };
    let mut strict_std: Option<bool> = None;
    let mut sources: Vec<(PathBuf, Option<Lang>)> = Vec::new();
    let mut x_lang: Option<Option<Lang>> = None;
    let mut argv = argv.to_vec();
    let mut i = 1;
    while i < argv.len() {
        if let Some((short, value)) = long_alias(argv[i].as_bytes()) {
            // Parsed again as the short option the driver makes of it.
            argv[i] = short.into();
            if let Some(v) = value {
                argv.insert(i + 1, v);
            }
            continue;
        }
        let arg = argv[i].as_bytes();
        i += 1;
        if arg.is_empty() {
            continue;
        }
        if arg[0] != b'-' || arg == b"-" {
            if arg == b"-" {
                return Err("source is standard input".into());
            }
            sources.push((PathBuf::from(OsStr::from_bytes(arg)), x_lang.flatten()));
            if x_lang.is_some_and(|l| l.is_none()) {
                return Err(format!(
                    "unsupported -x language for {}",
                    String::from_utf8_lossy(arg)
                ));
            }
            continue;
        }
        if REFUSED.iter().any(|r| r.as_bytes() == arg) || arg.starts_with(b"-Wp,") {
            return Err(format!("option {}", String::from_utf8_lossy(arg)));
        }
        // Split "-Ifoo" / "-I foo" / "--sysroot=foo" into (option, value).
        // Only `--sysroot` has a `=` between them: for the compiler,
        // `-I=foo` and `-isysroot=foo` name `=foo`.
        let mut value_of = |opt: &str| -> Option<Vec<u8>> {
            let o = opt.as_bytes();
            if arg == o {
                let v = argv.get(i).map(|a| a.as_bytes().to_vec());
                i += 1;
                return Some(v.unwrap_or_default());
            }
            let rest = arg.strip_prefix(o)?;
            Some(
                match opt {
                    "--sysroot" => rest.strip_prefix(b"=").unwrap_or(rest),
                    _ => rest,
                }
                .to_vec(),
            )
        };
        let path = |v: Vec<u8>| PathBuf::from(OsString::from_vec(v));
        // A directory under the sysroot: the compilers disagree on where
        // (GCC in every chain, Clang for -I only, with or without a `/`).
        let dir = |v: Vec<u8>| {
            if v.starts_with(b"=") || v.starts_with(b"$SYSROOT") {
                Err(format!(
                    "sysroot-relative include directory {}",
                    String::from_utf8_lossy(&v)
                ))
            } else {
                Ok(path(v))
            }
        };
        if arg.starts_with(b"-F") || arg.starts_with(b"-iframework") {
            // Clang looks `<A/b.h>` up as A.framework/Headers/b.h there,
            // on Linux too; the walk knows no framework directory.
            return Err(format!(
                "framework directory option {}",
                String::from_utf8_lossy(arg)
            ));
        } else if ["-iwithsysroot", "-cxx-isystem", "-isystem-after"]
            .iter()
            .any(|o| arg.starts_with(o.as_bytes()))
        {
            // Clang's own system directories, in groups of its own order.
            return Err(format!("option {}", String::from_utf8_lossy(arg)));
        } else if arg.starts_with(b"-iwithprefix") {
            // Where the directory goes differs: GCC puts -iwithprefix with
            // -isystem, Clang with -idirafter; both put -iwithprefixbefore
            // after every -I; without -iprefix, GCC's prefix is its own.
            return Err(format!("option {}", String::from_utf8_lossy(arg)));
        } else if let Some(v) = value_of("-iprefix") {
            // GCC also moves its own directories under the prefix.
            cmd.probe_flags.push("-iprefix".into());
            cmd.probe_flags.push(OsString::from_vec(v));
        } else if let Some(v) = value_of("-iquote") {
            cmd.quote_dirs.push(dir(v)?);
        } else if let Some(v) = value_of("-isystem") {
            cmd.system_dirs.push(dir(v)?);
        } else if let Some(v) = value_of("-idirafter") {
            cmd.after_dirs.push(dir(v)?);
        } else if let Some(v) = value_of("-imacros") {
            cmd.imacros.push(path(v));
        } else if let Some(v) = value_of("-include") {
            cmd.includes.push(path(v));
        } else if arg.starts_with(b"-isysroot") || arg.starts_with(b"--sysroot") {
            let opt = if arg.starts_with(b"-isysroot") {
                "-isysroot"
            } else {
                "--sysroot"
            };
            let v = value_of(opt).unwrap_or_default();
            if opt == "--sysroot" {
                cmd.probe_flags
                    .push(OsString::from_vec([opt.as_bytes(), b"=", &v].concat()));
            } else {
                cmd.probe_flags.push(opt.into());
                cmd.probe_flags.push(OsString::from_vec(v));
            }
        } else if arg.starts_with(b"-I") {
            let v = value_of("-I").unwrap_or_default();
            cmd.include_dirs.push(dir(v)?);
        } else if arg.starts_with(b"-D") {
            let v = value_of("-D").unwrap_or_default();
            cmd.macro_ops.push(MacroOp::Define(define_text(&v)));
        } else if arg.starts_with(b"-U") {
            let v = value_of("-U").unwrap_or_default();
            cmd.macro_ops.push(MacroOp::Undef(v));
        } else if arg.starts_with(b"-x") {
            let v = value_of("-x").unwrap_or_default();
            x_lang = if v == b"none" {
                None
            } else {
                Some(Lang::from_x(&v))
            };
        } else if let Some(opt) = TWO_WORD.iter().find(|o| o.as_bytes() == arg) {
            // Arguments of these options are not files; keep the ones that
            // can change what the compiler predefines.
            let v = argv.get(i).cloned().unwrap_or_default();
            i += 1;
            if matches!(*opt, "-arch" | "-target" | "-Xclang" | "-B" | "-V" | "-b") {
                cmd.probe_flags.push(argv[i - 2].clone());
                cmd.probe_flags.push(v);
            }
        } else if arg == b"-trigraphs" {
            cmd.trigraphs = true;
        } else if let Some(n) = arg.strip_prefix(b"-fmax-include-depth=") {
            cmd.max_include_depth = std::str::from_utf8(n).ok().and_then(|n| n.parse().ok());
        } else if !irrelevant(arg) {
            if let Some(std) = arg
                .strip_prefix(b"-std=")
                .or_else(|| arg.strip_prefix(b"--std="))
            {
                strict_std = Some(has_trigraphs(std));
            } else if arg == b"-ansi" {
                strict_std = Some(true);
            }
            cmd.probe_flags.push(argv[i - 1].clone());
        }
    }
    cmd.trigraphs |= strict_std == Some(true);
    let b_prefix = cmd
        .probe_flags
        .iter()
        .any(|f| f.as_bytes().starts_with(b"-B"));
    if b_prefix && !cmd.system_dirs.is_empty() {
        // GCC adds PREFIX/include (when it exists) before every -isystem
        // directory; the probe, which has no -isystem, cannot tell where.
        return Err("-B with -isystem: GCC searches PREFIX/include first".into());
    }
    if ms_include_search(&argv) {
        return Err("Clang's Microsoft compatibility (-fms-compatibility): \
                    quote includes are also looked for beside every includer up the chain"
            .into());
    }
    match sources.as_slice() {
        [(src, lang)] => {
            // A C++ driver compiles a C file as C++ (an `-x` still wins).
            let by_suffix = Lang::from_suffix(src.as_os_str().as_bytes()).map(|l| {
                if l == Lang::C && crate::args::cross::cxx_driver(&cmd.compiler) {
                    Lang::Cxx
                } else {
                    l
                }
            });
            cmd.lang = lang.or(by_suffix);
            if cmd.lang.is_none() {
                return Err(format!("unknown language of {}", src.display()));
            }
            cmd.source = src.clone();
            Ok(cmd)
        }
        [] => Err("no source file".into()),
        _ => Err(format!("{} source files", sources.len())),
    }
}

/// `--LONG=V` / `--LONG` of [`LONG_ALIASES`] → the short option and the
/// `=V` value as a word of its own (a `--LONG V` keeps its next word).
fn long_alias(arg: &[u8]) -> Option<(&'static str, Option<OsString>)> {
    LONG_ALIASES.iter().find_map(|&(long, short, takes)| {
        let rest = arg.strip_prefix(long.as_bytes())?;
        if rest.is_empty() {
            Some((short, None))
        } else if takes && rest[0] == b'=' {
            Some((short, Some(OsString::from_vec(rest[1..].to_vec()))))
        } else {
            None
        }
    })
}

/// Whether the command turns on Clang's Microsoft compatibility, under
/// which `#include "x"` is also looked for in the directories of every file
/// up the include chain (`-fms-compatibility`, the default for a
/// `*-windows-msvc` target and for clang-cl; the last of it and
/// `-fno-ms-compatibility` wins).
fn ms_include_search(argv: &[OsString]) -> bool {
    let driver_cl = argv.first().is_some_and(|c| {
        Path::new(c)
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b"clang-cl"))
    });
    let mut on = driver_cl;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_bytes();
        if a == b"-fms-compatibility" || a == b"--driver-mode=cl" {
            on = true;
        } else if a == b"-fno-ms-compatibility" {
            on = false;
        } else if let Some(t) = a.strip_prefix(b"--target=").or_else(|| {
            (a == b"-target").then(|| argv.get(i + 1).map_or(&b""[..], |t| t.as_bytes()))
        }) && (t.ends_with(b"-windows-msvc") || t.ends_with(b"-win32"))
        {
            on = true;
        }
        i += 1;
    }
    on
}

/// Options that cannot change predefined macros or default directories.
/// Whether `-std=STD` turns trigraphs on: the ISO (not GNU) C standards
/// and C++ before C++17 (C23 is counted in: a file with a trigraph then
/// only falls back).
fn has_trigraphs(std: &[u8]) -> bool {
    let iso_cxx = [
        &b"c++98"[..],
        b"c++03",
        b"c++0x",
        b"c++11",
        b"c++1y",
        b"c++14",
    ];
    if std.starts_with(b"c++") {
        return iso_cxx.contains(&std);
    }
    std.starts_with(b"c") || std.starts_with(b"iso9899")
}

fn irrelevant(arg: &[u8]) -> bool {
    (arg.starts_with(b"-W") && !arg.starts_with(b"-Wp,"))
        || (arg.starts_with(b"-M") && arg != b"-M" && arg != b"-MM")
        || arg.starts_with(b"-g")
        || arg.starts_with(b"-o")
        || arg.starts_with(b"-fdiagnostics-")
        || arg.starts_with(b"-fno-diagnostics-")
        || arg.starts_with(b"-fcolor-diagnostics")
        || matches!(arg, b"-c" | b"-S" | b"-w" | b"-v" | b"-pipe" | b"-Q")
}

/// `NAME=VALUE` → `NAME VALUE`; `NAME` → `NAME 1` (as GCC does).
fn define_text(v: &[u8]) -> Vec<u8> {
    match v.iter().position(|&c| c == b'=') {
        Some(eq) => [&v[..eq], b" ", &v[eq + 1..]].concat(),
        None => [v, b" 1"].concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<OsString> {
        w.iter().map(OsString::from).collect()
    }

    fn p(words: &[&str]) -> Result<Command, String> {
        parse(&words.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn cxx_driver_makes_c_sources_cxx() {
        assert_eq!(p(&["g++", "-c", "t.c"]).unwrap().lang, Some(Lang::Cxx));
        assert_eq!(
            p(&["clang++-14", "-c", "t.c"]).unwrap().lang,
            Some(Lang::Cxx)
        );
        assert_eq!(p(&["g++", "-c", "t.m"]).unwrap().lang, Some(Lang::ObjC));
        assert_eq!(
            p(&["g++", "-x", "c", "-c", "t.c"]).unwrap().lang,
            Some(Lang::C)
        );
        assert_eq!(p(&["gcc", "-c", "t.c"]).unwrap().lang, Some(Lang::C));
    }

    #[test]
    fn dirs_macros_and_source() {
        let c = p(&[
            "gcc",
            "-c",
            "-Iinc",
            "-I",
            "/abs",
            "-iquote",
            "q",
            "-isystem",
            "s",
            "-idirafter",
            "a",
            "-iprefix",
            "/p/",
            "-DX=1",
            "-D",
            "F(a)=a",
            "-UY",
            "-DZ",
            "-include",
            "f.h",
            "-imacros",
            "m.h",
            "-O2",
            "-MF",
            "dep.d",
            "-o",
            "x.o",
            "x.cc",
            "--sysroot=/sr",
            "-Wall",
        ])
        .expect("parses");
        assert_eq!(c.source, PathBuf::from("x.cc"));
        assert_eq!(c.lang, Some(Lang::Cxx));
        assert_eq!(
            c.include_dirs,
            vec![PathBuf::from("inc"), PathBuf::from("/abs")]
        );
        assert_eq!(c.quote_dirs, vec![PathBuf::from("q")]);
        assert_eq!(c.system_dirs, vec![PathBuf::from("s")]);
        assert_eq!(c.after_dirs, vec![PathBuf::from("a")]);
        assert_eq!(
            c.macro_ops,
            vec![
                MacroOp::Define(b"X 1".to_vec()),
                MacroOp::Define(b"F(a) a".to_vec()),
                MacroOp::Undef(b"Y".to_vec()),
                MacroOp::Define(b"Z 1".to_vec()),
            ]
        );
        assert_eq!(c.includes, vec![PathBuf::from("f.h")]);
        assert_eq!(c.imacros, vec![PathBuf::from("m.h")]);
        assert_eq!(
            c.probe_flags,
            vec![
                OsString::from("-iprefix"),
                OsString::from("/p/"),
                OsString::from("-O2"),
                OsString::from("--sysroot=/sr")
            ]
        );
    }

    #[test]
    fn sysroot_options_reach_the_probe_as_the_compiler_reads_them() {
        // `-isysroot=x` names the sysroot `=x` (checked with `gcc -v`);
        // only `--sysroot` takes a `=`.
        let probe = |args: &[&str]| {
            let mut argv = vec!["gcc"];
            argv.extend_from_slice(args);
            argv.extend_from_slice(&["-c", "x.c"]);
            p(&argv).expect("parses").probe_flags
        };
        assert_eq!(probe(&["-isysroot", "sr"]), words(&["-isysroot", "sr"]));
        assert_eq!(probe(&["-isysrootsr"]), words(&["-isysroot", "sr"]));
        assert_eq!(probe(&["-isysroot=sr"]), words(&["-isysroot", "=sr"]));
        assert_eq!(probe(&["--sysroot", "sr"]), words(&["--sysroot=sr"]));
        assert_eq!(probe(&["--sysroot=sr"]), words(&["--sysroot=sr"]));
    }

    #[test]
    fn sysroot_relative_and_prefixed_directories_are_not_covered() {
        // GCC reads `-I=d` as the sysroot's `d` (Clang only with a
        // sysroot), `$SYSROOT/d` likewise: not covered. `-include=f.h`
        // names `=f.h`.
        for a in [
            "-I=d",
            "-iquote=d",
            "-isystem=d",
            "-idirafter=d",
            "-I$SYSROOT/d",
        ] {
            let e = p(&["gcc", a, "-c", "x.c"]).unwrap_err();
            assert!(e.contains("sysroot-relative"), "{a}: {e}");
        }
        let c = p(&["gcc", "-I", "=d", "-c", "x.c"]).unwrap_err();
        assert!(c.contains("sysroot-relative"), "{c}");
        let c = p(&["gcc", "-include=f.h", "-imacros=m.h", "-c", "x.c"]).unwrap();
        assert_eq!(c.includes, vec![PathBuf::from("=f.h")]);
        assert_eq!(c.imacros, vec![PathBuf::from("=m.h")]);
        // GCC and Clang place -iwithprefix differently, and neither
        // places -iwithprefixbefore where its -I would go.
        for a in ["-iwithprefix", "-iwithprefixbefore"] {
            assert!(p(&["gcc", "-iprefix", "/p/", a, "d", "-c", "x.c"]).is_err());
        }
    }

    #[test]
    fn gnu_long_spellings_are_their_short_options() {
        let c = p(&[
            "gcc",
            "-isystem",
            "s",
            "--include-directory=a",
            "--include-directory",
            "b",
            "--include-directory-after=c",
            "--include=f.h",
            "--imacros",
            "m.h",
            "--define-macro=X=2",
            "--undefine-macro",
            "Y",
            "--include-prefix=/p/",
            "--language=c++",
            "x.c",
            "-c",
        ])
        .unwrap();
        assert_eq!(c.include_dirs, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(c.system_dirs, [PathBuf::from("s")]);
        assert_eq!(c.after_dirs, [PathBuf::from("c")]);
        assert_eq!(c.includes, [PathBuf::from("f.h")]);
        assert_eq!(c.imacros, [PathBuf::from("m.h")]);
        assert_eq!(
            c.macro_ops,
            [
                MacroOp::Define(b"X 2".to_vec()),
                MacroOp::Undef(b"Y".to_vec())
            ]
        );
        assert_eq!(c.lang, Some(Lang::Cxx));
        assert_eq!(c.probe_flags, words(&["-iprefix", "/p/"]));
        for a in [
            "--include-barrier",
            "--include-with-prefix=d",
            "--include-with-prefix-before=d",
            "--preprocess",
            "--user-dependencies",
        ] {
            assert!(p(&["gcc", a, "-c", "x.c"]).is_err(), "{a}");
        }
        assert!(
            p(&["gcc", "--no-standard-includes", "-c", "x.c"])
                .unwrap()
                .probe_flags
                == words(&["-nostdinc"])
        );
    }

    #[test]
    fn clang_only_and_framework_directories_are_not_covered() {
        for a in [
            &["-F", "fw"][..],
            &["-Ffw"],
            &["-iframework", "fw"],
            &["-iframeworkwithsysroot", "fw"],
            &["-iwithsysroot", "d"],
            &["-iwithsysrootd"],
            &["-cxx-isystem", "d"],
            &["-cxx-isystemd"],
            &["-isystem-after", "d"],
        ] {
            let mut argv = vec!["clang"];
            argv.extend_from_slice(a);
            argv.extend(["-c", "x.c"]);
            let e = p(&argv).unwrap_err();
            assert!(e.contains(a[0]), "{a:?}: {e}");
        }
    }

    #[test]
    fn gcc_prefix_include_before_isystem_is_not_covered() {
        for b in [&["-B", "pre/"][..], &["-Bpre/"]] {
            let mut argv = vec!["gcc", "-isystem", "d"];
            argv.extend_from_slice(b);
            argv.extend(["-c", "x.c"]);
            assert!(p(&argv).unwrap_err().contains("-B"), "{b:?}");
            argv.drain(1..3);
            assert!(p(&argv).is_ok(), "{b:?}");
        }
    }

    #[test]
    fn refusals() {
        assert!(p(&["gcc", "-c", "a.c", "b.c"]).is_err());
        assert!(p(&["gcc", "-c"]).is_err());
        assert!(p(&["gcc", "-c", "x.unknown"]).is_err());
        assert!(p(&["gcc", "-I-", "-c", "x.c"]).is_err());
        let ms = p(&["clang", "-fms-compatibility", "-c", "x.c"]).unwrap_err();
        assert!(ms.contains("-fms-compatibility"), "{ms}");
        assert!(p(&["clang", "--target=x86_64-pc-windows-msvc", "-c", "x.c"]).is_err());
        assert!(
            p(&[
                "clang",
                "-fms-compatibility",
                "-fno-ms-compatibility",
                "-c",
                "x.c"
            ])
            .is_ok()
        );
        assert!(p(&["clang", "-fms-extensions", "-c", "x.c"]).is_ok());
        assert_eq!(
            p(&["gcc", "-x", "c++", "-c", "x.unknown"])
                .expect("parses")
                .lang,
            Some(Lang::Cxx)
        );
    }

    #[test]
    fn trigraphs_follow_the_options() {
        let t = |args: &[&str]| p(args).unwrap().trigraphs;
        assert!(!t(&["gcc", "-c", "x.c"]));
        assert!(!t(&["gcc", "-std=gnu11", "-c", "x.c"]));
        assert!(!t(&["g++", "-std=c++17", "-c", "x.cc"]));
        assert!(t(&["gcc", "-std=c11", "-c", "x.c"]));
        assert!(t(&["gcc", "-std=iso9899:1990", "-c", "x.c"]));
        assert!(t(&["g++", "-std=c++14", "-c", "x.cc"]));
        assert!(t(&["gcc", "-ansi", "-c", "x.c"]));
        assert!(t(&["gcc", "-trigraphs", "-c", "x.c"]));
        assert!(!t(&["gcc", "-std=c99", "-std=gnu99", "-c", "x.c"]));
    }
}
