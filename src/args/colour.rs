//! Coloured diagnostics from a server, when a local compile would colour
//! them.
//!
//! gcc (and clang) colour their diagnostics only when their stderr is a
//! terminal. A server's never is, so distcc users get plain text where a
//! local compile shows colours. When the client's own stderr is a terminal
//! (and neither `TERM=dumb` nor an empty `GCC_COLORS` turns colour off, and
//! the command does not choose), the client asks the compiler for colours
//! explicitly, as ccache does. The objects do not change: diagnostic options
//! are not recorded in them (not even with `-frecord-gcc-switches`).

use std::ffi::OsString;

/// What the client knows about where diagnostics end up.
pub struct Terminal<'a> {
    /// Whether the client's stderr is a terminal.
    pub is_tty: bool,
    /// `$TERM`.
    pub term: Option<&'a str>,
    /// `$GCC_COLORS` (set but empty turns colours off).
    pub gcc_colors: Option<&'a str>,
}

/// The option to add to `argv` for coloured diagnostics, if any.
pub fn flag(argv: &[OsString], t: &Terminal<'_>) -> Option<&'static str> {
    // GCC colours when TERM is set and not `dumb`, an empty TERM included
    // (sweep R, D3); Clang looks for a known terminal type in it.
    if !t.is_tty || t.term.is_none_or(|v| v == "dumb") {
        return None;
    }
    let chosen = argv.iter().skip(1).any(|a| {
        let a = a.as_encoded_bytes();
        a.starts_with(b"-fdiagnostics-color")
            || a.starts_with(b"-fno-diagnostics-color")
            || a.starts_with(b"-fcolor-diagnostics")
            || a.starts_with(b"-fno-color-diagnostics")
    });
    if chosen {
        return None;
    }
    let compiler = argv.first()?.to_str()?;
    let name = compiler.rsplit('/').next().unwrap_or(compiler);
    // Clang does not read GCC_COLORS (sweep S, P7); an empty one turns
    // GCC's colours off.
    if name.starts_with("clang") || name.contains("-clang") {
        return (t.term != Some("")).then_some("-fcolor-diagnostics");
    }
    let gnu = name == "cc" || name == "c++" || name.contains("gcc") || name.contains("g++");
    (gnu && t.gcc_colors != Some("")).then_some("-fdiagnostics-color=always")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    const TTY: Terminal<'static> = Terminal {
        is_tty: true,
        term: Some("xterm-256color"),
        gcc_colors: None,
    };

    #[test]
    fn colours_only_for_a_terminal_and_known_compilers() {
        assert_eq!(
            flag(&argv("gcc -c x.c"), &TTY),
            Some("-fdiagnostics-color=always")
        );
        assert_eq!(
            flag(&argv("/usr/bin/x86_64-linux-gnu-g++-12 -c x.cc"), &TTY),
            Some("-fdiagnostics-color=always")
        );
        assert_eq!(
            flag(&argv("clang++ -c x.cc"), &TTY),
            Some("-fcolor-diagnostics")
        );
        assert_eq!(flag(&argv("icc -c x.c"), &TTY), None);
        assert_eq!(
            flag(&argv("gcc -fdiagnostics-color=never -c x.c"), &TTY),
            None
        );
        assert_eq!(flag(&argv("gcc -fno-diagnostics-color -c x.c"), &TTY), None);
        let pipe = Terminal {
            is_tty: false,
            ..TTY
        };
        assert_eq!(flag(&argv("gcc -c x.c"), &pipe), None);
        let dumb = Terminal {
            term: Some("dumb"),
            ..TTY
        };
        assert_eq!(flag(&argv("gcc -c x.c"), &dumb), None);
        let off = Terminal {
            gcc_colors: Some(""),
            ..TTY
        };
        assert_eq!(flag(&argv("gcc -c x.c"), &off), None);
        assert_eq!(
            flag(&argv("clang -c x.c"), &off),
            Some("-fcolor-diagnostics")
        );
        let unset = Terminal { term: None, ..TTY };
        assert_eq!(flag(&argv("gcc -c x.c"), &unset), None);
        // Set but empty: GCC colours, Clang does not.
        let empty = Terminal {
            term: Some(""),
            ..TTY
        };
        assert_eq!(
            flag(&argv("gcc -c x.c"), &empty),
            Some("-fdiagnostics-color=always")
        );
        assert_eq!(flag(&argv("clang -c x.c"), &empty), None);
    }
}
