//! `lsdistcc` against stock distccd 3.4 on loopback, a port with no
//! listener, a listener that never accepts, and a black-holed port (its
//! backlog full, so SYNs are dropped); output lines compared with stock
//! `/usr/bin/lsdistcc` where both can run.

use crate::util::{Daemon, free_port, ours, run, show, stock_daemon};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Stock distccd started as root drops to `nobody`, which cannot write the
/// harness's TMPDIR: open it up so the stock daemon can compile.
pub fn stock(extra: &[&str]) -> Daemon {
    use std::os::unix::fs::PermissionsExt;
    let d = stock_daemon(extra);
    std::fs::set_permissions(d.tmp(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

fn lsdistcc(args: &[&str]) -> Output {
    run(ours("lsdistcc").args(args))
}

fn stock_lsdistcc(args: &[&str]) -> Output {
    run(Command::new("/usr/bin/lsdistcc").args(args))
}

fn lines(out: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// A listening socket with backlog 0 whose queue is already full: new SYNs
/// are dropped, so a connect hangs until its timeout (a black hole).
struct BlackHole {
    _listener: OwnedFd,
    _fillers: Vec<OwnedFd>,
}

fn black_hole(ip: [u8; 4], port: u16) -> BlackHole {
    // SAFETY: plain socket calls on descriptors we own; every return value is
    // checked and each descriptor is wrapped in OwnedFd at once.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let listener = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(ip),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        assert_eq!(rc, 0, "bind black hole");
        assert_eq!(libc::listen(fd, 0), 0);
        let mut fillers = Vec::new();
        for _ in 0..3 {
            let c = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
            assert!(c >= 0);
            libc::connect(
                c,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            );
            fillers.push(OwnedFd::from_raw_fd(c));
        }
        std::thread::sleep(Duration::from_millis(100));
        BlackHole {
            _listener: listener,
            _fillers: fillers,
        }
    }
}

#[test]
fn help_and_bad_options_print_usage_on_stdout_and_exit_1() {
    for args in [&["--help"][..], &["-q"], &["-P7", "localhost"]] {
        let out = lsdistcc(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("Usage:"));
    }
    assert!(lsdistcc(&["--help"]).stderr.is_empty());
}

#[test]
fn finds_stock_daemon_with_each_protocol_like_stock_lsdistcc() {
    let d = stock(&["--enable-tcp-insecure"]);
    let port = format!("-r{}", d.port);
    for (proto, suffix) in [("-P1", ""), ("-P2", ",lzo"), ("-P3", ",lzo,cpp")] {
        let args = [port.as_str(), "-pgcc", "-k30000", proto, "-x", "127.0.0.1"];
        let out = lsdistcc(&args);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert_eq!(lines(&out), [format!("127.0.0.1:{}{suffix}", d.port)]);
        assert_eq!(lines(&out), lines(&stock_lsdistcc(&args)), "same as stock");
    }
    // -l adds the latency in ms; -n prints the address.
    let out = lsdistcc(&[&port, "-pgcc", "-k30000", "-l", "-n", "localhost"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (host, ms) = text.trim().split_once(' ').expect("latency column");
    assert_eq!(host, format!("127.0.0.1:{}", d.port));
    assert!(ms.parse::<u64>().is_ok(), "{text}");
    // A compiler the server refuses: the host is down.
    let args = [port.as_str(), "-pno-such-compiler", "-x", "127.0.0.1"];
    let out = lsdistcc(&args);
    assert_eq!(lines(&out), [format!("127.0.0.1:{},down", d.port)]);
    assert_eq!(lines(&out), lines(&stock_lsdistcc(&args)));
}

#[test]
fn finds_our_daemon_with_each_protocol() {
    let d = crate::daemon::start(&[]);
    let port = format!("-r{}", d.port);
    for (proto, suffix) in [("-P1", ""), ("-P2", ",lzo"), ("-P3", ",lzo,cpp")] {
        let args = [port.as_str(), "-pgcc", "-k30000", proto, "-x", "127.0.0.1"];
        let out = lsdistcc(&args);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert_eq!(
            lines(&out),
            [format!("127.0.0.1:{}{suffix}", d.port)],
            "{}",
            d.log()
        );
        assert_eq!(lines(&out), lines(&stock_lsdistcc(&args)), "same as stock");
    }
    // Our daemon refuses a compiler outside its allow-list: down.
    let out = lsdistcc(&[&port, "-pno-such-compiler", "-x", "127.0.0.1"]);
    assert_eq!(lines(&out), [format!("127.0.0.1:{},down", d.port)]);
}

#[test]
fn no_listener_is_down_and_still_exit_0() {
    let port = free_port();
    let p = format!("-r{port}");
    let out = lsdistcc(&[&p, "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(out.stdout.is_empty());
    let out = lsdistcc(&[&p, "-x", "127.0.0.1"]);
    assert_eq!(lines(&out), [format!("127.0.0.1:{port},down")]);
    assert_eq!(
        lines(&out),
        lines(&stock_lsdistcc(&[&p, "-x", "127.0.0.1"]))
    );
}

#[test]
fn unresolvable_names_only_exit_1() {
    let out = lsdistcc(&["-x", "no-such-host.invalid", "another.invalid"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(out.stdout.is_empty());
    let out = lsdistcc(&["-x", "h%d.invalid"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

#[test]
fn silent_listener_is_up_without_compile_and_down_after_compile_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = format!("-r{port}");
    // The kernel completes the handshake: a connect-only probe sees it up.
    let out = lsdistcc(&[&p, "127.0.0.1"]);
    assert_eq!(lines(&out), [format!("127.0.0.1:{port}")]);
    // The test compile never gets an answer: down after -k, well before -t.
    let start = Instant::now();
    let out = lsdistcc(&[&p, "-t30", "-pgcc", "-k300", "-x", "127.0.0.1"]);
    let took = start.elapsed();
    assert_eq!(lines(&out), [format!("127.0.0.1:{port},down")]);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(listener);
}

#[test]
fn black_hole_costs_its_connect_timeout_and_does_not_delay_live_hosts() {
    let d = stock(&["--enable-tcp-insecure"]);
    let _hole = black_hole([127, 0, 0, 2], d.port);
    let p = format!("-r{}", d.port);
    // Confirm the hole: a direct connect does not complete.
    let addr: SocketAddr = format!("127.0.0.2:{}", d.port).parse().unwrap();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err());
    let start = Instant::now();
    // Connect-only probes, so the live host's time does not depend on how
    // long a compile takes on a loaded machine.
    let out = lsdistcc(&[&p, "-t30", "-c1500", "-x", "127.0.0.2", "127.0.0.1"]);
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let got: Vec<&str> = text.lines().collect();
    // Completion order: the live host first, although it was listed second.
    assert_eq!(
        got,
        [
            format!("127.0.0.1:{}", d.port),
            format!("127.0.0.2:{},down", d.port)
        ],
        "{}",
        show(&out)
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn overall_deadline_ends_the_run_with_exit_0() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let start = Instant::now();
    let out = lsdistcc(&[
        &format!("-r{port}"),
        "-t1",
        "-pgcc",
        "-k60000",
        "-x",
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(out.stdout.is_empty(), "{}", show(&out));
    assert!(start.elapsed() < Duration::from_secs(30));
    drop(listener);
}

#[test]
fn name_pattern_runs_until_names_stop_resolving() {
    // 127.0.0.1 .. 127.0.0.255 resolve; 127.0.0.256 does not. -c0: no connect.
    let out = lsdistcc(&["-c0", "-r4000", "127.0.0.%d"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let got = lines(&out);
    assert_eq!(got.len(), 255);
    assert!(got.contains(&"127.0.0.255:4000".to_string()));
    assert_eq!(
        got,
        lines(&stock_lsdistcc(&["-c0", "-r4000", "127.0.0.%d"]))
    );
    // -m24 keeps the first host's /24; a list skips the outsider.
    let out = lsdistcc(&["-c0", "-m24", "127.0.0.1", "127.0.1.1", "127.0.0.2"]);
    assert_eq!(lines(&out), ["127.0.0.1", "127.0.0.2"]);
}

#[test]
fn pump_finds_potential_hosts_through_lsdistcc() {
    let d = crate::daemon::start(&[]);
    let t = crate::util::TestDir::new("pump-potential");
    std::fs::create_dir_all(t.join("distccdir")).unwrap();
    let out = run(ours("pump")
        .args(["sh", "-c", "echo \"HOSTS=$DISTCC_HOSTS\""])
        .env("DISTCC_DIR", t.join("distccdir"))
        .env("DISTCC_POTENTIAL_HOSTS", "127.0.0.1 127.0.0.2")
        .env("LSDISTCC_ARGS", format!("-r{}", d.port))
        .env_remove("DISTCC_HOSTS")
        .current_dir(&t.path));
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 127.0.0.2 has no listener on that port: only the live daemon is used.
    let hosts = format!("HOSTS=--randomize 127.0.0.1:{},cpp,lzo", d.port);
    assert!(stdout.lines().any(|l| l == hosts), "{}", show(&out));
    assert!(stdout.contains("__________Found 1 available distcc servers\n"));
}

/// More hosts than descriptors (soft and hard limit 30): the hosts are
/// probed in turns, and every live one is listed, as by stock (sweep W,
/// D6: those beyond the limit were reported down).
#[test]
fn more_hosts_than_descriptors_are_all_probed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = format!("-r{port}");
    let mut args = vec![p.as_str(), "-x"];
    args.extend(std::iter::repeat_n("127.0.0.1", 60));
    let mut cmd = ours("lsdistcc");
    cmd.args(&args);
    use std::os::unix::process::CommandExt;
    // SAFETY: only setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 30,
                rlim_max: 30,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let got = lines(&out);
    assert_eq!(got.len(), 60, "{}", show(&out));
    assert!(
        got.iter().all(|l| *l == format!("127.0.0.1:{port}")),
        "{got:?}"
    );
    drop(listener);
}
