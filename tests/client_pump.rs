//! The client side of protocol 3 against stock distccd 3.4.
//!
//! The include server belongs to another part of the project, so these tests
//! build the mirror tree an include server would (facts §2.2: `.lzo` copies
//! under a three-component root, system-directory links, forcing files) and
//! hand its paths to the client with `INCLUDE_SERVER_STUB`, as stock's own
//! tests do. They check the protocol-3 request (stock distccd compiles it:
//! same object as local), the `.d` file from `DOTD`, `--scan-includes`
//! output, and the downgrades to protocol 2 with their log line.

use crate::client::*;
use crate::util::*;
use std::path::{Path, PathBuf};

/// gcc 12's default include dirs (`/usr/include/x86_64-linux-gnu` is
/// reached through the `/usr/include` link).
const SYSTEM_DIRS: [&str; 3] = [
    "/usr/lib/gcc/x86_64-linux-gnu/12/include",
    "/usr/local/include",
    "/usr/include",
];

/// A hand-made include-server mirror tree (client root) in `dir`.
struct Mirror {
    root: PathBuf,
    paths: Vec<PathBuf>,
}

impl Mirror {
    fn new(dir: &TestDir) -> Mirror {
        let mut root = dir.join("m");
        while root.components().count() < 4 {
            root = root.join("padding");
        }
        assert_eq!(
            root.components().count(),
            4,
            "test temp dir too deep for a 3-component client root: {}",
            root.display()
        );
        Mirror {
            root,
            paths: Vec::new(),
        }
    }

    fn under(&self, abs: &Path) -> PathBuf {
        self.root.join(abs.strip_prefix("/").unwrap())
    }

    /// Adds a file: its compressed copy at `<root><abs>.lzo`.
    fn file(&mut self, abs: &Path) {
        let data = std::fs::read(abs).unwrap();
        let mut p = self.under(abs).into_os_string();
        p.push(".lzo");
        let p = PathBuf::from(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, distcc::compress::compress(&data)).unwrap();
        self.paths.push(p);
    }

    /// Adds the system-directory links.
    fn system_dirs(&mut self) {
        for d in SYSTEM_DIRS {
            let slashes = d.matches('/').count();
            let target = format!("{}{}", "../".repeat(20 + slashes), &d[1..]);
            let p = self.under(Path::new(d));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, &p).unwrap();
            self.paths.push(p);
        }
    }

    /// Adds a forcing file for directory `abs`.
    fn force(&mut self, abs: &Path) {
        let p = self.under(abs).join("forcing_technique_271828");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"").unwrap();
        self.paths.push(p);
    }

    fn stub(&self) -> String {
        let v: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        v.join(" ")
    }
}

/// A project with a header in a subdirectory and its mirror.
fn project(tag: &str) -> (TestDir, Mirror) {
    let dir = TestDir::new(tag);
    let src = dir.write(
        "proj/t.c",
        "#include <stdio.h>\n#include \"inc/hdr.h\"\nint main(void) { printf(\"%d\\n\", VALUE); return 0; }\n",
    );
    let hdr = dir.write("proj/inc/hdr.h", "#define VALUE 7\n");
    let mut m = Mirror::new(&dir);
    m.file(&src);
    m.file(&hdr);
    m.system_dirs();
    m.force(&dir.join("proj"));
    m.force(&dir.join("proj/inc"));
    (dir, m)
}

#[test]
fn protocol_3_compiles_on_stock_distccd() {
    let d = stock();
    let (dir, m) = project("pump3");
    let mut cmd = client(&dir, &d.host(",cpp,lzo"));
    cmd.current_dir(dir.join("proj"))
        .env("INCLUDE_SERVER_STUB", m.stub())
        .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
        .args(["gcc", "-O2", "-c", "t.c", "-o", "t.o", "-MD"]);
    assert_quiet_ok(&run(&mut cmd));
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
    let proj = dir.join("proj");
    let out = run(std::process::Command::new("gcc")
        .args(["-O2", "-c", "t.c", "-o", "l.o"])
        .current_dir(&proj));
    assert!(out.status.success());
    assert_eq!(read(&proj.join("t.o")), read(&proj.join("l.o")));
    // The .d came back in DOTD, names our target and our header, and no
    // server path.
    let deps = String::from_utf8(read(&proj.join("t.d"))).unwrap();
    assert!(deps.starts_with("t.o:"), "{deps}");
    assert!(deps.contains("inc/hdr.h"), "{deps}");
    assert!(!deps.contains("distccd_"), "{deps}");
}

#[test]
fn scan_includes_lists_the_stub() {
    let (dir, m) = project("scan");
    let mut cmd = client(&dir, "127.0.0.1:1,cpp,lzo");
    cmd.current_dir(dir.join("proj"))
        .env("INCLUDE_SERVER_STUB", m.stub())
        .args(["--scan-includes", "gcc", "-c", "t.c"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let p = |rel: &str| dir.join(rel).display().to_string();
    assert!(
        text.contains(&format!("FILE      {}\n", p("proj/t.c"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("FILE      {}\n", p("proj/inc/hdr.h"))),
        "{text}"
    );
    assert!(text.contains("SYSTEMDIR /usr/include\n"), "{text}");
    assert!(
        text.contains(&format!("DIRECTORY {}\n", p("proj/inc"))),
        "{text}"
    );
    assert_eq!(text.lines().count(), m.paths.len());
    // Not a pump host: stock's message and 100.
    let out = run(client(&dir, "127.0.0.1:1,lzo").args(["--scan-includes", "gcc", "-c", "x.c"]));
    assert_eq!(out.status.code(), Some(100), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wouldn't have used include server"));
    // No include server to ask: stock's 1, with the reason (sweep W, D4).
    let out = run(client(&dir, "127.0.0.1:1,cpp,lzo")
        .env_remove("INCLUDE_SERVER_PORT")
        .args(["--scan-includes", "gcc", "-c", "x.c"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed to get includes from include server"),
        "{}",
        show(&out)
    );
}

#[test]
fn no_include_server_downgrades_to_protocol_2() {
    let d = stock();
    let (dir, _m) = project("downgrade");
    let log = dir.join("log");
    let mut cmd = client(&dir, &d.host(",cpp,lzo"));
    cmd.current_dir(dir.join("proj"))
        .env("DISTCC_LOG", &log)
        .args(["gcc", "-c", "t.c"]);
    assert_quiet_ok(&run(&mut cmd));
    assert_eq!(wait_compiles(&d, 1), 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("preprocessing locally"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("INCLUDE_SERVER_PORT"), "{text}");
    assert!(text.contains("protocol 2"), "{text}");
    // CPATH set: downgrade with that reason; the Objective-C search paths
    // likewise (sweep S, D6).
    for var in ["CPATH", "OBJC_INCLUDE_PATH"] {
        let mut cmd = client(&dir, &d.host(",cpp,lzo"));
        cmd.current_dir(dir.join("proj"))
            .env("DISTCC_LOG", &log)
            .env(var, "/nonexistent")
            .env("INCLUDE_SERVER_STUB", "/x/y/z/never/used")
            .args(["gcc", "-c", "t.c"]);
        assert_quiet_ok(&run(&mut cmd));
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .contains(&format!("{var} is set"))
        );
    }
    // Already preprocessed: sent as it is, and the log says so.
    dir.write("proj/p.i", "int p(void) { return 1; }\n");
    let mut cmd = client(&dir, &d.host(",cpp,lzo"));
    cmd.current_dir(dir.join("proj"))
        .env("DISTCC_LOG", &log)
        .env("DISTCC_VERBOSE", "1")
        .args(["gcc", "-c", "p.i"]);
    assert_quiet_ok(&run(&mut cmd));
    assert_eq!(wait_compiles(&d, 4), 4);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(
            "not using pump mode for p.i: input is already preprocessed; sending it as it is"
        ),
        "{text}"
    );
}

#[test]
fn testing_include_server_makes_failure_fatal() {
    let (dir, _m) = project("testinc");
    let mut cmd = client(&dir, "127.0.0.1:1,cpp,lzo");
    cmd.current_dir(dir.join("proj"))
        .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
        .args(["gcc", "-c", "t.c"]);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(100), "{}", show(&out));
    assert!(!dir.join("proj/t.o").exists());
}

/// A pump compile that fails on the server but works here is a
/// discrepancy: counted in `discrepancy_counter` beside the socket, and
/// once the count reaches DISTCC_MAX_DISCREPANCY later compiles use plain
/// mode (facts §2.6).
#[test]
fn discrepancy_demotes_to_plain_mode() {
    let d = stock();
    let dir = TestDir::new("discrep");
    let src = dir.write("proj/t.c", "#include \"inc/hdr.h\"\nint x = VALUE;\n");
    dir.write("proj/inc/hdr.h", "#define VALUE 7\n");
    // The mirror misses the header: the server cannot compile it.
    let mut m = Mirror::new(&dir);
    m.file(&src);
    m.system_dirs();
    let socket = dir.join("pumpdir/socket");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let log = dir.join("log");
    let compile = || {
        let mut cmd = client(&dir, &d.host(",cpp,lzo"));
        cmd.current_dir(dir.join("proj"))
            .env("DISTCC_FALLBACK", "1")
            .env("DISTCC_LOG", &log)
            .env("INCLUDE_SERVER_PORT", &socket)
            .env("INCLUDE_SERVER_STUB", m.stub())
            .args(["gcc", "-c", "t.c"]);
        run(&mut cmd)
    };
    let out = compile();
    assert!(out.status.success(), "{}", show(&out));
    assert!(dir.join("proj/t.o").exists());
    let counter = dir.join("pumpdir/discrepancy_counter");
    assert_eq!(read(&counter), b"@");
    let out = compile();
    assert!(out.status.success(), "{}", show(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("demoted"), "{text}");
    assert_eq!(read(&counter), b"@", "no new discrepancy in plain mode");
    assert_eq!(
        wait_compiles(&d, 1),
        1,
        "the plain-mode compile ran remotely"
    );
}

/// An include server that accepts the request and never answers: after
/// DISTCC_IO_TIMEOUT the client preprocesses locally, and its line says
/// the include server did not answer in time.
#[test]
fn silent_include_server_times_out_with_a_clear_reason() {
    let d = stock();
    let (dir, _m) = project("silentis");
    let socket = dir.join("is.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let holder = std::thread::spawn(move || {
        // Holds one connection open, unanswered, for a bounded time.
        let conn = listener.accept();
        std::thread::sleep(std::time::Duration::from_secs(4));
        drop(conn);
    });
    let mut cmd = client(&dir, &d.host(",cpp,lzo"));
    cmd.current_dir(dir.join("proj"))
        .env("INCLUDE_SERVER_PORT", &socket)
        .env("DISTCC_IO_TIMEOUT", "1")
        .args(["gcc", "-c", "t.c"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the include server did not answer within DISTCC_IO_TIMEOUT"),
        "{err}"
    );
    assert_eq!(wait_compiles(&d, 1), 1);
    holder.join().unwrap();
}

/// A client that hangs up while the include server analyses its unit
/// stops that analysis (one log line says so), and the server goes on
/// serving others.
#[test]
fn include_server_stops_work_for_a_client_that_left() {
    use std::io::Write;
    let dir = TestDir::new("isleft");
    // Many directives: the walk is still going when the hang-up is seen.
    let mut big = String::with_capacity(40 << 20);
    for i in 0..1_500_000 {
        big.push_str(&format!("#define M{i} {i}\n"));
    }
    dir.write("big.h", &big);
    dir.write("t.c", "#include \"big.h\"\nint x;\n");
    let (_is, socket) = include_server(&dir);
    let mut req = Vec::new();
    let cwd = dir.path.to_string_lossy().to_string();
    req.extend_from_slice(format!("CDIR{:08x}{cwd}", cwd.len()).as_bytes());
    let argv = ["gcc", "-c", "t.c"];
    req.extend_from_slice(format!("ARGC{:08x}", argv.len()).as_bytes());
    for a in argv {
        req.extend_from_slice(format!("ARGV{:08x}{a}", a.len()).as_bytes());
    }
    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    s.write_all(&req).unwrap();
    // Hang up once the request is with a worker (an end of input that
    // comes with the request ends it unread).
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(s);
    let log = dir.join("include-server.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("the client has gone") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(text.contains("the client has gone"), "{text}");
    // Still serving: a small unit is scanned.
    dir.write("small.c", "int y;\n");
    let out = run(client(&dir, "127.0.0.1:1,cpp,lzo")
        .env("INCLUDE_SERVER_PORT", &socket)
        .args(["--scan-includes", "gcc", "-c", "small.c"]));
    assert!(out.status.success(), "{}", show(&out));
}
