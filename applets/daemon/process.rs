//! Running the compiler process of one job and collecting its output.
//!
//! The compiler is spawned (posix_spawn where std can) in its own process
//! group with stdin on /dev/null or a pipe carrying the preprocessed source,
//! stdout/stderr on pipes, `cwd` set, the
//! incremented `_DISTCC_SAFEGUARD` and `TMPDIR` pointing into the job
//! directory (facts §5.2 step 7). Pipes instead of stock's temp files save
//! creating and deleting two files per job. The source goes into the stdin
//! pipe with `vmsplice`, which lends the pipe our pages instead of copying
//! them (the buffer is neither changed nor freed before the compiler has
//! exited), and the pipe is enlarged so that a big source needs few
//! wake-ups. If argv[0] contains a `/` and
//! cannot be executed, its basename is tried, as stock does; if nothing can
//! be executed the job "fails" with wait status 110<<8 and a "failed to
//! exec" message in its stderr.

use super::compiler::Config;
use super::runner::JobControl;
use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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

/// Runs `argv` in `cwd` and waits for it, under `control`. `stdin`: bytes
/// fed to the compiler's standard input (else /dev/null).
pub fn run(
    argv: &[OsString],
    cwd: &Path,
    jobdir: &Path,
    stdin: Option<Vec<u8>>,
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
    let mut last_err = None;
    for program in candidates {
        let mut cmd = Command::new(&program);
        cmd.arg0(&argv[0])
            .args(&argv[1..])
            .current_dir(cwd)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("_DISTCC_SAFEGUARD", &cfg.safeguard)
            .env("TMPDIR", jobdir)
            .process_group(0);
        if let Some(path) = &cfg.path {
            cmd.env("PATH", path);
        }
        // Hold the lock across spawn so a concurrent stop() either happens
        // before (and is seen below) or signals the new group.
        let mut group = control.group.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                drop(group);
                last_err = Some(e);
                continue;
            }
        };
        let pid = child.id() as i32;
        *group = Some(pid);
        if control.stopped().is_some() {
            // SAFETY: our child's fresh process group.
            unsafe { libc::kill(-pid, libc::SIGTERM) };
        }
        drop(group);
        let (stdout, stderr) = exchange(&mut child, stdin.as_deref().unwrap_or(&[]));
        let status = wait(child, control)?;
        return Ok(Ran {
            status,
            stdout,
            stderr,
        });
    }
    let err = last_err.map_or_else(|| "unknown error".to_string(), |e| e.to_string());
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

/// Feeds `input` to the child's stdin (if piped) while reading its stdout
/// and stderr, until all three are done. Non-blocking writes, so a
/// compiler that talks before it has read everything cannot deadlock us.
fn exchange(child: &mut Child, input: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut stdin = child.stdin.take();
    if let Some(p) = &stdin {
        // SAFETY: fcntl on our own pipe descriptor.
        unsafe {
            let fl = libc::fcntl(p.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(p.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            if input.len() > 64 * 1024 {
                // Best effort: the system may cap pipe sizes lower.
                libc::fcntl(p.as_raw_fd(), libc::F_SETPIPE_SZ, STDIN_PIPE_SIZE);
            }
        }
    }
    if input.is_empty() {
        stdin = None;
    }
    let mut pipes: [Option<Box<dyn ReadFd>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
    ];
    let mut leader = watch_exit(child.id() as i32);
    READ_BUFFER.with_borrow_mut(|buf| {
        pump_pipes(
            &mut stdin,
            input,
            &mut pipes,
            &mut leader,
            buf,
            &mut out,
            &mut err,
        )
    });
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

/// The stdin pipe's size for big sources (the unprivileged maximum).
const STDIN_PIPE_SIZE: libc::c_int = 1024 * 1024;

/// Moves bytes of `data` into the non-blocking pipe `fd`: `vmsplice`
/// (no copy; the caller keeps `data` unchanged until the reader is gone),
/// or `write` where the kernel cannot splice.
fn feed_pipe(fd: i32, data: &[u8]) -> std::io::Result<usize> {
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: vmsplice reads the iovec, which describes memory we own and
    // keep alive and unchanged until the compiler has exited (see run()).
    let n = unsafe { libc::vmsplice(fd, &iov, 1, libc::SPLICE_F_NONBLOCK) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let err = std::io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
        return Err(err);
    }
    // SAFETY: write from a slice we own.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

thread_local! {
    /// Each worker's read buffer, allocated once rather than per job.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 32 * 1024]);
}

fn pump_pipes(
    stdin: &mut Option<std::process::ChildStdin>,
    input: &[u8],
    pipes: &mut [Option<Box<dyn ReadFd>>; 2],
    leader: &mut Option<(OwnedFd, i32)>,
    buf: &mut [u8],
    out: &mut Vec<u8>,
    err: &mut Vec<u8>,
) {
    let mut written = 0;
    // Bounded: each round moves bytes or closes a pipe; the compiler's
    // input and output are finite (and the loop can kill it).
    while stdin.is_some() || pipes.iter().any(Option::is_some) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
        if let Some(p) = &stdin {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        fds.extend(pipes.iter().flatten().map(|p| libc::pollfd {
            fd: p.fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        if let Some((pidfd, _)) = leader {
            fds.push(libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: poll on our own pipe descriptors.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if let Some((_, pid)) = leader
            && fds.last().is_some_and(|f| f.revents != 0)
        {
            // The compiler exited: what it left in its group (holding our
            // pipes open) is killed now. SAFETY: the leader is not reaped
            // yet (wait() does that), so the group id is still ours.
            unsafe { libc::kill(-*pid, libc::SIGKILL) };
            *leader = None;
        }
        let mut ready = fds.iter().map(|f| f.revents != 0);
        if let Some(p) = stdin.as_mut()
            && ready.next().unwrap_or(false)
        {
            match feed_pipe(p.as_raw_fd(), &input[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EPIPE: the compiler stopped reading; its status says why.
                Err(_) => written = input.len(),
            }
            if written >= input.len() {
                *stdin = None;
            }
        }
        for (i, slot) in pipes.iter_mut().enumerate() {
            let Some(pipe) = slot else { continue };
            if !ready.next().unwrap_or(false) {
                continue;
            }
            let sink = if i == 0 { &mut *out } else { &mut *err };
            match pipe.read(buf) {
                Ok(0) | Err(_) => *slot = None,
                Ok(n) => {
                    let keep = n.min(OUTPUT_CAP.saturating_sub(sink.len()));
                    sink.extend_from_slice(&buf[..keep]);
                }
            }
        }
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
fn wait(mut child: Child, control: &JobControl) -> Result<i32> {
    let pid = child.id();
    for _ in 0..1_000_000 {
        // SAFETY: waitid on our own child into a zeroed siginfo.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    {
        let mut group = control.group.lock().unwrap_or_else(|e| e.into_inner());
        if group.take().is_some() {
            // SAFETY: the leader is a zombie we have not reaped, so the
            // group id is still our compiler's.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::io("waiting for the compiler", e))?;
    Ok(status.into_raw())
}
