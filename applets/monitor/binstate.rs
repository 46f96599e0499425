//! Reading the client state files that monitors watch (facts §4.7).
//!
//! Each running distcc client keeps `$DISTCC_DIR/state/binstate_<pid>`, a
//! native-endian struct of 296 bytes on x86-64: size, magic `0x44494800`,
//! client pid, input file name, host name, slot and phase. This module only
//! reads it; a file that is short, of another size or magic, older than 60 s,
//! or whose client is gone is not a running job.
//!
//! The client's own writer lives with the client; once a shared reader is in
//! the library, this parser should give way to it.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// Size of the struct on x86-64.
pub const STRUCT_SIZE: usize = 296;
/// The magic number (`"\0HID"` read little-endian).
pub const MAGIC: u64 = 0x4449_4800;
/// Files older than this are stale.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// What a client is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// 0: starting.
    Startup,
    /// 1: waiting for a slot.
    Blocked,
    /// 2: connecting.
    Connect,
    /// 3: running the preprocessor.
    Preprocess,
    /// 4: sending the request.
    Send,
    /// 5: waiting for the compile.
    Compile,
    /// 6: receiving the result.
    Receive,
    /// 7: finished.
    Done,
}

impl Phase {
    /// The phase for its number in the file.
    pub fn from_number(n: u32) -> Option<Phase> {
        Some(match n {
            0 => Phase::Startup,
            1 => Phase::Blocked,
            2 => Phase::Connect,
            3 => Phase::Preprocess,
            4 => Phase::Send,
            5 => Phase::Compile,
            6 => Phase::Receive,
            7 => Phase::Done,
            _ => return None,
        })
    }

    /// The name stock monitors show.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Startup => "Startup",
            Phase::Blocked => "Blocked",
            Phase::Connect => "Connect",
            Phase::Preprocess => "Preprocess",
            Phase::Send => "Send",
            Phase::Compile => "Compile",
            Phase::Receive => "Receive",
            Phase::Done => "Done",
        }
    }
}

/// One running job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The client's pid.
    pub pid: u64,
    /// Input file (basename).
    pub file: String,
    /// Host name as in the host list.
    pub host: String,
    /// Slot on that host.
    pub slot: i32,
    /// Current phase.
    pub phase: Phase,
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(word)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(word)
}

/// Parses one file's bytes; `None` when size, magic or phase are wrong.
pub fn parse(bytes: &[u8]) -> Option<Job> {
    if bytes.len() != STRUCT_SIZE
        || u64_at(bytes, 0) != STRUCT_SIZE as u64
        || u64_at(bytes, 8) != MAGIC
    {
        return None;
    }
    Some(Job {
        pid: u64_at(bytes, 0x10),
        file: c_string(&bytes[0x18..0x98]),
        host: c_string(&bytes[0x98..0x118]),
        slot: u32_at(bytes, 0x118) as i32,
        phase: Phase::from_number(u32_at(bytes, 0x11c))?,
    })
}

/// Whether process `pid` exists.
fn alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Reads every current job in `state_dir`. Files of dead clients are
/// removed, as stock monitors do; other bad files are skipped.
pub fn read_dir(state_dir: &Path, now: SystemTime) -> std::io::Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for entry in std::fs::read_dir(state_dir)?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("binstate_"))
            .and_then(|p| p.parse::<u64>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let fresh = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() <= MAX_AGE);
        if !fresh {
            continue;
        }
        if !alive(pid) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Some(job) = parse(&bytes).filter(|j| j.pid == pid) {
            jobs.push(job);
        }
    }
    jobs.sort_by(|a, b| (&a.host, a.slot, a.pid).cmp(&(&b.host, b.slot, b.pid)));
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(pid: u64, file: &str, host: &str, slot: i32, phase: u32) -> Vec<u8> {
        let mut b = vec![0u8; STRUCT_SIZE];
        b[0..8].copy_from_slice(&(STRUCT_SIZE as u64).to_ne_bytes());
        b[8..16].copy_from_slice(&MAGIC.to_ne_bytes());
        b[16..24].copy_from_slice(&pid.to_ne_bytes());
        b[0x18..0x18 + file.len()].copy_from_slice(file.as_bytes());
        b[0x98..0x98 + host.len()].copy_from_slice(host.as_bytes());
        b[0x118..0x11c].copy_from_slice(&slot.to_ne_bytes());
        b[0x11c..0x120].copy_from_slice(&phase.to_ne_bytes());
        b
    }

    #[test]
    fn parses_and_rejects() {
        let job = parse(&image(42, "hello.c", "10.0.0.1", 2, 5)).unwrap();
        assert_eq!(job.pid, 42);
        assert_eq!(
            (job.file.as_str(), job.host.as_str()),
            ("hello.c", "10.0.0.1")
        );
        assert_eq!((job.slot, job.phase), (2, Phase::Compile));
        let mut bad = image(42, "a.c", "h", 0, 5);
        bad[8] ^= 1;
        assert_eq!(parse(&bad), None);
        assert_eq!(parse(&image(42, "a.c", "h", 0, 9)), None);
        assert_eq!(parse(&image(42, "a.c", "h", 0, 5)[..280]), None);
        assert_eq!(parse(&[]), None);
    }
}
