//! Building a job's reply (facts §1.6: DONE, STAT, SERR, SOUT, DOTO and,
//! for protocol 3, DOTD). For a plain protocol the object stays in its
//! file, opened, and the event loop sends it after the buffer with
//! `sendfile` (no copy into our memory); for LZO ones it is compressed
//! straight into the buffer. Objects of large C++ units are megabytes;
//! copying them through our memory was a visible part of the daemon's own
//! CPU.

use distcc::protocol::Token;
use distcc::protocol::token::{payload_len, put_header, put_payload};
use distcc::{Error, Result, compress};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// An encoded reply: the bytes, then (plain protocols) the object's file,
/// whose length is already in the DOTO header at the end of the bytes.
pub struct Reply {
    pub bytes: Vec<u8>,
    pub file: Option<(File, u64)>,
}

impl Reply {
    /// The whole reply in memory (for writers that cannot sendfile, and tests).
    pub fn into_bytes(self) -> Result<Vec<u8>> {
        let mut bytes = self.bytes;
        if let Some((mut f, len)) = self.file {
            let start = bytes.len();
            f.read_to_end(&mut bytes)
                .map_err(|e| Error::io("reading the object", e))?;
            if (bytes.len() - start) as u64 != len {
                return Err(Error::io(
                    "reading the object",
                    std::io::Error::other("the object changed size while read"),
                ));
            }
        }
        Ok(bytes)
    }
}

/// Smallest object sent from its file rather than through the buffer.
pub const SENDFILE_MIN: usize = 128 * 1024;

/// Where the object comes from.
pub enum Object<'a> {
    /// No object (the compile failed or the job ended early).
    None,
    /// The compiler's output file, sent as it is.
    File(&'a Path),
    /// Bytes already in memory (after a debug-info rewrite).
    Bytes(Vec<u8>),
}

/// The reply of one job. `compressed`: the protocol sends LZO payloads.
pub fn build(
    version: u32,
    status: i32,
    compressed: bool,
    stderr: &[u8],
    stdout: &[u8],
    object: Object<'_>,
    dotd: Option<&[u8]>,
) -> Result<Reply> {
    // A compile that "succeeded" without writing its output sends an empty
    // object, as before.
    let file = match object {
        Object::File(path) => std::fs::File::open(path).ok(),
        _ => None,
    };
    let file_len = match &file {
        Some(f) => f
            .metadata()
            .map_err(|e| Error::io("stat of the object", e))?
            .len() as usize,
        None => 0,
    };
    let bytes_len = match &object {
        Object::Bytes(b) => b.len(),
        _ => 0,
    };
    // The file goes out by itself when nothing follows it (DOTD only
    // comes with protocol 3, whose objects are in memory), and when it is
    // big enough for the saved copy to outweigh a second system call.
    let send_file = !compressed && dotd.is_none() && file.is_some() && file_len >= SENDFILE_MIN;
    let in_buffer = if send_file { 0 } else { file_len };
    let mut reply = Vec::with_capacity(
        96 + stderr.len() + stdout.len() + in_buffer + bytes_len + dotd.map_or(0, <[u8]>::len),
    );
    put_header(&mut reply, Token::Done, version);
    put_header(&mut reply, Token::Stat, status as u32);
    put_element(&mut reply, Token::Serr, compressed, stderr)?;
    put_element(&mut reply, Token::Sout, compressed, stdout)?;
    match (object, file) {
        (Object::File(_), Some(f)) if !compressed => {
            put_header(&mut reply, Token::Doto, payload_len(Token::Doto, file_len)?);
            let with_file = Reply {
                bytes: reply,
                file: Some((f, file_len as u64)),
            };
            if send_file {
                return Ok(with_file);
            }
            reply = with_file.into_bytes()?;
        }
        (Object::File(path), Some(mut f)) => {
            let mut data = Vec::with_capacity(file_len);
            f.read_to_end(&mut data)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            put_element(&mut reply, Token::Doto, true, &data)?;
        }
        (Object::Bytes(data), _) => put_element(&mut reply, Token::Doto, compressed, &data)?,
        (Object::File(_), None) | (Object::None, _) => put_header(&mut reply, Token::Doto, 0),
    }
    if let Some(dotd) = dotd {
        put_element(&mut reply, Token::Dotd, compressed, dotd)?;
    }
    Ok(Reply {
        bytes: reply,
        file: None,
    })
}

/// Appends one element, LZO-compressed straight into the reply when asked
/// (an empty payload stays empty, as stock sends it).
fn put_element(reply: &mut Vec<u8>, token: Token, compressed: bool, data: &[u8]) -> Result<()> {
    if !compressed || data.is_empty() {
        return put_payload(reply, token, data);
    }
    let at = reply.len();
    put_header(reply, token, 0);
    let start = reply.len();
    compress::compress_into(data, reply);
    let len = payload_len(token, reply.len() - start)?;
    let mut header = Vec::with_capacity(12);
    put_header(&mut header, token, len);
    reply[at..start].copy_from_slice(&header);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use distcc::protocol::{Response, encode_response};

    fn expected(compressed: bool, object: &[u8], dotd: Option<&[u8]>) -> Vec<u8> {
        let wire = |d: &[u8]| {
            if compressed {
                compress::compress(d)
            } else {
                d.to_vec()
            }
        };
        let mut out = Vec::new();
        encode_response(
            &mut out,
            &Response {
                version: 2,
                status: 0,
                stderr: wire(b"warning: x\n"),
                stdout: wire(b""),
                object: wire(object),
                dotd: dotd.map(wire),
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn same_bytes_as_the_codec() {
        let dir = std::env::temp_dir().join(format!("reply-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.o");
        let object: Vec<u8> = (0..300_000u32).map(|i| (i % 13) as u8).collect();
        std::fs::write(&path, &object).unwrap();
        let from_file = |compressed| {
            build(
                2,
                0,
                compressed,
                b"warning: x\n",
                b"",
                Object::File(&path),
                None,
            )
            .unwrap()
        };
        for compressed in [false, true] {
            let got = from_file(compressed);
            assert_eq!(
                got.file.is_some(),
                !compressed,
                "plain objects are sent from the file"
            );
            assert_eq!(
                got.into_bytes().unwrap(),
                expected(compressed, &object, None)
            );
            let got = build(
                2,
                0,
                compressed,
                b"warning: x\n",
                b"",
                Object::Bytes(object.clone()),
                Some(b"a.o: a.c\n"),
            )
            .unwrap();
            assert!(got.file.is_none());
            assert_eq!(
                got.into_bytes().unwrap(),
                expected(compressed, &object, Some(b"a.o: a.c\n"))
            );
            let got = build(2, 0, compressed, b"warning: x\n", b"", Object::None, None).unwrap();
            assert_eq!(got.into_bytes().unwrap(), expected(compressed, b"", None));
            // A small object goes through the buffer.
            std::fs::write(&path, b"small").unwrap();
            let got = from_file(compressed);
            assert!(got.file.is_none());
            assert_eq!(
                got.into_bytes().unwrap(),
                expected(compressed, b"small", None)
            );
            std::fs::write(&path, &object).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
