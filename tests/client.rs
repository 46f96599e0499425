//! Client front end and shared helpers for the client test modules.
//!
//! The helpers start stock distccd 3.4 in a directory its unprivileged user
//! can write (distccd drops root to `distccd`), build client commands with a
//! hermetic environment, and compare objects with local compiles. The tests
//! here cover the options (`--help`, `--version`, `--show-hosts`, `-j`),
//! host-list errors, recursion, logging, locks and state files.

use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Starts stock distccd 3.4 (`--enable-tcp-insecure`, `--verbose`) whose
/// work directory its unprivileged user can write.
pub fn stock() -> Daemon {
    stock_with(&[])
}

/// Like [`stock`] with extra daemon options.
pub fn stock_with(extra: &[&str]) -> Daemon {
    let mut args = vec!["--verbose", "--enable-tcp-insecure"];
    args.extend_from_slice(extra);
    stock_daemon(&args)
}

/// Our client as `distcc`, with a hermetic environment in `dir` and
/// `DISTCC_FALLBACK=0` so a silent local fallback cannot pass a test.
pub fn client(dir: &TestDir, hosts: &str) -> Command {
    let mut c = ours("distcc");
    client_env(&mut c, dir, hosts);
    c.env("DISTCC_FALLBACK", "0");
    c
}

/// Number of successful remote compiles in a stock daemon's log.
pub fn compiles_ok(d: &Daemon) -> usize {
    d.log().matches("COMPILE_OK").count()
}

/// Waits (bounded) until the daemon log shows `n` successful compiles.
pub fn wait_compiles(d: &Daemon, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while compiles_ok(d) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    compiles_ok(d)
}

/// Asserts success with empty stdout and stderr.
pub fn assert_quiet_ok(out: &Output) {
    assert!(out.status.success(), "{}", show(out));
    assert!(out.stdout.is_empty(), "unexpected stdout: {}", show(out));
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", show(out));
}

/// Runs `args` with the local compiler in `dir`.
pub fn local(dir: &TestDir, args: &[&str]) -> Output {
    run(Command::new(args[0])
        .args(&args[1..])
        .current_dir(&dir.path))
}

/// Reads a file (panics with its name).
pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Starts our include server on `<dir>/socket`.
pub fn include_server(dir: &TestDir) -> (Guard, PathBuf) {
    let socket = dir.join("socket");
    let mut cmd = ours("include-server");
    cmd.arg("--port")
        .arg(&socket)
        .env_remove("DISTCC_CLIENT_TMP")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("include-server.log")).unwrap());
    let guard = Guard::spawn(cmd, "include-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    // The socket file appears at bind(), before listen(): wait for a connect.
    while std::os::unix::net::UnixStream::connect(&socket).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        std::os::unix::net::UnixStream::connect(&socket).is_ok(),
        "include server does not accept connections"
    );
    (guard, socket)
}

#[test]
fn version_and_help() {
    let out = run(ours("distcc").arg("--version"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("distcc 3.4 x86_64-pc-linux-gnu\n"),
        "{text}"
    );
    assert!(text.contains("(protocols 1, 2 and 3) (default port 3632)"));
    let out = run(ours("distcc").arg("--help"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Usage:") && text.contains("HOSTSPEC,cpp,lzo"),
        "{text}"
    );
    // The set-up command of the README is in the help (sweep Z, D3).
    assert!(
        text.contains("distcc --install-links [--compilers] DIR")
            && text.contains("distcc APPLET [ARGS...]"),
        "{text}"
    );
}

#[test]
fn no_arguments_is_101() {
    let out = run(&mut ours("distcc"));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
    let out = run(ours("distcc").arg("--scan-includes"));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
}

#[test]
fn show_hosts_and_concurrency() {
    let dir = TestDir::new("showhosts");
    let list = "localhost/3 127.0.0.1:47002/5,lzo @host/2:/opt/distccd,lzo,cpp [::1]:4000/6 --localslots=9 host,down # c\n foo=3";
    let out = run(client(&dir, list).arg("--show-hosts"));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "localhost/3\n127.0.0.1:47002/5,lzo\n@host/2:/opt/distccd,lzo,cpp\n[::1]:4000/6\nhost,down\nfoo=3\n"
    );
    let out = run(client(&dir, "localhost/3 h:1/5,lzo foo bar/1 localhost").arg("-j"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "15\n",
        "{}",
        show(&out)
    );
    // Stock prints nothing and exits 0 on a bad list.
    let out = run(client(&dir, "angry::").arg("--show-hosts"));
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("column 1"));
}

/// `--show-principal` (stock's GSS-API build, Debian's) prints stock's line
/// and exits 0; it was passed to the compiler as an option (sweep Z).
#[test]
fn show_principal_answers_as_stock_and_says_gss_is_absent() {
    let dir = TestDir::new("principal");
    let out = run(client(&dir, "")
        .env_remove("DISTCC_PRINCIPAL")
        .arg("--show-principal"));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Principal\t: Not Set.\n"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GSS-API authentication is not supported"),
        "{}",
        show(&out)
    );
    let out = run(client(&dir, "")
        .env("DISTCC_PRINCIPAL", "distcc@EXAMPLE")
        .arg("--show-principal"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Principal is\t: distcc@EXAMPLE\n"
    );
}

/// A hosts file that is a link to an endless device reads as its size
/// says, empty, as stock reads it (sweep W, D8: ours read until memory ran
/// out).
#[test]
fn endless_hosts_file_reads_as_empty() {
    let dir = TestDir::new("endlesshosts");
    let mut cmd = client(&dir, "");
    cmd.env_remove("DISTCC_HOSTS");
    std::os::unix::fs::symlink("/dev/zero", dir.join("distccdir/hosts")).unwrap();
    let out = run(cmd.arg("--show-hosts"));
    assert!(out.status.success(), "{}", show(&out));
    assert!(out.stdout.is_empty(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("contained no hosts"),
        "{}",
        show(&out)
    );
}

#[test]
fn bad_host_specs_say_where_and_leave_no_host() {
    let dir = TestDir::new("badspec");
    dir.write("x.c", "int x;\n");
    for (spec, col, why) in [
        ("angry::", "column 1", "port"),
        ("ok :4200", "column 4", "empty host"),
        ("ok mbp@", "column 4", "empty host"),
        ("[::1", "column 1", "]"),
        ("h,cpp", "column 1", "requires compression"),
        ("h,bogus", "column 1", "bogus"),
    ] {
        // `--show-hosts` says what is wrong and exits 0, as stock's.
        let out = run(client(&dir, spec).arg("--show-hosts"));
        assert_eq!(out.status.code(), Some(0), "{spec}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(col) && err.contains(why), "{spec}: {err}");
        // Compiling with fallbacks off, no host is left to pick: stock's
        // "no hosts" (116), with the same reason.
        let out = run(client(&dir, spec).args(["gcc", "-c", "x.c"]));
        assert_eq!(out.status.code(), Some(116), "{spec}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(col) && err.contains(why), "{spec}: {err}");
    }
    // With fallback allowed the compile still happens here, as stock does.
    let out = run(client(&dir, "angry::")
        .env("DISTCC_FALLBACK", "1")
        .args(["gcc", "-c", "x.c"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("x.o").exists());
}

#[test]
fn auth_and_zeroconf_say_unsupported() {
    let dir = TestDir::new("auth");
    dir.write("x.c", "int x;\n");
    let out = run(client(&dir, "+zeroconf h,auth")
        .env("DISTCC_FALLBACK", "1")
        .args(["gcc", "-c", "x.c"]));
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zeroconf") && err.contains("not supported"),
        "{err}"
    );
    assert!(
        err.contains("auth") && err.contains("not supported"),
        "{err}"
    );
}

#[test]
fn recursion_is_111() {
    let dir = TestDir::new("recurse");
    dir.write("x.c", "int x;\n");
    let out = run(client(&dir, "localhost")
        .env("_DISTCC_SAFEGUARD", "1")
        .args(["gcc", "-c", "x.c"]));
    assert_eq!(out.status.code(), Some(111), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("recursively"));
    // A real loop: a compiler wrapper that calls distcc again.
    let wrapper = dir.write(
        "bin/mycc",
        format!("#!/bin/sh\nexec '{}' gcc \"$@\"\n", bin().display()),
    );
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(client(&dir, "localhost").env("DISTCC_FALLBACK", "1").args([
        wrapper.to_str().unwrap(),
        "-c",
        "x.c",
    ]));
    assert_eq!(out.status.code(), Some(111), "{}", show(&out));
}

#[test]
fn unopenable_log_file_is_reported_and_compile_works() {
    let dir = TestDir::new("badlog");
    dir.write("x.c", "int x;\n");
    let out = run(client(&dir, "")
        .env("DISTCC_FALLBACK", "1")
        .env("DISTCC_LOG", "/nonexistent/dir/distcc.log")
        .args(["gcc", "-c", "x.c"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to open logfile"));
    assert!(dir.join("x.o").exists());
}

#[test]
fn local_only_jobs_log_their_reason() {
    let dir = TestDir::new("localonly");
    dir.write("x.c", "int x;\n");
    let log = dir.join("log");
    let out = run(client(&dir, "127.0.0.1:1")
        .env("DISTCC_LOG", &log)
        .args(["gcc", "-E", "x.c", "-o", "x.i"]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("x.i").exists());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("-E") && lines[0].contains("running locally"),
        "{text}"
    );
    // Then stock's lines for scripts (sweep W, D3), without a tag.
    let pid = lines[0].split(']').next().unwrap();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].starts_with(&format!("{pid}] exec on localhost: gcc -E x.c")),
        "{text}"
    );
    assert_eq!(
        lines[2],
        format!("{pid}] compile x.c on localhost completed ok"),
        "{text}"
    );
    assert!(
        lines[3].starts_with(&format!("{pid}] elapsed compilation time ")),
        "{text}"
    );
}

/// Stock's per-job lines in DISTCC_LOG for a remote compile, and a failed
/// one's ERROR line in the log but not on stderr (sweep W, D3).
#[test]
fn the_log_has_stocks_job_lines() {
    let d = our_daemon(&[]);
    let dir = TestDir::new("joblines");
    dir.write("x.c", "int x;\n");
    dir.write("bad.c", "int x = ;\n");
    let log = dir.join("log");
    let host = d.host("");
    let out = run(client(&dir, &host)
        .env("DISTCC_LOG", &log)
        .args(["gcc", "-c", "x.c", "-o", "x.o"]));
    assert!(out.status.success(), "{}", show(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    for want in [
        format!("] exec on {host}: "),
        "gcc -c x.c -o x.o\n".to_string(),
        "] cpp x.c on localhost completed ok".to_string(),
        format!("] compile x.c on {host} completed ok"),
        "] elapsed compilation time ".to_string(),
    ] {
        assert!(text.contains(&want), "{want}: {text}");
    }
    let out = run(client(&dir, "localhost")
        .env("DISTCC_LOG", &log)
        .args(["gcc", "-c", "bad.c", "-o", "bad.o"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("] ERROR: compile bad.c on localhost failed"),
        "{text}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("distcc["),
        "{}",
        show(&out)
    );
}

#[test]
fn invalid_io_timeout_is_101() {
    let dir = TestDir::new("iot");
    dir.write("x.c", "int x;\n");
    let out = run(client(&dir, "localhost")
        .env("DISTCC_IO_TIMEOUT", "0")
        .args(["gcc", "-c", "x.c"]));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
}

/// While a job waits on a server that never answers, the slot lock is held
/// (a stock-compatible fcntl lock) and a state file in stock's layout
/// describes it; both go away afterwards.
#[test]
fn lock_and_state_file_during_a_job() {
    let dir = TestDir::new("statefile");
    dir.write("x.c", "int x;\n");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(s);
    });
    let mut cmd = client(&dir, &format!("127.0.0.1:{port}"));
    cmd.env("DISTCC_IO_TIMEOUT", "3")
        .args(["gcc", "-c", "x.c"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = Guard::spawn(cmd, "client");
    let state_dir = dir.join("distccdir/state");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut jobs = Vec::new();
    while Instant::now() < deadline {
        jobs = distcc::state::read_state_dir(&state_dir).unwrap();
        if jobs
            .first()
            .is_some_and(|j| j.phase == distcc::state::Phase::Compile)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].pid, u64::from(child.pid()));
    assert_eq!(jobs[0].file, b"x.c");
    assert_eq!(jobs[0].host, b"127.0.0.1");
    assert_eq!(jobs[0].phase, distcc::state::Phase::Compile);
    // Stock's monitor shows our job from our state file.
    require_stock();
    let mut mon = Command::new("/usr/bin/distccmon-text");
    mon.env("DISTCC_DIR", dir.join("distccdir"));
    let out = run(&mut mon);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("x.c") && text.contains("127.0.0.1") && text.contains("Compile"),
        "distccmon-text: {}",
        show(&out)
    );
    let lock = dir.join(&format!("distccdir/lock/cpu_tcp_127.0.0.1_{port}_0"));
    let probe = || {
        Command::new("python3")
            .arg("-c")
            .arg("import fcntl,sys\ntry:\n f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError: sys.exit(1)")
            .arg(&lock)
            .status()
            .unwrap()
            .success()
    };
    assert!(!probe(), "slot lock not held during the job");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.child.wait().unwrap();
    // The host timed out and is backed off, so none is left: "no hosts"
    // (116) with fallbacks off, as stock.
    assert_eq!(status.code(), Some(116), "timeout with fallback off");
    assert!(probe(), "slot lock not released");
    assert!(
        distcc::state::read_state_dir(&state_dir)
            .unwrap()
            .is_empty()
    );
    assert!(
        dir.join(&format!("distccdir/lock/backoff_tcp_127.0.0.1_{port}_0"))
            .exists()
    );
    hold.join().unwrap();
}

#[test]
fn uncached_err_fd_receives_the_log() {
    let dir = TestDir::new("errfd");
    dir.write("x.c", "int x;\n");
    let mut cmd = Command::new("sh");
    client_env(&mut cmd, &dir, "");
    cmd.arg("-c").arg(format!(
        "exec 3>errfile; UNCACHED_ERR_FD=3 exec '{}' gcc -c x.c",
        bin().display()
    ));
    let out = run(&mut cmd);
    assert_quiet_ok(&out);
    let text = std::fs::read_to_string(dir.join("errfile")).unwrap();
    assert!(text.contains("can't distribute work"), "{text}");
}

#[test]
fn temp_files_go_to_tmpdir_and_save_temps_keeps_them() {
    let d = stock();
    let dir = TestDir::new("temps");
    dir.write("x.c", "int x;\n");
    assert_quiet_ok(&run(client(&dir, &d.host("")).args(["gcc", "-c", "x.c"])));
    let left: Vec<_> = std::fs::read_dir(dir.join("ctmp")).unwrap().collect();
    assert!(left.is_empty(), "temp files left behind: {left:?}");
    assert_quiet_ok(&run(client(&dir, &d.host(""))
        .env("DISTCC_SAVE_TEMPS", "1")
        .args(["gcc", "-c", "x.c"])));
    let kept: Vec<String> = std::fs::read_dir(dir.join("ctmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter()
            .any(|n| n.starts_with("distcc_") && n.ends_with(".i")),
        "{kept:?}"
    );
    // Nothing but the object appears beside the source (no temp leftovers).
    let mut here: Vec<String> = std::fs::read_dir(&dir.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    here.sort();
    assert!(here.is_empty(), "{here:?}");
}

/// Our client and stock distcc 3.4 share slot limits: while ours holds the
/// only slot of a host, a stock client on the same DISTCC_DIR waits (it
/// connects only after ours is done), and then its state file can be read
/// with our reader.
#[test]
fn stock_client_waits_for_our_slot() {
    require_stock();
    let dir = TestDir::new("shared");
    dir.write("x.c", "int x;\n");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let acc = accepted.clone();
    let hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end && held.len() < 2 {
            match listener.accept() {
                Ok((s, _)) => {
                    acc.lock().unwrap().push(Instant::now());
                    held.push(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    });
    let hosts = format!("127.0.0.1:{port}/1");
    let mut ours_cmd = client(&dir, &hosts);
    ours_cmd
        .env("DISTCC_IO_TIMEOUT", "2")
        .env("DISTCC_BACKOFF_PERIOD", "0")
        .args(["gcc", "-c", "x.c"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut ours_g = Guard::spawn(ours_cmd, "our client");
    let state_dir = dir.join("distccdir/state");
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline
        && !distcc::state::read_state_dir(&state_dir)
            .unwrap()
            .iter()
            .any(|j| j.phase == distcc::state::Phase::Compile)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stock_cmd = Command::new("/usr/bin/distcc");
    client_env(&mut stock_cmd, &dir, &hosts);
    stock_cmd
        .env("DISTCC_IO_TIMEOUT", "1")
        .env("DISTCC_PAUSE_TIME_MSEC", "50")
        .args(["gcc", "-c", "x.c", "-o", "stock.o"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut stock_g = Guard::spawn(stock_cmd, "stock client");
    let stock_pid = u64::from(stock_g.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    // The last moment our client (and so its slot lock) was seen alive: stock
    // may connect as soon as it exits, but never before.
    let mut last_seen_alive = Instant::now();
    while Instant::now() < deadline {
        let now = Instant::now();
        if !ours_g.alive() {
            break;
        }
        last_seen_alive = now;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(ours_g.child.wait().unwrap().code(), Some(118));
    let early = accepted
        .lock()
        .unwrap()
        .iter()
        .skip(1)
        .filter(|&&t| t < last_seen_alive)
        .count();
    assert_eq!(early, 0, "stock connected while our slot was held");
    // Stock now has the slot and waits for the reply: our reader sees it.
    let mut seen = None;
    let deadline = Instant::now() + Duration::from_secs(3);
    while seen.is_none() && Instant::now() < deadline {
        seen = distcc::state::read_state_dir(&state_dir)
            .unwrap()
            .into_iter()
            .find(|j| j.pid == stock_pid && j.host == b"127.0.0.1");
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = seen.expect("no readable state file from the stock client");
    assert_eq!(seen.file, b"x.c");
    let deadline = Instant::now() + Duration::from_secs(20);
    while stock_g.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(stock_g.child.wait().unwrap().success());
    assert!(dir.join("stock.o").exists());
    let times = accepted.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    assert!(times[1] >= last_seen_alive);
    hold.join().unwrap();
}

/// Masquerade links (`gcc`, `cc`) first on PATH and `make -j4` of
/// testdata/hello-project against daemon `d` in lzo mode, fallback off:
/// all three compiles must run on `d`, and the program must run.
pub fn make_hello_project_through_links(d: &Daemon, tag: &str) {
    let dir = TestDir::new(tag);
    let proj = dir.join("proj");
    let status = Command::new("cp")
        .arg("-r")
        .arg(testdata("hello-project"))
        .arg(&proj)
        .status()
        .unwrap();
    assert!(status.success());
    let links = dir.join("masq");
    std::fs::create_dir_all(&links).unwrap();
    for name in ["gcc", "cc"] {
        std::os::unix::fs::symlink(bin(), links.join(name)).unwrap();
    }
    let path = format!("{}:{}", links.display(), std::env::var("PATH").unwrap());
    let mut cmd = Command::new("make");
    client_env(&mut cmd, &dir, &d.host(",lzo"));
    cmd.env("DISTCC_FALLBACK", "0")
        .env("PATH", &path)
        .args(["-j4", "CC=gcc"])
        .current_dir(&proj);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(wait_compiles(d, 3), 3, "daemon log: {}", d.log());
    let out = run(&mut Command::new(proj.join("hello")));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello world\nsum 55\n"
    );
}

/// A server that stops reading in the middle of a request (what a dead
/// link looks like): the client gives up about one DISTCC_IO_TIMEOUT after
/// its last progress, in plain mode (sendfile) and lzo mode (writev). A
/// blocking write under a send timeout took two to four timeouts.
#[test]
fn a_server_that_stops_reading_times_out_after_one_timeout() {
    let dir = TestDir::new("stopread");
    dir.write(
        "big.cpp",
        "#include <bits/stdc++.h>\n#include <regex>\nint main() { return 0; }\n",
    );
    assert!(
        local(&dir, &["g++", "-E", "big.cpp", "-o", "big.ii"])
            .status
            .success()
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let small: libc::c_int = 4096;
    // SAFETY: setsockopt on a live socket with a valid int.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&listener),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    // Accepts and holds connections, never reading.
    let sink = std::thread::spawn(move || {
        let mut held = Vec::new();
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end && !stop.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    for opts in ["", ",lzo"] {
        let started = Instant::now();
        let out = run(client(&dir, &format!("127.0.0.1:{port}{opts}"))
            .env("DISTCC_IO_TIMEOUT", "3")
            .env("DISTCC_FALLBACK", "0")
            .env("DISTCC_BACKOFF_PERIOD", "0")
            .args(["g++", "-c", "big.ii", "-o", "big.o"]));
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(118), "{opts}: {}", show(&out));
        assert!(
            took < Duration::from_millis(6500),
            "{opts}: gave up after {took:?} with a 3 s timeout"
        );
        assert!(!dir.join("big.o").exists());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    sink.join().unwrap();
}
