//! Incremental decoders for requests (daemon side) and responses (client side).
//!
//! Feed them bytes as they arrive, in pieces of any size; they return the
//! complete message once its last byte is in. The receiver always knows which
//! token comes next (facts §1.1), so every element is checked against the
//! expected name; the only alternation is FILE or LINK after NAME.
//!
//! Every count and length is checked against [`Limits`] when its header is
//! read, before anything is allocated, and payload buffers grow only with the
//! bytes that really arrived: a hostile peer cannot make us reserve memory
//! by announcing a huge length (the daemon's direct reads reserve at most
//! 8 MiB of address space ahead of the bytes, see `payload_room`).

use super::message::{Body, FileContent, FileEntry, Request, Response, Version};
use super::token::{HEADER_LEN, Token, parse_header};
use crate::error::{Error, Kind, Result};
use std::io::Read;
use std::mem::MaybeUninit;

/// Upper bounds on what a peer may send.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most argv elements.
    pub max_argc: u32,
    /// Longest single string (ARGV, CDIR, NAME, LINK).
    pub max_string: u32,
    /// Largest single file payload (DOTI, FILE, SERR, SOUT, DOTO, DOTD) in wire form.
    pub max_payload: u32,
    /// Most NAME entries in a protocol-3 request.
    pub max_files: u32,
    /// Most bytes in one message, all elements together.
    pub max_total: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_argc: 16 * 1024,
            max_string: 1024 * 1024,
            max_payload: 512 * 1024 * 1024,
            max_files: 200_000,
            max_total: 1024 * 1024 * 1024,
        }
    }
}

/// One decoded element.
enum Element {
    Value(u32),
    Payload(Token, Vec<u8>),
}

fn is_value_token(t: Token) -> bool {
    matches!(
        t,
        Token::Dist | Token::Argc | Token::Nfil | Token::Done | Token::Stat
    )
}

fn is_string_token(t: Token) -> bool {
    matches!(t, Token::Argv | Token::Cdir | Token::Name | Token::Link)
}

/// Payloads with at least this many bytes still to come are read straight
/// into their buffer ([`RequestDecoder::payload_room`]).
const DIRECT_MIN: usize = 16 * 1024;

/// The most address space reserved for a payload before its bytes arrive.
const DIRECT_FIRST: usize = 8 * 1024 * 1024;

/// Reads one element at a time out of a byte stream that arrives in pieces.
#[derive(Default)]
struct ElementReader {
    header: [u8; HEADER_LEN],
    header_fill: usize,
    /// The payload being filled: its token, the bytes so far, the full length.
    payload: Option<(Token, Vec<u8>, usize)>,
    /// Bytes of that payload the caller moved past us (they follow the
    /// bytes held, see [`RequestDecoder::source_moved`]).
    moved: usize,
    total: u64,
}

impl ElementReader {
    /// Consumes bytes from `data[*pos..]` until one element expected to be
    /// one of `expected` is complete. `Ok(None)`: all input used, need more.
    fn next(
        &mut self,
        data: &[u8],
        pos: &mut usize,
        expected: &[Token],
        limits: &Limits,
    ) -> Result<Option<Element>> {
        if self.payload.is_none() {
            let want = HEADER_LEN - self.header_fill;
            let take = want.min(data.len() - *pos);
            self.header[self.header_fill..self.header_fill + take]
                .copy_from_slice(&data[*pos..*pos + take]);
            self.header_fill += take;
            *pos += take;
            if self.header_fill < HEADER_LEN {
                return Ok(None);
            }
            self.header_fill = 0;
            let (token, value) = parse_header(&self.header, expected)?;
            self.total += HEADER_LEN as u64;
            if is_value_token(token) {
                self.check_total(limits)?;
                return Ok(Some(Element::Value(value)));
            }
            let cap = if is_string_token(token) {
                limits.max_string
            } else {
                limits.max_payload
            };
            if value > cap {
                return Err(Error::new(
                    Kind::OutOfMemory,
                    format!("{token} of {value} bytes exceeds the limit of {cap}"),
                ));
            }
            self.total += u64::from(value);
            self.check_total(limits)?;
            let mut buf = Vec::new();
            if value as usize >= DIRECT_MIN {
                // The room direct reads would take, reserved before the
                // first bytes are copied in: growing later would copy.
                buf.reserve_exact((value as usize).min(DIRECT_FIRST));
            }
            self.payload = Some((token, buf, value as usize));
        }
        if self.moved > 0 {
            return Err(Error::new(
                Kind::Protocol,
                "payload bytes fed after the caller began moving them",
            ));
        }
        let (token, mut buf, len) = self.payload.take().expect("payload in progress");
        let take = (len - buf.len()).min(data.len() - *pos);
        buf.extend_from_slice(&data[*pos..*pos + take]);
        *pos += take;
        if buf.len() < len {
            self.payload = Some((token, buf, len));
            return Ok(None);
        }
        Self::finish(token, buf)
    }

    /// Bytes of the payload in progress still to come.
    fn remaining(&self) -> Option<usize> {
        let (_, buf, len) = self.payload.as_ref()?;
        Some(len - buf.len() - self.moved)
    }

    /// Counts `n` bytes of the payload in progress as moved past us; the
    /// payload element (holding only the bytes that came through us) once
    /// all have been moved.
    fn payload_moved(&mut self, n: usize) -> Result<Option<Element>> {
        let Some(left) = self.remaining() else {
            return Err(Error::new(Kind::Protocol, "no payload in progress"));
        };
        if n > left {
            return Err(Error::new(
                Kind::Protocol,
                format!("{n} bytes moved with only {left} left in the payload"),
            ));
        }
        self.moved += n;
        if n < left {
            return Ok(None);
        }
        self.moved = 0;
        let (token, buf, _) = self.payload.take().expect("payload in progress");
        Self::finish(token, buf)
    }

    /// Room for the next bytes of a large payload in progress, to read into
    /// directly. The first room is the announced length up to
    /// [`DIRECT_FIRST`] (address space: pages become resident only as bytes
    /// arrive), so a typical source needs no reallocation and no copy; past
    /// that the buffer grows by at most `max(chunk, bytes so far)` at a time,
    /// never beyond the announced length, so memory follows the bytes that
    /// really arrived.
    fn payload_room(&mut self, chunk: usize) -> Option<&mut [MaybeUninit<u8>]> {
        if self.moved > 0 {
            return None;
        }
        let (_, buf, len) = self.payload.as_mut()?;
        let remaining = *len - buf.len();
        if remaining < DIRECT_MIN {
            return None;
        }
        if buf.capacity() == buf.len() {
            let grow = if buf.is_empty() {
                DIRECT_FIRST
            } else {
                chunk.max(buf.len())
            };
            buf.reserve_exact(remaining.min(grow));
        }
        let room = remaining.min(buf.capacity() - buf.len());
        Some(&mut buf.spare_capacity_mut()[..room])
    }

    /// Counts `n` bytes written into [`Self::payload_room`] as received.
    ///
    /// # Safety
    /// The first `n` bytes of the last room handed out must have been
    /// initialised.
    unsafe fn payload_filled(&mut self, n: usize) -> Result<Option<Element>> {
        let Some((_, buf, len)) = self.payload.as_mut() else {
            return Ok(None);
        };
        if self.moved > 0 {
            return Ok(None);
        }
        let n = n.min(*len - buf.len()).min(buf.capacity() - buf.len());
        // SAFETY: the caller initialised these bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        if buf.len() < *len {
            return Ok(None);
        }
        let (token, buf, _) = self.payload.take().expect("payload in progress");
        Self::finish(token, buf)
    }

    /// A complete payload as an element (strings may not hold NUL).
    fn finish(token: Token, buf: Vec<u8>) -> Result<Option<Element>> {
        if is_string_token(token) && buf.contains(&0) {
            return Err(Error::new(
                Kind::Protocol,
                format!("{token} string contains a NUL byte"),
            ));
        }
        Ok(Some(Element::Payload(token, buf)))
    }

    fn check_total(&self, limits: &Limits) -> Result<()> {
        if self.total > limits.max_total {
            return Err(Error::new(
                Kind::OutOfMemory,
                format!("message exceeds {} bytes", limits.max_total),
            ));
        }
        Ok(())
    }

    /// Whether the reader is between elements.
    fn at_boundary(&self) -> bool {
        self.header_fill == 0 && self.payload.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestPhase {
    Dist,
    Cdir,
    Argc,
    Argv(u32),
    Doti,
    Nfil,
    Name(u32),
    Entry(u32),
    Complete,
}

/// Decodes one client request (protocol 1, 2 or 3).
pub struct RequestDecoder {
    limits: Limits,
    reader: ElementReader,
    phase: RequestPhase,
    version: Version,
    cwd: Option<Vec<u8>>,
    argv: Vec<Vec<u8>>,
    files: Vec<FileEntry>,
    pending_name: Vec<u8>,
}

impl RequestDecoder {
    /// A decoder that enforces `limits`.
    pub fn new(limits: Limits) -> RequestDecoder {
        RequestDecoder {
            limits,
            reader: ElementReader::default(),
            phase: RequestPhase::Dist,
            version: Version(0),
            cwd: None,
            argv: Vec::new(),
            files: Vec::new(),
            pending_name: Vec::new(),
        }
    }

    /// The version once `DIST` has been read.
    pub fn version(&self) -> Option<Version> {
        (self.phase != RequestPhase::Dist).then_some(self.version)
    }

    /// The complete argv once every ARGV has been read (before the body).
    pub fn argv(&self) -> Option<&[Vec<u8>]> {
        match self.phase {
            RequestPhase::Dist
            | RequestPhase::Cdir
            | RequestPhase::Argc
            | RequestPhase::Argv(_) => None,
            _ => Some(&self.argv),
        }
    }

    /// Feeds bytes. Returns the request when it is complete; bytes after the
    /// end of the request are an error (stock logs "Bug!"; we refuse).
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Request>> {
        let mut pos = 0;
        while pos < data.len() {
            if self.phase == RequestPhase::Complete {
                return Err(Error::new(
                    Kind::Protocol,
                    "unexpected bytes after the end of the request",
                ));
            }
            let expected = self.expected();
            let Some(element) = self.reader.next(data, &mut pos, expected, &self.limits)? else {
                break;
            };
            self.accept(element)?;
        }
        if self.phase == RequestPhase::Complete && self.reader.at_boundary() {
            return Ok(Some(self.take_request()));
        }
        Ok(None)
    }

    /// Whether the body of the source or of a file is arriving: the client
    /// sent its header and part of it. Stock counts a client that leaves
    /// here as disconnected (`CLI_DISCONN`), and one that leaves between or
    /// inside tokens as a failed request.
    pub fn in_body(&self) -> bool {
        matches!(self.phase, RequestPhase::Doti | RequestPhase::Entry(_))
            && self.reader.payload.is_some()
    }

    /// While a large payload (a source, a file) is arriving: room to read
    /// its next bytes into directly, which saves copying them through a
    /// scratch buffer. Fill some of it, then call [`Self::payload_filled`].
    pub fn payload_room(&mut self, chunk: usize) -> Option<&mut [MaybeUninit<u8>]> {
        if self.phase == RequestPhase::Complete {
            return None;
        }
        self.reader.payload_room(chunk)
    }

    /// Counts `n` bytes read into the last [`Self::payload_room`]; returns
    /// the request when it is complete, like [`Self::feed`].
    ///
    /// # Safety
    /// The first `n` bytes of that room must have been initialised.
    pub unsafe fn payload_filled(&mut self, n: usize) -> Result<Option<Request>> {
        // SAFETY: forwarded from the caller.
        if let Some(element) = unsafe { self.reader.payload_filled(n) }? {
            self.accept(element)?;
        }
        if self.phase == RequestPhase::Complete && self.reader.at_boundary() {
            return Ok(Some(self.take_request()));
        }
        Ok(None)
    }

    /// While the source (DOTI) of a protocol-1 request (uncompressed) is
    /// arriving: how many of its bytes are still to come. The caller may
    /// then move them past the decoder (the daemon splices them from the
    /// socket into a pipe, with no copy) and count them with
    /// [`Self::source_moved`]; the source is then the bytes the decoder
    /// already holds (the body of the request) followed by the moved ones.
    pub fn source_remaining(&self) -> Option<usize> {
        if self.phase != RequestPhase::Doti || self.version.compresses() {
            return None;
        }
        self.reader.remaining()
    }

    /// The bytes of the source (see [`Self::source_remaining`]) the decoder
    /// holds so far.
    pub fn source_so_far(&self) -> Option<&[u8]> {
        self.source_remaining()?;
        self.reader.payload.as_ref().map(|(_, buf, _)| &buf[..])
    }

    /// Counts `n` bytes of the source moved past the decoder (see
    /// [`Self::source_remaining`]); once the caller has started, every
    /// remaining byte of the source must go that way. Returns the request
    /// when it is complete.
    pub fn source_moved(&mut self, n: usize) -> Result<Option<Request>> {
        if self.source_remaining().is_none() {
            return Err(Error::new(Kind::Protocol, "no source in progress"));
        }
        if let Some(element) = self.reader.payload_moved(n)? {
            self.accept(element)?;
        }
        if self.phase == RequestPhase::Complete && self.reader.at_boundary() {
            return Ok(Some(self.take_request()));
        }
        Ok(None)
    }

    fn expected(&self) -> &'static [Token] {
        match self.phase {
            RequestPhase::Dist => &[Token::Dist],
            RequestPhase::Cdir => &[Token::Cdir],
            RequestPhase::Argc => &[Token::Argc],
            RequestPhase::Argv(_) => &[Token::Argv],
            RequestPhase::Doti => &[Token::Doti],
            RequestPhase::Nfil => &[Token::Nfil],
            RequestPhase::Name(_) => &[Token::Name],
            RequestPhase::Entry(_) => &[Token::File, Token::Link],
            RequestPhase::Complete => &[],
        }
    }

    fn accept(&mut self, element: Element) -> Result<()> {
        self.phase = match (self.phase, element) {
            (RequestPhase::Dist, Element::Value(v)) => {
                if v > 3 {
                    return Err(Error::new(
                        Kind::Protocol,
                        format!("unsupported protocol version {v}"),
                    ));
                }
                // Version 0 is accepted as 1 by stock (and echoed as 0).
                self.version = Version(v);
                if self.version.server_cpp() {
                    RequestPhase::Cdir
                } else {
                    RequestPhase::Argc
                }
            }
            (RequestPhase::Cdir, Element::Payload(_, cwd)) => {
                self.cwd = Some(cwd);
                RequestPhase::Argc
            }
            (RequestPhase::Argc, Element::Value(n)) => {
                if n == 0 || n > self.limits.max_argc {
                    return Err(Error::new(
                        Kind::Protocol,
                        format!("ARGC {n} out of range 1..={}", self.limits.max_argc),
                    ));
                }
                RequestPhase::Argv(n)
            }
            (RequestPhase::Argv(left), Element::Payload(_, arg)) => {
                self.argv.push(arg);
                match left - 1 {
                    0 if self.version.server_cpp() => RequestPhase::Nfil,
                    0 => RequestPhase::Doti,
                    n => RequestPhase::Argv(n),
                }
            }
            (RequestPhase::Doti, Element::Payload(_, bytes)) => {
                self.files = vec![FileEntry {
                    name: Vec::new(),
                    content: FileContent::File(bytes),
                }];
                RequestPhase::Complete
            }
            (RequestPhase::Nfil, Element::Value(n)) => {
                if n > self.limits.max_files {
                    return Err(Error::new(
                        Kind::Protocol,
                        format!("NFIL {n} exceeds {}", self.limits.max_files),
                    ));
                }
                if n == 0 {
                    RequestPhase::Complete
                } else {
                    RequestPhase::Name(n)
                }
            }
            (RequestPhase::Name(left), Element::Payload(_, name)) => {
                self.pending_name = name;
                RequestPhase::Entry(left)
            }
            (RequestPhase::Entry(left), Element::Payload(token, bytes)) => {
                let content = if token == Token::Link {
                    FileContent::Link(bytes)
                } else {
                    FileContent::File(bytes)
                };
                self.files.push(FileEntry {
                    name: std::mem::take(&mut self.pending_name),
                    content,
                });
                if left == 1 {
                    RequestPhase::Complete
                } else {
                    RequestPhase::Name(left - 1)
                }
            }
            (phase, _) => {
                return Err(Error::new(
                    Kind::Protocol,
                    format!("unexpected element in phase {phase:?}"),
                ));
            }
        };
        Ok(())
    }

    fn take_request(&mut self) -> Request {
        let files = std::mem::take(&mut self.files);
        let body = if self.version.server_cpp() {
            Body::Files(files)
        } else {
            match files.into_iter().next().map(|f| f.content) {
                Some(FileContent::File(bytes)) => Body::Doti(bytes),
                _ => Body::Doti(Vec::new()),
            }
        };
        Request {
            version: self.version,
            cwd: self.cwd.take(),
            argv: std::mem::take(&mut self.argv),
            body,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponsePhase {
    Done,
    Stat,
    Serr,
    Sout,
    Doto,
    Dotd,
    Complete,
}

/// Decodes one server response. `DOTD` is expected for protocol 3 when the
/// status is 0, as stock servers always send it then.
pub struct ResponseDecoder {
    limits: Limits,
    reader: ElementReader,
    phase: ResponsePhase,
    expected_version: u32,
    response: Response,
}

impl ResponseDecoder {
    /// A decoder for the reply to a request of `version`.
    pub fn new(version: Version, limits: Limits) -> ResponseDecoder {
        ResponseDecoder {
            limits,
            reader: ElementReader::default(),
            phase: ResponsePhase::Done,
            expected_version: version.0,
            response: Response::default(),
        }
    }

    /// Feeds bytes; returns the response once complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Response>> {
        let mut pos = 0;
        while pos < data.len() && self.phase != ResponsePhase::Complete {
            let expected: &[Token] = match self.phase {
                ResponsePhase::Done => &[Token::Done],
                ResponsePhase::Stat => &[Token::Stat],
                ResponsePhase::Serr => &[Token::Serr],
                ResponsePhase::Sout => &[Token::Sout],
                ResponsePhase::Doto => &[Token::Doto],
                ResponsePhase::Dotd => &[Token::Dotd],
                ResponsePhase::Complete => &[],
            };
            let Some(element) = self.reader.next(data, &mut pos, expected, &self.limits)? else {
                break;
            };
            self.accept(element)?;
        }
        if self.phase == ResponsePhase::Complete {
            return Ok(Some(std::mem::take(&mut self.response)));
        }
        Ok(None)
    }

    /// Whether a complete response has been decoded (and taken).
    pub fn is_complete(&self) -> bool {
        self.phase == ResponsePhase::Complete
    }

    fn accept(&mut self, element: Element) -> Result<()> {
        let r = &mut self.response;
        self.phase = match (self.phase, element) {
            (ResponsePhase::Done, Element::Value(v)) => {
                if v != self.expected_version {
                    return Err(Error::new(
                        Kind::Protocol,
                        format!(
                            "server replied with protocol {v}, expected {}",
                            self.expected_version
                        ),
                    ));
                }
                r.version = v;
                ResponsePhase::Stat
            }
            (ResponsePhase::Stat, Element::Value(s)) => {
                r.status = s;
                ResponsePhase::Serr
            }
            (ResponsePhase::Serr, Element::Payload(_, b)) => {
                r.stderr = b;
                ResponsePhase::Sout
            }
            (ResponsePhase::Sout, Element::Payload(_, b)) => {
                r.stdout = b;
                ResponsePhase::Doto
            }
            (ResponsePhase::Doto, Element::Payload(_, b)) => {
                r.object = b;
                if self.expected_version > 2 && r.status == 0 {
                    ResponsePhase::Dotd
                } else {
                    ResponsePhase::Complete
                }
            }
            (ResponsePhase::Dotd, Element::Payload(_, b)) => {
                r.dotd = Some(b);
                ResponsePhase::Complete
            }
            (phase, _) => {
                return Err(Error::new(
                    Kind::Protocol,
                    format!("unexpected element in phase {phase:?}"),
                ));
            }
        };
        Ok(())
    }
}

/// What a client says when a server closed the connection without a reply.
const NO_ANSWER: &str = "server provided no answer (it closed the connection: it refused this client, \
     for example by its --allow list; or the compiler is not installed or not allowed there \
     (a masquerade link in /usr/lib/distcc, DISTCC_CMDLIST); or the job failed there)";

/// Reads a whole response from a blocking reader (the client side).
///
/// End of stream before the response is complete is "truncated" (108):
/// that is how a stock server refuses a job (facts §1.7).
pub fn read_response<R: Read>(
    reader: &mut R,
    version: Version,
    limits: Limits,
) -> Result<Response> {
    let mut decoder = ResponseDecoder::new(version, limits);
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::new(
                    Kind::Timeout,
                    "the server sent nothing within the I/O timeout (DISTCC_IO_TIMEOUT)",
                ));
            }
            // A server that refuses (its --allow list, or it is busy) closes
            // the connection, and unread request bytes turn that into a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && received == 0 => {
                return Err(Error::new(Kind::Truncated, NO_ANSWER));
            }
            Err(e) => return Err(Error::io("reading the server's reply", e)),
        };
        if n == 0 {
            let what = if received == 0 {
                NO_ANSWER
            } else {
                "server reply ended early"
            };
            return Err(Error::new(Kind::Truncated, what));
        }
        received += n as u64;
        if let Some(resp) = decoder.feed(&buf[..n])? {
            return Ok(resp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::{encode_request, encode_response};
    use super::*;

    fn pump_request() -> Request {
        Request {
            version: Version::PUMP,
            cwd: Some(b"/home/u/p".to_vec()),
            argv: vec![b"gcc".to_vec(), b"-c".to_vec(), b"a.c".to_vec()],
            body: Body::Files(vec![
                FileEntry {
                    name: b"/home/u/p/a.c".to_vec(),
                    content: FileContent::File(vec![1, 2, 3]),
                },
                FileEntry {
                    name: b"/usr/include".to_vec(),
                    content: FileContent::Link(b"../../usr/include".to_vec()),
                },
            ]),
        }
    }

    #[test]
    fn request_round_trip_byte_by_byte() {
        for req in [
            pump_request(),
            Request {
                version: Version::PLAIN,
                cwd: None,
                argv: vec![b"cc".to_vec(), b"-c".to_vec()],
                body: Body::Doti(b"int x;".to_vec()),
            },
        ] {
            let mut wire = Vec::new();
            encode_request(&mut wire, &req).unwrap();
            let mut dec = RequestDecoder::new(Limits::default());
            let mut got = None;
            for b in &wire {
                if let Some(r) = dec.feed(std::slice::from_ref(b)).unwrap() {
                    got = Some(r);
                }
            }
            assert_eq!(got.unwrap(), req);
        }
    }

    /// Large payloads read straight into their buffers, mixed with small
    /// feeds for everything else, give the same request.
    #[test]
    fn direct_payload_reads_give_the_same_request() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut pump = pump_request();
        if let Body::Files(files) = &mut pump.body {
            files.insert(
                1,
                FileEntry {
                    name: b"/home/u/p/big.h".to_vec(),
                    content: FileContent::File(big.clone()),
                },
            );
        }
        for req in [
            pump,
            Request {
                version: Version::PLAIN,
                cwd: None,
                argv: vec![b"cc".to_vec(), b"-c".to_vec()],
                body: Body::Doti(big.clone()),
            },
        ] {
            let mut wire = Vec::new();
            encode_request(&mut wire, &req).unwrap();
            let mut dec = RequestDecoder::new(Limits::default());
            let (mut pos, mut got, mut direct) = (0, None, 0);
            while pos < wire.len() {
                let r = if let Some(room) = dec.payload_room(5000) {
                    assert!(room.len() <= 300_000);
                    let n = room.len().min(3001).min(wire.len() - pos);
                    for (dst, src) in room.iter_mut().zip(&wire[pos..pos + n]) {
                        dst.write(*src);
                    }
                    pos += n;
                    direct += n;
                    // SAFETY: the first n bytes were written just above.
                    unsafe { dec.payload_filled(n) }.unwrap()
                } else {
                    let n = 7.min(wire.len() - pos);
                    pos += n;
                    dec.feed(&wire[pos - n..pos]).unwrap()
                };
                if r.is_some() {
                    got = r;
                }
            }
            assert!(direct > 250_000, "only {direct} bytes went direct");
            assert_eq!(got.unwrap(), req);
        }
    }

    /// A protocol-1 source may be moved past the decoder after its first
    /// bytes: the request then holds only those, and nothing else may be
    /// fed until the source is complete.
    #[test]
    fn a_plain_source_can_be_moved_past_the_decoder() {
        let source: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let req = Request {
            version: Version::PLAIN,
            cwd: None,
            argv: vec![b"cc".to_vec(), b"-c".to_vec(), b"a.i".to_vec()],
            body: Body::Doti(source.clone()),
        };
        let mut wire = Vec::new();
        encode_request(&mut wire, &req).unwrap();
        let doti_data = wire.len() - source.len();
        let mut dec = RequestDecoder::new(Limits::default());
        assert!(dec.feed(&wire[..doti_data - 12]).unwrap().is_none());
        assert_eq!(dec.source_remaining(), None, "DOTI header not read yet");
        assert!(
            dec.feed(&wire[doti_data - 12..doti_data + 10])
                .unwrap()
                .is_none()
        );
        assert_eq!(dec.source_remaining(), Some(source.len() - 10));
        assert_eq!(dec.source_so_far(), Some(&source[..10]));
        assert!(dec.source_moved(40_000).unwrap().is_none());
        assert!(
            dec.payload_room(1 << 20).is_none(),
            "no direct reads once moving"
        );
        assert!(dec.feed(&wire[doti_data + 10..doti_data + 11]).is_err());
        let mut dec = RequestDecoder::new(Limits::default());
        dec.feed(&wire[..doti_data + 10]).unwrap();
        dec.source_moved(40_000).unwrap();
        assert!(
            dec.source_moved(source.len()).is_err(),
            "more than announced"
        );
        let got = dec.source_moved(source.len() - 40_010).unwrap().unwrap();
        assert_eq!(got.body, Body::Doti(source[..10].to_vec()));
        assert_eq!(got.argv, req.argv);
        // Compressed sources must go through the decoder (they are decoded).
        let lzo = Request {
            version: Version::LZO,
            ..req
        };
        let mut wire = Vec::new();
        encode_request(&mut wire, &lzo).unwrap();
        let mut dec = RequestDecoder::new(Limits::default());
        dec.feed(&wire[..wire.len() - 100]).unwrap();
        assert_eq!(dec.source_remaining(), None);
        assert!(dec.source_moved(1).is_err());
    }

    #[test]
    fn huge_lengths_are_refused_before_allocation() {
        let mut dec = RequestDecoder::new(Limits::default());
        let e = dec
            .feed(b"DIST00000001ARGC00000001ARGVffffffff")
            .unwrap_err();
        assert_eq!(e.kind(), Kind::OutOfMemory);
        let mut dec = RequestDecoder::new(Limits::default());
        let e = dec.feed(b"DIST00000001ARGC7fffffff").unwrap_err();
        assert_eq!(e.kind(), Kind::Protocol);
        let mut dec = RequestDecoder::new(Limits::default());
        let e = dec
            .feed(b"DIST00000003CDIR00000001/ARGC00000001ARGV00000001xNFILffffffff")
            .unwrap_err();
        assert_eq!(e.kind(), Kind::Protocol);
    }

    #[test]
    fn bad_versions_and_garbage() {
        let mut dec = RequestDecoder::new(Limits::default());
        assert_eq!(
            dec.feed(b"DIST00000004").unwrap_err().kind(),
            Kind::Protocol
        );
        let mut dec = RequestDecoder::new(Limits::default());
        assert!(dec.feed(b"GET / HTTP/1.1\r\n").is_err());
        let mut dec = RequestDecoder::new(Limits::default());
        assert!(
            dec.feed(b"DIST00000001ARGC00000001ARGV00000002a\0")
                .is_err()
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut wire = Vec::new();
        encode_request(&mut wire, &pump_request()).unwrap();
        wire.extend_from_slice(b"XX");
        let mut dec = RequestDecoder::new(Limits::default());
        assert!(dec.feed(&wire).is_err());
    }

    #[test]
    fn response_round_trip_and_dotd_rule() {
        let resp = Response {
            version: 3,
            status: 0,
            stderr: Vec::new(),
            stdout: b"o".to_vec(),
            object: b"ELF".to_vec(),
            dotd: Some(b"d".to_vec()),
        };
        let mut wire = Vec::new();
        encode_response(&mut wire, &resp).unwrap();
        let got = read_response(&mut wire.as_slice(), Version::PUMP, Limits::default()).unwrap();
        assert_eq!(got, resp);

        let failed = Response {
            version: 3,
            status: 0x100,
            dotd: None,
            ..Response::default()
        };
        let mut wire = Vec::new();
        encode_response(&mut wire, &failed).unwrap();
        let got = read_response(&mut wire.as_slice(), Version::PUMP, Limits::default()).unwrap();
        assert_eq!(got, failed);
    }

    #[test]
    fn response_errors() {
        let e = read_response(&mut &b""[..], Version::PLAIN, Limits::default()).unwrap_err();
        assert_eq!(e.kind(), Kind::Truncated);
        assert!(e.to_string().contains("no answer"));
        let e = read_response(
            &mut &b"DONE00000002STAT00000000"[..],
            Version::PLAIN,
            Limits::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), Kind::Protocol);
    }
}
