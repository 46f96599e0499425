//! Token names and the 12-byte element header of the distcc wire protocol.
//!
//! Every element starts with four ASCII letters and eight hex digits
//! (facts §1.1). Senders write lower-case, zero-padded hex; receivers parse
//! like C `strtoul(.., 16)` that must end exactly at byte 12, so upper-case
//! hex and leading blanks (`"ARGC       2"`) are accepted too.

use crate::error::{Error, Kind, Result};

/// Length of an element header: 4-byte name + 8 hex digits.
pub const HEADER_LEN: usize = 12;

/// The tokens of protocols 1-3 (facts §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Token {
    /// Request header; value = protocol version.
    Dist,
    /// Client working directory (v3).
    Cdir,
    /// Number of argv strings.
    Argc,
    /// One argv element.
    Argv,
    /// Preprocessed source (v1 raw, v2 LZO).
    Doti,
    /// Number of NAME + FILE/LINK pairs (v3).
    Nfil,
    /// Absolute client path of the next file or link (v3).
    Name,
    /// File contents, LZO (v3).
    File,
    /// Symlink target (v3, never compressed).
    Link,
    /// Response header; value = protocol version.
    Done,
    /// Compiler wait status.
    Stat,
    /// Compiler stderr.
    Serr,
    /// Compiler stdout.
    Sout,
    /// Object file.
    Doto,
    /// Dependency file (v3).
    Dotd,
}

const ALL: [Token; 15] = [
    Token::Dist,
    Token::Cdir,
    Token::Argc,
    Token::Argv,
    Token::Doti,
    Token::Nfil,
    Token::Name,
    Token::File,
    Token::Link,
    Token::Done,
    Token::Stat,
    Token::Serr,
    Token::Sout,
    Token::Doto,
    Token::Dotd,
];

impl Token {
    /// The four ASCII bytes of the token name.
    pub fn name(self) -> &'static [u8; 4] {
        match self {
            Token::Dist => b"DIST",
            Token::Cdir => b"CDIR",
            Token::Argc => b"ARGC",
            Token::Argv => b"ARGV",
            Token::Doti => b"DOTI",
            Token::Nfil => b"NFIL",
            Token::Name => b"NAME",
            Token::File => b"FILE",
            Token::Link => b"LINK",
            Token::Done => b"DONE",
            Token::Stat => b"STAT",
            Token::Serr => b"SERR",
            Token::Sout => b"SOUT",
            Token::Doto => b"DOTO",
            Token::Dotd => b"DOTD",
        }
    }

    /// The token with this four-byte name, if any.
    pub fn from_name(name: &[u8]) -> Option<Token> {
        ALL.iter().copied().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(self.name()).unwrap_or("????"))
    }
}

/// Appends a header for `token` with `value`, as stock senders write it.
pub fn put_header(out: &mut Vec<u8>, token: Token, value: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 8];
    for (i, digit) in text.iter_mut().enumerate() {
        *digit = HEX[((value >> (28 - 4 * i)) & 0xf) as usize];
    }
    out.extend_from_slice(token.name());
    out.extend_from_slice(&text);
}

/// Appends a length-prefixed element: header with the payload length, then the payload.
///
/// Payloads are limited to `u32::MAX` bytes by the protocol; a longer one is
/// a caller bug and is refused rather than silently truncated as stock does.
pub fn put_payload(out: &mut Vec<u8>, token: Token, payload: &[u8]) -> Result<()> {
    let len = payload_len(token, payload.len())?;
    put_header(out, token, len);
    out.extend_from_slice(payload);
    Ok(())
}

/// A payload length as the header's 32-bit value (the protocol's limit).
pub fn payload_len(token: Token, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| {
        Error::new(
            Kind::OutOfMemory,
            format!("{token} payload of {n} bytes exceeds 4 GiB"),
        )
    })
}

/// Parses the 8-character value field like `strtoul(s, &end, 16)` with
/// `end == s + 8`: optional blanks, optional `+`, optional `0x`, then hex
/// digits to the end. Returns `None` when stock would reject it.
pub fn parse_value(field: &[u8]) -> Option<u32> {
    let mut i = 0;
    while i < field.len() && matches!(field[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    if i < field.len() && field[i] == b'+' {
        i += 1;
    }
    if i + 2 < field.len() && field[i] == b'0' && (field[i + 1] | 0x20) == b'x' {
        i += 2;
    }
    let digits = &field[i..];
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(16)?;
        value = value * 16 + u64::from(d);
    }
    u32::try_from(value).ok()
}

/// Parses a header and checks it names one of `expected`.
///
/// A wrong name is "protocol derailment" (exit 109 in distcc).
pub fn parse_header(header: &[u8; HEADER_LEN], expected: &[Token]) -> Result<(Token, u32)> {
    let name = &header[..4];
    let token = expected.iter().copied().find(|t| t.name() == name);
    let Some(token) = token else {
        let want: Vec<String> = expected.iter().map(|t| t.to_string()).collect();
        return Err(Error::new(
            Kind::Protocol,
            format!(
                "protocol derailment: expected {}, got {:?}",
                want.join(" or "),
                String::from_utf8_lossy(header)
            ),
        ));
    };
    let value = parse_value(&header[4..]).ok_or_else(|| {
        Error::new(
            Kind::Protocol,
            format!(
                "bad value in {token} header {:?}",
                String::from_utf8_lossy(header)
            ),
        )
    })?;
    Ok((token, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(s: &str) -> [u8; 12] {
        s.as_bytes().try_into().unwrap()
    }

    #[test]
    fn writes_lowercase_zero_padded() {
        let mut out = Vec::new();
        put_header(&mut out, Token::Stat, 0x6e00);
        put_payload(&mut out, Token::Argv, b"hello.c").unwrap();
        assert_eq!(out, b"STAT00006e00ARGV00000007hello.c");
    }

    #[test]
    fn reads_what_stock_reads() {
        assert_eq!(
            parse_header(&hdr("DIST00000003"), &[Token::Dist]).unwrap(),
            (Token::Dist, 3)
        );
        assert_eq!(
            parse_header(&hdr("ARGC       2"), &[Token::Argc])
                .unwrap()
                .1,
            2
        );
        assert_eq!(
            parse_header(&hdr("STAT00006E00"), &[Token::Stat])
                .unwrap()
                .1,
            0x6e00
        );
        assert_eq!(parse_value(b"0x00001f"), Some(0x1f));
        assert_eq!(parse_value(b"+0000010"), Some(16));
        assert_eq!(parse_value(b"ffffffff"), Some(u32::MAX));
    }

    #[test]
    fn rejects_what_stock_rejects() {
        assert!(parse_value(b"        ").is_none());
        assert!(parse_value(b"0000001 ").is_none());
        assert!(parse_value(b"-0000001").is_none());
        assert!(parse_value(b"0000zz01").is_none());
        let e = parse_header(&hdr("DOTI00000001"), &[Token::File, Token::Link]).unwrap_err();
        assert_eq!(e.kind(), Kind::Protocol);
        assert!(e.to_string().contains("FILE or LINK"));
    }

    #[test]
    fn names_round_trip() {
        for t in ALL {
            assert_eq!(Token::from_name(t.name()), Some(t));
        }
        assert_eq!(Token::from_name(b"XXXX"), None);
    }
}
