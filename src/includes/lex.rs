//! Preprocessing tokens for directive bodies.
//!
//! The scanner hands the text of one logical directive line (comments and
//! continuations already removed) to [`lex`]; macro expansion
//! ([`super::macros`]) and `#if` evaluation ([`super::condexpr`]) work on the
//! resulting tokens. Only what directives need is modelled: identifiers,
//! pp-numbers, string and character literals, and punctuators.

/// The kind of a preprocessing token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokKind {
    /// An identifier or keyword.
    Ident,
    /// A pp-number (`12`, `0x1fUL`, `1.5e+3`).
    Number,
    /// A string literal, quotes included (`"a.h"`, `L"x"`).
    Str,
    /// A character literal, quotes included.
    Char,
    /// A punctuator or any other single byte.
    Punct,
}

/// One preprocessing token and whether whitespace preceded it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tok {
    /// What the token is.
    pub kind: TokKind,
    /// Its exact spelling.
    pub text: Vec<u8>,
    /// Whether whitespace came before it (matters for `#` and computed `<...>`).
    pub space: bool,
}

impl Tok {
    /// Whether this is the punctuator `p`.
    pub fn is(&self, p: &[u8]) -> bool {
        self.kind == TokKind::Punct && self.text == p
    }

    /// Whether this is the identifier `name`.
    pub fn is_ident(&self, name: &[u8]) -> bool {
        self.kind == TokKind::Ident && self.text == name
    }
}

/// Whether `c` may start an identifier (bytes >= 0x80 count, for UTF-8 names).
pub fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80
}

/// Whether `c` may continue an identifier.
pub fn ident_char(c: u8) -> bool {
    ident_start(c) || c.is_ascii_digit()
}

const PUNCT3: &[&[u8]] = &[b"<<=", b">>=", b"...", b"<=>"];
const PUNCT2: &[&[u8]] = &[
    b"##", b"<<", b">>", b"<=", b">=", b"==", b"!=", b"&&", b"||", b"->", b"++", b"--", b"+=",
    b"-=", b"*=", b"/=", b"%=", b"&=", b"|=", b"^=", b"::",
];

/// Splits `s` into preprocessing tokens. Never fails: unknown bytes become
/// one-byte punctuators.
pub fn lex(s: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        let start = i;
        let kind;
        if (c == b'L' || c == b'u' || c == b'U') && literal_prefix(&s[i..]).is_some() {
            let p = literal_prefix(&s[i..]).unwrap_or(1);
            let q = s[i + p];
            i = skip_literal(s, i + p, q);
            kind = if q == b'"' {
                TokKind::Str
            } else {
                TokKind::Char
            };
        } else if ident_start(c) {
            while i < s.len() && ident_char(s[i]) {
                i += 1;
            }
            kind = TokKind::Ident;
        } else if c.is_ascii_digit() || (c == b'.' && s.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < s.len() {
                let d = s[i];
                let exponent_sign =
                    (d == b'+' || d == b'-') && matches!(s[i - 1], b'e' | b'E' | b'p' | b'P');
                if exponent_sign || ident_char(d) || d == b'.' || (d == b'\'' && i + 1 < s.len()) {
                    i += 1;
                } else {
                    break;
                }
            }
            kind = TokKind::Number;
        } else if c == b'"' || c == b'\'' {
            i = skip_literal(s, i, c);
            kind = if c == b'"' {
                TokKind::Str
            } else {
                TokKind::Char
            };
        } else {
            let rest = &s[i..];
            let n = if PUNCT3.iter().any(|p| rest.starts_with(p)) {
                3
            } else if PUNCT2.iter().any(|p| rest.starts_with(p)) {
                2
            } else {
                1
            };
            i += n;
            kind = TokKind::Punct;
        }
        out.push(Tok {
            kind,
            text: s[start..i].to_vec(),
            space,
        });
        space = false;
    }
    out
}

/// Length of an encoding prefix (`L`, `u`, `U`, `u8`) directly followed by a quote.
fn literal_prefix(s: &[u8]) -> Option<usize> {
    let p = if s.starts_with(b"u8") { 2 } else { 1 };
    match s.get(p) {
        Some(b'"') | Some(b'\'') => Some(p),
        _ => None,
    }
}

/// Index just past the literal that opens with quote `q` at `i`; an
/// unterminated literal runs to the end of the line.
fn skip_literal(s: &[u8], mut i: usize, q: u8) -> usize {
    i += 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            c if c == q => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// Spells tokens back, with one space where whitespace separated them.
pub fn spell(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, t) in toks.iter().enumerate() {
        if n > 0 && t.space {
            out.push(b' ');
        }
        out.extend_from_slice(&t.text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        lex(s.as_bytes())
            .iter()
            .map(|t| String::from_utf8_lossy(&t.text).into_owned())
            .collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            texts("FOO(a,b) ## x >= 0x1fUL \"s\\\"t\" 'c' L\"w\" 1e+5"),
            vec![
                "FOO",
                "(",
                "a",
                ",",
                "b",
                ")",
                "##",
                "x",
                ">=",
                "0x1fUL",
                "\"s\\\"t\"",
                "'c'",
                "L\"w\"",
                "1e+5"
            ]
        );
        let t = lex(b"a  b");
        assert!(!t[0].space && t[1].space);
        assert_eq!(spell(&t), b"a b");
    }
}
