//! Finding the host list and choosing a host: slot locks and backoff.
//!
//! The list comes from `DISTCC_HOSTS` (even empty), else
//! `$DISTCC_DIR/hosts`, else `/etc/distcc/hosts` (facts §4.2). A host is
//! chosen as distcc 3.4 does (facts §4.7): for slot 0, 1, 2, ... and within a
//! slot in list order, the first host whose lock file `cpu_<key>_<slot>` can
//! be locked wins; `,down` hosts, hosts with a fresh backoff file and hosts
//! that already failed in this run are skipped. When every slot is busy the
//! client sleeps `DISTCC_PAUSE_TIME_MSEC` and tries again (bounded).
//! Local jobs take `cpu_localhost_<n>` slots from the `--localslots` or
//! `--localslots_cpp` pool.

use distcc::env::ClientEnv;
use distcc::hosts::{self, HostList, HostSpec};
use distcc::lock::{self, SlotLock};
use distcc::state::{Phase, StateFile};
use distcc::{Error, Kind, Result};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest a job waits for a free slot before giving up.
const MAX_SLOT_WAIT: Duration = Duration::from_secs(24 * 3600);
/// Shortest pause between rounds, so `DISTCC_PAUSE_TIME_MSEC=0` does not burn a CPU.
const MIN_PAUSE: Duration = Duration::from_millis(1);

/// Where the host list was found and its text.
pub struct HostText {
    /// `$DISTCC_HOSTS` or the file path.
    pub source: String,
    /// The list, as bytes (stock reads bytes; the list need not be UTF-8).
    pub text: Vec<u8>,
}

/// Reads the host list text, or `None` when no source exists.
pub fn host_text(env: &ClientEnv) -> Option<HostText> {
    if let Some(h) = &env.hosts {
        return Some(HostText {
            source: "$DISTCC_HOSTS".into(),
            text: h.as_bytes().to_vec(),
        });
    }
    for path in [env.dir.join("hosts"), "/etc/distcc/hosts".into()] {
        if let Ok(text) = read_hosts_file(&path) {
            return Some(HostText {
                source: path.display().to_string(),
                text,
            });
        }
    }
    None
}

/// A hosts file's text: as many bytes as its size says, as stock reads it,
/// so a link to a device (`/dev/zero`) or a FIFO reads as empty instead of
/// holding the client (sweep W, D8).
fn read_hosts_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let size = file.metadata()?.len();
    let mut text = Vec::with_capacity(size.min(1 << 20) as usize);
    file.take(size).read_to_end(&mut text)?;
    Ok(text)
}

/// Loads and parses the host list (shuffled when `--randomize`).
/// `Ok(None)` when no source is set at all.
pub fn load(env: &ClientEnv) -> Result<Option<HostList>> {
    let Some(ht) = host_text(env) else {
        return Ok(None);
    };
    let mut list = hosts::parse_bytes(&ht.text, &ht.source)?;
    if list.randomize {
        list.shuffle(u64::from(std::process::id()));
    }
    if list.zeroconf {
        log::warn!(
            "+zeroconf in {} is not supported by this distcc; ignored",
            ht.source
        );
    }
    if list.hosts.iter().any(|h| h.auth.is_some()) {
        log::warn!("',auth' (GSS-API) hosts are not supported by this distcc; they are skipped");
    }
    if list.hosts.is_empty() {
        return Err(Error::new(
            Kind::NoHosts,
            format!("{} contained no hosts; can't distribute work", ht.source),
        ));
    }
    Ok(Some(list))
}

/// A chosen host and the slot lock held for it.
pub struct Picked {
    /// The host.
    pub host: HostSpec,
    /// The lock (absent only when the lock directory is unusable).
    pub lock: Option<SlotLock>,
    /// The slot number.
    pub slot: u32,
}

/// `$DISTCC_DIR/lock`, created on the first call of the process (the
/// answer is kept: a job asks several times), or `None` if unusable.
fn lock_dir(env: &ClientEnv) -> Option<std::path::PathBuf> {
    static DIR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = env.lock_dir();
        let why = if !env.dir_usable() {
            format!(
                "{} does not exist",
                env.dir.parent().unwrap_or(&env.dir).display()
            )
        } else {
            match lock::ensure_dir(&dir).and_then(|()| lock::writable_dir(&dir)) {
                Ok(()) => return Some(dir),
                Err(e) => format!("cannot use lock directory: {e}"),
            }
        };
        // Stock then compiles everything here. The hosts' limits are kept
        // instead in a directory of this user's own (shared with this
        // user's other distcc processes, not with other users').
        match lock::private_dir() {
            Ok(private) => {
                log::warn!("{why}; keeping slot limits in {}", private.display());
                Some(private)
            }
            Err(e) => {
                log::warn!("{why}, nor {e}; running without slot limits");
                None
            }
        }
    })
    .clone()
}

/// Picks and locks a host, skipping those whose lock keys are in `excluded`.
/// `Ok(None)` when no host is usable (all down, backed off or excluded).
pub fn pick(
    env: &ClientEnv,
    list: &HostList,
    excluded: &[String],
    state: &mut StateFile,
) -> Result<Option<Picked>> {
    let dir = lock_dir(env);
    let usable: Vec<&HostSpec> = list
        .hosts
        .iter()
        .filter(|h| !h.down && h.auth.is_none())
        .filter(|h| !excluded.contains(&h.lock_key()))
        .filter(|h| {
            dir.as_deref()
                .is_none_or(|d| !lock::is_backed_off(d, &h.lock_key(), env.backoff_period))
        })
        .collect();
    if usable.is_empty() {
        return Ok(None);
    }
    let Some(dir) = dir else {
        // No locks (warned once): the hosts share the jobs in proportion to
        // their limits, as the locks would share them on average, instead
        // of every job going to the first host.
        return Ok(Some(Picked {
            host: spread(&usable, unlocked_seed()).clone(),
            lock: None,
            slot: 0,
        }));
    };
    let max_slots = usable.iter().map(|h| h.slots).max().unwrap_or(1);
    let deadline = Instant::now() + MAX_SLOT_WAIT;
    let mut blocked = false;
    loop {
        for slot in 0..max_slots {
            for h in usable.iter().filter(|h| h.slots > slot) {
                let lock = match lock::try_lock(&dir, &h.lock_key(), slot) {
                    Ok(Some(l)) => Some(l),
                    Ok(None) => continue,
                    Err(e) => {
                        // A lock file left by another user (a root build in
                        // the same DISTCC_DIR), or not a file: the job goes
                        // on without a slot limit rather than failing.
                        log::warn!("{e}; running without slot limits");
                        None
                    }
                };
                return Ok(Some(Picked {
                    host: (*h).clone(),
                    lock,
                    slot,
                }));
            }
        }
        if !blocked {
            blocked = true;
            let _ = state.phase(Phase::Blocked);
            log::debug!("all hosts busy; waiting for a slot");
        }
        if Instant::now() > deadline {
            return Err(Error::new(Kind::Busy, "waited too long for a free slot"));
        }
        std::thread::sleep(env.pause_time.max(MIN_PAUSE));
    }
}

/// A host of `usable` chosen with a chance proportional to its slots
/// (`seed` picks).
fn spread<'h>(usable: &[&'h HostSpec], seed: u64) -> &'h HostSpec {
    let total: u64 = usable.iter().map(|h| u64::from(h.slots.max(1))).sum();
    let mut at = seed % total.max(1);
    for h in usable {
        let w = u64::from(h.slots.max(1));
        if at < w {
            return h;
        }
        at -= w;
    }
    usable[0]
}

/// A seed that differs between clients started together (pid and clock).
fn unlocked_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(std::process::id()) << 32 ^ u64::from(nanos)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        >> 16
}

/// Takes a local slot from a pool of `slots` (`--localslots` or
/// `--localslots_cpp`), waiting if all are busy. `None` if locks are unusable.
pub fn lock_local(env: &ClientEnv, slots: u32, state: &mut StateFile) -> Result<Option<SlotLock>> {
    let Some(dir) = lock_dir(env) else {
        return Ok(None);
    };
    lock_local_in(&dir, slots.max(1), env.pause_time, state)
}

fn lock_local_in(
    dir: &Path,
    slots: u32,
    pause: Duration,
    state: &mut StateFile,
) -> Result<Option<SlotLock>> {
    let deadline = Instant::now() + MAX_SLOT_WAIT;
    let mut blocked = false;
    loop {
        for slot in 0..slots {
            match lock::try_lock(dir, "localhost", slot) {
                Ok(Some(l)) => return Ok(Some(l)),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("{e}; running without slot limits");
                    return Ok(None);
                }
            }
        }
        if !blocked {
            blocked = true;
            let _ = state.phase(Phase::Blocked);
        }
        if Instant::now() > deadline {
            return Err(Error::new(Kind::Busy, "waited too long for a local slot"));
        }
        std::thread::sleep(pause.max(MIN_PAUSE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without locks the jobs are shared by the hosts in proportion to
    /// their limits (sweep N, D5: every job went to the first host).
    #[test]
    fn unlocked_jobs_spread_by_limits() {
        let list = distcc::hosts::parse("a/1 b/3", "test").unwrap();
        let usable: Vec<&HostSpec> = list.hosts.iter().collect();
        let mut on_b = 0;
        for seed in 0..4000u64 {
            if spread(&usable, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16).name() == "b" {
                on_b += 1;
            }
        }
        assert!(
            (2800..3200).contains(&on_b),
            "{on_b} of 4000 on the /3 host"
        );
        assert_ne!(unlocked_seed(), 0);
    }
}
