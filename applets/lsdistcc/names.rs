//! Host names for `lsdistcc` and their DNS lookups (facts §6).
//!
//! Names come from the operand list, or from a `%d` format instantiated for
//! 1, 2, 3, ... (at most 500). Lookups run on helper threads through the
//! system resolver (`getaddrinfo`, via `ToSocketAddrs`), IPv4 only; each
//! result comes back on a channel and wakes the probe loop. For a format,
//! `1 + overlap` lookups run ahead and results are released in index order,
//! so "stop after more than `gap` misses" means the same thing it does in
//! stock; an explicit list is released in list order too. A lookup that has not answered after 5 tries' worth of `-h` time is
//! a miss (the thread is abandoned; the resolver does its own retries).

use crossbeam_channel::{Receiver, Sender};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most names made from a format.
pub const MAX_GENERATED: usize = 500;
/// Most lookups in flight for an explicit host list.
const MAX_PARALLEL_LIST: usize = 64;
/// Tries of `-h` milliseconds before a lookup counts as a miss.
const DNS_TRIES: u32 = 5;

/// A finished lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Position in the list (or the `%d` number).
    pub index: usize,
    /// The name as it will be printed.
    pub name: String,
    /// Its first IPv4 address, or `None` when it did not resolve.
    pub addr: Option<Ipv4Addr>,
}

enum Source {
    List(Vec<String>),
    Format(String),
}

/// Drives the lookups; owned by the probe loop.
pub struct Names {
    source: Source,
    window: usize,
    gap: u32,
    try_time: Duration,
    next_index: usize,
    started: BTreeMap<usize, (String, Instant)>,
    done: BTreeMap<usize, Lookup>,
    next_release: usize,
    misses: u32,
    exhausted: bool,
    tx: Sender<Lookup>,
    rx: Receiver<Lookup>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

/// Instantiates a printf-style format with `%d` (also `%Nd`, `%0Nd`, `%%`).
pub fn instantiate(format: &str, n: usize) -> String {
    let mut out = String::new();
    let mut rest = format;
    let mut used = false;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let spec = &rest[pos + 1..];
        if let Some(after) = spec.strip_prefix('%') {
            out.push('%');
            rest = after;
            continue;
        }
        let digits = spec.bytes().take_while(u8::is_ascii_digit).count();
        if !used && spec[digits..].starts_with('d') {
            let width: usize = spec[..digits].parse().unwrap_or(0);
            if spec.starts_with('0') {
                out.push_str(&format!("{n:0width$}"));
            } else {
                out.push_str(&format!("{n:width$}"));
            }
            used = true;
            rest = &spec[digits + 1..];
        } else {
            out.push('%');
            rest = spec;
        }
    }
    out.push_str(rest);
    out
}

impl Names {
    /// Lookups for a format (`Some`) or for `hosts`; `wake` nudges the loop
    /// when a result is ready.
    pub fn new(
        format: Option<&str>,
        hosts: Vec<String>,
        overlap: u32,
        gap: u32,
        try_ms: u64,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Names {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (source, window) = match format {
            Some(f) => (Source::Format(f.to_string()), 1 + overlap as usize),
            None => (Source::List(hosts), MAX_PARALLEL_LIST),
        };
        let mut names = Names {
            source,
            window: window.max(1),
            gap,
            try_time: Duration::from_millis(try_ms.max(1)) * DNS_TRIES,
            next_index: 0,
            started: BTreeMap::new(),
            done: BTreeMap::new(),
            next_release: 0,
            misses: 0,
            exhausted: false,
            tx,
            rx,
            wake,
        };
        names.fill();
        names
    }

    fn name_at(&self, index: usize) -> Option<String> {
        match &self.source {
            Source::List(hosts) => hosts.get(index).cloned(),
            Source::Format(f) if index < MAX_GENERATED => Some(instantiate(f, index + 1)),
            Source::Format(_) => None,
        }
    }

    /// Starts lookups until the window is full.
    fn fill(&mut self) {
        while !self.exhausted && self.started.len() < self.window {
            let Some(name) = self.name_at(self.next_index) else {
                self.exhausted = true;
                break;
            };
            let index = self.next_index;
            self.next_index += 1;
            self.started.insert(index, (name.clone(), Instant::now()));
            let tx = self.tx.clone();
            let wake = Arc::clone(&self.wake);
            let spawned = std::thread::Builder::new()
                .name("lsdistcc-dns".into())
                .spawn(move || {
                    let addr = resolve(&name);
                    let _ = tx.send(Lookup { index, name, addr });
                    wake();
                });
            if spawned.is_err() {
                // No thread: count the name as unresolved rather than hang.
                let name = self
                    .started
                    .remove(&index)
                    .map(|(n, _)| n)
                    .unwrap_or_default();
                self.done.insert(
                    index,
                    Lookup {
                        index,
                        name,
                        addr: None,
                    },
                );
            }
        }
    }

    /// Takes finished and timed-out lookups, in release order.
    pub fn collect(&mut self, now: Instant) -> Vec<Lookup> {
        while let Ok(l) = self.rx.try_recv() {
            if self.started.remove(&l.index).is_some() {
                self.done.insert(l.index, l);
            }
        }
        let expired: Vec<usize> = self
            .started
            .iter()
            .filter(|(_, (_, t))| now.duration_since(*t) >= self.try_time)
            .map(|(i, _)| *i)
            .collect();
        for index in expired {
            if let Some((name, _)) = self.started.remove(&index) {
                self.done.insert(
                    index,
                    Lookup {
                        index,
                        name,
                        addr: None,
                    },
                );
            }
        }
        let mut out = Vec::new();
        let generated = matches!(self.source, Source::Format(_));
        // Released in list order, so "the first host" (-m) is well defined;
        // a slow name delays the ones after it by its DNS timeout at most.
        while let Some(lookup) = self.done.remove(&self.next_release) {
            self.next_release = lookup.index + 1;
            if lookup.addr.is_none() && generated {
                self.misses += 1;
                if self.misses > self.gap {
                    self.stop();
                    out.push(lookup);
                    return out;
                }
            }
            out.push(lookup);
        }
        self.fill();
        out
    }

    /// Stops making names; lookups in flight are forgotten.
    pub fn stop(&mut self) {
        self.exhausted = true;
        self.started.clear();
        self.done.clear();
    }

    /// Whether every lookup has been released.
    pub fn finished(&self) -> bool {
        self.exhausted && self.started.is_empty() && self.done.is_empty()
    }

    /// When the oldest lookup in flight times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.started.values().map(|(_, t)| *t + self.try_time).min()
    }
}

/// The first IPv4 address of `name`, through the system resolver.
pub fn resolve(name: &str) -> Option<Ipv4Addr> {
    if name.parse::<std::net::IpAddr>().is_err() {
        distcc::name_service::use_builtin_sources();
    }
    (name, 0u16).to_socket_addrs().ok()?.find_map(|a| match a {
        SocketAddr::V4(v4) => Some(*v4.ip()),
        SocketAddr::V6(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(instantiate("distcc%d", 7), "distcc7");
        assert_eq!(instantiate("10.0.0.%d", 12), "10.0.0.12");
        assert_eq!(instantiate("h%03d.x", 5), "h005.x");
        assert_eq!(instantiate("a%%b%d", 1), "a%b1");
        assert_eq!(instantiate("plain", 1), "plain");
    }

    fn drain(names: &mut Names) -> Vec<Lookup> {
        let mut all = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !names.finished() && Instant::now() < deadline {
            all.extend(names.collect(Instant::now()));
            std::thread::sleep(Duration::from_millis(5));
        }
        all
    }

    #[test]
    fn format_stops_after_the_gap() {
        // 127.0.0.1 .. 127.0.0.255 resolve, 127.0.0.256 does not.
        let mut names = Names::new(Some("127.0.0.%d"), Vec::new(), 3, 0, 500, Arc::new(|| {}));
        let all = drain(&mut names);
        assert_eq!(all.len(), 256);
        assert!(all[..255].iter().all(|l| l.addr.is_some()));
        assert_eq!(all[254].addr, Some(Ipv4Addr::new(127, 0, 0, 255)));
        assert_eq!(all[255].addr, None);
        assert!(all.windows(2).all(|w| w[0].index + 1 == w[1].index));
    }

    #[test]
    fn list_resolves_every_name() {
        let hosts = vec!["127.0.0.9".into(), "no-such-host.invalid".into()];
        let mut names = Names::new(None, hosts, 1, 0, 500, Arc::new(|| {}));
        let mut all = drain(&mut names);
        all.sort_by_key(|l| l.index);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].addr, Some(Ipv4Addr::new(127, 0, 0, 9)));
        assert_eq!(all[1].addr, None);
    }
}
