//! Our client against stock distccd 3.4 on loopback: protocols 1 and 2, C
//! and C++, `-g`, `-MD -MF`, compile errors, masquerade links with
//! `make -j4`, and fallback when the server is down, refuses or stalls.
//! Success tests run with `DISTCC_FALLBACK=0` and check the daemon's log, so
//! a silent local compile cannot pass them.

use crate::client::*;
use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const C_SRC: &str = "#include <stdio.h>\n#include \"hdr.h\"\nint main(void) { printf(\"%d\\n\", VALUE); return 0; }\n";
const CXX_SRC: &str = "#include <iostream>\n#include <vector>\n#include \"hdr.h\"\nint main() { std::vector<int> v(VALUE); std::cout << v.size() << std::endl; return 0; }\n";

/// Compiles `src` remotely and locally with the same flags; objects must
/// match. With `-g` a plain-mode object cannot equal a local one (the line
/// table comes from the `.i` file; stock distcc 3.4 differs the same way),
/// so there the reference is stock distcc's client through the same daemon.
fn same_as_local(opts: &str, compiler: &str, file: &str, src: &str, flags: &[&str]) {
    let d = stock();
    let dir = TestDir::new("p12");
    dir.write("hdr.h", "#define VALUE 42\n");
    dir.write(file, src);
    let with = |out: &'static str| {
        let mut a = vec![compiler];
        a.extend_from_slice(flags);
        a.extend_from_slice(&["-c", file, "-o", out]);
        a
    };
    let out = run(client(&dir, &d.host(opts)).args(with("remote.o")));
    assert_quiet_ok(&out);
    assert_eq!(
        wait_compiles(&d, 1),
        1,
        "not compiled remotely: {}",
        d.log()
    );
    let reference = if flags.contains(&"-g") {
        let mut stock_client = Command::new("/usr/bin/distcc");
        client_env(&mut stock_client, &dir, &d.host(opts));
        stock_client.env("DISTCC_FALLBACK", "0");
        assert_quiet_ok(&run(stock_client.args(with("stock.o"))));
        assert_eq!(
            wait_compiles(&d, 2),
            2,
            "stock client not remote: {}",
            d.log()
        );
        "stock.o"
    } else {
        assert!(local(&dir, &with("local.o")).status.success());
        "local.o"
    };
    assert_eq!(
        read(&dir.join("remote.o")),
        read(&dir.join(reference)),
        "{opts} {compiler} {flags:?}: objects differ from {reference}"
    );
}

#[test]
fn c_protocol_1_and_2() {
    for opts in ["", ",lzo"] {
        same_as_local(opts, "gcc", "t.c", C_SRC, &["-O2"]);
        same_as_local(opts, "gcc", "t.c", C_SRC, &["-g"]);
    }
}

#[test]
fn cxx_protocol_1_and_2() {
    for opts in ["", ",lzo"] {
        same_as_local(opts, "g++", "t.cpp", CXX_SRC, &["-O1"]);
        same_as_local(opts, "g++", "t.cpp", CXX_SRC, &["-g"]);
    }
}

#[test]
fn clang_protocol_1_and_2() {
    for opts in ["", ",lzo"] {
        same_as_local(opts, "clang", "t.c", C_SRC, &["-O2"]);
        same_as_local(opts, "clang++", "t.cpp", CXX_SRC, &["-O1"]);
    }
}

/// The command's own `-x c++` on a `.c` file: stock's server, which keeps
/// the command and writes the text to a `.i` file, must not preprocess it
/// again (sweep Q, D3).
#[test]
fn own_source_language_against_the_stock_server() {
    for opts in ["", ",lzo"] {
        same_as_local(opts, "g++", "t.c", CXX_SRC, &["-x", "c++", "-O1"]);
        same_as_local(opts, "gcc", "t.c", C_SRC, &["-xc", "-O2"]);
    }
}

/// Objective-C and Objective-C++ against the stock server.
#[test]
fn objc_protocol_1_and_2() {
    let m = "#import <stdio.h>\n@interface A\n+ (int) v;\n@end\n@implementation A\n+ (int) v { return 3; }\n@end\nint main(void) { printf(\"%d\\n\", [A v]); return 0; }\n";
    let mm = "#include <vector>\n@interface B\n@end\n@implementation B\n@end\nint n() { std::vector<int> v(2); return (int)v.size(); }\n";
    for opts in ["", ",lzo"] {
        same_as_local(opts, "gcc", "t.m", m, &["-O2", "-Wno-objc-root-class"]);
        same_as_local(opts, "g++", "t.mm", mm, &["-Wno-objc-root-class"]);
    }
}

#[test]
fn dependency_files_with_md_mf() {
    for opts in ["", ",lzo"] {
        let d = stock();
        let dir = TestDir::new("mdmf");
        dir.write("hdr.h", "#define VALUE 1\n");
        dir.write("t.c", C_SRC);
        let out = run(client(&dir, &d.host(opts))
            .args(["gcc", "-MD", "-MF", "deps/t.d", "-c", "t.c", "-o", "t.o"]));
        // gcc itself needs the deps directory; create it and retry if absent.
        if !out.status.success() {
            std::fs::create_dir_all(dir.join("deps")).unwrap();
            let out = run(client(&dir, &d.host(opts))
                .args(["gcc", "-MD", "-MF", "deps/t.d", "-c", "t.c", "-o", "t.o"]));
            assert_quiet_ok(&out);
        }
        let deps = String::from_utf8(read(&dir.join("deps/t.d"))).unwrap();
        assert!(deps.starts_with("t.o:"), "{deps}");
        assert!(deps.contains("hdr.h") && deps.contains("stdio.h"), "{deps}");
        assert_eq!(wait_compiles(&d, 1), 1);
        // An object in another directory is the target, -MF or not, as in
        // a local compile (stock names `t.o`, and make never rebuilds
        // sub/t.o after a header changes).
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for (n, md) in ["-MMD", "-MD"].into_iter().enumerate() {
            let args = |d: &'static str| ["gcc", md, "-MF", d, "-c", "t.c", "-o", "sub/t.o"];
            assert_quiet_ok(&run(client(&dir, &d.host(opts)).args(args("sub/t.d"))));
            assert_eq!(wait_compiles(&d, n + 2), n + 2);
            assert!(local(&dir, &args("sub/local.d")).status.success());
            let remote = String::from_utf8(read(&dir.join("sub/t.d"))).unwrap();
            assert!(remote.starts_with("sub/t.o:"), "{remote}");
            assert_eq!(
                remote,
                String::from_utf8(read(&dir.join("sub/local.d"))).unwrap()
            );
        }
    }
}

#[test]
fn remote_compile_errors_pass_through() {
    for opts in ["", ",lzo"] {
        let d = stock();
        let dir = TestDir::new("err");
        dir.write("bad.c", "int main(void) { return nosuch; }\n");
        // Fallback off: the server's diagnostics and status are reported.
        let out = run(client(&dir, &d.host(opts)).args(["gcc", "-c", "bad.c"]));
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.c:1:") && err.contains("nosuch"), "{err}");
        assert!(
            !err.contains("distcc["),
            "stderr is the compiler's only: {err}"
        );
        assert!(out.stdout.is_empty());
        assert!(!dir.join("bad.o").exists());
        // Fallback on: retried locally, the local compiler's message, same status.
        let out = run(client(&dir, &d.host(opts))
            .env("DISTCC_FALLBACK", "1")
            .args(["gcc", "-c", "bad.c"]));
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("retrying locally") && err.contains("nosuch"),
            "{err}"
        );
        // DISTCC_SKIP_LOCAL_RETRY: server's result only.
        let out = run(client(&dir, &d.host(opts))
            .env("DISTCC_FALLBACK", "1")
            .env("DISTCC_SKIP_LOCAL_RETRY", "1")
            .args(["gcc", "-c", "bad.c"]));
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("retrying"));
    }
}

#[test]
fn masquerade_links_and_make_j4() {
    make_hello_project_through_links(&stock(), "make");
}

#[test]
fn fallback_when_server_is_down() {
    let dir = TestDir::new("down");
    dir.write("x.c", "int x;\n");
    let port = free_port();
    let log = dir.join("log");
    let out = run(client(&dir, &format!("127.0.0.1:{port}/2"))
        .env("DISTCC_FALLBACK", "1")
        .env("DISTCC_LOG", &log)
        .args(["gcc", "-c", "x.c"]));
    assert_quiet_ok(&out);
    assert!(dir.join("x.o").exists());
    let text = std::fs::read_to_string(&log).unwrap();
    let fallbacks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("running locally instead"))
        .collect();
    assert_eq!(fallbacks.len(), 1, "{text}");
    // Stock's line, with the host as written, then the reason.
    assert!(
        fallbacks[0].contains(&format!(
            "failed to distribute x.c to 127.0.0.1:{port}/2, running locally instead (connect"
        )),
        "{text}"
    );
    assert!(
        dir.join(&format!("distccdir/lock/backoff_tcp_127.0.0.1_{port}_0"))
            .exists()
    );
    // Fallback disabled: the host is backed off and no other is left, so
    // stock's "no hosts" (116), on the first run as on later ones; the
    // reason names the refused connection. Without backoff stock would
    // retry for ever: ours stops and says what failed (connect: 103).
    let dir2 = TestDir::new("down2");
    dir2.write("x.c", "int x;\n");
    for _ in 0..2 {
        let out = run(client(&dir2, &format!("127.0.0.1:{port}")).args(["gcc", "-c", "x.c"]));
        assert_eq!(out.status.code(), Some(116), "{}", show(&out));
        assert!(!dir2.join("x.o").exists());
    }
    let out = run(client(&dir2, &format!("127.0.0.1:{port}"))
        .env("DISTCC_BACKOFF_PERIOD", "0")
        .args(["gcc", "-c", "x.c"]));
    assert_eq!(out.status.code(), Some(103), "{}", show(&out));
    assert!(!dir2.join("x.o").exists());
}

#[test]
fn down_host_is_skipped_for_a_good_one() {
    let d = stock();
    let dir = TestDir::new("skip");
    dir.write("x.c", "int x;\n");
    let hosts = format!("127.0.0.1:{}/1 {}", free_port(), d.host(""));
    let out = run(client(&dir, &hosts)
        .env("DISTCC_BACKOFF_PERIOD", "0")
        .args(["gcc", "-c", "x.c"]));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(wait_compiles(&d, 1), 1);
}

#[test]
fn bounded_attempts_when_backoff_is_disabled() {
    let dir = TestDir::new("bounded");
    dir.write("x.c", "int x;\n");
    let port = free_port();
    let out = run_with_timeout(
        client(&dir, &format!("127.0.0.1:{port}"))
            .env("DISTCC_FALLBACK", "1")
            .env("DISTCC_BACKOFF_PERIOD", "0")
            .args(["gcc", "-c", "x.c"]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("x.o").exists());
}

#[test]
fn fallback_when_server_refuses() {
    let d = stock_with(&["--allow", "127.0.0.2"]);
    let dir = TestDir::new("refuse");
    dir.write("x.c", "int x;\n");
    let log = dir.join("log");
    let out = run(client(&dir, &d.host(""))
        .env("DISTCC_FALLBACK", "1")
        .env("DISTCC_LOG", &log)
        .args(["gcc", "-c", "x.c"]));
    assert_quiet_ok(&out);
    assert!(dir.join("x.o").exists());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("failed to distribute"), "{text}");
    assert!(text.contains("running locally instead"), "{text}");
    // The reason points at the access list (whether the refusal came as a
    // close or, with request bytes unread, as a reset).
    assert!(text.contains("--allow list"), "{text}");
}

#[test]
fn fallback_when_server_stalls_past_io_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(s);
    });
    let dir = TestDir::new("stall");
    dir.write("x.c", "int x;\n");
    let log = dir.join("log");
    let out = run(client(&dir, &format!("127.0.0.1:{port}"))
        .env("DISTCC_FALLBACK", "1")
        .env("DISTCC_IO_TIMEOUT", "1")
        .env("DISTCC_LOG", &log)
        .args(["gcc", "-c", "x.c"]));
    assert_quiet_ok(&out);
    assert!(dir.join("x.o").exists());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("running locally instead"), "{text}");
    // The reason names the timeout, not the socket's EAGAIN.
    assert!(
        text.contains("within the I/O timeout (DISTCC_IO_TIMEOUT)"),
        "{text}"
    );
    hold.join().unwrap();
}

#[test]
fn mode_bits_follow_umask_zero() {
    let d = stock();
    let dir = TestDir::new("umask");
    dir.write("x.c", "int x;\n");
    let mut cmd = Command::new("sh");
    client_env(&mut cmd, &dir, &d.host(""));
    cmd.env("DISTCC_FALLBACK", "0").arg("-c").arg(format!(
        "umask 0; exec '{}' gcc -c x.c -o x.o",
        bin().display()
    ));
    let out = run(&mut cmd);
    assert_quiet_ok(&out);
    let mode = std::fs::metadata(dir.join("x.o"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);
    assert_eq!(wait_compiles(&d, 1), 1);
}
