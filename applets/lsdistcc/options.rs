//! Command line of `lsdistcc` (facts §6): single-dash options with glued
//! values (`-t5`, `-pgcc`, `-r3632`), parsed by hand and only before the first
//! operand. Anything unknown, `--help` included, is a usage error: the caller
//! prints [`USAGE`] on stdout and exits 1, as stock does.

use std::ffi::OsString;

/// The default name pattern when no operand is given.
pub const DEFAULT_FORMAT: &str = "distcc%d";

/// Usage text, printed on stdout for any option error.
pub const USAGE: &str = "\
Usage: lsdistcc [-tTIMEOUT] [-mBITS] [-nvd] [format]
       lsdistcc [OPTIONS] host1 host2 ...
Lists the distcc servers that answer. With a format containing %d as the
first operand (default distcc%d), names are made for 1, 2, 3, ... (at most
500) until names stop resolving; otherwise only the hosts given are checked.
One line is printed per server that is up, as soon as its check finishes.
Options (values are glued to the letter, e.g. -t5):
  -l          print the latency in ms after each host (DNS time excluded)
  -n          print the IPv4 address instead of the name
  -x          also print hosts that are down, with ,down appended
  -tSECONDS   stop everything after SECONDS [7]
  -hMS        give a DNS lookup MS per try, 5 tries at most [500]
  -cMS        connect timeout in ms; 0 = do not connect [900]
  -kMS        test-compile timeout in ms; 0 = do not compile [1500]
  -mBITS      stop at a host whose IPv4 differs from the first host's in
              the top BITS bits [0 = never]
  -oN         extra DNS lookups to run ahead when generating names [1]
  -gN         unresolved names to tolerate before stopping [0]
  -rPORT      distcc port [3632]
  -PN         protocol for the test compile, 1 to 3 [1]
  -pCOMPILER  test-compile `int foo(){return 0;}` with COMPILER [none:
              only check that the port accepts connections]
  -d          append the DNS domain name to the names
  -v          verbose messages on stderr (repeat for more)
Examples:
  lsdistcc -l -pgcc
  lsdistcc -pgcc -P3 hosta hostb hostc
  lsdistcc -r3633 build%d.example.com
";

/// Parsed options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `-l`: print latency.
    pub latency: bool,
    /// `-n`: print the address instead of the name.
    pub numeric: bool,
    /// `-x`: print down hosts too.
    pub show_down: bool,
    /// `-t`: overall deadline in seconds (0: none, as stock's `alarm(0)`).
    pub overall_secs: u64,
    /// `-h`: milliseconds per DNS try.
    pub dns_retry_ms: u64,
    /// `-c`: connect timeout in ms (0 = no connect).
    pub connect_ms: u64,
    /// `-k`: compile timeout in ms (0 = no compile).
    pub compile_ms: u64,
    /// `-m`: address bits that must match the first host.
    pub match_bits: u32,
    /// `-o`: extra concurrent DNS lookups.
    pub overlap: u32,
    /// `-g`: tolerated DNS misses.
    pub dns_gap: u32,
    /// `-r`: the port.
    pub port: u16,
    /// `-P`: protocol 1..=3.
    pub protocol: u32,
    /// `-p`: compiler for the test compile.
    pub compiler: Option<String>,
    /// `-d`: append the domain.
    pub domain: bool,
    /// `-v` count.
    pub verbose: u32,
    /// Operands: a `%d` format or the host list.
    pub operands: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            latency: false,
            numeric: false,
            show_down: false,
            overall_secs: 7,
            dns_retry_ms: 500,
            connect_ms: 900,
            compile_ms: 1500,
            match_bits: 0,
            overlap: 1,
            dns_gap: 0,
            port: 3632,
            protocol: 1,
            compiler: None,
            domain: false,
            verbose: 0,
            operands: Vec::new(),
        }
    }
}

impl Options {
    /// The name format when the first operand contains `%d`.
    pub fn format(&self) -> Option<&str> {
        match self.operands.first() {
            None => Some(DEFAULT_FORMAT),
            Some(first) if first.contains("%d") => Some(first),
            Some(_) => None,
        }
    }
}

/// Why the command line was refused (the caller prints the usage).
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

/// A number as stock reads it (`atoi`): the leading digits, 0 when there
/// are none (`-tx` is `-t0`); a negative value, or one too large for the
/// option, is refused, as stock refuses it (sweep W, D1).
fn number<T: std::str::FromStr>(flag: char, value: &str) -> Result<T, UsageError> {
    let n = distcc::c_number::atoi(value);
    let bad = || UsageError(format!("bad value '{value}' for -{flag}"));
    if n.value < 0 {
        return Err(bad());
    }
    let digits = if n.value == 0 { "0" } else { n.digits };
    digits.parse().map_err(|_| bad())
}

/// Parses the arguments (without argv[0]).
pub fn parse(args: &[OsString]) -> Result<Options, UsageError> {
    let mut o = Options::default();
    let mut iter = args.iter();
    for arg in iter.by_ref() {
        let arg = arg
            .to_str()
            .ok_or_else(|| UsageError("arguments must be UTF-8".into()))?;
        let Some(body) = arg.strip_prefix('-') else {
            o.operands.push(arg.to_string());
            break;
        };
        let mut chars = body.chars();
        let Some(flag) = chars.next() else {
            return Err(UsageError("lone '-'".into()));
        };
        let value = chars.as_str();
        match flag {
            // As stock: the first letter counts, the rest of the word is
            // ignored (`-nx` is `-n`, `-vv` is `-v`), so that a wrapper's
            // LSDISTCC_ARGS gives the hosts stock's lsdistcc gives.
            'l' => o.latency = true,
            'n' => o.numeric = true,
            'x' => o.show_down = true,
            'd' => o.domain = true,
            'v' => o.verbose += 1,
            't' => o.overall_secs = number(flag, value)?,
            'h' => o.dns_retry_ms = number(flag, value)?,
            'c' => o.connect_ms = number(flag, value)?,
            'k' => o.compile_ms = number(flag, value)?,
            'm' => {
                o.match_bits = number(flag, value)?;
                if o.match_bits > 31 {
                    return Err(UsageError("-m takes 0 to 31 bits".into()));
                }
            }
            'o' => o.overlap = number(flag, value)?,
            'g' => o.dns_gap = number(flag, value)?,
            'r' => {
                o.port = number(flag, value)?;
                if o.port == 0 {
                    return Err(UsageError(format!("bad port '{value}' for -r")));
                }
            }
            'P' => {
                o.protocol = number(flag, value)?;
                if !(1..=3).contains(&o.protocol) {
                    return Err(UsageError("-P takes 1, 2 or 3".into()));
                }
            }
            'p' if !value.is_empty() => o.compiler = Some(value.to_string()),
            _ => return Err(UsageError(format!("unknown option {arg}"))),
        }
    }
    for rest in iter {
        let rest = rest
            .to_str()
            .ok_or_else(|| UsageError("arguments must be UTF-8".into()))?;
        o.operands.push(rest.to_string());
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> Result<Options, UsageError> {
        parse(&words.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn glued_values() {
        let o = p(&[
            "-t5", "-pgcc", "-P3", "-r3633", "-c150", "-k0", "-h20", "-o4", "-g2", "-m24", "-l",
            "-n", "-x", "-d", "-v", "-v", "a", "b",
        ])
        .unwrap();
        assert_eq!(o.overall_secs, 5);
        assert_eq!(o.compiler.as_deref(), Some("gcc"));
        assert_eq!(
            (o.protocol, o.port, o.connect_ms, o.compile_ms),
            (3, 3633, 150, 0)
        );
        assert_eq!(
            (o.dns_retry_ms, o.overlap, o.dns_gap, o.match_bits),
            (20, 4, 2, 24)
        );
        assert!(o.latency && o.numeric && o.show_down && o.domain);
        assert_eq!(o.verbose, 2);
        assert_eq!(o.operands, ["a", "b"]);
        assert_eq!(o.format(), None);
    }

    #[test]
    fn the_usage_examples_do_what_they_show() {
        // A %d operand is a format only in first place: an example that
        // put one after host names listed nothing (sweep Z, D2).
        let examples: Vec<&str> = (USAGE.lines())
            .skip_while(|l| !l.starts_with("Examples:"))
            .skip(1)
            .collect();
        assert!(examples.len() >= 2, "{USAGE}");
        for line in examples {
            let words: Vec<&str> = line.split_whitespace().skip(1).collect();
            let o = p(&words).unwrap_or_else(|e| panic!("{line}: {e:?}"));
            for (i, operand) in o.operands.iter().enumerate() {
                assert!(i == 0 || !operand.contains("%d"), "{line}");
            }
        }
    }

    #[test]
    fn defaults_and_format() {
        let o = p(&[]).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.format(), Some("distcc%d"));
        assert_eq!(p(&["10.0.0.%d"]).unwrap().format(), Some("10.0.0.%d"));
    }

    #[test]
    fn options_stop_at_first_operand() {
        let o = p(&["-l", "host", "-x"]).unwrap();
        assert!(o.latency && !o.show_down);
        assert_eq!(o.operands, ["host", "-x"]);
    }

    /// Numbers are read as stock's `atoi` reads them: `-tx` and `-t` are
    /// `-t0`, no overall limit (sweep N, D4: ours refused `-tx`, and
    /// listed nothing with `-t0`).
    #[test]
    fn numbers_as_atoi() {
        for (arg, want) in [
            ("-t0", 0),
            ("-t", 0),
            ("-tx", 0),
            ("-t12s", 12),
            ("-t+3", 3),
        ] {
            assert_eq!(p(&[arg]).unwrap().overall_secs, want, "{arg}");
        }
    }

    /// Flag words as stock takes them (sweep N, D6: ours refused them).
    #[test]
    fn flag_clusters() {
        let o = p(&["-vv", "-nx"]).unwrap();
        assert_eq!((o.verbose, o.numeric, o.show_down), (1, true, false));
        let o = p(&["-lfoo"]).unwrap();
        assert!(o.latency && !o.numeric && !o.domain);
    }

    #[test]
    fn refusals() {
        for bad in [
            vec!["--help"],
            vec!["-q"],
            vec!["-P4"],
            vec!["-m32"],
            vec!["-r70000"],
            vec!["-p"],
            vec!["-"],
            // As stock (sweep W, D1): no negative values, and a port > 0.
            vec!["-r0"],
            vec!["-r"],
            vec!["-rx"],
            vec!["-r-1"],
            vec!["-t-1"],
            vec!["-h-1"],
            vec!["-c-1"],
            vec!["-k-1"],
            vec!["-o-1"],
            vec!["-g-1"],
            vec!["-m-1"],
            vec!["-P-1"],
        ] {
            assert!(p(&bad).is_err(), "{bad:?} accepted");
        }
    }
}
