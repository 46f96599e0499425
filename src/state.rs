//! Client state files `$DISTCC_DIR/state/binstate_<pid>`: writer and reader.
//!
//! distcc 3.4 clients describe their current job in a 296-byte native-endian
//! struct (facts §4.7) so `distccmon-text`/`distccmon-gnome` can show who
//! compiles what where. We write the same layout, so stock monitors show our
//! jobs, and read it, so our monitor shows stock clients' jobs.
//!
//! Layout (x86-64): `size_t struct_size` = 296, `unsigned long magic` =
//! 0x44494800, `unsigned long cpid`, `char file[128]`, `char host[128]`,
//! `int slot`, `enum phase`, 8 bytes of pointer (written as zero).
//!
//! Reader API for monitors: [`read_state_dir`] returns the live jobs, sorted
//! by pid, and deletes files of dead clients and files older than 60 s, as
//! distccmon does.
//!
//! Spare files: a client that ends renames its state file to one of
//! [`SPARE_SLOTS`] names `spare_binstate_<k>` instead of deleting it, and the
//! next client renames a spare to its own name instead of creating a file.
//! Allocating and freeing an inode per job is the dearest part of a
//! client's own work on some file systems (ext4 without a journal scans past
//! every recently freed inode: about a third of our client's CPU per job
//! there). Monitors, ours and stock's, only read `binstate_*` names; a spare
//! is never shown. A spare is claimed by renaming it to a name only this
//! process uses, so two clients can never share one.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Size of the record.
pub const STATE_SIZE: usize = 296;
/// Magic number (`"\0HID"` read as a little-endian word).
pub const STATE_MAGIC: u64 = 0x4449_4800;
/// Files older than this are stale (distccmon's rule).
pub const STALE_AGE: Duration = Duration::from_secs(60);
const NAME_LEN: usize = 128;
/// How many parked state files a state directory keeps for reuse.
pub const SPARE_SLOTS: u32 = 16;
/// How many spare names one client tries when claiming or parking.
const SPARE_TRIES: u32 = 4;
/// Prefix of parked state files (never `binstate_`, so monitors skip them).
const SPARE_PREFIX: &str = "spare_binstate_";

/// The phase of a client job (`enum dcc_phase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// 5: the server compiles.
    Compile,
    /// 6: receiving the reply.
    Receive,
    /// 7: finished.
    Done,
}

impl Phase {
    /// The number stored in the file.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The phase for a stored number.
    pub fn from_code(code: u32) -> Option<Phase> {
        Some(match code {
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

    /// The name distccmon-text prints.
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

/// One job as recorded in a state file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    /// The client's pid.
    pub pid: u64,
    /// Input file basename (at most 127 bytes kept).
    pub file: Vec<u8>,
    /// Host name (at most 127 bytes kept).
    pub host: Vec<u8>,
    /// Slot number.
    pub slot: i32,
    /// Current phase.
    pub phase: Phase,
}

fn put_name(out: &mut [u8], name: &[u8]) {
    let n = name.len().min(NAME_LEN - 1);
    out[..n].copy_from_slice(&name[..n]);
}

fn get_name(field: &[u8]) -> Vec<u8> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field[..end].to_vec()
}

/// Encodes a record in stock's layout.
pub fn encode(job: &JobState) -> [u8; STATE_SIZE] {
    let mut b = [0u8; STATE_SIZE];
    b[0..8].copy_from_slice(&(STATE_SIZE as u64).to_ne_bytes());
    b[8..16].copy_from_slice(&STATE_MAGIC.to_ne_bytes());
    b[16..24].copy_from_slice(&job.pid.to_ne_bytes());
    put_name(&mut b[24..24 + NAME_LEN], &job.file);
    put_name(&mut b[152..152 + NAME_LEN], &job.host);
    b[280..284].copy_from_slice(&job.slot.to_ne_bytes());
    b[284..288].copy_from_slice(&job.phase.code().to_ne_bytes());
    b
}

/// Decodes a record; `None` if size, magic or phase do not match.
pub fn decode(b: &[u8]) -> Option<JobState> {
    if b.len() != STATE_SIZE {
        return None;
    }
    let word = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    if word(0) != STATE_SIZE as u64 || word(8) != STATE_MAGIC {
        return None;
    }
    let slot = i32::from_ne_bytes(b[280..284].try_into().ok()?);
    let phase = Phase::from_code(u32::from_ne_bytes(b[284..288].try_into().ok()?))?;
    Some(JobState {
        pid: word(16),
        file: get_name(&b[24..24 + NAME_LEN]),
        host: get_name(&b[152..152 + NAME_LEN]),
        slot,
        phase,
    })
}

/// The state file of one client process; removed when dropped.
///
/// The directory is created and the file opened on the first write; every
/// later phase overwrites the record in place (`pwrite` at offset 0 of the
/// fd kept open). The record has a fixed size, so the file is never
/// truncated: on ext4 a truncate or a create-with-`O_TRUNC` of a file with
/// data forces block allocation and writeback at close (`auto_da_alloc`),
/// which cost more than the rest of the client's own work.
pub struct StateFile {
    /// None: no state file is kept (no usable directory for it).
    path: Option<PathBuf>,
    job: JobState,
    file: Option<File>,
}

impl StateFile {
    /// Prepares `<dir>/binstate_<pid>` (the directory is created on first write).
    pub fn new(dir: &Path) -> StateFile {
        StateFile::in_dir(Some(dir))
    }

    /// Like [`StateFile::new`]; with no directory, nothing is ever written.
    pub fn in_dir(dir: Option<&Path>) -> StateFile {
        let pid = std::process::id();
        StateFile {
            path: dir.map(|d| d.join(format!("binstate_{pid}"))),
            job: JobState {
                pid: u64::from(pid),
                file: Vec::new(),
                host: Vec::new(),
                slot: 0,
                phase: Phase::Startup,
            },
            file: None,
        }
    }

    /// Sets the file and host shown by monitors (call before [`StateFile::phase`]).
    pub fn job(&mut self, file: &[u8], host: &str, slot: u32) {
        self.job.file = file.to_vec();
        self.job.host = host.as_bytes().to_vec();
        self.job.slot = slot as i32;
    }

    /// Records a new phase, rewriting the file. Failures are ignored by
    /// callers (monitoring must never break a compile) but returned.
    pub fn phase(&mut self, phase: Phase) -> Result<()> {
        self.job.phase = phase;
        let Some(path) = &self.path else {
            return Ok(());
        };
        let record = encode(&self.job);
        if self.file.is_none() {
            // A reused spare is written before it takes our name; a new
            // file is written below like every later phase.
            if let Some(f) = claim_spare(path, &record) {
                self.file = Some(f);
                return Ok(());
            }
            self.file = Some(open_state(path)?);
        }
        let Some(f) = &self.file else {
            return Ok(());
        };
        f.write_all_at(&record, 0)
            .map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// The path of the file (None when none is kept).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Opens (creating it and its directory if need be) the state file `path`.
fn open_state(path: &Path) -> Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .open(path)
    };
    let f = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            open()
        }
        other => other,
    };
    f.map_err(|e| Error::io(format!("open {}", path.display()), e))
}

/// The spare names a process tries, starting at a place its pid picks (so
/// clients running at once mostly try different ones).
fn spare_names(dir: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    let start = std::process::id();
    (0..SPARE_TRIES).map(move |i| dir.join(format!("{SPARE_PREFIX}{}", (start + i) % SPARE_SLOTS)))
}

/// Takes a parked state file for `path`: renames a spare to a name only
/// this process uses, writes `record` into it, and gives it `path`'s name.
/// None when no spare could be taken (the caller creates the file).
fn claim_spare(path: &Path, record: &[u8]) -> Option<File> {
    let dir = path.parent()?;
    // Not a `binstate_` name: a monitor must not judge the old record.
    let mut claimed = std::ffi::OsString::from("claim_");
    claimed.push(path.file_name()?);
    let claimed = dir.join(claimed);
    for spare in spare_names(dir) {
        if std::fs::rename(&spare, &claimed).is_err() {
            continue;
        }
        let opened = OpenOptions::new().write(true).open(&claimed);
        let file = opened.and_then(|f| f.write_all_at(record, 0).map(|()| f));
        match file.and_then(|f| std::fs::rename(&claimed, path).map(|()| f)) {
            Ok(f) => return Some(f),
            Err(_) => {
                // Not ours to write (another user's, say): drop it.
                let _ = std::fs::remove_file(&claimed);
                return None;
            }
        }
    }
    None
}

/// Parks the state file `path` under a free spare name for the next client
/// (never replacing a spare); removes it when every name tried is taken or
/// the file system cannot rename without replacing.
fn park(path: &Path) {
    if let Some(dir) = path.parent() {
        for spare in spare_names(dir) {
            match rename_noreplace(path, &spare) {
                Ok(()) => return,
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(_) => break,
            }
        }
    }
    let _ = std::fs::remove_file(path);
}

/// `rename` that fails with EEXIST instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(from.as_os_str().as_bytes())?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both are NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        // Never written, nothing to remove.
        if self.file.take().is_some()
            && let Some(path) = &self.path
        {
            park(path);
        }
    }
}

fn pid_alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Reads every `binstate_*` file in `dir` (a `$DISTCC_DIR/state`).
///
/// Returns the jobs of live clients sorted by pid. Files that are not
/// 296-byte records with the right magic are skipped; files of dead pids or
/// older than [`STALE_AGE`] are deleted, as distccmon does. A missing
/// directory is an empty list.
pub fn read_state_dir(dir: &Path) -> Result<Vec<JobState>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("read {}", dir.display()), e)),
    };
    let now = SystemTime::now();
    let mut jobs = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(b"binstate_") {
            continue;
        }
        let path = entry.path();
        // Age first, whatever the file holds (stock's order: an old file
        // of garbage goes too), and never more than a record is read: a
        // huge or endless file (a link to /dev/zero) cannot hold the
        // monitor (sweep W, D8).
        let old = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AGE);
        if old {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let mut bytes = Vec::with_capacity(STATE_SIZE + 1);
        // Not blocked by a FIFO planted under the name.
        let open = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&path);
        let read = open.and_then(|f| {
            use std::io::Read;
            f.take(STATE_SIZE as u64 + 1).read_to_end(&mut bytes)
        });
        if read.is_err() {
            continue;
        }
        let Some(job) = decode(&bytes) else {
            continue;
        };
        if !pid_alive(job.pid) {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        jobs.push(job);
    }
    jobs.sort_by_key(|j| j.pid);
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_stock() {
        let job = JobState {
            pid: 0x1234,
            file: b"hello.c".to_vec(),
            host: b"127.0.0.1".to_vec(),
            slot: 3,
            phase: Phase::Compile,
        };
        let b = encode(&job);
        assert_eq!(&b[0..8], &296u64.to_le_bytes());
        assert_eq!(&b[8..12], &[0x00, 0x48, 0x49, 0x44]);
        assert_eq!(&b[0x18..0x1f], b"hello.c");
        assert_eq!(&b[0x98..0xa1], b"127.0.0.1");
        assert_eq!(&b[0x118..0x11c], &3i32.to_le_bytes());
        assert_eq!(&b[0x11c..0x120], &5u32.to_le_bytes());
        assert_eq!(decode(&b), Some(job));
        assert_eq!(decode(&b[..280]), None);
        let mut bad = b;
        bad[8] = 1;
        assert_eq!(decode(&bad), None);
    }

    #[test]
    fn long_names_are_truncated_and_terminated() {
        let job = JobState {
            pid: 1,
            file: vec![b'a'; 300],
            host: vec![],
            slot: 0,
            phase: Phase::Startup,
        };
        let back = decode(&encode(&job)).unwrap();
        assert_eq!(back.file.len(), 127);
    }

    #[test]
    fn writer_and_reader() {
        let dir = std::env::temp_dir().join(format!("distcc-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut s = StateFile::new(&dir);
            s.job(b"averyveryverylongname.c", "a-long-host-name", 1);
            s.phase(Phase::Compile).unwrap();
            // Later phases overwrite the record in place: one record, the latest.
            s.job(b"x.c", "h", 1);
            s.phase(Phase::Send).unwrap();
            let bytes = std::fs::read(s.path().unwrap()).unwrap();
            assert_eq!(bytes.len(), STATE_SIZE);
            assert_eq!(decode(&bytes).unwrap().host, b"h");
            std::fs::write(dir.join("binstate_999999999"), [0u8; 10]).unwrap();
            let dead = JobState {
                pid: 0x7fff_fff0,
                file: b"d.c".to_vec(),
                host: b"h".to_vec(),
                slot: 0,
                phase: Phase::Compile,
            };
            std::fs::write(dir.join("binstate_2147483632"), encode(&dead)).unwrap();
            let jobs = read_state_dir(&dir).unwrap();
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].file, b"x.c");
            assert_eq!(jobs[0].phase, Phase::Send);
            assert!(!dir.join("binstate_2147483632").exists());
        }
        assert!(
            !dir.join(format!("binstate_{}", std::process::id()))
                .exists()
        );
        assert!(read_state_dir(&dir.join("nope")).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn inode(p: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).unwrap().ino()
    }

    #[test]
    fn an_ended_clients_file_is_reused_by_the_next() {
        let dir = std::env::temp_dir().join(format!("distcc-spare-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = {
            let mut s = StateFile::new(&dir);
            s.job(b"a.c", "h1", 0);
            s.phase(Phase::Compile).unwrap();
            inode(s.path().unwrap())
        };
        // Parked, not shown, not deleted by a monitor.
        assert!(read_state_dir(&dir).unwrap().is_empty());
        let spares: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(spares.len(), 1, "{spares:?}");
        assert!(
            spares[0]
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(SPARE_PREFIX)
        );
        {
            let mut s = StateFile::new(&dir);
            s.job(b"b.c", "h2", 1);
            s.phase(Phase::Send).unwrap();
            let path = s.path().unwrap().to_path_buf();
            assert_eq!(inode(&path), first, "the spare is reused");
            let jobs = read_state_dir(&dir).unwrap();
            assert_eq!(jobs.len(), 1);
            assert_eq!(
                (jobs[0].file.as_slice(), jobs[0].phase),
                (&b"b.c"[..], Phase::Send)
            );
            // Only our own file and no claim name are left in the directory.
            let names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert_eq!(names, vec![path.file_name().unwrap().to_owned()]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn parking_never_replaces_a_spare_and_is_bounded() {
        let dir = std::env::temp_dir().join(format!("distcc-spare-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..SPARE_SLOTS {
            std::fs::write(dir.join(format!("{SPARE_PREFIX}{k}")), b"kept").unwrap();
        }
        let path = dir.join("binstate_x");
        std::fs::write(&path, b"mine").unwrap();
        park(&path);
        assert!(!path.exists(), "removed when every spare name is taken");
        let n = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(n, SPARE_SLOTS as usize);
        for k in 0..SPARE_SLOTS {
            assert_eq!(
                std::fs::read(dir.join(format!("{SPARE_PREFIX}{k}"))).unwrap(),
                b"kept"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
