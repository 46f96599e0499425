//! The include server against the corpus in testdata/includes, checked two
//! ways per case: the stock 3.4 client's `--scan-includes` FILE set (asked
//! of OUR include server) contains every non-system file `gcc -M` lists,
//! and a pump-mode compile (stock client, stock distccd, our include
//! server, fallback disabled) gives the same object as a local compile.
//!
//! Each case directory holds the sources and a `case.txt`: `cmd:` the
//! compiler command (run in the case's copy; `@DIR@` is that copy's
//! absolute path), `link: NAME -> TARGET` symlinks to create, `hardlink:
//! NAME -> EXISTING` hard links, `gen: FILE`
//! files in which `@DIR@` is substituted too. A case's `sysroot/`
//! directory (given with `--sysroot=@DIR@/sysroot`) holds system headers:
//! like those under /usr, they are not sent and not checked.

use crate::util::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Case {
    work: PathBuf,
    args: Vec<String>,
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else if e.file_name() != "case.txt" {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

fn setup(name: &str, dir: &TestDir) -> Case {
    let src = testdata(&format!("includes/{name}"));
    let work = dir.join("work");
    copy_tree(&src, &work);
    let work = std::fs::canonicalize(&work).unwrap();
    let spec = std::fs::read_to_string(src.join("case.txt")).unwrap();
    let dir_s = work.display().to_string();
    let mut args = Vec::new();
    for line in spec.lines() {
        if let Some(cmd) = line.strip_prefix("cmd:") {
            args = cmd
                .split_whitespace()
                .map(|w| w.replace("@DIR@", &dir_s))
                .collect();
        } else if let Some(link) = line.strip_prefix("link:") {
            let (name, target) = link.split_once("->").unwrap();
            std::os::unix::fs::symlink(target.trim(), work.join(name.trim())).unwrap();
        } else if let Some(link) = line.strip_prefix("hardlink:") {
            let (name, target) = link.split_once("->").unwrap();
            let name = work.join(name.trim());
            // git keeps no empty directory: the link's may be missing.
            std::fs::create_dir_all(name.parent().unwrap()).unwrap();
            std::fs::hard_link(work.join(target.trim()), &name).unwrap();
        } else if let Some(file) = line.strip_prefix("gen:") {
            let p = work.join(file.trim());
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, text.replace("@DIR@", &dir_s)).unwrap();
        }
    }
    assert!(!args.is_empty(), "{name}: no cmd in case.txt");
    Case { work, args }
}

/// Starts our include server on `<dir>/socket`.
fn include_server(dir: &TestDir) -> (Guard, PathBuf) {
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
        "include server does not accept connections on {}",
        socket.display()
    );
    (guard, socket)
}

/// Non-system files `gcc -M` lists for the case, canonical.
fn gcc_deps(case: &Case) -> BTreeSet<PathBuf> {
    let mut args: Vec<&str> = Vec::new();
    let mut skip = false;
    for a in &case.args[1..] {
        if skip {
            skip = false;
            continue;
        }
        match a.as_str() {
            "-c" => {}
            "-o" => skip = true,
            _ => args.push(a),
        }
    }
    let out = run(Command::new(&case.args[0])
        .args(&args)
        .arg("-M")
        .current_dir(&case.work));
    assert!(out.status.success(), "gcc -M: {}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .skip(1)
        .filter(|w| *w != "\\")
        .map(|w| std::fs::canonicalize(case.work.join(w)).unwrap())
        .filter(|p| !p.starts_with("/usr/") && !p.starts_with(case.work.join("sysroot")))
        .collect()
}

/// Stock distccd on loopback for pump tests: its guard, port and directory.
pub fn stock_pump_daemon() -> (Guard, u16, TestDir) {
    let d = stock_daemon(&[]);
    (d.guard, d.port, d.dir)
}

/// Which implementation plays a part in a test.
#[derive(Clone, Copy, Debug)]
enum Peer {
    Stock,
    Ours,
}

/// `distcc --scan-includes` of `case` through the include server at
/// `socket`; its output (the command must succeed).
fn scan_includes(case: &Case, dir: &TestDir, socket: &Path) -> String {
    let out = run(client(case, dir, "127.0.0.1:1,cpp,lzo", socket)
        .arg("--scan-includes")
        .args(&case.args));
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn client(case: &Case, dir: &TestDir, hosts: &str, socket: &Path) -> Command {
    client_as(Peer::Stock, case, dir, hosts, socket)
}

fn client_as(peer: Peer, case: &Case, dir: &TestDir, hosts: &str, socket: &Path) -> Command {
    let mut cmd = match peer {
        Peer::Stock => Command::new("/usr/bin/distcc"),
        Peer::Ours => ours("distcc"),
    };
    client_env(&mut cmd, dir, hosts);
    cmd.current_dir(&case.work)
        .env("INCLUDE_SERVER_PORT", socket)
        .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
        .env("DISTCC_FALLBACK", "0");
    cmd
}

/// A daemon for pump compiles: (guard, port, log file).
fn pump_daemon(peer: Peer) -> (Box<dyn std::any::Any>, u16, PathBuf) {
    match peer {
        Peer::Stock => {
            let (guard, port, dir) = stock_pump_daemon();
            let log = dir.join("daemon.log");
            (Box::new((guard, dir)), port, log)
        }
        Peer::Ours => {
            let d = our_daemon(&[]);
            let (port, log) = (d.port, d.log_path());
            (Box::new(d), port, log)
        }
    }
}

fn check_case(name: &str) {
    check_case_with(name, Peer::Stock, Peer::Stock);
}

fn check_case_with(name: &str, client_peer: Peer, daemon_peer: Peer) {
    require_stock();
    let dir = TestDir::new(&format!("inc-{name}"));
    let case = setup(name, &dir);
    let (_server, socket) = include_server(&dir);
    let (_daemon, port, daemon_log) = pump_daemon(daemon_peer);
    let hosts = format!("127.0.0.1:{port},cpp,lzo");
    let client = |case: &Case, dir: &TestDir, hosts: &str, socket: &Path| {
        client_as(client_peer, case, dir, hosts, socket)
    };

    // 1. --scan-includes covers every non-system dependency gcc reports.
    let out = run(client(&case, &dir, &hosts, &socket)
        .arg("--scan-includes")
        .args(&case.args));
    assert!(
        out.status.success(),
        "{name} --scan-includes: {}",
        show(&out)
    );
    // A file is sent as a FILE, or (a hard link to one sent) as a SYMLINK
    // to it.
    let listed: BTreeSet<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("FILE").or_else(|| l.strip_prefix("SYMLINK")))
        .map(|p| PathBuf::from(p.trim_start()))
        .collect();
    let deps = gcc_deps(&case);
    assert!(!deps.is_empty(), "{name}: gcc -M listed nothing");
    for d in &deps {
        assert!(
            listed.contains(d),
            "{name}: {} missing from --scan-includes:\n{}",
            d.display(),
            show(&out)
        );
    }

    // 2. Pump compile with fallback disabled == local compile.
    let out = run(client(&case, &dir, &hosts, &socket).args(&case.args));
    let log = std::fs::read_to_string(dir.join("include-server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{name} pump compile: {}\ninclude server: {log}\ndaemon: {}",
        show(&out),
        std::fs::read_to_string(&daemon_log).unwrap_or_default()
    );
    let obj = case.work.join("main.o");
    let pumped = std::fs::read(&obj).unwrap();
    std::fs::remove_file(&obj).unwrap();
    let out = run(Command::new(&case.args[0])
        .args(&case.args[1..])
        .current_dir(&case.work));
    assert!(out.status.success(), "{name} local compile: {}", show(&out));
    let local = std::fs::read(&obj).unwrap();
    assert!(
        pumped == local,
        "{name}: pump object differs from local object"
    );
}

macro_rules! corpus {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_case(stringify!($name));
            }
        )*
        /// The corpus with our client against stock distccd.
        mod our_client {
            $(
                #[test]
                fn $name() {
                    super::check_case_with(stringify!($name), super::Peer::Ours, super::Peer::Stock);
                }
            )*
        }
        /// The corpus with the stock client against our distccd.
        mod our_daemon {
            $(
                #[test]
                fn $name() {
                    super::check_case_with(stringify!($name), super::Peer::Stock, super::Peer::Ours);
                }
            )*
        }
    };
}

corpus!(
    computed,
    objcxx,
    nostdincxx,
    macros,
    next,
    import,
    hasinclude,
    branches,
    symlinks,
    dotdot,
    absdir,
    forced,
    searchdirs,
    nonascii,
    oddnames,
    cxx,
    absinclude,
    shadow,
    selfinclude,
    sysmacros,
    sysroot,
    syscomputed,
    popmacro,
    userline,
    searchdirs_unused,
    bomdigraph,
    unknownbranch,
    guardfallback,
    rawstring,
    ifunsigned,
    nextprimary,
    oncebranch,
    hasincludemacro,
    hardlinks,
    abshasinclude,
);

/// Names no system header writes are known to be undefined after system
/// headers, as for the compiler: the branch under `#ifdef
/// PROJECT_NEVER_DEFINED` in the sysmacros case is not followed.
#[test]
fn undefined_names_stay_undefined_after_system_headers() {
    require_stock();
    let dir = TestDir::new("inc-precise");
    let case = setup("sysmacros", &dir);
    let (_server, socket) = include_server(&dir);
    let out = run(client(&case, &dir, "127.0.0.1:1,cpp,lzo", &socket)
        .arg("--scan-includes")
        .args(&case.args));
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/check.h"), "{text}");
    assert!(!text.contains("/never.h"), "{text}");
}

/// A user header created between two requests that shadows a header
/// included from a system header is found: the memoised system-header scan
/// notices the user directory changed.
#[test]
fn new_header_shadowing_a_system_header_is_found() {
    require_stock();
    let dir = TestDir::new("inc-shadow-new");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("main.c"),
        "#include <stdio.h>\nint main(void){return 0;}\n",
    )
    .unwrap();
    let case = Case {
        work: std::fs::canonicalize(&work).unwrap(),
        args: ["gcc", "-I.", "-c", "main.c"].map(String::from).to_vec(),
    };
    let (_server, socket) = include_server(&dir);
    let scan = || scan_includes(&case, &dir, &socket);
    let first = scan();
    assert!(!first.contains("/features.h"), "{first}");
    std::fs::write(work.join("features.h"), "#include_next <features.h>\n").unwrap();
    let second = scan();
    let want = format!("FILE      {}/features.h", case.work.display());
    assert!(second.contains(&want), "{second}");
}

/// The memo of a system-header scan keeps the dependencies of resolutions
/// it shares with an earlier scan of the same request: `<b.h>` is scanned
/// after `<a.h>`, and both look for `<common.h>` in `-I.` first, so `b.h`'s
/// scan reuses that resolution. A `common.h` created later in `.` must still
/// invalidate the memo of `<b.h>` alone.
#[test]
fn shared_resolutions_keep_their_dependencies() {
    require_stock();
    let dir = TestDir::new("inc-shared-deps");
    let work = dir.join("w");
    let sys = work.join("sysroot/usr/include");
    std::fs::create_dir_all(&sys).unwrap();
    std::fs::write(sys.join("a.h"), "#include <common.h>\n").unwrap();
    std::fs::write(sys.join("b.h"), "#include <common.h>\n").unwrap();
    std::fs::write(sys.join("common.h"), "\n").unwrap();
    std::fs::write(work.join("both.c"), "#include <a.h>\n#include <b.h>\n").unwrap();
    std::fs::write(work.join("one.c"), "#include <b.h>\n").unwrap();
    let work = std::fs::canonicalize(&work).unwrap();
    let sysroot = format!("--sysroot={}/sysroot", work.display());
    let (_server, socket) = include_server(&dir);
    let scan = |src: &str| {
        let case = Case {
            work: work.clone(),
            args: ["gcc", &sysroot, "-I.", "-c", src]
                .map(String::from)
                .to_vec(),
        };
        let out = run(client(&case, &dir, "127.0.0.1:1,cpp,lzo", &socket)
            .arg("--scan-includes")
            .args(&case.args));
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = scan("both.c");
    assert!(!first.contains("/common.h"), "{first}");
    std::fs::write(work.join("common.h"), "\n").unwrap();
    let second = scan("one.c");
    let want = format!("FILE      {}/common.h", work.display());
    assert!(second.contains(&want), "{second}");
}

/// A header rewritten between two requests is re-read (the cache checks
/// size, mtime and inode), so the second answer follows the new include.
#[test]
fn regenerated_header_is_picked_up() {
    require_stock();
    let dir = TestDir::new("inc-regen");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("main.c"),
        "#include \"gen.h\"\nint main(void){return 0;}\n",
    )
    .unwrap();
    std::fs::write(work.join("gen.h"), "#include \"first.h\"\n").unwrap();
    std::fs::write(work.join("first.h"), "\n").unwrap();
    std::fs::write(work.join("second.h"), "\n").unwrap();
    let case = Case {
        work: std::fs::canonicalize(&work).unwrap(),
        args: ["gcc", "-c", "main.c"].map(String::from).to_vec(),
    };
    let (_server, socket) = include_server(&dir);
    let scan = || scan_includes(&case, &dir, &socket);
    let first = scan();
    assert!(
        first.contains("/first.h") && !first.contains("/second.h"),
        "{first}"
    );
    // Same size, new content: the inode/mtime check must catch it.
    let tmp = work.join("gen.h.new");
    std::fs::write(&tmp, "#include \"second.h\"\n").unwrap();
    std::fs::rename(&tmp, work.join("gen.h")).unwrap();
    let second = scan();
    assert!(
        second.contains("/second.h") && !second.contains("/first.h"),
        "{second}"
    );
}

/// Changes to the tree between two requests of one include server are seen,
/// whatever their shape: the server caches what it learns of user
/// directories and relies on change events to drop it.
#[test]
fn changes_between_requests_are_seen() {
    require_stock();
    let dir = TestDir::new("inc-changes");
    let work = dir.join("w");
    for d in ["a", "b", "gen", "d1", "d2"] {
        std::fs::create_dir_all(work.join(d)).unwrap();
    }
    let write = |p: &str, text: &str| std::fs::write(work.join(p), text).unwrap();
    write(
        "main.c",
        "#include <x.h>\n#include <g.h>\n#include <l.h>\n#include \"p.h\"\n",
    );
    write("b/x.h", "\n");
    write("gen/g.h", "#include \"g1.h\"\n");
    write("gen/g1.h", "\n");
    write("d1/l.h", "\n");
    write("d2/l.h", "#include \"l2.h\"\n");
    write("d2/l2.h", "\n");
    write("p.h", "#include \"p1.h\"\n");
    write("p1.h", "\n");
    write("p2.h", "\n");
    std::os::unix::fs::symlink("d1", work.join("link")).unwrap();
    let case = Case {
        work: std::fs::canonicalize(&work).unwrap(),
        args: ["gcc", "-Ia", "-Ib", "-Igen", "-Ilink", "-c", "main.c"]
            .map(String::from)
            .to_vec(),
    };
    let (_server, socket) = include_server(&dir);
    let scan = || scan_includes(&case, &dir, &socket);
    let has = |out: &str, p: &str| out.contains(&format!("{}/{p}\n", case.work.display()));
    let first = scan();
    for p in ["b/x.h", "gen/g1.h", "d1/l.h", "p1.h"] {
        assert!(has(&first, p), "{p} missing:\n{first}");
    }
    // Warm: the same answer again from the cache.
    assert_eq!(scan(), first);
    // A header appears in an earlier directory of the chain.
    write("a/x.h", "\n");
    // The directory of a header is replaced by a new one.
    std::fs::rename(work.join("gen"), work.join("gen.old")).unwrap();
    std::fs::create_dir_all(work.join("gen")).unwrap();
    write("gen/g.h", "#include \"g2.h\"\n");
    write("gen/g2.h", "\n");
    // A symlinked include directory is pointed elsewhere.
    std::fs::remove_file(work.join("link")).unwrap();
    std::os::unix::fs::symlink("d2", work.join("link")).unwrap();
    // A header is rewritten in place, same size, same inode.
    write("p.h", "#include \"p2.h\"\n");
    let second = scan();
    for p in ["a/x.h", "gen/g2.h", "d2/l2.h", "p2.h"] {
        assert!(has(&second, p), "{p} missing after the changes:\n{second}");
    }
    for p in ["b/x.h", "gen/g1.h", "d1/l.h", "p1.h"] {
        assert!(!has(&second, p), "stale {p} after the changes:\n{second}");
    }
    // A header is deleted: the compile can no longer be covered as before.
    std::fs::remove_file(work.join("a/x.h")).unwrap();
    let third = scan();
    assert!(has(&third, "b/x.h") && !has(&third, "a/x.h"), "{third}");
}

/// A header generated into a subdirectory of a search directory
/// (`<gen/cfg.h>`, `__has_include(<gen/x.h>)`) after a first request is
/// seen by the next one. The directories are dated back, as in any real
/// tree: listings of brand-new directories are never kept, which hid the
/// bug (sweep AA, D3: the warm server kept the old listing of `gen/`, so
/// the new header was neither found nor allowed to shadow a later one).
#[test]
fn header_created_in_a_subdirectory_of_a_search_dir_is_seen() {
    require_stock();
    let dir = TestDir::new("inc-subdir-new");
    let work = dir.join("w");
    for d in ["a/gen", "b/gen", "gen"] {
        std::fs::create_dir_all(work.join(d)).unwrap();
    }
    let write = |p: &str, text: &str| std::fs::write(work.join(p), text).unwrap();
    write(
        "main.c",
        "#include <gen/cfg.h>\n#if __has_include(<gen/new.h>)\n#include <gen/new.h>\n#endif\n",
    );
    write("b/gen/cfg.h", "\n");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    for d in ["", "a", "b", "a/gen", "b/gen", "gen"] {
        std::fs::File::open(work.join(d))
            .and_then(|f| f.set_modified(old))
            .unwrap();
    }
    let case = Case {
        work: std::fs::canonicalize(&work).unwrap(),
        args: ["gcc", "-Ia", "-Ib", "-I.", "-c", "main.c"]
            .map(String::from)
            .to_vec(),
    };
    let (_server, socket) = include_server(&dir);
    let scan = || scan_includes(&case, &dir, &socket);
    let has = |out: &str, p: &str| out.contains(&format!("{}/{p}\n", case.work.display()));
    let first = scan();
    assert!(has(&first, "b/gen/cfg.h"), "{first}");
    assert_eq!(scan(), first);
    write("a/gen/cfg.h", "\n");
    write("gen/new.h", "\n");
    let second = scan();
    for p in ["a/gen/cfg.h", "gen/new.h"] {
        assert!(
            has(&second, p),
            "{p} missing after it was created:\n{second}"
        );
    }
    assert!(
        !has(&second, "b/gen/cfg.h"),
        "shadowed header still sent:\n{second}"
    );
}

/// `--scan-includes gcc -c SOURCE` in `work` through the include server at
/// `socket` (stock client), and the include server's log afterwards.
fn scan_source(dir: &TestDir, work: &Path, socket: &Path, source: &str) -> (Output, String) {
    let case = Case {
        work: std::fs::canonicalize(work).unwrap(),
        args: ["gcc", "-c", source].map(String::from).to_vec(),
    };
    let out = run(client(&case, dir, "127.0.0.1:1,cpp,lzo", socket)
        .arg("--scan-includes")
        .args(&case.args));
    let log = std::fs::read_to_string(dir.join("include-server.log")).unwrap_or_default();
    (out, log)
}

/// A request the server cannot cover gets an empty reply and one log line
/// naming the file and the reason.
#[test]
fn not_covered_says_why() {
    require_stock();
    let dir = TestDir::new("inc-notcovered");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("main.c"), "#define H UNKNOWN_MACRO\n#include H\n").unwrap();
    let (_server, socket) = include_server(&dir);
    let (out, log) = scan_source(&dir, &work, &socket, "main.c");
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        log.contains("main.c") && log.contains("computed include"),
        "log: {log}"
    );
}

/// A computed include built from a built-in the include server cannot
/// know (`__COUNTER__`, `__INCLUDE_LEVEL__`, pasted or stringized into the
/// name) is not covered, with the reason: guessed, it named no header and
/// the unit went out without the one the compiler reads.
#[test]
fn computed_includes_from_builtins_are_not_covered() {
    require_stock();
    for builtin in ["__COUNTER__", "__INCLUDE_LEVEL__"] {
        let dir = TestDir::new("inc-builtin-name");
        let work = dir.join("w");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(
            work.join("main.c"),
            format!(
                "#define S(x) #x\n#define XS(x) S(x)\n#define C2(a,b) a##b\n#define C(a,b) C2(a,b)\n\
                 #include XS(C(h, {builtin}).h)\n"
            ),
        )
        .unwrap();
        std::fs::write(work.join("h0.h"), "int h0;\n").unwrap();
        let (_server, socket) = include_server(&dir);
        let (out, log) = scan_source(&dir, &work, &socket, "main.c");
        assert!(!out.status.success(), "{builtin}: {}", show(&out));
        assert!(
            log.contains("main.c") && log.contains("built-in"),
            "{builtin}: log: {log}"
        );
    }
}

/// After `#line N "name"`, `__FILE__` is that name, so `#include __FILE__`
/// opens another file than the one the directive is in (sweep J, D9: the
/// server took the file's own name and did not send lf.h, a wrong
/// object). Such a unit is not covered, with the reason; a file without
/// `#line` still includes itself as before.
#[test]
fn file_name_includes_after_line_directives_are_not_covered() {
    require_stock();
    for line in ["#line 10 \"lf.h\"", "# 10 \"lf.h\"", "#line 10 NAME"] {
        let dir = TestDir::new("inc-line-file");
        let work = dir.join("w");
        std::fs::create_dir_all(work.join("inc")).unwrap();
        std::fs::write(work.join("inc/lf.h"), "const char *cfg = \"from-lf.h\";\n").unwrap();
        std::fs::write(
            work.join("m.c"),
            format!(
                "#define NAME \"lf.h\"\n#ifndef G\n#define G\n{line}\n#include __FILE__\n#endif\n"
            ),
        )
        .unwrap();
        let (_server, socket) = include_server(&dir);
        let (out, log) = scan_source(&dir, &work, &socket, "m.c");
        assert!(!out.status.success(), "{line}: {}", show(&out));
        assert!(
            log.contains("m.c") && log.contains("renames itself with #line"),
            "{line}: log: {log}"
        );
    }
    let dir = TestDir::new("inc-line-none");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("m.c"),
        "#ifndef G\n#define G\n#line 10\n#include __FILE__\n#endif\n",
    )
    .unwrap();
    let (_server, socket) = include_server(&dir);
    let (out, _log) = scan_source(&dir, &work, &socket, "m.c");
    assert!(out.status.success(), "{}", show(&out));
}

/// A header that includes itself inside hundreds of nested conditionals
/// the server cannot decide (a dead branch for the compiler) nests the
/// walk hundreds of times per include: the unit is not covered, with the
/// reason, and the server answers the next request (it overflowed a
/// worker's stack and died).
#[test]
fn deeply_nested_conditionals_are_not_covered_and_the_server_lives() {
    require_stock();
    let dir = TestDir::new("inc-nested-ifs");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    let mut h = String::new();
    for _ in 0..200 {
        h.push_str("#ifdef __USE_GNU\n");
    }
    h.push_str("#include \"h.h\"\n");
    for _ in 0..200 {
        h.push_str("#endif\n");
    }
    std::fs::write(work.join("h.h"), h).unwrap();
    std::fs::write(
        work.join("main.c"),
        "#include <stdio.h>\n#include \"h.h\"\nint x;\n",
    )
    .unwrap();
    std::fs::write(work.join("ok.c"), "#include \"ok.h\"\n").unwrap();
    std::fs::write(work.join("ok.h"), "int ok;\n").unwrap();
    let (_server, socket) = include_server(&dir);
    let (out, log) = scan_source(&dir, &work, &socket, "main.c");
    assert!(!out.status.success(), "{}", show(&out));
    assert!(log.contains("nested"), "log: {log}");
    let (out, _) = scan_source(&dir, &work, &socket, "ok.c");
    assert!(out.status.success(), "the server is gone: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok.h"),
        "{}",
        show(&out)
    );
}

/// Includes nested deeper than GCC's default 200 are followed when
/// `-fmax-include-depth` allows them; past the limit the include server
/// gives up with a reason (the unit is then preprocessed locally, where
/// the compiler reports it) instead of silently sending too little.
#[test]
fn include_depth_follows_the_option() {
    require_stock();
    let dir = TestDir::new("inc-depth");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    for n in 0..250 {
        let next = if n < 249 {
            format!("#include \"d{}.h\"\n", n + 1)
        } else {
            "#define DEEPEST 1\n".to_string()
        };
        std::fs::write(work.join(format!("d{n}.h")), next).unwrap();
    }
    std::fs::write(work.join("main.c"), "#include \"d0.h\"\nint x = DEEPEST;\n").unwrap();
    let case = |extra: &[&str]| Case {
        work: std::fs::canonicalize(&work).unwrap(),
        args: ["gcc"]
            .iter()
            .chain(extra)
            .chain(&["-c", "main.c"])
            .map(|s| s.to_string())
            .collect(),
    };
    let (_server, socket) = include_server(&dir);
    let deep = case(&["-fmax-include-depth=300"]);
    let listed = scan_includes(&deep, &dir, &socket);
    assert!(listed.contains("/d249.h"), "{listed}");
    let out = run(client(&case(&[]), &dir, "127.0.0.1:1,cpp,lzo", &socket)
        .arg("--scan-includes")
        .args(&case(&[]).args));
    assert!(!out.status.success(), "{}", show(&out));
    let log = std::fs::read_to_string(dir.join("include-server.log")).unwrap_or_default();
    assert!(log.contains("includes nested deeper than 200"), "{log}");
}

/// `--scan-includes` writes names as their bytes: a header whose name is
/// not UTF-8 is listed as it is on disk (not with replacement characters).
#[test]
fn scan_includes_keeps_name_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TestDir::new("inc-bytes");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"lat\xe9.h");
    std::fs::write(work.join(name), "#define L 1\n").unwrap();
    std::fs::write(work.join("main.c"), b"#include \"lat\xe9.h\"\nint x = L;\n").unwrap();
    let case = Case {
        work: std::fs::canonicalize(&work).unwrap(),
        args: ["gcc", "-c", "main.c"].map(String::from).to_vec(),
    };
    let (_server, socket) = include_server(&dir);
    let out = run(
        client_as(Peer::Ours, &case, &dir, "127.0.0.1:1,cpp,lzo", &socket)
            .arg("--scan-includes")
            .args(&case.args),
    );
    assert!(out.status.success(), "{}", show(&out));
    let expected = [
        b"FILE      ",
        case.work.as_os_str().as_bytes(),
        b"/lat\xe9.h\n",
    ]
    .concat();
    assert!(
        out.stdout.windows(expected.len()).any(|w| w == expected),
        "{}",
        show(&out)
    );
}

/// A header whose name is long but legal (242 bytes; NAME_MAX is 255) is
/// sent: the mirror copy's temporary name no longer grows with it (sweep U,
/// D1).
#[test]
fn long_header_names_are_sent() {
    require_stock();
    let dir = TestDir::new("inc-longname");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    let name = format!("{}.h", "L".repeat(240));
    std::fs::write(
        work.join("main.c"),
        format!("#include \"{name}\"\nint x;\n"),
    )
    .unwrap();
    std::fs::write(work.join(&name), "int y;\n").unwrap();
    let (_server, socket) = include_server(&dir);
    let (out, log) = scan_source(&dir, &work, &socket, "main.c");
    assert!(out.status.success(), "{}\nlog: {log}", show(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&name), "{listed}");
}

/// A long session that rewrites headers: every superseded version is kept
/// by the cache, so once they pass a bound the next request starts from a
/// fresh cache (and still lists every header), keeping the server's memory
/// bounded (sweep X, D1: it grew by 12 MB per rewrite of 1 MB of headers).
#[test]
fn rewritten_headers_do_not_grow_the_server_without_bound() {
    require_stock();
    let dir = TestDir::new("inc-renew");
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    let socket = dir.join("socket");
    let mut cmd = ours("include-server");
    cmd.arg("--port")
        .arg(&socket)
        .arg("-d3")
        .env_remove("DISTCC_CLIENT_TMP")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("include-server.log")).unwrap());
    let _server = Guard::spawn(cmd, "include-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let headers = 20;
    let main: String = (0..headers)
        .map(|h| format!("#include \"h{h}.h\"\n"))
        .collect();
    std::fs::write(work.join("main.c"), main + "int main(void) { return 0; }\n").unwrap();
    let past = std::time::SystemTime::now() - Duration::from_secs(600);
    for round in 0..6u64 {
        for h in 0..headers {
            // About 60 KB each, 1.2 MB a round.
            let body: String = (0..2000)
                .map(|k| format!("#define M{h}_{k}_{round} ({round} + {k})\n"))
                .collect();
            let path = work.join(format!("h{h}.h"));
            std::fs::write(&path, format!("#ifndef H{h}\n#define H{h}\n{body}#endif\n")).unwrap();
            // Older than the cache's two-second settling time, and new.
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(past + Duration::from_secs(round)).unwrap();
        }
        let (out, log) = scan_source(&dir, &work, &socket, "main.c");
        assert!(out.status.success(), "round {round}: {}\n{log}", show(&out));
        let listed = String::from_utf8_lossy(&out.stdout);
        let files = listed
            .lines()
            .filter(|l| l.starts_with("FILE") && l.ends_with(".h"))
            .count();
        assert_eq!(files, headers, "round {round}: {listed}");
    }
    let log = std::fs::read_to_string(dir.join("include-server.log")).unwrap();
    assert!(log.contains("starting a fresh analysis cache"), "{log}");
}

/// One request to our include server on `socket` as our client makes it:
/// the reply's paths and the file list passed with it, the connection
/// still open (the server keeps it until the list is released).
fn ask_for_list(
    socket: &Path,
    cwd: &Path,
    source: &str,
    reads_no_copies: bool,
) -> (std::os::unix::net::UnixStream, Vec<u8>, std::fs::File) {
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    let req = distcc::includes::server::Request {
        cwd: cwd.to_path_buf(),
        argv: ["gcc", "-c", source].iter().map(Into::into).collect(),
        reads_no_copies,
    };
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&distcc::includes::server::encode_request(&req).unwrap())
        .unwrap();
    let mut reply = Vec::with_capacity(1 << 16);
    let (_, fd) = distcc::fdpass::recv_with_fd(s.as_fd(), &mut reply).unwrap();
    let fd = fd.unwrap_or_else(|| panic!("no file list passed for {source}"));
    let mut chunk = [0u8; 4096];
    for _ in 0..10_000 {
        if reply_paths(&reply).is_some() {
            break;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "include server hung up mid-reply");
        reply.extend_from_slice(&chunk[..n]);
    }
    assert!(!reply.starts_with(b"ARGC00000000"), "{source} not covered");
    // The reply ends as it always has (a client may read to the end),
    // though the server still listens for the list's release.
    assert_eq!(s.read(&mut chunk).unwrap(), 0, "reply not ended");
    (s, reply, std::fs::File::from(fd))
}

/// Waits (at most 10 s) until the server has closed its side entirely.
fn wait_for_hang_up(s: &std::os::unix::net::UnixStream) {
    use std::os::fd::AsRawFd;
    let mut fds = libc::pollfd {
        fd: s.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: poll on one pollfd for a socket `s` owns.
    let n = unsafe { libc::poll(&mut fds, 1, 10_000) };
    assert!(
        n == 1 && fds.revents & libc::POLLHUP != 0,
        "server kept the connection"
    );
}

fn inode_and_bytes(file: &std::fs::File) -> (u64, Vec<u8>) {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let meta = file.metadata().unwrap();
    let mut bytes = vec![0u8; meta.len() as usize];
    file.read_exact_at(&mut bytes, 0).unwrap();
    (meta.ino(), bytes)
}

/// Our client releases the file list with LIST_DONE once its daemon has
/// answered; the include server then writes a later list over that memory
/// file. A list still lent is never written over, one whose client hung up
/// without releasing it is never reused, and a reused file holds exactly
/// the new list (cut to its length: the earlier list was longer).
#[test]
fn released_file_lists_are_reused_and_only_they() {
    use std::io::Write;
    let dir = TestDir::new("list-reuse");
    let big: String = (0..3000)
        .map(|i| format!("#define BIG_{i} {i}\n"))
        .collect();
    dir.write("big.h", &big);
    dir.write("a.c", "#include \"big.h\"\nint a;\n");
    dir.write("small.h", "#define SMALL 1\n");
    dir.write("b.c", "#include \"small.h\"\nint b;\n");
    let (_is, socket) = crate::client::include_server(&dir);

    let (mut first, _, first_list) = ask_for_list(&socket, &dir.path, "a.c", true);
    let (first_ino, first_bytes) = inode_and_bytes(&first_list);
    // While the first list is lent, a second one is a new file.
    let (hung_up, _, fresh_list) = ask_for_list(&socket, &dir.path, "b.c", true);
    let (fresh_ino, fresh_bytes) = inode_and_bytes(&fresh_list);
    assert_ne!(fresh_ino, first_ino, "a lent list was written over");
    assert!(fresh_bytes.len() < first_bytes.len());
    drop(hung_up);
    drop(fresh_list);

    // Released: the server closes the connection once it has taken it back.
    first
        .write_all(distcc::includes::bundle::LIST_DONE)
        .unwrap();
    wait_for_hang_up(&first);
    let (kept, _, reused_list) = ask_for_list(&socket, &dir.path, "b.c", true);
    let (reused_ino, reused_bytes) = inode_and_bytes(&reused_list);
    assert_eq!(reused_ino, first_ino, "a released list file was not reused");
    assert_eq!(
        reused_bytes, fresh_bytes,
        "a reused list file differs from a fresh one"
    );
    // The first list's bytes, as seen through the earlier client's own
    // descriptor, are now the new list's: that is why only a release,
    // never a hang-up, lets the server write over it.
    assert_eq!(inode_and_bytes(&first_list).1, fresh_bytes);

    // Hung up without releasing: the second file never comes back.
    let (_again, _, another) = ask_for_list(&socket, &dir.path, "a.c", true);
    let (another_ino, another_bytes) = inode_and_bytes(&another);
    assert_ne!(another_ino, reused_ino, "a lent list was written over");
    assert_ne!(another_ino, fresh_ino, "a list never released was reused");
    assert_eq!(another_bytes, first_bytes);
    drop(kept);
}

/// The paths of an include-server reply (ARGC, then ARGV tokens); None
/// while it is incomplete.
fn reply_paths(reply: &[u8]) -> Option<Vec<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    let hex = |at: usize| {
        let h = std::str::from_utf8(reply.get(at + 4..at + 12)?).ok()?;
        usize::from_str_radix(h, 16).ok()
    };
    let mut at = 12;
    let mut paths = Vec::new();
    for _ in 0..hex(0)? {
        let len = hex(at)?;
        let path = reply.get(at + 12..at + 12 + len)?;
        paths.push(PathBuf::from(std::ffi::OsStr::from_bytes(path)));
        at += 12 + len;
    }
    Some(paths)
}

/// Our client marks its request (READS_NO_COPIES): it sends the list passed
/// with the reply, so no copy, link or forcing file is written into the
/// client root for it. A client without the mark (stock's) asking for the
/// same unit afterwards finds every copy there, holding the file's bytes,
/// though the server had made them for the list already.
#[test]
fn copies_are_written_only_for_clients_that_read_them() {
    let dir = TestDir::new("no-copies");
    dir.write("inc/h.h", "#define H 1\n");
    dir.write(
        "a.c",
        "#include \"inc/h.h\"\n#include <stdio.h>\nint a = H;\n",
    );
    let (_is, socket) = crate::client::include_server(&dir);

    let (_ours, reply, _list) = ask_for_list(&socket, &dir.path, "a.c", true);
    let paths = reply_paths(&reply).unwrap();
    assert!(paths.len() >= 3, "{paths:?}");
    for p in &paths {
        assert!(
            std::fs::symlink_metadata(p).is_err(),
            "{} written for our client",
            p.display()
        );
    }

    let (_stock, again, _) = ask_for_list(&socket, &dir.path, "a.c", false);
    assert_eq!(reply_paths(&again).unwrap(), paths);
    for p in &paths {
        assert!(
            std::fs::symlink_metadata(p).is_ok(),
            "{} missing for a stock client",
            p.display()
        );
    }
    let copy = |name: &str| {
        let p = paths
            .iter()
            .find(|p| p.to_string_lossy().ends_with(name))
            .unwrap();
        distcc::compress::decompress(&std::fs::read(p).unwrap(), 1 << 20).unwrap()
    };
    assert_eq!(copy("/a.c.lzo"), std::fs::read(dir.join("a.c")).unwrap());
    assert_eq!(
        copy("/inc/h.h.lzo"),
        std::fs::read(dir.join("inc/h.h")).unwrap()
    );
}
