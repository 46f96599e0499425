//! The include closure of one translation unit: every non-system file the
//! preprocessor may read.
//!
//! [`compute`] walks the source like a preprocessor that only looks at
//! directives: it keeps a macro environment (compiler predefines, `-D`/`-U`
//! in order, `-imacros`, `-include`, every `#define`/`#undef` walked),
//! evaluates `#if` where it can ([`super::condexpr`]) and walks both
//! branches where it cannot, resolves includes ([`super::resolve`]) and
//! descends into what they open. System headers (under the compiler's
//! default directories) are not sent; they are scanned only for includes
//! that lead back into non-system directories, and for the macro names they
//! may write ([`super::unseen`]): every other name the walk has not defined
//! is known to be undefined. The result feeds [`super::mirror`].

mod absolute;
mod lookup;
pub mod sysscan;

use super::cache::{Cache, DirListing, FastMap, FastSet, FileId, key};
use super::command::{Command, MacroOp};
use super::compiler;
use super::condexpr;
use super::fsview::{EntryKind, FsLookup};
use super::lex::{TokKind, lex, spell};
use super::macros::{Env, Lookup, expand, holds_unknown, parse_define};
use super::resolve::{Found, SearchPath, join};
use super::scanner::{Cond, IncludeKind, Node};
use super::unseen::Unseen;
use absolute::next_below_rewrite;
use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a translation unit cannot be covered (the client then preprocesses
/// locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCovered(pub String);

/// A file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Its canonical path on the client.
    pub real: PathBuf,
    /// For a file opened through an absolute path: that path, for the
    /// `#line 1 "..."` prefix of the `.lzo.abs` copy (facts §2.2).
    pub line_name: Option<PathBuf>,
    /// The `#line` must reach the compiler: the file is the target of a
    /// rewritten absolute `#include`, opened on the server through a
    /// relative path that no prefix map turns back into `line_name`.
    pub line_kept: bool,
    /// Absolute include names in this file's directives to replace (in
    /// directive lines only) by paths relative to its directory, so that
    /// the server opens its copy under the root: `(from, to)`, quotes kept.
    pub rewrites: Vec<(Vec<u8>, Vec<u8>)>,
    /// Its identity when the request looked at it, if known.
    pub id: Option<FileId>,
}

/// The closure of one translation unit.
#[derive(Debug, Default)]
pub struct Closure {
    /// Non-system files, in discovery order.
    pub files: Vec<Sent>,
    /// Absolute paths the compiler opens (spelled, not canonical), for
    /// mirroring symlinks and `..` directories.
    pub opened: Vec<PathBuf>,
    /// The compiler's default directories (canonical).
    pub system_dirs: Vec<PathBuf>,
    /// The command line's search directories that exist here as
    /// directories, outside the compiler's own: absolute as spelled, and
    /// canonical. They must exist on the server too, even when no header
    /// is used from them, or `-Wmissing-include-dirs` warns there (and
    /// `-Werror` fails) where a local compile is silent.
    pub search_dirs: Vec<(PathBuf, PathBuf)>,
    /// Absolute names (as spelled here) of files the server opens through
    /// a name that climbs to its root: the targets of rewritten absolute
    /// `#include`s and the files found beside them. The `.d` file names
    /// them that way, and our client writes these names back.
    pub climbing: Vec<PathBuf>,
    /// Directives walked (for the debug log).
    pub steps: usize,
    /// A file walked names `__DATE__` or `__TIME__`: our client preprocesses
    /// here when SOURCE_DATE_EPOCH is set in the compile's environment
    /// (this server's own may lack it).
    pub date_or_time: bool,
    /// The unit has an `#import`: GCC compares every file it then reads
    /// with the files read before, not only with `#pragma once` ones
    /// ([`super::twins`]).
    pub imports: bool,
}

/// Bound on directives walked per translation unit.
const MAX_STEPS: usize = 5_000_000;
/// GCC's own limit on include depth, unless `-fmax-include-depth` says.
const MAX_DEPTH: usize = 200;

/// Computes the closure of `argv` run in `cwd`.
pub fn compute(cache: &Cache, cmd: &Command, cwd: &Path) -> Result<Closure, NotCovered> {
    compute_until(cache, cmd, cwd, &AtomicBool::new(false))
}

/// [`compute`], giving up as soon as it sees `cancelled` set (the client
/// that asked has gone).
pub fn compute_until(
    cache: &Cache,
    cmd: &Command,
    cwd: &Path,
    cancelled: &AtomicBool,
) -> Result<Closure, NotCovered> {
    let info = compiler::info(cache, cmd, cwd)
        .map_err(|e| NotCovered(format!("cannot probe the compiler: {e}")))?;
    let mut fs = FsLookup::new(&cache.fs);
    // From the cached view (the search path below asks the same paths);
    // only a path it cannot resolve (missing, a symlink loop, `F/`) is
    // asked of the system.
    let mut is_dir = |p: &Path| match fs.canonical(p) {
        Some(real) => Ok(fs.lstat(&real).is_some_and(|m| m.kind == EntryKind::Dir)),
        None => std::fs::metadata(p).map(|m| m.is_dir()),
    };
    if !info.clang()
        && let Some(d) = super::resolve::gcc_bad_directory(cmd, cwd, &mut is_dir)
    {
        return Err(NotCovered(format!(
            "search directory {} is not a directory: GCC warns (or fails), \
             the server's compiler would not",
            d.display()
        )));
    }
    let search = SearchPath::with_canonical(cmd, &info, cwd, &mut |p| fs.canonical(p));
    let mut env = Env::with_base(info.base_env.clone(), Unseen::new(&cache.writers));
    for op in &cmd.macro_ops {
        match op {
            MacroOp::Define(text) => {
                let (n, m) = parse_define(text)
                    .ok_or_else(|| NotCovered(format!("bad -D {}", show(text))))?;
                env.define(&n, std::sync::Arc::new(m), false);
            }
            MacroOp::Undef(n) => env.undef(n, false),
        }
    }
    let mut w = Walker {
        cache,
        cwd,
        search: &search,
        system_bytes: info.angle_dirs.iter().map(|d| key(d).to_vec()).collect(),
        cplusplus: cmd.lang.is_some_and(|l| l.is_cplusplus()),
        clang: info.clang(),
        env,
        out: Closure {
            system_dirs: info.angle_dirs.clone(),
            ..Closure::default()
        },
        index: sized(160),
        opened: FastSet::default(),
        once: FastSet::default(),
        real: sized(384),
        is_file: sized(160),
        ids: sized(160),
        resolved: sized(256),
        resolved_rec: FastMap::default(),
        rewritten: FastSet::default(),
        climbing: FastSet::default(),
        entered_other: FastMap::default(),
        entered_first: sized(160),
        next_below_rewrite: false,
        system_renamed: Vec::new(),
        key_buf: Vec::new(),
        listings: sized(128),
        recording: None,
        config_key: sysscan::config_key(cwd, &search),
        fs,
        steps: 0,
        depth: 0,
        frames: 0,
        uncertain_marks: Vec::new(),
        max_depth: cmd.max_include_depth.unwrap_or(MAX_DEPTH),
        trigraphs: cmd.trigraphs,
        cancelled,
    };
    // -imacros, then -include, then the source (GCC's order). Forced files
    // are looked up in the working directory, then the quote chain.
    for forced in cmd.imacros.iter().chain(&cmd.includes) {
        let found = w
            .find(forced, true, Some(Path::new("")), None)
            .first()
            .cloned()
            .ok_or_else(|| NotCovered(format!("forced include {} not found", forced.display())))?;
        w.visit(&found, 0, false, false)?;
    }
    if !w.file(&cmd.source) {
        return Err(NotCovered(format!(
            "source {} not found",
            cmd.source.display()
        )));
    }
    let src = Found {
        spelled: cmd.source.clone(),
        dir_index: None,
        plain_next: true,
    };
    w.visit(&src, 0, false, false)?;
    let dirs = (cmd.quote_dirs.iter())
        .chain(&cmd.include_dirs)
        .chain(&cmd.system_dirs)
        .chain(&cmd.after_dirs);
    for dir in dirs {
        let abs = join(cwd, dir);
        if w.in_system(&abs) {
            continue;
        }
        if let Some(real) = w.realpath(&abs)
            && !w.is_system(&real)
            && w.fs.lstat(&real).is_some_and(|m| m.kind == EntryKind::Dir)
            && !w.out.search_dirs.iter().any(|(a, _)| *a == abs)
        {
            w.out.search_dirs.push((abs, real.to_path_buf()));
        }
    }
    w.one_name_per_kept_line()?;
    w.no_twin_with_a_kept_line()?;
    w.out.steps = w.steps;
    Ok(w.out)
}

/// The directory a file's quoted includes are looked up in, spelled as the
/// compiler spells it: the file's path up to its last `/`. Where that
/// differs from `Path::parent` (which drops empty and `.` components:
/// `/p//a.c`, `/p/./a.c`) the spelling is kept with its slash, so a header
/// found there is named `/p//h.h` as GCC names it, in `__FILE__` and in
/// the `#line` of its copy (sweep U, D14).
fn includer_dir(spelled: &Path) -> &Path {
    let parent = spelled.parent().unwrap_or(Path::new(""));
    let bytes = key(spelled);
    match bytes.iter().rposition(|&c| c == b'/') {
        Some(i) if key(parent) != &bytes[..i] && i > 0 => {
            Path::new(OsStr::from_bytes(&bytes[..=i]))
        }
        _ => parent,
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A resolution made while recording, with what it depended on.
type RecordedFind = (Arc<[Found]>, Arc<[sysscan::Dep]>);

struct Walker<'a> {
    cache: &'a Cache,
    cwd: &'a Path,
    search: &'a SearchPath,
    system_bytes: Vec<Vec<u8>>,
    cplusplus: bool,
    /// The compiler is Clang, which may name a file by an earlier lookup of
    /// it under another name, even one that did not enter it.
    clang: bool,
    env: Env<'a>,
    out: Closure,
    /// Files sent: canonical path → index in `out.files`.
    index: FastMap<Vec<u8>, usize>,
    opened: FastSet<Vec<u8>>,
    once: FastSet<Vec<u8>>,
    /// Canonical paths (shared: most callers only look at them).
    real: FastMap<Vec<u8>, Option<Rc<Path>>>,
    is_file: FastMap<Vec<u8>, bool>,
    ids: FastMap<Vec<u8>, FileId>,
    resolved: FastMap<Vec<u8>, Arc<[Found]>>,
    /// The same while recording, with the dependencies of each resolution.
    resolved_rec: FastMap<Vec<u8>, RecordedFind>,
    /// Absolute include names rewritten to relative ones (their targets
    /// keep their `#line`).
    rewritten: FastSet<Vec<u8>>,
    /// Spelled names of files found beside such a target (in its directory,
    /// or relative to it, by a quoted include): the server opens them
    /// through climbing names too, so they keep their `#line` as well.
    climbing: FastSet<Vec<u8>>,
    /// Sent files walked under a spelling other than the first one they
    /// were walked under: index in `out.files` → those spellings (the
    /// first one is `entered_first`).
    entered_other: FastMap<usize, Vec<PathBuf>>,
    entered_first: FastMap<usize, PathBuf>,
    /// Sent files walked as system headers under a name that is not their
    /// real path (GCC then names them by the real path when it is shorter).
    system_renamed: Vec<usize>,
    /// A `__has_include_next` was met in a file opened through a climbing
    /// name ([`next_below_rewrite`]).
    next_below_rewrite: bool,
    /// Reused for memo keys.
    key_buf: Vec<u8>,
    listings: FastMap<Vec<u8>, Option<DirListing>>,
    /// While computing a memoised system-header scan: what it depended on.
    recording: Option<sysscan::Recording>,
    /// Identity of this request's search configuration, for memo keys.
    config_key: Vec<u8>,
    /// Answers about user files, cached across requests.
    fs: FsLookup<'a>,
    steps: usize,
    depth: usize,
    /// Walks in progress (each `#if` branch and each include nests one).
    frames: usize,
    /// `#pragma once` marks and settled guards made inside branches whose
    /// condition is unknown: taken back when the branch ends, so a later
    /// inclusion (certain, or in another branch) is walked again.
    uncertain_marks: Vec<UncertainMark>,
    max_depth: usize,
    /// The compiler replaces trigraphs (`Command::trigraphs`).
    trigraphs: bool,
    /// Set when the client that asked has gone.
    cancelled: &'a AtomicBool,
}

/// Most nested walks (branches and includes) of one request.
const MAX_FRAMES: usize = 8000;

/// A mark made inside a branch whose condition is unknown.
enum UncertainMark {
    /// A `#pragma once` (or `#import`) file, by its real path.
    Once(Vec<u8>),
    /// A guard macro taken as certainly defined after its header.
    Settled(Vec<u8>),
}

/// Where the directives being walked come from.
struct Ctx<'p> {
    file: &'p Path,
    /// Index in `out.files` of the file, when it is sent.
    sent_index: Option<usize>,
    dir: &'p Path,
    dir_index: Option<usize>,
    /// `#include_next` here searches as `#include` ([`Found::plain_next`]).
    plain_next: bool,
    /// The file may rename itself with `#line` ([`Parsed::renames`]).
    renames: bool,
    /// GCC takes the file for a system header (found in a system
    /// directory, or included from a system header).
    system: bool,
}

impl Walker<'_> {
    /// Walks the file `found`, included from a system header when
    /// `from_system`.
    fn visit(
        &mut self,
        found: &Found,
        uncertain: usize,
        import: bool,
        from_system: bool,
    ) -> Result<(), NotCovered> {
        let Some(real) = self.resolve_found(found) else {
            return Ok(());
        };
        if self.is_system(&real) {
            return self.scan_system(real.to_path_buf(), found);
        }
        let id = self.ids.get(key(&real)).copied();
        self.send_found(found, &real);
        if self.once.contains(key(&real)) {
            return Ok(());
        }
        let parsed = self
            .cache
            .parsed_as(&real, id)
            .map_err(|e| NotCovered(format!("cannot read {}: {e}", real.display())))?;
        if (import || parsed.nodes.iter().any(|n| matches!(n, Node::Once)))
            && !self.once.contains(key(&real))
        {
            self.once.insert(key(&real).to_vec());
            if uncertain > 0 {
                self.uncertain_marks
                    .push(UncertainMark::Once(key(&real).to_vec()));
            }
        }
        // A guarded header is skipped when its guard is defined, and when
        // it may be and the header was walked already (its definitions are
        // among the possibilities, and its includes are found).
        if let Some(g) = &parsed.guard
            && match self.env.is_defined(g) {
                Some(defined) => defined,
                None => self.env.settled(g),
            }
        {
            return Ok(());
        }
        if parsed.clock.timestamp {
            return Err(NotCovered(format!(
                "{} uses __TIMESTAMP__ (the file's time here; a server's copy has its own)",
                found.spelled.display()
            )));
        }
        if parsed.clock.date_or_time {
            if source_date_epoch_set() {
                return Err(NotCovered(format!(
                    "{} uses __DATE__ or __TIME__, and SOURCE_DATE_EPOCH is set (a server would use its own clock)",
                    found.spelled.display()
                )));
            }
            self.out.date_or_time = true;
        }
        if self.trigraphs && parsed.trigraph {
            return Err(NotCovered(format!(
                "{} has a trigraph, and the options turn trigraphs on",
                found.spelled.display()
            )));
        }
        if self.depth >= self.max_depth {
            // The compiler stops here too (or the walk is not certain to
            // be taken): preprocessed locally, where it says so itself.
            return Err(NotCovered(format!(
                "includes nested deeper than {} at {}",
                self.max_depth,
                found.spelled.display()
            )));
        }
        let dir = includer_dir(&found.spelled);
        let sent_index = self.index.get(key(&real)).copied();
        let system = from_system
            || found
                .dir_index
                .is_some_and(|i| i >= self.search.system_start);
        if let Some(at) = sent_index {
            self.entered_as(at, &found.spelled);
            if system && key(&found.spelled) != key(&real) {
                self.system_renamed.push(at);
            }
        }
        let ctx = Ctx {
            file: &found.spelled,
            sent_index,
            dir,
            dir_index: found.dir_index,
            plain_next: found.plain_next,
            renames: parsed.renames,
            system,
        };
        self.depth += 1;
        let result = match (&parsed.guard, parsed.nodes.first()) {
            // An include guard whose state is unknown: walk the body as if the
            // guard were undefined, then it is certainly defined.
            (Some(g), Some(Node::Cond(branches))) => {
                let r = self.walk(&branches[0].1, &ctx, uncertain);
                if uncertain > 0 && !self.env.settled(g) {
                    self.uncertain_marks.push(UncertainMark::Settled(g.clone()));
                }
                self.env.settle(g);
                r
            }
            _ => self.walk(&parsed.nodes, &ctx, uncertain),
        };
        self.depth -= 1;
        result
    }

    fn walk(&mut self, nodes: &[Node], ctx: &Ctx, uncertain: usize) -> Result<(), NotCovered> {
        // Each nested walk takes stack: bounded well below a worker's.
        if self.frames >= MAX_FRAMES {
            return Err(NotCovered(format!(
                "conditionals and includes nested more than {MAX_FRAMES} deep (in {})",
                ctx.file.display()
            )));
        }
        self.frames += 1;
        let walked = self.walk_nodes(nodes, ctx, uncertain);
        self.frames -= 1;
        walked
    }

    /// Walks a branch whose condition is unknown, in a scope of its own:
    /// what it defines becomes a possibility after it, and the headers it
    /// marks as read (`#pragma once`, a guard) are read again after it.
    fn walk_uncertain(
        &mut self,
        body: &[Node],
        ctx: &Ctx,
        uncertain: usize,
    ) -> Result<(), NotCovered> {
        self.uncertainly(uncertain, |w, uncertain| w.walk(body, ctx, uncertain))
    }

    /// Runs `f` (with the nesting of unknown branches one deeper) in a
    /// scope of its own: what it defines becomes a possibility after it,
    /// and the headers it marks as read are read again after it.
    fn uncertainly(
        &mut self,
        uncertain: usize,
        f: impl FnOnce(&mut Self, usize) -> Result<(), NotCovered>,
    ) -> Result<(), NotCovered> {
        let marks = self.uncertain_marks.len();
        self.env.open_scope();
        let walked = f(self, uncertain + 1);
        self.env.close_scope();
        for mark in self.uncertain_marks.drain(marks..) {
            match mark {
                UncertainMark::Once(k) => {
                    self.once.remove(&k);
                }
                UncertainMark::Settled(g) => self.env.unsettle(&g),
            }
        }
        walked
    }

    fn walk_nodes(
        &mut self,
        nodes: &[Node],
        ctx: &Ctx,
        uncertain: usize,
    ) -> Result<(), NotCovered> {
        for node in nodes {
            self.steps += 1;
            if self.steps.is_multiple_of(4096) && self.cancelled.load(Ordering::Relaxed) {
                return Err(NotCovered("the client has gone".into()));
            }
            if self.steps > MAX_STEPS {
                return Err(NotCovered(format!(
                    "more than {MAX_STEPS} directives (in {})",
                    ctx.file.display()
                )));
            }
            match node {
                Node::Include { kind, import, body } => {
                    self.include(body, *kind, *import, ctx, uncertain)?
                }
                // Certain on this path; a branch whose condition is unknown
                // merges what it changed when it ends (Env::close_scope).
                Node::Define(n, m) => self.env.define_shared(n, m.clone(), false),
                Node::Undef(n) => self.env.undef(n, false),
                Node::Once => {}
                Node::Dependency(body) => self.dependency(body, ctx)?,
                Node::PopMacro { name, sticky } => self.env.forget(name, *sticky),
                Node::Cond(branches) => {
                    let mut unknown_before = false;
                    for (cond, body) in branches {
                        let value = self.condition(cond, ctx);
                        if self.next_below_rewrite {
                            return Err(next_below_rewrite(ctx.file));
                        }
                        match value {
                            Some(false) => continue,
                            Some(true) if !unknown_before => {
                                self.walk(body, ctx, uncertain)?;
                                break;
                            }
                            Some(true) => {
                                self.walk_uncertain(body, ctx, uncertain)?;
                                break;
                            }
                            None => {
                                unknown_before = true;
                                self.walk_uncertain(body, ctx, uncertain)?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn condition(&mut self, cond: &Cond, ctx: &Ctx) -> Option<bool> {
        match cond {
            Cond::Else => Some(true),
            Cond::Defined(n) => self.env.is_defined(n),
            Cond::NotDefined(n) => self.env.is_defined(n).map(|b| !b),
            Cond::Expr(toks) => {
                let cplusplus = self.cplusplus;
                let env = std::mem::take(&mut self.env);
                let mut probed = Vec::new();
                let climbs = self.climbs(ctx.file);
                let mut below_rewrite = false;
                let mut has = |spelling: &[u8], next: bool| {
                    if next && climbs {
                        below_rewrite = true;
                        return None;
                    }
                    let (name, quote) = header_name(spelling)?;
                    let next = (next && !ctx.plain_next).then_some(ctx.dir_index);
                    let found = self.find(&name, quote, Some(ctx.dir), next);
                    probed.extend(found.iter().cloned());
                    Some(!found.is_empty())
                };
                let v = condexpr::eval(toks, &env, cplusplus, &mut has);
                self.env = env;
                self.next_below_rewrite |= below_rewrite;
                // The server must find what `__has_include` finds here.
                for found in &probed {
                    self.probed(found);
                }
                v
            }
        }
    }

    /// Whether `body` is a single identifier certainly not defined.
    fn undefined_name(&self, body: &[u8]) -> bool {
        match lex(body).as_slice() {
            [t] if t.kind == TokKind::Ident => match self.env.lookup(&t.text) {
                Lookup::Undefined => true,
                Lookup::Known(st) => st.defs.is_empty(),
                Lookup::Unknown => false,
            },
            _ => false,
        }
    }

    /// The header names an include directive body may denote.
    fn names(&self, body: &[u8], ctx: &Ctx) -> Result<Vec<(PathBuf, bool)>, NotCovered> {
        if let Some(n) = header_name(body) {
            return Ok(vec![n]);
        }
        let mut toks = lex(body);
        if ctx.renames && toks.iter().any(|t| t.is_ident(b"__FILE__")) {
            // Which name `#line` gave the file at this point is not followed.
            return Err(NotCovered(format!(
                "computed include `{}` names __FILE__ in {}, which renames itself with #line",
                show(body),
                ctx.file.display()
            )));
        }
        // `#include __FILE__` (self-inclusion tricks): the current file.
        for t in toks.iter_mut().filter(|t| t.is_ident(b"__FILE__")) {
            let mut text = vec![b'"'];
            text.extend_from_slice(ctx.file.as_os_str().as_bytes());
            text.push(b'"');
            *t = super::lex::Tok {
                kind: TokKind::Str,
                text,
                space: t.space,
            };
        }
        let alts = expand(&toks, &self.env).map_err(|e| {
            NotCovered(format!(
                "computed include `{}` in {}: {e:?}",
                show(body),
                ctx.file.display()
            ))
        })?;
        if alts.iter().flatten().any(|t| holds_unknown(&t.text)) {
            return Err(NotCovered(format!(
                "computed include `{}` in {} depends on a macro a system header may define, or on a built-in such as __COUNTER__",
                show(body),
                ctx.file.display()
            )));
        }
        let names: Vec<_> = alts
            .iter()
            .filter_map(|alt| match alt.as_slice() {
                [t] if t.kind == TokKind::Str => header_name(&t.text),
                _ => header_name(&spell(alt)),
            })
            .collect();
        if names.is_empty() {
            return Err(NotCovered(format!(
                "computed include `{}` in {} has no known value",
                show(body),
                ctx.file.display()
            )));
        }
        Ok(names)
    }

    fn include(
        &mut self,
        body: &[u8],
        kind: IncludeKind,
        import: bool,
        ctx: &Ctx,
        uncertain: usize,
    ) -> Result<(), NotCovered> {
        self.out.imports |= import;
        // A literal name (nearly always) is borrowed from the directive.
        let literal;
        let computed: Vec<(Cow<'_, Path>, bool)>;
        let names: &[(Cow<'_, Path>, bool)] = match header_name_ref(body) {
            Some((name, quote)) => {
                literal = [(Cow::Borrowed(name), quote)];
                &literal
            }
            None => {
                computed = match self.names(body, ctx) {
                    Ok(n) => n.into_iter().map(|(p, q)| (Cow::Owned(p), q)).collect(),
                    // `#ifdef X` / `#include X` in a branch we could not
                    // decide, with X certainly undefined there (no system
                    // header included so far writes it): the compiler would
                    // fail if the branch were live.
                    Err(_) if uncertain > 0 && self.undefined_name(body) => return Ok(()),
                    Err(e) => return Err(e),
                };
                &computed
            }
        };
        let alternatives = names.len() > 1;
        for (name, quote) in names {
            let (name, quote) = (name.as_ref(), *quote);
            if name.is_absolute()
                && self.file(name)
                && !self.realpath(name).is_some_and(|r| self.is_system(&r))
            {
                if ctx.system {
                    // GCC shortens the names of what a system header
                    // includes to their real paths; it would not shorten
                    // the relative name the server opens this one by
                    // (sweep AA, D2: `.d` and `__FILE__` differed).
                    return Err(NotCovered(format!(
                        "absolute include {} in {}, which the compiler takes for a system header",
                        name.display(),
                        ctx.file.display()
                    )));
                }
                self.rewrite_absolute(body, name, quote, ctx)?;
            }
            let includer_climbs = self.climbs(ctx.file);
            if kind == IncludeKind::Next && includer_climbs {
                return Err(next_below_rewrite(ctx.file));
            }
            let next = (kind == IncludeKind::Next && !ctx.plain_next).then_some(ctx.dir_index);
            for (hit, found) in self
                .find(name, quote, Some(ctx.dir), next)
                .iter()
                .enumerate()
            {
                // Found in the includer's own directory: opened on the
                // server through the includer's climbing name.
                if includer_climbs
                    && found.dir_index.is_none()
                    && found.spelled.is_absolute()
                    && !name.is_absolute()
                {
                    self.mark_climbing(&found.spelled);
                }
                if hit == 0 && !alternatives {
                    self.visit(found, uncertain, import, ctx.system)?;
                } else {
                    // The compiler opens only the first hit of an
                    // `#include_next`, and only one of several possible
                    // names: the later hits, and each possible name, are
                    // walked as if in a branch whose condition is unknown. A `#pragma once` they hold
                    // does not make a later include of the file (under
                    // another name) a skip, or that include was neither
                    // walked nor checked for its name (a literal absolute
                    // include of a header an earlier `#include_next` could
                    // have reached under a relative name: the copy, sent
                    // without a kept `#line`, gave `__FILE__` the server's
                    // climbing name).
                    self.uncertainly(uncertain, |w, uncertain| {
                        w.visit(found, uncertain, import, ctx.system)
                    })?;
                }
            }
        }
        Ok(())
    }

    /// `#pragma GCC dependency "NAME"`: GCC warns when NAME is newer than
    /// the file, and protocol 3 carries no times (the server's copies are
    /// as old as its own writes made them): a unit that names a file found
    /// here is not covered (sweep O, D4: the warning was lost, and with
    /// `-Werror` the remote compile succeeded where the local one fails).
    /// A name found nowhere fails the same on a server.
    fn dependency(&mut self, body: &[u8], ctx: &Ctx) -> Result<(), NotCovered> {
        let Some((name, quote)) = header_name_ref(body) else {
            // Not a file name: the compiler reports that itself.
            return Ok(());
        };
        if name.is_absolute() && !self.realpath(name).is_some_and(|r| self.is_system(&r)) {
            // Looked up on the server as it is, outside the job's tree.
            return Err(NotCovered(format!(
                "#pragma GCC dependency on absolute {} in {}",
                name.display(),
                ctx.file.display()
            )));
        }
        for found in self.find(name, quote, Some(ctx.dir), None).iter() {
            if self.resolve_found(found).is_some() {
                return Err(NotCovered(format!(
                    "{} has #pragma GCC dependency on {}, which compares file times a server's copies do not keep",
                    ctx.file.display(),
                    name.display()
                )));
            }
        }
        Ok(())
    }

    /// Adds canonical `real` (not sent yet) to the files to send.
    fn send(&mut self, real: &Path, line_name: Option<PathBuf>, line_kept: bool) {
        self.index.insert(key(real).to_vec(), self.out.files.len());
        self.out.files.push(Sent {
            real: real.to_path_buf(),
            id: self.ids.get(key(real)).copied(),
            line_name,
            line_kept,
            rewrites: Vec::new(),
        });
    }
}

/// A per-request map sized for a typical unit (libgit2's: 80 files sent,
/// 220 real paths), so that it is not grown and rehashed step by step.
fn sized<K, V>(capacity: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(capacity, Default::default())
}

/// Whether SOURCE_DATE_EPOCH is set for this build: the include server runs
/// in the build's environment (`pump make`, `eval $(pump --startup)`), so
/// its own environment tells (a reproducible build, such as a Debian
/// package's, sets it for everything).
fn source_date_epoch_set() -> bool {
    static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SET.get_or_init(|| std::env::var_os("SOURCE_DATE_EPOCH").is_some_and(|v| !v.is_empty()))
}

/// Every include directive in `nodes`, in all branches.
fn collect_includes<'n>(nodes: &'n [Node], out: &mut Vec<(IncludeKind, &'n [u8])>) {
    for n in nodes {
        match n {
            Node::Include { kind, body, .. } => out.push((*kind, body)),
            Node::Cond(b) => b.iter().for_each(|(_, body)| collect_includes(body, out)),
            _ => {}
        }
    }
}

/// `"name"` or `<name>` (possibly followed by junk) → (name, quote form).
fn header_name(s: &[u8]) -> Option<(PathBuf, bool)> {
    header_name_ref(s).map(|(n, q)| (n.to_path_buf(), q))
}

/// [`header_name`] without a copy.
fn header_name_ref(s: &[u8]) -> Option<(&Path, bool)> {
    let (close, quote) = match s.first()? {
        b'"' => (b'"', true),
        b'<' => (b'>', false),
        _ => return None,
    };
    let end = s[1..].iter().position(|&c| c == close)? + 1;
    let name = &s[1..end];
    if name.is_empty() {
        return None;
    }
    Some((Path::new(OsStr::from_bytes(name)), quote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includer_directories_keep_their_spelling() {
        for (file, dir) in [
            ("/p/a.c", "/p"),
            ("a.c", ""),
            ("sub/a.c", "sub"),
            ("/a.c", "/"),
            ("/p//a.c", "/p//"),
            ("/p/./a.c", "/p/./"),
            ("/p/sub/../a.c", "/p/sub/.."),
        ] {
            assert_eq!(includer_dir(Path::new(file)), Path::new(dir), "{file}");
            assert_eq!(key(includer_dir(Path::new(file))), dir.as_bytes(), "{file}");
        }
        assert_eq!(
            join(includer_dir(Path::new("/p//a.c")), Path::new("h.h")),
            Path::new("/p//h.h")
        );
    }
}
