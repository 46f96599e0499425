//! The black-box scenarios of distcc's own test suite (`test/testdistcc.py`,
//! facts §8.1), rewritten as our tests: our client, stock distccd 3.4 as the
//! server, `DISTCC_FALLBACK=0` wherever the compile must really be remote.

use crate::client::*;
use crate::util::*;
use std::os::unix::fs::FileTypeExt;
use std::process::Command;

const HELLO: &str = "#include <stdio.h>\nint main(void) { puts(\"hello world\"); return 0; }\n";

fn setup(tag: &str) -> (Daemon, TestDir) {
    (stock(), TestDir::new(tag))
}

#[test]
fn comma_in_file_name() {
    let (d, dir) = setup("comma");
    dir.write("foo1,2.h", "#define N 3\n");
    dir.write("t.c", "#include \"foo1,2.h\"\nint x = N;\n");
    assert_quiet_ok(&run(
        client(&dir, &d.host(",lzo")).args(["gcc", "-c", "t.c"])
    ));
    assert_eq!(wait_compiles(&d, 1), 1);
    assert!(dir.join("t.o").exists());
}

#[test]
fn dash_o_without_space() {
    let (d, dir) = setup("dasho");
    dir.write("testtmp.c", HELLO);
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        "testtmp.c",
        "-otesttmp.o",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
    assert!(dir.join("testtmp.o").exists());
}

#[test]
fn write_dev_null() {
    let (d, dir) = setup("devnull");
    dir.write("testtmp.c", HELLO);
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        "testtmp.c",
        "-o",
        "/dev/null",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(meta.file_type().is_char_device(), "/dev/null was replaced");
}

#[test]
fn cpp_error_directive() {
    let (d, dir) = setup("cpperr");
    dir.write("testtmp.c", "#error not tonight dear\n");
    let out = run(client(&dir, &d.host("")).args(["gcc", "-c", "testtmp.c"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not tonight dear"));
    assert!(out.stdout.is_empty());
    assert!(!dir.join("testtmp.o").exists());
}

#[test]
fn missing_header() {
    let (d, dir) = setup("badinc");
    dir.write("testtmp.c", "#include \"nosuchheader.h\"\n");
    let out = run(client(&dir, &d.host("")).args(["gcc", "-c", "testtmp.c"]));
    let local_rc = local(&dir, &["gcc", "-c", "testtmp.c", "-o", "l.o"])
        .status
        .code();
    assert_eq!(out.status.code(), local_rc, "{}", show(&out));
    assert_ne!(local_rc, Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuchheader.h"));
    assert!(!dir.join("testtmp.o").exists());
}

#[test]
fn s_beats_c() {
    let (d, dir) = setup("sbeatsc");
    dir.write("testtmp.c", HELLO);
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        "-S",
        "testtmp.c",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
    assert!(dir.join("testtmp.s").exists());
    assert!(!dir.join("testtmp.o").exists());
}

#[test]
fn dash_d_quoting_survives() {
    let (d, dir) = setup("dashd");
    dir.write(
        "testtmp.c",
        "#include <stdio.h>\nint main(void) { puts(MESSAGE); return 0; }\n",
    );
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-DMESSAGE=\"hello DashD\"",
        "-c",
        "testtmp.c",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
    assert!(
        local(&dir, &["gcc", "-o", "testtmp", "testtmp.o"])
            .status
            .success()
    );
    let out = run(&mut Command::new(dir.join("testtmp")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello DashD\n");
}

#[test]
fn wp_md_writes_depsfile() {
    let (d, dir) = setup("wpmd");
    dir.write("testhdr.h", "#define X 1\n");
    dir.write(
        "testtmp.c",
        "#include <stdio.h>\n#include \"testhdr.h\"\nint x = X;\n",
    );
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        "-Wp,-MD,depsfile",
        "testtmp.c",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
    let deps = String::from_utf8(read(&dir.join("depsfile"))).unwrap();
    assert!(
        deps.contains("testhdr.h") && deps.contains("stdio.h"),
        "{deps}"
    );
    // The longer form (more preprocessor options after the file) is
    // distributed too, as by stock, and gives the local object and file.
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        "-Wp,-MD,depsfile2,-DY=2,-MT,tgt",
        "testtmp.c",
        "-o",
        "remote.o",
    ])));
    assert_eq!(wait_compiles(&d, 2), 2);
    assert!(
        run(Command::new("gcc")
            .args([
                "-c",
                "-Wp,-MD,local.d,-DY=2,-MT,tgt",
                "testtmp.c",
                "-o",
                "local.o"
            ])
            .current_dir(&dir.path))
        .status
        .success()
    );
    assert_eq!(read(&dir.join("remote.o")), read(&dir.join("local.o")));
    assert_eq!(read(&dir.join("depsfile2")), read(&dir.join("local.d")));
}

#[test]
fn md_mf_mt_target() {
    let (d, dir) = setup("mdmfmt");
    dir.write("testtmp.c", HELLO);
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        "-MD",
        "-MFdotd_filename",
        "-MTtarget_name_42",
        "testtmp.c",
    ])));
    let deps = String::from_utf8(read(&dir.join("dotd_filename"))).unwrap();
    assert!(deps.contains("target_name_42"), "{deps}");
}

#[test]
fn false_and_true_as_compilers() {
    let (d, dir) = setup("falsetrue");
    dir.write("testtmp.i", "int x;\n");
    let out = run(client(&dir, &d.host("")).args(["false", "-c", "testtmp.i"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let out = run(client(&dir, &d.host("")).args(["true", "-c", "testtmp.i"]));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(read(&dir.join("testtmp.o")), b"");
}

#[test]
fn implied_output_name() {
    let (d, dir) = setup("implied");
    dir.write("testtmp.c", HELLO);
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        "testtmp.c",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
    assert!(dir.join("testtmp.o").exists());
}

#[test]
fn implicit_compiler() {
    let (d, dir) = setup("implicit");
    dir.write("testtmp.c", HELLO);
    assert_quiet_ok(&run(client(&dir, &d.host("")).args(["-c", "testtmp.c"])));
    assert_eq!(wait_compiles(&d, 1), 1);
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "-o",
        "testtmp",
        "testtmp.o",
    ])));
    let out = run(&mut Command::new(dir.join("testtmp")));
    assert_eq!(out.stdout, b"hello world\n");
}

#[test]
fn syntax_error() {
    let (d, dir) = setup("syntax");
    dir.write("testtmp.c", "not C at all\n");
    let out = run(client(&dir, &d.host("")).args(["gcc", "-c", "testtmp.c"]));
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("testtmp.c:1:") && err.contains("error"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(!dir.join("testtmp.o").exists());
}

#[test]
fn no_hosts_warns_and_compiles_here() {
    let dir = TestDir::new("nohosts");
    dir.write("testtmp.c", HELLO);
    let out = run(client(&dir, "")
        .env("DISTCC_FALLBACK", "1")
        .args(["gcc", "-c", "testtmp.c"]));
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Warning")
            && err.contains("$DISTCC_HOSTS")
            && err.contains("can't distribute work"),
        "{err}"
    );
    assert!(dir.join("testtmp.o").exists());
    // Unset everywhere: the stock wording, and 116 without fallback.
    let mut cmd = client(&dir, "");
    cmd.env_remove("DISTCC_HOSTS").env("HOME", dir.join("home"));
    let out = run(cmd.args(["gcc", "-c", "testtmp.c"]));
    if !std::path::Path::new("/etc/distcc/hosts").exists() {
        assert_eq!(out.status.code(), Some(116), "{}", show(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no hostlist is set"));
    }
}

#[test]
fn missing_compiler_is_110_from_server() {
    let (d, dir) = setup("nocc");
    dir.write("testtmp.i", "int x;\n");
    let out = run(client(&dir, &d.host("")).args(["nosuchcc", "-c", "testtmp.i"]));
    assert_eq!(out.status.code(), Some(110), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to exec"));
}

/// A compiler missing here (the preprocessor cannot start) is this
/// machine's failure, not the server's: exit 110, as stock, with fallback
/// on or off, and no backoff, so the next compile still goes to the server
/// (sweep S, D3).
#[test]
fn missing_compiler_here_backs_off_no_server() {
    let (d, dir) = setup("nocchere");
    dir.write("testtmp.c", "int x;\n");
    for fallback in ["1", "0"] {
        let out = run(client(&dir, &d.host(""))
            .env("DISTCC_FALLBACK", fallback)
            .args(["nosuchcc", "-c", "testtmp.c"]));
        assert_eq!(out.status.code(), Some(110), "{}", show(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("failed to exec nosuchcc"));
    }
    let backoffs: Vec<_> = std::fs::read_dir(dir.join("distccdir/lock"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !backoffs
            .iter()
            .any(|n| n.to_string_lossy().starts_with("backoff")),
        "{backoffs:?}"
    );
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        "testtmp.c",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
}

#[test]
fn empty_source() {
    let (d, dir) = setup("empty");
    dir.write("testtmp.i", "");
    assert_quiet_ok(&run(client(&dir, &d.host(",lzo")).args([
        "gcc",
        "-c",
        "testtmp.i",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
    assert!(dir.join("testtmp.o").exists());
}

#[test]
fn hosts_file() {
    let (d, dir) = setup("hostfile");
    dir.write("testtmp.c", HELLO);
    dir.write("distccdir/hosts", format!("# our server\n{}\n", d.host("")));
    let mut cmd = client(&dir, "");
    cmd.env_remove("DISTCC_HOSTS");
    assert_quiet_ok(&run(cmd.args(["gcc", "-c", "testtmp.c"])));
    assert_eq!(wait_compiles(&d, 1), 1);
}

#[test]
fn absolute_source_path() {
    let (d, dir) = setup("abssrc");
    let src = dir.write("testtmp.c", HELLO);
    assert_quiet_ok(&run(client(&dir, &d.host("")).args([
        "gcc",
        "-c",
        src.to_str().unwrap(),
    ])));
    assert_eq!(wait_compiles(&d, 1), 1);
    assert!(dir.join("testtmp.o").exists());
}

#[test]
fn bogus_option_same_status_as_compiler() {
    let (d, dir) = setup("bogus");
    let out = run(client(&dir, &d.host(""))
        .env("DISTCC_FALLBACK", "1")
        .args(["gcc", "--bogus-option"]));
    let local_rc = local(&dir, &["gcc", "--bogus-option"]).status.code();
    assert_eq!(out.status.code(), local_rc, "{}", show(&out));
}

#[test]
fn fifty_concurrent() {
    let d = stock_with(&["-j", "8"]);
    let dir = TestDir::new("fifty");
    let mut children = Vec::new();
    for i in 0..50 {
        dir.write(
            &format!("t{i}.c"),
            format!("int f{i}(int x) {{ return x * {i}; }}\n"),
        );
        let mut cmd = client(&dir, &d.host("/8,lzo"));
        cmd.args(["gcc", "-O2", "-c", &format!("t{i}.c")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        children.push(Guard::spawn(cmd, "client"));
    }
    for mut g in children {
        let out = run_child(&mut g);
        assert!(out.status.success(), "{}", show(&out));
    }
    assert_eq!(wait_compiles(&d, 50), 50);
    for i in [0, 17, 49] {
        assert!(
            local(&dir, &["gcc", "-O2", "-c", &format!("t{i}.c"), "-o", "l.o"])
                .status
                .success()
        );
        assert_eq!(read(&dir.join(&format!("t{i}.o"))), read(&dir.join("l.o")));
    }
}

fn run_child(g: &mut Guard) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while g.alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    if let Some(o) = g.child.stdout.as_mut() {
        let _ = o.read_to_end(&mut stdout);
    }
    if let Some(e) = g.child.stderr.as_mut() {
        let _ = e.read_to_end(&mut stderr);
    }
    let status = g.child.wait().unwrap();
    std::process::Output {
        status,
        stdout,
        stderr,
    }
}

#[test]
fn big_source_of_200k_lines() {
    let (d, dir) = setup("bigass");
    let mut src = String::from("int f(int x) {\n  int y = x;\n");
    for i in 0..200_000 {
        src.push_str(&format!("  y += {};\n", i % 7));
    }
    src.push_str("  return y;\n}\n");
    dir.write("big.c", src);
    assert!(
        local(&dir, &["gcc", "-c", "big.c", "-o", "l.o"])
            .status
            .success()
    );
    // Protocol 2 compresses the multi-megabyte source; protocol 1 sends it
    // from the preprocessor's output file by sendfile.
    for (n, opts) in [",lzo", ""].into_iter().enumerate() {
        let _ = std::fs::remove_file(dir.join("big.o"));
        assert_quiet_ok(&run(
            client(&dir, &d.host(opts)).args(["gcc", "-c", "big.c"])
        ));
        assert_eq!(wait_compiles(&d, n + 1), n + 1, "{opts}");
        assert_eq!(read(&dir.join("big.o")), read(&dir.join("l.o")), "{opts}");
    }
}

#[test]
fn compiler_options_passed_to_a_local_compiler() {
    let dir = TestDir::new("ccopts");
    let out = run(client(&dir, "localhost").args(["cc", "--help"]));
    assert!(out.status.success(), "{}", show(&out));
    let local_out = local(&dir, &["cc", "--help"]);
    assert_eq!(out.stdout, local_out.stdout);
}

/// The host's slot is given back before the compiler's messages are passed
/// on, as stock does: a client whose stderr blocks (a full pipe nobody
/// reads) does not hold up the next job for that one-slot host.
#[test]
fn a_blocked_stderr_does_not_keep_the_hosts_slot() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};
    let d = our_daemon(&[]);
    let dir = TestDir::new("slotblock");
    dir.write("warn.c", "int g(int x) { int unused; return x; }\n");
    dir.write("b.c", "int f(int x) { return x + 1; }\n");
    let mut fds = [0; 2];
    // SAFETY: a fresh pipe; both ends are owned below.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Fill the pipe: nobody reads it.
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) };
    let chunk = [b'x'; 4096];
    for _ in 0..10_000 {
        if unsafe { libc::write(fds[1], chunk.as_ptr().cast(), chunk.len()) } < 0 {
            break;
        }
    }
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, 0) };
    let hosts = d.host("/1");
    let mut first = client(&dir, &hosts)
        .env("DISTCC_FALLBACK", "0")
        .args(["gcc", "-Wall", "-c", "warn.c", "-o", "warn.o"])
        .stderr(std::process::Stdio::from(write_end))
        .spawn()
        .unwrap();
    // Its object is written before its warning is passed on.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("warn.o").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut second = client(&dir, &hosts)
        .env("DISTCC_FALLBACK", "0")
        .args(["gcc", "-c", "b.c", "-o", "b.o"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.is_none() {
        let _ = second.kill();
        let _ = second.wait();
    }
    drop(read_end);
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        status.is_some_and(|s| s.success()),
        "the second job waited for the slot: {status:?}\n{}",
        d.log()
    );
    assert_eq!(wait_compiles(&d, 2), 2, "{}", d.log());
}

/// A lock file that cannot be opened (another user's, left by a root build
/// in the same DISTCC_DIR; here a directory in its place) does not fail the
/// job: it is distributed without a slot limit, and a local-only job runs.
#[test]
fn an_unusable_lock_file_does_not_fail_the_job() {
    let d = our_daemon(&[]);
    let dir = TestDir::new("badlock");
    dir.write("a.c", "int f(int x) { return x * 3; }\n");
    let locks = dir.join("distccdir/lock");
    std::fs::create_dir_all(locks.join(format!("cpu_tcp_127.0.0.1_{}_0", d.port))).unwrap();
    std::fs::create_dir_all(locks.join("cpu_localhost_0")).unwrap();
    let out = run(client(&dir, &d.host("/1"))
        .env("DISTCC_FALLBACK", "0")
        .args(["gcc", "-c", "a.c", "-o", "a.o"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running without slot limits"),
        "{}",
        show(&out)
    );
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
    // Local-only (preprocessing only) takes a local slot.
    let out = run(client(&dir, &d.host("/1")).args(["gcc", "-E", "a.c", "-o", "a.i"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("a.i").exists());
}

/// A server on a free loopback port that reads one protocol-1 request and
/// sends `reply`; returns its port and the thread to join.
fn canned_server(reply: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let token = |s: &mut std::net::TcpStream| {
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            let value = u32::from_str_radix(std::str::from_utf8(&head[4..]).unwrap(), 16).unwrap();
            (head[..4].to_vec(), value)
        };
        let _dist = token(&mut s);
        let (_, argc) = token(&mut s);
        for _ in 0..argc + 1 {
            // Each ARGV, then DOTI: a length and its bytes.
            let (_, len) = token(&mut s);
            let mut body = vec![0; len as usize];
            s.read_exact(&mut body).unwrap();
        }
        s.write_all(reply).unwrap();
    });
    (port, server)
}

/// A server's compiler killed by a signal, with fallbacks off: the exit
/// status is 128 + the signal, and a line says what happened and where (the
/// compiler itself could not).
#[test]
fn a_remote_compiler_killed_by_a_signal_is_reported() {
    let dir = TestDir::new("remotesig");
    dir.write("a.c", "int f(int x) { return x + 1; }\n");
    // The compiler died of SIGSEGV (wait status 11), saying nothing else.
    let (port, server) =
        canned_server(b"DONE00000001STAT0000000bSERR00000000SOUT00000000DOTO00000000");
    let out = run(client(&dir, &format!("127.0.0.1:{port}"))
        .env("DISTCC_FALLBACK", "0")
        .args(["gcc", "-c", "a.c", "-o", "a.o"]));
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(139), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a.c") && err.contains("signal 11") && err.contains(&port.to_string()),
        "{}",
        show(&out)
    );
    assert!(!dir.join("a.o").exists());
}

/// A status no wait can give (0x10000: its exit-code bits read 0) is a
/// broken server's, not a success: with fallbacks off the job fails with
/// a protocol error instead of exiting 0 without an object (stock does),
/// and with fallbacks on the file is compiled here.
#[test]
fn an_impossible_remote_status_is_no_success() {
    let dir = TestDir::new("remotestatus");
    dir.write("a.c", "int f(int x) { return x + 1; }\n");
    const REPLY: &[u8] = b"DONE00000001STAT00010000SERR00000000SOUT00000000DOTO00000000";
    let (port, server) = canned_server(REPLY);
    let out = run(client(&dir, &format!("127.0.0.1:{port}"))
        .env("DISTCC_FALLBACK", "0")
        .args(["gcc", "-c", "a.c", "-o", "a.o"]));
    server.join().unwrap();
    // The host is backed off and none is left: "no hosts" (116), as stock
    // gives for any failure to distribute with fallbacks off.
    assert_eq!(out.status.code(), Some(116), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no compiler's exit status"),
        "{}",
        show(&out)
    );
    assert!(!dir.join("a.o").exists());
    let (port, server) = canned_server(REPLY);
    // No backoff from the first failure: the server must be asked again.
    let out = run(client(&dir, &format!("127.0.0.1:{port}"))
        .env("DISTCC_FALLBACK", "1")
        .env("DISTCC_BACKOFF_PERIOD", "0")
        .args(["gcc", "-c", "a.c", "-o", "a.o"]));
    server.join().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("a.o").exists(), "compiled here");
}

/// `-o a.c` (a typo) names the source itself: compiled here, where gcc
/// refuses it, instead of the source being replaced by a remote object.
#[test]
fn an_output_that_is_the_source_is_refused_as_locally() {
    let d = our_daemon(&[]);
    let dir = TestDir::new("outisin");
    let src = "int f(int x) { return x + 2; }\n";
    dir.write("a.c", src);
    for out_name in ["a.c", "./a.c"] {
        let out = run(client(&dir, &d.host(""))
            .env("DISTCC_FALLBACK", "0")
            .args(["gcc", "-c", "a.c", "-o", out_name]));
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("same as output"),
            "{}",
            show(&out)
        );
        assert_eq!(
            read(&dir.join("a.c")),
            src.as_bytes(),
            "the source was replaced"
        );
    }
    assert_eq!(compiles_ok(&d), 0, "{}", d.log());
}

/// A system user's `HOME=/nonexistent` (no DISTCC_DIR): the job is
/// distributed, its slot limits kept in a private directory under
/// `$TMPDIR`, and `$HOME` is not created.
#[test]
fn a_missing_home_is_not_created() {
    let d = our_daemon(&[]);
    let dir = TestDir::new("nohome");
    dir.write("a.c", "int f(int x) { return x - 1; }\n");
    let home = dir.join("nonexistent");
    let out = run(client(&dir, &d.host(""))
        .env_remove("DISTCC_DIR")
        .env("HOME", &home)
        .env("DISTCC_FALLBACK", "0")
        .args(["gcc", "-c", "a.c", "-o", "a.o"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist; keeping slot limits in"),
        "{}",
        show(&out)
    );
    assert!(!home.exists(), "HOME was created");
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
    // No HOME at all: nothing is made at the file system's root.
    let out = run(client(&dir, &d.host(""))
        .env_remove("DISTCC_DIR")
        .env_remove("HOME")
        .env("DISTCC_FALLBACK", "0")
        .args(["gcc", "-c", "a.c", "-o", "a.o"]));
    assert!(out.status.success(), "{}", show(&out));
    let lock = format!("/.distcc/lock/cpu_tcp_127.0.0.1_{}_0", d.port);
    assert!(!std::path::Path::new(&lock).exists(), "{lock} was made");
    assert_eq!(wait_compiles(&d, 2), 2, "{}", d.log());
}
