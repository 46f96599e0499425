//! Evaluation of `#if`/`#elif` conditions, where it is possible.
//!
//! [`super::closure`] asks [`eval`] for the value of a condition in the
//! current macro environment. The answer is `Some(bool)` only when every
//! possible expansion gives the same value; anything that depends on
//! something not known (a macro possibly defined elsewhere, `__has_builtin`,
//! a division by zero) is `None`, and the walker then keeps both branches so
//! that no header is ever missed.

use super::lex::{Tok, TokKind};
use super::macros::{Env, UNKNOWN, builtin, expand, holds_unknown};

/// Evaluates a condition. `has_include(spelling, next)` answers
/// `__has_include`/`__has_include_next` for a `"x"` or `<x>` operand.
pub fn eval(
    toks: &[Tok],
    env: &Env,
    cplusplus: bool,
    has_include: &mut dyn FnMut(&[u8], bool) -> Option<bool>,
) -> Option<bool> {
    if direct(toks, env) {
        // No macro to expand and no `__has_*`: evaluated where it lies,
        // `defined` answered by the parser (no token is copied).
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
            cplusplus,
            env: Some(env),
        };
        let v = p.ternary()?;
        if p.pos != toks.len() {
            return None;
        }
        return Some(v?.is_true());
    }
    let pre = prepass(toks, env, has_include)?;
    // Most conditions use no macro (after `defined` is replaced): evaluate
    // them as they are, without copying tokens through the expander.
    let needs_expansion = pre
        .iter()
        .any(|t| t.kind == TokKind::Ident && env.expands(&t.text));
    let alts = if needs_expansion {
        expand(&pre, env).ok()?
    } else {
        vec![pre]
    };
    let mut result = None;
    for alt in alts {
        let mut p = Parser {
            toks: &alt,
            pos: 0,
            depth: 0,
            cplusplus,
            env: None,
        };
        let v = p.ternary()?;
        if p.pos != alt.len() {
            return None;
        }
        let b = v?.is_true();
        match result {
            None => result = Some(b),
            Some(prev) if prev != b => return None,
            _ => {}
        }
    }
    result
}

/// Whether a condition can be evaluated as it is: every `defined` is
/// well formed, no `__has_*` operator, and no identifier a macro expands.
fn direct(toks: &[Tok], env: &Env) -> bool {
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.kind == TokKind::Ident {
            if t.text == b"defined" {
                i += match defined_operand(&toks[i + 1..]) {
                    Some((_, used)) => 1 + used,
                    None => return false,
                };
                continue;
            }
            if t.text.starts_with(b"__has_") || env.expands(&t.text) {
                return false;
            }
        }
        i += 1;
    }
    true
}

/// The name a `defined` operator tests, given the tokens after it, and how
/// many of them it takes: `NAME` or `( NAME )`.
fn defined_operand(rest: &[Tok]) -> Option<(&Tok, usize)> {
    match rest {
        [open, name, close, ..] if open.is(b"(") => close.is(b")").then_some((name, 3)),
        [open, ..] if open.is(b"(") => None,
        [name, ..] => Some((name, 1)),
        [] => None,
    }
}

fn number(v: Option<bool>) -> Tok {
    Tok {
        kind: if v.is_some() {
            TokKind::Number
        } else {
            TokKind::Ident
        },
        text: match v {
            Some(true) => b"1".to_vec(),
            Some(false) => b"0".to_vec(),
            None => UNKNOWN.to_vec(),
        },
        space: true,
    }
}

/// Replaces `defined`, `__has_include` and other `__has_*` operators by
/// their values (or the unknown marker) before macro expansion.
fn prepass(
    toks: &[Tok],
    env: &Env,
    has_include: &mut dyn FnMut(&[u8], bool) -> Option<bool>,
) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.is_ident(b"defined") {
            let (name, used) = defined_operand(&toks[i + 1..])?;
            out.push(number(env.is_defined(&name.text)));
            i += 1 + used;
        } else if t.kind == TokKind::Ident
            && t.text.starts_with(b"__has_")
            && toks.get(i + 1).is_some_and(|p| p.is(b"("))
        {
            // The operand ends at the parenthesis that closes the call.
            let mut level = 0usize;
            let close = (i + 1..toks.len()).find(|&k| {
                if toks[k].is(b"(") {
                    level += 1;
                } else if toks[k].is(b")") {
                    level -= 1;
                    return level == 0;
                }
                false
            })?;
            let value = if t.text == b"__has_include" || t.text == b"__has_include_next" {
                let next = t.text == b"__has_include_next";
                let inner = &toks[i + 2..close];
                let spelling = super::lex::spell(inner);
                if is_header_name(&spelling) {
                    has_include(&spelling, next)
                } else {
                    // Not a header name as written: the compiler expands
                    // macros in it first (`__has_include(CONFIG_H)`).
                    has_include_expanded(inner, env, next, has_include)
                }
            } else {
                None
            };
            out.push(number(value));
            i = close + 1;
        } else {
            out.push(t.clone());
            i += 1;
        }
    }
    Some(out)
}

fn is_header_name(spelling: &[u8]) -> bool {
    spelling.len() >= 2
        && ((spelling.starts_with(b"\"") && spelling.ends_with(b"\""))
            || (spelling.starts_with(b"<") && spelling.ends_with(b">")))
}

/// `__has_include` of an operand given through macros: known when every
/// possible expansion names a header and they all give one answer.
fn has_include_expanded(
    operand: &[Tok],
    env: &Env,
    next: bool,
    has_include: &mut dyn FnMut(&[u8], bool) -> Option<bool>,
) -> Option<bool> {
    let alts = expand(operand, env).ok()?;
    let mut answer = None;
    for alt in alts {
        let spelling = match alt.as_slice() {
            [t] if t.kind == TokKind::Str => t.text.clone(),
            _ => super::lex::spell(&alt),
        };
        if holds_unknown(&spelling) || !is_header_name(&spelling) {
            return None;
        }
        let v = has_include(&spelling, next)?;
        match answer {
            None => answer = Some(v),
            Some(prev) if prev != v => return None,
            _ => {}
        }
    }
    answer
}

/// A value of a `#if` expression: the preprocessor computes in `intmax_t`
/// or, as soon as an operand is unsigned, in `uintmax_t` (C11 6.10.1 and
/// the usual arithmetic conversions), so `2U - 3 > 0` is true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Num {
    /// The two's-complement bits.
    bits: u64,
    unsigned: bool,
}

impl Num {
    fn signed(v: i64) -> Num {
        Num {
            bits: v as u64,
            unsigned: false,
        }
    }

    fn truth(b: bool) -> Num {
        Num::signed(b as i64)
    }

    fn is_true(self) -> bool {
        self.bits != 0
    }

    fn negative(self) -> bool {
        !self.unsigned && (self.bits as i64) < 0
    }
}

/// Precedence-climbing evaluator over `Option<Num>` (None = unknown).
/// The outer `Option` of each method is a syntax error.
struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    /// Nesting depth, bounded so that `((((...` cannot exhaust the stack.
    depth: usize,
    cplusplus: bool,
    /// Set when the tokens are the condition as written ([`direct`]):
    /// `defined` is then answered here.
    env: Option<&'a Env<'a>>,
}

type V = Option<Num>;

const BINARY: &[(&[u8], u8)] = &[
    (b"||", 1),
    (b"&&", 2),
    (b"|", 3),
    (b"^", 4),
    (b"&", 5),
    (b"==", 6),
    (b"!=", 6),
    (b"<", 7),
    (b">", 7),
    (b"<=", 7),
    (b">=", 7),
    (b"<<", 8),
    (b">>", 8),
    (b"+", 9),
    (b"-", 9),
    (b"*", 10),
    (b"/", 10),
    (b"%", 10),
];

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn ternary(&mut self) -> Option<V> {
        let c = self.binary(1)?;
        if self.peek().is_some_and(|t| t.is(b"?")) {
            self.pos += 1;
            let a = self.ternary()?;
            if !self.peek()?.is(b":") {
                return None;
            }
            self.pos += 1;
            let b = self.ternary()?;
            // The result has the common type of both branches.
            let unsigned = a.is_some_and(|a| a.unsigned) || b.is_some_and(|b| b.unsigned);
            let common = |v: V| {
                v.map(|n| Num {
                    bits: n.bits,
                    unsigned: n.unsigned || unsigned,
                })
            };
            let (a, b) = (common(a), common(b));
            return Some(match c {
                Some(c) if c.is_true() => a,
                Some(_) => b,
                None if a == b => a,
                None => None,
            });
        }
        Some(c)
    }

    fn binary(&mut self, min: u8) -> Option<V> {
        let mut lhs = self.unary()?;
        while let Some(t) = self.peek() {
            let Some(&(op, prec)) = BINARY.iter().find(|(op, _)| t.is(op)) else {
                break;
            };
            if prec < min {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = apply(op, lhs, rhs);
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<V> {
        self.depth += 1;
        if self.depth > 256 {
            return None;
        }
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Option<V> {
        let toks = self.toks;
        let t = toks.get(self.pos)?;
        self.pos += 1;
        if let Some(env) = self.env
            && t.is_ident(b"defined")
        {
            let (name, used) = defined_operand(&toks[self.pos..])?;
            self.pos += used;
            return Some(env.is_defined(&name.text).map(Num::truth));
        }
        if t.is(b"(") {
            let v = self.ternary()?;
            if !self.peek()?.is(b")") {
                return None;
            }
            self.pos += 1;
            return Some(v);
        }
        if t.is(b"!") {
            return Some(self.unary()?.map(|v| Num::truth(!v.is_true())));
        }
        if t.is(b"-") {
            return Some(self.unary()?.map(|v| Num {
                bits: v.bits.wrapping_neg(),
                ..v
            }));
        }
        if t.is(b"+") {
            return self.unary();
        }
        if t.is(b"~") {
            return Some(self.unary()?.map(|v| Num { bits: !v.bits, ..v }));
        }
        match t.kind {
            TokKind::Number => Some(parse_number(&t.text)),
            TokKind::Char => Some(parse_char(&t.text)),
            TokKind::Ident if holds_unknown(&t.text) || builtin(&t.text) => Some(None),
            TokKind::Ident if self.cplusplus && t.text == b"true" => Some(Some(Num::signed(1))),
            TokKind::Ident if self.cplusplus && t.text == b"false" => Some(Some(Num::signed(0))),
            // A function-like macro name or unknown call: unknown, skip args.
            TokKind::Ident => {
                if self.peek().is_some_and(|p| p.is(b"(")) {
                    let mut level = 0;
                    while let Some(p) = self.toks.get(self.pos) {
                        self.pos += 1;
                        if p.is(b"(") {
                            level += 1;
                        } else if p.is(b")") {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                    }
                    return Some(None);
                }
                // Left after expansion: not a macro, so 0.
                Some(Some(Num::signed(0)))
            }
            _ => None,
        }
    }
}

fn apply(op: &[u8], a: V, b: V) -> V {
    // Short-circuit operators know their value from one side.
    let known_false = |v: V| v.is_some_and(|n| !n.is_true());
    let known_true = |v: V| v.is_some_and(|n| n.is_true());
    match op {
        b"&&" => {
            return if known_false(a) || known_false(b) {
                Some(Num::truth(false))
            } else if a.is_some() && b.is_some() {
                Some(Num::truth(true))
            } else {
                None
            };
        }
        b"||" => {
            return if known_true(a) || known_true(b) {
                Some(Num::truth(true))
            } else if a.is_some() && b.is_some() {
                Some(Num::truth(false))
            } else {
                None
            };
        }
        _ => {}
    }
    let (a, b) = (a?, b?);
    if op == b"<<" || op == b">>" {
        return Some(shift(op == b"<<", a, b));
    }
    // The usual arithmetic conversions: unsigned if either operand is.
    let unsigned = a.unsigned || b.unsigned;
    let (x, y) = (a.bits, b.bits);
    let (sx, sy) = (x as i64, y as i64);
    let value = |bits: u64| Num { bits, unsigned };
    let compare = |less: bool, equal: bool| -> Num {
        let (lt, eq) = if unsigned {
            (x < y, x == y)
        } else {
            (sx < sy, sx == sy)
        };
        Num::truth((less && lt) || (equal && eq))
    };
    Some(match op {
        b"|" => value(x | y),
        b"^" => value(x ^ y),
        b"&" => value(x & y),
        b"==" => Num::truth(x == y),
        b"!=" => Num::truth(x != y),
        b"<" => compare(true, false),
        b"<=" => compare(true, true),
        b">" => Num::truth(!compare(true, true).is_true()),
        b">=" => Num::truth(!compare(true, false).is_true()),
        b"+" => value(x.wrapping_add(y)),
        b"-" => value(x.wrapping_sub(y)),
        b"*" => value(x.wrapping_mul(y)),
        b"/" if unsigned => value(x.checked_div(y)?),
        b"%" if unsigned => value(x.checked_rem(y)?),
        b"/" => value(sx.checked_div(sy)? as u64),
        b"%" => value(sx.checked_rem(sy)? as u64),
        _ => return None,
    })
}

/// `a << b` or `a >> b`: the result has the left operand's type; a negative
/// count shifts the other way, and a count past the width leaves 0 (or -1
/// for a negative signed value shifted right), as GCC's preprocessor does.
fn shift(left: bool, a: Num, b: Num) -> Num {
    let count_negative = b.negative();
    let count = if count_negative {
        b.bits.wrapping_neg()
    } else {
        b.bits
    };
    let left = left != count_negative;
    let bits = if left {
        if count >= 64 { 0 } else { a.bits << count }
    } else if a.unsigned {
        if count >= 64 { 0 } else { a.bits >> count }
    } else {
        ((a.bits as i64) >> count.min(63)) as u64
    };
    Num {
        bits,
        unsigned: a.unsigned,
    }
}

/// An integer literal: unsigned with a `u`/`U` suffix, or when its value
/// does not fit `intmax_t` (GCC: "integer constant is so large that it is
/// unsigned").
fn parse_number(text: &[u8]) -> V {
    let digits: std::borrow::Cow<[u8]> = if text.contains(&b'\'') {
        text.iter().copied().filter(|&c| c != b'\'').collect()
    } else {
        text.into()
    };
    let end = digits
        .iter()
        .rposition(|c| !matches!(c, b'u' | b'U' | b'l' | b'L'))
        .map_or(0, |p| p + 1);
    let suffix_unsigned = digits[end..].iter().any(|c| matches!(c, b'u' | b'U'));
    let s = std::str::from_utf8(&digits[..end]).ok()?;
    let (radix, body) = if let Some(h) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (16, h)
    } else if let Some(b) = s.strip_prefix("0b").or(s.strip_prefix("0B")) {
        (2, b)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let bits = u64::from_str_radix(body, radix).ok()?;
    Some(Num {
        bits,
        unsigned: suffix_unsigned || bits > i64::MAX as u64,
    })
}

fn parse_char(text: &[u8]) -> V {
    let q = text.iter().position(|&c| c == b'\'')?;
    let end = text.len().checked_sub(1)?;
    if q + 1 > end {
        return None;
    }
    let inner = &text[q + 1..end];
    let v = match inner {
        [c] => *c as i8 as i64,
        [b'\\', b'n'] => 10,
        [b'\\', b't'] => 9,
        [b'\\', b'0'] => 0,
        [b'\\', c] => *c as i64,
        _ => return None,
    };
    Some(Num::signed(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::includes::lex::lex;
    use crate::includes::macros::parse_define;
    use std::sync::Arc;

    fn env(defs: &[&str]) -> Env<'static> {
        let mut e = Env::default();
        for d in defs {
            let (n, m) = parse_define(d.as_bytes()).expect("define");
            e.define(&n, Arc::new(m), false);
        }
        e
    }

    fn ev(e: &Env, s: &str) -> Option<bool> {
        eval(&lex(s.as_bytes()), e, false, &mut |sp, _| {
            Some(sp == b"<yes.h>")
        })
    }

    #[test]
    fn arithmetic_and_defined() {
        let e = env(&["A 2", "B (A*3)", "F(x) ((x) > 4)", "VER 0x0102"]);
        assert_eq!(ev(&e, "A + 1 == 3"), Some(true));
        assert_eq!(ev(&e, "B == 6 && defined(A) && !defined B_NOT"), Some(true));
        assert_eq!(ev(&e, "F(B)"), Some(true));
        assert_eq!(ev(&e, "VER >= 0x0200 || (1 ? 0 : 1)"), Some(false));
        assert_eq!(ev(&e, "-1 < 0 && 7 % 4 == 3 && (1 << 4) == 16"), Some(true));
        assert_eq!(ev(&e, "'a' == 97 && 10UL / 3 == 3"), Some(true));
        assert_eq!(ev(&e, "1 / 0"), None);
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(ev(&e, &deep), None);
        assert_eq!(ev(&e, "'"), None);
        assert_eq!(ev(&e, "UNDEFINED_THING"), Some(false));
        assert_eq!(ev(&e, "__LINE__ > 5"), None);
    }

    #[test]
    fn unsigned_operands_make_the_arithmetic_unsigned() {
        let e = env(&["LIMIT 10u", "N -1"]);
        for (cond, want) in [
            ("2U - 3 > 0", true),
            ("(0 ? 1u : -1) > 0", true),
            ("-1 / 2u > 0", true),
            ("-1 < 0u", false),
            ("-1 % 2u == 1", true),
            ("-2 % 3u == 2", true),
            ("-7 % 2 == -1", true),
            ("N < LIMIT", false),
            ("N < 10", true),
            ("-1 < 0", true),
            ("0xffffffffffffffff > 0", true),
            ("18446744073709551615 == -1", true),
            ("-1 >> 63 == -1", true),
            ("-1u >> 63 == 1", true),
            ("1 << 64 == 0", true),
            ("1 << -1 == 0", true),
            ("(1u << 63) > 0", true),
            ("(1 << 63) < 0", true),
            ("~0u > 0 && ~0 < 0", true),
            ("!0u == 1 && (2u > 1) - 2 < 0", true),
        ] {
            assert_eq!(ev(&e, cond), Some(want), "{cond}");
        }
    }

    #[test]
    fn unknown_stays_unknown() {
        // After a system header with a computed include, anything written
        // before it is unknown; what the walk writes after it is not.
        let mut e = env(&["B 1"]);
        e.unseen.open = true;
        e.unseen.include();
        assert_eq!(ev(&e, "B == 1"), None);
        let (n, m) = parse_define(b"A 1").expect("define");
        e.define(&n, Arc::new(m), false);
        assert_eq!(ev(&e, "NOT_SEEN"), None);
        assert_eq!(ev(&e, "defined(NOT_SEEN)"), None);
        assert_eq!(ev(&e, "NOT_SEEN && 0"), Some(false));
        assert_eq!(ev(&e, "NOT_SEEN || A"), Some(true));
        assert_eq!(ev(&e, "__has_builtin(__builtin_x)"), None);
        let (n, m) = parse_define(b"A 2").expect("define");
        e.define(&n, Arc::new(m), true);
        assert_eq!(ev(&e, "A == 1"), None);
        assert_eq!(ev(&e, "A > 0"), Some(true));
    }

    #[test]
    fn has_include() {
        let e = Env::default();
        assert_eq!(ev(&e, "__has_include(<yes.h>)"), Some(true));
        assert_eq!(ev(&e, "__has_include(\"no.h\") || 0"), Some(false));
        // An operand given through macros is expanded first.
        let e = env(&["YES <yes.h>", "NO \"no.h\"", "S(x) #x", "XS(x) S(x)"]);
        assert_eq!(ev(&e, "__has_include(YES)"), Some(true));
        assert_eq!(ev(&e, "__has_include(NO)"), Some(false));
        assert_eq!(ev(&e, "!__has_include(XS(no.h)) && (1)"), Some(true));
        assert_eq!(ev(&e, "__has_include(UNDEFINED_NAME)"), None);
    }
}
