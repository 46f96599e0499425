//! Byte transcripts of stock distcc 3.4 (testdata/protocol/, captured by
//! scripts/capture-transcripts): our decoders must read every one, our
//! encoders must reproduce them byte for byte, and the LZO payloads must
//! decompress to the real sources, .i and .o files.

use crate::util::testdata;
use distcc::compress::{DEFAULT_MAX_OUTPUT, compress, decompress};
use distcc::protocol::{
    Body, FileContent, Limits, Request, RequestDecoder, Response, Version, encode_request,
    encode_response, read_response,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(testdata(&format!("protocol/{name}"))).unwrap()
}

/// Decodes a request fed one byte at a time, then checks re-encoding.
fn request(name: &str) -> Request {
    let bytes = fixture(&format!("{name}.request"));
    let mut dec = RequestDecoder::new(Limits::default());
    let mut done = None;
    for (i, b) in bytes.iter().enumerate() {
        if let Some(req) = dec.feed(std::slice::from_ref(b)).unwrap() {
            assert_eq!(i + 1, bytes.len(), "{name}: request ended early");
            done = Some(req);
        }
    }
    let req = done.unwrap_or_else(|| panic!("{name}: request incomplete"));
    let mut again = Vec::new();
    encode_request(&mut again, &req).unwrap();
    assert_eq!(again, bytes, "{name}: re-encoded request differs");
    req
}

/// Decodes a response with the blocking reader, then checks re-encoding.
fn response(name: &str, version: Version) -> Response {
    let bytes = fixture(&format!("{name}.response"));
    let resp = read_response(&mut &bytes[..], version, Limits::default()).unwrap();
    let mut again = Vec::new();
    encode_response(&mut again, &resp).unwrap();
    assert_eq!(again, bytes, "{name}: re-encoded response differs");
    resp
}

fn unlzo(bytes: &[u8]) -> Vec<u8> {
    decompress(bytes, DEFAULT_MAX_OUTPUT).unwrap()
}

fn argv_text(req: &Request) -> Vec<String> {
    req.argv
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[test]
fn v1_plain_compile() {
    let req = request("v1-hello");
    assert_eq!(req.version, Version::PLAIN);
    assert_eq!(
        argv_text(&req),
        ["x86_64-linux-gnu-gcc", "-c", "hello.c", "-o", "hello.o"]
    );
    let Body::Doti(doti) = &req.body else {
        panic!("v1 body is DOTI")
    };
    assert_eq!(doti, &fixture("hello.i"), "v1 DOTI is the raw .i");
    let resp = response("v1-hello", Version::PLAIN);
    assert_eq!((resp.version, resp.status), (1, 0));
    assert!(resp.stderr.is_empty() && resp.stdout.is_empty());
    assert_eq!(resp.object, fixture("hello.o"), "v1 DOTO is the raw .o");
    assert_eq!(resp.dotd, None);
}

#[test]
fn v2_lzo_compile_matches_stock_compressor() {
    let req = request("v2-hello");
    assert_eq!(req.version, Version::LZO);
    let Body::Doti(doti) = &req.body else {
        panic!("v2 body is DOTI")
    };
    let source = fixture("hello.i");
    assert_eq!(unlzo(doti), source);
    // Stock compresses with LZO1X-1 and so do we: identical bytes.
    assert_eq!(&compress(&source), doti, "our LZO1X-1 differs from stock's");
    let resp = response("v2-hello", Version::LZO);
    assert_eq!((resp.version, resp.status), (2, 0));
    assert_eq!(unlzo(&resp.object), fixture("hello.o"));
    assert_eq!(compress(&fixture("hello.o")), resp.object);
}

#[test]
fn compile_errors_come_back_in_serr() {
    for (name, version) in [("v1-error", Version::PLAIN), ("v2-error", Version::LZO)] {
        let req = request(name);
        assert_eq!(req.argv[2], b"broken.c");
        let resp = response(name, version);
        assert_eq!(resp.status, 1 << 8, "{name}: exit 1 as a wait status");
        assert!(resp.object.is_empty(), "{name}: no object on failure");
        let stderr = if version.compresses() {
            unlzo(&resp.stderr)
        } else {
            resp.stderr.clone()
        };
        let text = String::from_utf8_lossy(&stderr);
        assert!(
            text.contains("broken.c:2:") && text.contains("undeclared_name"),
            "{name}: {text}"
        );
    }
}

#[test]
fn failed_local_cpp_leaves_a_request_without_body() {
    let bytes = fixture("v1-cpp-error.request");
    let mut dec = RequestDecoder::new(Limits::default());
    assert!(dec.feed(&bytes).unwrap().is_none(), "no DOTI was sent");
    let argv = dec.argv().expect("the argv was complete");
    assert_eq!(argv[2], b"cpp-error.c");
    // The client hung up before the server answered: a truncated reply.
    let err = read_response(
        &mut &fixture("v1-cpp-error.response")[..],
        Version::PLAIN,
        Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), distcc::Kind::Truncated);
}

#[test]
fn v3_pump_request_and_reply() {
    let req = request("v3-hello");
    assert_eq!(req.version, Version::PUMP);
    let cwd = req.cwd.clone().expect("CDIR");
    let Body::Files(entries) = &req.body else {
        panic!("v3 body is NFIL")
    };
    assert_eq!(entries.len(), 3);
    for (entry, source) in entries.iter().zip(["hello.c", "hello.h"]) {
        let mut expected = cwd.clone();
        expected.extend_from_slice(b"/");
        expected.extend_from_slice(source.as_bytes());
        assert_eq!(entry.name, expected);
        let FileContent::File(lzo) = &entry.content else {
            panic!("{source} is a FILE")
        };
        assert_eq!(unlzo(lzo), fixture(source));
        assert_eq!(&compress(&fixture(source)), lzo, "{source}: LZO bytes");
    }
    assert!(entries[2].name.ends_with(b"/forcing_technique_271828"));
    assert_eq!(entries[2].content, FileContent::File(Vec::new()));

    let resp = response("v3-hello", Version::PUMP);
    assert_eq!((resp.version, resp.status), (3, 0));
    let object = unlzo(&resp.object);
    assert!(object.starts_with(b"\x7fELF"));
    assert!(
        object
            .windows(30)
            .any(|w| w == b"hello from a distcc transcript")
    );
    let dotd = resp.dotd.expect("DOTD on success in protocol 3");
    let dotd = String::from_utf8_lossy(&unlzo(&dotd)).into_owned();
    assert!(
        dotd.starts_with("hello.o:") && dotd.contains("hello.h"),
        "{dotd}"
    );
}

#[test]
fn v3_server_side_cpp_error() {
    let req = request("v3-cpp-error");
    assert_eq!(req.argv[2], b"cpp-error.c");
    let resp = response("v3-cpp-error", Version::PUMP);
    assert_eq!(resp.status, 1 << 8);
    assert!(resp.object.is_empty());
    assert_eq!(resp.dotd, None, "no DOTD after a failure");
    let text = String::from_utf8_lossy(&unlzo(&resp.stderr)).into_owned();
    assert!(text.contains("this file is broken on purpose"), "{text}");
}
