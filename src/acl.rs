//! The daemon's client access list: `--allow IP[/BITS]` rules for IPv4 and
//! IPv6, and the `--allow-private` set.
//!
//! distccd checks a client's address against this list right after
//! `accept()`, before it reads a byte (facts §1.7, §5.1). IPv4 rules also
//! match v4-mapped (`::ffff:a.b.c.d`) and v4-compatible (`::a.b.c.d`) IPv6
//! clients, as stock does. Unlike stock 3.4, the private set includes `::1`,
//! and a daemon without any `--allow` uses the private set instead of
//! allowing everyone.

use crate::error::{Error, Kind, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One `--allow` rule: an address and the number of leading bits that must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    addr: IpAddr,
    bits: u8,
}

impl Rule {
    /// Parses `IP` or `IP/BITS`. Bits above 32 (IPv4) or 128 (IPv6) are an
    /// error (exit 101 in stock); a missing `/BITS` means a single host.
    pub fn parse(text: &str) -> Result<Rule> {
        let bad = |why: &str| Error::new(Kind::BadArguments, format!("--allow {text}: {why}"));
        let (ip, bits) = match text.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (text, None),
        };
        let literal = ip.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = match literal.parse() {
            Ok(a) => a,
            // A host name, as stock takes it: its first address, resolved
            // once at start (`--allow buildmaster`, `--allow localhost`).
            Err(_) => resolve(literal)
                .ok_or_else(|| bad("not an IPv4 or IPv6 address, nor a host name that resolves"))?,
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| bad(&format!("mask must be a number of bits 0..={max}")))?,
        };
        Ok(Rule { addr, bits })
    }

    /// Whether `client` matches this rule.
    pub fn matches(&self, client: IpAddr) -> bool {
        match (self.addr, client) {
            (IpAddr::V4(rule), IpAddr::V4(c)) => prefix_eq(&rule.octets(), &c.octets(), self.bits),
            (IpAddr::V4(rule), IpAddr::V6(c)) => {
                embedded_v4(c).is_some_and(|c| prefix_eq(&rule.octets(), &c.octets(), self.bits))
            }
            (IpAddr::V6(rule), IpAddr::V6(c)) => prefix_eq(&rule.octets(), &c.octets(), self.bits),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

/// The first address of host `name` (none for an empty name or one that
/// could not be an address family's name).
fn resolve(name: &str) -> Option<IpAddr> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    crate::name_service::use_builtin_sources();
    use std::net::ToSocketAddrs;
    (name, 0u16).to_socket_addrs().ok()?.next().map(|a| a.ip())
}

/// The IPv4 address inside a v4-mapped or v4-compatible IPv6 address.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = a.octets();
    let mapped = o[..10].iter().all(|&b| b == 0) && o[10] == 0xff && o[11] == 0xff;
    // `::` and `::1` are not v4-compatible addresses of 0.0.0.0 and 0.0.0.1.
    let compatible =
        o[..12].iter().all(|&b| b == 0) && u32::from_be_bytes([o[12], o[13], o[14], o[15]]) > 1;
    (mapped || compatible).then(|| Ipv4Addr::new(o[12], o[13], o[14], o[15]))
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

/// The networks `--allow-private` adds (stock's list plus `::1`).
pub const PRIVATE_NETS: &[&str] = &[
    "192.168.0.0/16",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "127.0.0.0/8",
    "fe80::/10",
    "fc00::/7",
    "::1/128",
];

/// An access list. Empty means "no restriction" (only used in inetd mode
/// without `--allow`, as stock does).
#[derive(Clone, Debug, Default)]
pub struct AccessList {
    rules: Vec<Rule>,
}

impl AccessList {
    /// A list from rule texts.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<AccessList> {
        let rules = rules
            .iter()
            .map(|r| Rule::parse(r.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(AccessList { rules })
    }

    /// Loopback and the private networks.
    pub fn private() -> AccessList {
        AccessList {
            rules: PRIVATE_NETS
                .iter()
                .filter_map(|r| Rule::parse(r).ok())
                .collect(),
        }
    }

    /// Adds the private networks to this list.
    pub fn add_private(&mut self) {
        self.rules.extend(AccessList::private().rules);
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `client` may connect. An empty list allows everyone.
    pub fn allows(&self, client: IpAddr) -> bool {
        self.rules.is_empty() || self.rules.iter().any(|r| r.matches(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn mask_table() {
        let table: &[(&str, &str, bool)] = &[
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("10.0.0.0/8", "10.200.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.1", false),
            ("192.168.1.0/23", "192.168.0.9", true),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "::10.1.2.3", true),
            ("127.0.0.1", "::1", false),
            ("::1", "::1", true),
            ("::1", "::2", false),
            ("fe80::/10", "fe80::1234", true),
            ("fe80::/10", "fec0::1", false),
            ("2001:db8::/32", "10.0.0.1", false),
        ];
        for &(rule, client, want) in table {
            let r = Rule::parse(rule).unwrap();
            assert_eq!(r.matches(ip(client)), want, "{rule} vs {client}");
        }
    }

    #[test]
    fn bad_rules() {
        // (No name here that would need DNS: tests stay on loopback.)
        for bad in ["10.0.0.0/33", "::/129", "hel lo", "10.0.0.0/x", ""] {
            let e = Rule::parse(bad).unwrap_err();
            assert_eq!(e.kind(), Kind::BadArguments, "{bad}");
        }
    }

    /// A host name is taken as its first address, as stock takes it
    /// (sweep M, P1: `--allow localhost` stopped the daemon's start).
    #[test]
    fn host_names_resolve() {
        let r = Rule::parse("localhost").unwrap();
        assert!(r.addr.is_loopback(), "{:?}", r.addr);
        assert!(r.matches(r.addr));
    }

    /// The short and numeric IPv4 forms of `inet_aton`, which stock's
    /// `--allow` takes (sweep M, P1); read without any DNS lookup.
    #[test]
    fn inet_aton_forms_are_read_as_stock_reads_them() {
        for (text, addr, bits) in [
            ("127.1", "127.0.0.1", 32),
            ("0x7f000001", "127.0.0.1", 32),
            ("2130706433", "127.0.0.1", 32),
            ("10.0.0/8", "10.0.0.0", 8),
            ("10.1/16", "10.0.0.1", 16),
        ] {
            let r = Rule::parse(text).unwrap();
            assert_eq!((r.addr, r.bits), (ip(addr), bits), "{text}");
        }
    }

    #[test]
    fn private_default_includes_ipv6_loopback() {
        let acl = AccessList::private();
        assert!(acl.allows(ip("::1")));
        assert!(acl.allows(ip("127.0.0.1")));
        assert!(acl.allows(ip("::ffff:192.168.3.4")));
        assert!(!acl.allows(ip("8.8.8.8")));
        assert!(!acl.allows(ip("2001:db8::1")));
        assert!(AccessList::default().allows(ip("8.8.8.8")));
    }
}
