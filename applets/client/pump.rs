//! The client side of pump mode: asking the include server, building the
//! protocol-3 file list, the downgrade rules and `--scan-includes`.
//!
//! The include server listens on the unix socket `$INCLUDE_SERVER_PORT`;
//! the client sends `CDIR` + `ARGC/ARGV` (the compiler command) and reads
//! back `ARGC/ARGV`: paths in the server's mirror tree ("client root", three
//! components deep) (facts §2.1-2.2). Each path becomes a `NAME` (the path
//! without its first three components, then without `.abs`, then without
//! `.lzo`) and a `FILE` (the `.lzo` bytes verbatim: already compressed),
//! a `LINK` (the symlink's target), or `FILE00000000` for a forcing file.
//! When pump mode cannot be used for a unit, [`downgrade_reason`] or the
//! query's error says why, and the caller falls back to protocol 2.
//!
//! Our include server also passes that whole file list ready-made, as a
//! memory file whose descriptor comes with the reply
//! (`distcc::includes::bundle`); [`query_with_list`] takes it, and then no
//! mirror file is opened here.

use distcc::compress;
use distcc::env::ClientEnv;
use distcc::protocol::token::{HEADER_LEN, Token, parse_header, put_header, put_payload};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Basename of the include server's forcing files.
pub const FORCING_FILE: &str = "forcing_technique_271828";
/// Connect timeout for the include server (as for distcc servers).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// Longest usable socket path (`sizeof(sun_path) - 2`).
const MAX_SOCKET_PATH: usize = 106;
/// Most entries accepted in a reply.
const MAX_ENTRIES: u32 = 1_000_000;
/// Longest path accepted in a reply.
const MAX_PATH: u32 = 64 * 1024;

/// Why pump mode is not used for this unit before asking anyone (facts §1.3), if so.
pub fn downgrade_reason(env: &ClientEnv, preprocessed: bool) -> Option<String> {
    if preprocessed {
        return Some("input is already preprocessed".into());
    }
    if let Some(var) = env.include_path_var {
        return Some(format!("{var} is set"));
    }
    if env.sunpro_dependencies {
        // Its file (system headers included, the source left out) is
        // written by the preprocessor from its environment, which a server
        // does not have.
        return Some("SUNPRO_DEPENDENCIES is set".into());
    }
    if let Some(counter) = discrepancy_file(env) {
        let n = std::fs::metadata(&counter).map_or(0, |m| m.len());
        // (An invalid value ended the job before: build.rs.)
        if n >= env.max_discrepancy().unwrap_or(1) {
            return Some(format!(
                "pump mode was demoted after {n} discrepancies (see {})",
                counter.display()
            ));
        }
    }
    None
}

/// `<dir of INCLUDE_SERVER_PORT>/discrepancy_counter`, only when the socket is `…/socket`.
pub fn discrepancy_file(env: &ClientEnv) -> Option<PathBuf> {
    let port = env.include_server_port.as_ref()?;
    if port.file_name()? != "socket" {
        return None;
    }
    Some(port.parent()?.join("discrepancy_counter"))
}

/// Appends one `@` to the discrepancy counter (a pump compile failed remotely
/// but the local retry gave a different result).
pub fn record_discrepancy(env: &ClientEnv) {
    if let Some(path) = discrepancy_file(env)
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
    {
        let _ = f.write_all(b"@");
    }
}

/// Asks the include server (or reads `INCLUDE_SERVER_STUB`) for the files
/// of `argv` compiled in `cwd`. Err = the reason to fall back.
pub fn query(env: &ClientEnv, argv: &[OsString], cwd: &Path) -> Result<Vec<PathBuf>, String> {
    query_with_list(env, argv, cwd, false).map(|(paths, _)| paths)
}

/// The file list passed with a reply: a memory file holding `NFIL` and the
/// files, encoded, from its current offset on; its length; and the absolute
/// `#include` names rewritten in the copies (for the `.d` file).
pub struct ReadyList {
    pub file: std::fs::File,
    pub len: u64,
    pub absolute_names: Vec<Vec<u8>>,
    /// A file of the unit names `__DATE__` or `__TIME__`.
    pub date_or_time: bool,
    /// The include server's connection, kept open until [`ReadyList::release`].
    include_server: Option<UnixStream>,
}

impl ReadyList {
    /// Tells the include server that the list has been delivered (a daemon
    /// has answered the request it was sent in, so no byte of it is still
    /// on its way): it may write a later list over the same memory file
    /// (`distcc::includes::bundle::LIST_DONE`). Only called then; on any
    /// other path the connection just closes and the file is not reused.
    pub fn release(&mut self) {
        // Twelve bytes into an empty socket buffer: never blocks. A server
        // that has gone gives EPIPE (SIGPIPE is ignored, as in every Rust
        // program).
        if let Some(mut s) = self.include_server.take()
            && s.write_all(distcc::includes::bundle::LIST_DONE).is_err()
        {
            log::debug!("the include server did not take the list back");
        }
    }
}

/// [`query`], with the file list our include server passes along (checked
/// to count as many files as the reply has paths), if any. With
/// `reads_no_copies` our include server writes no copy into the client
/// root when it passes a list (`READS_NO_COPIES`): the caller then sends
/// that list, and reads the copies only when none came.
pub fn query_with_list(
    env: &ClientEnv,
    argv: &[OsString],
    cwd: &Path,
    reads_no_copies: bool,
) -> Result<(Vec<PathBuf>, Option<ReadyList>), String> {
    if let Some(stub) = &env.include_server_stub {
        let paths = stub
            .as_bytes()
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(|w| PathBuf::from(OsString::from_vec(w.to_vec())))
            .collect();
        return Ok((paths, None));
    }
    let Some(port) = &env.include_server_port else {
        return Err("INCLUDE_SERVER_PORT is not set (did you forget to run under 'pump'?)".into());
    };
    if port.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(format!(
            "include server socket path {} is too long",
            port.display()
        ));
    }
    let mut s = connect(port, CONNECT_TIMEOUT).map_err(|e| {
        format!(
            "cannot connect to include server at {}: {e}",
            port.display()
        )
    })?;
    let _ = s.set_read_timeout(Some(env.io_timeout));
    let _ = s.set_write_timeout(Some(env.io_timeout));
    let mut req = Vec::new();
    let err = |e: distcc::Error| e.to_string();
    put_payload(&mut req, Token::Cdir, cwd.as_os_str().as_bytes()).map_err(err)?;
    put_header(&mut req, Token::Argc, argv.len() as u32);
    for a in argv {
        put_payload(&mut req, Token::Argv, a.as_bytes()).map_err(err)?;
    }
    if reads_no_copies {
        // In the same write as the request (the server looks for it there).
        req.extend_from_slice(distcc::includes::server::READS_NO_COPIES);
    }
    s.write_all(&req)
        .map_err(|e| format!("writing to include server: {e}"))?;
    match super::settle::await_reply(s.as_fd(), env.io_timeout) {
        Ok(true) => {}
        Ok(false) => return Err(reply_error(std::io::ErrorKind::TimedOut.into())),
        Err(e) => return Err(reply_error(e)),
    }
    // The first read takes the list's descriptor too, when one comes.
    let mut first = Vec::with_capacity(64 * 1024);
    let (_, list) = distcc::fdpass::recv_with_fd(s.as_fd(), &mut first).map_err(reply_error)?;
    let mut s = std::io::Cursor::new(first).chain(std::io::BufReader::with_capacity(64 * 1024, s));
    let n = read_header(&mut s, Token::Argc)?;
    if n == 0 {
        let why = list.and_then(|fd| distcc::includes::bundle::reason_in(&fd.into()));
        return Err(match why {
            Some(why) => format!("include server gave up: {why}"),
            None => "include server gave up analyzing".into(),
        });
    }
    if n > MAX_ENTRIES {
        return Err(format!("include server sent an absurd count {n}"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let len = read_header(&mut s, Token::Argv)?;
        if len > MAX_PATH {
            return Err(format!("include server sent a {len}-byte path"));
        }
        let mut buf = vec![0u8; len as usize];
        s.read_exact(&mut buf).map_err(reply_error)?;
        out.push(PathBuf::from(OsString::from_vec(buf)));
    }
    let list = list
        .and_then(|fd| checked_list(fd, out.len()))
        .map(|mut l| {
            // What is left of the reply is nothing (the server sends no more):
            // the connection stays open until the list is released.
            l.include_server = Some(s.into_inner().1.into_inner());
            l
        });
    Ok((out, list))
}

/// The list in `fd` if it starts with `NFIL` counting `count` files (after
/// the absolute names, if any), positioned at its start.
fn checked_list(fd: OwnedFd, count: usize) -> Option<ReadyList> {
    use std::io::Seek;
    use std::os::unix::fs::FileExt;
    let mut file = std::fs::File::from(fd);
    let distcc::includes::bundle::Sections {
        start,
        absolute_names,
        date_or_time,
    } = distcc::includes::bundle::sections_in(&file)?;
    let len = file.metadata().ok()?.len().checked_sub(start)?;
    let mut head = [0u8; HEADER_LEN];
    file.read_exact_at(&mut head, start).ok()?;
    match parse_header(&head, &[Token::Nfil]) {
        Ok((_, n)) if n as usize == count => {
            log::debug!("the include server passed the file list ({len} bytes)");
            file.seek(std::io::SeekFrom::Start(start)).ok()?;
            Some(ReadyList {
                file,
                len,
                absolute_names,
                date_or_time,
                include_server: None,
            })
        }
        _ => {
            log::debug!("the include server's file list does not match its reply");
            None
        }
    }
}

/// Connects to a unix socket, waiting at most `timeout` while its backlog
/// is full (a blocking connect would wait without limit).
fn connect(path: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    let deadline = Instant::now() + timeout;
    loop {
        match connect_nonblocking(path) {
            Ok(s) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn connect_nonblocking(path: &Path) -> std::io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: an all-zero sockaddr_un is valid; the path is copied in below.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "unusable socket path",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &b) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket that nothing else owns.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: connect(2) with a valid sockaddr_un of the size given.
    let rc = unsafe {
        libc::connect(
            owned.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(UnixStream::from(owned))
}

/// Why reading the include server's reply failed; a timeout says so.
fn reply_error(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "the include server did not answer within DISTCC_IO_TIMEOUT".into()
        }
        _ => format!("reading include server reply: {e}"),
    }
}

fn read_header(s: &mut impl Read, token: Token) -> Result<u32, String> {
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).map_err(reply_error)?;
    parse_header(&h, &[token])
        .map(|(_, v)| v)
        .map_err(|e| format!("include server reply: {e}"))
}

/// The client path a mirror-tree path stands for: drop the first three
/// components, then a trailing `.abs`, then a trailing `.lzo`.
pub fn original_name(path: &[u8]) -> Vec<u8> {
    let mut slashes = 0;
    let mut cut = path.len();
    for (i, &b) in path.iter().enumerate() {
        if b == b'/' {
            slashes += 1;
            if slashes == 4 {
                cut = i;
                break;
            }
        }
    }
    distcc::includes::bundle::client_name(&path[cut..])
}

fn is_forcing(path: &[u8]) -> bool {
    path.ends_with(format!("/{FORCING_FILE}").as_bytes())
}

/// Appends the protocol-3 body for the reply paths to `out`: `NFIL`, then
/// per path its `NAME` and a `FILE` (the `.lzo` bytes read straight into
/// `out`; other files compressed; forcing files empty) or a `LINK`.
///
/// One `open(O_NOFOLLOW)`, `fstat`, `read`, `close` per file (a symlink
/// shows itself by `ELOOP` and is read with `readlink`), no per-file buffer.
pub fn encode_files(paths: &[PathBuf], out: &mut Vec<u8>) -> Result<(), String> {
    let count = u32::try_from(paths.len()).map_err(|_| "too many files".to_string())?;
    put_header(out, Token::Nfil, count);
    for p in paths {
        let raw = p.as_os_str().as_bytes();
        put_payload(out, Token::Name, &original_name(raw)).map_err(|e| e.to_string())?;
        if is_forcing(raw) {
            put_header(out, Token::File, 0);
            continue;
        }
        append_file(out, p, raw.ends_with(b".lzo") || raw.ends_with(b".lzo.abs"))
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

/// Appends `FILE` (or `LINK`, for a symlink) for the mirror file `path`;
/// `compressed` = its bytes are already LZO.
fn append_file(out: &mut Vec<u8>, path: &Path, compressed: bool) -> std::io::Result<()> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let target = std::fs::read_link(path)?;
            return put_payload(out, Token::Link, target.as_os_str().as_bytes())
                .map_err(|e| std::io::Error::other(e.to_string()));
        }
        Err(e) => return Err(e),
    };
    let len = usize::try_from(file.metadata()?.len())
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| std::io::Error::other("file over 4 GiB"))?;
    if compressed || len == 0 {
        put_header(out, Token::File, len);
        // Straight into `out`'s spare room: no zeroing, no second copy.
        out.reserve(len as usize);
        let got = Read::take(&mut file, u64::from(len)).read_to_end(out)?;
        if got != len as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
        return Ok(());
    }
    let mut bytes = vec![0; len as usize];
    file.read_exact(&mut bytes)?;
    put_payload(out, Token::File, &compress::compress(&bytes))
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// One `--scan-includes` line for a reply path (facts §2.3), without its
/// newline. Names are written as their bytes (not all are UTF-8).
pub fn scan_line(path: &Path) -> Vec<u8> {
    let raw = path.as_os_str().as_bytes();
    let name = original_name(raw);
    let line = |kind: &str, name: &[u8]| [format!("{kind:<9} ").as_bytes(), name].concat();
    if is_forcing(raw) {
        let suffix = format!("/{FORCING_FILE}");
        let dir = name.strip_suffix(suffix.as_bytes()).unwrap_or(&name);
        return line("DIRECTORY", dir);
    }
    let kind = match std::fs::read_link(path) {
        Ok(target) => {
            if is_system_link(target.as_os_str().as_bytes(), &name) {
                "SYSTEMDIR"
            } else {
                "SYMLINK"
            }
        }
        Err(_) => "FILE",
    };
    line(kind, &name)
}

/// A system-directory link: `k` leading `../` (k > slashes in the name),
/// then the name without its leading `/`.
fn is_system_link(target: &[u8], name: &[u8]) -> bool {
    let mut rest = target;
    let mut k = 0;
    while let Some(r) = rest.strip_prefix(b"../") {
        rest = r;
        k += 1;
    }
    let slashes = name.iter().filter(|&&b| b == b'/').count();
    k > 0 && k > slashes && Some(rest) == name.strip_prefix(b"/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use distcc::protocol::{Body, FileContent, FileEntry};

    /// The list our include server passes is byte for byte what this client
    /// would build from the reply's mirror files: copies with and without
    /// `#line`, a mirrored symlink, system-directory links, a forcing file.
    #[test]
    fn ready_list_is_what_we_would_encode() {
        let dir = std::env::temp_dir().join(format!("distcc-ready-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (src, inc) = (dir.join("src"), dir.join("inc"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir_all(&inc).unwrap();
        std::fs::write(
            src.join("m.c"),
            "#include \"a.h\"\n#include \"sub/../b.h\"\n#include \"l/c.h\"\n#include <stdio.h>\nint main(void) { return A + B + C; }\n",
        )
        .unwrap();
        std::fs::write(inc.join("a.h"), "#define A 1\n").unwrap();
        std::fs::write(src.join("b.h"), "#define B 2\n").unwrap();
        std::fs::write(inc.join("c.h"), "#define C 3\n").unwrap();
        std::os::unix::fs::symlink(&inc, src.join("l")).unwrap();
        let sock = dir.join("socket");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let running = crate::include_server::event_loop::start(
            &sock,
            distcc::includes::server::Options::default(),
            stop,
        )
        .unwrap();
        let env = ClientEnv::from_vars([(
            OsString::from("INCLUDE_SERVER_PORT"),
            sock.clone().into_os_string(),
        )])
        .unwrap();
        let argv: Vec<OsString> = ["gcc", "-I", inc.to_str().unwrap(), "-c", "m.c"]
            .iter()
            .map(OsString::from)
            .collect();
        let (paths, list) = query_with_list(&env, &argv, &src, false).unwrap();
        let mut list = list.expect("our include server passes the list");
        let mut ready = Vec::new();
        list.file.read_to_end(&mut ready).unwrap();
        let mut ours = Vec::new();
        encode_files(&paths, &mut ours).unwrap();
        running.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(paths.len() >= 5, "{paths:?}");
        assert_eq!(list.len, ready.len() as u64);
        assert!(
            ready == ours,
            "the passed list differs from the encoded one"
        );
    }

    #[test]
    fn names_from_mirror_paths() {
        assert_eq!(
            original_name(b"/dev/shm/tmpab.include_server-1-1/home/u/x.c.lzo"),
            b"/home/u/x.c"
        );
        assert_eq!(
            original_name(b"/tmp/tmpab.include_server-1-1/padding/usr/inc/a.h.lzo.abs"),
            b"/usr/inc/a.h"
        );
        assert_eq!(original_name(b"/a/b/c/usr/include"), b"/usr/include");
    }

    #[test]
    fn unix_connect_with_timeout() {
        let dir = std::env::temp_dir().join(format!("distcc-uconn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        assert!(connect(&path, Duration::from_millis(100)).is_err());
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut s = connect(&path, Duration::from_secs(1)).unwrap();
        s.write_all(b"x").unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut b = [0u8; 1];
        peer.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn short_forcing_paths_do_not_panic() {
        assert!(scan_line(Path::new("/forcing_technique_271828")).starts_with(b"DIRECTORY"));
        assert_eq!(original_name(b"/a"), b"");
    }

    #[test]
    fn system_links() {
        let t = b"../../../../../../../../../../../../../../../../../../../../../../usr/include";
        assert!(is_system_link(t, b"/usr/include"));
        assert!(!is_system_link(b"/home/u/real.h", b"/home/u/hdr.h"));
        assert!(!is_system_link(b"../usr/include", b"/usr/include"));
    }

    #[test]
    fn entries_and_scan_lines() {
        let root = std::env::temp_dir().join(format!("distcc-pumpc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let base = root.join("x/y");
        std::fs::create_dir_all(base.join("src")).unwrap();
        let lzo = compress::compress(b"int x;\n");
        std::fs::write(base.join("src/a.c.lzo"), &lzo).unwrap();
        std::os::unix::fs::symlink("/src/real.h", base.join("src/l.h")).unwrap();
        let paths = vec![
            base.join("src/a.c.lzo"),
            base.join("src/l.h"),
            base.join("src").join(FORCING_FILE),
        ];
        let mut got = Vec::new();
        encode_files(&paths, &mut got).unwrap();
        let name = |p: &PathBuf| original_name(p.as_os_str().as_bytes());
        let want = Body::Files(vec![
            FileEntry {
                name: name(&paths[0]),
                content: FileContent::File(lzo),
            },
            FileEntry {
                name: name(&paths[1]),
                content: FileContent::Link(b"/src/real.h".to_vec()),
            },
            FileEntry {
                name: name(&paths[2]),
                content: FileContent::File(Vec::new()),
            },
        ]);
        let mut expected = Vec::new();
        distcc::protocol::encode_request_body(&mut expected, &want).unwrap();
        assert_eq!(got, expected);
        // A plain (uncompressed) file is compressed on the way.
        std::fs::write(base.join("src/b.h"), b"int y;\n").unwrap();
        let mut plain = Vec::new();
        encode_files(&[base.join("src/b.h")], &mut plain).unwrap();
        assert!(plain.ends_with(&compress::compress(b"int y;\n")));
        assert!(encode_files(&[base.join("src/missing.h")], &mut plain).is_err());
        assert!(scan_line(&paths[1]).starts_with(b"SYMLINK   "));
        assert!(scan_line(&paths[2]).starts_with(b"DIRECTORY "));
        assert!(scan_line(&paths[0]).starts_with(b"FILE      "));
        let _ = std::fs::remove_dir_all(&root);
    }
}
