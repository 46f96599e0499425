//! The include-server socket protocol (facts §2.1) and request handling.
//!
//! A client connects to the Unix socket, sends `CDIR<len><cwd>` then
//! `ARGC<n>` and n × `ARGV<len><arg>` (the compiler command), and reads
//! back `ARGC<m>` + m × `ARGV` naming files under the client root.
//! `ARGC00000000` means "not covered": the client preprocesses locally. The
//! codec here does no I/O ([`parse_request`] is fed the bytes read so far);
//! the event loop lives in the `include-server` applet. [`Server::handle`]
//! runs on a worker thread: closure, mirror, reply.

use super::bundle;
use super::cache::Cache;
use super::closure::compute_until;
use super::command;
use super::mirror::{ClientRoot, Materialized, materialize};
use crate::error::{Error, Kind, Result};
use crate::protocol::token::{HEADER_LEN, Token, parse_header, put_header, put_payload};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// The longest path the kernel resolves (`PATH_MAX`).
const PATH_MAX: usize = 4096;

/// Largest request accepted (argv of a real compile is far smaller).
pub const MAX_REQUEST: usize = 16 << 20;
const MAX_ARGS: u32 = 100_000;

/// One analysis request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The client's working directory.
    pub cwd: PathBuf,
    /// The compiler command, argv[0] = compiler.
    pub argv: Vec<OsString>,
    /// The client sends the file list passed with the reply and reads no
    /// copy in the client root ([`READS_NO_COPIES`] follows the request).
    pub reads_no_copies: bool,
}

/// What our client sends after its request (an extension of ours): it
/// takes the file list passed with the reply ([`super::bundle`]) and reads
/// no copy in the client root, so none is written for it. When no list can
/// be passed after all, the copies are written as for any client. Stock's
/// include server leaves these bytes unread.
pub const READS_NO_COPIES: &[u8; 12] = b"LIST00000001";

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = buf.get(*pos..*pos + n)?;
    *pos += n;
    Some(s)
}

fn header(buf: &[u8], pos: &mut usize, token: Token) -> Result<Option<u32>> {
    let Some(h) = take(buf, pos, HEADER_LEN) else {
        return Ok(None);
    };
    let h: &[u8; HEADER_LEN] = h
        .try_into()
        .map_err(|_| Error::new(Kind::Protocol, "short"))?;
    Ok(Some(parse_header(h, &[token])?.1))
}

/// Parses a complete request from `buf`, or `Ok(None)` if more bytes are needed.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>> {
    if buf.len() > MAX_REQUEST {
        return Err(Error::new(
            Kind::Protocol,
            "include-server request too large",
        ));
    }
    let mut pos = 0;
    let Some(len) = header(buf, &mut pos, Token::Cdir)? else {
        return Ok(None);
    };
    let Some(cwd) = take(buf, &mut pos, len as usize) else {
        return Ok(None);
    };
    let Some(argc) = header(buf, &mut pos, Token::Argc)? else {
        return Ok(None);
    };
    if argc > MAX_ARGS {
        return Err(Error::new(Kind::Protocol, format!("ARGC {argc} too large")));
    }
    let mut argv = Vec::new();
    for _ in 0..argc {
        let Some(len) = header(buf, &mut pos, Token::Argv)? else {
            return Ok(None);
        };
        let Some(a) = take(buf, &mut pos, len as usize) else {
            return Ok(None);
        };
        argv.push(OsString::from_vec(a.to_vec()));
    }
    // Sent with the request in one write: when it has not all arrived with
    // the rest, the copies are simply written.
    let reads_no_copies = buf.get(pos..pos + READS_NO_COPIES.len()) == Some(&READS_NO_COPIES[..]);
    Ok(Some(Request {
        cwd: PathBuf::from(OsString::from_vec(cwd.to_vec())),
        argv,
        reads_no_copies,
    }))
}

/// Encodes a request (what a client sends).
pub fn encode_request(req: &Request) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    put_payload(&mut out, Token::Cdir, req.cwd.as_os_str().as_bytes())?;
    encode_argv(&mut out, &req.argv)?;
    if req.reads_no_copies {
        out.extend_from_slice(READS_NO_COPIES);
    }
    Ok(out)
}

fn encode_argv<S: AsRef<std::ffi::OsStr>>(out: &mut Vec<u8>, argv: &[S]) -> Result<()> {
    put_header(out, Token::Argc, argv.len() as u32);
    for a in argv {
        put_payload(out, Token::Argv, a.as_ref().as_bytes())?;
    }
    Ok(())
}

/// Encodes a reply: the paths, or `ARGC00000000` for an empty list.
pub fn encode_reply(paths: &[PathBuf]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_argv(&mut out, paths)?;
    Ok(out)
}

/// Options of the include server that change analysis.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--no_force_dirs`: do not send forcing files.
    pub no_force_dirs: bool,
}

/// Released list files kept for later lists, at most.
const MAX_SPARE: usize = 32;
/// Released list files kept hold at most this many bytes together (a
/// typical list is well under a megabyte); others are let go.
const MAX_SPARE_BYTES: u64 = 64 << 20;

/// The answer to one request.
pub struct Answer {
    /// The reply bytes.
    pub reply: Vec<u8>,
    /// The memory file to pass with them: the ready-made file list, or why
    /// the unit is not covered.
    pub passed: Option<OwnedFd>,
    /// `passed` is a file list, which the client may release for reuse
    /// ([`Server::give_back`]).
    pub reusable: bool,
}

/// The include server's state shared by its worker threads.
pub struct Server {
    /// The analysis cache: taken by each request as it starts, and replaced
    /// by a fresh one when it is worn ([`Cache::worn`]). Requests still
    /// running keep the one they took; lookups inside stay lock-free.
    cache: std::sync::Mutex<std::sync::Arc<Cache>>,
    /// The client root.
    pub root: ClientRoot,
    /// Options.
    pub options: Options,
    /// List files clients have released ([`super::bundle::LIST_DONE`]),
    /// with their sizes.
    spare: std::sync::Mutex<Vec<(std::fs::File, u64)>>,
}

impl Server {
    /// A server with a fresh cache.
    pub fn new(root: ClientRoot, options: Options) -> Server {
        Server {
            cache: std::sync::Mutex::new(std::sync::Arc::new(Cache::new())),
            root,
            options,
            spare: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Takes back a list file its client has released: a later list is
    /// written over it. No byte of it may still be on its way to a daemon.
    pub fn give_back(&self, file: std::fs::File) {
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            return;
        };
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let held: u64 = spare.iter().map(|(_, n)| n).sum();
        if spare.len() < MAX_SPARE && held + len <= MAX_SPARE_BYTES {
            spare.push((file, len));
        }
    }

    fn take_spare(&self) -> Option<std::fs::File> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        spare.map(|(file, _)| file)
    }

    /// The cache a request works with. A long session keeps a version of
    /// every file it parsed again (a regenerated or touched header): once
    /// those pass a bound, the next request starts a fresh cache, so the
    /// server's memory stays bounded however long it runs (sweep X, D1).
    pub fn cache(&self) -> std::sync::Arc<Cache> {
        let mut current = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = current.worn() {
            log::info!("starting a fresh analysis cache: {why}");
            *current = std::sync::Arc::new(Cache::new());
        }
        current.clone()
    }

    /// The copies for `req` (or why it is not covered), the directives
    /// walked, and the file list to pass, when it could be made.
    fn analyse_counted(
        &self,
        req: &Request,
        cancelled: &AtomicBool,
    ) -> std::result::Result<(Materialized, usize, Option<OwnedFd>), String> {
        if !req.cwd.is_absolute() {
            return Err(format!(
                "working directory {} is not absolute",
                req.cwd.display()
            ));
        }
        let cmd = command::parse(&req.argv)?;
        // No file system takes a longer path (the kernel refuses it), and
        // walking one component at a time must not exhaust a worker.
        let too_long = |p: &Path| p.as_os_str().len() > PATH_MAX;
        let paths = (cmd.quote_dirs.iter())
            .chain(&cmd.include_dirs)
            .chain(&cmd.system_dirs)
            .chain(&cmd.after_dirs)
            .chain(&cmd.imacros)
            .chain(&cmd.includes);
        if too_long(&req.cwd) || too_long(&cmd.source) || paths.into_iter().any(|p| too_long(p)) {
            return Err("a path of the request is longer than any file system takes".into());
        }
        // Changes made before this request arrived must be seen by it.
        let cache = self.cache();
        cache.fs.refresh();
        let t0 = std::time::Instant::now();
        let closure = compute_until(&cache, &cmd, &req.cwd, cancelled).map_err(|e| e.0)?;
        log::trace!(
            "closure of {} in {} us",
            cmd.source.display(),
            t0.elapsed().as_micros()
        );
        let copies = |to_disk| {
            materialize(
                &self.root,
                &cache,
                &closure,
                !self.options.no_force_dirs,
                to_disk,
            )
            .map_err(|e| format!("cannot write the client root: {e}"))
        };
        let mut m = copies(!req.reads_no_copies)?;
        let list = self.file_list(req, &m);
        if list.is_none() && req.reads_no_copies {
            // No list after all: this client reads the copies.
            m = copies(true)?;
        }
        Ok((m, closure.steps, list))
    }

    /// The file list of `m` in a memory file ([`super::bundle`]), if it can
    /// be made.
    fn file_list(&self, req: &Request, m: &Materialized) -> Option<OwnedFd> {
        let entries = m.entries.as_ref().filter(|_| !m.paths.is_empty())?;
        let spare = self.take_spare();
        match bundle::to_memfd_in(spare, entries, &m.absolute_names, m.date_or_time) {
            Ok(file) => Some(OwnedFd::from(file)),
            Err(e) => {
                log::debug!("no file list for {}: {e}", source_name(req));
                None
            }
        }
    }

    /// Handles one request: the reply bytes, and the file list ready to send
    /// ([`super::bundle`]) when it could be made. A translation unit that is
    /// not covered gets `ARGC00000000` and one log line saying which and why.
    pub fn handle(&self, req: &Request) -> Answer {
        self.handle_until(req, &AtomicBool::new(false))
    }

    /// [`Server::handle`], giving up (with that reason) once `cancelled`
    /// is set: the event loop sets it when the client hangs up first.
    pub fn handle_until(&self, req: &Request, cancelled: &AtomicBool) -> Answer {
        let started = std::time::Instant::now();
        let mut reason = None;
        let (m, list) = match self.analyse_counted(req, cancelled) {
            Ok((m, steps, list)) => {
                log::debug!(
                    "{}: {} paths, {steps} directives, in {} us",
                    source_name(req),
                    m.paths.len(),
                    started.elapsed().as_micros()
                );
                (m, list)
            }
            Err(why) => {
                log::warn!(
                    "Preprocessing locally. Include server not covering {}: {why}",
                    source_name(req)
                );
                reason = Some(why);
                (Materialized::default(), None)
            }
        };
        let Ok(reply) = encode_reply(&m.paths) else {
            return Answer {
                reply: b"ARGC00000000".to_vec(),
                passed: None,
                reusable: false,
            };
        };
        if let Some(why) = reason {
            // Our client says why in its own line; stock's never sees it.
            return Answer {
                reply,
                passed: bundle::reason_to_memfd(&why).ok(),
                reusable: false,
            };
        }
        Answer {
            reusable: list.is_some(),
            reply,
            passed: list,
        }
    }
}

/// The source file named in a request, for log lines.
fn source_name(req: &Request) -> String {
    match command::parse(&req.argv) {
        Ok(c) => req.cwd.join(&c.source).display().to_string(),
        Err(_) => format!(
            "{:?} in {}",
            req.argv
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            Path::new(&req.cwd).display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd(len: u64) -> std::fs::File {
        let file = std::fs::File::from(bundle::to_memfd(&[], &[], false).expect("memfd"));
        file.set_len(len).expect("set_len");
        file
    }

    #[test]
    fn released_lists_kept_are_bounded() {
        let tmp = std::env::temp_dir();
        let root = ClientRoot::create(&tmp, std::process::id(), 0x5a5e).expect("root");
        let server = Server::new(root.clone(), Options::default());
        // Too large to keep (the size is sparse: no memory is used).
        server.give_back(memfd(MAX_SPARE_BYTES + 1));
        assert!(server.take_spare().is_none());
        for _ in 0..MAX_SPARE + 5 {
            server.give_back(memfd(4096));
        }
        let mut kept = 0;
        while server.take_spare().is_some() {
            kept += 1;
        }
        assert_eq!(kept, MAX_SPARE);
        // Together they stay under the byte bound.
        server.give_back(memfd(MAX_SPARE_BYTES / 2 + 1));
        server.give_back(memfd(MAX_SPARE_BYTES / 2 + 1));
        assert!(server.take_spare().is_some());
        assert!(server.take_spare().is_none());
        root.remove();
    }

    #[test]
    fn request_roundtrip_and_partial() {
        let mut req = Request {
            cwd: PathBuf::from("/w"),
            argv: vec![
                OsString::from("gcc"),
                OsString::from_vec(b"x\xff.c".to_vec()),
            ],
            reads_no_copies: false,
        };
        let bytes = encode_request(&req).expect("encode");
        for cut in 0..bytes.len() {
            assert_eq!(parse_request(&bytes[..cut]).expect("partial ok"), None);
        }
        assert_eq!(parse_request(&bytes).expect("parse"), Some(req.clone()));
        assert!(parse_request(b"ARGC00000001").is_err());
        // Our client's mark after the request; missing, cut or other bytes
        // leave the copies to be written.
        req.reads_no_copies = true;
        let marked = encode_request(&req).expect("encode");
        assert_eq!(marked, [&bytes[..], READS_NO_COPIES].concat());
        assert_eq!(parse_request(&marked).expect("parse"), Some(req.clone()));
        req.reads_no_copies = false;
        for other in [
            &marked[..marked.len() - 1],
            &[&bytes[..], b"LIST00000002"].concat(),
        ] {
            assert_eq!(parse_request(other).expect("parse"), Some(req.clone()));
        }
        assert_eq!(encode_reply(&[]).expect("encode"), b"ARGC00000000".to_vec());
    }
}
