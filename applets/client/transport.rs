//! Connections to a distcc server: TCP, or `ssh HOST distccd --inetd`.
//!
//! TCP (facts §1.9): every address of the name is tried with a 4-second
//! connect timeout; all reads and writes use `DISTCC_IO_TIMEOUT`; the client
//! never half-closes (distccd takes EOF as "client gone" and kills the job);
//! a request goes out in one `writev` when it is short, and with `TCP_CORK`
//! set while it is written when it is long (unless `DISTCC_TCP_CORK=0`).
//!
//! SSH (facts §1.12): `<ssh> [args] [-l user] host <command|distccd> --inetd
//! --enable-tcp-insecure`, with the child's stdin and stdout on one end of a
//! socketpair; `DISTCC_SSH` is split on spaces into the program and extra
//! arguments. The same bytes flow over it.

use distcc::hosts::{HostSpec, Mode};
use distcc::{Error, Kind, Result};
use std::io::{IoSlice, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// distcc's fixed connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// Most write calls for one send (a bound, far above what a request needs:
/// each call moves at least one byte, normally a socket buffer's worth).
const MAX_WRITES: usize = 1 << 24;
/// Most extra words taken from `DISTCC_SSH` (stock keeps 12).
const MAX_SSH_WORDS: usize = 12;

/// An open connection to a server.
pub enum Connection {
    /// distccd over TCP.
    Tcp {
        /// The socket.
        stream: TcpStream,
        /// Whether to cork while sending.
        cork: bool,
        /// `DISTCC_IO_TIMEOUT`: the longest wait for progress.
        timeout: Duration,
    },
    /// distccd --inetd over ssh.
    Ssh {
        /// Our end of the socketpair.
        stream: UnixStream,
        /// The ssh process, waited for on drop.
        child: Child,
        /// `DISTCC_IO_TIMEOUT`: the longest wait for progress.
        timeout: Duration,
    },
}

impl Connection {
    /// Opens a connection to `host` (TCP or SSH; never `localhost` mode).
    pub fn open(
        host: &HostSpec,
        io_timeout: Duration,
        ssh: &std::ffi::OsStr,
        cork: bool,
    ) -> Result<Connection> {
        match &host.mode {
            Mode::Tcp { host: name, port } => {
                let stream = connect_tcp(name, *port)?;
                set_timeouts_tcp(&stream, io_timeout)?;
                Ok(Connection::Tcp {
                    stream,
                    cork,
                    timeout: io_timeout,
                })
            }
            Mode::Ssh {
                user,
                host: name,
                command,
            } => open_ssh(ssh, user.as_deref(), name, command.as_deref(), io_timeout),
            Mode::Local => Err(Error::new(Kind::Failed, "localhost is not a remote host")),
        }
    }
}

/// Requests up to this size go out with plain writes and no `TCP_CORK`
/// around them: one `writev` normally takes them whole, so there are no
/// partial frames to hold back.
const UNCORKED_MAX: usize = 128 * 1024;

impl Connection {
    /// Writes a header and a payload, with one `writev` when it takes them
    /// (corked together on TCP when they are long).
    pub fn send_parts(&mut self, head: &[u8], payload: &[u8]) -> Result<()> {
        let write = |c: &mut Connection| c.write_all_unblocked(&[head, payload]);
        if head.len() + payload.len() <= UNCORKED_MAX {
            return self.unblocked(write);
        }
        self.corked(write)
    }

    /// Writes a header and then `len` bytes of `file` from its current
    /// offset, the kernel copying them with `sendfile(2)` (no trip through
    /// our memory; as stock does).
    pub fn send_file(&mut self, head: &[u8], file: &mut std::fs::File, len: u64) -> Result<()> {
        self.corked(|c| {
            c.write_all_unblocked(&[head])?;
            sendfile_all(c.raw_fd(), file, len, c.timeout())
        })
    }

    /// Writes all of `parts` to the non-blocking socket (see
    /// [`Connection::unblocked`]), vectored, waiting for room when it is full.
    fn write_all_unblocked(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
        let mut bufs: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let mut bufs: &mut [IoSlice<'_>] = &mut bufs;
        let mut rounds = 0usize;
        while !bufs.is_empty() && bufs.iter().any(|b| !b.is_empty()) {
            rounds += 1;
            if rounds > MAX_WRITES {
                return Err(std::io::Error::other("too many partial writes"));
            }
            match self.write_vectored(bufs) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    wait_writable(self.raw_fd(), self.timeout())?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits for the server's reply to begin (at most the I/O timeout)
    /// and then, over TCP, briefly for the server to close (see
    /// `settle`). Over ssh the reads simply block.
    pub fn await_reply(&self) -> Result<()> {
        let Connection::Tcp {
            stream, timeout, ..
        } = self
        else {
            return Ok(());
        };
        match super::settle::await_reply(std::os::fd::AsFd::as_fd(stream), *timeout) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::new(
                Kind::Timeout,
                "the server sent nothing within the I/O timeout (DISTCC_IO_TIMEOUT)",
            )),
            Err(e) => Err(Error::io("waiting for the server's reply", e)),
        }
    }

    fn raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Connection::Tcp { stream, .. } => stream.as_raw_fd(),
            Connection::Ssh { stream, .. } => stream.as_raw_fd(),
        }
    }

    fn timeout(&self) -> Duration {
        match self {
            Connection::Tcp { timeout, .. } | Connection::Ssh { timeout, .. } => *timeout,
        }
    }

    /// Runs the sending `f` with the socket non-blocking: a write that
    /// cannot go on waits in [`wait_writable`] for at most the I/O timeout
    /// since the last progress. (A blocking write under a send timeout
    /// that made some progress returns only when the whole timeout has run
    /// out, so a link that died mid-request took two or three timeouts.)
    fn unblocked(&mut self, f: impl FnOnce(&mut Connection) -> std::io::Result<()>) -> Result<()> {
        let fd = self.raw_fd();
        let set = |on: bool| {
            // SAFETY: fcntl on a descriptor this connection owns.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags >= 0 {
                    let flags = if on {
                        flags | libc::O_NONBLOCK
                    } else {
                        flags & !libc::O_NONBLOCK
                    };
                    libc::fcntl(fd, libc::F_SETFL, flags);
                }
            }
        };
        set(true);
        let r = f(self);
        set(false);
        r.map_err(|e| self.sending_failed(e))
    }

    fn corked(&mut self, f: impl FnOnce(&mut Connection) -> std::io::Result<()>) -> Result<()> {
        if let Connection::Tcp {
            stream, cork: true, ..
        } = self
        {
            set_cork(stream, true);
        }
        let r = self.unblocked(f);
        if let Connection::Tcp {
            stream, cork: true, ..
        } = self
        {
            set_cork(stream, false);
        }
        r
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Connection::Tcp { stream, .. } => stream.read(buf),
            Connection::Ssh { stream, .. } => stream.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Connection::Tcp { stream, .. } => stream.write(buf),
            Connection::Ssh { stream, .. } => stream.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        match self {
            Connection::Tcp { stream, .. } => stream.write_vectored(bufs),
            Connection::Ssh { stream, .. } => stream.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Connection {
    /// The error of a failed send: over ssh, how ssh ended says more than
    /// the broken pipe.
    fn sending_failed(&mut self, e: std::io::Error) -> Error {
        match self.ssh_ended() {
            Some(how) => Error::new(Kind::Io, format!("sending the request over ssh: {how}")),
            None => Error::io("sending the request", e),
        }
    }

    /// For an ssh connection whose ssh has ended (waited for up to half a
    /// second): how it ended, as a reason for a missing answer.
    pub fn ssh_ended(&mut self) -> Option<String> {
        let Connection::Ssh { child, .. } = self else {
            return None;
        };
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    use std::os::unix::process::ExitStatusExt;
                    return Some(match (status.code(), status.signal()) {
                        (Some(code), _) => format!("ssh exited with status {code}"),
                        (None, Some(sig)) => format!("ssh was killed by signal {sig}"),
                        _ => format!("ssh ended: {status}"),
                    });
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return None,
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Connection::Ssh { stream, child, .. } = self {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            // Bounded wait for ssh to exit, then kill it (by its own pid).
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the non-blocking socket `fd` takes more bytes (or has an
/// error to report), for at most `timeout`.
fn wait_writable(fd: std::os::fd::RawFd, timeout: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no progress sending for {} s", timeout.as_secs()),
                ));
            }
            n if n > 0 => return Ok(()),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Sends `len` bytes of `file` from its current offset to the non-blocking
/// socket `out`, advancing the offset; gives up after `timeout` without
/// progress.
fn sendfile_all(
    out: std::os::fd::RawFd,
    file: &mut std::fs::File,
    len: u64,
    timeout: Duration,
) -> std::io::Result<()> {
    let mut left = len;
    let mut calls = 0usize;
    while left > 0 {
        calls += 1;
        if calls > MAX_WRITES {
            return Err(std::io::Error::other("too many partial writes"));
        }
        let chunk = usize::try_from(left).unwrap_or(usize::MAX).min(1 << 30);
        // SAFETY: both descriptors are open and owned by live objects; a
        // null offset means "the file's own offset", which the kernel advances.
        let n = unsafe { libc::sendfile(out, file.as_raw_fd(), std::ptr::null_mut(), chunk) };
        match n {
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "preprocessed file shrank while being sent",
                ));
            }
            n if n > 0 => left -= n as u64,
            _ => {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => wait_writable(out, timeout)?,
                    _ => return Err(e),
                }
            }
        }
    }
    Ok(())
}

fn connect_tcp(name: &str, port: u16) -> Result<TcpStream> {
    // An address needs no name service (and its set-up costs an exec's
    // worth of CPU).
    if name.parse::<std::net::IpAddr>().is_err() {
        distcc::name_service::use_builtin_sources();
    }
    let addrs: Vec<_> = (name, port)
        .to_socket_addrs()
        .map_err(|e| {
            Error::new(
                Kind::ConnectFailed,
                format!("failed to look up {name}: {e}"),
            )
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(format!("connect to {addr} failed: {e}")),
        }
    }
    Err(Error::new(
        Kind::ConnectFailed,
        last.unwrap_or_else(|| format!("no address for {name}")),
    ))
}

fn set_timeouts_tcp(s: &TcpStream, t: Duration) -> Result<()> {
    s.set_read_timeout(Some(t))
        .and_then(|_| s.set_write_timeout(Some(t)))
        .map_err(|e| Error::io("setting socket timeouts", e))
}

fn set_cork(s: &TcpStream, on: bool) {
    let v: libc::c_int = on.into();
    // SAFETY: setsockopt on a socket we own with a pointer to a c_int.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// The ssh command line for a host (without spawning it).
pub fn ssh_argv(
    ssh: &std::ffi::OsStr,
    user: Option<&str>,
    host: &str,
    command: Option<&std::ffi::OsStr>,
) -> Vec<std::ffi::OsString> {
    // Split as bytes: a program path that is not UTF-8 is passed as it is.
    use std::os::unix::ffi::OsStrExt;
    let mut words: Vec<std::ffi::OsString> = ssh
        .as_bytes()
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .take(MAX_SSH_WORDS + 1)
        .map(|w| std::ffi::OsStr::from_bytes(w).to_os_string())
        .collect();
    if words.is_empty() {
        words.push("ssh".into());
    }
    if let Some(u) = user {
        words.push("-l".into());
        words.push(u.into());
    }
    words.push(host.into());
    words.push(command.unwrap_or("distccd".as_ref()).into());
    words.push("--inetd".into());
    words.push("--enable-tcp-insecure".into());
    words
}

fn open_ssh(
    ssh: &std::ffi::OsStr,
    user: Option<&str>,
    host: &str,
    command: Option<&std::ffi::OsStr>,
    io_timeout: Duration,
) -> Result<Connection> {
    let argv = ssh_argv(ssh, user, host, command);
    let (ours, theirs) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
    let theirs_out: OwnedFd = theirs
        .try_clone()
        .map_err(|e| Error::io("socketpair", e))?
        .into();
    let theirs_in: OwnedFd = theirs.into();
    log::debug!("running {}", distcc::logging::command_line(&argv));
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::from(theirs_in))
        .stdout(Stdio::from(theirs_out))
        .spawn()
        .map_err(|e| {
            Error::new(
                Kind::ConnectFailed,
                format!("failed to run {}: {e}", argv[0].to_string_lossy()),
            )
        })?;
    ours.set_read_timeout(Some(io_timeout))
        .and_then(|_| ours.set_write_timeout(Some(io_timeout)))
        .map_err(|e| Error::io("setting socket timeouts", e))?;
    Ok(Connection::Ssh {
        stream: ours,
        child,
        timeout: io_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_utf8_ssh_program_is_passed_as_it_is() {
        use std::os::unix::ffi::OsStrExt;
        let ssh = std::ffi::OsStr::from_bytes(b"/opt/\xffssh -q");
        let a = ssh_argv(ssh, None, "h", None);
        assert_eq!(a[0].as_bytes(), b"/opt/\xffssh");
        assert_eq!(a[1], "-q");
    }

    #[test]
    fn ssh_command_line() {
        let a = ssh_argv("ssh -i key -p 22".as_ref(), Some("u"), "h", None);
        let a: Vec<_> = a.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            a,
            [
                "ssh",
                "-i",
                "key",
                "-p",
                "22",
                "-l",
                "u",
                "h",
                "distccd",
                "--inetd",
                "--enable-tcp-insecure"
            ]
        );
        let b = ssh_argv("ssh".as_ref(), None, "h", Some("/opt/distccd".as_ref()));
        assert_eq!(b[2], "/opt/distccd");
    }
}
