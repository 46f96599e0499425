//! Protocol 3 (pump) against our distccd, with requests crafted by the
//! codec (the stock include server does not run on Python 3.11): a compile
//! whose object equals a local compile, the .d rewrite, the debug-info
//! rewrite (DWARF 5 `.debug_line_str` included), path traversal in NAME,
//! CDIR and LINK, each refused with nothing written outside the root, and
//! the worker's kept tree never showing one job's files to the next.

use crate::daemon::{roundtrip, start, still_compiles};
use crate::daemon_hostile::{Victim, no_job_files_left};
use crate::util::*;
use distcc::compress::{compress, decompress};
use distcc::protocol::{Body, FileContent, FileEntry, Request, Version};
use std::process::Command;
use std::time::Duration;

const CWD: &str = "/home/u/proj";
const HELLO: &str = "#include \"extra.h\"\n#include <stdio.h>\nint main(void) { printf(\"%d\\n\", EXTRA); return 0; }\n";
const EXTRA: &str = "#define EXTRA 42\n";

fn file(name: &str, data: &[u8]) -> FileEntry {
    FileEntry {
        name: name.as_bytes().to_vec(),
        content: FileContent::File(compress(data)),
    }
}

fn link(name: &str, target: &str) -> FileEntry {
    FileEntry {
        name: name.as_bytes().to_vec(),
        content: FileContent::Link(target.as_bytes().to_vec()),
    }
}

/// A system-directory link as the include server makes it.
fn system_link(dir: &str) -> FileEntry {
    let ups = "../".repeat(20 + dir.matches('/').count());
    link(dir, &format!("{ups}{}", dir.trim_start_matches('/')))
}

/// Asserts the job succeeded, showing the compiler's messages and the log.
fn assert_compiled(d: &Daemon, resp: &distcc::protocol::Response) {
    let stderr = decompress(&resp.stderr, 1 << 20).unwrap();
    assert_eq!(
        resp.status,
        0,
        "{}\n{}",
        String::from_utf8_lossy(&stderr),
        d.log()
    );
}

fn pump(cwd: &str, argv: &[&str], files: Vec<FileEntry>) -> Request {
    Request {
        version: Version::PUMP,
        cwd: Some(cwd.as_bytes().to_vec()),
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        body: Body::Files(files),
    }
}

fn hello_tree() -> Vec<FileEntry> {
    vec![
        file(&format!("{CWD}/hello.c"), HELLO.as_bytes()),
        file(&format!("{CWD}/inc/extra.h"), EXTRA.as_bytes()),
        system_link("/usr/include"),
        system_link("/usr/lib/gcc/x86_64-linux-gnu/12/include"),
        file(&format!("{CWD}/forcing_technique_271828"), b""),
    ]
}

fn local_tree() -> TestDir {
    let dir = TestDir::new("pumplocal");
    dir.write("hello.c", HELLO);
    dir.write("inc/extra.h", EXTRA);
    dir
}

#[test]
fn pump_compile_equals_local_and_sends_clean_dotd() {
    let d = start(&[]);
    let argv = [
        "gcc",
        "-O2",
        "-c",
        "hello.c",
        "-o",
        "hello.o",
        "-I/home/u/proj/inc",
        "-isystem",
        "/usr/include",
        "-MD",
        "-MF",
        "hello.d",
        "-MT",
        "hello.o",
    ];
    let resp = roundtrip(d.port, &pump(CWD, &argv, hello_tree())).expect("a reply");
    assert_compiled(&d, &resp);
    let object = decompress(&resp.object, 1 << 26).unwrap();
    let local = local_tree();
    let out = run(Command::new("gcc")
        .current_dir(&local.path)
        .args(["-O2", "-c", "hello.c", "-o", "local.o", "-Iinc"]));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        object,
        std::fs::read(local.join("local.o")).unwrap(),
        "pump object differs from a local compile"
    );
    let dotd = String::from_utf8(decompress(resp.dotd.as_deref().expect("DOTD"), 1 << 20).unwrap())
        .unwrap();
    assert!(dotd.starts_with("hello.o: hello.c "), "{dotd}");
    assert!(dotd.contains(" /home/u/proj/inc/extra.h "), "{dotd}");
    assert!(dotd.contains("/usr/include/stdio.h"), "{dotd}");
    let tmp = d.tmp().display().to_string();
    assert!(!dotd.contains(&tmp), "{dotd}");
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
    no_job_files_left(&d);
}

#[test]
fn pump_debug_info_names_client_paths() {
    let d = start(&[]);
    let argv = [
        "gcc",
        "-g",
        "-c",
        "hello.c",
        "-o",
        "hello.o",
        "-I/home/u/proj/inc",
    ];
    let resp = roundtrip(d.port, &pump(CWD, &argv, hello_tree())).expect("a reply");
    assert_eq!(resp.status, 0, "{}", d.log());
    let object = decompress(&resp.object, 1 << 26).unwrap();
    let tmp = d.tmp().display().to_string();
    assert!(
        !object.windows(tmp.len()).any(|w| w == tmp.as_bytes()),
        "object still names the server root"
    );
    let dir = TestDir::new("pumpdwarf");
    let obj = dir.write("hello.o", &object);
    let out = run(Command::new("readelf").arg("--debug-dump=info").arg(&obj));
    let text = String::from_utf8_lossy(&out.stdout);
    let comp_dir = text
        .lines()
        .find(|l| l.contains("DW_AT_comp_dir"))
        .unwrap_or_else(|| panic!("no comp_dir:\n{text}"));
    let path = comp_dir.rsplit(": ").next().unwrap().trim();
    assert!(path.ends_with("/home/u/proj"), "{comp_dir}");
    assert_eq!(path.trim_start_matches('/'), "home/u/proj", "{comp_dir}");
    // The whole object, debug information included, equals a local -g
    // compile of the same files in a directory known as /home/u/proj.
    let local = local_tree();
    let map = format!("-fdebug-prefix-map={}={CWD}", local.path.display());
    let inc = format!("-I{}", local.join("inc").display());
    let out = run(Command::new("gcc")
        .current_dir(&local.path)
        .args(["-g", "-c", "hello.c", "-o", "local.o", &inc, &map]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        std::fs::read(&obj).unwrap() == std::fs::read(local.join("local.o")).unwrap(),
        "pump -g object differs from a local one"
    );
}

/// `-g -S` in pump mode: the assembler text names the client's directory
/// (`.file 0 "/home/u/proj" "hello.c"`), not the server's job root, and
/// equals what a compile in that directory gives.
#[test]
fn pump_assembler_output_names_client_paths() {
    let d = start(&[]);
    let argv = ["gcc", "-g", "-S", "hello.c", "-o", "hello.s", "-Iinc"];
    let resp = roundtrip(d.port, &pump(CWD, &argv, hello_tree())).expect("a reply");
    assert_eq!(resp.status, 0, "{}", d.log());
    let text = String::from_utf8(decompress(&resp.object, 1 << 26).unwrap()).unwrap();
    assert!(!text.contains("distccd_"), "the .s names the server root");
    assert!(
        text.contains("\"/home/u/proj\""),
        "no client directory in the .s"
    );
    // What gcc writes in a directory of that name, but for the directory.
    let local = local_tree();
    let out = run(Command::new("gcc")
        .current_dir(&local.path)
        .args(["-g", "-S", "hello.c", "-o", "local.s", "-Iinc"]));
    assert!(out.status.success());
    let here = std::fs::read_to_string(local.join("local.s"))
        .unwrap()
        .replace(&local.path.display().to_string(), "/home/u/proj");
    // The string sections' order follows the strings' hashes, which the
    // renamed directory changes: compare the lines as sets.
    let lines = |t: &str| {
        let mut v: Vec<String> = t.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(lines(&text), lines(&here));
}

/// One worker (`--jobs 1`) keeps its pump tree between jobs: a header the
/// first request sent, and a header it sent with other content, must look
/// to the second job exactly as the second request says.
#[test]
fn kept_tree_shows_each_job_only_its_own_files() {
    let d = start(&["--jobs", "1"]);
    let argv = ["gcc", "-c", "t.c", "-o", "t.o", "-I/home/u/proj/inc"];
    let probe = "#if __has_include(\"gone.h\")\n#error gone.h leaked from the last job\n#endif\n\
                 #include \"same.h\"\n#include \"changed.h\"\nint v = SAME + CHANGED;\n";
    let first = vec![
        file(
            &format!("{CWD}/t.c"),
            b"#include \"gone.h\"\n#include \"changed.h\"\nint v = CHANGED;\n",
        ),
        file(&format!("{CWD}/inc/gone.h"), b"#define GONE 1\n"),
        file(&format!("{CWD}/inc/same.h"), b"#define SAME 1\n"),
        file(&format!("{CWD}/inc/changed.h"), b"#define CHANGED 1\n"),
    ];
    let resp = roundtrip(d.port, &pump(CWD, &argv, first)).expect("a reply");
    assert_eq!(resp.status, 0, "{}", d.log());
    let second = vec![
        file(&format!("{CWD}/t.c"), probe.as_bytes()),
        file(&format!("{CWD}/inc/same.h"), b"#define SAME 1\n"),
        file(&format!("{CWD}/inc/changed.h"), b"#define CHANGED 40\n"),
    ];
    let resp = roundtrip(d.port, &pump(CWD, &argv, second)).expect("a reply");
    assert_compiled(&d, &resp);
    // The object must equal a local compile of the second tree.
    let local = TestDir::new("kepttree");
    local.write("t.c", probe);
    local.write("inc/same.h", "#define SAME 1\n");
    local.write("inc/changed.h", "#define CHANGED 40\n");
    let out = run(Command::new("gcc")
        .current_dir(&local.path)
        .args(["-c", "t.c", "-o", "local.o", "-Iinc"]));
    assert!(out.status.success(), "{}", show(&out));
    let object = decompress(&resp.object, 1 << 26).unwrap();
    assert_eq!(object, std::fs::read(local.join("local.o")).unwrap());
    no_job_files_left(&d);
}

/// Headers found through an absolute directory arrive with our include
/// server's marked `#line 1 "<client path>" /* ... */` first. The daemon
/// drops that line (so the compiler's include-guard optimisation works: `-H`
/// lists the twice-included header once) and maps the root away instead:
/// `__FILE__` and the compiler's messages still name the client's paths,
/// never the daemon's directory. An unmarked `#line` (a stock include
/// server's, or the file's own) reaches the compiler.
#[test]
fn line_prefixed_headers_keep_client_paths() {
    use distcc::includes::mirror::STRIPPABLE_LINE_MARK;
    let d = start(&[]);
    let with_line = |path: &str, body: &str| {
        let mark = String::from_utf8_lossy(STRIPPABLE_LINE_MARK);
        file(path, format!("#line 1 \"{path}\"{mark}\n{body}").as_bytes())
    };
    let argv = ["gcc", "-H", "-c", "w.c", "-o", "w.o", "-I/home/u/proj/inc"];
    let files = vec![
        file(
            &format!("{CWD}/w.c"),
            b"#include \"where.h\"\n#include \"where.h\"\nconst char *w(void) { return where_file; }\n",
        ),
        with_line(
            "/home/u/proj/inc/where.h",
            "#ifndef WHERE_H\n#define WHERE_H\nstatic const char *where_file = __FILE__;\n#endif\n",
        ),
    ];
    let resp = roundtrip(d.port, &pump(CWD, &argv, files)).expect("a reply");
    assert_eq!(resp.status, 0, "{}", d.log());
    let object = decompress(&resp.object, 1 << 26).unwrap();
    let has = |needle: &[u8]| object.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"/home/u/proj/inc/where.h\0"),
        "__FILE__ lost the client path"
    );
    assert!(
        !has(b"distccd_"),
        "the daemon's directory leaked into the object"
    );
    let err = String::from_utf8_lossy(&decompress(&resp.stderr, 1 << 20).unwrap()).into_owned();
    assert_eq!(err.matches("where.h").count(), 1, "line not dropped: {err}");
    let files = vec![
        file(&format!("{CWD}/w.c"), b"#include \"broken.h\"\n"),
        with_line("/home/u/proj/inc/broken.h", "int x = nope;\n"),
    ];
    let resp = roundtrip(d.port, &pump(CWD, &argv, files)).expect("a reply");
    assert_ne!(resp.status, 0);
    let err = String::from_utf8_lossy(&decompress(&resp.stderr, 1 << 20).unwrap()).into_owned();
    assert!(
        err.contains("/home/u/proj/inc/broken.h:1:9: error"),
        "{err}"
    );
    assert!(!err.contains("distccd_"), "{err}");
    // Unmarked: kept, whatever it names.
    let files = vec![
        file(
            &format!("{CWD}/w.c"),
            b"#include \"where.h\"\nconst char *w(void) { return where_file; }\n",
        ),
        file(
            "/home/u/proj/inc/where.h",
            b"#line 1 \"/generated/from/where.y\"\nstatic const char *where_file = __FILE__;\n",
        ),
    ];
    let resp = roundtrip(d.port, &pump(CWD, &argv, files)).expect("a reply");
    assert_eq!(resp.status, 0, "{}", d.log());
    let object = decompress(&resp.object, 1 << 26).unwrap();
    assert!(
        object
            .windows(24)
            .any(|w| w == b"/generated/from/where.y\0"),
        "the file's own #line was dropped"
    );
}

#[test]
fn pump_compile_error_has_no_dotd() {
    let d = start(&[]);
    let files = vec![file(
        &format!("{CWD}/bad.c"),
        b"int main(void) { return nope; }\n",
    )];
    let resp = roundtrip(
        d.port,
        &pump(CWD, &["gcc", "-c", "bad.c", "-o", "bad.o"], files),
    )
    .expect("a reply");
    assert_eq!(resp.status, 1 << 8);
    assert!(resp.dotd.is_none() && resp.object.is_empty());
    let err = decompress(&resp.stderr, 1 << 20).unwrap();
    assert!(String::from_utf8_lossy(&err).contains("nope"));
}

#[test]
fn pump_traversal_refused_nothing_written_outside() {
    let d = start(&[]);
    let victim = Victim::new();
    let vdir = victim.dir.path.display().to_string();
    let up = "../".repeat(40);
    let argv = ["gcc", "-c", "hello.c", "-o", "hello.o"];
    let src = file(&format!("{CWD}/hello.c"), b"int x;\n");
    let cases: Vec<(&str, Request)> = vec![
        (
            "NAME with ..",
            pump(
                CWD,
                &argv,
                vec![
                    src.clone(),
                    file(
                        &format!("/../../../../../../../..{vdir}/victim.txt"),
                        b"pwned\n",
                    ),
                ],
            ),
        ),
        (
            "NAME relative",
            pump(
                CWD,
                &argv,
                vec![src.clone(), file("victim.txt", b"pwned\n")],
            ),
        ),
        (
            "NAME with .",
            pump(
                CWD,
                &argv,
                vec![src.clone(), file(&format!("{CWD}/./x.h"), b"x")],
            ),
        ),
        (
            "NAME is the root",
            pump(CWD, &argv, vec![src.clone(), file("/", b"x")]),
        ),
        (
            "CDIR with ..",
            pump("/home/../../../../..", &argv, vec![src.clone()]),
        ),
        ("CDIR relative", pump("home/u", &argv, vec![src.clone()])),
        // Thousands of components: refused before any walk (a worker's
        // stack, and the clean-up of a kept tree, grow with the depth).
        (
            "NAME 6000 components deep",
            pump(
                CWD,
                &argv,
                vec![
                    src.clone(),
                    file(&format!("{}/x.h", "/a".repeat(6000)), b"x"),
                ],
            ),
        ),
        (
            "CDIR 6000 components deep",
            pump(&"/a".repeat(6000), &argv, vec![src.clone()]),
        ),
        (
            "FILE through a relative LINK",
            pump(
                CWD,
                &argv,
                vec![
                    src.clone(),
                    link(
                        &format!("{CWD}/evil"),
                        &format!("{up}{}", vdir.trim_start_matches('/')),
                    ),
                    file(&format!("{CWD}/evil/pwned"), b"pwned\n"),
                ],
            ),
        ),
        (
            "FILE over a LINK",
            pump(
                CWD,
                &argv,
                vec![
                    src.clone(),
                    link(
                        &format!("{CWD}/l.h"),
                        &format!("{up}{}/victim.txt", vdir.trim_start_matches('/')),
                    ),
                    file(&format!("{CWD}/l.h"), b"pwned\n"),
                ],
            ),
        ),
        (
            "LINK over an existing FILE",
            pump(
                CWD,
                &argv,
                vec![src.clone(), link(&format!("{CWD}/hello.c"), "/etc/passwd")],
            ),
        ),
        (
            "FILE over a directory",
            pump(CWD, &argv, vec![src.clone(), file(CWD, b"x")]),
        ),
        (
            "LINK with ..",
            pump(
                CWD,
                &argv,
                vec![
                    src.clone(),
                    link(&format!("/../../../..{vdir}/link"), "/etc/passwd"),
                ],
            ),
        ),
    ];
    for (what, req) in &cases {
        assert!(
            roundtrip(d.port, req).is_none(),
            "{what}: the daemon compiled it"
        );
        no_job_files_left(&d);
        victim.untouched();
    }
    // Absurd NFIL: refused before anything is allocated.
    let mut bytes = Vec::new();
    distcc::protocol::encode_request_head(
        &mut bytes,
        Version::PUMP,
        Some(CWD.as_bytes()),
        &argv
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    bytes.extend_from_slice(b"NFILffffffff");
    assert!(crate::daemon::exchange(d.port, &bytes, Duration::from_secs(30)).is_empty());
    // An absolute LINK target is re-rooted: reading through it stays inside.
    let files = vec![
        file(&format!("{CWD}/hello.c"), b"#include \"l.h\"\nint y = X;\n"),
        file("/real/l.h", b"#define X 7\n"),
        link(&format!("{CWD}/l.h"), "/real/l.h"),
    ];
    let resp = roundtrip(d.port, &pump(CWD, &argv, files)).expect("a reply");
    assert_eq!(
        resp.status,
        0,
        "{}",
        String::from_utf8_lossy(&decompress(&resp.stderr, 1 << 20).unwrap())
    );
    let log = d.log();
    for why in [
        "component",
        "not absolute",
        "symlink",
        "root itself",
        "nested too deeply",
    ] {
        assert!(log.contains(why), "log lacks {why:?}:\n{log}");
    }
    victim.untouched();
    no_job_files_left(&d);
    still_compiles(&d);
}

/// The compiler writes some files into its working directory under names
/// of its own (`-fdump-ada-spec` writes `hello_c.ads`): such options are
/// refused, and a link planted where one would write, leading out of the
/// job to a file or to nothing, is not made (were the compiler to write
/// there, the write would stay inside the job): the victim file is not
/// overwritten and no new file appears beside it. Links out of the root to
/// directories (the system-directory links) and links inside the root
/// still work.
#[test]
fn links_planted_where_the_compiler_writes_lead_nowhere() {
    let d = start(&[]);
    let victim = Victim::new();
    let vdir = victim.dir.path.display().to_string();
    let up = "../".repeat(40);
    let outside = |name: &str| format!("{up}{}/{name}", vdir.trim_start_matches('/'));
    let argv = ["gcc", "-Iinc", "-c", "hello.c", "-o", "hello.o"];
    for (what, target) in [
        ("relative, to a file outside", outside("victim.txt")),
        ("relative, to nothing outside", outside("new.txt")),
        (
            "absolute, climbing out",
            format!("/x/{up}{}/victim.txt", vdir.trim_start_matches('/')),
        ),
    ] {
        // The compiler leaves its own hello_c.ads in the kept tree, where
        // the next request could not make a link: each case its own cwd.
        let cwd = format!("/home/u/{}", what.replace([' ', ','], "_"));
        let files = vec![
            file(&format!("{cwd}/hello.c"), HELLO.as_bytes()),
            file(&format!("{cwd}/inc/extra.h"), EXTRA.as_bytes()),
            system_link("/usr/include"),
            system_link("/usr/lib/gcc/x86_64-linux-gnu/12/include"),
            link(&format!("{cwd}/hello_c.ads"), &target),
            link(&format!("{cwd}/extra_h.ads"), &target),
        ];
        let mut ada = argv.to_vec();
        ada.push("-fdump-ada-spec");
        assert!(
            roundtrip(d.port, &pump(&cwd, &ada, files.clone())).is_none(),
            "{what}: -fdump-ada-spec was accepted"
        );
        victim.untouched();
        let resp = roundtrip(d.port, &pump(&cwd, &argv, files))
            .unwrap_or_else(|| panic!("{what}: no reply\n{}", d.log()));
        assert_compiled(&d, &resp);
        victim.untouched();
        assert!(
            d.log().contains("leads out of the job"),
            "{what}: {}",
            d.log()
        );
    }
    // A link inside the root is read through as before.
    let files = vec![
        file(&format!("{CWD}/hello.c"), b"#include \"l.h\"\nint y = X;\n"),
        file(&format!("{CWD}/real/l.h"), b"#define X 7\n"),
        link(&format!("{CWD}/l.h"), "real/l.h"),
    ];
    let resp = roundtrip(
        d.port,
        &pump(CWD, &["gcc", "-c", "hello.c", "-o", "hello.o"], files),
    )
    .expect("a reply");
    assert_compiled(&d, &resp);
    victim.untouched();
    no_job_files_left(&d);
    still_compiles(&d);
}

#[test]
fn stock_client_with_our_include_server_and_gdb_finds_the_source() {
    require_stock();
    let d = start(&[]);
    let dir = TestDir::new("stockpump");
    dir.write("src/m.c", "#include \"x.h\"\n#include <stdio.h>\nint main(void) { printf(\"%d\\n\", X); return 0; }\n");
    dir.write("inc/x.h", "#define X 5\n");
    let mut cmd = ours("pump");
    client_env(&mut cmd, &dir, &d.host(",cpp,lzo"));
    cmd.current_dir(dir.join("src"))
        .env("DISTCC_FALLBACK", "0")
        .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
        .env("DISTCC_LOG", dir.join("client.log"))
        .env("DISTCC_VERBOSE", "1")
        .args([
            "/usr/bin/distcc",
            "gcc",
            "-g",
            "-c",
            "m.c",
            "-o",
            "m.o",
            "-I../inc",
            "-MD",
        ]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    let client_log = std::fs::read_to_string(dir.join("client.log")).unwrap();
    assert!(
        client_log.contains("send NFIL"),
        "not protocol 3:\n{client_log}"
    );
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
    let dotd = std::fs::read_to_string(dir.join("src/m.d")).unwrap();
    assert!(
        dotd.starts_with("m.o: m.c ") && dotd.contains("../inc/x.h"),
        "{dotd}"
    );
    let tmp = d.tmp().display().to_string();
    assert!(!dotd.contains(&tmp), "{dotd}");
    // gdb finds the source of the pump-built object.
    let link = run(Command::new("gcc")
        .current_dir(dir.join("src"))
        .args(["m.o", "-o", "m"]));
    assert!(link.status.success(), "{}", show(&link));
    // Run from another directory: only DW_AT_comp_dir can lead gdb to m.c.
    let gdb = run(Command::new("gdb").current_dir(&dir.path).args([
        "-batch",
        "-nx",
        "-ex",
        "list main",
        "src/m",
    ]));
    let text = String::from_utf8_lossy(&gdb.stdout);
    assert!(
        text.contains("#include \"x.h\""),
        "gdb did not find m.c:\n{}",
        show(&gdb)
    );
}

/// A small `$TMPDIR` (a 1 MiB tmpfs, in a mount namespace of the daemon's
/// own) must not fill up with the pump file store: 25 jobs, each with its
/// own 40 KB header, all compile, as they do with stock (which keeps
/// nothing between jobs).
#[test]
fn pump_store_gives_way_on_a_small_tmpdir() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new("smalltmp");
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let daemon = dir.join("distccd");
    std::os::unix::fs::symlink(bin(), &daemon).unwrap();
    let port = free_port();
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "sh",
        "-c",
        "mount -t tmpfs -o size=1m,mode=1777 tmpfs \"$TMPDIR\" && exec \"$@\"",
        "sh",
    ])
    .arg(&daemon)
    .args(["--no-detach", "--daemon", "--listen", "127.0.0.1"])
    .args(["--allow", "127.0.0.1", "--jobs", "1", "--port"])
    .arg(port.to_string())
    .arg("--log-file")
    .arg(dir.join("daemon.log"))
    .env("TMPDIR", dir.join("tmp"))
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let guard = Guard::spawn(cmd, "smalltmp");
    assert!(wait_for_port("127.0.0.1", port, Duration::from_secs(10)));
    let d = Daemon { guard, port, dir };
    let argv = ["gcc", "-c", "m.c", "-o", "m.o"];
    for i in 0..25 {
        let header: String = (0..3000).map(|k| format!("int v{i}_{k};\n")).collect();
        let cwd = format!("/home/u/p{i}");
        let files = vec![
            file(
                &format!("{cwd}/m.c"),
                format!("#include \"h{i}.h\"\nint main(void) {{ return 0; }}\n").as_bytes(),
            ),
            file(&format!("{cwd}/h{i}.h"), header.as_bytes()),
        ];
        let resp = roundtrip(d.port, &pump(&cwd, &argv, files)).expect("a reply");
        assert_compiled(&d, &resp);
    }
}
