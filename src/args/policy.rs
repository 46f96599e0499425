//! The daemon's argument policy: an allow-list of compiler option shapes.
//!
//! A compile request's argv comes from the network. Stock distccd 3.4 only
//! refuses arguments starting with `-fplugin=` or `-specs=` (facts §5.3), so
//! `-wrapper /bin/sh,-c,...`, `-specs FILE`, `--plugin=`, `@file`, `-B`,
//! `-aux-info`, `-dumpdir`, `-save-temps`, `-Xassembler -al=FILE` or
//! `-fdump-...=FILE` run programs, load code or write files outside the job
//! directory on a stock server. Here every argument must match a known-safe
//! shape; anything else is refused with a reason the daemon logs before
//! closing the connection.
//!
//! Data flow: the daemon decodes a request, calls [`check`] on its argv, and
//! uses the returned [`Shape`] (where the source and the output are) to
//! substitute its own paths. Reading files (`-I`, `-include`, `--sysroot`)
//! is allowed: it only reads what the daemon user may read anyway, and the
//! preprocessed (v1/v2) compile does not even look there.

use crate::error::{Error, Kind, Result};
use std::ffi::OsString;

/// Where the output is named in an accepted argv.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputArg {
    /// `-o FILE`: the index of FILE.
    Separate(usize),
    /// `-oFILE`: the index of that argument.
    Glued(usize),
}

/// What [`check`] learned about an accepted argv.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Index of the one source file.
    pub input: usize,
    /// The `-o` argument, if any (stock clients always send one).
    pub output: Option<OutputArg>,
    /// `-S` was given (the output is assembler text, not an object).
    pub assemble_only: bool,
}

fn refuse(arg: &[u8], why: &str) -> Error {
    Error::new(
        Kind::BadArguments,
        format!("argument {:?} refused: {why}", String::from_utf8_lossy(arg)),
    )
}

/// Options refused by prefix, with the reason. Checked before anything else.
const REFUSED_PREFIXES: &[(&str, &str)] = &[
    ("@", "response files are read on the server"),
    ("-wrapper", "runs a program"),
    ("--wrapper", "runs a program"),
    ("-fplugin", "loads code into the compiler"),
    ("--plugin", "loads code into the compiler"),
    ("-fpass-plugin", "loads code into the compiler"),
    ("-specs", "a specs file can run programs"),
    ("--specs", "a specs file can run programs"),
    ("-B", "chooses the programs the compiler runs"),
    ("--prefix", "chooses the programs the compiler runs"),
    (
        "-fdump-ada-spec",
        "writes Ada specs into the working directory, under the source's name",
    ),
    ("-aux-info", "writes a file named by the client"),
    ("--aux-info", "writes a file named by the client"),
    ("-dump", "chooses where auxiliary files are written"),
    ("-save-temps", "writes files outside the job directory"),
    ("--save-temps", "writes files outside the job directory"),
    ("-Xlinker", "the linker is not run by a compile job"),
    ("-Wl,", "the linker is not run by a compile job"),
    ("-Xclang", "passes options that can load code"),
    ("-mllvm", "passes options that can load code"),
    ("-load", "loads code into the compiler"),
    (
        "-fmodule",
        "modules are read and written outside the job (and GCC's module mapper can run programs)",
    ),
    (
        "-fcompare-debug",
        "runs the compiler again with client options",
    ),
    ("-print-", "not a compile"),
    ("--print-", "not a compile"),
    ("-fconnect", "not a compile"),
];

/// Clang front-end options (`-Xclang X`) that read and write no file and
/// load no code: diagnostics, warnings, debug-information kinds and code
/// generation switches common in real builds (sweep S, P5). Any other
/// `-Xclang` value is refused: `-load`, `-add-plugin`, `-dependency-file`
/// and many more reach files or code.
fn harmless_cc1_option(value: &[u8]) -> bool {
    const EXACT: &[&str] = &[
        "-fno-pch-timestamp",
        "-fno-caret-diagnostics",
        "-fcolor-diagnostics",
        "-fno-color-diagnostics",
        "-fdiagnostics-show-option",
        "-fno-diagnostics-show-option",
        "-disable-O0-optnone",
        "-disable-llvm-passes",
        "-disable-llvm-optzns",
        "-fexperimental-new-pass-manager",
        "-fno-experimental-new-pass-manager",
        "-fuse-ctor-homing",
        "-fno-use-ctor-homing",
        "-mconstructor-aliases",
        "-fforce-emit-vtables",
    ];
    const PREFIXES: &[&str] = &["-W", "-debug-info-kind=", "-dwarf-version="];
    EXACT.iter().any(|o| value == o.as_bytes()) || PREFIXES.iter().any(|p| starts(value, p))
}

/// Options with a separate value word (also accepted glued).
const WITH_VALUE: &[&str] = &[
    "-D",
    "-U",
    "-I",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-include",
    "-imacros",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-isysroot",
    "-imultilib",
    "-imultiarch",
    "-MT",
    "-MQ",
    "-MF",
    "-L",
    "-l",
    "--param",
    "-target",
    "--sysroot",
];

/// Options without a value, accepted exactly.
const EXACT: &[&str] = &[
    "-c",
    "-S",
    "-pipe",
    "-pedantic",
    "-pedantic-errors",
    "-w",
    "-ansi",
    "-traditional-cpp",
    "-trigraphs",
    "-undef",
    "-nostdinc",
    "-nostdinc++",
    "-MD",
    "-MMD",
    "-MP",
    "-MG",
    "-P",
    "-C",
    "-CC",
    "-H",
    "-v",
    "-p",
    "-pg",
    "-pthread",
    "-shared",
    "-static",
    "-rdynamic",
    "-pie",
    "-no-pie",
    "-nostdlib",
    "-nodefaultlibs",
    "-nostartfiles",
    "-s",
    "-dD",
    "-dI",
    "-dN",
    "-dU",
    "-static-libgcc",
    "-static-libstdc++",
    "-fsyntax-only",
    "-Qunused-arguments",
    "-static-pie",
    // Clang writes LLVM bitcode (or IR with -S) to the output (sweep S, P6).
    "-emit-llvm",
];

/// Glued families accepted by prefix (after the refusals and special cases).
const FAMILIES: &[&str] = &[
    "-O",
    "-g",
    "-W",
    "-std=",
    // GCC's other spelling (sweep R, D5).
    "--std=",
    "-stdlib=",
    "-m",
    "-f",
    "--param=",
    "--sysroot=",
    "--target=",
    "-D",
    "-U",
    "-I",
    "-L",
    "-l",
    "-MT",
    "-MQ",
    "-MF",
];

/// `-f` options that name files to write or read profiles: refused when
/// they carry a value.
const F_WITH_FILE_VALUE: &[&str] = &[
    "-fdump-",
    "-fopt-info",
    "-fprofile-",
    "-fauto-profile",
    "-fcoverage-",
    "-fcallgraph-info=",
    "-fdiagnostics-add-output=",
    "-fdiagnostics-set-output=",
    "-ftime-trace=",
    "-fproc-stat-report=",
    "-foptimization-record-file=",
    "-fcrash-diagnostics-dir=",
];

/// `-f` options whose value may be a path because they only map or read,
/// or whose value names no file at all.
const F_PATH_OK: &[&str] = &[
    "-fprofile-update=",
    "-fprofile-reproducible=",
    "-fprofile-prefix-map=",
    "-frandom-seed=",
    "-fdebug-prefix-map=",
    "-ffile-prefix-map=",
    "-fmacro-prefix-map=",
    "-fcoverage-prefix-map=",
    "-fdebug-compilation-dir=",
    "-ffile-compilation-dir=",
    "-fcoverage-compilation-dir=",
    "-fsanitize-ignorelist=",
    "-fsanitize-blacklist=",
    "-fsanitize-coverage-allowlist=",
    "-fsanitize-coverage-ignorelist=",
];

/// Languages accepted for `-x` (preprocessed or not; assembler runs locally).
const LANGUAGES: &[&str] = &[
    "c",
    "c++",
    "objective-c",
    "objective-c++",
    "c-header",
    "c++-header",
    "objective-c-header",
    "objective-c++-header",
    "cpp-output",
    "c++-cpp-output",
    "objective-c-cpp-output",
    "objective-c++-cpp-output",
    "none",
];

/// Assembler options accepted in `-Wa,` and `-Xassembler` (no listings,
/// no output or dependency files).
const ASSEMBLER_OK: &[&str] = &[
    "--noexecstack",
    "--divide",
    "--execstack",
    "-g",
    "--gdwarf-2",
    "--gdwarf-3",
    "--gdwarf-4",
    "--gdwarf-5",
    "--gen-debug",
    "--32",
    "--64",
    "--x32",
    "--fatal-warnings",
    "--no-warn",
    "-W",
    "--warn",
    "-Qy",
    "-Qn",
    "--nocompress-debug-sections",
    "--compress-debug-sections",
    "--size-check=error",
    "--size-check=warning",
    // GNU as also takes the debug options with one dash, and the older
    // spellings (the Linux kernel passes -Wa,-gdwarf-2 and the like).
    "-gdwarf-2",
    "-gdwarf-3",
    "-gdwarf-4",
    "-gdwarf-5",
    "--gdwarf2",
    "-gdwarf2",
    "--gdwarf-sections",
    "--gstabs",
    "--gstabs+",
    "-gstabs",
    "-gstabs+",
    "-L",
    "--keep-locals",
    "-R",
    "-n",
    "--no-pad-sections",
    "--sectname-subst",
    "--strip-local-absolute",
    "--reduce-memory-overheads",
    "--statistics",
    "-mshared",
    "-mno-shared",
    "-mamd64",
    "-mintel64",
    "-mnaked-reg",
    "-msse2avx",
    "-mrelax-relocations",
    "-mno-branches-within-32B-boundaries",
    "-mthumb",
    "-marm",
    "-EL",
    "-EB",
];

const ASSEMBLER_OK_PREFIXES: &[&str] = &[
    "--compress-debug-sections=",
    "--gdwarf-cie-version=",
    "--elf-stt-common=",
    "--generate-missing-build-notes=",
    "-mrelax-relocations=",
    "-mx86-used-note=",
    "-mtune=",
    "-march=",
    "-mfence-as-lock-add=",
    "-mbranches-within-32B-boundaries",
    "-malign-branch",
    "-mlfence-",
    "-momit-lock-prefix=",
    "-moperand-check=",
    "-msse-check=",
    "-mavxscalar=",
    "-mvexwig=",
    "-mevexlig=",
    "-mevexwig=",
    "-mevexrcig=",
    "-mmnemonic=",
    "-msyntax=",
    "-mcpu=",
    "-mfpu=",
    "-mfloat-abi=",
    "-mabi=",
    "-mimplicit-it=",
];

fn is_source(arg: &[u8]) -> bool {
    super::extensions::is_source(&bytes_to_os(arg))
}

fn bytes_to_os(bytes: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(bytes.to_vec())
}

fn starts(arg: &[u8], prefix: &str) -> bool {
    arg.starts_with(prefix.as_bytes())
}

/// Checks a compiler command line (argv[0] = compiler) against the policy.
pub fn check(argv: &[OsString]) -> Result<Shape> {
    check_as(argv, false)
}

/// Whether `arg` asks the compiler to print something of its own and stop
/// (`-print-search-dirs`, `--print-file-name=X`, `-print-prog-name=X`, ...):
/// it reads and writes no file of the job.
pub fn is_print_query(arg: &[u8]) -> bool {
    starts(arg, "-print-")
        || starts(arg, "--print-")
        || matches!(
            arg,
            b"-dumpmachine" | b"-dumpversion" | b"-dumpfullversion" | b"-dumpspecs"
        )
}

/// Linker options a stock client sends beside `-c`: a compile ignores
/// them (the linker does not run), and stock's server runs them.
fn is_linker_option(arg: &[u8]) -> bool {
    starts(arg, "-Wl,")
}

/// As [`check`], for a server answering a stock client, which sends a
/// print query beside `-c` and a source (meson's `--print-search-dirs`
/// probe): stock's server runs it and answers, while a refusal makes the
/// stock client back the server off for every job that follows (sweep R,
/// D1). Our client keeps such queries here, where the answer is its own.
/// Linker options (`-Xlinker X`, `-Wl,...`) are taken as well.
pub fn check_serving(argv: &[OsString]) -> Result<Shape> {
    check_as(argv, true)
}

fn check_as(argv: &[OsString], serving: bool) -> Result<Shape> {
    let args: Vec<&[u8]> = argv.iter().map(|a| a.as_encoded_bytes()).collect();
    let mut input = None;
    let mut output = None;
    let mut compile = false;
    let mut assemble_only = false;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i];
        if arg == b"-o" {
            let Some(value) = args.get(i + 1) else {
                return Err(refuse(arg, "missing output name"));
            };
            set_output(&mut output, OutputArg::Separate(i + 1), value)?;
            i += 2;
            continue;
        }
        if arg.len() > 2 && starts(arg, "-o") {
            set_output(&mut output, OutputArg::Glued(i), &arg[2..])?;
            i += 1;
            continue;
        }
        if !arg.starts_with(b"-") || arg == b"-" {
            // A source named `@x.c` (GCC keeps an `@` word whose file is
            // missing as it is) is served: in plain mode the server compiles
            // its own copy of the text, under another name (stock serves it
            // too; sweep U, D8). Pump mode refuses it (runner.rs).
            if arg.starts_with(b"@") && !(serving && is_source(arg)) {
                return Err(refuse(arg, "response files are read on the server"));
            }
            if arg == b"-" {
                return Err(refuse(
                    arg,
                    "reading the source from stdin is not a remote job",
                ));
            }
            if !is_source(arg) {
                return Err(refuse(arg, "not a source file a compile job can take"));
            }
            if input.is_some() {
                return Err(refuse(arg, "a second source file"));
            }
            input = Some(i);
            i += 1;
            continue;
        }
        match arg {
            b"-c" => compile = true,
            b"-S" => {
                compile = true;
                assemble_only = true;
            }
            _ => {}
        }
        if WITH_VALUE.iter().any(|o| arg == o.as_bytes()) {
            let Some(value) = args.get(i + 1) else {
                return Err(refuse(arg, "missing value"));
            };
            if value.is_empty() {
                return Err(refuse(arg, "empty value"));
            }
            i += 2;
            continue;
        }
        match arg {
            b"-x" => {
                let value = args.get(i + 1).copied().unwrap_or(b"");
                check_language(value)?;
                i += 2;
                continue;
            }
            b"-Xclang" if args.get(i + 1).is_some_and(|v| harmless_cc1_option(v)) => {
                i += 2;
                continue;
            }
            b"-Xpreprocessor" => {
                let value = args.get(i + 1).copied().unwrap_or(b"");
                check_preprocessor(value)?;
                i += 2;
                continue;
            }
            b"-Xassembler" => {
                let value = args.get(i + 1).copied().unwrap_or(b"");
                check_assembler(value)?;
                i += 2;
                continue;
            }
            _ => {}
        }
        if serving && arg == b"-Xlinker" && args.get(i + 1).is_some() {
            i += 2;
            continue;
        }
        if !(serving && (is_print_query(arg) || is_linker_option(arg))) {
            check_word(arg)?;
        }
        i += 1;
    }
    let Some(input) = input else {
        return Err(Error::new(Kind::BadArguments, "no source file"));
    };
    if !compile {
        return Err(Error::new(
            Kind::BadArguments,
            "neither -c nor -S: not a compile job",
        ));
    }
    Ok(Shape {
        input,
        output,
        assemble_only,
    })
}

fn set_output(slot: &mut Option<OutputArg>, at: OutputArg, value: &[u8]) -> Result<()> {
    if slot.is_some() {
        return Err(refuse(value, "a second output"));
    }
    if value.is_empty() || value == b"-" {
        return Err(refuse(value, "output must be a file"));
    }
    *slot = Some(at);
    Ok(())
}

/// One option word (not a separate-value option, not `-o`).
fn check_word(arg: &[u8]) -> Result<()> {
    if let Some((_, why)) = REFUSED_PREFIXES.iter().find(|(p, _)| starts(arg, p)) {
        return Err(refuse(arg, why));
    }
    if starts(arg, "-f") && arg.windows(6).any(|w| w == b"plugin") {
        return Err(refuse(arg, "loads code into the compiler"));
    }
    if EXACT.iter().any(|o| arg == o.as_bytes()) {
        return Ok(());
    }
    match arg {
        b"-E" | b"-M" | b"-MM" => return Err(refuse(arg, "preprocessing runs on the client")),
        b"-x" => return Err(refuse(arg, "missing language")),
        _ => {}
    }
    if starts(arg, "-x") {
        return check_language(&arg[2..]);
    }
    if let Some(rest) = arg.strip_prefix(b"-Wa,") {
        return rest.split(|&b| b == b',').try_for_each(check_assembler);
    }
    if let Some(rest) = arg.strip_prefix(b"-Wp,") {
        return rest.split(|&b| b == b',').try_for_each(check_preprocessor);
    }
    if (starts(arg, "-march=") || starts(arg, "-mtune=") || starts(arg, "-mcpu="))
        && arg.ends_with(b"=native")
    {
        return Err(refuse(arg, "\"native\" means the client's CPU"));
    }
    if starts(arg, "-M") && !(starts(arg, "-MT") || starts(arg, "-MQ") || starts(arg, "-MF")) {
        return Err(refuse(arg, "unknown dependency option"));
    }
    if starts(arg, "-f") {
        check_f(arg)?;
    }
    if FAMILIES.iter().any(|f| starts(arg, f)) {
        return Ok(());
    }
    for opt in WITH_VALUE {
        if opt.len() > 2 && starts(arg, opt) {
            return Ok(());
        }
    }
    Err(refuse(arg, "not an option a remote compile accepts"))
}

fn check_f(arg: &[u8]) -> Result<()> {
    let Some(eq) = arg.iter().position(|&b| b == b'=') else {
        return Ok(());
    };
    // sarif-file and json-file write next to the source, in the compile's
    // working directory, which a pump client shapes (and can plant links in).
    if starts(arg, "-fdiagnostics-format=") && arg.ends_with(b"-file") {
        return Err(refuse(arg, "writes a file in the working directory"));
    }
    if F_PATH_OK.iter().any(|p| starts(arg, p)) {
        return Ok(());
    }
    if F_WITH_FILE_VALUE.iter().any(|p| starts(arg, p)) {
        return Err(refuse(arg, "names a file on the server"));
    }
    if arg[eq + 1..].contains(&b'/') {
        return Err(refuse(arg, "option value looks like a server path"));
    }
    Ok(())
}

fn check_language(lang: &[u8]) -> Result<()> {
    if LANGUAGES.iter().any(|l| lang == l.as_bytes()) {
        Ok(())
    } else {
        Err(refuse(lang, "language not compiled remotely"))
    }
}

/// One option handed to the preprocessor (`-Wp,` piece or `-Xpreprocessor`).
fn check_preprocessor(arg: &[u8]) -> Result<()> {
    let ok_prefix = ["-D", "-U", "-I", "-W"]
        .iter()
        .any(|p| starts(arg, p) && arg.len() > 2 && !starts(arg, "-Wp,"));
    let ok_exact = [
        b"-undef".as_slice(),
        b"-nostdinc",
        b"-C",
        b"-CC",
        b"-P",
        b"-traditional-cpp",
        b"-trigraphs",
    ]
    .contains(&arg);
    if ok_prefix || ok_exact {
        Ok(())
    } else {
        Err(refuse(arg, "preprocessor option not accepted remotely"))
    }
}

fn check_assembler(arg: &[u8]) -> Result<()> {
    let ok = ASSEMBLER_OK.iter().any(|o| arg == o.as_bytes())
        || ASSEMBLER_OK_PREFIXES.iter().any(|p| starts(arg, p));
    if ok && !arg.ends_with(b"=native") {
        Ok(())
    } else {
        Err(refuse(
            arg,
            "assembler option not accepted (listings and output files are refused)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn accepted_table() {
        let table: &[(&str, usize, Option<OutputArg>)] = &[
            ("gcc -c hello.c -o hello.o", 2, Some(OutputArg::Separate(4))),
            ("gcc -c hello.c -ohello.o", 2, Some(OutputArg::Glued(3))),
            (
                "cc -O2 -g -Wall -Wextra -std=c11 -c x.i -o x.o",
                7,
                Some(OutputArg::Separate(9)),
            ),
            (
                "g++ -x c++ -c x.ii -o x.o -fPIC -fno-exceptions -march=x86-64-v2",
                4,
                Some(OutputArg::Separate(6)),
            ),
            (
                "gcc -c x.c -o x.o -DX=1 -D Y -U Z -I/usr/include/foo -I inc -isystem /opt/inc -include cfg.h",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "gcc -c x.c -o x.o -MD -MF x.d -MT x.o -MQ y -MMD -MP",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "gcc -c x.c -o x.o -Wa,--noexecstack -Wa,--gdwarf-5 -Xassembler --64",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "gcc -c x.c -o x.o -Wa,-gdwarf-2 -Wa,-mx86-used-note=no,--compress-debug-sections=zlib",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "gcc -c x.c -o x.o -Wp,-DFOO,-UBAR -Xpreprocessor -DX",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "gcc -c x.c -o x.o -ffile-prefix-map=/a=/b -fdebug-prefix-map=/x=. -fstack-usage -fdebug-compilation-dir=/home/u/w",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "clang -c x.c -o x.o -fcoverage-mapping -fcoverage-prefix-map=/a=/b",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "gcc -c x.c -o x.o --param max-inline-insns-single=100 --param=ssp-buffer-size=4",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "gcc -S x.c -o x.s -pipe -pedantic -fsanitize=address -fdump-tree-all",
                2,
                Some(OutputArg::Separate(4)),
            ),
            (
                "clang -c x.c -o x.o -target x86_64-pc-linux-gnu --sysroot=/opt/sys",
                2,
                Some(OutputArg::Separate(4)),
            ),
            ("gcc -c x.c", 2, None),
            (
                "clang++ -c x.cc -o x.o -stdlib=libc++ -Qunused-arguments -frandom-seed=out/x.o",
                2,
                Some(OutputArg::Separate(4)),
            ),
            // Profile options whose value names no file.
            (
                "gcc -c x.c -o x.o -fprofile-update=atomic -fprofile-reproducible=serial",
                2,
                Some(OutputArg::Separate(4)),
            ),
        ];
        for (line, input, output) in table {
            let shape = check(&argv(line)).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(shape.input, *input, "{line}");
            assert_eq!(shape.output, *output, "{line}");
        }
        assert!(check(&argv("gcc -S x.c -o x.s")).unwrap().assemble_only);
    }

    #[test]
    fn refused_table() {
        let table: &[(&str, &str)] = &[
            ("gcc -c x.c -o x.o -wrapper /bin/sh,-c,id", "runs a program"),
            ("gcc -c x.c -o x.o -fplugin=/tmp/evil.so", "loads code"),
            ("gcc -c x.c -o x.o -fplugin-arg-evil-x=y", "loads code"),
            ("gcc -c x.c -o x.o --plugin=/tmp/evil.so", "loads code"),
            ("gcc -c x.c -o x.o -specs=/tmp/evil.specs", "specs"),
            ("gcc -c x.c -o x.o -specs /tmp/evil.specs", "specs"),
            ("gcc -c x.c -o x.o --specs=/tmp/evil.specs", "specs"),
            ("gcc -c x.c -o x.o @/etc/args", "response file"),
            ("gcc -c x.c -o x.o -B/tmp/evil/", "programs"),
            ("gcc -c x.c -o x.o -B /tmp/evil/", "programs"),
            ("gcc -c x.c -o x.o -aux-info /etc/passwd", "writes a file"),
            ("gcc -c x.c -o x.o -fdump-ada-spec", "Ada"),
            ("gcc -c x.c -o x.o -fdump-ada-spec-slim", "Ada"),
            ("clang -c x.c -o x.o -ftime-trace=t.json", "names a file"),
            ("clang -c x.c -o x.o -fproc-stat-report=r", "names a file"),
            ("gcc -c x.c -o x.o -dumpdir /tmp/", "auxiliary"),
            ("gcc -c x.c -o x.o -dumpbase /tmp/x", "auxiliary"),
            ("gcc -c x.c -o x.o -save-temps=obj", "writes files"),
            ("gcc -c x.c -o x.o -save-temps", "writes files"),
            (
                "gcc -c x.c -o x.o -Xassembler -al=/tmp/listing",
                "assembler option",
            ),
            (
                "gcc -c x.c -o x.o -Wa,-adhln=/tmp/listing",
                "assembler option",
            ),
            ("gcc -c x.c -o x.o -Wa,--MD,/tmp/deps", "assembler option"),
            ("gcc -c x.c -o x.o -Wa,-o,/tmp/obj", "assembler option"),
            ("gcc -c x.c -o x.o -Xlinker --foo", "linker"),
            ("gcc -c x.c -o x.o -Wl,-rpath,/x", "linker"),
            (
                "gcc -c x.c -o x.o -fdump-tree-all=/tmp/dump",
                "names a file",
            ),
            ("gcc -c x.c -o x.o -fopt-info-all=/tmp/opt", "names a file"),
            (
                "gcc -c x.c -o x.o -fprofile-generate=/tmp/prof",
                "names a file",
            ),
            ("gcc -c x.c -o x.o -fprofile-use=/tmp/prof", "names a file"),
            (
                "gcc -c x.c -o x.o -fmodule-mapper=|/bin/sh",
                "module mapper",
            ),
            ("gcc -c x.c -o x.o -fmodules-ts", "module mapper"),
            (
                "gcc -c x.c -o x.o -fsome-new-option=/etc/passwd",
                "server path",
            ),
            ("gcc -c x.c -o x.o -Wp,-MD,/tmp/deps", "preprocessor option"),
            (
                "gcc -c x.c -o x.o -Xpreprocessor -MF",
                "preprocessor option",
            ),
            ("gcc -c x.c -o x.o -Xclang -load", "load code"),
            ("clang -c x.c -o x.o -Xclang -add-plugin", "load code"),
            ("clang -c x.c -o x.o -Xclang -dependency-file", "load code"),
            ("clang -c x.c -o x.o -Xclang", "load code"),
            ("gcc -c x.c -o x.o -march=native", "native"),
            ("gcc -E x.c -o x.i", "client"),
            ("gcc -c x.c -o x.o -M", "client"),
            ("gcc -c x.c -o x.o -MM", "client"),
            ("gcc x.c -o x", "not a compile job"),
            ("gcc -c x.c y.c", "second source"),
            ("gcc -c x.c -o a.o -o b.o", "second output"),
            ("gcc -c x.c -o -", "output must be a file"),
            ("gcc -c -", "stdin"),
            ("gcc -c x.s -o x.o", "not a source"),
            ("gcc -c x.c -o x.o -x assembler", "language"),
            ("gcc -c x.c -o x.o -print-prog-name=cc1", "not a compile"),
            ("gcc -c x.c -o x.o --frobnicate", "not an option"),
            ("gcc -c x.c -o x.o -fcompare-debug=-O0", "again"),
            (
                "gcc -c x.c -o x.o -fdiagnostics-format=sarif-file",
                "working directory",
            ),
            (
                "gcc -c x.c -o x.o -fdiagnostics-format=json-file",
                "working directory",
            ),
            ("gcc -c", "no source"),
            ("gcc -c x.c -o", "missing output"),
            ("gcc -c x.c -I", "missing value"),
        ];
        for (line, why) in table {
            let err = check(&argv(line)).expect_err(line);
            assert_eq!(err.kind(), Kind::BadArguments, "{line}");
            assert!(
                err.to_string().contains(why),
                "{line}: got {err}, want {why:?}"
            );
        }
    }

    #[test]
    fn stock_prefix_semantics_kept() {
        // Stock refuses any argument *starting* with -fplugin= or -specs=;
        // so must we, in every position and spelling.
        for arg in ["-fplugin=x.so", "-specs=x", "-fplugin", "-specs"] {
            let mut v = argv("gcc -c x.c -o x.o");
            v.push(arg.into());
            assert!(check(&v).is_err(), "{arg}");
        }
    }

    /// A server answers the print queries a stock client sends, and takes
    /// its linker options (ignored by a compile); our client's own check
    /// keeps them here (sweep R, D1).
    #[test]
    fn print_queries_are_served_not_sent() {
        for line in [
            "g++ testfile.cpp -o output.obj -c -O0 --print-search-dirs",
            "gcc -c x.c -o x.o -print-prog-name=cc1",
            "gcc -c x.c -o x.o -print-file-name=libc.so",
            "gcc -c x.c -o x.o -dumpmachine",
            "gcc -c x.c -o x.o -Xlinker --as-needed -Wl,-z,now",
        ] {
            assert!(check_serving(&argv(line)).is_ok(), "{line}");
            assert!(check(&argv(line)).is_err(), "{line}");
        }
        // Everything else is checked as ever.
        assert!(check_serving(&argv("gcc -c x.c -print-search-dirs -fplugin=x.so")).is_err());
    }

    /// A source named `@x.c` is served (its text arrives under another
    /// name); any other `@` word stays refused (sweep U, D8).
    #[test]
    fn at_sources_are_served() {
        let shape = check_serving(&argv("gcc -c @x.c -o x.o")).unwrap();
        assert_eq!(shape.input, 2);
        assert!(check(&argv("gcc -c @x.c -o x.o")).is_err());
        for line in [
            "gcc -c x.c -o x.o @x.c",
            "gcc -c @opts",
            "gcc -c x.c @/etc/args",
        ] {
            assert!(check_serving(&argv(line)).is_err(), "{line}");
        }
    }

    /// Harmless Clang front-end options go remote (sweep S, P5).
    #[test]
    fn harmless_xclang_options_pass() {
        for line in [
            "clang -c x.c -o x.o -Xclang -fno-pch-timestamp",
            "clang -c x.c -o x.o -Xclang -fno-caret-diagnostics -Xclang -Wno-unused",
            "clang -c x.c -o x.o -Xclang -debug-info-kind=constructor",
        ] {
            assert!(check(&argv(line)).is_ok(), "{line}");
        }
    }

    /// Spellings GCC accepts that stock distributes (sweep R, D5).
    #[test]
    fn other_accepted_spellings() {
        for line in [
            "gcc --std=c11 -c x.c -o x.o",
            "g++ --std=gnu++17 -c x.cc -o x.o",
            "gcc -static-pie -c x.c -o x.o",
            "gcc -Wa,--divide -c x.c -o x.o",
            "clang -emit-llvm -c x.c -o x.bc",
        ] {
            assert!(check(&argv(line)).is_ok(), "{line}");
        }
    }
}
