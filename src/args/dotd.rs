//! Where a pump-mode compile's dependency file goes and what it names as its
//! target (distcc 3.4 `dcc_get_dotd_info`, facts §1.10.4).
//!
//! In protocol 3 the server writes the `.d` file and sends it back, so the
//! client must know whether one is wanted, its path, and whether to add
//! `-MT <target>` so the server's file names the client's output.

use super::classify::{Job, basename, replace_extension};
use std::ffi::{OsStr, OsString};

/// The dependency-file facts of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DotdInfo {
    /// Whether the command asks for a `.d` file.
    pub needed: bool,
    /// Where it goes (when needed).
    pub path: Option<OsString>,
    /// Whether a separate-word `-MT`/`-MQ` already names the target.
    pub target_given: bool,
    /// The target to add when none was given.
    pub target: OsString,
    /// The option that adds it: `-MQ` (quoted for make, as the compiler
    /// quotes its own default target), or `-MT` for a target given by
    /// `DEPENDENCIES_OUTPUT`, which the compiler takes literally.
    pub target_option: &'static str,
    /// The file is asked for by `DEPENDENCIES_OUTPUT` alone: GCC appends
    /// its rule to what the file holds.
    pub append: bool,
}

/// Works out the `.d` facts for `job`; `dependencies_output` is the
/// `DEPENDENCIES_OUTPUT` environment variable (`FILE [TARGET]`).
pub fn dotd_info(job: &Job, dependencies_output: Option<&OsStr>) -> DotdInfo {
    let argv = &job.argv;
    // Clang does not read the variable (sweep S, P12).
    let dependencies_output = dependencies_output.filter(|_| !super::cross::named_clang(&argv[0]));
    let mut needed = dependencies_output.is_some();
    let mut any_m_option = false;
    // Only a target the driver sees stops it adding its own (`-Wp,-MT,x`
    // goes to the preprocessor beside the driver's); with `-Wp,-MD,f`
    // alone, any target does (`Job::default_target`). A `.d` asked only
    // through DEPENDENCIES_OUTPUT takes the driver's rule.
    let default = job.default_target();
    let target_given = if job.driver_deps || job.preprocessor_deps {
        default.is_none()
    } else {
        job.driver_target
    };
    let mut mf: Option<OsString> = None;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_encoded_bytes();
        if a == b"-MT" || a == b"-MQ" {
            i += 2;
            continue;
        }
        if a.starts_with(b"-M") {
            needed = true;
            any_m_option = true;
            if a == b"-MF" {
                mf = argv.get(i + 1).cloned();
                i += 1;
            } else if let Some(rest) = a.strip_prefix(b"-MF") {
                // SAFETY: a suffix after an ASCII prefix of a valid OsStr.
                mf = Some(unsafe { OsStr::from_encoded_bytes_unchecked(rest) }.to_os_string());
            }
        }
        i += 1;
    }
    // Asked for by the variable alone (no `-M` option, none through
    // `-Wp,`): GCC's preprocessor appends to the file, and without a
    // target in the variable names the source's base name with `.o`,
    // whatever `-o` says (sweep U, D11).
    let env_only = dependencies_output.is_some()
        && !any_m_option
        && !job.driver_deps
        && !job.preprocessor_deps;
    // With a `-M` option GCC ignores the variable altogether.
    let (env_file, env_target) =
        split_dependencies_output(dependencies_output.filter(|_| env_only));
    let path = mf
        .or(env_file)
        .unwrap_or_else(|| replace_extension(job.output.as_encoded_bytes(), b"d"));
    DotdInfo {
        needed,
        path: needed.then_some(path),
        target_given,
        target_option: if env_target.is_some() { "-MT" } else { "-MQ" },
        append: env_only,
        target: env_target.unwrap_or_else(|| {
            if default == Some(super::classify::DefaultTarget::SourceObject) || env_only {
                // What GCC's cpp names it: the source's name, suffix `.o`
                // (Clang names the output, as for `-MD`).
                replace_extension(basename(job.input.as_encoded_bytes()), b"o")
            } else {
                job.target_name()
            }
        }),
    }
}

/// The protocol-3 argv for `argv` as far as dependency targets go: when the
/// command names more than one target (`-MT a -MT b`, `-MT a -MQ b`, ...),
/// every separate-word `-MT x` is glued into `-MTx`.
///
/// A server (stock 3.4 as well as ours, facts §1.10.2) takes the first
/// separate-word `-MT` pair out of the command and uses it only to replace
/// its temporary object name in the `.d` file. With one target that gives
/// the local result; with more, the compiler names the other targets, no
/// temporary name appears, and the first target is lost. Glued, every
/// target stays on the compiler's command line, as in a local build.
pub fn keep_every_target(argv: &[OsString]) -> Vec<OsString> {
    if target_options(argv) < 2 {
        return argv.to_vec();
    }
    let mut out = Vec::with_capacity(argv.len());
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_encoded_bytes();
        if i > 0 && a == b"-MQ" {
            out.extend_from_slice(&argv[i..(i + 2).min(argv.len())]);
            i += 2;
            continue;
        }
        if i > 0 && a == b"-MT" {
            match argv.get(i + 1) {
                // An empty target glued would read as a separate `-MT`.
                Some(t) if !t.is_empty() => {
                    let mut glued = OsString::from("-MT");
                    glued.push(t);
                    out.push(glued);
                }
                Some(t) => out.extend([argv[i].clone(), t.clone()]),
                None => out.push(argv[i].clone()),
            }
            i += 2;
            continue;
        }
        out.push(argv[i].clone());
        i += 1;
    }
    out
}

/// How many dependency targets (`-MT`/`-MQ`, separate or glued) `argv`
/// names.
pub fn target_options(argv: &[OsString]) -> usize {
    let mut targets = 0;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_encoded_bytes();
        if a == b"-MT" || a == b"-MQ" {
            targets += 1;
            i += 2;
            continue;
        }
        if a.starts_with(b"-MT") || a.starts_with(b"-MQ") {
            targets += 1;
        }
        i += 1;
    }
    targets
}

fn split_dependencies_output(value: Option<&OsStr>) -> (Option<OsString>, Option<OsString>) {
    let Some(value) = value else {
        return (None, None);
    };
    let bytes = value.as_encoded_bytes();
    let mut words = bytes.splitn(2, |&b| b == b' ');
    // SAFETY: pieces of a valid OsStr split at an ASCII space.
    let conv = |b: &[u8]| unsafe { OsStr::from_encoded_bytes_unchecked(b) }.to_os_string();
    let file = words.next().filter(|w| !w.is_empty()).map(conv);
    let target = words.next().filter(|w| !w.is_empty()).map(conv);
    (file, target)
}

#[cfg(test)]
mod tests {
    use super::super::classify::{Verdict, classify};
    use super::*;

    fn job(s: &str) -> Job {
        let argv: Vec<OsString> = s.split_whitespace().map(OsString::from).collect();
        match classify(&argv).unwrap() {
            Verdict::Distribute(j) => j,
            Verdict::Local(r) => panic!("{}", r.why),
        }
    }

    #[test]
    fn no_dep_options() {
        let d = dotd_info(&job("gcc -c x.c -o x.o"), None);
        assert!(!d.needed);
        assert_eq!(d.path, None);
    }

    #[test]
    fn preprocessor_md_targets_the_source_name() {
        let d = dotd_info(&job("gcc -Wp,-MD,deps/x.d -c src/a.b.c -o obj/out.o"), None);
        assert!(d.needed && !d.target_given);
        assert_eq!(d.path.unwrap(), "deps/x.d");
        assert_eq!(d.target, "a.b.o");
        let d = dotd_info(&job("gcc -Wp,-MMD,x.d -c src/a.c -o out.o"), None);
        assert_eq!(d.target, "a.o");
        let d = dotd_info(&job("gcc -MD -MF x.d -c src/a.c -o out.o"), None);
        assert_eq!(d.target, "out.o");
        // A target for the preprocessor only: the driver still adds its own.
        let d = dotd_info(&job("gcc -MD -Wp,-MT,foo -c src/a.c -o obj/out.o"), None);
        assert!(!d.target_given);
        assert_eq!(d.target, "obj/out.o");
        let d = dotd_info(&job("gcc -MD -MTfoo -c src/a.c -o obj/out.o"), None);
        assert!(d.target_given);
        // Clang names the output for the preprocessor's spelling too.
        let d = dotd_info(&job("clang -Wp,-MMD,x.d -c src/a.c -o obj/out.o"), None);
        assert_eq!(d.target, "obj/out.o");
    }

    #[test]
    fn md_derives_from_output() {
        let d = dotd_info(&job("gcc -MD -c x.c -o obj/x.o"), None);
        assert!(d.needed);
        assert_eq!(d.path.unwrap(), "obj/x.d");
        assert!(!d.target_given);
        assert_eq!(d.target, "obj/x.o");
        assert_eq!(d.target_option, "-MQ");
    }

    #[test]
    fn mf_and_mt() {
        let d = dotd_info(&job("gcc -MMD -MF deps/x.dep -MT tgt -c x.c"), None);
        assert_eq!(d.path.unwrap(), "deps/x.dep");
        assert!(d.target_given);
        let d = dotd_info(&job("gcc -MD -MFglued.d -c x.c"), None);
        assert_eq!(d.path.unwrap(), "glued.d");
        // DEPENDENCIES_OUTPUT and no option asking for a .d: GCC's
        // preprocessor names the source's base name, whatever -o says, and
        // appends to the file (sweep U, D11).
        let d = dotd_info(&job("gcc -c sub/x.c -o o/y.o"), Some(OsStr::new("x.d")));
        assert!(d.needed && !d.target_given && d.append);
        assert_eq!(d.target, "x.o");
        // With a -M option the variable is ignored.
        let d = dotd_info(
            &job("gcc -c sub/x.c -o o/y.o -MD"),
            Some(OsStr::new("e.d t")),
        );
        assert!(!d.append);
        assert_eq!(
            (d.path.unwrap(), d.target),
            ("o/y.d".into(), "o/y.o".into())
        );
        // Clang does not read it.
        assert!(!dotd_info(&job("clang -c x.c"), Some(OsStr::new("x.d"))).needed);
    }

    #[test]
    fn targets_inside_wp_and_both_kinds_of_md() {
        // The preprocessor's own -MD with its own target: that target alone.
        let d = dotd_info(&job("gcc -c b.c -o out/x.o -Wp,-MD,wp.d,-MT,foo"), None);
        assert!(d.needed && d.target_given, "{d:?}");
        let d = dotd_info(&job("clang -c b.c -o out/x.o -Wp,-MMD,wp.d,-MQ,foo"), None);
        assert!(d.target_given, "{d:?}");
        // The driver's -MD beside the preprocessor's: the driver's rule.
        let d = dotd_info(&job("gcc -c b.c -o out/x.o -MD -Wp,-MD,wp.d"), None);
        assert!(!d.target_given);
        assert_eq!(
            (d.path.unwrap(), d.target),
            ("wp.d".into(), "out/x.o".into())
        );
    }

    fn words(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn one_target_stays_separate() {
        for cmd in [
            "gcc -MD -MT t -c x.c",
            "gcc -MD -MQ t -c x.c",
            "gcc -MD -MTt -c x.c",
            "gcc -MD -c x.c",
        ] {
            assert_eq!(keep_every_target(&words(cmd)), words(cmd), "{cmd}");
        }
    }

    #[test]
    fn several_targets_are_all_kept() {
        assert_eq!(
            keep_every_target(&words("gcc -MD -MT a -MT b -c x.c")),
            words("gcc -MD -MTa -MTb -c x.c")
        );
        assert_eq!(
            keep_every_target(&words("gcc -MD -MT a -MQ b -c x.c")),
            words("gcc -MD -MTa -MQ b -c x.c")
        );
        assert_eq!(
            keep_every_target(&words("gcc -MD -MQa -MT b -c x.c")),
            words("gcc -MD -MQa -MTb -c x.c")
        );
        // The value of -MQ is not an option, even when it looks like one.
        assert_eq!(
            keep_every_target(&words("gcc -MD -MQ -MT -MT b -c x.c")),
            words("gcc -MD -MQ -MT -MTb -c x.c")
        );
    }

    #[test]
    fn dependencies_output_env() {
        let d = dotd_info(&job("gcc -c x.c"), Some(OsStr::new("out.d mytarget")));
        assert!(d.needed);
        assert_eq!(d.path.unwrap(), "out.d");
        assert_eq!(d.target, "mytarget");
        assert_eq!(d.target_option, "-MT");
    }
}
