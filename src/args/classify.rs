//! Deciding whether a compiler command can be distributed (distcc 3.4
//! `dcc_scan_args`, facts §4.3), and finding its input and output.
//!
//! Client and daemon use the same classifier: the client to decide where to
//! compile, the daemon to refuse commands that are not plain compiles. The
//! rules are a declarative table ([`LOCAL_EXACT`], [`LOCAL_PREFIX`]) plus
//! the few checks that need context (two inputs, no `-c`, ...). Each
//! local-only verdict carries the reason, which the client logs.

use super::extensions::is_source;
use crate::error::{Error, Kind, Result};
use std::ffi::{OsStr, OsString};

/// What the compiler is asked to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `-c`: an object file.
    Compile,
    /// `-S`: assembler source (wins over `-c`).
    Assemble,
}

/// Why a command must run on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReason {
    /// A human-readable reason, logged by the client.
    pub why: String,
    /// True for `-E`: the job only preprocesses (distcc uses the cpp slots).
    pub preprocess_only: bool,
}

/// The verdict on a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A compile that can run on a server.
    Distribute(Job),
    /// A command that must run locally, and why.
    Local(LocalReason),
}

/// How the output was named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputForm {
    /// `-o FILE`: index of FILE.
    Separate(usize),
    /// `-oFILE`: index of the whole word.
    Glued(usize),
    /// A bare `FILE.o` word.
    Bare(usize),
}

/// A distributable compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The command after `-Wp,` expansion, with `-o OUTPUT` appended when
    /// the output was implied.
    pub argv: Vec<OsString>,
    /// Index in `argv` of the source file.
    pub input_index: usize,
    /// The source file.
    pub input: OsString,
    /// The output file.
    pub output: OsString,
    /// Whether the input is already preprocessed (`.i .ii .mi .mii`).
    pub preprocessed: bool,
    /// `-c` or `-S`.
    pub stage: Stage,
    /// The dependency file was asked of the preprocessor itself
    /// (`-Wp,-MD,FILE`, `-Wp,-MMD,FILE`): its default target is then named
    /// after the source, not after `-o` as the driver's `-MD` names it.
    pub preprocessor_deps: bool,
    /// The command names a dependency target the driver sees (`-MT`,
    /// `-MQ`): the driver then adds none of its own. A target passed to the
    /// preprocessor (`-Wp,-MT,x`) does not count: the driver still adds
    /// the output.
    pub driver_target: bool,
    /// The driver itself was asked for a dependency file (`-MD`, `-MMD`).
    pub driver_deps: bool,
    /// A target passed to the preprocessor (`-Wp,...,-MT,x`).
    pub preprocessor_target: bool,
    /// No `-o` was given: `-o OUTPUT` was appended.
    pub output_implied: bool,
    output_form: OutputForm,
}

/// The target a compiler names in a dependency file when the command names
/// none it takes into account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultTarget {
    /// The output (`-o`): the driver's own `-MD`/`-MMD`, and Clang's
    /// `-Wp,-MD,f`.
    Output,
    /// The source's name with `.o`: GCC's preprocessor for `-Wp,-MD,f`.
    SourceObject,
}

impl Job {
    /// The name the driver gives the output as a dependency target: `-o`'s,
    /// or without one the source's name with `.o`, even for `-S` (GCC and
    /// Clang: `gcc -S -MD b.c` writes `b.o: b.c`).
    pub fn target_name(&self) -> OsString {
        if self.output_implied {
            replace_extension(basename(self.input.as_encoded_bytes()), b"o")
        } else {
            self.output.clone()
        }
    }

    /// The target the compiler adds by itself to the dependency file, if
    /// any. The driver's `-MD` adds the output unless the driver sees a
    /// target (one given to the preprocessor goes beside it); a `-Wp,-MD,f`
    /// alone leaves the preprocessor to name one when no target at all
    /// reaches it. With both, the driver's rule holds (GCC: the `-Wp` file
    /// names `-o`).
    pub fn default_target(&self) -> Option<DefaultTarget> {
        if self.driver_deps {
            return (!self.driver_target).then_some(DefaultTarget::Output);
        }
        if !self.preprocessor_deps || self.driver_target || self.preprocessor_target {
            return None;
        }
        Some(if super::cross::named_clang(&self.argv[0]) {
            DefaultTarget::Output
        } else {
            DefaultTarget::SourceObject
        })
    }
}

impl Job {
    /// The command with the source replaced by `input` and the output by
    /// `output` (what the daemon runs on its temporary files).
    pub fn with_paths(&self, input: &OsStr, output: &OsStr) -> Vec<OsString> {
        let mut argv = self.argv.clone();
        argv[self.input_index] = input.to_os_string();
        match self.output_form {
            OutputForm::Separate(i) | OutputForm::Bare(i) => argv[i] = output.to_os_string(),
            OutputForm::Glued(i) => {
                let mut word = OsString::from("-o");
                word.push(output);
                argv[i] = word;
            }
        }
        argv
    }
}

/// Exact arguments that make a job local, with the reason.
const LOCAL_EXACT: &[(&str, &str)] = &[
    (
        "-march=native",
        "-march=native depends on this machine's CPU",
    ),
    (
        "-mtune=native",
        "-mtune=native depends on this machine's CPU",
    ),
    ("-flto", "-flto is handled locally (as distcc 3.4)"),
    (
        "-fprofile-arcs",
        "profiling output is written on this machine",
    ),
    (
        "-ftest-coverage",
        "coverage output is written on this machine",
    ),
    ("--coverage", "coverage output is written on this machine"),
    (
        "-fprofile-correction",
        "profile data is read on this machine",
    ),
    ("-frepo", "-frepo needs the repository files here"),
    (
        "-include-pch",
        "the precompiled header is read on this machine",
    ),
    ("-ivfsoverlay", "the overlay file is read on this machine"),
    ("--config", "the configuration file is read on this machine"),
];

/// Argument prefixes that make a job local, with the reason.
const LOCAL_PREFIX: &[(&str, &str)] = &[
    (
        "-fprofile-generate",
        "profiling output is written on this machine",
    ),
    ("-fprofile-use", "profile data is read on this machine"),
    ("-fauto-profile", "profile data is read on this machine"),
    (
        "-fprofile-instr-use",
        "profile data is read on this machine",
    ),
    (
        "-fprofile-sample-use",
        "profile data is read on this machine",
    ),
    (
        "-fprofile-remapping-file",
        "the remapping file is read on this machine",
    ),
    (
        "-fprofile-list=",
        "the profile list is read on this machine",
    ),
    ("-fsanitize-ignorelist=", "the list is read on this machine"),
    ("-fsanitize-blacklist=", "the list is read on this machine"),
    (
        "-fsanitize-coverage-allowlist=",
        "the list is read on this machine",
    ),
    (
        "-fsanitize-coverage-ignorelist=",
        "the list is read on this machine",
    ),
    (
        "-fsanitize-coverage-blocklist=",
        "the list is read on this machine",
    ),
    (
        "-fsanitize-coverage-whitelist=",
        "the list is read on this machine",
    ),
    (
        "-fsanitize-coverage-blacklist=",
        "the list is read on this machine",
    ),
    ("-fxray-attr-list=", "the list is read on this machine"),
    (
        "-frewrite-map-file",
        "the rewrite map is read on this machine",
    ),
    (
        "-fdebug-cpp",
        "the preprocessor's annotations are read by no remote compiler",
    ),
    (
        "-fxray-always-instrument=",
        "the list is read on this machine",
    ),
    (
        "-fxray-never-instrument=",
        "the list is read on this machine",
    ),
    ("-fmodule-file=", "module files are read on this machine"),
    ("-fmodule-map-file=", "module maps are read on this machine"),
    (
        "--config=",
        "the configuration file is read on this machine",
    ),
    ("-specs=", "-specs= names a file on this machine"),
    ("-dr", "-dr writes RTL dumps"),
];

/// Options whose value is the next word, so that word is not taken for a
/// source or output file.
const TAKES_VALUE: &[&str] = &[
    "-I",
    "-include",
    "-imacros",
    "-isystem",
    "-idirafter",
    "-iquote",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-isysroot",
    "--sysroot",
    "-D",
    "-U",
    "-MF",
    "-MT",
    "-MQ",
    "-Xpreprocessor",
    "-Xassembler",
    "-Xlinker",
    "-aux-info",
    "--param",
    "-arch",
    "-target",
    "-L",
    "-l",
    "-u",
    "-A",
    "-V",
    "-b",
    "-dumpbase",
    "-dumpdir",
    "-include-pch",
    "-ivfsoverlay",
    "--config",
    "-MJ",
];

fn local(why: impl Into<String>) -> Verdict {
    Verdict::Local(LocalReason {
        why: why.into(),
        preprocess_only: false,
    })
}

/// Replaces each `-Wp,a,b` by `a` `b`; `-Wp,-MD,f` and `-Wp,-MMD,f` become
/// `-MD -MF f` and `-MMD -MF f` (distcc's `dcc_expand_preprocessor_options`),
/// and so do their longer forms: `-Wp,-MD,f,-DX` is `-MD -MF f -DX`.
pub fn expand_preprocessor_options(argv: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    for arg in argv {
        let bytes = arg.as_encoded_bytes();
        let Some(rest) = bytes.strip_prefix(b"-Wp,") else {
            out.push(arg.clone());
            continue;
        };
        let parts: Vec<&[u8]> = rest.split(|&b| b == b',').collect();
        if parts.len() >= 2 && (parts[0] == b"-MD" || parts[0] == b"-MMD") {
            out.push(os_from(parts[0]));
            out.push(OsString::from("-MF"));
            out.extend(parts[1..].iter().map(|p| os_from(p)));
        } else {
            out.extend(parts.into_iter().map(os_from));
        }
    }
    out
}

fn os_from(bytes: &[u8]) -> OsString {
    // SAFETY: the bytes are a sub-slice of an OsString split at ASCII commas,
    // which keeps them valid for the platform encoding.
    unsafe { OsStr::from_encoded_bytes_unchecked(bytes) }.to_os_string()
}

/// Classifies a compiler command (argv[0] = compiler).
///
/// Returns an error (exit 101) when argv[0] itself looks like an option:
/// that is a misspelt distcc option, not a compiler.
pub fn classify(argv: &[OsString]) -> Result<Verdict> {
    let preprocessor_deps = argv.iter().any(|a| {
        let a = a.as_encoded_bytes();
        a.starts_with(b"-Wp,-MD,") || a.starts_with(b"-Wp,-MMD,")
    });
    let driver_target = argv.iter().skip(1).any(|a| {
        let a = a.as_encoded_bytes();
        a.starts_with(b"-MT") || a.starts_with(b"-MQ")
    });
    let driver_deps = argv.iter().skip(1).any(|a| a == "-MD" || a == "-MMD");
    let preprocessor_target = argv.iter().skip(1).any(|a| {
        a.as_encoded_bytes()
            .strip_prefix(b"-Wp,")
            .is_some_and(|rest| {
                rest.split(|&b| b == b',')
                    .any(|p| p.starts_with(b"-MT") || p.starts_with(b"-MQ"))
            })
    });
    let preprocessor_dep_files = argv
        .iter()
        .filter(|a| {
            let a = a.as_encoded_bytes();
            a.starts_with(b"-Wp,-MD,") || a.starts_with(b"-Wp,-MMD,")
        })
        .count();
    let driver_dep_file = argv
        .iter()
        .skip(1)
        .any(|a| a.as_encoded_bytes().starts_with(b"-MF"));
    if preprocessor_dep_files > 1 || (preprocessor_deps && driver_dep_file) {
        // GCC writes the -Wp file, Clang the last one named, and a second
        // -MD of Clang's driver is unused (fatal with -Werror): which file
        // is written, and how, is the compiler's own business.
        return Ok(local(
            "-Wp,-MD,FILE with another dependency file: only the compiler here knows which it writes",
        ));
    }
    let argv = expand_preprocessor_options(argv);
    if argv.windows(2).any(|w| w[0] == "-MF" && w[1] == "-") || argv.iter().any(|a| a == "-MF-") {
        return Ok(local("-MF - writes the dependencies to standard output"));
    }
    // GCC refuses dependency options without a dependency file to write
    // (Clang warns that they are unused): here, as it would.
    let dependency_file = argv.iter().any(|a| a == "-MD" || a == "-MMD");
    if let Some(lone) = argv.iter().skip(1).find(|a| {
        let a = a.as_encoded_bytes();
        a == b"-MG"
            || (!dependency_file
                && (a == b"-MP"
                    || a.starts_with(b"-MF")
                    || a.starts_with(b"-MT")
                    || a.starts_with(b"-MQ")))
    }) {
        return Ok(local(format!(
            "{} only works with -M or -MM{}: the compiler says so here",
            lone.to_string_lossy(),
            if lone == "-MG" { "" } else { ", -MD or -MMD" }
        )));
    }
    let Some(compiler) = argv.first() else {
        return Err(Error::new(Kind::BadArguments, "no compiler command given"));
    };
    if compiler.as_encoded_bytes().starts_with(b"-") {
        return Err(Error::new(
            Kind::BadArguments,
            format!("unrecognized distcc option: {}", compiler.to_string_lossy()),
        ));
    }
    let mut input: Option<usize> = None;
    // The `-x` language in force where the source is named.
    let mut lang: Vec<u8> = b"none".to_vec();
    let mut input_lang: Vec<u8> = lang.clone();
    let mut output: Option<OutputForm> = None;
    let mut seen_c = false;
    let mut seen_s = false;
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].as_encoded_bytes();
        let text = String::from_utf8_lossy(arg);
        if arg.first() == Some(&b'-') && arg.len() > 1 {
            if arg == b"-E" {
                return Ok(Verdict::Local(LocalReason {
                    why: "-E only preprocesses".into(),
                    preprocess_only: true,
                }));
            }
            if let Some((_, why)) = LOCAL_EXACT.iter().find(|(a, _)| a.as_bytes() == arg) {
                return Ok(local(*why));
            }
            if let Some((_, why)) = LOCAL_PREFIX
                .iter()
                .find(|(p, _)| arg.starts_with(p.as_bytes()))
            {
                return Ok(local(format!("{text}: {why}")));
            }
            if arg.starts_with(b"-MJ") {
                return Ok(local(format!(
                    "{text} writes a compilation-database entry on this machine"
                )));
            }
            if arg.starts_with(b"-M") && !is_distributable_dep_option(arg) {
                return Ok(local(format!("{text} asks for dependency output only")));
            }
            if arg.starts_with(b"-Wa,")
                && (crate::bytes::contains(arg, b",-a") || crate::bytes::contains(arg, b"--MD"))
            {
                return Ok(local(format!("{text} writes assembler listings or deps")));
            }
            if arg.starts_with(b"-x") {
                let given: &[u8] = if arg == b"-x" {
                    i += 1;
                    argv.get(i).map_or(b"", |a| a.as_encoded_bytes())
                } else {
                    &arg[2..]
                };
                if !(given.starts_with(b"c")
                    || given.starts_with(b"objective-c")
                    || given.starts_with(b"go")
                    || given == b"none")
                {
                    return Ok(local(format!(
                        "language {} is not compiled remotely",
                        String::from_utf8_lossy(given)
                    )));
                }
                if given.ends_with(b"-header") {
                    // Built from preprocessed text, a precompiled header has
                    // no macros: every user of it would break (stock builds
                    // such a broken header remotely).
                    return Ok(local(format!(
                        "-x {} builds a precompiled header, which needs the header's macros",
                        String::from_utf8_lossy(given)
                    )));
                }
                lang = given.to_vec();
            } else if arg == b"-c" {
                seen_c = true;
            } else if arg == b"-S" {
                seen_s = true;
            } else if arg == b"-o" {
                if output.is_some() {
                    return Ok(local("more than one output (linking?)"));
                }
                i += 1;
                if i >= argv.len() {
                    return Ok(local("-o without a file name"));
                }
                output = Some(OutputForm::Separate(i));
            } else if arg.starts_with(b"-o") {
                if output.is_some() {
                    return Ok(local("more than one output (linking?)"));
                }
                output = Some(OutputForm::Glued(i));
            } else if TAKES_VALUE.iter().any(|o| o.as_bytes() == arg) {
                i += 1;
            }
        } else if is_source(argv[i].as_os_str()) {
            if input.is_some() {
                return Ok(local("more than one source file"));
            }
            input = Some(i);
            input_lang = lang.clone();
        } else if arg.ends_with(b".o") {
            if output.is_some() {
                return Ok(local("more than one output (linking?)"));
            }
            output = Some(OutputForm::Bare(i));
        }
        i += 1;
    }
    if !seen_c && !seen_s {
        return Ok(local("no -c or -S: not a compile (linking?)"));
    }
    let Some(input_index) = input else {
        return Ok(local("no source file to distribute"));
    };
    let input_path = argv[input_index].clone();
    let base = basename(input_path.as_encoded_bytes());
    if base.starts_with(b"conftest.") || base.starts_with(b"tmp.conftest.") {
        return Ok(local(format!(
            "{} is an autoconf test file",
            String::from_utf8_lossy(base)
        )));
    }
    let stage = if seen_s {
        Stage::Assemble
    } else {
        Stage::Compile
    };
    let mut argv = argv;
    let (output_name, form) = match output {
        Some(form) => (output_name(&argv, form), form),
        None => {
            if base.len() < 3 {
                return Ok(local(format!(
                    "source name {} is too short to derive an output name",
                    String::from_utf8_lossy(base)
                )));
            }
            let ext: &[u8] = if stage == Stage::Assemble { b"s" } else { b"o" };
            let name = replace_extension(base, ext);
            argv.push(OsString::from("-o"));
            argv.push(name.clone());
            (name, OutputForm::Separate(argv.len() - 1))
        }
    };
    if output_name == "-" {
        return Ok(local("output goes to stdout"));
    }
    Ok(Verdict::Distribute(Job {
        // `-x cpp-output` (and the C++/Objective-C forms) says the source
        // is preprocessed whatever its name: the compiler does not run the
        // preprocessor on it, so neither may we (it would give nothing).
        // Any other `-x` says it is not, whatever its name (`-x c pre.i`
        // is preprocessed, and its `-MD` file written).
        preprocessed: if input_lang == b"none" {
            super::extensions::is_preprocessed(&input_path)
        } else {
            input_lang.ends_with(b"cpp-output")
        },
        argv,
        input_index,
        input: input_path,
        output: output_name,
        stage,
        preprocessor_deps,
        driver_target,
        driver_deps,
        preprocessor_target,
        output_implied: output.is_none(),
        output_form: form,
    }))
}

fn is_distributable_dep_option(arg: &[u8]) -> bool {
    matches!(arg, b"-MD" | b"-MMD" | b"-MG" | b"-MP")
        || arg.starts_with(b"-MF")
        || arg.starts_with(b"-MT")
        || arg.starts_with(b"-MQ")
}

pub(crate) fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

fn output_name(argv: &[OsString], form: OutputForm) -> OsString {
    match form {
        OutputForm::Separate(i) | OutputForm::Bare(i) => argv[i].clone(),
        OutputForm::Glued(i) => os_from(&argv[i].as_encoded_bytes()[2..]),
    }
}

/// `name` with its extension replaced by `ext` (appended if there is none).
pub(crate) fn replace_extension(name: &[u8], ext: &[u8]) -> OsString {
    let stem = match name.iter().rposition(|&b| b == b'.') {
        Some(dot) if !name[dot + 1..].contains(&b'/') => &name[..dot],
        _ => name,
    };
    let mut out = stem.to_vec();
    out.push(b'.');
    out.extend_from_slice(ext);
    // SAFETY: built from a valid encoded slice plus ASCII.
    unsafe { OsString::from_encoded_bytes_unchecked(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn job(s: &str) -> Job {
        match classify(&argv(s)).unwrap() {
            Verdict::Distribute(j) => j,
            Verdict::Local(r) => panic!("{s}: local: {}", r.why),
        }
    }

    fn is_local(s: &str) -> bool {
        matches!(classify(&argv(s)).unwrap(), Verdict::Local(_))
    }

    #[test]
    fn distributable_compiles() {
        let j = job("gcc -c hello.c -o hello.o");
        assert_eq!(j.input, "hello.c");
        assert_eq!(j.output, "hello.o");
        assert_eq!(j.stage, Stage::Compile);
        assert!(!j.preprocessed);

        let j = job("cc -c src/x.cpp");
        assert_eq!(j.output, "x.o");
        assert_eq!(j.argv[j.argv.len() - 2..], argv("-o x.o")[..]);

        let j = job("cc -c -S foo.c");
        assert_eq!(j.stage, Stage::Assemble);
        assert_eq!(j.output, "foo.s");

        let j = job("gcc -c testtmp.c -otesttmp.o");
        assert_eq!(j.output, "testtmp.o");
        assert_eq!(
            j.with_paths(OsStr::new("/t/in.i"), OsStr::new("/t/out.o")),
            argv("gcc -c /t/in.i -o/t/out.o")
        );

        assert!(job("cc -c x.i").preprocessed);
        assert!(job("gcc -x cpp-output -c b.c").preprocessed);
        assert!(job("g++ -x c++-cpp-output -c b.c").preprocessed);
        assert!(!job("gcc -c b.c -x cpp-output").preprocessed);
        assert!(!job("gcc -x c -MMD -c pre.i").preprocessed);
        assert!(job("gcc -x none -c pre.i").preprocessed);
        assert!(is_local("gcc -MD -MF - -c b.c"));
        assert!(is_local("gcc -c b.c -Wp,-MD,wp.d -MF out/x.d"));
        assert!(is_local("clang -MF out/x.d -c -Wp,-MD,wp.d,-MP b.c"));
        assert!(is_local("clang -c b.c -Wp,-MD,a.d -Wp,-MMD,b.d"));
        assert!(!is_local("gcc -c b.c -Wp,-MD,wp.d"));
        assert!(!is_local("gcc -c b.c -MD -MF x.d"));
        assert_eq!(job("cc -x c++ -c x.c").input, "x.c");
        assert_eq!(job("cc -xc -c x.c").input, "x.c");
        assert_eq!(job("cc -c x.c -MD -MF x.d -MT t").output, "x.o");
        assert_eq!(job("cc -I inc.c -c x.c").input, "x.c");
        assert_eq!(job("cc -c -o /dev/null x.c").output, "/dev/null");
    }

    #[test]
    fn dependency_options_without_a_dependency_file_stay_here() {
        for cmd in [
            "gcc -c b.c -MT tgt",
            "gcc -c b.c -MQ tgt",
            "gcc -c b.c -MTtgt",
            "gcc -c b.c -MF x.d",
            "gcc -c b.c -MP",
            "gcc -c b.c -Wp,-MT,t",
            "gcc -c b.c -MD -MG",
        ] {
            assert!(is_local(cmd), "{cmd}");
        }
        for cmd in [
            "gcc -c b.c -MD -MT tgt",
            "gcc -c b.c -MMD -MP -MF x.d",
            "gcc -c b.c -Wp,-MD,x.d,-MT,t",
            "gcc -c b.c -MD -Wp,-MT,t",
        ] {
            assert!(!is_local(cmd), "{cmd}");
        }
    }

    #[test]
    fn default_targets() {
        let t = |s: &str| job(s).default_target();
        assert_eq!(t("gcc -c b.c"), None);
        assert_eq!(t("gcc -c b.c -MD"), Some(DefaultTarget::Output));
        assert_eq!(t("gcc -c b.c -MD -MT x"), None);
        assert_eq!(t("gcc -c b.c -MD -Wp,-MT,x"), Some(DefaultTarget::Output));
        assert_eq!(t("gcc -c b.c -Wp,-MD,f"), Some(DefaultTarget::SourceObject));
        assert_eq!(t("clang -c b.c -Wp,-MD,f"), Some(DefaultTarget::Output));
        assert_eq!(t("gcc -c b.c -Wp,-MD,f,-MT,x"), None);
        assert_eq!(t("gcc -c b.c -Wp,-MD,f -MT x"), None);
        assert_eq!(t("gcc -c b.c -MD -Wp,-MD,f"), Some(DefaultTarget::Output));
    }

    #[test]
    fn local_only_cases() {
        for cmd in [
            "gcc -E x.c",
            "gcc -c x.c -M",
            "gcc -c x.c -MM",
            "gcc -c x.c -march=native",
            "gcc -c x.c -mtune=native",
            "gcc -c x.c -flto",
            "gcc -c x.c -Wa,-alh=x.lst",
            "gcc -c x.c -Wa,--MD,x.d",
            "gcc -c x.c -specs=foo",
            "gcc -c x.c -fprofile-arcs",
            "gcc -c x.c --coverage",
            "gcc -c x.c -fprofile-generate=dir",
            "gcc -c x.c -frepo",
            "gcc -x assembler -c x.c",
            "gcc -xassembler -c x.c",
            "gcc -x c-header -c cmake_pch.h.c -o cmake_pch.h.gch",
            "g++ -xc++-header -c pch.hxx.cxx -o pch.hxx.gch",
            "gcc -c x.c -dr",
            "clang -c x.c -fsanitize=cfi -fsanitize-ignorelist=ign.txt",
            "clang -c x.c -fsanitize-blacklist=ign.txt",
            "clang -c x.c -fsanitize-coverage=trace-pc -fsanitize-coverage-allowlist=a.txt",
            "clang -c x.c -fprofile-instr-use=x.profdata",
            "clang -c x.c -fprofile-sample-use=x.prof",
            "clang -c x.c -fprofile-list=l.txt",
            "clang -c x.c -frewrite-map-file=x.map",
            "gcc -c x.c -fdebug-cpp",
            "clang -c x.c -include-pch x.pch",
            "clang -c x.c --config my.cfg",
            "clang -c x.c --config=my.cfg",
            "clang -c x.c -ivfsoverlay o.yaml",
            "clang -c x.c -fxray-attr-list=l.txt",
            "clang -c x.c -MJ x.json",
            "gcc -c x.c y.c",
            "gcc -c x.c -o a.o -o b.o",
            "gcc x.c -o x",
            "gcc -c",
            "gcc -c -",
            "gcc -c conftest.c",
            "gcc -c x.c -o -",
            "gcc -c x.s",
        ] {
            assert!(is_local(cmd), "{cmd} should be local");
        }
        let Verdict::Local(r) = classify(&argv("gcc -E x.c")).unwrap() else {
            panic!()
        };
        assert!(r.preprocess_only);
        let Verdict::Local(r) = classify(&argv("clang -c x.c -MJx.json")).unwrap() else {
            panic!()
        };
        assert!(r.why.contains("compilation-database"), "{}", r.why);
    }

    #[test]
    fn misspelt_option_is_an_error() {
        let e = classify(&argv("--bogus -c x.c")).unwrap_err();
        assert_eq!(e.kind(), Kind::BadArguments);
    }

    #[test]
    fn wp_expansion() {
        assert_eq!(
            expand_preprocessor_options(&argv("cc -Wp,-MD,dep.d -c x.c")),
            argv("cc -MD -MF dep.d -c x.c")
        );
        assert_eq!(
            expand_preprocessor_options(&argv("cc -Wp,-DA,-DB x.c")),
            argv("cc -DA -DB x.c")
        );
        assert_eq!(job("cc -Wp,-MMD,d.d -c x.c").argv[1], "-MMD");
        // Longer forms keep the file name as -MF's value.
        assert_eq!(
            expand_preprocessor_options(&argv("cc -Wp,-MD,dep.d,-DX=1 -c x.c")),
            argv("cc -MD -MF dep.d -DX=1 -c x.c")
        );
        assert_eq!(
            expand_preprocessor_options(&argv("cc -Wp,-MMD,.a.o.d,-MT,foo -c x.c")),
            argv("cc -MMD -MF .a.o.d -MT foo -c x.c")
        );
        assert_eq!(job("cc -Wp,-MD,dep.d,-DX=1 -c x.c").input, "x.c");
    }

    #[test]
    fn with_paths_replaces_bare_output_and_input() {
        let j = job("cc -c x.c x.o");
        assert_eq!(
            j.with_paths(OsStr::new("in.i"), OsStr::new("out.o")),
            argv("cc -c in.i out.o")
        );
    }
}
