//! Macros: definitions, the per-translation-unit macro environment, and
//! multi-valued expansion.
//!
//! [`super::closure`] keeps one [`Env`] per translation unit, seeded with
//! the compiler's predefined macros and `-D`/`-U` in command-line order,
//! and updated by every `#define`/`#undef` it walks. Because branches whose
//! condition is unknown are walked too, a macro may have several possible
//! definitions, or be possibly undefined: [`expand`] therefore returns every
//! possible expansion (bounded), and callers treat "too many" as unknown.

use super::lex::{Tok, TokKind, lex, spell};
use super::unseen::Unseen;
use std::sync::Arc;

/// A macro definition.
#[derive(Debug, PartialEq)]
pub struct Macro {
    /// Parameter names for a function-like macro (`__VA_ARGS__` for `...`).
    pub params: Option<Vec<Vec<u8>>>,
    /// The replacement list.
    pub body: Vec<Tok>,
}

/// Parses the text after `#define` into a name and a macro.
pub fn parse_define(rest: &[u8]) -> Option<(Vec<u8>, Macro)> {
    let toks = lex(rest);
    let name = toks.first().filter(|t| t.kind == TokKind::Ident)?;
    let mut i = 1;
    let mut params = None;
    if toks.get(1).is_some_and(|t| t.is(b"(") && !t.space) {
        let mut ps = Vec::new();
        i = 2;
        loop {
            let t = toks.get(i)?;
            i += 1;
            if t.is(b")") {
                break;
            } else if t.is(b",") {
                continue;
            } else if t.is(b"...") {
                ps.push(b"__VA_ARGS__".to_vec());
            } else if t.kind == TokKind::Ident {
                // GNU named variadic `args...`: the name stands for the rest.
                ps.push(t.text.clone());
                if toks.get(i).is_some_and(|n| n.is(b"...")) {
                    i += 1;
                }
            } else {
                return None;
            }
        }
        params = Some(ps);
    }
    let mut body: Vec<Tok> = toks[i..].to_vec();
    if let Some(first) = body.first_mut() {
        first.space = false;
    }
    Some((name.text.clone(), Macro { params, body }))
}

/// The possible definitions of a name: almost always one, kept inline
/// (a `#define` then costs no allocation for the list).
#[derive(Clone, Debug, Default)]
pub struct Defs(DefsRepr);

#[derive(Clone, Debug, Default)]
enum DefsRepr {
    #[default]
    Zero,
    One(Arc<Macro>),
    Many(Vec<Arc<Macro>>),
}

impl Defs {
    /// Exactly `m`.
    pub fn one(m: Arc<Macro>) -> Defs {
        Defs(DefsRepr::One(m))
    }

    /// Adds `m` as a possibility.
    pub fn push(&mut self, m: Arc<Macro>) {
        self.0 = match std::mem::take(&mut self.0) {
            DefsRepr::Zero => DefsRepr::One(m),
            DefsRepr::One(a) => DefsRepr::Many(vec![a, m]),
            DefsRepr::Many(mut v) => {
                v.push(m);
                DefsRepr::Many(v)
            }
        };
    }
}

impl std::ops::Deref for Defs {
    type Target = [Arc<Macro>];
    fn deref(&self) -> &[Arc<Macro>] {
        match &self.0 {
            DefsRepr::Zero => &[],
            DefsRepr::One(m) => std::slice::from_ref(m),
            DefsRepr::Many(v) => v,
        }
    }
}

/// What is known about one macro name.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Every definition it may have.
    pub defs: Defs,
    /// Whether it may also be undefined.
    pub maybe_undef: bool,
    /// Whether it may also have a definition the walk did not see (after
    /// `#pragma pop_macro`).
    pub unknown: bool,
    /// The system-inclusion generation of its last certain write (see
    /// [`Unseen::may_write`]); 0 for predefined and command-line macros.
    pub written: u32,
}

/// The macro environment of one translation unit.
#[derive(Debug, Default)]
pub struct Env<'c> {
    map: super::cache::FastMap<Arc<[u8]>, State>,
    /// Shared, read-only definitions underneath `map` (the compiler's
    /// predefined macros), copied into `map` only when changed.
    base: Option<Arc<Base>>,
    /// What system headers (scanned, not walked) may have written.
    pub unseen: Unseen<'c>,
    /// Names restored by a `_Pragma("pop_macro")` in the body of a macro
    /// the walk defined: that may act wherever the macro is expanded, so
    /// they stay unknown for the rest of the translation unit.
    volatile: super::cache::FastSet<Vec<u8>>,
    /// One entry per open branch whose condition is unknown ([`Env::open_scope`]):
    /// the state each name changed in it had before (None: not in `map`).
    scopes: Vec<super::cache::FastMap<Arc<[u8]>, Option<State>>>,
    /// Guards of headers walked to their end ([`Env::settle`]): such a
    /// header is not walked again while its guard may be defined, although
    /// `#ifdef` of the guard stays undecided after a branch that may not
    /// have included it.
    settled: super::cache::FastSet<Arc<[u8]>>,
}

/// The answer to "what is `name`?".
#[derive(Debug)]
pub enum Lookup<'e> {
    /// Certainly not defined.
    Undefined,
    /// One of the definitions in the state (or undefined if it says so).
    Known(&'e State),
    /// Anything: defined or not, with any definition.
    Unknown,
}

/// Spelling of the token that stands for an unknown macro in expansions:
/// unknown in `#if`, never a header name.
pub const UNKNOWN: &[u8] = b"\x01unknown";

/// Whether `text` holds the unknown marker, alone or pasted (`##`) or
/// stringized (`#`) into a longer token: such a token has no known value
/// either (`lvl ## __INCLUDE_LEVEL__`, `#x` of `__COUNTER__`).
pub fn holds_unknown(text: &[u8]) -> bool {
    text.windows(UNKNOWN.len()).any(|w| w == UNKNOWN)
}

/// Built-in macros that `-dM` does not list but `#ifdef` sees, whose value
/// depends on the place of use. Names starting with `__has_` are treated
/// the same way (operators of this or another compiler version).
pub const BUILTIN: &[&[u8]] = &[
    b"__LINE__",
    b"__COUNTER__",
    b"__INCLUDE_LEVEL__",
    b"__FILE__",
    b"__BASE_FILE__",
    b"__FILE_NAME__",
    b"__DATE__",
    b"__TIME__",
    b"__TIMESTAMP__",
    b"_Pragma",
    b"__is_identifier",
    b"__building_module",
];

/// Whether `name` is a built-in the environment cannot know.
pub fn builtin(name: &[u8]) -> bool {
    name.starts_with(b"__has_") || BUILTIN.contains(&name)
}

/// Upper bound on the alternatives one expansion may produce.
pub const MAX_ALTERNATIVES: usize = 32;
/// Upper bound on the tokens of one alternative (macros that double their
/// input at each level would otherwise grow exponentially).
pub const MAX_TOKENS: usize = 10_000;
const MAX_DEPTH: usize = 100;

/// Why an expansion has no usable result.
#[derive(Debug, PartialEq, Eq)]
pub enum Unknown {
    /// More than [`MAX_ALTERNATIVES`] possibilities, or too deep.
    TooMany,
    /// A function-like macro call whose arguments are not closed.
    Unbalanced,
}

/// A read-only set of macro states shared between environments.
pub type Base = super::cache::FastMap<Arc<[u8]>, State>;

impl<'c> Env<'c> {
    /// An environment on top of `base`.
    pub fn with_base(base: Arc<Base>, unseen: Unseen<'c>) -> Env<'c> {
        Env {
            base: Some(base),
            // Room for the macros of a typical translation unit's headers.
            map: super::cache::FastMap::with_capacity_and_hasher(1024, Default::default()),
            unseen,
            volatile: Default::default(),
            scopes: Vec::new(),
            settled: Default::default(),
        }
    }

    /// Freezes the definitions made so far into a shareable base.
    pub fn into_base(self) -> Base {
        let mut all = self.base.map(|b| (*b).clone()).unwrap_or_default();
        all.extend(self.map);
        all
    }

    fn base_state(&self, name: &[u8]) -> Option<&State> {
        self.base.as_ref().and_then(|b| b.get(name))
    }

    /// Notes the state of `name` before its first change in the innermost
    /// open scope.
    fn record(&mut self, name: &[u8]) {
        if let Some(scope) = self.scopes.last_mut()
            && !scope.contains_key(name)
        {
            scope.insert(name.into(), self.map.get(name).cloned());
        }
    }

    /// Starts a branch whose condition is unknown. Inside it, `#define` and
    /// `#undef` are certain: they hold on every path through the branch
    /// (a guard defined there guards, a counter stepped there counts).
    pub fn open_scope(&mut self) {
        self.scopes.push(Default::default());
    }

    /// Ends the innermost branch: each name it changed may now have its
    /// state from before the branch or the one the branch left.
    pub fn close_scope(&mut self) {
        let Some(scope) = self.scopes.pop() else {
            return;
        };
        for (name, before) in scope {
            if let Some(outer) = self.scopes.last_mut()
                && !outer.contains_key(&name)
            {
                outer.insert(name.clone(), before.clone());
            }
            let undefined = State::default();
            let before_st = before
                .as_ref()
                .or_else(|| self.base_state(&name))
                .unwrap_or(&undefined)
                .clone();
            let after = self.get(&name).unwrap_or(&undefined);
            let merged = union(&before_st, after);
            self.map.insert(name, merged);
        }
    }

    /// The overlay entry for `name`, copied from the base on first change.
    fn entry(&mut self, name: &[u8]) -> &mut State {
        self.record(name);
        if !self.map.contains_key(name) {
            let st = self.base_state(name).cloned().unwrap_or_default();
            self.map.insert(name.into(), st);
        }
        self.map.get_mut(name).expect("just inserted")
    }

    /// Records a definition. Under uncertainty the definition is added to the
    /// possibilities instead of replacing them.
    pub fn define(&mut self, name: &[u8], m: Arc<Macro>, uncertain: bool) {
        self.define_shared(&Arc::from(name), m, uncertain);
    }

    /// [`Env::define`] with a name shared with the parsed file (a new name
    /// then costs no key allocation).
    pub fn define_shared(&mut self, name: &Arc<[u8]>, m: Arc<Macro>, uncertain: bool) {
        // Common case first: a certain definition replaces everything, with
        // one lookup.
        if !uncertain {
            self.record(name);
            let st = State {
                defs: Defs::one(m),
                maybe_undef: false,
                unknown: false,
                written: self.unseen.generation,
            };
            match self.map.get_mut(&**name) {
                Some(old) => *old = st,
                None => {
                    self.map.insert(name.clone(), st);
                }
            }
            return;
        }
        let fresh = self.get(name).is_none();
        let st = self.entry(name);
        if fresh {
            st.maybe_undef = true;
        }
        if !st.defs.iter().any(|d| **d == *m) {
            st.defs.push(m);
        }
    }

    /// Records an `#undef`.
    pub fn undef(&mut self, name: &[u8], uncertain: bool) {
        let generation = self.unseen.generation;
        let st = self.entry(name);
        if uncertain {
            st.maybe_undef = true;
        } else {
            *st = State {
                written: generation,
                ..State::default()
            };
        }
    }

    /// Records a `pop_macro`: `name` may now have any definition, until
    /// the next certain write (`sticky`: for good).
    pub fn forget(&mut self, name: &[u8], sticky: bool) {
        if sticky {
            self.volatile.insert(name.to_vec());
        }
        let st = self.entry(name);
        st.unknown = true;
        st.maybe_undef = true;
    }

    /// Whether a header guarded by `name` has been walked to its end in
    /// this translation unit ([`Env::settle`]).
    pub fn settled(&self, name: &[u8]) -> bool {
        self.settled.contains(name)
    }

    /// Takes back [`Env::settle`] (the header was walked in a branch
    /// that may not be taken).
    pub fn unsettle(&mut self, name: &[u8]) {
        self.settled.remove(name);
    }

    /// Marks `name` as certainly defined (after walking a guarded header).
    pub fn settle(&mut self, name: &[u8]) {
        if !self.settled.contains(name) {
            self.settled.insert(name.into());
        }
        if self
            .get(name)
            .is_some_and(|st| !st.defs.is_empty() && st.maybe_undef && !st.unknown)
        {
            self.entry(name).maybe_undef = false;
        }
    }

    /// The recorded state of `name`, without asking what system headers
    /// may have done: use [`Env::lookup`] to decide anything.
    pub fn get(&self, name: &[u8]) -> Option<&State> {
        self.map.get(name).or_else(|| self.base_state(name))
    }

    /// What `name` may be here: the recorded state, unless a system header
    /// may have changed it since (or it is a built-in `-dM` does not list,
    /// or was restored by `pop_macro`), in which case it is unknown.
    pub fn lookup(&self, name: &[u8]) -> Lookup<'_> {
        let st = self.get(name);
        if st.is_some_and(|s| s.unknown)
            || (!self.volatile.is_empty() && self.volatile.contains(name))
            || self.unseen.may_write(name, st.map_or(0, |s| s.written))
        {
            return Lookup::Unknown;
        }
        match st {
            Some(s) => Lookup::Known(s),
            None if builtin(name) => Lookup::Unknown,
            None => Lookup::Undefined,
        }
    }

    /// Whether `name` is a macro to expand (defined, or possibly defined
    /// in a way unknown).
    pub fn expands(&self, name: &[u8]) -> bool {
        match self.lookup(name) {
            Lookup::Undefined => false,
            Lookup::Known(s) => !s.defs.is_empty(),
            Lookup::Unknown => true,
        }
    }

    /// `defined(name)`: `Some` when known.
    pub fn is_defined(&self, name: &[u8]) -> Option<bool> {
        match self.lookup(name) {
            Lookup::Known(st) if st.maybe_undef => None,
            Lookup::Known(st) => Some(!st.defs.is_empty()),
            Lookup::Undefined => Some(false),
            Lookup::Unknown => None,
        }
    }
}

/// A name that may be in state `a` or in state `b`.
fn union(a: &State, b: &State) -> State {
    let mut defs = a.defs.clone();
    for m in b.defs.iter() {
        if !defs.iter().any(|d| **d == **m) {
            defs.push(m.clone());
        }
    }
    let may_lack = |s: &State| s.defs.is_empty() || s.maybe_undef;
    State {
        maybe_undef: !defs.is_empty() && (may_lack(a) || may_lack(b)),
        defs,
        unknown: a.unknown || b.unknown,
        written: a.written.min(b.written),
    }
}

/// Every possible full expansion of `toks` (at most [`MAX_ALTERNATIVES`]).
pub fn expand(toks: &[Tok], env: &Env) -> Result<Vec<Vec<Tok>>, Unknown> {
    let mut hidden = Vec::new();
    let mut out = expand_from(toks, 0, env, &mut hidden, 0)?;
    out.dedup();
    Ok(out)
}

fn expand_from(
    toks: &[Tok],
    from: usize,
    env: &Env,
    hidden: &mut Vec<Vec<u8>>,
    depth: usize,
) -> Result<Vec<Vec<Tok>>, Unknown> {
    if depth > MAX_DEPTH {
        return Err(Unknown::TooMany);
    }
    let Some(j) = (from..toks.len()).find(|&j| {
        toks[j].kind == TokKind::Ident
            && !hidden.contains(&toks[j].text)
            && env.expands(&toks[j].text)
            && !(j > 0 && toks[j - 1].is_ident(b"defined"))
            && !(j > 1 && toks[j - 2].is_ident(b"defined") && toks[j - 1].is(b"("))
    }) else {
        return Ok(vec![toks[from..].to_vec()]);
    };
    let prefix = &toks[from..j];
    let name = toks[j].text.clone();
    let mut results: Vec<Vec<Tok>> = Vec::new();
    let state = match env.lookup(&name) {
        Lookup::Known(s) => s.clone(),
        // Anything could come out: one alternative with a marker token
        // that `#if` treats as unknown and no header name contains.
        _ => {
            let mark = [Tok {
                kind: TokKind::Ident,
                text: UNKNOWN.to_vec(),
                space: toks[j].space,
            }];
            let rests = expand_from(toks, j + 1, env, hidden, depth + 1)?;
            let mut out = Vec::new();
            for r in rests {
                let mut v = prefix.to_vec();
                v.extend_from_slice(&mark);
                v.extend(r);
                out.push(v);
            }
            return Ok(out);
        }
    };
    let push = |results: &mut Vec<Vec<Tok>>, mid: &[Tok], rests: Vec<Vec<Tok>>| {
        for r in rests {
            if prefix.len() + mid.len() + r.len() > MAX_TOKENS {
                return Err(Unknown::TooMany);
            }
            let mut v = prefix.to_vec();
            v.extend_from_slice(mid);
            v.extend(r);
            if !results.contains(&v) {
                results.push(v);
            }
        }
        if results.len() > MAX_ALTERNATIVES {
            Err(Unknown::TooMany)
        } else {
            Ok(())
        }
    };
    if state.maybe_undef {
        let rests = expand_from(toks, j + 1, env, hidden, depth + 1)?;
        push(&mut results, &toks[j..=j], rests)?;
    }
    for m in state.defs.iter() {
        let space = toks[j].space;
        let (bodies, after) = match &m.params {
            None => (vec![substitute(m, &[], &[], space)], j + 1),
            Some(params) => {
                if !toks.get(j + 1).is_some_and(|t| t.is(b"(")) {
                    let rests = expand_from(toks, j + 1, env, hidden, depth + 1)?;
                    push(&mut results, &toks[j..=j], rests)?;
                    continue;
                }
                let (args, after) = collect_args(toks, j + 2, params.len())?;
                let mut expanded_sets: Vec<Vec<Vec<Tok>>> = Vec::new();
                for a in &args {
                    expanded_sets.push(expand_from(a, 0, env, hidden, depth + 1)?);
                }
                let mut bodies = Vec::new();
                for combo in combinations(&expanded_sets)? {
                    bodies.push(substitute(m, &args, &combo, space));
                }
                (bodies, after)
            }
        };
        for body in bodies {
            hidden.push(name.clone());
            let alts = expand_from(&body, 0, env, hidden, depth + 1);
            hidden.pop();
            for alt in alts? {
                // A body ending in a function-like macro name may take its
                // arguments from the text after the call: rescan together.
                let tail_fn = alt.last().is_some_and(|t| {
                    t.kind == TokKind::Ident
                        && match env.lookup(&t.text) {
                            Lookup::Known(s) => s.defs.iter().any(|d| d.params.is_some()),
                            Lookup::Unknown => true,
                            Lookup::Undefined => false,
                        }
                }) && toks.get(after).is_some_and(|t| t.is(b"("));
                if tail_fn {
                    let mut joined = alt.clone();
                    joined.extend_from_slice(&toks[after..]);
                    let start = alt.len() - 1;
                    let rests = expand_from(&joined, start, env, hidden, depth + 1)?;
                    push(&mut results, &alt[..start], rests)?;
                } else {
                    let rests = expand_from(toks, after, env, hidden, depth + 1)?;
                    push(&mut results, &alt, rests)?;
                }
            }
        }
    }
    Ok(results)
}

/// Splits call arguments starting after `(` at `i`; returns them and the
/// index after `)`. The last parameter of a variadic macro takes the rest.
fn collect_args(
    toks: &[Tok],
    mut i: usize,
    nparams: usize,
) -> Result<(Vec<Vec<Tok>>, usize), Unknown> {
    let mut args = vec![Vec::new()];
    let mut level = 0usize;
    while let Some(t) = toks.get(i) {
        i += 1;
        if t.is(b"(") {
            level += 1;
        } else if t.is(b")") {
            if level == 0 {
                if nparams == 0 && args.len() == 1 && args[0].is_empty() {
                    args.clear();
                }
                return Ok((args, i));
            }
            level -= 1;
        } else if t.is(b",") && level == 0 && args.len() < nparams.max(1) {
            args.push(Vec::new());
            continue;
        }
        if let Some(last) = args.last_mut() {
            last.push(t.clone());
        }
    }
    Err(Unknown::Unbalanced)
}

fn combinations(sets: &[Vec<Vec<Tok>>]) -> Result<Vec<Vec<Vec<Tok>>>, Unknown> {
    let mut out: Vec<Vec<Vec<Tok>>> = vec![Vec::new()];
    for set in sets {
        let mut next = Vec::new();
        for prefix in &out {
            for alt in set {
                let mut v = prefix.clone();
                v.push(alt.clone());
                next.push(v);
            }
        }
        if next.len() > MAX_ALTERNATIVES {
            return Err(Unknown::TooMany);
        }
        out = next;
    }
    Ok(out)
}

/// The replacement list with parameters substituted, `#` and `##` applied.
fn substitute(m: &Macro, raw: &[Vec<Tok>], expanded: &[Vec<Tok>], space: bool) -> Vec<Tok> {
    let params: &[Vec<u8>] = m.params.as_deref().unwrap_or(&[]);
    let param = |t: &Tok| {
        if t.kind == TokKind::Ident {
            params.iter().position(|p| *p == t.text)
        } else {
            None
        }
    };
    let mut out: Vec<Tok> = Vec::new();
    // Positions in `out` where a `##` joins the previous and next tokens.
    let mut paste_after: Vec<usize> = Vec::new();
    let body = &m.body;
    let mut k = 0;
    while k < body.len() {
        let t = &body[k];
        if t.is(b"#")
            && m.params.is_some()
            && let Some(p) = body.get(k + 1).and_then(param)
        {
            let text = stringify(raw.get(p).map(Vec::as_slice).unwrap_or(&[]));
            out.push(Tok {
                kind: TokKind::Str,
                text,
                space: t.space,
            });
            k += 2;
            continue;
        }
        if t.is(b"##") {
            paste_after.push(out.len());
            k += 1;
            continue;
        }
        if let Some(p) = param(t) {
            let next_paste = body.get(k + 1).is_some_and(|n| n.is(b"##"));
            let prev_paste = k > 0 && body[k - 1].is(b"##");
            let src = if next_paste || prev_paste {
                raw.get(p)
            } else {
                expanded.get(p)
            };
            let mut first = true;
            for a in src.map(Vec::as_slice).unwrap_or(&[]) {
                let mut a = a.clone();
                if first {
                    a.space = t.space;
                    first = false;
                }
                out.push(a);
            }
        } else {
            out.push(t.clone());
        }
        k += 1;
    }
    for &pos in paste_after.iter().rev() {
        if pos == 0 || pos >= out.len() {
            continue;
        }
        let mut text = out[pos - 1].text.clone();
        text.extend_from_slice(&out[pos].text);
        let mut joined = lex(&text);
        if let Some(first) = joined.first_mut() {
            first.space = out[pos - 1].space;
        }
        out.splice(pos - 1..=pos, joined);
    }
    if let Some(first) = out.first_mut() {
        first.space = space;
    }
    out
}

/// The `#` operator: the argument's spelling as a string literal.
fn stringify(arg: &[Tok]) -> Vec<u8> {
    let mut s = vec![b'"'];
    for (n, t) in arg.iter().enumerate() {
        if n > 0 && t.space {
            s.push(b' ');
        }
        for &c in &t.text {
            if matches!(t.kind, TokKind::Str | TokKind::Char) && (c == b'"' || c == b'\\') {
                s.push(b'\\');
            }
            s.push(c);
        }
    }
    s.push(b'"');
    s
}

/// Spelling of an expansion (for logs and computed `<...>` names).
pub fn spelling(toks: &[Tok]) -> Vec<u8> {
    spell(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(defs: &[&str]) -> Env<'static> {
        let mut e = Env::default();
        for d in defs {
            let (n, m) = parse_define(d.as_bytes()).expect("define");
            e.define(&n, Arc::new(m), false);
        }
        e
    }

    fn exp(e: &Env, s: &str) -> Vec<String> {
        expand(&lex(s.as_bytes()), e)
            .expect("expands")
            .iter()
            .map(|t| String::from_utf8_lossy(&spell(t)).into_owned())
            .collect()
    }

    #[test]
    fn object_and_function_like() {
        let e = env(&[
            "HDR \"a.h\"",
            "STR(x) #x",
            "XSTR(x) STR(x)",
            "NAME b",
            "CAT(a, b) a ## b",
            "PATH(n) <dir/n.h>",
            "F G",
            "G(x) x+1",
        ]);
        assert_eq!(exp(&e, "HDR"), vec!["\"a.h\""]);
        assert_eq!(exp(&e, "STR(NAME.h)"), vec!["\"NAME.h\""]);
        assert_eq!(exp(&e, "XSTR(NAME.h)"), vec!["\"b.h\""]);
        assert_eq!(exp(&e, "CAT(NA, ME)"), vec!["b"]);
        assert_eq!(exp(&e, "PATH(NAME)"), vec!["<dir/b.h>"]);
        assert_eq!(exp(&e, "F(2)"), vec!["2+1"]);
        assert_eq!(exp(&e, "STR"), vec!["STR"]);
    }

    #[test]
    fn multi_valued_and_recursion() {
        let mut e = env(&["H \"one.h\"", "SELF SELF + 1"]);
        let (n, m) = parse_define(b"H \"two.h\"").expect("define");
        e.define(&n, Arc::new(m), true);
        let mut got = exp(&e, "H");
        got.sort();
        assert_eq!(got, vec!["\"one.h\"", "\"two.h\""]);
        assert_eq!(exp(&e, "SELF"), vec!["SELF + 1"]);
        e.undef(b"H", true);
        assert_eq!(exp(&e, "H").len(), 3);
        assert_eq!(e.is_defined(b"H"), None);
        e.undef(b"H", false);
        assert_eq!(e.is_defined(b"H"), Some(false));
    }

    #[test]
    fn exponential_macros_are_bounded() {
        let mut defs = vec!["A0 x".to_string()];
        for i in 1..40 {
            defs.push(format!("A{i} A{} A{}", i - 1, i - 1));
        }
        let refs: Vec<&str> = defs.iter().map(String::as_str).collect();
        let e = env(&refs);
        assert_eq!(expand(&lex(b"A39"), &e), Err(Unknown::TooMany));
    }

    #[test]
    fn variadic_and_unbalanced() {
        let e = env(&["V(f, ...) f(__VA_ARGS__)", "P(x) x"]);
        assert_eq!(exp(&e, "V(g, 1, 2)"), vec!["g(1, 2)"]);
        assert_eq!(expand(&lex(b"P(1"), &e), Err(Unknown::Unbalanced));
    }
}
