//! Running the compiler process of one job and collecting its output.
//!
//! The compiler is spawned (posix_spawn, see `spawn`) in its own process
//! group with stdin on /dev/null or a pipe carrying the preprocessed source,
//! stdout/stderr on pipes, `cwd` set, the
//! incremented `_DISTCC_SAFEGUARD` and `TMPDIR` pointing into the job
//! directory (facts §5.2 step 7). Pipes instead of stock's temp files save
//! creating and deleting two files per job; the source is handed over as
//! `source_feed` describes (the buffer is neither changed nor freed before
//! the compiler's group is gone). If argv[0] contains a `/` and
//! cannot be executed, its basename is tried, as stock does; if nothing can
//! be executed the job "fails" with wait status 110<<8 and a "failed to
//! exec" message in its stderr.

use super::compiler::Config;
use super::runner::JobControl;
use super::source_feed::{Pending, SourceFeed};
use super::spawn::{Spawned, spawn};
use super::spliced::SplicedSource;
use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Most bytes kept of the compiler's stdout and of its stderr; the rest is
/// read and dropped, so a chatty compiler cannot exhaust memory.
const OUTPUT_CAP: usize = 64 * 1024 * 1024;

/// What the compiler did.
pub struct Ran {
    /// The wait status (or 110<<8 if it could not be executed).
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// What the compiler reads on its standard input.
pub enum Input<'a> {
    /// Nothing: /dev/null.
    Null,
    /// These bytes (kept unchanged until `run` returns).
    Bytes(&'a [u8]),
    /// A source received into pipes.
    Spliced(SplicedSource),
}

/// Runs `argv` in `cwd` and waits for it, under `control`, with `input`
/// on its standard input.
pub fn run(
    argv: &[OsString],
    cwd: &Path,
    jobdir: &Path,
    input: Input<'_>,
    cfg: &Config,
    control: &JobControl,
) -> Result<Ran> {
    let mut candidates = vec![argv[0].clone()];
    if let Some(base) = Path::new(&argv[0])
        .file_name()
        .filter(|_| argv[0].as_bytes().contains(&b'/'))
    {
        candidates.push(base.to_os_string());
    }
    let feed = match input {
        Input::Null => SourceFeed::prepare(None),
        Input::Bytes(data) => SourceFeed::prepare(Some(data)),
        Input::Spliced(source) => Ok(SourceFeed::spliced(source)),
    };
    let feed = feed.map_err(|e| Error::io("handing the source to the compiler", e))?;
    let mut last_err = None;
    for program in candidates {
        let child_stdin = feed
            .stdin()
            .map_err(|e| Error::io("handing the source to the compiler", e))?;
        let mut env: Vec<(&str, &std::ffi::OsStr)> = vec![
            ("_DISTCC_SAFEGUARD", std::ffi::OsStr::new(&cfg.safeguard)),
            ("TMPDIR", jobdir.as_os_str()),
        ];
        if let Some(path) = &cfg.path {
            env.push(("PATH", path.as_os_str()));
        }
        // Hold the lock across spawn so a concurrent stop() either happens
        // before (and is seen below) or signals the new group.
        let mut group = control.group.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = match spawn(&program, argv, cwd, &env, child_stdin) {
            Ok(c) => c,
            Err(e) => {
                drop(group);
                last_err = Some(e);
                continue;
            }
        };
        let pid = child.pid;
        *group = Some(pid);
        if control.stopped().is_some() {
            // SAFETY: our child's fresh process group.
            unsafe { libc::kill(-pid, libc::SIGTERM) };
        }
        drop(group);
        let (stdout, stderr) = exchange(&mut child, feed.into_pending());
        let status = wait(child, control)?;
        return Ok(Ran {
            status,
            stdout,
            stderr,
        });
    }
    let err = last_err.map_or_else(|| "unknown error".to_string(), |e| e.to_string());
    // In our log too, as stock logs it: the admin sees which compiler is
    // missing on this server.
    log::error!("failed to exec {}: {err}", argv[0].to_string_lossy());
    let msg = format!(
        "distccd[{}] (dcc_execvp) ERROR: failed to exec {}: {err}\n",
        std::process::id(),
        argv[0].to_string_lossy()
    );
    Ok(Ran {
        status: i32::from(Kind::CompilerMissing.exit_code()) << 8,
        stdout: Vec::new(),
        stderr: msg.into_bytes(),
    })
}

/// Puts what is left of the source (`pending`) into the child's stdin
/// pipe while reading its stdout and stderr, until all three are done.
/// Non-blocking writes, so a compiler that talks before it has read
/// everything cannot deadlock us.
fn exchange(child: &mut Spawned, pending: Option<Pending<'_>>) -> (Vec<u8>, Vec<u8>) {
    let mut outputs = [Vec::new(), Vec::new()];
    let mut stdin = pending;
    let mut pipes: [Option<Box<dyn ReadFd>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
    ];
    let Some(epoll) = Epoll::new() else {
        // Out of descriptors: the compiler's output cannot be collected, so
        // it is stopped rather than left blocked on a full pipe.
        // SAFETY: our child's own process group, not yet reaped.
        unsafe { libc::kill(-child.pid, libc::SIGKILL) };
        let msg = format!(
            "distccd[{}] ERROR: cannot watch the compiler's pipes: {}\n",
            std::process::id(),
            std::io::Error::last_os_error()
        );
        return (Vec::new(), msg.into_bytes());
    };
    let mut leader = watch_exit(child.pid);
    READ_BUFFER.with_borrow_mut(|buf| {
        pump_pipes(
            &epoll,
            &mut stdin,
            &mut pipes,
            &mut leader,
            buf,
            &mut outputs,
        )
    });
    let [out, err] = outputs;
    (out, err)
}

/// A descriptor that becomes readable when the compiler exits (pidfd), so
/// the exchange does not wait for processes it left holding its output
/// pipes; None on kernels without pidfd_open (then they are waited for).
fn watch_exit(pid: i32) -> Option<(OwnedFd, i32)> {
    // SAFETY: pidfd_open on our own child, not yet reaped.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: a descriptor just returned to us.
    Some((unsafe { OwnedFd::from_raw_fd(fd) }, pid))
}

thread_local! {
    /// Each worker's read buffer, allocated once rather than per job.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 32 * 1024]);
}

fn pump_pipes(
    epoll: &Epoll,
    stdin: &mut Option<Pending<'_>>,
    pipes: &mut [Option<Box<dyn ReadFd>>; 2],
    leader: &mut Option<(OwnedFd, i32)>,
    buf: &mut [u8],
    outputs: &mut [Vec<u8>; 2],
) {
    // Tokens: 0 stdin, 1 stdout, 2 stderr, 3 the compiler's exit.
    if let Some(p) = &stdin {
        // Edge-triggered: see source_feed on why level-triggered spins.
        epoll.add(p.fd(), libc::EPOLLOUT | libc::EPOLLET, 0);
    }
    for (i, p) in pipes.iter().enumerate() {
        if let Some(p) = p {
            epoll.add(p.fd(), libc::EPOLLIN, 1 + i as u64);
        }
    }
    if let Some((pidfd, _)) = leader {
        epoll.add(pidfd.as_raw_fd(), libc::EPOLLIN, 3);
    }
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
    // Bounded: each round moves bytes or closes a pipe; the compiler's
    // input and output are finite (and the loop can kill it).
    while stdin.is_some() || pipes.iter().any(Option::is_some) {
        // SAFETY: epoll_wait into our own array.
        let n = unsafe { libc::epoll_wait(epoll.fd.as_raw_fd(), events.as_mut_ptr(), 4, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        for ev in &events[..n as usize] {
            match ev.u64 {
                0 => {
                    let Some(p) = stdin.as_mut() else {
                        continue;
                    };
                    // Done, or EPIPE: the compiler stopped reading (its
                    // status says why).
                    if !matches!(p.advance(), Ok(false)) {
                        *stdin = None;
                    }
                }
                3 => {
                    if let Some((pidfd, pid)) = leader.take() {
                        // The compiler exited: what it left in its group
                        // (holding our pipes open) is killed now. SAFETY:
                        // the leader is not reaped yet (wait() does that),
                        // so the group id is still ours.
                        unsafe { libc::kill(-pid, libc::SIGKILL) };
                        epoll.remove(pidfd.as_raw_fd());
                    }
                }
                t => {
                    let i = (t - 1) as usize;
                    let Some(pipe) = &mut pipes[i] else { continue };
                    let sink = &mut outputs[i];
                    match pipe.read(buf) {
                        Ok(0) => {
                            epoll.remove(pipe.fd());
                            pipes[i] = None;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            epoll.remove(pipe.fd());
                            pipes[i] = None;
                        }
                        Ok(n) => {
                            let keep = n.min(OUTPUT_CAP.saturating_sub(sink.len()));
                            sink.extend_from_slice(&buf[..keep]);
                        }
                    }
                }
            }
        }
    }
}

/// An epoll instance for one exchange.
struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    fn new() -> Option<Epoll> {
        // SAFETY: epoll_create1 returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        // SAFETY: just returned to us.
        (fd >= 0).then(|| Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn add(&self, fd: i32, events: i32, token: u64) {
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: token,
        };
        // SAFETY: epoll_ctl on our own descriptors.
        unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    }

    fn remove(&self, fd: i32) {
        // SAFETY: epoll_ctl on our own descriptors.
        unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }
}

/// A pipe we can both read and poll.
trait ReadFd: Read {
    fn fd(&self) -> i32;
}

impl<T: Read + AsRawFd> ReadFd for T {
    fn fd(&self) -> i32 {
        self.as_raw_fd()
    }
}

/// Waits for the compiler without reaping it (`WNOWAIT`), forgets its
/// process group under the lock, then reaps it: the loop can never signal
/// a reused process group id. Between the two, while the unreaped leader
/// still holds the group id, whatever the compiler left running in its
/// group is killed: a job leaves no process behind (one could otherwise
/// still read the stdin pipe, whose pages vmsplice lent from our buffer).
fn wait(child: Spawned, control: &JobControl) -> Result<i32> {
    let pid = child.pid;
    drop(child);
    for _ in 0..1_000_000 {
        // SAFETY: waitid on our own child into a zeroed siginfo.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    {
        let mut group = control.group.lock().unwrap_or_else(|e| e.into_inner());
        if group.take().is_some() {
            // SAFETY: the leader is a zombie we have not reaped, so the
            // group id is still our compiler's.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
    for _ in 0..1_000_000 {
        let mut status = 0;
        // SAFETY: reaps our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(Error::io("waiting for the compiler", e));
        }
    }
    Err(Error::io(
        "waiting for the compiler",
        std::io::Error::from_raw_os_error(libc::EINTR),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_too_big_for_the_pipe_is_written_as_the_reader_goes() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
        let feed = SourceFeed::small_pipe(&data).unwrap();
        let stdin = feed.stdin().unwrap();
        let pending = feed.into_pending();
        assert!(pending.is_some(), "a default pipe cannot take 5 MB");
        let argv = [OsString::from("cat")];
        let mut child = spawn(argv[0].as_os_str(), &argv, Path::new("/"), &[], stdin).unwrap();
        let (out, err) = exchange(&mut child, pending);
        let control = JobControl::default();
        assert_eq!(wait(child, &control).unwrap(), 0);
        assert!(err.is_empty());
        assert!(
            out == data,
            "cat echoed {} of {} bytes",
            out.len(),
            data.len()
        );
    }
}
