//! Options that make the compiler write files beside the object (`.dwo`,
//! `.su`, `.ci`, dump files): the client compiles those units itself.
//!
//! The protocol brings back the object and the `.d` file only. A server
//! writes any other output in its job directory and throws it away, so a
//! remote `-gsplit-dwarf` compile leaves an object naming a `.dwo` that
//! does not exist (stock distcc 3.4 does exactly that). The client keeps
//! such units local and says why. The daemon does not refuse them: stock
//! clients send them, and refusing would back our server off for them.

use std::ffi::OsString;

/// Exact options, with the file they write.
const EXACT: &[(&str, &str)] = &[
    ("-fstack-usage", "the .su file"),
    ("-ftime-trace", "the time trace (.json)"),
    ("-fsave-optimization-record", "the optimization record"),
    ("-save-stats", "the .stats file"),
    ("-gen-decls", "the Objective-C .decl file"),
];

/// Option prefixes, with the files they write.
const PREFIXES: &[(&str, &str)] = &[
    ("-fcallgraph-info", "the .ci file"),
    ("-fdump-", "dump files"),
    ("-ftime-trace=", "the time trace (.json)"),
    ("-fsave-optimization-record=", "the optimization record"),
    ("-foptimization-record-file=", "the optimization record"),
    ("-save-stats=", "the .stats file"),
    ("-fproc-stat-report=", "the process statistics"),
];

/// Why `argv` must compile here because of files written beside the
/// object, if it must.
pub fn reason(argv: &[OsString]) -> Option<String> {
    split_dwarf(argv).or_else(|| side_file(argv))
}

/// `-gsplit-dwarf` in any form, unless a later `-gno-split-dwarf` turns it
/// off: `-gsplit-dwarf` and Clang's `=split` write a `.dwo` beside the
/// object, and Clang's `=single` names the object itself as the `.dwo`,
/// so either names a file of the server's job directory in the debug
/// information (sweep S, D1).
fn split_dwarf(argv: &[OsString]) -> Option<String> {
    let last = argv
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .rfind(|a| a.starts_with("-gsplit-dwarf") || *a == "-gno-split-dwarf")?;
    (last != "-gno-split-dwarf").then(|| {
        format!("{last} names its .dwo file by a path of the compile's own, which a server would not keep")
    })
}

fn side_file(argv: &[OsString]) -> Option<String> {
    argv.iter().skip(1).find_map(|a| {
        let a = a.to_str()?;
        let what = EXACT
            .iter()
            .find(|(o, _)| a == *o)
            .or_else(|| PREFIXES.iter().find(|(p, _)| a.starts_with(p)))?
            .1;
        Some(format!(
            "{a} writes {what} beside the object, which a server would not send back"
        ))
    })
}

/// Why a plain-mode compile (the server compiles the client's
/// preprocessed text) would give a result other than a local compile's,
/// which pump mode does not (its server reads the sources): Clang's
/// `-gembed-source` would embed the whole preprocessed unit as the main
/// file's source, Clang's `-fdebug-macro` would record no macro of the
/// sources, which preprocessing has expanded away (sweep S, D4), and JSON
/// or SARIF diagnostics would come as two documents.
pub fn plain_mode_differs(argv: &[OsString]) -> Option<String> {
    let last = |on: &str, off: &str| {
        argv.iter()
            .skip(1)
            .rfind(|a| *a == on || *a == off)
            .is_some_and(|a| a == on)
    };
    if last("-gembed-source", "-gno-embed-source") {
        return Some(
            "-gembed-source would embed the preprocessed text, not the sources, in plain mode"
                .into(),
        );
    }
    if last("-fdebug-macro", "-fno-debug-macro") {
        return Some("-fdebug-macro would record no macro of the sources in plain mode".into());
    }
    // The local preprocessor and the server's compiler would each print a
    // document of diagnostics: two where a tool reads one (sweep R, D4).
    let format = argv.iter().skip(1).rev().find_map(|a| {
        a.to_str()?
            .strip_prefix("-fdiagnostics-format=")
            .filter(|f| f.starts_with("json") || f.starts_with("sarif"))
    })?;
    Some(format!(
        "-fdiagnostics-format={format} makes one document of the diagnostics, which the preprocessor here and a server's compiler would print two of"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn side_file_options() {
        for cmd in [
            "gcc -g -gsplit-dwarf -c x.c",
            "clang -g -gsplit-dwarf=split -c x.c",
            "clang -g -gsplit-dwarf=single -c x.c",
            "clang -gno-split-dwarf -g -gsplit-dwarf -c x.c",
            "gcc -fstack-usage -c x.c",
            "gcc -fcallgraph-info=su -c x.c",
            "gcc -fdump-tree-all -c x.c",
            "clang -ftime-trace -c x.c",
            "clang -ftime-trace=t.json -c x.c",
            "clang -fsave-optimization-record -c x.c",
            "clang -fsave-optimization-record=bitstream -c x.c",
            "clang -foptimization-record-file=r.yaml -c x.c",
            "clang -save-stats=obj -c x.c",
            "gcc -gen-decls -c x.m",
        ] {
            assert!(reason(&argv(cmd)).is_some(), "{cmd}");
        }
        for cmd in [
            "gcc -g -c x.c",
            "gcc -fstack-protector -c x.c",
            "gcc -gdwarf-5 -c x.c",
            "clang -ftime-trace-granularity=100 -c x.c",
            "clang -g -gsplit-dwarf -gno-split-dwarf -c x.c",
        ] {
            assert!(reason(&argv(cmd)).is_none(), "{cmd}");
        }
        assert!(
            reason(&argv("gcc -gsplit-dwarf -c x.c"))
                .unwrap()
                .contains(".dwo")
        );
    }

    #[test]
    fn plain_mode_debug_options() {
        for (cmd, differs) in [
            ("clang -g -gdwarf-5 -gembed-source -c x.c", true),
            ("clang -g -fdebug-macro -c x.c", true),
            ("clang -g -gembed-source -gno-embed-source -c x.c", false),
            ("clang -g -fdebug-macro -fno-debug-macro -c x.c", false),
            ("gcc -g3 -c x.c", false),
            ("gcc -fdiagnostics-format=json -c x.c", true),
            ("gcc -fdiagnostics-format=sarif-stderr -c x.c", true),
            ("gcc -fdiagnostics-format=text -c x.c", false),
        ] {
            assert_eq!(plain_mode_differs(&argv(cmd)).is_some(), differs, "{cmd}");
        }
    }
}
