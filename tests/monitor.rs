//! `distccmon-text` reading the state files of real distcc clients (stock's
//! and ours) during concurrent compiles, plus hand-made files for the cases a monitor
//! must skip (bad magic, wrong size, stale, dead client).

use crate::lsdistcc::stock;
use crate::util::{Daemon, Guard, TestDir, client_env, ours, run, show};
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A compiler that is slow on the server only: it preprocesses at once
/// (the client's local `-E`) and sleeps before compiling, so the jobs sit in
/// the Compile phase without loading the machine. A small source to go with.
fn slow_compiler(t: &TestDir) -> String {
    use std::os::unix::fs::PermissionsExt;
    let cc = t.write(
        "slowcc",
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = -E ] && exec gcc \"$@\"; done\nsleep 3\nexec gcc \"$@\"\n",
    );
    std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut src = String::new();
    for i in 0..20 {
        writeln!(src, "int f{i}(int x) {{ return x * {i}; }}").unwrap();
    }
    t.write("big.c", src);
    cc.display().to_string()
}

fn monitor(t: &TestDir, args: &[&str]) -> std::process::Output {
    run(ours("distccmon-text")
        .args(args)
        .env("DISTCC_DIR", t.join("distccdir")))
}

/// One line in stock's layout: "%6d  %-10.10s  %-30.30s %24.24s[%d]".
fn check_line(line: &str) -> (u32, String, String, String, u32) {
    assert_eq!(line.len(), 78, "{line:?}");
    let pid = line[..6].trim().parse().unwrap();
    assert_eq!(&line[6..8], "  ");
    let phase = line[8..18].trim_end().to_string();
    assert_eq!(&line[18..20], "  ");
    let file = line[20..50].trim_end().to_string();
    let (host, slot) = line[51..].trim_start().split_once('[').unwrap();
    let slot = slot.trim_end_matches(']').parse().unwrap();
    (pid, phase, file, host.to_string(), slot)
}

#[test]
fn shows_concurrent_stock_client_jobs() {
    let d = stock(&["--enable-tcp-insecure"]);
    watch_two_jobs(&d, || Command::new("/usr/bin/distcc"));
}

#[test]
fn shows_concurrent_jobs_of_our_client_on_our_daemon() {
    let d = crate::daemon::start(&["--enable-tcp-insecure"]);
    watch_two_jobs(&d, || ours("distcc"));
}

/// Starts two slow compiles with `client` against `d` and checks what the
/// monitor shows during and after them.
fn watch_two_jobs(d: &Daemon, client: impl Fn() -> Command) {
    let t = TestDir::new("mon");
    let cc = slow_compiler(&t);
    let mut clients = Vec::new();
    for n in 0..2 {
        let mut c = client();
        client_env(&mut c, &t, &format!("127.0.0.1:{}/4", d.port));
        c.env("DISTCC_FALLBACK", "0");
        c.args([cc.as_str(), "-c", "big.c", "-o", &format!("big{n}.o")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        clients.push(Guard::spawn(c, "client"));
    }
    // Watch until both jobs are seen on the daemon's two slots (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = None;
    while Instant::now() < deadline {
        let out = monitor(&t, &[]);
        assert!(out.status.success(), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.ends_with('\n'));
        let jobs: Vec<_> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(check_line)
            .collect();
        if jobs.len() == 2 && jobs.iter().all(|j| j.1 == "Compile") {
            seen = Some(jobs);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let jobs = seen.expect("never saw both compiles in the Compile phase");
    let pids: Vec<u32> = clients.iter().map(|g| g.pid()).collect();
    for (n, j) in jobs.iter().enumerate() {
        assert!(pids.contains(&j.0), "pid {} is one of our clients", j.0);
        assert_eq!(j.2, "big.c");
        assert_eq!(j.3, "127.0.0.1");
        assert_eq!(j.4 as usize, n, "slots 0 and 1, sorted");
    }
    // With DELAY it keeps refreshing; it is stopped by killing it.
    let mut cmd = ours("distccmon-text");
    cmd.arg("0.2")
        .env("DISTCC_DIR", t.join("distccdir"))
        .stdout(Stdio::piped());
    let mut repeating = Guard::spawn(cmd, "monitor");
    std::thread::sleep(Duration::from_millis(900));
    unsafe { libc::kill(repeating.pid() as i32, libc::SIGTERM) };
    let mut text = String::new();
    use std::io::Read;
    repeating
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.matches("\n\n").count() >= 2,
        "several refreshes: {text:?}"
    );
    // When the clients are done, their files are gone and nothing is shown.
    for mut c in clients {
        let deadline = Instant::now() + Duration::from_secs(120);
        while c.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!c.alive(), "client finished");
    }
    for n in 0..2 {
        assert!(
            t.join(&format!("big{n}.o")).exists(),
            "remote compile {n} made its object"
        );
    }
    assert_eq!(monitor(&t, &[]).stdout, b"\n");
}

/// A compile on the client machine (host `localhost`, or a fallback after a
/// server refused) shows as Compile on `localhost`, as stock's client shows
/// it, not as the start-up phase or the failed server.
#[test]
fn local_compiles_show_as_localhost() {
    let t = TestDir::new("mon-local");
    let cc = slow_compiler(&t);
    let closed = crate::util::free_port();
    for (what, hosts) in [
        ("localhost host", "localhost".to_string()),
        ("fallback", format!("127.0.0.1:{closed}")),
    ] {
        for (who, client) in [
            ("ours", ours("distcc")),
            ("stock", Command::new("/usr/bin/distcc")),
        ] {
            let mut c = client;
            client_env(&mut c, &t, &hosts);
            c.args([cc.as_str(), "-c", "big.c", "-o", "big.o"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut job = Guard::spawn(c, "client");
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut last = String::new();
            let mut seen = None;
            while Instant::now() < deadline && job.alive() {
                let out = monitor(&t, &[]);
                last = String::from_utf8_lossy(&out.stdout).into_owned();
                if let Some(line) = last.lines().find(|l| !l.is_empty()) {
                    let j = check_line(line);
                    if j.1 == "Compile" {
                        seen = Some(j);
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let j =
                seen.unwrap_or_else(|| panic!("{who}, {what}: never in Compile; last: {last:?}"));
            assert_eq!(j.0, job.pid(), "{who}, {what}");
            assert_eq!(j.2, "big.c", "{who}, {what}");
            assert_eq!((j.3.as_str(), j.4), ("localhost", 0), "{who}, {what}");
            let deadline = Instant::now() + Duration::from_secs(60);
            while job.alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(!job.alive(), "{who}, {what}: client finished");
        }
    }
}

fn image(pid: u32, phase: u32, magic: u64) -> Vec<u8> {
    let mut b = vec![0u8; 296];
    b[0..8].copy_from_slice(&296u64.to_ne_bytes());
    b[8..16].copy_from_slice(&magic.to_ne_bytes());
    b[16..24].copy_from_slice(&u64::from(pid).to_ne_bytes());
    b[0x18..0x18 + 6].copy_from_slice(b"main.c");
    b[0x98..0x98 + 9].copy_from_slice(b"buildhost");
    b[0x118..0x11c].copy_from_slice(&3i32.to_ne_bytes());
    b[0x11c..0x120].copy_from_slice(&phase.to_ne_bytes());
    b
}

#[test]
fn skips_bad_stale_and_dead_state_files() {
    let t = TestDir::new("mon-files");
    let me = std::process::id();
    // A live process of ours to stand for a second client.
    let mut sleeper = Command::new("sleep");
    sleeper.arg("30");
    let other = Guard::spawn(sleeper, "sleep");
    let state = t.join("distccdir/state");
    std::fs::create_dir_all(&state).unwrap();
    t.write(
        &format!("distccdir/state/binstate_{me}"),
        image(me, 3, 0x4449_4800),
    );
    t.write(
        &format!("distccdir/state/binstate_{}", other.pid()),
        image(other.pid(), 99, 0x4449_4800),
    );
    let dead = 999_999_999u32;
    t.write(
        &format!("distccdir/state/binstate_{dead}"),
        image(dead, 5, 0x4449_4800),
    );
    t.write("distccdir/state/binstate_1", image(1, 5, 0x1234));
    t.write(
        "distccdir/state/binstate_short",
        &image(me, 5, 0x4449_4800)[..100],
    );
    let out = monitor(&t, &[]);
    assert!(out.status.success(), "{}", show(&out));
    let expected = format!(
        "{me:6}  Preprocess  main.c{}buildhost[3]\n\n",
        " ".repeat(40)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(
        !state.join(format!("binstate_{dead}")).exists(),
        "dead client's file removed"
    );
    // A stale file (older than 60 s) is not shown.
    let old = std::fs::File::options()
        .write(true)
        .open(state.join(format!("binstate_{me}")))
        .unwrap();
    old.set_modified(std::time::SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    assert_eq!(monitor(&t, &[]).stdout, b"\n");
}

#[test]
fn bad_arguments_print_usage() {
    let t = TestDir::new("mon-usage");
    std::fs::create_dir_all(t.join("distccdir")).unwrap();
    for args in [&["--help"][..], &["soon"], &["1", "2"], &["-1"]] {
        let out = monitor(&t, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("usage: distccmon-text"));
        assert!(out.stdout.is_empty());
    }
    // A delay of 0 shows the jobs once, as stock.
    let out = monitor(&t, &["0"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(out.stdout, b"\n");
}

/// A DISTCC_DIR that does not exist: stock's EXIT_IO_ERROR, 107 (sweep W,
/// D5).
#[test]
fn missing_distcc_dir_is_an_io_error() {
    let t = TestDir::new("mon-missing");
    let out = run(ours("distccmon-text").env("DISTCC_DIR", t.join("no/such/dir")));
    assert_eq!(out.status.code(), Some(107), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mkdir"),
        "{}",
        show(&out)
    );
}

/// A state file that is a link to an endless device is not read whole (a
/// record is at most one block), and an old one goes, whatever it holds
/// (sweep W, D8).
#[test]
fn endless_state_files_do_not_hold_the_monitor() {
    let t = TestDir::new("mon-endless");
    let state = t.join("distccdir/state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::symlink("/dev/zero", state.join("binstate_1")).unwrap();
    std::fs::write(state.join("binstate_2"), b"garbage").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(state.join("binstate_2"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = run(ours("distccmon-text").env("DISTCC_DIR", t.join("distccdir")));
    assert!(out.status.success(), "{}", show(&out));
    assert!(!state.join("binstate_2").exists(), "an old file goes");
}
