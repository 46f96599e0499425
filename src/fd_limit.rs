//! The process's limit on open descriptors (`RLIMIT_NOFILE`): raised once
//! at start by the programs that hold many sockets (the daemon, lsdistcc),
//! and read where they size their work by it.

/// Most the soft limit is raised to (a hard limit may be in the millions).
const RAISE_CAP: u64 = 65_536;

/// The soft limit now, if it can be read.
pub fn soft() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit into a local struct.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

/// Raises the soft limit towards the hard one (at most [`RAISE_CAP`]) and
/// returns the soft limit in force after, if it can be read.
pub fn raise() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        let wanted = lim.rlim_max.min(RAISE_CAP).max(lim.rlim_cur);
        if wanted > lim.rlim_cur {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Some(wanted);
            }
        }
    }
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn raising_never_lowers() {
        let before = super::soft().unwrap();
        let after = super::raise().unwrap();
        assert!(after >= before);
        assert_eq!(super::soft(), Some(after));
    }
}
