//! The canned test compile `lsdistcc -pCC` sends (facts §6), built with the
//! project's wire encoder: `CC -c hello.c -o hello.o` on a one-line source,
//! as protocol 1 (raw DOTI), 2 (LZO DOTI) or 3 (CDIR `/`, one FILE
//! `/hello.c`).

use distcc::compress::compress;
use distcc::protocol::{Body, FileContent, FileEntry, Request, Version, encode_request};

/// The test source.
pub const SOURCE: &[u8] = b"int foo(){return 0;}\n";

/// The request bytes for `compiler` in `protocol` (1..=3).
pub fn request(compiler: &str, protocol: u32) -> distcc::Result<Vec<u8>> {
    let version = Version(protocol);
    let argv = [compiler, "-c", "hello.c", "-o", "hello.o"]
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    let (cwd, body) = if version.server_cpp() {
        let entry = FileEntry {
            name: b"/hello.c".to_vec(),
            content: FileContent::File(compress(SOURCE)),
        };
        (Some(b"/".to_vec()), Body::Files(vec![entry]))
    } else if version.compresses() {
        (None, Body::Doti(compress(SOURCE)))
    } else {
        (None, Body::Doti(SOURCE.to_vec()))
    };
    let mut out = Vec::new();
    encode_request(
        &mut out,
        &Request {
            version,
            cwd,
            argv,
            body,
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use distcc::protocol::{Limits, RequestDecoder};

    #[test]
    fn shapes() {
        let v1 = request("gcc", 1).unwrap();
        assert!(v1.starts_with(b"DIST00000001ARGC00000005ARGV00000003gcc"));
        assert!(v1.ends_with(b"DOTI00000015int foo(){return 0;}\n"));
        let v3 = request("cc", 3).unwrap();
        assert!(v3.starts_with(b"DIST00000003CDIR00000001/ARGC00000005"));
        for p in 1..=3 {
            let bytes = request("cc", p).unwrap();
            let req = RequestDecoder::new(Limits::default())
                .feed(&bytes)
                .unwrap()
                .expect("complete");
            assert_eq!(req.version, Version(p));
            assert_eq!(req.argv[2], b"hello.c");
        }
    }
}
