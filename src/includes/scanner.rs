//! The directive scanner: turns the bytes of a source file into a tree of
//! the preprocessor directives that matter for include analysis.
//!
//! Input is the whole file (an mmap, see [`super::cache`]); output is a
//! [`Parsed`] tree of `#include`/`#include_next`/`#import`, `#define`,
//! `#undef` and conditional blocks, which [`super::closure`] walks once per
//! translation unit. Comments, `\` line continuations, and string and
//! character literals on ordinary lines are honoured so that a `#` inside a
//! comment or literal is not mistaken for a directive. Bytes are never
//! decoded: file and macro names stay exact.

use super::lex::{Tok, lex};
use super::macros::{Macro, parse_define};
use super::unseen::popped_names;
use crate::bytes::{find, find_byte};
use std::sync::Arc;

/// Which include directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeKind {
    /// `#include` (and `#import`, which differs only in once-semantics).
    Include,
    /// `#include_next`.
    Next,
}

/// The condition of one branch of a conditional block.
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// `#if EXPR` or `#elif EXPR`.
    Expr(Vec<Tok>),
    /// `#ifdef NAME` / `#elifdef NAME`.
    Defined(Vec<u8>),
    /// `#ifndef NAME` / `#elifndef NAME`.
    NotDefined(Vec<u8>),
    /// `#else`.
    Else,
}

/// One directive or conditional block.
#[derive(Clone, Debug)]
pub enum Node {
    /// An include; `body` is the rest of the directive line, trimmed.
    Include {
        /// `#include`/`#import` or `#include_next`.
        kind: IncludeKind,
        /// Whether it was `#import` (include once).
        import: bool,
        /// The text after the directive name.
        body: Vec<u8>,
    },
    /// `#define`.
    Define(Arc<[u8]>, Arc<Macro>),
    /// `#undef NAME`.
    Undef(Vec<u8>),
    /// `#if`/`#ifdef`/`#ifndef` ... `#endif`, one entry per branch.
    Cond(Vec<(Cond, Vec<Node>)>),
    /// `#pragma once`.
    Once,
    /// `#pragma GCC dependency "NAME" ...`: the compiler looks the file up
    /// as an `#include "NAME"` would and compares its date (it fails when
    /// the file is missing), without reading it as source. `body` is the
    /// text after `dependency`.
    Dependency(Vec<u8>),
    /// `#pragma pop_macro("NAME")`, or `_Pragma` doing the same, which
    /// restores a definition the walk does not track: NAME becomes
    /// unknown. `sticky` when the `_Pragma` is in a macro body, where it
    /// acts at every expansion of that macro (see [`super::unseen`]).
    PopMacro {
        /// The macro restored.
        name: Vec<u8>,
        /// Whether it acts wherever a macro is expanded.
        sticky: bool,
    },
}

/// The directives of one file.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Top-level nodes in file order.
    pub nodes: Vec<Node>,
    /// The include-guard macro, when the whole file is `#ifndef X` ... `#endif`
    /// and defines X.
    pub guard: Option<Vec<u8>>,
    /// Whether the file has a trigraph that can change its directives
    /// when the compiler replaces trigraphs (`-trigraphs`, strict ISO
    /// `-std=`): `??=` (a `#`) or `??/` (a backslash: a line splice) anywhere,
    /// or any trigraph inside a directive. Elsewhere (`??(` in a comment or
    /// in code) they change tokens, which the compiler handles itself.
    pub trigraph: bool,
    /// Whether the file names `__DATE__` or `__TIME__` (the time of the
    /// compile, or SOURCE_DATE_EPOCH's) and `__TIMESTAMP__` (the file's own
    /// time), which a server would take from its own clock and copy. Not
    /// looked for in a light parse (system headers).
    pub clock: Clock,
    /// Whether the file gives itself another name: `#line N "name"` or a
    /// line marker `# N "name"`, after which `__FILE__` is that name.
    pub renames: bool,
}

/// The clock macros a file names (anywhere in it: a superset).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// `__DATE__` or `__TIME__`.
    pub date_or_time: bool,
    /// `__TIMESTAMP__`.
    pub timestamp: bool,
}

/// An open conditional block: its branches so far and the enclosing nodes.
type Open = (Vec<(Cond, Vec<Node>)>, Vec<Node>);

/// Whether `src` has a trigraph sequence.
pub fn has_trigraph(src: &[u8]) -> bool {
    has_trigraph_ending(src, b"=/'()!<>-")
}

/// Whether `src` has one of the trigraphs that change directives wherever
/// they are: `??=` (`#`) and `??/` (`\`).
fn has_hash_or_splice_trigraph(src: &[u8]) -> bool {
    has_trigraph_ending(src, b"=/")
}

/// Whether `src` has `??` followed by one of `last`. Every file is asked
/// this whole, so it goes from `?` to `?` (memchr), not byte by byte: a
/// header holds few of them (`?:`), most hold none.
fn has_trigraph_ending(src: &[u8], last: &[u8]) -> bool {
    let mut i = 0;
    while let Some(p) = find(&src[i..], b"??") {
        let at = i + p;
        if src.get(at + 2).is_some_and(|c| last.contains(c)) {
            return true;
        }
        i = at + 1;
    }
    false
}

/// Parses the directives of `src`.
pub fn parse(src: &[u8]) -> Parsed {
    parse_as(src, false)
}

/// Parses the directives of `src`; `light` keeps only what the scan of a
/// system header needs (includes, and the names `#define`, `#undef` and
/// `pop_macro` write): macro bodies are empty and `#if` conditions are not
/// tokenised.
pub fn parse_as(src: &[u8], light: bool) -> Parsed {
    let mut stack: Vec<Open> = Vec::new();
    let mut cur: Vec<Node> = Vec::new();
    let mut flat = 0usize;
    let mut line = Vec::new();
    let mut trigraph = has_hash_or_splice_trigraph(src);
    let mut renames = false;
    let mut text_outside = false;
    // A UTF-8 byte-order mark is not part of the first line (GCC skips it).
    let mut i = if src.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    while i < src.len() {
        i = skip_blank(src, i);
        // `%:` is the digraph of `#` (but `%:%:` is `##`, no directive).
        let hash = if src.get(i) == Some(&b'#') {
            1
        } else if src[i..].starts_with(b"%:") && !src[i + 2..].starts_with(b"%:") {
            2
        } else {
            0
        };
        if hash > 0 {
            i = directive_line(src, i + hash, &mut line);
            trigraph = trigraph || has_trigraph(&line);
            renames = renames || names_a_file(&line);
            handle(&line, &mut stack, &mut cur, &mut flat, light);
        } else {
            // Code outside every conditional (a `//` comment is none): the
            // file has no include guard, whatever its `#ifndef` block says
            // (GCC reads it again, and `__FILE__` there expands again).
            if stack.is_empty() && i < src.len() && !src[i..].starts_with(b"//") {
                text_outside = true;
            }
            // `_Pragma("pop_macro(...)")` may also appear outside
            // directives: such lines are looked at more closely.
            let start = i;
            let pragma;
            (i, pragma) = skip_code_line(src, i);
            if pragma {
                for name in popped_names(&src[start..i]) {
                    cur.push(Node::PopMacro {
                        name,
                        sticky: false,
                    });
                }
            }
        }
    }
    while let Some((mut branches, outer)) = stack.pop() {
        if let Some(last) = branches.last_mut() {
            last.1 = std::mem::replace(&mut cur, outer);
        }
        cur.push(Node::Cond(branches));
    }
    let guard = if text_outside { None } else { find_guard(&cur) };
    Parsed {
        nodes: cur,
        guard,
        trigraph,
        renames,
        clock: if light {
            Clock::default()
        } else {
            super::clock::clock_macros(src)
        },
    }
}

/// Whether a directive line (after its `#`) may give the file a name:
/// `line N "name"`, `line` with macros (which may expand to a name), or a
/// line marker `N "name"`. `line N` alone keeps the name.
fn names_a_file(line: &[u8]) -> bool {
    let rest = trim(line);
    match rest.strip_prefix(b"line") {
        Some(after) if !after.first().is_some_and(|&c| super::lex::ident_char(c)) => after
            .iter()
            .any(|c| !c.is_ascii_digit() && !c.is_ascii_whitespace()),
        Some(_) => false,
        None => rest.first().is_some_and(u8::is_ascii_digit) && rest.contains(&b'"'),
    }
}

/// Conditional nesting kept as a tree; deeper blocks are flattened (their
/// directives kept as if every branch were taken: a superset).
const MAX_NESTING: usize = 512;

fn handle(line: &[u8], stack: &mut Vec<Open>, cur: &mut Vec<Node>, flat: &mut usize, light: bool) {
    let mut j = 0;
    while j < line.len() && line[j].is_ascii_whitespace() {
        j += 1;
    }
    let start = j;
    while j < line.len() && super::lex::ident_char(line[j]) {
        j += 1;
    }
    let name = &line[start..j];
    let rest = trim(&line[j..]);
    let first_word = || {
        if light {
            let end = rest
                .iter()
                .position(|&c| !super::lex::ident_char(c))
                .unwrap_or(rest.len());
            return rest[..end].to_vec();
        }
        lex(rest)
            .into_iter()
            .next()
            .map(|t| t.text)
            .unwrap_or_default()
    };
    let expr = || Cond::Expr(if light { Vec::new() } else { lex(rest) });
    match name {
        b"include" | b"import" | b"include_next" => cur.push(Node::Include {
            kind: if name == b"include_next" {
                IncludeKind::Next
            } else {
                IncludeKind::Include
            },
            import: name == b"import",
            body: rest.to_vec(),
        }),
        b"define" => {
            if find(rest, b"pop_macro").is_some() {
                for name in popped_names(rest) {
                    cur.push(Node::PopMacro { name, sticky: true });
                }
            }
            if light {
                let name = first_word();
                if !name.is_empty() {
                    cur.push(Node::Define(name.into(), empty_macro()));
                }
            } else if let Some((n, m)) = parse_define(rest) {
                cur.push(Node::Define(n.into(), Arc::new(m)));
            }
        }
        b"undef" => cur.push(Node::Undef(first_word())),
        b"pragma" => match lex(rest).first() {
            Some(t) if t.is_ident(b"once") => cur.push(Node::Once),
            Some(t) if t.is_ident(b"GCC") && !light => {
                let words = trim(rest.strip_prefix(b"GCC").unwrap_or_default());
                if let Some(after) = words.strip_prefix(b"dependency")
                    && after
                        .first()
                        .is_some_and(|c| c.is_ascii_whitespace() || *c == b'"' || *c == b'<')
                {
                    cur.push(Node::Dependency(trim(after).to_vec()));
                }
            }
            Some(t) if t.is_ident(b"pop_macro") => {
                for name in popped_names(rest) {
                    cur.push(Node::PopMacro {
                        name,
                        sticky: false,
                    });
                }
            }
            _ => {}
        },
        b"if" | b"ifdef" | b"ifndef" if *flat > 0 || stack.len() >= MAX_NESTING => *flat += 1,
        b"elif" | b"elifdef" | b"elifndef" | b"else" if *flat > 0 => {}
        b"endif" if *flat > 0 => *flat -= 1,
        b"if" | b"ifdef" | b"ifndef" => {
            let cond = match name {
                b"if" => expr(),
                b"ifdef" => Cond::Defined(first_word()),
                _ => Cond::NotDefined(first_word()),
            };
            stack.push((vec![(cond, Vec::new())], std::mem::take(cur)));
        }
        b"elif" | b"elifdef" | b"elifndef" | b"else" => {
            if let Some((branches, _)) = stack.last_mut() {
                let cond = match name {
                    b"elif" => expr(),
                    b"elifdef" => Cond::Defined(first_word()),
                    b"elifndef" => Cond::NotDefined(first_word()),
                    _ => Cond::Else,
                };
                if let Some(last) = branches.last_mut() {
                    last.1 = std::mem::take(cur);
                }
                branches.push((cond, Vec::new()));
            }
        }
        b"endif" => {
            if let Some((mut branches, outer)) = stack.pop() {
                if let Some(last) = branches.last_mut() {
                    last.1 = std::mem::replace(cur, outer);
                }
                cur.push(Node::Cond(branches));
            }
        }
        _ => {}
    }
}

/// One shared empty macro for light parses.
fn empty_macro() -> Arc<Macro> {
    static EMPTY: std::sync::OnceLock<Arc<Macro>> = std::sync::OnceLock::new();
    EMPTY
        .get_or_init(|| {
            Arc::new(Macro {
                params: None,
                body: Vec::new(),
            })
        })
        .clone()
}

/// The guard of a file made of a single `#ifndef X` block that defines X.
fn find_guard(nodes: &[Node]) -> Option<Vec<u8>> {
    let [Node::Cond(branches)] = nodes else {
        return None;
    };
    let [(cond, body)] = branches.as_slice() else {
        return None;
    };
    let name = match cond {
        Cond::NotDefined(n) => n.clone(),
        Cond::Expr(toks) => match toks.as_slice() {
            [bang, d, n] if bang.is(b"!") && d.is_ident(b"defined") => n.text.clone(),
            [bang, d, l, n, r]
                if bang.is(b"!") && d.is_ident(b"defined") && l.is(b"(") && r.is(b")") =>
            {
                n.text.clone()
            }
            _ => return None,
        },
        _ => return None,
    };
    body.iter()
        .any(|n| matches!(n, Node::Define(d, _) if **d == *name))
        .then_some(name)
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let b = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(a, |p| p + 1);
    &s[a..b.max(a)]
}

/// Skips horizontal whitespace, continuations and comments at the start of
/// a line; stops at the first other byte (or a newline, which is consumed).
fn skip_blank(s: &[u8], mut i: usize) -> usize {
    while i < s.len() {
        match s[i] {
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => i += 1,
            b'\n' => i += 1,
            b'\\' if continuation(s, i) > 0 => i += continuation(s, i),
            b'/' if s.get(i + 1) == Some(&b'*') => i = end_block_comment(s, i + 2),
            _ => return i,
        }
    }
    i
}

/// Length of a backslash-newline (allowing `\r\n`) at `i`, or 0.
pub(super) fn continuation(s: &[u8], i: usize) -> usize {
    match (s.get(i), s.get(i + 1), s.get(i + 2)) {
        (Some(b'\\'), Some(b'\n'), _) => 2,
        (Some(b'\\'), Some(b'\r'), Some(b'\n')) => 3,
        _ => 0,
    }
}

/// Index just past the `*/` (possibly split by backslash-newlines)
/// closing a block comment whose body starts at `i`.
pub(super) fn end_block_comment(s: &[u8], mut i: usize) -> usize {
    while let Some(p) = find_byte(&s[i.min(s.len())..], b'*') {
        let mut j = i + p + 1;
        while continuation(s, j) > 0 {
            j += continuation(s, j);
        }
        if s.get(j) == Some(&b'/') {
            return j + 1;
        }
        i += p + 1;
    }
    s.len()
}

/// Skips an ordinary (non-directive) logical line, honouring literals,
/// comments and continuations. Returns the index after its newline and
/// whether the line has a `_Pragma` outside literals and comments.
fn skip_code_line(s: &[u8], mut i: usize) -> (usize, bool) {
    let mut pragma = false;
    while i < s.len() {
        // Most bytes matter to none of the cases below: skip them in a
        // tight loop first.
        i += s[i..]
            .iter()
            .position(|&c| CODE_STOPS[usize::from(c)])
            .unwrap_or(s.len() - i);
        if i == s.len() {
            break;
        }
        match s[i] {
            b'\n' => return (i + 1, pragma),
            b'\\' if continuation(s, i) > 0 => i += continuation(s, i),
            b'/' if s.get(i + 1) == Some(&b'*') => i = end_block_comment(s, i + 2),
            b'/' if s.get(i + 1) == Some(&b'/') => return (skip_line_comment(s, i + 2), pragma),
            b'"' => i = raw_string_end(s, i).unwrap_or_else(|| skip_quoted(s, i + 1, b'"')),
            b'\'' => i = skip_quoted(s, i + 1, b'\''),
            // `_Pragma`, found by its rarer `P` (the `_` before it was
            // skipped as a plain byte of this line).
            b'P' if i > 0 && s[i - 1] == b'_' && s[i..].starts_with(b"Pragma") => {
                pragma = true;
                i += 6;
            }
            _ => i += 1,
        }
    }
    (i, pragma)
}

/// A byte table: true for the bytes in `bytes`.
const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut k = 0;
    while k < bytes.len() {
        set[bytes[k] as usize] = true;
        k += 1;
    }
    set
}

/// The bytes an ordinary line's scan has to look at: line ends,
/// continuations, comments, literals and the `P` of `_Pragma` (`_` itself
/// is far too common in system headers to stop at).
const CODE_STOPS: [bool; 256] = byte_set(b"\n\\/\"'P");

/// The bytes outside literals that a directive line's copy has to look at.
const DIRECTIVE_STOPS: [bool; 256] = byte_set(b"\n\\/\"'<");

/// Skips a `//` comment (which continues across backslash-newlines).
pub(super) fn skip_line_comment(s: &[u8], mut i: usize) -> usize {
    // From newline to newline: only a backslash just before one (perhaps
    // with a carriage return between) carries the comment on.
    while i < s.len() {
        let Some(p) = find_byte(&s[i..], b'\n') else {
            return s.len();
        };
        let nl = i + p;
        let before = &s[i..nl];
        let continued = before.ends_with(b"\\") || before.ends_with(b"\\\r");
        if !continued {
            return nl + 1;
        }
        i = nl + 1;
    }
    i
}

/// When the `"` at `i` opens a raw string literal (`R"delim(...)delim"`,
/// with an optional `u8`, `u`, `U` or `L` before the `R`), the index just
/// past its closing quote (the end of `s` if it is not closed). Its body may
/// span lines and hold anything, `#if 0` lines included, and none of it is
/// a directive (GCC accepts raw strings in C++ and in the GNU C dialects).
pub(super) fn raw_string_end(s: &[u8], i: usize) -> Option<usize> {
    if i == 0 || s[i - 1] != b'R' {
        return None;
    }
    let r = i - 1;
    let prefix_start = if r >= 2 && &s[r - 2..r] == b"u8" {
        r - 2
    } else if r >= 1 && matches!(s[r - 1], b'u' | b'U' | b'L') {
        r - 1
    } else {
        r
    };
    // The prefix must be a whole token, not the end of an identifier.
    if prefix_start > 0 {
        let c = s[prefix_start - 1];
        if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            return None;
        }
    }
    let open = s[i + 1..].iter().take(17).position(|&c| c == b'(')?;
    let delim = &s[i + 1..i + 1 + open];
    if delim
        .iter()
        .any(|c| matches!(c, b' ' | b')' | b'\\' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
    {
        return None;
    }
    let body = i + 1 + open + 1;
    let mut close = Vec::with_capacity(delim.len() + 2);
    close.push(b')');
    close.extend_from_slice(delim);
    close.push(b'"');
    Some(
        s[body..]
            .windows(close.len())
            .position(|w| w == close.as_slice())
            .map_or(s.len(), |p| body + p + close.len()),
    )
}

/// Skips a literal body; an unterminated literal ends at the line end.
pub(super) fn skip_quoted(s: &[u8], mut i: usize, q: u8) -> usize {
    while i < s.len() {
        match s[i] {
            b'\\' if continuation(s, i) > 0 => i += continuation(s, i),
            b'\\' => i += 2,
            b'\n' => return i,
            c if c == q => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Collects a directive's logical line starting at `i` (just after `#`)
/// into `out` (cleared first): continuations removed, comments replaced by
/// a space. Quoted text is copied as is, so `"a//b.h"` keeps its slashes,
/// and so is the `<...>` header name of an include (one token in C: GCC
/// finds `<x/*y*/z.h>`; sweep U, D12). Returns the index after its newline.
fn directive_line(s: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    out.clear();
    let mut quote: Option<u8> = None;
    while i < s.len() {
        if quote.is_none() {
            // Copy a run of plain bytes at once.
            let run = s[i..]
                .iter()
                .position(|&c| DIRECTIVE_STOPS[usize::from(c)])
                .unwrap_or(s.len() - i);
            out.extend_from_slice(&s[i..i + run]);
            i += run;
            if i == s.len() {
                break;
            }
        }
        let c = s[i];
        let cont = continuation(s, i);
        if cont > 0 {
            i += cont;
            continue;
        }
        if c == b'\n' {
            return i + 1;
        }
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                } else if c == b'\\' && q != b'>' && i + 1 < s.len() && s[i + 1] != b'\n' {
                    out.push(s[i + 1]);
                    i += 1;
                }
                i += 1;
            }
            None => {
                if c == b'/' && s.get(i + 1) == Some(&b'*') {
                    out.push(b' ');
                    i = end_block_comment(s, i + 2);
                } else if c == b'/' && s.get(i + 1) == Some(&b'/') {
                    let end = skip_line_comment(s, i + 2);
                    return end;
                } else {
                    if c == b'"' || c == b'\'' {
                        quote = Some(c);
                    } else if c == b'<' && is_include_head(out) {
                        quote = Some(b'>');
                    }
                    out.push(c);
                    i += 1;
                }
            }
        }
    }
    i
}

/// Whether a directive line read so far is only the name of an include
/// directive (its header name comes next).
fn is_include_head(line: &[u8]) -> bool {
    matches!(trim(line), b"include" | b"include_next" | b"import")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_directives_that_may_rename_the_file() {
        for (line, want) in [
            ("line 10 \"lf.h\"", true),
            (" line 3 NAME", true),
            ("10 \"x.h\" 1", true),
            ("line 10", false),
            ("line", false),
            ("lines 1 \"x\"", false),
            ("10", false),
            ("define X \"a\"", false),
        ] {
            assert_eq!(names_a_file(line.as_bytes()), want, "{line}");
        }
    }

    fn includes(nodes: &[Node], out: &mut Vec<String>) {
        for n in nodes {
            match n {
                Node::Include { body, .. } => out.push(String::from_utf8_lossy(body).into()),
                Node::Cond(b) => b.iter().for_each(|(_, body)| includes(body, out)),
                _ => {}
            }
        }
    }

    fn all_includes(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        includes(&parse(src.as_bytes()).nodes, &mut out);
        out
    }

    fn popped(src: &str) -> Vec<String> {
        parse(src.as_bytes())
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::PopMacro { name, .. } => Some(String::from_utf8_lossy(name).into()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn pragma_operator_on_code_lines() {
        // Found wherever it starts on a line, after identifiers and spaces.
        let src = "int __x_y; _Pragma(\"pop_macro(\\\"A\\\")\") int z;\n\
                   _Pragma(\"pop_macro(\\\"B\\\")\")\n\
                   f(); __Pragma(\"pop_macro(\\\"C\\\")\")\n";
        assert_eq!(popped(src), ["A", "B", "C"]);
        // Not in literals or comments, not without its `_`, not split by a
        // continuation.
        let src = "char *s = \"_Pragma(\\\"pop_macro(\\\\\\\"D\\\\\\\")\\\")\";\n\
                   /* _Pragma(\"pop_macro(\\\"E\\\")\") */ int a;\n\
                   // _Pragma(\"pop_macro(\\\"F\\\")\")\n\
                   Pragma(\"pop_macro(\\\"G\\\")\");\n\
                   _\\\nPragma(\"pop_macro(\\\"H\\\")\");\n";
        assert_eq!(popped(src), Vec::<String>::new());
        // Lines after all of these still parse.
        assert_eq!(
            all_includes(&format!("{src}#include \"after.h\"\n")),
            ["\"after.h\""]
        );
    }

    #[test]
    fn pragma_gcc_dependency() {
        let src = "#pragma GCC dependency \"parse.y\" regenerate\n\
                   # pragma GCC dependency <sys/dep.h>\n\
                   #pragma GCC dependencyx \"no\"\n\
                   #pragma GCC poison dependency\n";
        let deps: Vec<String> = parse(src.as_bytes())
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Dependency(b) => Some(String::from_utf8_lossy(b).into()),
                _ => None,
            })
            .collect();
        assert_eq!(deps, ["\"parse.y\" regenerate", "<sys/dep.h>"]);
    }

    #[test]
    fn byte_order_mark_and_digraph_hash() {
        // GCC skips a UTF-8 byte-order mark; `%:` is `#`, `%:%:` is `##`.
        let src = "\u{feff}#include \"bom.h\"\n\
                   %:include \"digraph.h\"\n\
                   \t%: include <spaced.h>\n\
                   %:%:include \"no.h\"\n";
        assert_eq!(
            all_includes(src),
            ["\"bom.h\"", "\"digraph.h\"", "<spaced.h>"]
        );
        // A mark anywhere else is not skipped.
        assert!(all_includes("int x;\n\u{feff}#include \"no.h\"\n").is_empty());
    }

    #[test]
    fn comments_and_continuations() {
        let src = "/* #include \"no1.h\" */\n\
                   // #include \"no2.h\"\n\
                   const char *s = \"#include \\\"no3.h\\\"\";\n\
                   # /* c */ include /* c */ \"a.h\" // trailing\n\
                   #inc\\\nlude <b\\\n.h>\n\
                   int x; /* start\n#include \"no4.h\"\n end */\n\
                   \t  #  include \"c//d.h\"\n\
                   #define X \\\n  1\n";
        assert_eq!(all_includes(src), vec!["\"a.h\"", "<b.h>", "\"c//d.h\""]);
        // A header name in angles is one token: no comment inside it
        // (sweep U, D12), but a comment after it is one.
        assert_eq!(
            all_includes(
                "#include <x/*y*/z.h>\n#include_next<x//y.h> // c\n#if A < B /* c */\n#endif\n"
            ),
            vec!["<x/*y*/z.h>", "<x//y.h>"]
        );
        // A comment closed across a line splice ends there, as for the
        // compiler: the include after it counts.
        assert_eq!(
            all_includes("int y; /* end *\\\n/\n#include \"e.h\"\n/* x */ int z;\n"),
            vec!["\"e.h\""]
        );
    }

    #[test]
    fn conditionals_tree_and_guard() {
        let p = parse(b"#ifndef G\n#define G\n#if A\n#include \"x.h\"\n#elif B\n#else\n#include \"y.h\"\n#endif\n#endif\n");
        assert_eq!(p.guard.as_deref(), Some(&b"G"[..]));
        let Node::Cond(outer) = &p.nodes[0] else {
            panic!("no cond")
        };
        let Node::Cond(inner) = &outer[0].1[1] else {
            panic!("no inner cond")
        };
        assert_eq!(inner.len(), 3);
        assert!(matches!(inner[2].0, Cond::Else));
        // Unbalanced input does not panic and keeps the includes.
        assert_eq!(
            all_includes("#endif\n#if 1\n#include \"z.h\"\n"),
            vec!["\"z.h\""]
        );
        assert!(parse(b"#ifndef G\n#endif\n#define G\n").guard.is_none());
        // Code outside the block: read again by the compiler, no guard
        // (sweep AA rerun, seed 25); comments outside are fine.
        assert!(
            parse(b"#ifndef G\n#define G\n#endif\nint x;\n")
                .guard
                .is_none()
        );
        assert!(
            parse(b"int x;\n#ifndef G\n#define G\n#endif\n")
                .guard
                .is_none()
        );
        let commented = b"// c\n/* c */\n#ifndef G\n#define G\n#endif\n// end\n/* end */\n";
        assert_eq!(parse(commented).guard.as_deref(), Some(&b"G"[..]));
    }

    #[test]
    fn deep_nesting_is_flattened() {
        let mut src = String::new();
        for _ in 0..5000 {
            src.push_str("#if X\n");
        }
        src.push_str("#include \"deep.h\"\n");
        for _ in 0..5000 {
            src.push_str("#else\n#endif\n");
        }
        assert_eq!(all_includes(&src), vec!["\"deep.h\""]);
    }

    /// Random bytes never panic the scanner, the macro expander or the
    /// condition evaluator.
    #[test]
    fn garbage_does_not_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"#ifdefinclude \"<>()/*\\\n'AB_1+-!&|?:,##x";
        let mut env = crate::includes::macros::Env::default();
        for round in 0..300 {
            let len = (x % 400) as usize;
            let mut src = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let c = if round % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    alphabet[(x % alphabet.len() as u64) as usize]
                };
                src.push(c);
            }
            let p = parse(&src);
            let mut stack: Vec<&Node> = p.nodes.iter().collect();
            while let Some(n) = stack.pop() {
                match n {
                    Node::Define(name, m) => env.define_shared(name, m.clone(), round % 2 == 0),
                    Node::Cond(b) => {
                        for (c, body) in b {
                            if let Cond::Expr(t) = c {
                                let _ =
                                    crate::includes::condexpr::eval(t, &env, true, &mut |_, _| {
                                        None
                                    });
                                let _ = crate::includes::macros::expand(t, &env);
                            }
                            stack.extend(body.iter());
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn import_next_and_once() {
        let p = parse(b"#import \"a.h\"\n#include_next <b.h>\n#pragma once\n#undef Q\n");
        assert!(matches!(p.nodes[0], Node::Include { import: true, .. }));
        assert!(matches!(
            p.nodes[1],
            Node::Include {
                kind: IncludeKind::Next,
                ..
            }
        ));
        assert!(matches!(p.nodes[2], Node::Once));
        assert!(matches!(&p.nodes[3], Node::Undef(n) if n == b"Q"));
    }

    #[test]
    fn raw_strings_hide_directives() {
        let src = "const char *a = R\"(\n#if 0\n)\";\n#include \"g.h\"\n\
                   auto b = u8R\"x(\n#include \"no.h\"\n)\" )x\";\n#include \"h.h\"\n\
                   auto c = LR\"()\"; auto d = uR\"--(#endif)--\";\n#include \"i.h\"\n";
        assert_eq!(all_includes(src), ["\"g.h\"", "\"h.h\"", "\"i.h\""]);
        // Not raw: an identifier ending in R, a macro named R before a
        // plain string, a delimiter with a space.
        let src = "x = FOOR\"(\";\n#include \"a.h\"\ny = R \"(\";\n#include \"b.h\"\n\
                   z = R\"a b(\";\n#include \"c.h\"\n";
        assert_eq!(all_includes(src), ["\"a.h\"", "\"b.h\"", "\"c.h\""]);
        // An unterminated raw string runs to the end of the file.
        assert!(all_includes("s = R\"(\n#include \"x.h\"\n").is_empty());
    }

    #[test]
    fn trigraphs_are_noticed() {
        assert!(parse(b"??=include \"a.h\"\n").trigraph);
        assert!(parse(b"#if A ??! B\n#endif\n").trigraph);
        assert!(parse(b"// comment ??/\n#include \"hidden.h\"\n").trigraph);
        // Elsewhere they only change tokens: gtest's and Redis's comments.
        assert!(!parse(b"// {ASSERT|EXPECT}_??() macros\nint a??(3??);\n").trigraph);
        assert!(!parse(b"/* atomic??! */\n#include \"a.h\"\n").trigraph);
        assert!(parse(b"#define X a ??/\n b\n").trigraph);
        assert!(!parse(b"#include \"a.h\"\n/* what?? */\n").trigraph);
    }

    /// The byte-by-byte forms the memchr-driven searches replaced.
    fn trigraph_bytewise(src: &[u8], last: &[u8]) -> bool {
        src.windows(3)
            .any(|w| w[0] == b'?' && w[1] == b'?' && last.contains(&w[2]))
    }

    fn line_comment_end_bytewise(s: &[u8], mut i: usize) -> usize {
        while i < s.len() {
            match s[i] {
                b'\n' => return i + 1,
                b'\\' if continuation(s, i) > 0 => i += continuation(s, i),
                _ => i += 1,
            }
        }
        i
    }

    #[test]
    fn fast_searches_agree_with_bytewise_ones() {
        // Every string of up to 7 bytes over the bytes that matter.
        let alphabet = b"?=/\\\r\nx";
        let mut cases = vec![Vec::new()];
        for len in 1..=7 {
            let mut digits = vec![0usize; len];
            loop {
                cases.push(digits.iter().map(|&d| alphabet[d]).collect::<Vec<u8>>());
                let Some(k) = digits.iter().rposition(|&d| d + 1 < alphabet.len()) else {
                    break;
                };
                digits[k] += 1;
                digits[k + 1..].iter_mut().for_each(|d| *d = 0);
            }
        }
        for case in &cases {
            for last in [&b"=/"[..], b"=/'()!<>-"] {
                assert_eq!(
                    has_trigraph_ending(case, last),
                    trigraph_bytewise(case, last),
                    "{case:?}"
                );
            }
            for start in 0..=case.len() {
                assert_eq!(
                    skip_line_comment(case, start),
                    line_comment_end_bytewise(case, start),
                    "{case:?} from {start}"
                );
            }
        }
    }
}
