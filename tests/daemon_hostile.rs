//! Hostile input against our distccd: garbage, unsupported versions,
//! absurd counts and lengths, an LZO bomb, truncated streams, bytes after
//! the request, silent and slow clients, hundreds of connections, and
//! argument tricks that run programs or write files on a stock server.
//!
//! Each case is followed by proof that the daemon still compiles (a stock
//! client with fallback disabled), that its job directories are gone, and
//! that a victim directory the daemon user could write to is untouched.

use crate::daemon::{exchange, start, still_compiles};
use crate::util::*;
use distcc::protocol::{self, Body, Request, Version};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// A directory the daemon user may write to, outside the daemon's TMPDIR.
pub struct Victim {
    pub dir: TestDir,
    before: Vec<String>,
}

impl Victim {
    pub fn new() -> Victim {
        let dir = TestDir::new("victim");
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let f = dir.write("victim.txt", "precious\n");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let before = dir.listing();
        Victim { dir, before }
    }

    /// Takes the current listing as the reference (after planting bait).
    pub fn rebaseline(mut self) -> Victim {
        self.before = self.dir.listing();
        self
    }

    /// Asserts nothing was created, removed or changed.
    pub fn untouched(&self) {
        assert_eq!(
            self.dir.listing(),
            self.before,
            "files appeared or vanished"
        );
        assert_eq!(
            std::fs::read_to_string(self.dir.join("victim.txt")).unwrap(),
            "precious\n"
        );
    }
}

/// Waits (bounded) until nothing of a job is left in the daemon's TMPDIR:
/// only the workers' own private directories may remain, holding at most
/// the pump tree `root/` a worker keeps for its next pump job, and the
/// daemon's pump store (`distccd_store_*`, files only).
pub fn no_job_files_left(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left = Vec::new();
        for entry in std::fs::read_dir(d.tmp()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_store = name.starts_with("distccd_store_")
                && entry.file_type().unwrap().is_dir()
                && std::fs::read_dir(entry.path())
                    .unwrap()
                    .flatten()
                    .all(|e| e.file_type().unwrap().is_file());
            let is_worker_dir = name.starts_with("distccd_")
                && entry.file_type().unwrap().is_dir()
                && std::fs::read_dir(entry.path())
                    .unwrap()
                    .flatten()
                    .all(|e| e.file_name() == "root" && e.file_type().unwrap().is_dir());
            if !is_worker_dir && !is_store {
                left.push(name);
            }
        }
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left in TMPDIR: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn request(version: Version, argv: &[&str], source: &[u8]) -> Vec<u8> {
    let doti = if version.compresses() {
        distcc::compress::compress(source)
    } else {
        source.to_vec()
    };
    let req = Request {
        version,
        cwd: None,
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        body: Body::Doti(doti),
    };
    let mut bytes = Vec::new();
    protocol::encode_request(&mut bytes, &req).unwrap();
    bytes
}

/// Sends `bytes`, expects the daemon to close without a reply.
fn refused(d: &Daemon, what: &str, bytes: &[u8]) {
    let got = exchange(d.port, bytes, Duration::from_secs(30));
    assert!(
        got.is_empty(),
        "{what}: daemon replied {:?}",
        String::from_utf8_lossy(&got)
    );
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn garbage_versions_counts_lengths_and_truncation() {
    let d = start(&[]);
    let victim = Victim::new();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage",
            b"GET / HTTP/1.0\r\n\r\nhello there, this is not distcc".to_vec(),
        ),
        (
            "binary noise",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        (
            "DIST 4",
            b"DIST00000004ARGC00000001ARGV00000003gcc".to_vec(),
        ),
        ("DIST ffffffff", b"DISTffffffff".to_vec()),
        ("absurd ARGC", b"DIST00000001ARGCffffffff".to_vec()),
        (
            "ARGC zero",
            b"DIST00000001ARGC00000000DOTI00000000".to_vec(),
        ),
        (
            "absurd ARGV length",
            b"DIST00000001ARGC00000001ARGV7fffffffgcc".to_vec(),
        ),
        ("absurd DOTI length", {
            let mut v = request(Version::PLAIN, &["gcc", "-c", "x.c", "-o", "x.o"], b"");
            let at = v.len() - 12;
            v.truncate(at);
            v.extend_from_slice(b"DOTIfffffff0");
            v
        }),
        ("wrong token", b"DIST00000001ARGX00000001".to_vec()),
        (
            "NUL in ARGV",
            b"DIST00000001ARGC00000001ARGV00000003g\0c".to_vec(),
        ),
        ("extra bytes after the request", {
            let mut v = request(
                Version::PLAIN,
                &["gcc", "-c", "x.c", "-o", "x.o"],
                b"int x;\n",
            );
            v.extend_from_slice(b"DIST00000001");
            v
        }),
        ("corrupt LZO", {
            let mut v = request(Version::LZO, &["gcc", "-c", "x.c", "-o", "x.o"], b"");
            let at = v.len() - 12;
            v.truncate(at);
            v.extend_from_slice(b"DOTI00000008\xff\xff\xff\xff\xff\xff\xff\xff");
            v
        }),
    ];
    for (what, bytes) in cases {
        refused(&d, what, &bytes);
        no_job_files_left(&d);
    }
    // A truncated stream: the client stops mid-request and closes.
    let v = request(
        Version::LZO,
        &["gcc", "-c", "x.c", "-o", "x.o"],
        b"int x;\n",
    );
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(&v[..v.len() - 5]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty());
    assert!(
        d.log()
            .contains("client closed before sending the whole request"),
        "{}",
        d.log()
    );
    assert!(
        rss_kb(d.guard.pid()) < 200 * 1024,
        "daemon grew to {} kB",
        rss_kb(d.guard.pid())
    );
    still_compiles(&d);
    victim.untouched();
    no_job_files_left(&d);
}

/// A raw LZO1X stream that expands to at least `total` zero bytes, built
/// directly (compressing hundreds of MiB in a debug build is slow): one
/// literal zero, then distance-1 matches with long extended lengths.
fn zeros_bomb(total: usize) -> Vec<u8> {
    const ZERO_BYTES: usize = 1000;
    // A match of 0x20 with length 0 is extended: each zero byte adds 255,
    // the final non-zero byte is added, plus 2 + 31.
    let per_match = 2 + 31 + 255 * ZERO_BYTES + 255;
    let mut out = vec![18, 0]; // one literal byte: 0
    let mut produced = 1;
    while produced < total {
        out.push(0x20);
        out.extend(std::iter::repeat_n(0u8, ZERO_BYTES));
        out.push(0xff);
        out.extend_from_slice(&[0, 0]); // distance 1, no trailing literals
        produced += per_match;
    }
    out.extend_from_slice(&[0x11, 0, 0]);
    out
}

#[test]
fn zeros_bomb_is_a_valid_stream() {
    let small = zeros_bomb(1);
    assert_eq!(
        distcc::compress::decompress(&small, 1 << 20).unwrap(),
        vec![0u8]
    );
    let two = zeros_bomb(2);
    let out = distcc::compress::decompress(&two, 1 << 20).unwrap();
    assert!(out.len() > 255_000 && out.iter().all(|&b| b == 0));
}

#[test]
fn lzo_bomb_is_capped() {
    let d = start(&[]);
    // 300 MiB of zeros in about a megabyte of LZO; the cap is 256 MiB.
    let bomb = zeros_bomb(300 * 1024 * 1024);
    assert!(bomb.len() < 4 * 1024 * 1024);
    let mut bytes = Vec::new();
    let req = Request {
        version: Version::LZO,
        cwd: None,
        argv: ["gcc", "-c", "x.c", "-o", "x.o"]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect(),
        body: Body::Doti(bomb),
    };
    protocol::encode_request(&mut bytes, &req).unwrap();
    refused(&d, "LZO bomb", &bytes);
    no_job_files_left(&d);
    assert!(d.log().contains("OTHER"), "{}", d.log());
    still_compiles(&d);
}

#[test]
fn argument_tricks_refused_and_nothing_runs() {
    let d = start(&[]);
    let victim = Victim::new();
    let pwned = victim.dir.join("pwned");
    let pwned = pwned.to_str().unwrap();
    let touch = format!("/bin/sh,-c,touch {pwned}");
    let specs = victim
        .dir
        .write("evil.specs", format!("*cc1:\n+ %:touch({pwned})\n"));
    let specs_arg = format!("-specs={}", specs.display());
    let at_file = victim.dir.write("args.rsp", "-o /tmp/elsewhere.o");
    let at_arg = format!("@{}", at_file.display());
    let victim = victim.rebaseline();
    let listing = format!("-Wa,-adhln={}/listing", victim.dir.path.display());
    let aux = format!("{}/aux", victim.dir.path.display());
    let dump = format!("-fdump-tree-all={}/dump", victim.dir.path.display());
    let tricks: Vec<Vec<&str>> = vec![
        vec!["gcc", "-c", "x.c", "-o", "x.o", "-wrapper", &touch],
        vec!["gcc", "-c", "x.c", "-o", "x.o", &specs_arg],
        vec![
            "gcc",
            "-c",
            "x.c",
            "-o",
            "x.o",
            "-specs",
            specs.to_str().unwrap(),
        ],
        vec![
            "gcc",
            "-c",
            "x.c",
            "-o",
            "x.o",
            "--specs",
            specs.to_str().unwrap(),
        ],
        vec!["gcc", "-c", "x.c", "-o", "x.o", &at_arg],
        vec!["gcc", "-c", "x.c", "-o", "x.o", "-B", "/tmp/"],
        vec!["gcc", "-c", "x.c", "-o", "x.o", "-aux-info", &aux],
        vec!["gcc", "-c", "x.c", "-o", "x.o", "-dumpdir", &aux],
        vec!["gcc", "-c", "x.c", "-o", "x.o", "-save-temps=obj"],
        vec!["gcc", "-c", "x.c", "-o", "x.o", &listing],
        vec!["gcc", "-c", "x.c", "-o", "x.o", "-Xassembler", "-al=/tmp/x"],
        vec!["gcc", "-c", "x.c", "-o", "x.o", &dump],
        vec!["gcc", "-c", "x.c", "-o", "x.o", "-fplugin=/tmp/evil.so"],
        vec!["gcc", "-c", "x.c", "-o", "x.o", "--plugin=/tmp/evil.so"],
        vec!["sh", "-c", "x.c", "-o", "x.o"],
        vec!["/usr/local/bin/gcc", "-c", "x.c", "-o", "x.o"],
        vec!["../../../bin/sh", "-c", "x.c", "-o", "x.o"],
        vec!["gcc", "-E", "x.c", "-o", "x.i"],
    ];
    for argv in &tricks {
        for version in [Version::PLAIN, Version::LZO] {
            refused(&d, &argv.join(" "), &request(version, argv, b"int x;\n"));
        }
    }
    let log = d.log();
    for why in [
        "runs a program",
        "specs",
        "response file",
        "absolute path",
        "whitelist",
        "assembler option",
        "names a file",
    ] {
        assert!(log.contains(why), "log lacks {why:?}:\n{log}");
    }
    assert!(!log.contains("COMPILE_OK"), "{log}");
    victim.untouched();
    no_job_files_left(&d);
    still_compiles(&d);
}

#[test]
fn silent_slow_and_many_clients_do_not_starve_others() {
    let d = start(&["--jobs", "2"]);
    // Hundreds of connections: silent ones, half-sent ones, garbage ones.
    let mut conns = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        match i % 3 {
            0 => {}
            1 => s.write_all(b"DIST00000001ARGC0000").unwrap(),
            _ => {
                let _ = s.write_all(b"garbage garbage garbage garbage");
            }
        }
        conns.push(s);
    }
    // A slow client dripping a valid request, byte by byte, meanwhile.
    let slow = request(
        Version::PLAIN,
        &["gcc", "-c", "slow.c", "-o", "slow.o"],
        b"int slow;\n",
    );
    let port = d.port;
    let dripper = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        for b in &slow[..40] {
            let _ = s.write_all(&[*b]);
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    });
    still_compiles(&d);
    still_compiles(&d);
    let slow_conn = dripper.join().unwrap();
    drop(slow_conn);
    drop(conns);
    still_compiles(&d);
}

#[test]
fn io_timeout_closes_silent_clients() {
    let d = crate::daemon::start_custom(
        "127.0.0.1",
        &["--listen", "127.0.0.1", "--allow", "127.0.0.1"],
        &[("DISTCC_IO_TIMEOUT", "1")],
    );
    let port = d.port;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"DIST00000001").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf);
    assert!(matches!(n, Ok(0)), "silent client was not closed: {n:?}");
    assert!(d.log().contains("IO timeout"), "{}", d.log());
    still_compiles(&d);
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Plain sources are received into pipes; clients that announce megabytes,
/// send part and vanish (some while others still hold theirs) leave no
/// pipe, descriptor or file behind, and the daemon goes on compiling.
#[test]
fn plain_sources_cut_short_leave_no_pipes_behind() {
    let d = start(&[]);
    let victim = Victim::new();
    still_compiles(&d);
    let pid = d.guard.pid();
    let baseline = open_fds(pid);
    let source: Vec<u8> = b"int x;\n"
        .iter()
        .copied()
        .cycle()
        .take(6_000_000)
        .collect();
    let wire = request(Version::PLAIN, &["gcc", "-c", "x.c", "-o", "x.o"], &source);
    let mut held = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        // Up to 4 MB of the 6: several pipes' worth for some.
        let cut = 100 + (i * 200_000) % 4_000_000;
        s.write_all(&wire[..cut]).unwrap();
        held.push(s);
    }
    // Let the daemon take in what was sent, then every client vanishes.
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_fds(pid) > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        open_fds(pid),
        baseline,
        "descriptors left open:\n{}",
        d.log()
    );
    let log = d.log();
    assert!(
        log.matches("client closed before sending the whole request")
            .count()
            >= 20,
        "{log}"
    );
    still_compiles(&d);
    victim.untouched();
    no_job_files_left(&d);
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Many clients that each send part of a huge request and then wait hold
/// at most `DISTCCD_REQUEST_MEMORY` bytes of the daemon's memory together
/// (before, every connection could hold up to 512 MB: 4,096 of them could
/// exhaust any server). The client holding the most is read on, so one
/// request can always complete; the others wait, unread, and are read
/// when memory is free again, so the daemon still compiles afterwards.
#[test]
fn unfinished_requests_share_a_memory_budget() {
    let budget: u64 = 2 << 20;
    let d = crate::daemon::start_custom(
        "127.0.0.1",
        &["--listen", "127.0.0.1", "--allow", "127.0.0.1"],
        &[("DISTCCD_REQUEST_MEMORY", &budget.to_string())],
    );
    let pid = d.guard.pid();
    let before = rss(pid);
    let argv = ["gcc", "-c", "x.c", "-o", "x.o"];
    let mut head = b"DIST00000002".to_vec();
    head.extend_from_slice(format!("ARGC{:08x}", argv.len()).as_bytes());
    for a in argv {
        head.extend_from_slice(format!("ARGV{:08x}{a}", a.len()).as_bytes());
    }
    // A 64 MB compressed source is announced; 3 MB of it is sent.
    head.extend_from_slice(format!("DOTI{:08x}", 64 << 20).as_bytes());
    let chunk: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut held = Vec::new();
    for _ in 0..12 {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        s.write_all(&head).unwrap();
        // The daemon may stop reading this one: the kernel then takes what
        // fits in its buffers and the rest of the write times out.
        let _ = s.write_all(&chunk);
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(800));
    let grew = rss(pid).saturating_sub(before);
    assert!(
        grew < 12 << 20,
        "12 connections of 3 MB each grew the daemon by {grew} bytes with a {budget}-byte budget"
    );
    drop(held);
    still_compiles(&d);
    no_job_files_left(&d);
}
