//! Sending a job to a server and taking its reply apart.
//!
//! Request and reply use `distcc::protocol` (facts §1.5, §1.6): a whole
//! request (head, then DOTI or NFIL and the files) goes out at once, in one
//! `writev` when short, the head then `sendfile` for a long protocol-1
//! source. Reply payloads are LZO-decompressed for protocols 2 and 3 (with
//! the library's size cap). Outputs are written to a temporary file beside
//! the target and renamed, so an interrupted job never leaves a truncated
//! `.o`; a target that exists and is not a regular file (`-o /dev/null`) is
//! written in place.

use super::transport::Connection;
use distcc::compress;
use distcc::protocol::token::{Token, put_header};
use distcc::protocol::{self, Limits, Version};
use distcc::{Error, Kind, Result};
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The server's reply with payloads decompressed.
pub struct Reply {
    /// Raw wait status from `STAT`.
    pub status: u32,
    /// Compiler stderr (plus server warnings).
    pub stderr: Vec<u8>,
    /// Compiler stdout.
    pub stdout: Vec<u8>,
    /// The object (empty when the compile failed).
    pub object: Vec<u8>,
    /// The `.d` file (protocol 3, success only).
    pub dotd: Option<Vec<u8>>,
}

impl Reply {
    /// The exit code the status stands for: exit code, or 128 + signal.
    pub fn exit_code(&self) -> u8 {
        wait_status_code(self.status)
    }

    /// The signal that killed the compiler on the server, with its name
    /// ("11 (Segmentation fault)"), if one did.
    pub fn killed_by(&self) -> Option<String> {
        let sig = (self.status & 0x7f) as i32;
        if sig == 0 || sig == 0x7f {
            return None;
        }
        // SAFETY: strsignal returns a NUL-terminated string (or null), read
        // at once, before any other call could reuse its buffer.
        let name = unsafe {
            let p = libc::strsignal(sig);
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        Some(match name {
            Some(n) => format!("{sig} ({n})"),
            None => sig.to_string(),
        })
    }
}

/// Whether `status` is one `waitpid` can give for a compiler that ended:
/// an exit (code in bits 8-15, nothing else) or a death by signal (signal
/// in bits 0-6, the core flag in bit 7). Anything else, such as 0x10000,
/// whose exit code would read as 0, is a broken or hostile server's: it
/// must not pass for a success without an object.
pub fn possible_wait_status(status: u32) -> bool {
    let sig = status & 0x7f;
    match sig {
        0 => status & !0xff00 == 0,
        0x7f => false,
        _ => status & !0xff == 0,
    }
}

/// Exit code for a raw wait status.
pub fn wait_status_code(status: u32) -> u8 {
    let sig = status & 0x7f;
    if sig == 0 {
        ((status >> 8) & 0xff) as u8
    } else {
        (128 + sig).min(255) as u8
    }
}

fn bytes_of(argv: &[OsString]) -> Vec<Vec<u8>> {
    argv.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// NFIL and the files of a protocol-3 request.
pub enum PumpBody {
    /// Encoded here, from the mirror files.
    Encoded(Vec<u8>),
    /// Passed ready-made by our include server.
    Ready(super::pump::ReadyList),
}

impl PumpBody {
    /// A daemon has answered the request this body was sent in.
    pub fn delivered(&mut self) {
        if let PumpBody::Ready(list) = self {
            list.release();
        }
    }
}

/// Sends a whole protocol-3 request: DIST, CDIR, the argv, then `body`
/// (NFIL and the files, already encoded), together.
pub fn send_pump(
    conn: &mut Connection,
    cwd: &Path,
    argv: &[OsString],
    body: &mut PumpBody,
) -> Result<()> {
    let mut head = Vec::with_capacity(256);
    protocol::encode_request_head(
        &mut head,
        Version::PUMP,
        Some(cwd.as_os_str().as_bytes()),
        &bytes_of(argv),
    )?;
    match body {
        PumpBody::Encoded(bytes) => conn.send_parts(&head, bytes),
        PumpBody::Ready(list) => conn.send_file(&head, &mut list.file, list.len),
    }
}

/// Largest protocol-1 source copied into the request buffer; longer ones
/// are sent by the kernel straight from the file (sendfile/splice).
const INLINE_MAX: u64 = 64 * 1024;

/// The preprocessed source of a plain-mode request.
pub enum Source {
    /// Sent from the file, from its current offset to its end.
    File(File),
    /// Already compressed (protocol 2), with the mapped file it was made
    /// from: let go once the request is out, while the server takes it in.
    Packed(compress::Stream, (memmap2::Mmap, File)),
}

impl Source {
    /// Makes `file` ready to send. The client's own in-memory output
    /// (`private`) of a compressing protocol, read from its start, is
    /// compressed now, from a mapping of it (no copy into fresh heap
    /// pages). Anything else stays a file.
    pub fn prepare(version: Version, mut file: File, private: bool) -> Result<Source> {
        if !(version.compresses() && private) {
            return Ok(Source::File(file));
        }
        let what = "reading the preprocessed source";
        let len = file.metadata().map_err(|e| Error::io(what, e))?.len();
        let pos = file.stream_position().map_err(|e| Error::io(what, e))?;
        if pos != 0 || len <= INLINE_MAX {
            return Ok(Source::File(file));
        }
        // SAFETY: the memfd is ours alone and nothing writes it any more
        // (the preprocessor has exited), so the mapping cannot change or
        // shrink under us.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(what, e))?;
        // Read once, front to back: the kernel then keeps no record of the
        // pages having been used when they are unmapped (it would move
        // each one on its LRU lists, only for the file to be freed).
        let _ = map.advise(memmap2::Advice::Sequential);
        let packed = compress::compress_owned(&map[..len as usize]);
        Ok(Source::Packed(packed, (map, file)))
    }
}

/// Sends a whole plain-mode request: the head (DIST, ARGC/ARGV) and the
/// preprocessed source as DOTI, LZO-compressed for protocol 2. Usually one
/// write; a long protocol-1 source follows the head from the file itself,
/// corked with it.
pub fn send_plain(
    conn: &mut Connection,
    version: Version,
    argv: &[OsString],
    source: Source,
) -> Result<()> {
    let mut out = Vec::with_capacity(256);
    protocol::encode_request_head(&mut out, version, None, &bytes_of(argv))?;
    let mut file = match source {
        Source::Packed(wire, _source) => {
            // Sent from the compressor's own buffer, not copied out of it.
            out.extend_from_slice(&header(Token::Doti, wire.len())?);
            return conn.send_parts(&out, &wire);
        }
        Source::File(file) => file,
    };
    let what = "reading the preprocessed source";
    let len = file.metadata().map_err(|e| Error::io(what, e))?.len();
    let pos = file.stream_position().map_err(|e| Error::io(what, e))?;
    let len = len.saturating_sub(pos);
    if !version.compresses() && len > INLINE_MAX {
        out.extend_from_slice(&header(Token::Doti, len as usize)?);
        return conn.send_file(&out, &mut file, len);
    }
    let mut source = vec![0; len as usize];
    file.read_exact(&mut source)
        .map_err(|e| Error::io(what, e))?;
    drop(file);
    let wire = if version.compresses() && !source.is_empty() {
        compress::compress(&source)
    } else {
        source
    };
    out.extend_from_slice(&header(Token::Doti, wire.len())?);
    conn.send_parts(&out, &wire)
}

fn header(token: Token, len: usize) -> Result<Vec<u8>> {
    let len = u32::try_from(len)
        .map_err(|_| Error::new(Kind::OutOfMemory, format!("{token} payload over 4 GiB")))?;
    let mut h = Vec::with_capacity(12);
    put_header(&mut h, token, len);
    Ok(h)
}

fn expand(version: Version, wire: Vec<u8>) -> Result<Vec<u8>> {
    if version.compresses() && !wire.is_empty() {
        compress::decompress(&wire, compress::DEFAULT_MAX_OUTPUT)
    } else {
        Ok(wire)
    }
}

/// Reads the whole reply and decompresses it.
pub fn receive(conn: &mut Connection, version: Version) -> Result<Reply> {
    conn.await_reply()?;
    let r = match protocol::read_response(conn, version, Limits::default()) {
        Ok(r) => r,
        // Over ssh the likelier story is ssh's own: a host it cannot reach
        // or log in to, or a remote distccd it cannot start.
        Err(e) if e.kind() == Kind::Truncated => match conn.ssh_ended() {
            Some(how) => {
                return Err(Error::new(
                    Kind::Truncated,
                    format!("no answer over ssh ({how})"),
                ));
            }
            None => return Err(e),
        },
        Err(e) => return Err(e),
    };
    if !possible_wait_status(r.status) {
        return Err(Error::new(
            Kind::Protocol,
            format!(
                "the server sent {:#x}, which is no compiler's exit status",
                r.status
            ),
        ));
    }
    Ok(Reply {
        status: r.status,
        stderr: expand(version, r.stderr)?,
        stdout: expand(version, r.stdout)?,
        object: expand(version, r.object)?,
        dotd: r.dotd.map(|d| expand(version, d)).transpose()?,
    })
}

/// Writes `bytes` to `target` through a temp file beside it and a rename.
pub fn write_output(target: &Path, bytes: &[u8]) -> Result<()> {
    // Past a file-size limit (`ulimit -f`) the write fails with EFBIG
    // instead of killing us between creating the temporary file and
    // renaming it, which left the file behind (sweep T, D2): the error
    // path removes it and the local compile reports the limit its own way.
    let _xfsz = IgnoredSignal::new(libc::SIGXFSZ);
    write_output_as_it_goes(target, bytes)
}

/// A signal ignored while this lives, its previous disposition restored
/// after (children started meanwhile would inherit the ignoring: none are).
struct IgnoredSignal {
    signal: libc::c_int,
    previous: libc::sighandler_t,
}

impl IgnoredSignal {
    fn new(signal: libc::c_int) -> IgnoredSignal {
        // SAFETY: signal(2) with SIG_IGN; the old disposition is kept.
        let previous = unsafe { libc::signal(signal, libc::SIG_IGN) };
        IgnoredSignal { signal, previous }
    }
}

impl Drop for IgnoredSignal {
    fn drop(&mut self) {
        if self.previous != libc::SIG_ERR {
            // SAFETY: restores the disposition signal(2) returned.
            unsafe { libc::signal(self.signal, self.previous) };
        }
    }
}

fn write_output_as_it_goes(target: &Path, bytes: &[u8]) -> Result<()> {
    // An output name that is a symlink is written through, as the compiler
    // writes it (the link stays, its target gets the bytes, or is made).
    let resolved = through_symlinks(target);
    let target = resolved.as_deref().unwrap_or(target);
    let existing = std::fs::metadata(target).ok();
    if let Some(meta) = &existing
        && !meta.is_file()
    {
        // /dev/null and friends: write in place, never replace them.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(target)
            .map_err(|e| Error::io(format!("open {}", target.display()), e))?;
        return f
            .write_all(bytes)
            .map_err(|e| Error::io(format!("write {}", target.display()), e));
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = dir.join(temp_name(target.file_name(), std::process::id()));
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o666)
            .open(&tmp)
    };
    let result = (|| {
        // A missing directory is not made (stock makes it): the compiler
        // here fails for it ("can't create nodir/x.o"), and so must we.
        let mut f = create().map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
        // The compiler here writes into an existing output, which keeps
        // its mode: so does the file that replaces it (sweep R).
        if let Some(meta) = &existing {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(meta.permissions().mode() & 0o777);
            let _ = f.set_permissions(mode);
        }
        f.write_all(bytes)
            .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
        drop(f);
        replace(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Most symlinks followed for an output name (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// The file a symlink `path` finally names (relative targets taken from the
/// link's directory), or None when `path` is no symlink or the chain is too
/// long (then the name itself is written, as before).
fn through_symlinks(path: &Path) -> Option<std::path::PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let Ok(next) = std::fs::read_link(&current) else {
            return (current != path).then_some(current);
        };
        current = match current.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    None
}

/// The temp file's name for an output named `name`: `.NAME.distcc-PID.tmp`,
/// with NAME cut short when the whole would pass the 255-byte limit of a
/// file name (a long but valid output name must still be writable).
fn temp_name(name: Option<&std::ffi::OsStr>, pid: u32) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let tail = format!(".distcc-{pid}.tmp");
    let name = name.map_or(&b"out"[..], |n| n.as_bytes());
    let keep = name.len().min(255 - 1 - tail.len());
    let mut out = Vec::with_capacity(1 + keep + tail.len());
    out.push(b'.');
    out.extend_from_slice(&name[..keep]);
    out.extend_from_slice(tail.as_bytes());
    std::ffi::OsString::from_vec(out)
}

/// Puts the complete `tmp` in place of `target`. An old target is unlinked
/// first: a reader sees either no file or the complete new one, never a
/// truncated one, and ext4 does not force the new file's blocks out at the
/// rename (`auto_da_alloc` does that only when a rename replaces a file),
/// which measured 25-60 µs per output.
fn replace(tmp: &Path, target: &Path) -> Result<()> {
    let _ = std::fs::remove_file(target);
    std::fs::rename(tmp, target)
        .map_err(|e| Error::io(format!("rename to {}", target.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_statuses_are_refused() {
        for ok in [0, 0x100, 0xff00, 11, 0x8b, 9] {
            assert!(possible_wait_status(ok), "{ok:#x}");
        }
        for bad in [
            0x10000,
            0x80,
            0x8000_0000,
            0x100_0000,
            0x7f,
            0x17f,
            0x10b,
            0x1_0100,
        ] {
            assert!(!possible_wait_status(bad), "{bad:#x}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(wait_status_code(0), 0);
        assert_eq!(wait_status_code(0x100), 1);
        assert_eq!(wait_status_code(0x6e00), 110);
        assert_eq!(wait_status_code(11), 139);
    }

    #[test]
    fn temp_names_fit_a_file_name_and_keep_odd_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let short = temp_name(Some(std::ffi::OsStr::new("a.o")), 42);
        assert_eq!(short, ".a.o.distcc-42.tmp");
        let long = "x".repeat(250) + ".o";
        let t = temp_name(Some(std::ffi::OsStr::new(&long)), u32::MAX);
        assert_eq!(t.len(), 255);
        assert!(
            t.as_bytes()
                .ends_with(format!(".distcc-{}.tmp", u32::MAX).as_bytes())
        );
        let odd = std::ffi::OsStr::from_bytes(b"\xff\xfe.o");
        assert_eq!(
            temp_name(Some(odd), 1).as_bytes(),
            b".\xff\xfe.o.distcc-1.tmp"
        );
        // A 255-byte output name is written.
        let dir = std::env::temp_dir().join(format!("distcc-longname-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("y".repeat(253) + ".o");
        write_output(&target, b"object").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"object");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn output_is_renamed_into_place_and_dev_null_survives() {
        let dir = std::env::temp_dir().join(format!("distcc-remote-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let target = dir.join("sub/x.o");
        // A missing directory is not made (the compiler would fail too).
        assert!(write_output(&target, b"abc").is_err());
        assert!(!dir.join("sub").exists());
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        write_output(&target, b"abc").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 1);
        // An existing output's mode is kept, as when the compiler writes
        // into it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_output(&target, b"again").unwrap();
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        write_output(Path::new("/dev/null"), b"abc").unwrap();
        // Symlinked names are written through, the links kept.
        std::fs::create_dir_all(dir.join("out")).unwrap();
        std::fs::write(dir.join("out/real.o"), b"old").unwrap();
        std::os::unix::fs::symlink("out/real.o", dir.join("link.o")).unwrap();
        std::os::unix::fs::symlink("out/none.o", dir.join("dangling.o")).unwrap();
        std::os::unix::fs::symlink("link.o", dir.join("chain.o")).unwrap();
        write_output(&dir.join("link.o"), b"new").unwrap();
        write_output(&dir.join("dangling.o"), b"made").unwrap();
        assert_eq!(std::fs::read(dir.join("out/real.o")).unwrap(), b"new");
        assert_eq!(std::fs::read(dir.join("out/none.o")).unwrap(), b"made");
        write_output(&dir.join("chain.o"), b"chained").unwrap();
        assert_eq!(std::fs::read(dir.join("out/real.o")).unwrap(), b"chained");
        for link in ["link.o", "dangling.o", "chain.o"] {
            assert!(
                std::fs::symlink_metadata(dir.join(link))
                    .unwrap()
                    .is_symlink(),
                "{link}"
            );
        }
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
