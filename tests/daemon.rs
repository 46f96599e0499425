//! Our distccd against the stock distcc 3.4 client, and the daemon's own
//! command-line behaviour (the stock suite's BogusOption, DaemonBadPort,
//! StartStopDaemon, NoDetachDaemon), inetd mode through a pipe, the job
//! lifetime and client-disconnect kills, and the stats page.
//!
//! Helpers here (`start`, `still_compiles`, `exchange`) are shared with
//! daemon_hostile.rs and daemon_pump.rs.

use crate::util::*;
use distcc::protocol::{self, Body, Limits, Request, Response, Version};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Our daemon, with its TMPDIR writable by the user it drops to when the
/// tests run as root.
pub fn start(extra: &[&str]) -> Daemon {
    let d = our_daemon(extra);
    std::fs::set_permissions(d.tmp(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// Our daemon with exactly `args` (plus port, log and --no-detach) and
/// extra environment, listening on `addr`.
pub fn start_custom(addr: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
    start_limited(addr, args, env, None)
}

/// [`start_custom`], with the daemon's descriptor limit (soft and hard) set
/// to `fds` when given.
pub fn start_limited(addr: &str, args: &[&str], env: &[(&str, &str)], fds: Option<u64>) -> Daemon {
    let dir = TestDir::new("custom");
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let port = free_port();
    let mut cmd = ours("distccd");
    cmd.args([
        "--no-detach",
        "--daemon",
        "--port",
        &port.to_string(),
        "--log-file",
    ])
    .arg(dir.join("daemon.log"))
    .args(args)
    .env("TMPDIR", dir.join("tmp"))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(n) = fds {
        use std::os::unix::process::CommandExt;
        // SAFETY: only setrlimit between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                Ok(())
            });
        }
    }
    let guard = Guard::spawn(cmd, "custom");
    assert!(
        wait_for_port(addr, port, Duration::from_secs(10)),
        "daemon does not listen on {addr}"
    );
    Daemon { guard, port, dir }
}

pub const HELLO_C: &str =
    "#include <stdio.h>\nint main(void) { printf(\"hello world\\n\"); return 0; }\n";
pub const HELLO_CPP: &str = "#include <vector>\n#include <cstdio>\nint main() { std::vector<int> v{1,2,3}; std::printf(\"%zu\\n\", v.size()); return 0; }\n";

/// A stock distcc client command in `dir`, fallback disabled.
pub fn stock_client(dir: &TestDir, hosts: &str) -> Command {
    require_stock();
    let mut c = Command::new("/usr/bin/distcc");
    client_env(&mut c, dir, hosts);
    c.env("DISTCC_FALLBACK", "0")
        .env("DISTCC_SKIP_LOCAL_RETRY", "1")
        .env("DISTCC_LOG", dir.join("client.log"))
        .env("DISTCC_VERBOSE", "1");
    c
}

/// Proves the daemon still serves: a stock client compile with fallback off.
pub fn still_compiles(d: &Daemon) {
    let dir = TestDir::new("alive");
    dir.write("alive.c", HELLO_C);
    let out =
        run(stock_client(&dir, &d.host(",lzo")).args(["gcc", "-c", "alive.c", "-o", "alive.o"]));
    assert!(
        out.status.success(),
        "daemon stopped compiling: {}\n{}",
        show(&out),
        d.log()
    );
    assert!(dir.join("alive.o").exists());
}

/// Sends raw bytes, returns what the daemon sent back before closing
/// (bounded by `limit`).
pub fn exchange(port: u16, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

/// Sends a request and decodes the reply (None: the daemon closed).
pub fn roundtrip(port: u16, req: &Request) -> Option<Response> {
    let mut bytes = Vec::new();
    protocol::encode_request(&mut bytes, req).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&bytes).unwrap();
    protocol::read_response(&mut s, req.version, Limits::default()).ok()
}

fn local_compile(compiler: &str, dir: &TestDir, src: &str, obj: &str, flags: &[&str]) {
    let out = run(Command::new(compiler)
        .current_dir(&dir.path)
        .args(flags)
        .args(["-c", src, "-o", obj]));
    assert!(out.status.success(), "{}", show(&out));
}

fn strip_debug(path: &Path) -> Vec<u8> {
    let stripped = path.with_extension("stripped");
    let out = run(Command::new("objcopy")
        .arg("--strip-debug")
        .arg(path)
        .arg(&stripped));
    assert!(out.status.success(), "{}", show(&out));
    std::fs::read(stripped).unwrap()
}

/// A print query a stock client sends with `-c` and a source (meson's
/// probe at every `meson setup`) is answered as stock's server answers
/// it: the compiler's output and status 0. A refusal made the stock client
/// back our server off for the jobs that followed (sweep R, D1).
#[test]
fn stock_clients_print_queries_are_answered() {
    let d = start(&[]);
    let dir = TestDir::new("printquery");
    dir.write("testfile.cpp", "int x;\n");
    for opts in ["", ",lzo"] {
        let out = run(stock_client(&dir, &d.host(opts)).args([
            "g++",
            "testfile.cpp",
            "-o",
            "output.obj",
            "-c",
            "-O0",
            "--print-search-dirs",
        ]));
        assert!(out.status.success(), "{opts}: {}\n{}", show(&out), d.log());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("\nlibraries: ") || text.starts_with("install: "),
            "{text}"
        );
    }
    // The server is still in favour: the next compile goes to it.
    dir.write("m.c", "int m(void) { return 1; }\n");
    let out = run(stock_client(&dir, &d.host("")).args(["gcc", "-c", "m.c", "-o", "m.o"]));
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    assert!(!d.log().contains("refused"), "{}", d.log());
}

/// A source named `@x.c` (GCC compiles it as a file when `x.c` does not
/// exist) from a stock client is compiled, as stock's server does: the
/// server compiles its own copy of the text (sweep U, D8).
#[test]
fn stock_clients_at_named_source_is_compiled() {
    let d = start(&[]);
    let dir = TestDir::new("atsource");
    dir.write("@x.c", "int at(void) { return 7; }\n");
    local_compile("gcc", &dir, "@x.c", "local.o", &[]);
    for opts in ["", ",lzo"] {
        let out = run(stock_client(&dir, &d.host(opts)).args(["gcc", "-c", "@x.c", "-o", "x.o"]));
        assert!(out.status.success(), "{opts}: {}\n{}", show(&out), d.log());
        assert_eq!(
            std::fs::read(dir.join("x.o")).unwrap(),
            std::fs::read(dir.join("local.o")).unwrap(),
            "{opts}"
        );
    }
    assert_eq!(d.log().matches("COMPILE_OK").count(), 2, "{}", d.log());
}

#[test]
fn stock_client_c_and_cpp_plain_and_lzo() {
    let d = start(&[]);
    let dir = TestDir::new("interop");
    dir.write("hello.c", HELLO_C);
    dir.write("hello.cpp", HELLO_CPP);
    for opts in ["", ",lzo"] {
        for (compiler, src) in [("gcc", "hello.c"), ("g++", "hello.cpp")] {
            for debug in [false, true] {
                let flags: &[&str] = if debug { &["-g", "-O1"] } else { &["-O2"] };
                let obj = format!(
                    "remote{}{}.o",
                    opts.replace(',', "_"),
                    if debug { "g" } else { "" }
                );
                let out = run(stock_client(&dir, &d.host(opts))
                    .arg(compiler)
                    .args(flags)
                    .args(["-c", src, "-o", &obj]));
                assert!(
                    out.status.success(),
                    "{compiler} {opts}: {}\n{}",
                    show(&out),
                    d.log()
                );
                assert!(
                    out.stdout.is_empty() && out.stderr.is_empty(),
                    "{}",
                    show(&out)
                );
                local_compile(compiler, &dir, src, "local.o", flags);
                let remote = dir.join(&obj);
                if debug {
                    // With -g the DWARF names the compile directory, which is
                    // the daemon's job directory remotely (stock's is its
                    // TMPDIR): compare everything else.
                    let text = std::fs::read(&remote).unwrap();
                    assert!(
                        text.windows(11).any(|w| w == b".debug_info"),
                        "no debug info"
                    );
                    assert_eq!(
                        strip_debug(&remote),
                        strip_debug(&dir.join("local.o")),
                        "{obj}"
                    );
                } else {
                    assert_eq!(
                        std::fs::read(&remote).unwrap(),
                        std::fs::read(dir.join("local.o")).unwrap(),
                        "{obj} differs from a local compile"
                    );
                }
            }
        }
    }
    let log = d.log();
    assert_eq!(log.matches("COMPILE_OK").count(), 8, "{log}");
    assert!(log.contains(" hello.cpp"), "{log}");
}

/// `compiler -O2 -E src` in `dir`: the preprocessed source.
fn preprocess(dir: &TestDir, compiler: &str, src: &str) -> Vec<u8> {
    let pre = run(Command::new(compiler)
        .current_dir(&dir.path)
        .args(["-O2", "-E", src]));
    assert!(pre.status.success(), "{}", show(&pre));
    pre.stdout
}

/// A protocol-1 request for `argv` with `source`, encoded.
fn plain_wire(argv: &[&str], source: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    protocol::encode_request(&mut wire, &plain_request(Version::PLAIN, argv, source)).unwrap();
    wire
}

/// A connection to the daemon on `port` that waits up to 2 minutes for a reply.
fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s
}

/// Plain (protocol 1) sources of several megabytes are spliced from the
/// socket into pipes rather than received into memory: the stock client
/// sends one by sendfile, and a raw client sends one slowly in small
/// pieces; both give the object a local compile gives.
#[test]
fn multi_megabyte_plain_sources_compile_exactly() {
    let d = start(&[]);
    let dir = TestDir::new("bigplain");
    let mut src = String::from("#include <vector>\n");
    for i in 0..150_000 {
        src.push_str(&format!("extern int v{i};\n"));
    }
    src.push_str("int size() { std::vector<int> x{v1, v2}; return x.size(); }\n");
    dir.write("big.cpp", &src);
    local_compile("g++", &dir, "big.cpp", "local.o", &["-O2"]);
    let out = run(
        stock_client(&dir, &d.host("")).args(["g++", "-O2", "-c", "big.cpp", "-o", "remote.o"])
    );
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    assert_eq!(
        std::fs::read(dir.join("remote.o")).unwrap(),
        std::fs::read(dir.join("local.o")).unwrap(),
        "a spliced source gave a different object"
    );
    // The same source, preprocessed here and sent by hand in 64 KiB pieces.
    let source = preprocess(&dir, "g++", "big.cpp");
    assert!(source.len() > 3_000_000);
    let wire = plain_wire(&["g++", "-O2", "-c", "big.cpp", "-o", "big.o"], &source);
    let mut s = connect(d.port);
    for piece in wire.chunks(64 * 1024) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let resp = protocol::read_response(&mut s, Version::PLAIN, Limits::default()).unwrap();
    assert_eq!(resp.status, 0, "{}", String::from_utf8_lossy(&resp.stderr));
    assert_eq!(resp.object, std::fs::read(dir.join("local.o")).unwrap());
}

/// A plain object is sent from its file after the job has ended; the
/// next job in the same job directory must not touch it. Client A reads its
/// 64 MB object only after client B's job (one slot: the same directory)
/// has written a different one; A's must still be A's.
#[test]
fn an_object_still_being_sent_is_not_overwritten_by_the_next_job() {
    let d = start(&["--jobs", "1"]);
    let dir = TestDir::new("slowreader");
    dir.write("a.c", "char blob[64 << 20] = {1, 2, 3};\n");
    dir.write("b.c", "char blob[64 << 20] = {7, 7, 7, 7, 7};\n");
    local_compile("gcc", &dir, "a.c", "local-a.o", &["-O2"]);
    let source = preprocess(&dir, "gcc", "a.c");
    let wire = plain_wire(&["gcc", "-O2", "-c", "a.c", "-o", "a.o"], &source);
    let mut a = connect(d.port);
    a.write_all(&wire).unwrap();
    // A's job finishes; its reply cannot all go out while A does not read.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.log().contains("COMPILE_OK") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The daemon still holds most of A's reply: A's socket has only what
    // its buffers take.
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&a),
            libc::FIONREAD,
            &mut queued,
        )
    };
    assert!(
        (queued as usize) < 64 << 20,
        "the whole reply is already queued"
    );
    let out =
        run(stock_client(&dir, &d.host("")).args(["gcc", "-O2", "-c", "b.c", "-o", "remote-b.o"]));
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    let resp = protocol::read_response(&mut a, Version::PLAIN, Limits::default()).unwrap();
    assert_eq!(resp.status, 0);
    assert!(
        resp.object == std::fs::read(dir.join("local-a.o")).unwrap(),
        "A's object changed while it was sent ({} bytes)",
        resp.object.len()
    );
    local_compile("gcc", &dir, "b.c", "local-b.o", &["-O2"]);
    assert_eq!(
        std::fs::read(dir.join("remote-b.o")).unwrap(),
        std::fs::read(dir.join("local-b.o")).unwrap()
    );
}

#[test]
fn compile_error_returns_status_and_message() {
    let d = start(&[]);
    let dir = TestDir::new("err");
    dir.write("bad.c", "int main(void) { return undeclared_thing; }\n");
    let out = run(stock_client(&dir, &d.host(",lzo")).args(["gcc", "-c", "bad.c", "-o", "bad.o"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("undeclared_thing"), "{err}");
    assert!(!dir.join("bad.o").exists());
    assert!(d.log().contains("COMPILE_ERROR exit:1"), "{}", d.log());
}

#[test]
fn refused_compiler_falls_back_locally() {
    let d = start(&[]);
    let dir = TestDir::new("refuse");
    dir.write("hello.c", HELLO_C);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/gcc", bin.join("gcc")).unwrap();
    let cc = bin.join("gcc");
    let mut cmd = stock_client(&dir, &d.host(""));
    cmd.env_remove("DISTCC_FALLBACK");
    let out = run(cmd.arg(&cc).args(["-c", "hello.c", "-o", "hello.o"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("hello.o").exists());
    let client_log = std::fs::read_to_string(dir.join("client.log")).unwrap();
    assert!(
        client_log.contains("failed to distribute") && client_log.contains("locally"),
        "{client_log}"
    );
    let log = d.log();
    assert!(log.contains("absolute path"), "{log}");
    assert!(!log.contains("COMPILE_OK"), "{log}");
}

/// Waits (at most `limit` in all) for every client of a burst to end, and
/// asserts each succeeded.
fn wait_all_succeed(children: Vec<std::process::Child>, limit: Duration, d: &Daemon) {
    let deadline = Instant::now() + limit;
    for (i, mut child) in children.into_iter().enumerate() {
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(st.success(), "compile {i} failed\n{}", d.log());
                break;
            }
            assert!(Instant::now() < deadline, "compiles did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn fifty_concurrent_compiles_with_two_slots() {
    let d = start(&["--jobs", "2"]);
    let dir = TestDir::new("conc");
    let mut children = Vec::new();
    for i in 0..50 {
        let src = format!("f{i}.c");
        dir.write(&src, format!("int f{i}(int x) {{ return x * {i}; }}\n"));
        let mut c = stock_client(&dir, &d.host(if i % 2 == 0 { "" } else { ",lzo" }));
        c.env("DISTCC_LOG", dir.join(&format!("client{i}.log")))
            .args(["gcc", "-c", &src, "-o", &format!("f{i}.o")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    wait_all_succeed(children, Duration::from_secs(240), &d);
    for i in 0..50 {
        assert!(dir.join(&format!("f{i}.o")).exists());
    }
    assert_eq!(d.log().matches("COMPILE_OK").count(), 50, "{}", d.log());
}

/// Under a small descriptor limit (32, soft and hard) a burst of clients
/// waits in the listen backlog and every job is served, as by stock's
/// pre-forked workers (sweep T, D1: most failed or stalled).
#[test]
fn a_burst_under_a_small_descriptor_limit_is_served() {
    let d = start_limited(
        "127.0.0.1",
        &["--jobs", "2", "--allow", "127.0.0.1"],
        &[],
        Some(32),
    );
    let dir = TestDir::new("fdlimit");
    let mut children = Vec::new();
    for i in 0..30 {
        let src = format!("f{i}.c");
        dir.write(&src, format!("int f{i}(int x) {{ return x * {i}; }}\n"));
        let mut c = stock_client(&dir, &d.host(""));
        // A directory each, as from many machines: no client-side slot
        // limit keeps the burst small.
        let own = dir.join(&format!("distccdir{i}"));
        std::fs::create_dir_all(&own).unwrap();
        c.env("DISTCC_DIR", own)
            .env("DISTCC_IO_TIMEOUT", "60")
            .args(["gcc", "-c", &src, "-o", &format!("f{i}.o")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    wait_all_succeed(children, Duration::from_secs(120), &d);
    assert_eq!(d.log().matches("COMPILE_OK").count(), 30, "{}", d.log());
    // The backlog is stock's, 1024 (`ss` shows it as the Send-Q).
    let out = run(Command::new("ss").args(["-ltnH", &format!("sport = :{}", d.port)]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.split_whitespace().nth(2) == Some("1024"), "{text}");
}

#[test]
fn options_like_stock() {
    // BogusOption
    let out = run(ours("distccd").arg("--bogus-option"));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("distccd: ERROR: --bogus-option: unknown option")
    );
    // DaemonBadPort: 101 and no pid file
    let dir = TestDir::new("badport");
    let pid = dir.join("d.pid");
    let out = run(ours("distccd")
        .args(["--daemon", "--port", "80000", "--pid-file"])
        .arg(&pid));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    assert!(!pid.exists());
    // VersionOption / HelpOption
    let out = run(ours("distccd").arg("--version"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.starts_with("distccd 3.4 "), "{text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .contains("(protocols 1, 2 and 3) (default port 3632)")
    );
    let out = run(ours("distccd").arg("--help"));
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Usage:"));
    // The forms without a distccd link are in the help (sweep Z, D3).
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("distcc distccd [OPTIONS]") && help.contains("distcc --inetd [OPTIONS]"),
        "{help}"
    );
    // Bind failure: 102
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = run(ours("distccd").args([
        "--no-detach",
        "--daemon",
        "--listen",
        "127.0.0.1",
        "--port",
        &port,
        "--log-stderr",
    ]));
    assert_eq!(out.status.code(), Some(102), "{}", show(&out));
    // A failed start leaves the pid file of the daemon already running as
    // it is, and creates none of its own.
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let running = dir.join("running.pid");
    std::fs::write(&running, "4242\n").unwrap();
    let fresh = dir.join("fresh.pid");
    for pid_file in [&running, &fresh] {
        let out = run(ours("distccd")
            .args(["--daemon", "--listen", "127.0.0.1", "--port", &port])
            .arg("--pid-file")
            .arg(pid_file)
            .env("TMPDIR", &dir.path));
        assert_eq!(out.status.code(), Some(102), "{}", show(&out));
    }
    assert_eq!(std::fs::read_to_string(&running).unwrap(), "4242\n");
    assert!(!fresh.exists(), "a failed start left a pid file");
}

fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        // SAFETY: probing a pid with signal 0.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn start_stop_daemon_with_pid_file() {
    let dir = TestDir::new("startstop");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let pid_file = dir.join("d.pid");
    let port = free_port();
    let out = run(ours("distccd")
        .args([
            "--daemon",
            "--listen",
            "127.0.0.1",
            "--allow",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--log-file",
        ])
        .arg(dir.join("d.log"))
        .arg("--pid-file")
        .arg(&pid_file)
        .env("TMPDIR", &dir.path));
    assert!(out.status.success(), "{}", show(&out));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_for_port("127.0.0.1", port, Duration::from_secs(10)));
    // SAFETY: the daemon we just started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "daemon {pid} did not stop"
    );
    assert!(!pid_file.exists(), "pid file left behind");
    // The detached daemon logs under its own pid (the pid file's), not
    // the launcher's.
    let log = std::fs::read_to_string(dir.join("d.log")).unwrap();
    let listening = log
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("no listening line: {log}"));
    assert!(
        listening.starts_with(&format!("distccd[{pid}] ")),
        "pid file {pid}, log: {log}"
    );
}

/// Started as root, the daemon opens its pid and log files before it
/// drops root: names planted as symlinks (by the daemon user, in a
/// directory it may write) must not make it write or chown other files
/// (sweep M, D7: it overwrote and chowned the pid file's target and
/// appended to the log's as root). A relative pid file is in TMPDIR and is
/// removed at exit (D8).
#[test]
fn planted_pid_and_log_links_are_not_followed() {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let dir = TestDir::new("pidlinks");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = dir.write("victim", "root-owned secret\n");
    let start = |pid: &Path, log: &Path| {
        let port = free_port();
        run(ours("distccd")
            .args(["--daemon", "--no-detach", "--listen", "127.0.0.1"])
            .args(["--lifetime", "2"])
            .args(["--allow", "127.0.0.1", "--port", &port.to_string()])
            .arg("--log-file")
            .arg(log)
            .arg("--pid-file")
            .arg(pid)
            .env("TMPDIR", &dir.path))
    };
    for (pid, log) in [("p1.pid", "ok1.log"), ("ok2.pid", "l2.log")] {
        let link = if pid.starts_with('p') { pid } else { log };
        std::os::unix::fs::symlink(&victim, dir.join(link)).unwrap();
        std::os::unix::fs::lchown(dir.join(link), Some(65534), Some(65534)).unwrap();
        let out = start(&dir.join(pid), &dir.join(log));
        // A refused pid file stops the start; a refused log file is said,
        // and the daemon serves, logging to syslog (as stock).
        if link == pid {
            assert!(!out.status.success(), "{link}: {}", show(&out));
        }
        let said = if link == pid {
            "pid file"
        } else {
            "failed to open"
        };
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(said),
            "{link}: {}",
            show(&out)
        );
        let meta = std::fs::metadata(&victim).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{link}: victim chowned");
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "root-owned secret\n",
            "{link}: victim written"
        );
    }
    // A relative pid file: in TMPDIR while the daemon runs, gone after.
    let port = free_port();
    let mut cmd = ours("distccd");
    cmd.args(["--daemon", "--no-detach", "--listen", "127.0.0.1"])
        .args(["--allow", "127.0.0.1", "--port", &port.to_string()])
        .arg("--log-file")
        .arg(dir.join("rel.log"))
        .args(["--pid-file", "rel.pid"])
        .env("TMPDIR", &dir.path)
        .current_dir("/");
    let mut daemon = Guard::spawn(cmd, "relative pid daemon");
    assert!(wait_for_port("127.0.0.1", port, Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dir.join("rel.pid").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        dir.join("rel.pid").exists(),
        "relative pid file not in TMPDIR"
    );
    // SAFETY: the daemon we just started.
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!daemon.alive(), "daemon did not stop");
    assert!(
        !dir.join("rel.pid").exists(),
        "relative pid file left behind"
    );
}

/// The names in `dir` that start with `prefix`.
fn entries_starting(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// A daemon killed with SIGKILL leaves its job directories and pump store;
/// the next daemon on the same TMPDIR removes them, and leaves a stock
/// daemon's directory alone.
#[test]
fn directories_of_a_killed_daemon_are_removed_by_the_next() {
    let mut d = start(&[]);
    let dir = TestDir::new("orphans");
    dir.write("hello.c", HELLO_C);
    let out = run(stock_client(&dir, &d.host(""))
        .arg("gcc")
        .args(["-c", "hello.c", "-o", "hello.o"]));
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    let tmp = d.tmp();
    let pid = d.guard.pid();
    let left = entries_starting(&tmp, &format!("distccd_{pid}_"));
    let store = entries_starting(&tmp, &format!("distccd_store_{pid}_"));
    assert!(!left.is_empty() && store.len() == 1, "{left:?} {store:?}");
    let stockish = tmp.join("distccd_aB3xYz");
    std::fs::create_dir(&stockish).unwrap();
    // SAFETY: the daemon this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.guard.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.guard.alive(), "daemon {pid} survived SIGKILL");
    assert_eq!(entries_starting(&tmp, &format!("distccd_{pid}_")), left);

    let port = free_port();
    let pid_file = dir.join("d.pid");
    let out = run(ours("distccd")
        .args(["--daemon", "--listen", "127.0.0.1", "--allow", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--log-file"])
        .arg(dir.join("d2.log"))
        .arg("--pid-file")
        .arg(&pid_file)
        .env("TMPDIR", &tmp));
    assert!(out.status.success(), "{}", show(&out));
    assert!(wait_for_port("127.0.0.1", port, Duration::from_secs(10)));
    let second: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The workers start, and clean up, once the daemon listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        let gone = entries_starting(&tmp, &format!("distccd_{pid}_")).is_empty()
            && entries_starting(&tmp, &format!("distccd_store_{pid}_")).is_empty();
        if gone || Instant::now() > deadline {
            break gone;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(dir.join("d2.log")).unwrap_or_default();
    // SAFETY: the daemon this test started.
    unsafe { libc::kill(second, libc::SIGTERM) };
    assert!(wait_gone(second, Duration::from_secs(10)));
    assert!(
        gone,
        "{:?}\n{log}",
        std::fs::read_dir(&tmp).unwrap().collect::<Vec<_>>()
    );
    assert!(log.contains("no longer running"), "{log}");
    assert!(stockish.is_dir(), "a stock-style directory was removed");
}

#[test]
fn no_detach_daemon_stops_on_sigterm() {
    let dir = TestDir::new("nodetach");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let port = free_port();
    let mut cmd = ours("distccd");
    cmd.args([
        "--no-detach",
        "--daemon",
        "--listen",
        "127.0.0.1",
        "--allow",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--pid-file",
    ])
    .arg(dir.join("d.pid"))
    .arg("--log-file")
    .arg(dir.join("d.log"))
    .env("TMPDIR", &dir.path)
    .stderr(Stdio::null());
    let mut g = Guard::spawn(cmd, "nodetach");
    assert!(wait_for_port("127.0.0.1", port, Duration::from_secs(10)));
    let pid: u32 = std::fs::read_to_string(dir.join("d.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, g.pid());
    // A job first, so a worker holds a job directory that must go at exit.
    let req = plain_request(
        Version::LZO,
        &["gcc", "-c", "x.c", "-o", "x.o"],
        b"int x;\n",
    );
    assert_eq!(roundtrip(port, &req).expect("a reply").status, 0);
    // SAFETY: our child.
    unsafe { libc::kill(g.pid() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = g.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    // The job directory and the pump store are removed after the exit, by
    // a process of their own, so a large store no longer holds the exit up
    // (sweep X, D4); they are gone soon after.
    let log = std::fs::read_to_string(dir.join("d.log")).unwrap_or_default();
    assert!(
        log.contains("removing 2 job directories in the background"),
        "{log}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = loop {
        let left: Vec<String> = (dir.listing().into_iter())
            .filter(|f| f.starts_with("distccd_"))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(left.is_empty(), "job directories left after exit: {left:?}");
}

fn plain_request(version: Version, argv: &[&str], source: &[u8]) -> Request {
    let doti = if version.compresses() {
        distcc::compress::compress(source)
    } else {
        source.to_vec()
    };
    Request {
        version,
        cwd: None,
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        body: Body::Doti(doti),
    }
}

/// A small protocol-2 request (`gcc -c x.c -o x.o`).
fn small_lzo_request() -> Vec<u8> {
    let req = plain_request(
        Version::LZO,
        &["gcc", "-c", "x.c", "-o", "x.o"],
        b"int f(void) { return 42; }\n",
    );
    let mut bytes = Vec::new();
    protocol::encode_request(&mut bytes, &req).unwrap();
    bytes
}

/// Our `distccd --inetd` on pipes, logging to `log`, TMPDIR in `dir`.
fn inetd_on_pipes(dir: &TestDir, log: &Path) -> std::process::Child {
    ours("distccd")
        .args(["--inetd", "--log-file"])
        .arg(log)
        .env("TMPDIR", &dir.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `request` to an `--inetd` daemon on pipes and reads its reply to
/// the end, stdin still open (its end is a client gone); then its output.
fn exchange_on_pipes(
    mut child: std::process::Child,
    request: &[u8],
) -> (Vec<u8>, std::process::Output) {
    let mut stdin = child.stdin.take().unwrap();
    // A refused request may be closed before it is all written.
    let _ = stdin.write_all(request);
    let mut reply = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut reply)
        .unwrap();
    drop(stdin);
    (reply, child.wait_with_output().unwrap())
}

/// `--inetd` on a unix socket (a service manager's `Accept=yes` unit): a
/// client there has no address to check, so with `--allow` given it is
/// refused (exit 113), as by stock; without `--allow` it is served (sweep
/// M: any local user who could reach the socket got past the list).
#[test]
fn inetd_on_a_unix_socket_honours_allow() {
    let dir = TestDir::new("inetd-unix");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let bytes = small_lzo_request();
    for (allow, code) in [(Some("127.0.0.1"), 113), (None, 0)] {
        let (ours_end, daemon_end) = std::os::unix::net::UnixStream::pair().unwrap();
        let daemon_out = daemon_end.try_clone().unwrap();
        // As a classic inetd gives it: the connection on 0, 1 and 2.
        let daemon_err = daemon_end.try_clone().unwrap();
        let mut cmd = ours("distccd");
        cmd.args(["--inetd", "--log-file"]).arg(dir.join("d.log"));
        if let Some(a) = allow {
            cmd.args(["--allow", a]);
        }
        let mut child = cmd
            .env("TMPDIR", &dir.path)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(daemon_end)))
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(daemon_out)))
            .stderr(Stdio::from(std::os::fd::OwnedFd::from(daemon_err)))
            .spawn()
            .unwrap();
        // The command holds the daemon's ends until it goes: the client
        // would never see the end of the reply.
        drop(cmd);
        let mut client = ours_end;
        client
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        // No half-close: on a socket that is a client gone (as stock's).
        let _ = client.write_all(&bytes);
        let mut reply = Vec::new();
        let _ = client.read_to_end(&mut reply);
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(code),
            "--allow {allow:?}: {} reply bytes",
            reply.len()
        );
        assert_eq!(reply.starts_with(b"DONE"), code == 0, "--allow {allow:?}");
        // Nothing but the reply goes into the connection (sweep P, D2: the
        // refusal was written there, a protocol derailment for the client).
        if code != 0 {
            assert!(reply.is_empty(), "{:?}", String::from_utf8_lossy(&reply));
        }
    }
}

/// A request `--inetd` refuses (a compiler not in the whitelist) ends with
/// exit 0, as stock's: a service manager running one instance per
/// connection (distccd@.service) must not count it as a failed instance.
/// The refusal is logged as an error.
#[test]
fn inetd_refusals_are_no_failed_instances() {
    let dir = TestDir::new("inetd-refused");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let req = plain_request(Version::LZO, &["sh", "-c", "x.c", "-o", "x.o"], b"int x;\n");
    let mut bytes = Vec::new();
    protocol::encode_request(&mut bytes, &req).unwrap();
    let child = inetd_on_pipes(&dir, &dir.join("d.log"));
    let (reply, out) = exchange_on_pipes(child, &bytes);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(reply.is_empty(), "{} reply bytes", reply.len());
    let log = std::fs::read_to_string(dir.join("d.log")).unwrap();
    assert!(
        log.contains("ERROR: client: stdin closed: compiler \"sh\" refused"),
        "{log}"
    );
}

/// A `--log-file` that cannot be opened is said, and the daemon serves,
/// logging to syslog, as stock's (sweep P, D3: an ssh host whose wrapper
/// named such a file served nothing).
#[test]
fn an_unopenable_log_file_does_not_stop_the_job() {
    let dir = TestDir::new("inetd-badlog");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let bytes = small_lzo_request();
    let child = inetd_on_pipes(&dir, &dir.join("no/such/dir/d.log"));
    let (reply, out) = exchange_on_pipes(child, &bytes);
    assert!(out.status.success(), "{}", show(&out));
    assert!(reply.starts_with(b"DONE"), "{} reply bytes", reply.len());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed to open"),
        "{}",
        show(&out)
    );
}

#[test]
fn inetd_through_a_pipe() {
    let dir = TestDir::new("inetd");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let bytes = small_lzo_request();
    let mut child = inetd_on_pipes(&dir, &dir.join("d.log"));
    // The pipe stays open until the reply is in, as a client's ssh keeps
    // it: its end is a client gone, as for stock.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes).unwrap();
    let pid = child.id() as i32;
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("inetd job did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let out = waiter.join().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        show(&out),
        std::fs::read_to_string(dir.join("d.log")).unwrap_or_default()
    );
    let resp =
        protocol::read_response(&mut &out.stdout[..], Version::LZO, Limits::default()).unwrap();
    assert_eq!(resp.status, 0);
    let obj = distcc::compress::decompress(&resp.object, 1 << 24).unwrap();
    assert!(obj.starts_with(b"\x7fELF"));
    assert!(
        !dir.listing().iter().any(|f| f.starts_with("distccd_")),
        "{:?}",
        dir.listing()
    );
}

/// A shell script used as the compiler (needs `--enable-tcp-insecure`):
/// `body` runs after `#!/bin/sh`, with `{dir}` replaced by the test dir.
fn script_compiler(dir: &TestDir, name: &str, body: &str) -> String {
    let body = body.replace("{dir}", &dir.path.display().to_string());
    let script = dir.write(name, format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    script.display().to_string()
}

fn slow_compiler(dir: &TestDir) -> String {
    // The daemon's one-off question of what the compiler is (traits.rs,
    // `-dM -E`) gets a quick answer; compiles hang.
    script_compiler(
        dir,
        "slowcc",
        "case \" $* \" in *' -dM '*) exit 0;; esac\necho $$ > {dir}/cc.pid\nexec sleep 60\n",
    )
}

/// The process id a script compiler wrote to `p`, once it appears.
fn wait_for_pid(p: &Path, limit: Duration) -> i32 {
    let text = wait_for_file(p, limit);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{} holds no pid: {text:?}", p.display()))
}

fn wait_for_file(p: &Path, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(s) = std::fs::read_to_string(p)
            && !s.trim().is_empty()
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never appeared", p.display());
}

#[test]
fn job_lifetime_kills_and_reports_118() {
    let d = start(&["--enable-tcp-insecure", "--job-lifetime", "1"]);
    let dir = TestDir::new("lifetime");
    let cc = slow_compiler(&dir);
    let req = plain_request(
        Version::PLAIN,
        &[&cc, "-c", "x.c", "-o", "x.o"],
        b"int x;\n",
    );
    let t = Instant::now();
    let resp = roundtrip(d.port, &req).expect("a reply");
    assert_eq!(resp.status, 118 << 8);
    assert!(t.elapsed() < Duration::from_secs(30));
    let pid: i32 = wait_for_pid(&dir.join("cc.pid"), Duration::from_secs(5));
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "compiler {pid} still runs"
    );
    assert!(d.log().contains("COMPILE_TIMEOUT"), "{}", d.log());
    still_compiles(&d);
}

#[test]
fn client_disconnect_kills_the_compiler_group() {
    let d = start(&["--enable-tcp-insecure"]);
    let dir = TestDir::new("disconn");
    let cc = slow_compiler(&dir);
    let req = plain_request(
        Version::PLAIN,
        &[&cc, "-c", "x.c", "-o", "x.o"],
        b"int x;\n",
    );
    let mut bytes = Vec::new();
    protocol::encode_request(&mut bytes, &req).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(&bytes).unwrap();
    let pid: i32 = wait_for_pid(&dir.join("cc.pid"), Duration::from_secs(10));
    drop(s);
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "compiler {pid} survived the client"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.log().contains("CLI_DISCONN") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.log().contains("CLI_DISCONN"), "{}", d.log());
    crate::daemon_hostile::no_job_files_left(&d);
    still_compiles(&d);
}

#[test]
fn processes_a_compiler_leaves_behind_are_killed() {
    let d = start(&["--enable-tcp-insecure"]);
    let dir = TestDir::new("straggler");
    let cc = script_compiler(
        &dir,
        "leavescc",
        "sleep 120 &\necho $! > {dir}/bg.pid\nexit 0\n",
    );
    let req = plain_request(
        Version::PLAIN,
        &[&cc, "-c", "x.c", "-o", "x.o"],
        b"int x;\n",
    );
    let t = Instant::now();
    let resp = roundtrip(d.port, &req).expect("a reply");
    assert_eq!(resp.status, 0, "{}", d.log());
    // The reply does not wait for the leftover (which holds stdout/stderr).
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "the job waited for its leftover"
    );
    let pid: i32 = wait_for_pid(&dir.join("bg.pid"), Duration::from_secs(5));
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "background process {pid} outlived its job"
    );
    still_compiles(&d);
}

#[test]
fn exec_failure_is_status_110_with_message() {
    let d = start(&["--enable-tcp-insecure"]);
    let req = plain_request(
        Version::LZO,
        &["no-such-compiler-xyz", "-c", "x.c", "-o", "x.o"],
        b"int x;\n",
    );
    let resp = roundtrip(d.port, &req).expect("a reply");
    assert_eq!(resp.status, 0x6e00);
    let err = distcc::compress::decompress(&resp.stderr, 1 << 20).unwrap();
    assert!(
        String::from_utf8_lossy(&err).contains("failed to exec"),
        "{}",
        String::from_utf8_lossy(&err)
    );
    // The daemon's log says which compiler is missing.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !d.log().contains("failed to exec no-such-compiler-xyz") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        d.log().contains("failed to exec no-such-compiler-xyz"),
        "{}",
        d.log()
    );
}

/// A compiler missing on the server only: the client's warning names the
/// server, the status and the server's reason, then the local retry works.
#[test]
fn compiler_missing_on_the_server_is_named() {
    let empty = TestDir::new("empty-path");
    let d = start_custom(
        "127.0.0.1",
        &["--listen", "127.0.0.1", "--allow", "127.0.0.1"],
        &[("DISTCCD_PATH", empty.path.to_str().unwrap())],
    );
    let dir = TestDir::new("nocompiler");
    dir.write("hello.c", HELLO_C);
    let mut cmd = ours("distcc");
    client_env(&mut cmd, &dir, &d.host(""));
    let out = run(cmd.args(["gcc", "-c", "hello.c", "-o", "hello.o"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("hello.o").exists());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "on 127.0.0.1:{} failed with exit code 110: ",
            d.port
        )) && err.contains("failed to exec")
            && err.contains("retrying locally"),
        "{err}"
    );
}

/// `DISTCC_SAVE_TEMPS=1` on the daemon keeps what an admin needs to rerun
/// a job by hand, as stock keeps its `distccd_*.i` and `distcc_*.stderr`:
/// the source as received, the compiler's stderr and stdout, the object
/// (sweep M, D4: only the object was kept). A source big enough to go to
/// the compiler through pipes is kept too.
#[test]
fn save_temps_keeps_source_and_messages() {
    let d = start_custom(
        "127.0.0.1",
        &["--listen", "127.0.0.1", "--allow", "127.0.0.1"],
        &[("DISTCC_SAVE_TEMPS", "1")],
    );
    let dir = TestDir::new("savetemps");
    // A warning of the compiler proper (a #warning would be the local
    // preprocessor's).
    let mut big = String::from("int kept_for_the_admin(int a) { return a / 0; }\n");
    for i in 0..60_000 {
        big.push_str(&format!("int v{i} = {i};\n"));
    }
    dir.write("w.c", &big);
    for opts in ["", ",lzo"] {
        let mut cmd = ours("distcc");
        client_env(&mut cmd, &dir, &d.host(opts));
        let out = run(cmd
            .env("DISTCC_FALLBACK", "0")
            .args(["gcc", "-c", "w.c", "-o", "w.o"]));
        assert!(out.status.success(), "{opts}: {}", show(&out));
    }
    let kept: Vec<_> = std::fs::read_dir(d.tmp())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("stderr.txt").exists())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for job in kept {
        let stderr = std::fs::read_to_string(job.join("stderr.txt")).unwrap();
        assert!(stderr.contains("division by zero"), "{stderr}");
        let source = std::fs::read_to_string(job.join("in.i")).unwrap();
        assert!(source.contains("int v59999 = 59999;"), "{}", job.display());
        assert!(job.join("stdout.txt").exists() && job.join("out.o").exists());
    }
}

#[test]
fn stats_page_in_stock_format() {
    let stats_port = free_port();
    let d = start(&["--stats", "--stats-port", &stats_port.to_string()]);
    still_compiles(&d);
    let page = exchange(
        stats_port,
        b"GET / HTTP/1.0\r\n\r\n",
        Duration::from_secs(10),
    );
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.0 200 OK\nContent-Type: text/plain\nConnection: close\n\nargv /distccd\n<distccstats>\n"), "{page}");
    assert!(page.contains("dcc_compile_ok 1\n"), "{page}");
    assert!(page.contains("dcc_longest_job alive.c\n"), "{page}");
    // The job limit, as stock reports it (not the peak of running jobs).
    let log = d.log();
    let jobs = log
        .lines()
        .find(|l| l.contains(" job slots"))
        .and_then(|l| l.split("with ").nth(1))
        .and_then(|r| r.split(' ').next().map(String::from));
    assert!(
        jobs.as_ref()
            .is_some_and(|n| page.contains(&format!("dcc_max_kids {n}\n"))),
        "{jobs:?} {page}"
    );
    assert!(page.ends_with("</distccstats>\n"), "{page}");
}

#[test]
fn default_access_is_loopback_and_private_including_ipv6() {
    // No --allow: stock 3.4 lets everyone in; we allow loopback and the
    // private networks, ::1 included (stock's --allow-private omits it).
    let d = start_custom("::1", &["--listen", "::1"], &[]);
    let dir = TestDir::new("v6");
    dir.write("hello.c", HELLO_C);
    let host = format!("[::1]:{}", d.port);
    let out = run(stock_client(&dir, &host).args(["gcc", "-c", "hello.c", "-o", "hello.o"]));
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
    assert!(d.log().contains("no --allow option"), "{}", d.log());
    // Started as root, the daemon runs as an unprivileged user.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.guard.pid())).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            !uid.split_whitespace().skip(1).any(|u| u == "0"),
            "still root: {uid}"
        );
    }
}

/// `--user root` as root is refused (exit 112), as by stock: compiles
/// would run as root for any allowed client.
#[test]
fn user_root_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TestDir::new("userroot");
    let port = free_port().to_string();
    let out = run(ours("distccd")
        .args([
            "--daemon",
            "--no-detach",
            "--listen",
            "127.0.0.1",
            "--port",
            &port,
        ])
        .args(["--allow", "127.0.0.1", "--user", "root", "--log-stderr"])
        .env("TMPDIR", &dir.path));
    assert_eq!(out.status.code(), Some(112), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to serve as root"),
        "{}",
        show(&out)
    );
}

/// Started as root with a `--user` that does not exist, the daemon says so
/// and runs as `nobody`, as stock does (it used to exit, and the static
/// binary crashed in the system's user lookup).
#[test]
fn unknown_user_runs_as_nobody() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let d = start_custom(
        "127.0.0.1",
        &[
            "--listen",
            "127.0.0.1",
            "--allow",
            "127.0.0.1",
            "--user",
            "no-such-user-s11",
        ],
        &[],
    );
    let dir = TestDir::new("nouser");
    dir.write("hello.c", HELLO_C);
    let out = run(stock_client(&dir, &d.host("")).args(["gcc", "-c", "hello.c", "-o", "hello.o"]));
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
    assert!(
        d.log()
            .contains("no such user as \"no-such-user-s11\"; running as nobody"),
        "{}",
        d.log()
    );
    let nobody = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("nobody:x:")
                .map(|r| r.split(':').next().unwrap().to_string())
        })
        .unwrap_or_else(|| "65534".into());
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.guard.pid())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == nobody),
        "runs as {uid}, nobody is {nobody}"
    );
}

/// `--listen` takes a host name too, as stock's does (its first address).
#[test]
fn listen_takes_a_host_name() {
    use std::net::ToSocketAddrs;
    let first = ("localhost", 0u16)
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap()
        .ip()
        .to_string();
    let d = start_custom(
        &first,
        &[
            "--listen",
            "localhost",
            "--allow",
            "127.0.0.1",
            "--allow",
            "::1",
        ],
        &[],
    );
    let dir = TestDir::new("listen-name");
    dir.write("hello.c", HELLO_C);
    let host = if first.contains(':') {
        format!("[{first}]:{}", d.port)
    } else {
        format!("{first}:{}", d.port)
    };
    let out = run(stock_client(&dir, &host).args(["gcc", "-c", "hello.c", "-o", "hello.o"]));
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
}

#[test]
fn access_denied_client_falls_back_locally() {
    // The stock suite's AccessDenied: --allow 127.0.0.2 refuses 127.0.0.1.
    let d = start_custom(
        "127.0.0.1",
        &["--listen", "127.0.0.1", "--allow", "127.0.0.2"],
        &[],
    );
    let dir = TestDir::new("denied");
    dir.write("hello.c", HELLO_C);
    let mut cmd = stock_client(&dir, &d.host(""));
    cmd.env_remove("DISTCC_FALLBACK");
    let out = run(cmd.args(["gcc", "-c", "hello.c", "-o", "hello.o"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("hello.o").exists());
    let client_log = std::fs::read_to_string(dir.join("client.log")).unwrap();
    assert!(client_log.contains("failed to distribute"), "{client_log}");
    assert!(
        // An error, as stock's, so it shows at --log-level error (sweep M, D5).
        d.log()
            .contains("(dcc_check_client) ERROR: connection from client '127.0.0.1:")
            && d.log().contains("denied by access list"),
        "{}",
        d.log()
    );
    assert!(!d.log().contains("COMPILE_OK"));
}

#[test]
fn inetd_on_a_socket_serves_and_kills_on_hangup() {
    let dir = TestDir::new("inetdsock");
    let cc = slow_compiler(&dir);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let spawn = |listener: &std::net::TcpListener| {
        let (server_side, _) = listener.accept().unwrap();
        let out: std::os::fd::OwnedFd = server_side.try_clone().unwrap().into();
        let inp: std::os::fd::OwnedFd = server_side.into();
        ours("distccd")
            .args(["--log-file"])
            .arg(dir.join("d.log"))
            .args(["--enable-tcp-insecure"])
            .env("TMPDIR", &dir.path)
            .stdin(Stdio::from(inp))
            .stdout(Stdio::from(out))
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Auto mode (no --inetd): stdin is a socket, so one job is served there,
    // summed up in stock's line with the peer's address. A client that
    // hangs up once it has its reply is no reason for a warning.
    for _ in 0..6 {
        let mut client = TcpStream::connect(addr).unwrap();
        let mut child = spawn(&listener);
        let req = plain_request(
            Version::LZO,
            &["gcc", "-c", "x.c", "-o", "x.o"],
            b"int f(void) { return 1; }\n",
        );
        let mut bytes = Vec::new();
        protocol::encode_request(&mut bytes, &req).unwrap();
        client.write_all(&bytes).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let resp = protocol::read_response(&mut client, Version::LZO, Limits::default()).unwrap();
        assert_eq!(resp.status, 0);
        let port = client.local_addr().unwrap().port();
        drop(client);
        assert!(child.wait().unwrap().success());
        let log = std::fs::read_to_string(dir.join("d.log")).unwrap();
        let summary =
            format!("client: 127.0.0.1:{port} COMPILE_OK exit:0 sig:0 core:0 ret:0 time:");
        assert!(log.contains(&summary), "{log}");
    }
    let log = std::fs::read_to_string(dir.join("d.log")).unwrap();
    assert!(!log.contains("hung up"), "{log}");
    // A client that hangs up mid-compile gets its compiler killed.
    let mut client = TcpStream::connect(addr).unwrap();
    let mut child = spawn(&listener);
    let req = plain_request(
        Version::PLAIN,
        &[&cc, "-c", "x.c", "-o", "x.o"],
        b"int x;\n",
    );
    let mut bytes = Vec::new();
    protocol::encode_request(&mut bytes, &req).unwrap();
    client.write_all(&bytes).unwrap();
    let pid: i32 = wait_for_pid(&dir.join("cc.pid"), Duration::from_secs(10));
    drop(client);
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "compiler {pid} survived the hang-up"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "inetd daemon did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    assert!(
        !dir.listing().iter().any(|f| f.starts_with("distccd_")),
        "{:?}",
        dir.listing()
    );
}

/// Over pipes (ssh), a client that goes away mid-compile (stdin ends, or
/// the reader of stdout is gone) gets its compiler killed, as stock does.
#[test]
fn inetd_on_pipes_kills_the_compiler_of_a_client_gone() {
    let dir = TestDir::new("inetdpipe");
    let cc = slow_compiler(&dir);
    let mut child = ours("distccd")
        .args(["--inetd", "--enable-tcp-insecure", "--log-file"])
        .arg(dir.join("d.log"))
        .env("TMPDIR", &dir.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let req = plain_request(
        Version::PLAIN,
        &[&cc, "-c", "x.c", "-o", "x.o"],
        b"int x;\n",
    );
    let mut bytes = Vec::new();
    protocol::encode_request(&mut bytes, &req).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes).unwrap();
    let pid: i32 = wait_for_pid(&dir.join("cc.pid"), Duration::from_secs(10));
    // Only stdin ends (the client's ssh died; sshd closes the pipe): that
    // is a client gone, as for stock (sweep P, D4: the compile ran on).
    drop(stdin);
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "compiler {pid} survived the client"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "inetd daemon did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(dir.join("d.log")).unwrap();
    assert!(log.contains("client: stdin CLI_DISCONN"), "{log}");
}

/// Through ssh the inetd daemon's stderr is the user's terminal: a client
/// that drops the connection before its request is complete (its own
/// preprocessing failed) is logged, not printed there.
#[test]
fn inetd_client_that_leaves_early_is_logged_not_printed() {
    let dir = TestDir::new("inetdearly");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o1777)).unwrap();
    for with_log in [false, true] {
        let mut cmd = ours("distccd");
        cmd.args(["--inetd", "--enable-tcp-insecure"])
            .env("TMPDIR", &dir.path)
            .stdin(Stdio::null());
        if with_log {
            cmd.arg("--log-file").arg(dir.join("d.log"));
        }
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(108), "{}", show(&out));
        assert!(
            out.stderr.is_empty() && out.stdout.is_empty(),
            "{}",
            show(&out)
        );
    }
    let log = std::fs::read_to_string(dir.join("d.log")).unwrap();
    assert!(
        log.contains("client: stdin OTHER exit:0 sig:0 core:0 ret:108"),
        "{log}"
    );
}

/// Every connection gets stock's summary line, refused ones too: bytes
/// that are not a request (REJ_BAD_REQ), a command that may not run here
/// (OTHER), a client that leaves inside its tokens (OTHER) or in the
/// middle of its source (CLI_DISCONN, sweep M, P20), each with stock's
/// exit code.
#[test]
fn refused_requests_are_summed_up_as_stock() {
    let d = start(&[]);
    // Sends `bytes`, waits for the daemon to close; the client's port.
    let send = |bytes: &[u8]| {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        (s.local_addr().unwrap().port(), got)
    };
    let request = |argv: &[&str]| {
        let req = plain_request(Version::PLAIN, argv, b"int x;\n");
        let mut bytes = Vec::new();
        protocol::encode_request(&mut bytes, &req).unwrap();
        bytes
    };
    let (garbage, reply) = send(b"garbage garbage garbage!");
    assert!(reply.is_empty());
    let (local_only, _) = send(&request(&["gcc", "-E", "x.c"]));
    let whole = request(&["gcc", "-c", "x.c", "-o", "x.o"]);
    // Leaves after sending `n` bytes of the request; the client's port.
    let leave_after = |n: usize| {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.write_all(&whole[..n]).unwrap();
        let port = s.local_addr().unwrap().port();
        drop(s);
        port
    };
    // In the middle of the source, stock counts a disconnected client
    // (107); inside the argument tokens, a failed request (108).
    let half_sent = leave_after(whole.len() - 3);
    let in_argv = leave_after(30);
    let wanted = [
        format!(
            "(dcc_job_summary) client: 127.0.0.1:{garbage} REJ_BAD_REQ exit:0 sig:0 core:0 ret:109 time:"
        ),
        format!("client: 127.0.0.1:{local_only} OTHER exit:0 sig:0 core:0 ret:1"),
        format!("client: 127.0.0.1:{half_sent} CLI_DISCONN exit:0 sig:0 core:0 ret:107 time:"),
        format!("client: 127.0.0.1:{in_argv} OTHER exit:0 sig:0 core:0 ret:108 time:"),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wanted.iter().all(|w| d.log().contains(w.as_str())) {
        assert!(Instant::now() < deadline, "{:?}\n{}", wanted, d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn empty_and_unmarked_sources_compile() {
    // The stock suite's EmptySource, and a .i without line markers (its
    // diagnostics then name the daemon's input, as in stock).
    let d = start(&[]);
    for (version, argv, src) in [
        (Version::PLAIN, ["gcc", "-c", "e.i", "-o", "e.o"], &b""[..]),
        (Version::LZO, ["g++", "-c", "e.ii", "-o", "e.o"], &b""[..]),
        (
            Version::LZO,
            ["gcc", "-c", "u.c", "-o", "u.o"],
            &b"int u(void) { return 3; }\n"[..],
        ),
    ] {
        let resp = roundtrip(d.port, &plain_request(version, &argv, src)).expect("a reply");
        assert_eq!(resp.status, 0, "{argv:?}");
        let obj = if version.compresses() {
            distcc::compress::decompress(&resp.object, 1 << 24).unwrap()
        } else {
            resp.object
        };
        assert!(obj.starts_with(b"\x7fELF"), "{argv:?}");
    }
    let resp = roundtrip(
        d.port,
        &plain_request(
            Version::PLAIN,
            &["gcc", "-c", "w.c", "-o", "w.o"],
            b"int w(void) { return nope; }\n",
        ),
    )
    .expect("a reply");
    assert_eq!(resp.status, 1 << 8);
    assert!(String::from_utf8_lossy(&resp.stderr).contains("nope"));
}

/// A TMPDIR the daemon's user cannot write is a start-up error with the
/// reason, not a server that accepts jobs and fails every one.
#[test]
fn unwritable_tmpdir_is_a_startup_error() {
    let dir = TestDir::new("ro-tmp");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // As root the daemon drops to the distccd user, for whom a root-owned
    // 0755 directory is read-only; otherwise make it read-only for us.
    // SAFETY: getuid cannot fail.
    let mode = if unsafe { libc::getuid() } == 0 {
        0o755
    } else {
        0o555
    };
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    let port = free_port();
    let out = run(ours("distccd")
        .args([
            "--no-detach",
            "--daemon",
            "--log-stderr",
            "--allow",
            "127.0.0.1",
        ])
        .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
        .env("TMPDIR", &tmp));
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(107), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot create job directories"), "{err}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// A pid file that cannot be written fails the start and leaves no
/// detached server running behind the user's back.
#[test]
fn unwritable_pid_file_leaves_no_server_running() {
    let dir = TestDir::new("bad-pid");
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let port = free_port();
    let out = run(ours("distccd")
        .args(["--daemon", "--allow", "127.0.0.1", "--listen", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--pid-file"])
        .arg(dir.join("no/such/dir/distccd.pid"))
        .env("TMPDIR", dir.join("tmp")));
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pid file"),
        "{}",
        show(&out)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a daemon is still listening on {port}"
    );
}
