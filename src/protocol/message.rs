//! The request and response of one distcc job, and their encoders.
//!
//! Payloads are kept in wire form: for protocol 2 and 3 the DOTI, FILE,
//! SERR, SOUT, DOTO and DOTD bytes are LZO streams, for protocol 1 they are
//! raw. Compression is the caller's business (`crate::compress`), so the
//! codec stays pure and the include server can pass pre-compressed files
//! through untouched (facts §1.4).

use super::token::{Token, put_header, put_payload};
use crate::error::{Error, Kind, Result};

/// A protocol version as sent in `DIST` and echoed in `DONE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version(pub u32);

impl Version {
    /// Protocol 1: raw payloads, client-side preprocessing.
    pub const PLAIN: Version = Version(1);
    /// Protocol 2: LZO payloads, client-side preprocessing.
    pub const LZO: Version = Version(2);
    /// Protocol 3: LZO payloads, server-side preprocessing (pump).
    pub const PUMP: Version = Version(3);

    /// Whether payloads are LZO-compressed (version > 1).
    pub fn compresses(self) -> bool {
        self.0 > 1
    }

    /// Whether the server preprocesses (version > 2).
    pub fn server_cpp(self) -> bool {
        self.0 > 2
    }
}

/// One file or link of a protocol-3 request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// The absolute client path (`NAME`).
    pub name: Vec<u8>,
    /// What is at that path.
    pub content: FileContent,
}

/// The body of a `NAME` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileContent {
    /// `FILE`: LZO-compressed bytes (empty = empty file).
    File(Vec<u8>),
    /// `LINK`: a symlink target, raw.
    Link(Vec<u8>),
}

/// What follows the argv of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Protocols 1 and 2: the preprocessed source, in wire form.
    Doti(Vec<u8>),
    /// Protocol 3: the source tree the include server found.
    Files(Vec<FileEntry>),
}

/// A complete client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The protocol version (`DIST`).
    pub version: Version,
    /// The client's working directory (v3 only).
    pub cwd: Option<Vec<u8>>,
    /// The compiler command line, argv[0] = compiler.
    pub argv: Vec<Vec<u8>>,
    /// The source.
    pub body: Body,
}

/// A complete server response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The protocol version echoed in `DONE`.
    pub version: u32,
    /// The compiler's wait status (`exit << 8`, or a signal number).
    pub status: u32,
    /// Compiler stderr, in wire form.
    pub stderr: Vec<u8>,
    /// Compiler stdout, in wire form.
    pub stdout: Vec<u8>,
    /// The object file, in wire form (empty when the compile failed).
    pub object: Vec<u8>,
    /// The dependency file (v3 and success only), in wire form.
    pub dotd: Option<Vec<u8>>,
}

/// Encodes the part of a request before the body: DIST, CDIR, ARGC, ARGV.
///
/// Protocols 1 and 2 send this before local preprocessing has finished.
pub fn encode_request_head(
    out: &mut Vec<u8>,
    version: Version,
    cwd: Option<&[u8]>,
    argv: &[Vec<u8>],
) -> Result<()> {
    put_header(out, Token::Dist, version.0);
    if version.server_cpp() {
        let cwd = cwd.ok_or_else(|| Error::new(Kind::Protocol, "protocol 3 needs a CDIR"))?;
        put_payload(out, Token::Cdir, cwd)?;
    }
    put_header(out, Token::Argc, count(argv.len(), "ARGC")?);
    for arg in argv {
        put_payload(out, Token::Argv, arg)?;
    }
    Ok(())
}

/// Encodes the body of a request (DOTI, or NFIL and the entries).
pub fn encode_request_body(out: &mut Vec<u8>, body: &Body) -> Result<()> {
    match body {
        Body::Doti(bytes) => put_payload(out, Token::Doti, bytes),
        Body::Files(entries) => {
            put_header(out, Token::Nfil, count(entries.len(), "NFIL")?);
            for entry in entries {
                put_payload(out, Token::Name, &entry.name)?;
                match &entry.content {
                    FileContent::File(bytes) => put_payload(out, Token::File, bytes)?,
                    FileContent::Link(target) => put_payload(out, Token::Link, target)?,
                }
            }
            Ok(())
        }
    }
}

/// Encodes a whole request.
pub fn encode_request(out: &mut Vec<u8>, req: &Request) -> Result<()> {
    encode_request_head(out, req.version, req.cwd.as_deref(), &req.argv)?;
    encode_request_body(out, &req.body)
}

/// Encodes a response: DONE, STAT, SERR, SOUT, DOTO and, if present, DOTD.
pub fn encode_response(out: &mut Vec<u8>, resp: &Response) -> Result<()> {
    put_header(out, Token::Done, resp.version);
    put_header(out, Token::Stat, resp.status);
    put_payload(out, Token::Serr, &resp.stderr)?;
    put_payload(out, Token::Sout, &resp.stdout)?;
    put_payload(out, Token::Doto, &resp.object)?;
    if let Some(dotd) = &resp.dotd {
        put_payload(out, Token::Dotd, dotd)?;
    }
    Ok(())
}

fn count(n: usize, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::new(Kind::Protocol, format!("{what} {n} too large")))
}
