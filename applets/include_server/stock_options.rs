//! The include server's command line read as stock's include_server.py
//! reads it (Python's `getopt` with short options `d:estvwx` and its long
//! options, facts §2.5), so that an `INCLUDE_SERVER_ARGS` written for stock
//! starts ours too (sweep W, D2): short options cluster (`-sv`, `-sd5`), a
//! long option may be shortened to a unique prefix (`--unsafe`), its value
//! follows `=` or comes as the next word, and the options end at `--` or at
//! the first word that is not one (the rest is ignored, as stock ignores
//! it). Our own dashed spellings (`--pid-file`, `--no-force-dirs`, ...) are
//! taken as well.
//!
//! The result is the words argh knows (`--port P`, `--pid-file F`,
//! `--debug-pattern N`, `--stat-reset-triggers G`, the two switches), each
//! once, the last given winning as with getopt (pump passes `-d1` before
//! the user's words).

/// Stock's short options: the letter, and whether it takes a value.
const SHORT: &[(char, bool)] = &[
    ('d', true),
    ('e', false),
    ('s', false),
    ('t', false),
    ('v', false),
    ('w', false),
    ('x', false),
];

/// Stock's long options, and whether each takes a value.
const LONG: &[(&str, bool)] = &[
    ("port", true),
    ("pid_file", true),
    ("debug_pattern", true),
    ("email", false),
    ("no-email", false),
    ("email_bound", true),
    ("exact_analysis", false),
    ("path_observation_re", true),
    ("stat_reset_triggers", true),
    ("simple_algorithm", false),
    ("statistics", false),
    ("time", false),
    ("unsafe_absolute_includes", false),
    ("no_force_dirs", false),
    ("verify", false),
    ("write_include_closure", false),
];

/// The long option `given` names: exact (dashes read as underscores, but
/// stock's own `no-email`), else the one option it is a prefix of.
fn long_option(given: &str) -> Result<(&'static str, bool), String> {
    let underscored = given.replace('-', "_");
    for name in [given, underscored.as_str()] {
        if let Some(&found) = LONG.iter().find(|(n, _)| *n == name) {
            return Ok(found);
        }
    }
    let matches: Vec<&(&str, bool)> = LONG
        .iter()
        .filter(|(n, _)| n.starts_with(given) || n.starts_with(underscored.as_str()))
        .collect();
    match matches.as_slice() {
        [one] => Ok(**one),
        [] => Err(format!("option --{given} not recognized")),
        _ => Err(format!("option --{given} not a unique prefix")),
    }
}

/// Reads `args`; `Ok(None)` when help was asked for (argh prints it).
pub fn read(args: &[String]) -> Result<Option<Vec<String>>, String> {
    let mut seen: Vec<(&'static str, Option<String>)> = Vec::new();
    let mut it = args.iter();
    while let Some(word) = it.next() {
        if word == "--" || !word.starts_with('-') || word == "-" {
            break;
        }
        if word == "--help" || word == "-h" {
            return Ok(None);
        }
        if let Some(long) = word.strip_prefix("--") {
            let (given, glued) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let (name, takes) = long_option(given)?;
            let value = match (takes, glued) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(
                    it.next()
                        .cloned()
                        .ok_or_else(|| format!("option --{name} requires argument"))?,
                ),
                (false, Some(_)) => {
                    return Err(format!("option --{name} must not have an argument"));
                }
                (false, None) => None,
            };
            take(&mut seen, name, value)?;
            continue;
        }
        for (at, letter) in word[1..].char_indices() {
            let Some(&(_, takes)) = SHORT.iter().find(|(c, _)| *c == letter) else {
                return Err(format!("option -{letter} not recognized"));
            };
            if !takes {
                take(&mut seen, short_name(letter), None)?;
                continue;
            }
            let rest = &word[1 + at + letter.len_utf8()..];
            let value = match rest.is_empty() {
                false => rest.to_string(),
                true => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("option -{letter} requires argument"))?,
            };
            take(&mut seen, short_name(letter), Some(value))?;
            break;
        }
    }
    let mut out = Vec::new();
    for (name, value) in seen {
        let ours = match name {
            "port" => "--port",
            "pid_file" => "--pid-file",
            "debug_pattern" => "--debug-pattern",
            "stat_reset_triggers" => "--stat-reset-triggers",
            "unsafe_absolute_includes" => "--unsafe-absolute-includes",
            "no_force_dirs" => "--no-force-dirs",
            // What stock does with these (run the real preprocessor to
            // check, write closures, print statistics or times, mail
            // discrepancies) is not done here: said, not silently dropped
            // (sweep Z).
            "verify"
            | "write_include_closure"
            | "statistics"
            | "time"
            | "email"
            | "exact_analysis" => {
                out.extend(["--no-effect".to_string(), name.to_string()]);
                continue;
            }
            _ => continue,
        };
        out.push(ours.to_string());
        out.extend(value);
    }
    Ok(Some(out))
}

/// The long option a short one stands for.
fn short_name(letter: char) -> &'static str {
    match letter {
        'd' => "debug_pattern",
        'e' => "email",
        's' => "statistics",
        't' => "time",
        'v' => "verify",
        'w' => "write_include_closure",
        _ => "exact_analysis",
    }
}

/// Records an option (the last of a repeated one wins), checking the
/// values stock reads as numbers.
fn take(
    seen: &mut Vec<(&'static str, Option<String>)>,
    name: &'static str,
    value: Option<String>,
) -> Result<(), String> {
    let text = value.as_deref().unwrap_or("").trim();
    match name {
        "debug_pattern" if text.parse::<u32>().is_err() => {
            return Err(format!("bad value for --debug_pattern: {value:?}"));
        }
        "email_bound" if text.parse::<i64>().is_err() => {
            return Err(format!("bad value for --email_bound: {value:?}"));
        }
        // Stock stops here too (`sys.exit("Not implemented")`).
        "simple_algorithm" => return Err("--simple_algorithm: Not implemented".into()),
        _ => {}
    }
    let value = match (name, value) {
        ("debug_pattern", Some(v)) => Some(v.trim().to_string()),
        (_, v) => v,
    };
    seen.retain(|(n, _)| *n != name);
    seen.push((name, value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(a: &[&str]) -> Result<Option<Vec<String>>, String> {
        read(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn ok(a: &[&str]) -> Vec<String> {
        words(a).unwrap().unwrap()
    }

    #[test]
    fn stock_forms() {
        assert_eq!(
            ok(&[
                "--port=/s",
                "-d1",
                "--email_bound",
                "3",
                "-s",
                "--pid_file",
                "p",
                "--no_force_dirs"
            ]),
            [
                "--port",
                "/s",
                "--debug-pattern",
                "1",
                "--no-effect",
                "statistics",
                "--pid-file",
                "p",
                "--no-force-dirs"
            ]
        );
    }

    /// Getopt's forms (sweep W, D2): clusters, prefixes, trailing words.
    #[test]
    fn getopt_forms() {
        assert_eq!(
            ok(&["--port", "/s", "-sv"]),
            [
                "--port",
                "/s",
                "--no-effect",
                "statistics",
                "--no-effect",
                "verify"
            ]
        );
        assert_eq!(
            ok(&["-sd5"]),
            ["--no-effect", "statistics", "--debug-pattern", "5"]
        );
        assert_eq!(ok(&["-d", "7"]), ["--debug-pattern", "7"]);
        assert_eq!(ok(&["--unsafe"]), ["--unsafe-absolute-includes"]);
        assert_eq!(ok(&["--no_f"]), ["--no-force-dirs"]);
        assert_eq!(
            ok(&["--stat_reset_triggers=a b"]),
            ["--stat-reset-triggers", "a b"]
        );
        assert_eq!(
            ok(&["-x", "extra", "--bogus"]),
            ["--no-effect", "exact_analysis"]
        );
        assert_eq!(ok(&["--", "-d9"]), Vec::<String>::new());
        assert_eq!(
            ok(&["--path_observation_re", "x y", "-e"]),
            ["--no-effect", "email"]
        );
        assert!(words(&["--help"]).unwrap().is_none());
    }

    /// Our own dashed spellings.
    #[test]
    fn dashed_spellings() {
        assert_eq!(
            ok(&["--pid-file", "p", "--debug-pattern", "3", "--no-force-dirs"]),
            ["--pid-file", "p", "--debug-pattern", "3", "--no-force-dirs"]
        );
    }

    /// The last of a repeated option wins (sweep O, D1: pump's `-d1` and
    /// the user's `-d7`).
    #[test]
    fn the_last_of_a_repeated_option_wins() {
        for user in [
            &["-d7"][..],
            &["-d", "7"],
            &["--debug_pattern=7"],
            &["--debug-pattern", "7"],
            &["--debug", "7"],
        ] {
            let mut args = vec!["--port", "/s", "-d1"];
            args.extend(user);
            assert_eq!(
                ok(&args),
                ["--port", "/s", "--debug-pattern", "7"],
                "{user:?}"
            );
        }
        assert_eq!(
            ok(&["--no_force_dirs", "--no-force-dirs"]),
            ["--no-force-dirs"]
        );
    }

    /// What stock refuses.
    #[test]
    fn refusals() {
        for bad in [
            &["--bogus"][..],
            &["-q"],
            &["-dx"],
            &["-d"],
            &["--port"],
            &["--email_bound=x"],
            &["--simple_algorithm"],
            &["--statistics=1"],
            &["--e"],
        ] {
            assert!(words(bad).is_err(), "{bad:?}");
        }
    }
}
