//! The language a plain-mode job's preprocessed source is compiled as, when
//! it is handed to the compiler on stdin (`-x LANG -`).
//!
//! Stock distccd writes the source to `distccd_XXXX.i` (`.ii`, `.mi`,
//! `.mii` by the original extension) and keeps the client's argv, so the
//! compiler decides the language as it would locally: the user's `-x`
//! wins, and a C++ driver (`g++`, `c++`, `clang++`) compiles `.c` and `.i`
//! as C++. Feeding stdin needs an explicit `-x`, which must give the same
//! answer: the command's own `-x c` (`c++`, `objective-c`,
//! `objective-c++`) becomes that language's preprocessed form, a C source
//! under a C++ driver is `c++-cpp-output`, and any other `-x` of its own
//! (`none`, a header, assembler) sends the source to a file with the
//! command kept as it is, as with stock. So do Clang's `-ObjC`/`-ObjC++`
//! and a C source under a driver whose name says neither C nor C++
//! (`mpicxx`, `CC`): only the driver knows what it makes of `in.i`. Getting this wrong compiles
//! `g++ -c x.c` as C (unmangled symbols, a failed link) or turns CMake's
//! `-x c-header` precompiled header into an object file; keeping a source
//! language on preprocessed text would preprocess it twice (a source that
//! #undefs a predefined `linux` and uses the name would not compile, and
//! the object would be named after the job file).

use distcc::args::cross::{c_driver, cxx_driver};
use std::ffi::OsString;

/// The `-x` language for the source `argv[input]` fed on stdin, or None
/// when it must go to a file (the command sets its own language, or the
/// extension is not one of the preprocessed kinds).
pub fn stdin_language(argv: &[OsString], input: usize) -> Option<&'static str> {
    // Clang's -ObjC and -ObjC++ make every source of the command that
    // language: a file keeps their say (sweep S, D7).
    if argv.iter().skip(1).any(|a| a == "-ObjC" || a == "-ObjC++") {
        return None;
    }
    // (`argv` is a client's: no slicing that could panic.)
    if let Some(own) = own_language(argv.get(1..input).unwrap_or(&[])) {
        // Our client sends the preprocessed names itself (sweep Q, D3);
        // a stock client sends the source ones.
        const PREPROCESSED: [&str; 4] = [
            "cpp-output",
            "c++-cpp-output",
            "objective-c-cpp-output",
            "objective-c++-cpp-output",
        ];
        return PREPROCESSED
            .into_iter()
            .find(|p| own == p.as_bytes())
            .or_else(|| distcc::args::strip::preprocessed_language(own));
    }
    let source = argv.get(input)?;
    let ext = distcc::args::extensions::preprocessed_extension(source);
    match ext {
        "i" if cxx_driver(argv.first()?) => Some("c++-cpp-output"),
        "i" if c_driver(argv.first()?) => Some("cpp-output"),
        // A driver whose name does not say (`mpicxx`, `CC`, a wrapper):
        // only the driver knows whether it compiles `.i` as C or C++
        // (sweep S, D7), so it gets a file, as from stock.
        "i" => None,
        "ii" => Some("c++-cpp-output"),
        "mi" => Some("objective-c-cpp-output"),
        "mii" => Some("objective-c++-cpp-output"),
        _ => None,
    }
}

/// The language of the last `-x LANG` or `-xLANG` in `args` (the options
/// before the source); empty for a dangling `-x`.
fn own_language(args: &[OsString]) -> Option<&[u8]> {
    let mut language = None;
    let mut words = args.iter().map(|a| a.as_encoded_bytes());
    while let Some(word) = words.next() {
        if word == b"-x" {
            language = Some(words.next().unwrap_or_default());
        } else if let Some(rest) = word.strip_prefix(b"-x") {
            language = Some(rest);
        }
    }
    language
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    fn lang(s: &str) -> Option<&'static str> {
        let a = argv(s);
        let input = a
            .iter()
            .position(|w| w.to_string_lossy().contains("src."))
            .unwrap();
        stdin_language(&a, input)
    }

    #[test]
    fn extension_and_driver() {
        assert_eq!(lang("gcc -c src.c"), Some("cpp-output"));
        assert_eq!(lang("gcc -c src.cpp"), Some("c++-cpp-output"));
        assert_eq!(lang("g++ -c src.c"), Some("c++-cpp-output"));
        assert_eq!(lang("/usr/bin/g++-12 -c src.c"), Some("c++-cpp-output"));
        assert_eq!(
            lang("x86_64-linux-gnu-g++-12 -c src.i"),
            Some("c++-cpp-output")
        );
        assert_eq!(lang("c++ -c src.c"), Some("c++-cpp-output"));
        assert_eq!(lang("clang++-14 -c src.c"), Some("c++-cpp-output"));
        assert_eq!(lang("clang -c src.c"), Some("cpp-output"));
        assert_eq!(lang("gcc-12 -c src.c"), Some("cpp-output"));
        assert_eq!(lang("g++ -c src.m"), Some("objective-c-cpp-output"));
        assert_eq!(lang("gcc -c src.mm"), Some("objective-c++-cpp-output"));
        assert_eq!(lang("gcc -c src.s"), None);
    }

    /// Sweep S, D7: what only the driver knows goes to a file.
    #[test]
    fn drivers_that_decide_for_themselves_get_a_file() {
        assert_eq!(lang("clang -ObjC++ -c src.c"), None);
        assert_eq!(lang("clang -ObjC -c src.c"), None);
        assert_eq!(lang("clang -ObjC -x c -c src.c"), None);
        assert_eq!(lang("mpicxx -c src.c"), None);
        assert_eq!(lang("/opt/cray/bin/CC -c src.c"), None);
        assert_eq!(lang("mpicc -c src.c"), None);
        // Names that say C.
        for cc in [
            "gcc",
            "cc",
            "clang",
            "gcc-12",
            "clang-14",
            "/usr/bin/x86_64-linux-gnu-gcc-12",
            "aarch64-linux-gnu-gcc",
            "x86_64-pc-linux-gnu-clang",
            "clang-14.0",
        ] {
            assert_eq!(lang(&format!("{cc} -c src.c")), Some("cpp-output"), "{cc}");
        }
        // Other extensions say it themselves.
        assert_eq!(lang("mpicxx -c src.cpp"), Some("c++-cpp-output"));
    }

    #[test]
    fn odd_positions_do_not_panic() {
        let a = argv("gcc -c src.c");
        assert_eq!(stdin_language(&a, 0), None);
        assert_eq!(stdin_language(&a, 9), None);
        assert_eq!(stdin_language(&[], 0), None);
    }

    #[test]
    fn own_source_language_is_read_as_preprocessed() {
        assert_eq!(lang("gcc -x c -c src.cpp"), Some("cpp-output"));
        assert_eq!(lang("g++ -x c -c src.c"), Some("cpp-output"));
        assert_eq!(lang("gcc -xc++ -c src.c"), Some("c++-cpp-output"));
        assert_eq!(
            lang("gcc -x objective-c -c src.c"),
            Some("objective-c-cpp-output")
        );
        assert_eq!(
            lang("clang -xobjective-c++ -c src.c"),
            Some("objective-c++-cpp-output")
        );
        // The last -x before the source decides.
        assert_eq!(lang("gcc -x c-header -x c -c src.c"), Some("cpp-output"));
        // After the source it does not apply to it.
        assert_eq!(lang("gcc -c src.c -x none"), Some("cpp-output"));
    }

    #[test]
    fn other_own_languages_go_to_a_file() {
        assert_eq!(lang("gcc -x c-header -c src.h.c"), None);
        assert_eq!(lang("gcc -x c -x none -c src.c"), None);
        assert_eq!(lang("gcc -x assembler-with-cpp -c src.s"), None);
        assert_eq!(lang("gcc -x cpp-output -c src.c"), Some("cpp-output"));
        assert_eq!(
            lang("g++ -xc++-cpp-output -c src.c"),
            Some("c++-cpp-output")
        );
        assert_eq!(stdin_language(&argv("gcc -c -x src.c"), 3), None);
    }
}
