//! Which clock macros a file may expand: `__DATE__` and `__TIME__` (the
//! time of the compile, or SOURCE_DATE_EPOCH's) and `__TIMESTAMP__` (the
//! file's own time), which a server would take from its own clock and copy.
//!
//! Only code counts: a name in a comment, in a string or character
//! literal, in an `#if 0` group, or inside a longer identifier
//! (`__DATE__x`) expands to nothing (sweep Q, D2). A name may also be built by token pasting
//! (`CAT(__DA, TE__)`) or split by a backslash-newline, so an identifier
//! that is a piece of a clock name counts too (sweep Q, D1): one of at
//! least two letters with an underscore (`__DA`, `TE__`, `_DATE`), which
//! every cut of a name in two leaves on one side or the other, while
//! identifiers such as `_T`, `_` or `DATE` do not count.
//!
//! A file is looked at in two passes. The first finds every identifier
//! with an underscore, in code or not (a fast search for `_`); most files
//! have none that is a name or a piece of one, and are done. Only a file
//! with one is read again, token by token, skipping comments and literals.

use super::scanner::{
    Clock, continuation as splice, end_block_comment as block_comment_end, raw_string_end,
    skip_line_comment as line_comment_end, skip_quoted as quoted_end,
};
use crate::bytes::find_byte;

const DATE: &[u8] = b"__DATE__";
const TIME: &[u8] = b"__TIME__";
const TIMESTAMP: &[u8] = b"__TIMESTAMP__";

/// The clock macros `src` may expand (a superset: a name in an unused
/// macro or in a branch that is not literally `#if 0` counts).
pub fn clock_macros(src: &[u8]) -> Clock {
    if !any_candidate(src) {
        return Clock::default();
    }
    let mut clock = Clock::default();
    for_each_code_identifier(src, |ident| {
        let c = classify(ident);
        clock.date_or_time |= c.date_or_time;
        clock.timestamp |= c.timestamp;
    });
    clock
}

/// What one identifier may contribute.
fn classify(ident: &[u8]) -> Clock {
    if ident.len() < 2 || ident.len() > TIMESTAMP.len() || !ident.contains(&b'_') {
        return Clock::default();
    }
    // Every name and piece is spelled with these bytes only: most
    // identifiers (any lower-case letter) are done with here.
    if !ident.iter().all(|c| b"_DATEIMSP".contains(c)) {
        return Clock::default();
    }
    let whole = |name: &[u8]| ident == name;
    let piece = |name: &[u8]| {
        ident.iter().filter(|c| c.is_ascii_alphabetic()).count() >= 2
            && name.windows(ident.len()).any(|w| w == ident)
    };
    Clock {
        date_or_time: whole(DATE) || whole(TIME) || piece(DATE) || piece(TIME),
        timestamp: whole(TIMESTAMP) || piece(TIMESTAMP),
    }
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Whether some identifier with an underscore, anywhere in `src`, is a
/// clock name or a piece of one.
fn any_candidate(src: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = find_byte(&src[i..], b'_') {
        let at = i + p;
        let mut start = at;
        while start > 0 && ident_char(src[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < src.len() && ident_char(src[end]) {
            end += 1;
        }
        let c = classify(&src[start..end]);
        if c.date_or_time || c.timestamp {
            return true;
        }
        i = end;
    }
    false
}

/// Calls `f` with every identifier of `src` outside comments, literals and
/// `#if 0` groups, backslash-newlines inside it removed.
fn for_each_code_identifier(src: &[u8], mut f: impl FnMut(&[u8])) {
    let mut ident = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    while i < src.len() {
        let c = src[i];
        if line_start {
            line_start = false;
            let at = skip_blanks(src, i);
            if src.get(at) == Some(&b'#') {
                let (name, after) = directive_name(src, at + 1);
                if name == b"if" && is_literal_zero(src, after) {
                    i = skip_false_group(src, line_end(src, after));
                    line_start = true;
                    continue;
                }
            }
        }
        if c == b'\n' {
            line_start = true;
            i += 1;
        } else if splice(src, i) > 0 {
            i += splice(src, i);
        } else if c == b'/' && src.get(i + 1) == Some(&b'/') {
            i = line_comment_end(src, i + 2);
            line_start = true;
        } else if c == b'/' && src.get(i + 1) == Some(&b'*') {
            i = block_comment_end(src, i + 2);
        } else if c == b'"' {
            i = raw_string_end(src, i).unwrap_or_else(|| quoted_end(src, i + 1, b'"'));
        } else if c == b'\'' {
            i = quoted_end(src, i + 1, b'\'');
        } else if c.is_ascii_digit()
            || (c == b'.' && src.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i = number_end(src, i + 1);
        } else if ident_char(c) {
            ident.clear();
            while i < src.len() {
                if ident_char(src[i]) {
                    ident.push(src[i]);
                    i += 1;
                } else if splice(src, i) > 0 {
                    i += splice(src, i);
                } else {
                    break;
                }
            }
            f(&ident);
        } else {
            i += 1;
        }
    }
}

/// Skips spaces, tabs, backslash-newlines and block comments.
fn skip_blanks(s: &[u8], mut i: usize) -> usize {
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => i += 1,
            b'\\' if splice(s, i) > 0 => i += splice(s, i),
            b'/' if s.get(i + 1) == Some(&b'*') => i = block_comment_end(s, i + 2),
            _ => break,
        }
    }
    i
}

/// The name of a directive whose `#` is just before `i`, and where it ends.
fn directive_name(s: &[u8], i: usize) -> (Vec<u8>, usize) {
    let mut i = skip_blanks(s, i);
    let mut name = Vec::new();
    while i < s.len() {
        if s[i].is_ascii_alphabetic() {
            name.push(s[i]);
            i += 1;
        } else if splice(s, i) > 0 {
            i += splice(s, i);
        } else {
            break;
        }
    }
    (name, i)
}

/// Whether the rest of a directive line from `i` is `0` alone (`#if 0`).
fn is_literal_zero(s: &[u8], i: usize) -> bool {
    let i = skip_blanks(s, i);
    if s.get(i) != Some(&b'0') {
        return false;
    }
    let after = skip_blanks(s, i + 1);
    match s.get(after) {
        None | Some(b'\n') => true,
        Some(b'/') => s.get(after + 1) == Some(&b'/'),
        _ => false,
    }
}

/// The index just past the end of the logical line holding `i`: splices
/// continue it, and a block comment or a literal that opens on it is
/// skipped whole (a comment may go on over lines; a literal may not).
fn line_end(s: &[u8], mut i: usize) -> usize {
    while i < s.len() {
        match s[i] {
            b'\n' => return i + 1,
            b'\\' if splice(s, i) > 0 => i += splice(s, i),
            b'/' if s.get(i + 1) == Some(&b'/') => return line_comment_end(s, i + 2),
            b'/' if s.get(i + 1) == Some(&b'*') => i = block_comment_end(s, i + 2),
            q @ (b'"' | b'\'') => i = quoted_end(s, i + 1, q),
            _ => i += 1,
        }
    }
    s.len()
}

/// Skips the group of an `#if 0` whose body starts at `i`: to just after
/// its `#endif`, or to the start of an `#else`/`#elif` line of the same
/// level (which begins code that may be live).
fn skip_false_group(s: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < s.len() {
        let at = skip_blanks(s, i);
        if s.get(at) == Some(&b'#') {
            let (name, _) = directive_name(s, at + 1);
            match &name[..] {
                b"if" | b"ifdef" | b"ifndef" => depth += 1,
                b"endif" if depth == 0 => return line_end(s, at),
                b"endif" => depth -= 1,
                b"else" | b"elif" | b"elifdef" | b"elifndef" if depth == 0 => return i,
                _ => {}
            }
        }
        i = line_end(s, at);
    }
    s.len()
}

/// The end of a pp-number whose first byte is before `i`: digits, letters,
/// `_`, `.`, an exponent's sign, and C++14/C23 digit separators (`1'000`),
/// so that a separator is not taken for a character literal.
fn number_end(s: &[u8], mut i: usize) -> usize {
    while i < s.len() {
        let c = s[i];
        if ident_char(c)
            || c == b'.'
            || (matches!(c, b'+' | b'-') && matches!(s[i - 1], b'e' | b'E' | b'p' | b'P'))
        {
            i += 1;
        } else if c == b'\'' && s.get(i + 1).is_some_and(|&n| ident_char(n)) {
            i += 2;
        } else if splice(s, i) > 0 {
            i += splice(s, i);
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(src: &str) -> (bool, bool) {
        let c = clock_macros(src.as_bytes());
        (c.date_or_time, c.timestamp)
    }

    #[test]
    fn names_in_code_count() {
        assert_eq!(clock("const char *d = __DATE__;\n"), (true, false));
        assert_eq!(clock("const char *t = __TIME__;\n"), (true, false));
        assert_eq!(clock("const char *s = __TIMESTAMP__;\n"), (false, true));
        assert_eq!(
            clock("#define WHEN __DATE__ \" \" __TIME__\n"),
            (true, false)
        );
        // In a branch that is not literally `#if 0`: a superset.
        assert_eq!(clock("#if FOO\n__TIMESTAMP__\n#endif\n"), (false, true));
        assert_eq!(clock("#if 0\n#else\n__TIME__\n#endif\n"), (true, false));
        assert_eq!(clock("#if 0\n#elif X\n__TIME__\n#endif\n"), (true, false));
        assert_eq!(
            clock("#if 0\n#if 1\n#endif\n#endif\n__DATE__\n"),
            (true, false)
        );
        // A `#endif` in a comment or a literal of the group does not end it
        // early; the group's own comment may hide nothing after it.
        assert_eq!(
            clock("#if 0\n/*\n#endif\n*/ x\n#endif\n__DATE__\n"),
            (true, false)
        );
        assert_eq!(
            clock("#if 0 // off\ndon't \"/*\"\n#endif\n__DATE__\n"),
            (true, false)
        );
        assert_eq!(
            clock("int x; // note\n#if 0\n__DATE__\n#endif\n"),
            (false, false)
        );
        assert_eq!(clock("int x;\n"), (false, false));
    }

    /// Sweep Q, D2: mentions that expand to nothing.
    #[test]
    fn mentions_outside_code_do_not_count() {
        for src in [
            "// built at __DATE__ __TIME__ __TIMESTAMP__\n",
            "/* __TIMESTAMP__ */ int x;\n",
            "/* a\n * __DATE__\n */\n",
            "const char *s = \"no __TIMESTAMP__ here, nor __DATE__\";\n",
            "char c = '_'; const char *u = R\"x(__TIME__ \")x\";\n",
            "int __DATE__x, y__TIME__, __TIMESTAMP___;\n",
            "#define _T(x) x\nconst char *s = _T(\"a\"); int _, DATE, TIME;\n",
            "#if 0\nstatic const char when[] = __DATE__ __TIMESTAMP__;\n#endif\n",
            "  #  if 0\n#ifdef X\n__DATE__\n#endif\n__TIME__\n#endif\n",
        ] {
            assert_eq!(clock(src), (false, false), "{src}");
        }
    }

    /// Sweep Q, D1: names built by pasting or split across lines.
    #[test]
    fn pieces_of_names_count() {
        for src in [
            "#define CAT(a, b) a##b\nconst char *d = CAT(__DA, TE__);\n",
            "#define CAT(a, b) a##b\nconst char *d = CAT(__, DATE__);\n",
            "const char *d = __DA\\\nTE__;\n",
            "const char *d = __\\\nDATE__;\n",
        ] {
            assert_eq!(clock(src), (true, false), "{src}");
        }
        // `__TI` is a piece of both `__TIME__` and `__TIMESTAMP__`.
        assert_eq!(
            clock("#define CAT(a, b) a##b\nconst char *d = CAT(__TI, ME__);\n"),
            (true, true)
        );
        assert_eq!(
            clock("#define CAT(a, b) a##b\nconst char *s = CAT(__TIMES, TAMP__);\n"),
            (false, true)
        );
        assert_eq!(clock("X(STAMP__)\n"), (false, true));
    }

    /// A digit separator is no character literal that would hide the rest
    /// of its line.
    #[test]
    fn digit_separators_hide_nothing() {
        assert_eq!(
            clock("int n = 1'000; const char *d = __DATE__;\n"),
            (true, false)
        );
        assert_eq!(
            clock("double e = 1e+5'0; char q = '\\''; int t = __TIME__;\n"),
            (true, false)
        );
    }

    /// Block comments closed across a line splice, and unclosed ones.
    #[test]
    fn comment_edges() {
        assert_eq!(
            clock("/* x *\\\n/ const char *d = __DATE__;\n"),
            (true, false)
        );
        assert_eq!(clock("/* __DATE__"), (false, false));
        assert_eq!(clock("\"__DATE__"), (false, false));
    }
}
