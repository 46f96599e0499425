//! The `lsdistcc` applet: finds the distcc servers that answer (facts §6).
//!
//! Data flow: [`options`] parses the glued single-dash options; [`names`]
//! resolves the host list or the `%d` names on helper threads; each resolved
//! host gets a [`probe`] (connect, optionally the [`canned`] test compile) on
//! one mio loop; a line is printed per finished host, in completion order.
//! Exit status: 0 if any name resolved (or the `-t` deadline was reached),
//! 1 if none did or the command line was bad (usage on stdout).

mod canned;
mod names;
mod options;
mod probe;

use distcc::applet::Invocation;
use distcc::protocol::Version;
use distcc::{Error, Result};
use mio::{Events, Poll, Token, Waker};
use names::{Lookup, Names};
use options::Options;
use probe::{Outcome, Plan, Probe};
use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What `-t0` (no overall limit) still allows: one hour, far beyond any
/// probe's own connect and compile timeouts, so the run stays bounded.
const NO_OVERALL_LIMIT: Duration = Duration::from_secs(3600);

const WAKER: Token = Token(usize::MAX);

/// Runs the applet.
pub fn main(inv: Invocation) -> Result<ExitCode> {
    let opts = match options::parse(&inv.args) {
        Ok(o) => o,
        Err(e) => {
            print!("{}", options::USAGE);
            let _ = std::io::stdout().flush();
            if !inv.args.iter().any(|a| a == "--help") {
                eprintln!("lsdistcc: {}", e.0);
            }
            return Ok(ExitCode::from(1));
        }
    };
    let mut opts = opts;
    if opts.domain {
        match domain_name() {
            Some(domain) => {
                if opts.operands.is_empty() {
                    opts.operands.push(options::DEFAULT_FORMAT.to_string());
                }
                for name in &mut opts.operands {
                    name.push('.');
                    name.push_str(&domain);
                }
            }
            None => {
                eprintln!("lsdistcc: cannot find the DNS domain name of this host");
                return Ok(ExitCode::from(1));
            }
        }
    }
    let resolved_any = Scan::new(&opts)?.run()?;
    Ok(ExitCode::from(if resolved_any { 0 } else { 1 }))
}

/// The DNS domain of this host, as stock finds it (sweep W, D9): `$HOST`
/// or `$HOSTNAME` when either holds a dotted name (the longer wins), else
/// the host name, asked of the resolver for its canonical name when it has
/// no dot; the text after the first dot, made only of letters, digits,
/// `-` and `.`.
fn domain_name() -> Option<String> {
    domain_from(
        std::env::var("HOST").ok(),
        std::env::var("HOSTNAME").ok(),
        || {
            let own = own_host_name()?;
            if own.contains('.') {
                Some(own)
            } else {
                canonical_name(&own)
            }
        },
    )
}

/// [`domain_name`] from the two variables and, when neither is dotted, the
/// host's own full name.
fn domain_from(
    host: Option<String>,
    hostname: Option<String>,
    own: impl FnOnce() -> Option<String>,
) -> Option<String> {
    let dotted = |v: Option<String>| v.filter(|v| v.contains('.'));
    let host = dotted(host);
    let hostname = dotted(hostname);
    let name = match (host, hostname) {
        (Some(a), Some(b)) if a.len() < b.len() => Some(b),
        (Some(a), _) => Some(a),
        (None, b) => b,
    };
    let name = match name {
        Some(n) => n,
        None => own()?,
    };
    let legal = name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !legal {
        eprintln!("lsdistcc: HOST/HOSTNAME present in environment but illegal: '{name}'");
        return None;
    }
    let (_, domain) = name.split_once('.')?;
    (!domain.is_empty()).then(|| domain.to_string())
}

/// `gethostname()`.
fn own_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // or truncates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The resolver's canonical name for `name` (`/etc/hosts`, DNS).
fn canonical_name(name: &str) -> Option<String> {
    distcc::name_service::use_builtin_sources();
    let c_name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a zeroed addrinfo is a valid hints value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut found: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated name, hints and out pointer; the list is
    // freed below.
    let rc = unsafe { libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut found) };
    if rc != 0 || found.is_null() {
        eprintln!("lsdistcc: failed to look up self \"{name}\"");
        return None;
    }
    // SAFETY: `found` is a list getaddrinfo returned; its first entry holds
    // the canonical name (or null).
    unsafe {
        let p = (*found).ai_canonname;
        let text =
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
        libc::freeaddrinfo(found);
        text
    }
}

/// One run: the loop state.
struct Scan<'a> {
    opts: &'a Options,
    poll: Poll,
    names: Names,
    plan: Plan,
    probes: HashMap<usize, Probe>,
    /// Hosts waiting for a descriptor, in the order found.
    waiting: std::collections::VecDeque<(usize, Ipv4Addr)>,
    /// Most probes open at once: what the descriptor limit leaves.
    max_probes: usize,
    hosts: Vec<Lookup>,
    reference: Option<Ipv4Addr>,
    resolved_any: bool,
    overall: Instant,
}

/// Descriptors kept for everything but probes (standard streams, the
/// poller, name lookups).
const RESERVED_FDS: u64 = 16;

/// Raises the soft descriptor limit to the hard one and returns how many
/// probes may be open at once under it. Stock raises it too and probes in
/// batches; without that, hosts beyond the limit were reported down
/// (sweep W, D6).
fn probe_budget() -> usize {
    match distcc::fd_limit::raise() {
        Some(limit) => limit.saturating_sub(RESERVED_FDS).clamp(1, 65_536) as usize,
        None => 64,
    }
}

impl<'a> Scan<'a> {
    fn new(opts: &'a Options) -> Result<Scan<'a>> {
        let poll = Poll::new().map_err(|e| Error::io("creating the poller", e))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("creating a waker", e))?,
        );
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = waker.wake();
        });
        let hosts = if opts.format().is_some() {
            Vec::new()
        } else {
            opts.operands.clone()
        };
        let names = Names::new(
            opts.format(),
            hosts,
            opts.overlap,
            opts.dns_gap,
            opts.dns_retry_ms,
            wake,
        );
        let request = match &opts.compiler {
            Some(cc) if opts.compile_ms > 0 => Some(Arc::new(canned::request(cc, opts.protocol)?)),
            _ => None,
        };
        let now = Instant::now();
        Ok(Scan {
            opts,
            poll,
            names,
            plan: Plan {
                connect: Duration::from_millis(opts.connect_ms),
                compile: Duration::from_millis(opts.compile_ms),
                request,
                version: Version(opts.protocol),
            },
            probes: HashMap::new(),
            waiting: std::collections::VecDeque::new(),
            max_probes: probe_budget(),
            hosts: Vec::new(),
            reference: None,
            resolved_any: false,
            // `-t0`: no overall limit (stock's alarm(0)); each probe is
            // still bounded by its own connect and compile timeouts.
            overall: now
                + match opts.overall_secs {
                    0 => NO_OVERALL_LIMIT,
                    secs => Duration::from_secs(secs),
                },
        })
    }

    fn verbose(&self, level: u32, what: std::fmt::Arguments) {
        if self.opts.verbose >= level {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            eprintln!(
                "lsdistcc {}.{:03}: {what}",
                now.as_secs(),
                now.subsec_millis()
            );
        }
    }

    /// Runs until every host is done or the overall deadline passes; returns
    /// whether any name resolved.
    fn run(mut self) -> Result<bool> {
        let mut events = Events::with_capacity(256);
        self.take_lookups();
        // Bounded: every iteration either makes progress or waits for the
        // nearest deadline, and the overall deadline ends the loop.
        loop {
            if self.names.finished() && self.probes.is_empty() && self.waiting.is_empty() {
                return Ok(self.resolved_any);
            }
            let now = Instant::now();
            if now >= self.overall {
                self.verbose(1, format_args!("time is up"));
                return Ok(true);
            }
            let mut next = self.overall;
            if let Some(t) = self.names.deadline() {
                next = next.min(t);
            }
            for p in self.probes.values() {
                next = next.min(p.deadline());
            }
            let wait = next.saturating_duration_since(now) + Duration::from_millis(1);
            if let Err(e) = self.poll.poll(&mut events, Some(wait))
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(Error::io("waiting for probes", e));
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                let host = event.token().0;
                let outcome = self.probes.get_mut(&host).and_then(Probe::ready);
                if let Some(outcome) = outcome {
                    self.end_probe(host, outcome);
                }
            }
            let now = Instant::now();
            let late: Vec<usize> = self
                .probes
                .iter()
                .filter(|(_, p)| p.deadline() <= now)
                .map(|(h, _)| *h)
                .collect();
            for host in late {
                if let Some(outcome) = self.probes.get(&host).map(Probe::timed_out) {
                    self.end_probe(host, outcome);
                }
            }
            self.take_lookups();
        }
    }

    fn take_lookups(&mut self) {
        for lookup in self.names.collect(Instant::now()) {
            let Some(ip) = lookup.addr else {
                self.verbose(1, format_args!("{} not found", lookup.name));
                continue;
            };
            self.resolved_any = true;
            if let Some(first) = self.reference {
                let bits = self.opts.match_bits;
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                if u32::from(first) & mask != u32::from(ip) & mask {
                    self.verbose(
                        1,
                        format_args!("{} ({ip}) is outside the first host's network", lookup.name),
                    );
                    // A generated range ends here; a listed host is skipped.
                    if self.opts.format().is_some() {
                        self.names.stop();
                    }
                    continue;
                }
            } else {
                self.reference = Some(ip);
            }
            let host = self.hosts.len();
            self.hosts.push(lookup);
            self.start_probe(host, ip);
        }
    }

    fn start_probe(&mut self, host: usize, ip: Ipv4Addr) {
        let name = self.hosts[host].name.clone();
        if self.opts.connect_ms == 0 {
            self.report(host, &Outcome::Up, Duration::ZERO);
            return;
        }
        if self.probes.len() >= self.max_probes {
            // Started when a probe ends and gives its descriptor back.
            self.waiting.push_back((host, ip));
            return;
        }
        self.verbose(1, format_args!("connecting to {name} ({ip})"));
        let addr = SocketAddr::V4(SocketAddrV4::new(ip, self.opts.port));
        match Probe::start(addr, &self.plan, self.poll.registry(), Token(host)) {
            Ok(probe) => {
                self.probes.insert(host, probe);
            }
            Err(why) => self.report(host, &Outcome::Down(why), Duration::ZERO),
        }
    }

    fn end_probe(&mut self, host: usize, outcome: Outcome) {
        if let Some(probe) = self.probes.remove(&host) {
            let took = probe.started.elapsed();
            probe.finish(self.poll.registry());
            self.report(host, &outcome, took);
        }
        if let Some((next, ip)) = self.waiting.pop_front() {
            self.start_probe(next, ip);
        }
    }

    fn report(&self, host: usize, outcome: &Outcome, took: Duration) {
        let lookup = &self.hosts[host];
        if let Outcome::Down(why) = outcome {
            self.verbose(1, format_args!("{} is down: {why}", lookup.name));
            if !self.opts.show_down {
                return;
            }
        }
        let mut line = match (self.opts.numeric, lookup.addr) {
            (true, Some(ip)) => ip.to_string(),
            _ => lookup.name.clone(),
        };
        if self.opts.port != 3632 {
            line.push_str(&format!(":{}", self.opts.port));
        }
        line.push_str(match self.opts.protocol {
            2 => ",lzo",
            3 => ",lzo,cpp",
            _ => "",
        });
        if matches!(outcome, Outcome::Down(_)) {
            line.push_str(",down");
        }
        if self.opts.latency {
            line.push_str(&format!(" {}", took.as_millis()));
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::domain_from;

    /// Stock's order (sweep W, D9): a dotted $HOST or $HOSTNAME (the
    /// longer), else the host's own full name; only legal characters.
    #[test]
    fn domain_as_stock_finds_it() {
        let s = |v: &str| Some(v.to_string());
        let never = || -> Option<String> { panic!("not asked") };
        assert_eq!(
            domain_from(s("b1.example.com"), None, never),
            s("example.com")
        );
        assert_eq!(
            domain_from(s("short"), s("b1.lab.example.com"), never),
            s("lab.example.com")
        );
        assert_eq!(
            domain_from(s("b1.x.org"), s("b1.lab.x.org"), never),
            s("lab.x.org")
        );
        assert_eq!(
            domain_from(s("short"), None, || s("me.corp.net")),
            s("corp.net")
        );
        assert_eq!(domain_from(None, None, || s("nodot")), None);
        assert_eq!(domain_from(s("bad_name.example.com"), None, never), None);
        assert_eq!(domain_from(s("trailing."), None, never), None);
    }
}
