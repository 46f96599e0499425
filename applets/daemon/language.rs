//! The language a plain-mode job's preprocessed source is compiled as, when
//! it is handed to the compiler on stdin (`-x LANG -`).
//!
//! Stock distccd writes the source to `distccd_XXXX.i` (`.ii`, `.mi`,
//! `.mii` by the original extension) and keeps the client's argv, so the
//! compiler decides the language as it would locally: the user's `-x`
//! wins, and a C++ driver (`g++`, `c++`, `clang++`) compiles `.c` and `.i`
//! as C++. Feeding stdin needs an explicit `-x`, which must give the same
//! answer: when the command has its own `-x` before the source, stdin is
//! not used at all (the source goes to a file, as with stock), and a C
//! source under a C++ driver is `c++-cpp-output`. Getting this wrong
//! compiles `g++ -c x.c` as C (unmangled symbols, a failed link) or turns
//! CMake's `-x c-header` precompiled header into an object file.

use distcc::args::cross::cxx_driver;
use std::ffi::OsString;

/// The `-x` language for the source `argv[input]` fed on stdin, or None
/// when it must go to a file (the command sets its own language, or the
/// extension is not one of the preprocessed kinds).
pub fn stdin_language(argv: &[OsString], input: usize) -> Option<&'static str> {
    // (`argv` is a client's: no slicing that could panic.)
    if sets_language(argv.get(1..input).unwrap_or(&[])) {
        return None;
    }
    let source = argv.get(input)?;
    let ext = distcc::args::extensions::preprocessed_extension(source);
    match ext {
        "i" if cxx_driver(argv.first()?) => Some("c++-cpp-output"),
        "i" => Some("cpp-output"),
        "ii" => Some("c++-cpp-output"),
        "mi" => Some("objective-c-cpp-output"),
        "mii" => Some("objective-c++-cpp-output"),
        _ => None,
    }
}

/// Whether `args` (the options before the source) contain `-x LANG` or
/// `-xLANG`. `-x none` counts too: it is rare, and a file is always safe.
fn sets_language(args: &[OsString]) -> bool {
    args.iter().any(|a| a.as_encoded_bytes().starts_with(b"-x"))
}

/// Whether a GCC compile of the source `argv[input]` written to a file
/// (the command has its own `-x`) needs `-fpreprocessed`. The text is
/// already preprocessed, but under `-x c` (`c++`, `objective-c`,
/// `objective-c++`) GCC would preprocess it again: predefined macros would
/// expand a second time (`#undef linux` then `int linux;` fails), and the
/// object would be named after the job file instead of the line marker's
/// name. `-fpreprocessed` makes it read the text as a `.i` file, as the
/// local compile did. Other languages (`none`, headers, assembler) keep
/// the command as it is.
pub fn needs_preprocessed_flag(argv: &[OsString], input: usize) -> bool {
    let before = argv.get(1..input).unwrap_or(&[]);
    let mut language: Option<&[u8]> = None;
    let mut words = before.iter().map(|a| a.as_encoded_bytes());
    while let Some(word) = words.next() {
        if word == b"-x" {
            language = words.next();
        } else if let Some(rest) = word.strip_prefix(b"-x") {
            language = Some(rest);
        }
    }
    matches!(
        language,
        Some(b"c" | b"c++" | b"objective-c" | b"objective-c++")
    )
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

    #[test]
    fn odd_positions_do_not_panic() {
        let a = argv("gcc -c src.c");
        assert_eq!(stdin_language(&a, 0), None);
        assert_eq!(stdin_language(&a, 9), None);
        assert_eq!(stdin_language(&[], 0), None);
    }

    #[test]
    fn own_language_goes_to_a_file() {
        assert_eq!(lang("gcc -x c -c src.cpp"), None);
        assert_eq!(lang("gcc -xc++ -c src.c"), None);
        assert_eq!(lang("gcc -x c-header -c src.h.c"), None);
        // After the source it does not apply to it.
        assert_eq!(lang("gcc -c src.c -x none"), Some("cpp-output"));
    }

    fn preprocessed_flag(s: &str) -> bool {
        let a = argv(s);
        let input = a
            .iter()
            .position(|w| w.to_string_lossy().contains("src."))
            .unwrap();
        needs_preprocessed_flag(&a, input)
    }

    #[test]
    fn source_languages_in_a_file_are_read_as_preprocessed() {
        assert!(preprocessed_flag("gcc -x c -c src.cpp"));
        assert!(preprocessed_flag("gcc -xc++ -c src.c"));
        assert!(preprocessed_flag("gcc -x objective-c -c src.c"));
        assert!(preprocessed_flag("gcc -x objective-c++ -c src.c"));
        // The last -x before the source decides.
        assert!(preprocessed_flag("gcc -x c-header -x c -c src.c"));
        assert!(!preprocessed_flag("gcc -x c -x none -c src.c"));
        assert!(!preprocessed_flag("gcc -x c-header -c src.h.c"));
        assert!(!preprocessed_flag("gcc -x assembler-with-cpp -c src.s"));
        assert!(!preprocessed_flag("gcc -c src.c"));
        // A dangling -x and odd positions do not panic.
        assert!(!needs_preprocessed_flag(&argv("gcc -c -x"), 3));
        assert!(!needs_preprocessed_flag(&argv("gcc"), 7));
    }
}
