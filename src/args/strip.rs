//! The server command for plain mode and the local preprocessor command
//! (distcc 3.4 `strip.c` and `dcc_make_cpp_args`, facts §4.4).
//!
//! In protocols 1 and 2 the client preprocesses, so every option that only
//! matters to the preprocessor or linker is removed from what the server
//! runs; dependency options stay in the local cpp command so the `.d` file is
//! written here.

use super::classify::Job;
use std::ffi::OsString;

/// Removed together with the following word when given alone.
const STRIP_WITH_VALUE: &[&str] = &[
    "-D",
    "-I",
    "-U",
    "-L",
    "-l",
    "-MF",
    "-MT",
    "-MQ",
    "-include",
    "-imacros",
    "-iprefix",
    "-iwithprefix",
    "-isystem",
    "-iwithprefixbefore",
    "-idirafter",
    "-iquote",
    "-isysroot",
    "-imultilib",
    "-Xpreprocessor",
    "-Xlinker",
];

/// Removed when the word starts with one of these (the glued forms of the
/// options above, which Clang compiling the preprocessed source would call
/// unused, an error under `-Werror`: sweep S, D2).
const STRIP_PREFIX: &[&str] = &[
    "-Wp,",
    "-Wl,",
    "-D",
    "-U",
    "-I",
    "-l",
    "-L",
    "-MF",
    "-MT",
    "-MQ",
    "-isystem",
    "-stdlib",
    "-iquote",
    "-imacros",
    "-idirafter",
    "-iprefix",
    "-iwithprefix",
    "-isysroot",
    "-imultilib",
    "-fmacro-prefix-map=",
];

/// The file of a glued `-include<file>` (not Clang's `-include-pch`,
/// whose file is the next word).
fn glued_include(arg: &[u8]) -> Option<&[u8]> {
    arg.strip_prefix(b"-include")
        .filter(|f| !f.is_empty() && !arg.starts_with(b"-include-"))
}

/// The headers of the command's `-include X` and `-includeX` options, in
/// order.
pub fn included_headers(argv: &[OsString]) -> Vec<&std::ffi::OsStr> {
    let mut out = Vec::new();
    let mut words = argv.iter().skip(1);
    while let Some(w) = words.next() {
        if w == "-include" {
            out.extend(words.next().map(|h| h.as_os_str()));
        } else if let Some(h) = glued_include(w.as_encoded_bytes()) {
            // SAFETY: a suffix of an OsStr's bytes after an ASCII prefix.
            out.push(unsafe { std::ffi::OsStr::from_encoded_bytes_unchecked(h) });
        }
    }
    out
}

/// Removed when the word is exactly one of these.
const STRIP_EXACT: &[&str] = &[
    "-undef",
    "-nostdinc",
    "-nostdinc++",
    "-MD",
    "-MMD",
    "-MG",
    "-MP",
];

/// The argv the server gets in plain mode: preprocessor and linker options removed.
pub fn server_argv(argv: &[OsString]) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i].as_encoded_bytes();
        if i > 0 {
            // The command's own source language becomes its preprocessed
            // form: a server that keeps `-x c++` (stock's, which writes
            // the text to a `.i` file) would preprocess it a second time
            // (sweep Q, D3).
            if arg == b"-x"
                && let Some(pp) = argv
                    .get(i + 1)
                    .and_then(|l| preprocessed_language(l.as_encoded_bytes()))
            {
                out.extend(["-x".into(), pp.into()]);
                i += 2;
                continue;
            }
            // Glued, it goes as two words: stock's server reads the word
            // after any `-x...` as its language (and keeps `-xc -O2` local).
            if let Some(pp) = arg.strip_prefix(b"-x").and_then(preprocessed_language) {
                out.extend(["-x".into(), pp.into()]);
                i += 1;
                continue;
            }
            if STRIP_WITH_VALUE.iter().any(|o| o.as_bytes() == arg) {
                i += 2;
                continue;
            }
            if STRIP_EXACT.iter().any(|o| o.as_bytes() == arg)
                || STRIP_PREFIX.iter().any(|p| arg.starts_with(p.as_bytes()))
                || glued_include(arg).is_some()
            {
                i += 1;
                continue;
            }
        }
        out.push(argv[i].clone());
        i += 1;
    }
    out
}

/// The preprocessed form of a source language named by `-x`.
pub fn preprocessed_language(language: &[u8]) -> Option<&'static str> {
    match language {
        b"c" => Some("cpp-output"),
        b"c++" => Some("c++-cpp-output"),
        b"objective-c" => Some("objective-c-cpp-output"),
        b"objective-c++" => Some("objective-c++-cpp-output"),
        _ => None,
    }
}

/// The local preprocessor command: `-o X`/`-oX` removed, `-c`/`-S` become `-E`.
/// Its stdout is the preprocessed source.
///
/// Unlike distcc 3.4, `-MD`/`-MMD` write the `.d` file where a local compile
/// would (beside the output when there is no `-MF`) and name the output as
/// its target, because `-MF` and `-MQ` are added from the output name.
pub fn cpp_argv(job: &Job) -> Vec<OsString> {
    let mut out = Vec::with_capacity(job.argv.len());
    let mut i = 0;
    while i < job.argv.len() {
        let arg = job.argv[i].as_encoded_bytes();
        if i > 0 && arg == b"-o" {
            i += 2;
            continue;
        }
        if i > 0 && arg.starts_with(b"-o") {
            i += 1;
            continue;
        }
        if i > 0 && (arg == b"-c" || arg == b"-S") {
            out.push(OsString::from("-E"));
        } else if i > 0 && arg == b"-fpch-preprocess" && include_texts_present(&job.argv) {
            // With it, GCC's preprocessor writes a `#pragma GCC
            // pch_preprocess` naming the .gch in place of the header's
            // text, and a server has no such file: every such compile
            // failed there (meson's PCH builds, sweep R). The header's
            // text gives the very object (the server's command keeps the
            // option, so the producer string is the local one).
        } else {
            out.push(job.argv[i].clone());
        }
        i += 1;
    }
    let has = |pred: &dyn Fn(&[u8]) -> bool| job.argv.iter().any(|a| pred(a.as_encoded_bytes()));
    let driver_deps = has(&|a| a == b"-MD" || a == b"-MMD");
    if driver_deps && !has(&|a| a.starts_with(b"-MF")) {
        out.push(OsString::from("-MF"));
        out.push(super::classify::replace_extension(
            job.output.as_encoded_bytes(),
            b"d",
        ));
    }
    // The driver names the output as the target of its own -MD/-MMD when
    // compiling, but not under -E: without this, `-MF d -o sub/a.o` would
    // name `a.o` and make would never rebuild sub/a.o. GCC's preprocessor
    // names the source's `.o` for its own `-Wp,-MD,f`, as here; Clang names
    // the output for that too.
    if job.default_target() == Some(super::classify::DefaultTarget::Output) {
        out.push(OsString::from("-MQ"));
        out.push(job.target_name());
    }
    if warnings_read_comments(&job.argv) && !has(&|a| a == b"-C" || a == b"-CC") {
        out.push(OsString::from("-C"));
    }
    out
}

/// Whether every `-include X` of the command has X's text beside it (a
/// `.gch` can stand alone: then only the precompiled header has it).
fn include_texts_present(argv: &[OsString]) -> bool {
    included_headers(argv)
        .iter()
        .all(|h| std::path::Path::new(h).is_file())
}

/// Whether the compile's warnings depend on comments, which the
/// preprocessor drops unless told to keep them (`-C`): GCC's
/// `-Wimplicit-fallthrough` at levels 1 to 4 (`-Wextra` sets 3) accepts a
/// `/* FALLTHROUGH */` comment, and Clang's `-Wdocumentation` checks doc
/// comments. Without them the server's compile warned where the local one
/// did not (an error with `-Werror`), or the other way round (sweep S, D5).
/// The preprocessed source is then larger (comments of headers too), so
/// only such compiles keep them.
fn warnings_read_comments(argv: &[OsString]) -> bool {
    // An explicit setting wins over -Wextra's, whatever the order (GCC).
    let mut explicit = None;
    let mut extra = false;
    let mut documentation = false;
    for a in argv.iter().skip(1).map(|a| a.as_encoded_bytes()) {
        match a {
            b"-Wextra" | b"-W" => extra = true,
            b"-Wimplicit-fallthrough" => explicit = Some(true),
            b"-Wno-implicit-fallthrough" => explicit = Some(false),
            b"-Wdocumentation" | b"-Weverything" => documentation = true,
            b"-Wno-documentation" => documentation = false,
            _ => {
                if let Some(level) = a.strip_prefix(b"-Wimplicit-fallthrough=") {
                    explicit = Some(matches!(level, b"1" | b"2" | b"3" | b"4"));
                }
            }
        }
    }
    explicit.unwrap_or(extra) || documentation
}

#[cfg(test)]
mod tests {
    use super::super::classify::{Verdict, classify};
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn stock_strip_examples() {
        assert_eq!(
            server_argv(&argv("cc -Dhello hello.c -c")),
            argv("cc hello.c -c")
        );
        assert_eq!(
            server_argv(&argv("cc -c hello.c -D -D")),
            argv("cc -c hello.c")
        );
        assert_eq!(
            server_argv(&argv(
                "gcc -I inc -Iinc2 -isystem /s -include a.h -MD -MF x.d -MT t -O2 -g -c x.c -o x.o -lm -Wl,-z -undef -stdlib=libc++"
            )),
            argv("gcc -O2 -g -c x.c -o x.o")
        );
    }

    /// `-fpch-preprocess` stays when a header's text is missing (its .gch
    /// alone stands in for it).
    #[test]
    fn pch_preprocess_needs_the_header_text() {
        let c = cpp("gcc -include /nonexistent/p.h -fpch-preprocess -c x.c -o x.o");
        assert!(c.iter().any(|a| a == "-fpch-preprocess"), "{c:?}");
    }

    /// A source language the command names itself goes to the server in
    /// its preprocessed form (sweep Q, D3).
    #[test]
    fn own_languages_are_sent_preprocessed() {
        assert_eq!(
            server_argv(&argv("g++ -x c++ -c a.c -o a.o")),
            argv("g++ -x c++-cpp-output -c a.c -o a.o")
        );
        assert_eq!(
            server_argv(&argv("gcc -xc -c a.cc -o a.o")),
            argv("gcc -x cpp-output -c a.cc -o a.o")
        );
        assert_eq!(
            server_argv(&argv("clang -x objective-c++ -c a.c")),
            argv("clang -x objective-c++-cpp-output -c a.c")
        );
        assert_eq!(
            server_argv(&argv("gcc -x none -c a.c")),
            argv("gcc -x none -c a.c")
        );
    }

    /// Comments are kept for the warnings that read them (sweep S, D5).
    #[test]
    fn comments_kept_for_warnings_that_read_them() {
        for (line, keep) in [
            ("gcc -Wextra -c x.c -o x.o", true),
            ("gcc -Wimplicit-fallthrough -c x.c -o x.o", true),
            ("gcc -Wimplicit-fallthrough=2 -c x.c -o x.o", true),
            ("gcc -Wimplicit-fallthrough=5 -c x.c -o x.o", false),
            ("gcc -Wno-implicit-fallthrough -Wextra -c x.c -o x.o", false),
            ("gcc -Wextra -Wimplicit-fallthrough=0 -c x.c -o x.o", false),
            ("clang -Wdocumentation -c x.c -o x.o", true),
            ("gcc -Wall -O2 -c x.c -o x.o", false),
        ] {
            let c = cpp(line);
            assert_eq!(c.iter().any(|a| a == "-C"), keep, "{line}: {c:?}");
        }
        assert_eq!(
            cpp("gcc -Wextra -CC -c x.c -o x.o")
                .iter()
                .filter(|a| *a == "-C" || *a == "-CC")
                .count(),
            1
        );
    }

    /// Glued preprocessor options, and the separate ones stock keeps, go
    /// too (sweep S, D2); `-ffile-prefix-map` (debug information) and
    /// Clang's `-include-pch FILE` stay.
    #[test]
    fn glued_preprocessor_options() {
        assert_eq!(
            server_argv(&argv(
                "clang -Werror -include/a/pre.h -imacros/a/m.h -idirafter/a -iprefix/p/ -iwithprefixinc -iwithprefixbeforeinc -isysroot/s -isysroot /s -imultilib m -imultilibm -fmacro-prefix-map=/a=/b -ffile-prefix-map=/a=/b -include-pch p.pch -c a.c -o a.o"
            )),
            argv("clang -Werror -ffile-prefix-map=/a=/b -include-pch p.pch -c a.c -o a.o")
        );
    }

    /// The local preprocessor command of the compile `s`.
    fn cpp(s: &str) -> Vec<OsString> {
        let Verdict::Distribute(job) = classify(&argv(s)).unwrap() else {
            panic!("{s} is not distributed")
        };
        cpp_argv(&job)
    }

    #[test]
    fn cpp_command() {
        assert_eq!(
            cpp("gcc -MD -O2 -c x.c -o out/x.o"),
            argv("gcc -MD -O2 -E x.c -MF out/x.d -MQ out/x.o")
        );
        assert_eq!(
            cpp("gcc -MMD -MF d.d -MT t -c x.c -o x.o"),
            argv("gcc -MMD -MF d.d -MT t -E x.c")
        );
        // -MF of its own: the target is still the output.
        assert_eq!(
            cpp("gcc -MMD -MF sub/a.d -c a.c -o sub/a.o"),
            argv("gcc -MMD -MF sub/a.d -E a.c -MQ sub/a.o")
        );
        // The preprocessor's own -MD names the source's .o, as locally.
        assert_eq!(
            cpp("gcc -Wp,-MD,sub/.a.d -c a.c -o sub/a.o"),
            argv("gcc -MD -MF sub/.a.d -E a.c")
        );
        // A preprocessor-only target: the driver's is still added.
        assert_eq!(
            cpp("gcc -MD -Wp,-MT,foo -c m.c -o obj/m.o"),
            argv("gcc -MD -MT foo -E m.c -MF obj/m.d -MQ obj/m.o")
        );
        // Clang names the output for that spelling too.
        assert_eq!(
            cpp("clang -Wp,-MMD,sub/.a.d -c a.c -o sub/a.o"),
            argv("clang -MMD -MF sub/.a.d -E a.c -MQ sub/a.o")
        );
        assert_eq!(
            cpp("clang -Wp,-MD,a.d -MT t -c a.c -o sub/a.o"),
            argv("clang -MD -MF a.d -MT t -E a.c")
        );
        assert_eq!(cpp("gcc -S x.c -ox.s"), argv("gcc -E x.c"));
    }
}
