//! Evaluation of `#if`/`#elif` conditions, where it is possible.
//!
//! [`super::closure`] asks [`eval`] for the value of a condition in the
//! current macro environment. The answer is `Some(bool)` only when every
//! possible expansion gives the same value; anything that depends on
//! something not known (a macro possibly defined elsewhere, `__has_builtin`,
//! a division by zero) is `None`, and the walker then keeps both branches so
//! that no header is ever missed.

use super::lex::{Tok, TokKind};
use super::macros::{Env, UNKNOWN, builtin, expand};

/// Evaluates a condition. `has_include(spelling, next)` answers
/// `__has_include`/`__has_include_next` for a `"x"` or `<x>` operand.
pub fn eval(
    toks: &[Tok],
    env: &Env,
    cplusplus: bool,
    has_include: &mut dyn FnMut(&[u8], bool) -> Option<bool>,
) -> Option<bool> {
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
        };
        let v = p.ternary()?;
        if p.pos != alt.len() {
            return None;
        }
        let b = v? != 0;
        match result {
            None => result = Some(b),
            Some(prev) if prev != b => return None,
            _ => {}
        }
    }
    result
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
            let (name, next) = if toks.get(i + 1).is_some_and(|p| p.is(b"(")) {
                if !toks.get(i + 3).is_some_and(|p| p.is(b")")) {
                    return None;
                }
                (toks.get(i + 2)?, i + 4)
            } else {
                (toks.get(i + 1)?, i + 2)
            };
            out.push(number(env.is_defined(&name.text)));
            i = next;
        } else if t.kind == TokKind::Ident
            && t.text.starts_with(b"__has_")
            && toks.get(i + 1).is_some_and(|p| p.is(b"("))
        {
            let close = (i + 2..toks.len()).find(|&k| toks[k].is(b")"))?;
            let value = if t.text == b"__has_include" || t.text == b"__has_include_next" {
                let inner = &toks[i + 2..close];
                let spelling = super::lex::spell(inner);
                let ok = (spelling.starts_with(b"\"") && spelling.ends_with(b"\""))
                    || (spelling.starts_with(b"<") && spelling.ends_with(b">"));
                if ok && spelling.len() >= 2 {
                    has_include(&spelling, t.text == b"__has_include_next")
                } else {
                    None
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

/// Precedence-climbing evaluator over `Option<i64>` (None = unknown).
/// The outer `Option` of each method is a syntax error.
struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    /// Nesting depth, bounded so that `((((...` cannot exhaust the stack.
    depth: usize,
    cplusplus: bool,
}

type V = Option<i64>;

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
            return Some(match c {
                Some(c) if c != 0 => a,
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
        let t = self.peek()?.clone();
        self.pos += 1;
        if t.is(b"(") {
            let v = self.ternary()?;
            if !self.peek()?.is(b")") {
                return None;
            }
            self.pos += 1;
            return Some(v);
        }
        if t.is(b"!") {
            return Some(self.unary()?.map(|v| (v == 0) as i64));
        }
        if t.is(b"-") {
            return Some(self.unary()?.map(i64::wrapping_neg));
        }
        if t.is(b"+") {
            return self.unary();
        }
        if t.is(b"~") {
            return Some(self.unary()?.map(|v| !v));
        }
        match t.kind {
            TokKind::Number => Some(parse_number(&t.text)),
            TokKind::Char => Some(parse_char(&t.text)),
            TokKind::Ident if t.text == UNKNOWN || builtin(&t.text) => Some(None),
            TokKind::Ident if self.cplusplus && t.text == b"true" => Some(Some(1)),
            TokKind::Ident if self.cplusplus && t.text == b"false" => Some(Some(0)),
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
                Some(Some(0))
            }
            _ => None,
        }
    }
}

fn apply(op: &[u8], a: V, b: V) -> V {
    // Short-circuit operators know their value from one side.
    match op {
        b"&&" => {
            return match (a, b) {
                (Some(0), _) | (_, Some(0)) => Some(0),
                (Some(_), Some(_)) => Some(1),
                _ => None,
            };
        }
        b"||" => {
            return match (a, b) {
                (Some(x), _) if x != 0 => Some(1),
                (_, Some(y)) if y != 0 => Some(1),
                (Some(_), Some(_)) => Some(0),
                _ => None,
            };
        }
        _ => {}
    }
    let (a, b) = (a?, b?);
    Some(match op {
        b"|" => a | b,
        b"^" => a ^ b,
        b"&" => a & b,
        b"==" => (a == b) as i64,
        b"!=" => (a != b) as i64,
        b"<" => (a < b) as i64,
        b">" => (a > b) as i64,
        b"<=" => (a <= b) as i64,
        b">=" => (a >= b) as i64,
        b"<<" => a.wrapping_shl(b as u32),
        b">>" => a.wrapping_shr(b as u32),
        b"+" => a.wrapping_add(b),
        b"-" => a.wrapping_sub(b),
        b"*" => a.wrapping_mul(b),
        b"/" => a.checked_div(b)?,
        b"%" => a.checked_rem(b)?,
        _ => return None,
    })
}

fn parse_number(text: &[u8]) -> V {
    let digits: Vec<u8> = text.iter().copied().filter(|&c| c != b'\'').collect();
    let end = digits
        .iter()
        .rposition(|c| !matches!(c, b'u' | b'U' | b'l' | b'L'))
        .map_or(0, |p| p + 1);
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
    u64::from_str_radix(body, radix).ok().map(|v| v as i64)
}

fn parse_char(text: &[u8]) -> V {
    let q = text.iter().position(|&c| c == b'\'')?;
    let end = text.len().checked_sub(1)?;
    if q + 1 > end {
        return None;
    }
    let inner = &text[q + 1..end];
    match inner {
        [c] => Some(*c as i8 as i64),
        [b'\\', b'n'] => Some(10),
        [b'\\', b't'] => Some(9),
        [b'\\', b'0'] => Some(0),
        [b'\\', c] => Some(*c as i64),
        _ => None,
    }
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
    }
}
