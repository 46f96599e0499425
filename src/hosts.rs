//! The distcc host-list grammar: `DISTCC_HOSTS` or a hosts file → [`HostList`].
//!
//! Grammar of distcc 3.4 `hosts.c` (facts §4.2): whitespace-separated tokens,
//! `#` comments, global options (`--randomize`, `--localslots[=/]N`,
//! `--localslots_cpp[=/]N`, `+zeroconf`), `localhost[/N]`, TCP hosts
//! `HOST[/N][:PORT][/N]` or `[IPv6][:PORT]`, SSH hosts
//! `[USER]@HOST[/N][:COMMAND]`, and options `,lzo ,cpp ,down ,auth[=NAME]`.
//! Errors carry the source name and the column of the bad token (exit 106).
//! What stock 3.4 accepts is accepted, read as stock reads it: characters
//! after a host's last part are ignored (`a/3x` is `a/3`), options match by
//! prefix (`,lzo=4` is `,lzo`), a limit is C's `atoi` (`/+3`), a port out
//! of range keeps the host (unreachable), and a bad `--localslots` value is
//! said and left out, so one sloppy entry does not stop distribution.
//! The client's host picker (applets/client/pick.rs) turns specs into locks.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;

use crate::c_number::atoi;
use crate::error::{Error, Kind, Result};
use crate::protocol::Version;

/// Default TCP port of distccd.
pub const DEFAULT_PORT: u16 = 3632;
/// Default slots of a TCP or SSH host.
pub const DEFAULT_REMOTE_SLOTS: u32 = 4;
/// Default slots of `localhost`.
pub const DEFAULT_LOCALHOST_SLOTS: u32 = 2;
/// Default `--localslots` (local-only jobs).
pub const DEFAULT_LOCAL_SLOTS: u32 = 4;
/// Default `--localslots_cpp` (local preprocessing).
pub const DEFAULT_LOCAL_SLOTS_CPP: u32 = 8;

/// How a host is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Compile on this machine.
    Local,
    /// distccd over TCP.
    Tcp {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// `distccd --inetd` over ssh.
    Ssh {
        /// `-l` user, if given.
        user: Option<String>,
        /// Host name for ssh.
        host: String,
        /// Remote command instead of `distccd`, as bytes (a path need not
        /// be UTF-8).
        command: Option<OsString>,
    },
}

/// One host of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// The token exactly as written (what `--show-hosts` prints).
    pub text: String,
    /// How to reach it.
    pub mode: Mode,
    /// Concurrent jobs allowed (`/N`).
    pub slots: u32,
    /// `,lzo`.
    pub lzo: bool,
    /// `,cpp` (pump mode; needs `,lzo`).
    pub cpp: bool,
    /// `,down`: listed but never used.
    pub down: bool,
    /// `,auth[=NAME]`: GSS-API requested (not supported by this build).
    pub auth: Option<Option<String>>,
}

impl HostSpec {
    /// The protocol version for this host (facts §1.3).
    pub fn protocol(&self) -> Version {
        match (self.lzo, self.cpp) {
            (true, true) => Version::PUMP,
            (true, false) => Version::LZO,
            _ => Version::PLAIN,
        }
    }

    /// The part of lock and backoff file names that names the host, as stock:
    /// `localhost`, `tcp_<host>_<port>`, `ssh_<host>`.
    pub fn lock_key(&self) -> String {
        match &self.mode {
            Mode::Local => "localhost".to_string(),
            Mode::Tcp { host, port } => format!("tcp_{host}_{port}"),
            Mode::Ssh { host, .. } => format!("ssh_{host}"),
        }
    }

    /// The host name for logs and state files.
    pub fn name(&self) -> &str {
        match &self.mode {
            Mode::Local => "localhost",
            Mode::Tcp { host, .. } | Mode::Ssh { host, .. } => host,
        }
    }

    /// The host as messages name it: `host:port`, `[v6]:port`,
    /// `user@host` for ssh (several daemons may share a machine).
    pub fn display(&self) -> String {
        match &self.mode {
            Mode::Local => "localhost".to_string(),
            Mode::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Mode::Tcp { host, port } => format!("{host}:{port}"),
            Mode::Ssh {
                user: Some(user),
                host,
                ..
            } => format!("{user}@{host}"),
            Mode::Ssh { host, .. } => host.clone(),
        }
    }

    /// Whether this is `localhost` (compile locally).
    pub fn is_local(&self) -> bool {
        self.mode == Mode::Local
    }
}

/// A parsed host list with its global options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostList {
    /// Hosts in the order written (shuffled later when `randomize`).
    pub hosts: Vec<HostSpec>,
    /// `--randomize`.
    pub randomize: bool,
    /// `--localslots`.
    pub local_slots: u32,
    /// `--localslots_cpp`.
    pub local_slots_cpp: u32,
    /// `+zeroconf` (parsed; this build does not browse zeroconf).
    pub zeroconf: bool,
}

impl HostList {
    /// What `distcc -j` prints: the sum of the hosts' slots.
    pub fn total_slots(&self) -> u64 {
        self.hosts.iter().map(|h| u64::from(h.slots)).sum()
    }

    /// Shuffles the hosts with a small PRNG seeded by `seed` (stock seeds with the pid).
    pub fn shuffle(&mut self, seed: u64) {
        let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
        for i in (1..self.hosts.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = (state % (i as u64 + 1)) as usize;
            self.hosts.swap(i, j);
        }
    }
}

/// Parses a host list given as bytes (an environment variable or a file),
/// as stock reads it: bytes, not text. A list that is not UTF-8 is read
/// byte for byte (each byte one character), and an `@host:/command` path
/// in it keeps its bytes.
pub fn parse_bytes(bytes: &[u8], source: &str) -> Result<HostList> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_text(text, source, false),
        Err(_) => {
            let text: String = bytes.iter().map(|&b| char::from(b)).collect();
            parse_text(&text, source, true)
        }
    }
}

/// The bytes a string of byte characters (U+0000..U+00FF) stands for.
fn chars_as_bytes(s: &OsStr) -> OsString {
    let text = s.to_string_lossy();
    OsString::from_vec(text.chars().map(|c| c as u32 as u8).collect())
}

/// Parses a host list. `source` names where it came from (`$DISTCC_HOSTS`
/// or a file path) for error messages.
pub fn parse(text: &str, source: &str) -> Result<HostList> {
    parse_text(text, source, false)
}

/// `byte_chars`: each character of `text` stands for one byte (a list that
/// was not UTF-8).
fn parse_text(text: &str, source: &str, byte_chars: bool) -> Result<HostList> {
    let mut list = HostList {
        hosts: Vec::new(),
        randomize: false,
        local_slots: DEFAULT_LOCAL_SLOTS,
        local_slots_cpp: DEFAULT_LOCAL_SLOTS_CPP,
        zeroconf: false,
    };
    for (offset, token) in tokens(text) {
        let fail = |why: String| {
            Error::new(
                Kind::BadHostSpec,
                format!(
                    "bad host specification {token:?} in {source} at column {}: {why}",
                    offset + 1
                ),
            )
        };
        if token.starts_with("--randomize") {
            list.randomize = true;
        } else if let Some(rest) = token.strip_prefix("--localslots_cpp") {
            // As stock: a value that is no limit is said and left out.
            match take_mult(rest) {
                Ok((Some(n), _)) => list.local_slots_cpp = n,
                Ok((None, _)) => {}
                Err(why) => log::error!("{}; ignored", fail(why)),
            }
        } else if let Some(rest) = token.strip_prefix("--localslots") {
            match take_mult(rest) {
                Ok((Some(n), _)) => list.local_slots = n,
                Ok((None, _)) => {}
                Err(why) => log::error!("{}; ignored", fail(why)),
            }
        } else if token == "+zeroconf" {
            list.zeroconf = true;
        } else {
            let (mut spec, ignored) = parse_host(token).map_err(fail)?;
            if let Mode::Ssh {
                command: Some(c), ..
            } = &mut spec.mode
                && byte_chars
            {
                *c = chars_as_bytes(c);
            }
            if !ignored.is_empty() {
                // Stock ignores what follows a host's last part; so do
                // we, and say so when asked.
                log::info!("host {token:?}: {ignored:?} ignored, as stock distcc ignores it");
            }
            list.hosts.push(spec);
        }
    }
    Ok(list)
}

/// Splits into (byte offset, token); `#` ends a token and skips to end of line.
fn tokens(text: &str) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'#' {
                i += 1;
            }
            out.push((start, &text[start..i]));
        }
    }
    out
}

/// A limit `("/" | "=") N` at the start of `s`, as stock's
/// `dcc_parse_multiplier` reads it: `atoi` of what follows (so `/+3` and
/// `/3x` are 3), then only the digits are passed over. Returns (limit,
/// rest); no `/` or `=` is no limit. 0 or a negative value is an error.
fn take_mult(s: &str) -> std::result::Result<(Option<u32>, &str), String> {
    let Some(after) = s.strip_prefix(['/', '=']) else {
        return Ok((None, s));
    };
    let value = atoi(after).value;
    if value <= 0 {
        let shown = s.split(',').next().unwrap_or(s);
        return Err(format!(
            "bad job limit {shown:?} (a positive number must follow)"
        ));
    }
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    let limit = u32::try_from(value).unwrap_or(u32::MAX);
    Ok((Some(limit), &after[digits..]))
}

/// `:PORT` as stock reads it (`strtol`, then the next character must end
/// the token or be `/` or `,`). A port outside 1-65535 keeps the host, as
/// stock keeps it, but as port 0, where no connection succeeds.
fn take_port(s: &str) -> std::result::Result<(u16, &str), String> {
    let number = atoi(s);
    let (value, used) = (number.value, number.end);
    let tail = &s[used..];
    if !(tail.is_empty() || tail.starts_with(['/', ','])) {
        return Err(format!(
            "invalid tcp port specification in {:?}",
            format!(":{s}")
        ));
    }
    let port = u16::try_from(value).ok().filter(|&p| p > 0).unwrap_or(0);
    if port == 0 {
        log::info!(
            "port {:?} is no TCP port: that host cannot be reached",
            &s[..used]
        );
    }
    Ok((port, tail))
}

/// Parses one host token; returns the spec and what stock would ignore
/// after it (trailing characters after the last part read).
fn parse_host(token: &str) -> std::result::Result<(HostSpec, &str), String> {
    let mut spec = HostSpec {
        text: token.to_string(),
        mode: Mode::Local,
        slots: DEFAULT_REMOTE_SLOTS,
        lzo: false,
        cpp: false,
        down: false,
        auth: None,
    };
    let rest;
    if token == "localhost" || token.starts_with("localhost/") {
        // Stock reads no options after `localhost[/N]`: the rest is ignored.
        let (limit, r) = take_mult(&token["localhost".len()..])?;
        spec.slots = limit.unwrap_or(DEFAULT_LOCALHOST_SLOTS);
        return Ok((spec, r));
    } else if let Some(at) = token.find('@') {
        let user = &token[..at];
        let after = &token[at + 1..];
        let end = after.find(['/', '=', ':', ',']).unwrap_or(after.len());
        let host = &after[..end];
        if host.is_empty() {
            return Err("empty host name after '@'".into());
        }
        let (limit, mut r) = take_mult(&after[end..])?;
        let mut command = None;
        if let Some(c) = r.strip_prefix(':') {
            // An empty command is the default one, as for stock.
            let cend = c.find(',').unwrap_or(c.len());
            command = (cend > 0).then(|| OsString::from(&c[..cend]));
            r = &c[cend..];
        }
        spec.slots = limit.unwrap_or(DEFAULT_REMOTE_SLOTS);
        spec.mode = Mode::Ssh {
            user: (!user.is_empty()).then(|| user.to_string()),
            host: host.to_string(),
            command,
        };
        rest = r;
    } else {
        let (host, after) = if let Some(v6) = token.strip_prefix('[') {
            let close = v6.find([']', '/', ',']).unwrap_or(v6.len());
            if !v6[close..].starts_with(']') {
                return Err("missing ']' after IPv6 address".into());
            }
            (&v6[..close], &v6[close + 1..])
        } else {
            let end = token.find(['/', '=', ':', ',']).unwrap_or(token.len());
            (&token[..end], &token[end..])
        };
        if host.is_empty() {
            return Err("empty host name".into());
        }
        let (limit1, r) = take_mult(after)?;
        let mut port = DEFAULT_PORT;
        let mut r = r;
        if let Some(p) = r.strip_prefix(':') {
            (port, r) = take_port(p)?;
        }
        let (limit2, r) = take_mult(r)?;
        spec.slots = limit2.or(limit1).unwrap_or(DEFAULT_REMOTE_SLOTS);
        spec.mode = Mode::Tcp {
            host: host.to_string(),
            port,
        };
        rest = r;
    }
    let ignored = parse_options(rest, &mut spec)?;
    Ok((spec, ignored))
}

/// Options as stock reads them: each `,` is followed by a name that starts
/// with `lzo`, `down`, `cpp` or `auth` (prefixes: `,lzo=4` is `,lzo`); the
/// first character after an option that is not `,` ends them, and the
/// rest is returned (stock ignores it).
fn parse_options<'t>(
    mut rest: &'t str,
    spec: &mut HostSpec,
) -> std::result::Result<&'t str, String> {
    while let Some(r) = rest.strip_prefix(',') {
        if let Some(after) = r.strip_prefix("lzo") {
            spec.lzo = true;
            rest = after;
        } else if let Some(after) = r.strip_prefix("down") {
            spec.down = true;
            rest = after;
        } else if let Some(after) = r.strip_prefix("cpp") {
            spec.cpp = true;
            rest = after;
        } else if let Some(after) = r.strip_prefix("auth") {
            match after.strip_prefix('=') {
                Some(name) => {
                    let end = name.find(['/', ':', ',']).unwrap_or(name.len());
                    spec.auth = Some((end > 0).then(|| name[..end].to_string()));
                    rest = &name[end..];
                }
                None => {
                    spec.auth = Some(None);
                    rest = after;
                }
            }
        } else {
            let opt = r.split(',').next().unwrap_or(r);
            return Err(format!("unknown host option ',{opt}'"));
        }
    }
    if spec.cpp && !spec.lzo {
        return Err("pump mode (',cpp') requires compression (',lzo')".into());
    }
    if spec.cpp && spec.is_local() {
        spec.cpp = false;
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> HostSpec {
        let l = parse(s, "test").unwrap();
        assert_eq!(l.hosts.len(), 1, "{s}");
        l.hosts.into_iter().next().unwrap()
    }

    fn tcp(h: &HostSpec) -> (String, u16, u32) {
        match &h.mode {
            Mode::Tcp { host, port } => (host.clone(), *port, h.slots),
            m => panic!("not tcp: {m:?}"),
        }
    }

    #[test]
    fn stock_parse_host_spec_cases() {
        assert_eq!(one("localhost").mode, Mode::Local);
        assert_eq!(one("localhost").slots, 2);
        assert_eq!(tcp(&one("127.0.0.1")), ("127.0.0.1".into(), 3632, 4));
        assert_eq!(
            one("@angry").mode,
            Mode::Ssh {
                user: None,
                host: "angry".into(),
                command: None
            }
        );
        assert_eq!(
            one("ted@angry").mode,
            Mode::Ssh {
                user: Some("ted".into()),
                host: "angry".into(),
                command: None
            }
        );
        assert_eq!(
            one("@angry:/home/mbp/bin/distccd").mode,
            Mode::Ssh {
                user: None,
                host: "angry".into(),
                command: Some("/home/mbp/bin/distccd".into())
            }
        );
        assert_eq!(tcp(&one("angry:4204")), ("angry".into(), 4204, 4));
        assert_eq!(tcp(&one("ipv4-localhost")).0, "ipv4-localhost");
        assert_eq!(tcp(&one("angry/44")), ("angry".into(), 3632, 44));
        assert_eq!(tcp(&one("angry:300/44")), ("angry".into(), 300, 44));
        assert_eq!(tcp(&one("angry/44:300")), ("angry".into(), 300, 44));
        assert!(one("angry,lzo").lzo);
        let h = one("angry:3000,lzo # comment");
        assert_eq!((tcp(&h).1, h.lzo), (3000, true));
        assert_eq!(one("angry/44,lzo").slots, 44);
        assert!(one("@angry,lzo#asdasd").lzo);
        let h = one("@angry:/usr/sbin/distccd,lzo");
        assert!(h.lzo);
        assert!(
            matches!(h.mode, Mode::Ssh { command: Some(ref c), .. } if c == "/usr/sbin/distccd")
        );
        assert_eq!(
            tcp(&one("localhostbutnotreally")).0,
            "localhostbutnotreally"
        );
        assert_eq!(tcp(&one("localhost:4000")), ("localhost".into(), 4000, 4));
    }

    #[test]
    fn observed_list_and_j() {
        let l = parse(
            "localhost/3 --randomize 127.0.0.1:47002/5,lzo @host/2:/opt/distccd,lzo,cpp [::1]:4000/6 --localslots=9 --localslots_cpp=11 host,down # c\n foo=3",
            "$DISTCC_HOSTS",
        )
        .unwrap();
        assert!(l.randomize);
        assert_eq!((l.local_slots, l.local_slots_cpp), (9, 11));
        let texts: Vec<&str> = l.hosts.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "localhost/3",
                "127.0.0.1:47002/5,lzo",
                "@host/2:/opt/distccd,lzo,cpp",
                "[::1]:4000/6",
                "host,down",
                "foo=3"
            ]
        );
        assert_eq!(tcp(&l.hosts[3]), ("::1".into(), 4000, 6));
        assert_eq!(l.hosts[2].protocol(), Version::PUMP);
        assert!(l.hosts[4].down);
        let j = parse("localhost/3 h:1/5,lzo foo bar/1 localhost", "x").unwrap();
        assert_eq!(j.total_slots(), 15);
    }

    #[test]
    fn errors_have_position_and_kind() {
        for bad in [
            "angry::", ":4200", "mbp@", "[::1", "h,bogus", "h/0", "h/x", "x,cpp",
        ] {
            let e = parse(&format!("ok {bad}"), "$DISTCC_HOSTS").unwrap_err();
            assert_eq!(e.kind(), Kind::BadHostSpec, "{bad}");
            assert!(e.to_string().contains("column 4"), "{bad}: {e}");
        }
        let e = parse("x,cpp", "h").unwrap_err();
        assert!(e.to_string().contains("requires compression"));
        let e = parse("foo/bar,lzo", "h").unwrap_err();
        assert!(e.to_string().contains("bad job limit \"/bar\""), "{e}");
    }

    /// Entries stock 3.4 accepts (sweep N, D3): ours rejected the whole
    /// list, so nothing was distributed.
    #[test]
    fn what_stock_accepts_is_read_as_stock_reads_it() {
        assert_eq!(tcp(&one("a/3x")), ("a".into(), 3632, 3));
        assert_eq!(tcp(&one("a/+3")), ("a".into(), 3632, 3));
        // atoi stops at the sign, the cursor does not move past it: the
        // port after it is not read (as stock).
        assert_eq!(tcp(&one("a/+3:4000")), ("a".into(), 3632, 3));
        assert_eq!(tcp(&one("[::1]x")), ("::1".into(), 3632, 4));
        assert_eq!(tcp(&one("[::1]]")), ("::1".into(), 3632, 4));
        assert!(
            parse("a:4000x/2", "x").is_err(),
            "a port must end the token or be followed by / or ,"
        );
        for (spec, lzo, cpp, down) in [
            ("a,lzo=4", true, false, false),
            ("a,lzofoo", true, false, false),
            ("a,downy", false, false, true),
            ("a,lzo,cppx", true, true, false),
            ("a,lzofoo,cpp", true, false, false),
        ] {
            let h = one(spec);
            assert_eq!((h.lzo, h.cpp, h.down), (lzo, cpp, down), "{spec}");
        }
        for spec in ["a:0", "a:-1", "a:99999", "a:"] {
            assert_eq!(tcp(&one(spec)), ("a".into(), 0, 4), "{spec}");
        }
        let l = parse("--localslots=0 --localslots_cpp=x --localslots b", "x").unwrap();
        assert_eq!((l.local_slots, l.local_slots_cpp), (4, 8));
        assert_eq!(l.hosts.len(), 1);
        let l = parse("--localslots/3 --localslots_cpp=5x b", "x").unwrap();
        assert_eq!((l.local_slots, l.local_slots_cpp), (3, 5));
        assert!(matches!(one("@h:").mode, Mode::Ssh { command: None, .. }));
        assert_eq!(one("@@-x/1e3:x").slots, 1);
        assert_eq!(one("localhost/3x").slots, 3);
        assert_eq!(one("localhost/2,cpp").slots, 2);
        assert_eq!(one("localhost/4:3632").mode, Mode::Local);
        let h = one("a,lzo/7");
        assert_eq!((h.lzo, h.slots), (true, 4));
    }

    #[test]
    fn lock_keys_and_shuffle() {
        assert_eq!(one("h:99").lock_key(), "tcp_h_99");
        assert_eq!(one("u@h").lock_key(), "ssh_h");
        assert_eq!(one("localhost").lock_key(), "localhost");
        let mut l = parse("a b c d e f", "x").unwrap();
        l.shuffle(42);
        let mut names: Vec<&str> = l.hosts.iter().map(|h| h.name()).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
    }

    /// A list that is not UTF-8 (sweep P, D5): stock reads bytes, so a
    /// Latin-1 comment costs nothing and an `@host:/command` path keeps its
    /// bytes.
    #[test]
    fn a_list_that_is_not_utf8_is_read_as_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let l = parse_bytes(b"# caf\xe9\n@h:/opt/dir-\xe9/distccd,lzo b/2", "test").unwrap();
        assert_eq!(l.hosts.len(), 2);
        match &l.hosts[0].mode {
            Mode::Ssh {
                command: Some(c), ..
            } => assert_eq!(c.as_bytes(), b"/opt/dir-\xe9/distccd"),
            other => panic!("{other:?}"),
        }
        assert!(l.hosts[0].lzo);
        assert_eq!(l.hosts[1].slots, 2);
        // UTF-8 text is read as before, a non-ASCII path included.
        let l = parse_bytes("@h:/opt/caf\u{e9}/distccd".as_bytes(), "test").unwrap();
        assert!(matches!(&l.hosts[0].mode,
            Mode::Ssh { command: Some(c), .. } if c.as_bytes() == "/opt/caf\u{e9}/distccd".as_bytes()));
    }
}
