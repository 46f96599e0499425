//! Our client against our own distccd and our own include server: protocols
//! 1, 2 and 3, C and C++, `-g`, `-MD -MF`, compile errors, `make -j4`
//! through masquerade links, and `--scan-includes`. The same checks as
//! against stock distccd 3.4 (client_stock_daemon.rs, client_pump.rs), so
//! both servers are held to one standard.

use crate::client::*;
use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Our distccd; it drops root to an unprivileged user, so its TMPDIR must
/// be writable by everyone (as /tmp is).
fn ours_d() -> Daemon {
    let d = our_daemon(&["--verbose"]);
    std::fs::set_permissions(d.tmp(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

const C_SRC: &str = "#include <stdio.h>\n#include \"inc/hdr.h\"\nint main(void) { printf(\"%d\\n\", VALUE); return 0; }\n";
const CXX_SRC: &str = "#include <iostream>\n#include <vector>\n#include \"inc/hdr.h\"\nint main() { std::vector<int> v(VALUE); std::cout << v.size() << std::endl; return 0; }\n";

/// Remote (our daemon, `opts`) and reference objects must be identical:
/// local for plain flags; for `-g` in plain mode, stock distcc's client
/// through the same daemon (the line table comes from the .i file).
fn check(opts: &str, compiler: &str, file: &str, src: &str, flags: &[&str]) {
    let d = ours_d();
    let dir = TestDir::new("od");
    dir.write("inc/hdr.h", "#define VALUE 42\n");
    dir.write(file, src);
    let with = |out: &'static str| {
        let mut a = vec![compiler];
        a.extend_from_slice(flags);
        a.extend_from_slice(&["-c", file, "-o", out]);
        a
    };
    let (_is, socket) = include_server(&dir);
    let mut cmd = client(&dir, &d.host(opts));
    cmd.env("INCLUDE_SERVER_PORT", &socket)
        .env("DISTCC_TESTING_INCLUDE_SERVER", "1");
    assert_quiet_ok(&run(cmd.args(with("remote.o"))));
    assert_eq!(
        wait_compiles(&d, 1),
        1,
        "not compiled remotely: {}",
        d.log()
    );
    let plain_g = flags.contains(&"-g") && !opts.contains("cpp");
    let reference = if plain_g {
        let mut stock_client = Command::new("/usr/bin/distcc");
        client_env(&mut stock_client, &dir, &d.host(opts));
        stock_client.env("DISTCC_FALLBACK", "0");
        assert_quiet_ok(&run(stock_client.args(with("stock.o"))));
        "stock.o"
    } else {
        assert!(local(&dir, &with("local.o")).status.success());
        "local.o"
    };
    if flags.contains(&"-g") && opts.contains("cpp") {
        // Pump mode with -g: debug info names the server root until the
        // daemon rewrites it; compare code only.
        let text = |o: &str| {
            let bin = format!("{o}.text");
            let out = run(Command::new("objcopy")
                .args(["-O", "binary", "-j", ".text", o, &bin])
                .current_dir(&dir.path));
            assert!(out.status.success(), "{}", show(&out));
            read(&dir.join(&bin))
        };
        let remote_text = text("remote.o");
        assert!(!remote_text.is_empty(), "objcopy gave no .text");
        assert_eq!(remote_text, text(reference));
        return;
    }
    assert_eq!(
        read(&dir.join("remote.o")),
        read(&dir.join(reference)),
        "{opts} {compiler} {flags:?}: objects differ from {reference}"
    );
}

#[test]
fn c_protocols_1_2_3() {
    for opts in ["", ",lzo", ",cpp,lzo"] {
        check(opts, "gcc", "t.c", C_SRC, &["-O2"]);
        check(opts, "gcc", "t.c", C_SRC, &["-g"]);
    }
}

#[test]
fn cxx_protocols_1_2_3() {
    for opts in ["", ",lzo", ",cpp,lzo"] {
        check(opts, "g++", "t.cpp", CXX_SRC, &["-O1"]);
    }
}

const OBJC_SRC: &str = "#import <stdio.h>\n#include \"inc/hdr.h\"\n@interface Answer\n+ (int) value;\n@end\n@implementation Answer\n+ (int) value { return VALUE; }\n@end\nint main(void) { printf(\"%d\\n\", [Answer value]); return 0; }\n";
const OBJCXX_SRC: &str = "#include <vector>\n#include \"inc/hdr.h\"\n@interface Holder\n@end\n@implementation Holder\n@end\nint size() { std::vector<int> v(VALUE); return (int)v.size(); }\n";

/// Objective-C (`.m`, `#import`) and Objective-C++ (`.mm`).
#[test]
fn objc_protocols_1_2_3() {
    for opts in ["", ",lzo", ",cpp,lzo"] {
        check(
            opts,
            "gcc",
            "t.m",
            OBJC_SRC,
            &["-O2", "-Wno-objc-root-class"],
        );
        check(
            opts,
            "g++",
            "t.mm",
            OBJCXX_SRC,
            &["-O1", "-Wno-objc-root-class"],
        );
    }
}

const CXX_IN_C_FILE: &str = "#include \"inc/hdr.h\"\ntemplate <class T> T id(T x) { return x; }\nint f(int x) { return id(x) + VALUE; }\n";
const C_OR_CXX: &str = "#include \"inc/hdr.h\"\nint f(int x) { return x + VALUE; }\n";

/// The source is compiled in the language it has locally: a C++ driver
/// compiles `.c` as C++, and the command's own `-x` wins over the file's
/// extension (the objects differ in symbol mangling otherwise).
#[test]
fn language_as_the_driver_and_x_decide() {
    // The header is needed only when the file is C++: the include server
    // must analyse it as the driver compiles it.
    const CXX_BRANCH: &str = "#ifdef __cplusplus\n#include \"inc/hdr.h\"\n#else\n#define VALUE 1\n#endif\nint f(int x) { return x + VALUE; }\n";
    for opts in ["", ",lzo", ",cpp,lzo"] {
        check(opts, "g++", "t.c", C_OR_CXX, &["-O2"]);
        check(opts, "g++", "t.c", CXX_BRANCH, &["-O2"]);
    }
    // Its own -x c (c++) is read as that language's preprocessed form: a
    // predefined macro the source #undefs is not expanded again, and the
    // object, debug information included, is the local one.
    const UNDEFS_LINUX: &str = "#undef linux\nint linux = 3;\n";
    let d = ours_d();
    let dir = TestDir::new("odlangx");
    dir.write("inc/hdr.h", "#define VALUE 42\n");
    dir.write("t.c", format!("{CXX_IN_C_FILE}{UNDEFS_LINUX}"));
    dir.write("t.cpp", format!("{C_OR_CXX}{UNDEFS_LINUX}"));
    dir.write(
        "g.cpp",
        format!("{UNDEFS_LINUX}int g(void)\n{{\n  return linux;\n}}\n"),
    );
    let mut compiles = 0;
    for opts in ["", ",lzo"] {
        // Both spellings of -x; with and without debug information (in
        // a file where no macro expands: an expansion moves the columns
        // of what follows it on its line in any plain-mode compile).
        let cases: [(&str, &[&str], &str); 3] = [
            ("t.c", &["-x", "c++"], "-O2"),
            ("t.cpp", &["-xc"], "-O2"),
            ("g.cpp", &["-x", "c"], "-g"),
        ];
        for (file, lang, flag) in cases {
            let mut args = vec!["gcc", flag];
            args.extend_from_slice(lang);
            args.extend(["-c", file, "-o"]);
            let out = run(client(&dir, &d.host(opts))
                .env("DISTCC_FALLBACK", "0")
                .env("DISTCC_SKIP_LOCAL_RETRY", "1")
                .args(&args)
                .arg("remote.o"));
            assert_quiet_ok(&out);
            compiles += 1;
            assert_eq!(wait_compiles(&d, compiles), compiles, "{}", d.log());
            let mut local_args = args.clone();
            local_args.push("local.o");
            assert!(local(&dir, &local_args).status.success());
            assert!(
                read(&dir.join("remote.o")) == read(&dir.join("local.o")),
                "{opts} {lang:?} {file}: objects differ"
            );
        }
    }
    // Stock's client leaves the language to our daemon in the same way.
    let d = ours_d();
    let dir = TestDir::new("odlang");
    dir.write("inc/hdr.h", "#define VALUE 42\n");
    dir.write("t.c", C_OR_CXX);
    for (n, opts) in ["", ",lzo"].iter().enumerate() {
        let mut stock_client = Command::new("/usr/bin/distcc");
        client_env(&mut stock_client, &dir, &d.host(opts));
        stock_client.env("DISTCC_FALLBACK", "0");
        assert_quiet_ok(&run(
            stock_client.args(["g++", "-O2", "-c", "t.c", "-o", "stock.o"])
        ));
        assert_eq!(wait_compiles(&d, n + 1), n + 1, "{}", d.log());
        assert!(
            local(&dir, &["g++", "-O2", "-c", "t.c", "-o", "local.o"])
                .status
                .success()
        );
        assert_eq!(
            read(&dir.join("stock.o")),
            read(&dir.join("local.o")),
            "{opts}"
        );
    }
}

/// A precompiled header (CMake's `-x c-header cmake_pch.h.c -o
/// cmake_pch.h.gch`) is built locally: built from preprocessed text it
/// would have no macros, and every unit using it would fail.
#[test]
fn precompiled_headers_are_built_locally() {
    let d = ours_d();
    let dir = TestDir::new("odpch");
    dir.write("p.h", "#include <stdio.h>\n#define ANSWER 42\n");
    dir.write("p.h.c", "#include \"p.h\"\n");
    dir.write("use/u.c", "#include \"p.h\"\nint x = ANSWER;\n");
    let out = run(client(&dir, &d.host(",lzo")).args([
        "gcc",
        "-O2",
        "-x",
        "c-header",
        "-c",
        "p.h.c",
        "-o",
        "use/p.h.gch",
    ]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(!d.log().contains("COMPILE_OK"), "{}", d.log());
    assert!(read(&dir.join("use/p.h.gch")).starts_with(b"gpch"));
    // The header is used, and its macro is there.
    let out = run(Command::new("gcc")
        .args(["-O2", "-Winvalid-pch", "-H", "-c", "u.c", "-o", "u.o"])
        .current_dir(dir.join("use")));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("! p.h.gch"),
        "{}",
        show(&out)
    );
}

#[test]
fn dependency_files_all_protocols() {
    for opts in ["", ",lzo", ",cpp,lzo"] {
        let d = ours_d();
        let dir = TestDir::new("odmd");
        dir.write("inc/hdr.h", "#define VALUE 1\n");
        dir.write("t.c", C_SRC);
        std::fs::create_dir_all(dir.join("deps")).unwrap();
        let (_is, socket) = include_server(&dir);
        let out = run(client(&dir, &d.host(opts))
            .env("INCLUDE_SERVER_PORT", &socket)
            .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
            .args(["gcc", "-MD", "-MF", "deps/t.d", "-c", "t.c", "-o", "t.o"]));
        assert_quiet_ok(&out);
        assert_eq!(wait_compiles(&d, 1), 1, "{opts}: {}", d.log());
        let deps = String::from_utf8(read(&dir.join("deps/t.d"))).unwrap();
        assert!(deps.starts_with("t.o:"), "{opts}: {deps}");
        assert!(
            deps.contains("inc/hdr.h") && deps.contains("stdio.h"),
            "{opts}: {deps}"
        );
        assert!(!deps.contains("distccd_"), "{opts}: {deps}");
    }
}

#[test]
fn remote_errors_pass_through() {
    for opts in ["", ",lzo"] {
        let d = ours_d();
        let dir = TestDir::new("oderr");
        dir.write("bad.c", "int main(void) { return nosuch; }\n");
        let out = run(client(&dir, &d.host(opts)).args(["gcc", "-c", "bad.c"]));
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.c:1:") && err.contains("nosuch"), "{err}");
        assert!(!dir.join("bad.o").exists());
    }
}

#[test]
fn make_j4_with_masquerade_links() {
    make_hello_project_through_links(&ours_d(), "odmake");
}

#[test]
fn pump_with_our_include_server_on_stock_distccd() {
    let d = stock();
    let dir = TestDir::new("odpumpstock");
    dir.write("inc/hdr.h", "#define VALUE 5\n");
    dir.write("t.c", C_SRC);
    let (_is, socket) = include_server(&dir);
    let out = run(client(&dir, &d.host(",cpp,lzo"))
        .env("INCLUDE_SERVER_PORT", &socket)
        .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
        .args(["gcc", "-O2", "-MMD", "-c", "t.c"]));
    assert_quiet_ok(&out);
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
    assert!(
        local(&dir, &["gcc", "-O2", "-c", "t.c", "-o", "l.o"])
            .status
            .success()
    );
    assert_eq!(read(&dir.join("t.o")), read(&dir.join("l.o")));
    let deps = String::from_utf8(read(&dir.join("t.d"))).unwrap();
    assert!(
        deps.starts_with("t.o:") && deps.contains("inc/hdr.h"),
        "{deps}"
    );
}

#[test]
fn scan_includes_with_our_include_server() {
    let dir = TestDir::new("odscan");
    dir.write("inc/hdr.h", "#define VALUE 5\n");
    dir.write("t.c", C_SRC);
    let (_is, socket) = include_server(&dir);
    let out = run(client(&dir, "127.0.0.1:1,cpp,lzo")
        .env("INCLUDE_SERVER_PORT", &socket)
        .args(["--scan-includes", "gcc", "-c", "t.c"]));
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let canon = |p: &Path| p.canonicalize().unwrap().display().to_string();
    assert!(
        text.contains(&format!("FILE      {}\n", canon(&dir.join("t.c")))),
        "{text}"
    );
    assert!(
        text.contains(&format!("FILE      {}\n", canon(&dir.join("inc/hdr.h")))),
        "{text}"
    );
    assert!(text.contains("SYSTEMDIR /usr/include\n"), "{text}");
    for line in text.lines() {
        let kind = line.split_whitespace().next().unwrap_or("");
        assert!(
            ["FILE", "SYMLINK", "DIRECTORY", "SYSTEMDIR"].contains(&kind),
            "{line}"
        );
    }
    // With the only `,cpp` host backed off, the scan is still a scan: the
    // same list, and no object compiled here (sweep Q, doubtful).
    let lock = dir.join("distccdir/lock");
    std::fs::create_dir_all(&lock).unwrap();
    std::fs::write(lock.join("backoff_tcp_127.0.0.1_1_0"), "").unwrap();
    let again = run(client(&dir, "127.0.0.1:1,cpp,lzo")
        .env("INCLUDE_SERVER_PORT", &socket)
        .env("DISTCC_FALLBACK", "1")
        .args(["--scan-includes", "gcc", "-c", "t.c"]));
    assert!(again.status.success(), "{}", show(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), text);
    assert!(!dir.join("t.o").exists(), "--scan-includes compiled t.o");
}

/// `@file` arguments (CMake with Ninja writes include lists into response
/// files) are expanded by the client, as stock 3.4 does: the server gets
/// the options, compiles remotely, and the object is the local one. An
/// unreadable `@file` is left for the compiler to report.
#[test]
fn response_files_are_expanded_by_the_client() {
    let d = ours_d();
    let dir = TestDir::new("odrsp");
    dir.write("inc dir/hdr.h", "#define VALUE 42\n");
    dir.write("m.c", "#include \"hdr.h\"\nint v = VALUE + X;\n");
    dir.write("flags.rsp", "-O2 \"-Iinc dir\" @more.rsp\n");
    dir.write("more.rsp", "'-DX=1'\n");
    for opts in ["", ",lzo"] {
        let out = run(client(&dir, &d.host(opts)).args([
            "gcc",
            "@flags.rsp",
            "-c",
            "m.c",
            "-o",
            "remote.o",
        ]));
        assert_quiet_ok(&out);
    }
    assert_eq!(
        wait_compiles(&d, 2),
        2,
        "not compiled remotely: {}",
        d.log()
    );
    assert!(!d.log().contains("refused"), "{}", d.log());
    assert!(
        local(&dir, &["gcc", "@flags.rsp", "-c", "m.c", "-o", "local.o"])
            .status
            .success()
    );
    assert_eq!(read(&dir.join("remote.o")), read(&dir.join("local.o")));
    // Left as it is: the compiler sees what it would see locally.
    let out = run(client(&dir, &d.host("")).args(["gcc", "@missing.rsp", "-c", "m.c"]));
    let here = local(&dir, &["gcc", "@missing.rsp", "-c", "m.c"]);
    assert_eq!(out.status.code(), here.status.code(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hdr.h"),
        "{}",
        show(&out)
    );
}

/// Options that read or write the client's own files (`-save-temps`,
/// `-aux-info`, assembler listings, `-B`), or write files beside the object
/// (`-gsplit-dwarf`'s .dwo, `-fstack-usage`'s .su: a server would keep
/// them), compile here, with their files where the user asked for them,
/// and say why; the server is not asked, so it is not backed off: the next
/// job goes remote.
#[test]
fn client_file_options_compile_locally_without_backoff() {
    let d = ours_d();
    let dir = TestDir::new("odlocal");
    dir.write("k.c", "int f(int x) { return x + 1; }\n");
    for (cc, flags, made) in [
        ("gcc", &["-save-temps"][..], "k.i"),
        ("gcc", &["-aux-info", "k.aux"][..], "k.aux"),
        ("gcc", &["-Wa,-al=k.lst"][..], "k.lst"),
        ("gcc", &["-B/usr/bin/"][..], "k.o"),
        ("gcc", &["-g", "-gsplit-dwarf"][..], "k.dwo"),
        // Clang's spelling (sweep S, D1).
        ("clang", &["-g", "-gsplit-dwarf=split"][..], "k.dwo"),
        ("gcc", &["-fstack-usage"][..], "k.su"),
    ] {
        let _ = std::fs::remove_file(dir.join(made));
        let mut args = vec![cc];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-c", "k.c", "-o", "k.o"]);
        let out = run(client(&dir, &d.host(""))
            .env("DISTCC_VERBOSE", "1")
            .args(&args));
        assert!(out.status.success(), "{flags:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("running locally"), "{flags:?}: {err}");
        assert!(dir.join(made).exists(), "{flags:?}: no {made}");
    }
    assert!(!d.log().contains("refused"), "{}", d.log());
    assert_quiet_ok(&run(
        client(&dir, &d.host("")).args(["gcc", "-c", "k.c", "-o", "r.o"])
    ));
    assert_eq!(wait_compiles(&d, 1), 1, "not remote after: {}", d.log());
}

/// Glued preprocessor options do not reach the server, whose Clang would
/// call them unused: an error with `-Werror` that a local compile does not
/// give (sweep S, D2).
#[test]
fn clang_werror_with_glued_preprocessor_options() {
    let d = ours_d();
    let dir = TestDir::new("gluedpp");
    dir.write("pre.h", "#define PREV 7\n");
    dir.write("a.c", "int f(void) { return PREV; }\n");
    let pre = format!("-include{}", dir.join("pre.h").display());
    let idir = format!("-idirafter{}", dir.path.display());
    let map = format!("-fmacro-prefix-map={}=/src", dir.path.display());
    let out = run(client(&dir, &d.host("")).args([
        "clang", "-Werror", &pre, &idir, &map, "-c", "a.c", "-o", "a.o",
    ]));
    assert_quiet_ok(&out);
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
}

/// A `/* FALLTHROUGH */` comment silences GCC's `-Wextra` fallthrough
/// warning locally; the server's compile must see it too (the local
/// preprocessor keeps comments for such compiles), or `-Werror` fails
/// remotely (sweep S, D5).
#[test]
fn fallthrough_comments_reach_the_server() {
    let d = ours_d();
    let dir = TestDir::new("fallthru");
    dir.write(
        "ft.c",
        "int sw(int a) {\n  int r = 0;\n  switch (a) {\n  case 1:\n    r = 1;\n    /* FALLTHROUGH */\n  case 2:\n    r += 2;\n    break;\n  }\n  return r;\n}\n",
    );
    let out = run(client(&dir, &d.host(",lzo"))
        .args(["gcc", "-Wextra", "-Werror", "-c", "ft.c", "-o", "ft.o"]));
    assert_quiet_ok(&out);
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
}

/// Clang's `-gembed-source` and `-fdebug-macro` read the sources, which a
/// plain-mode server does not have: compiled here, with the reason, and
/// the server is not backed off (sweep S, D4).
#[test]
fn clang_embedded_sources_compile_here_in_plain_mode() {
    let d = ours_d();
    let dir = TestDir::new("embedsrc");
    dir.write("h.h", "#define HV 42\n");
    dir.write("e.c", "#include \"h.h\"\nint f(void) { return HV; }\n");
    for flag in ["-gembed-source", "-fdebug-macro"] {
        let out = run(client(&dir, &d.host(",lzo"))
            .env("DISTCC_VERBOSE", "1")
            .args(["clang", "-g", "-gdwarf-5", flag, "-c", "e.c", "-o", "e.o"]));
        assert!(out.status.success(), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("compiling e.c here") && err.contains(flag),
            "{err}"
        );
        assert!(dir.join("e.o").exists());
    }
    assert_quiet_ok(&run(
        client(&dir, &d.host(",lzo")).args(["clang", "-g", "-c", "e.c", "-o", "r.o"])
    ));
    assert_eq!(wait_compiles(&d, 1), 1, "not remote after: {}", d.log());
}

/// Clang's `-ObjC++` makes a `.c` source Objective-C++ on the server as
/// it does here (C++ names), not C (sweep S, D7).
#[test]
fn clang_objc_plus_plus_flag_keeps_its_language() {
    let d = ours_d();
    let dir = TestDir::new("objcxxflag");
    dir.write("d.c", "int fn(int x) { return x; }\n");
    assert_quiet_ok(&run(
        client(&dir, &d.host(",lzo")).args(["clang", "-ObjC++", "-c", "d.c", "-o", "d.o"])
    ));
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
    let nm = run(Command::new("nm").arg(dir.join("d.o")));
    assert!(
        String::from_utf8_lossy(&nm.stdout).contains("_Z2fni"),
        "{}",
        show(&nm)
    );
}

/// A harmless `-Xclang` option is compiled remotely, by our client and a
/// stock one; one that loads code is kept here (sweep S, P5).
#[test]
fn harmless_xclang_options_are_distributed() {
    let d = ours_d();
    let dir = TestDir::new("xclang");
    dir.write("x.c", "int x(void) { return 1; }\n");
    let args = [
        "clang",
        "-Xclang",
        "-fno-caret-diagnostics",
        "-c",
        "x.c",
        "-o",
        "x.o",
    ];
    assert_quiet_ok(&run(client(&dir, &d.host("")).args(args)));
    let mut stock = Command::new("/usr/bin/distcc");
    client_env(&mut stock, &dir, &d.host(""));
    assert_quiet_ok(&run(stock.env("DISTCC_FALLBACK", "0").args(args)));
    assert_eq!(wait_compiles(&d, 2), 2, "{}", d.log());
    let out = run(client(&dir, &d.host("")).env("DISTCC_VERBOSE", "1").args([
        "clang", "-Xclang", "-load", "-Xclang", "none.so", "-c", "x.c", "-o", "y.o",
    ]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running locally"),
        "{}",
        show(&out)
    );
}

/// JSON diagnostics are one document, as from a local compile (sweep R,
/// D4), and GCC's `--std=` spelling is distributed (sweep R, D5).
#[test]
fn json_diagnostics_and_double_dash_std() {
    let d = ours_d();
    let dir = TestDir::new("jsondiag");
    dir.write("w.c", "int f(void) { int unused; return 0; }\n");
    let args = [
        "gcc",
        "-Wall",
        "-fdiagnostics-format=json",
        "-c",
        "w.c",
        "-o",
        "w.o",
    ];
    let ours = run(client(&dir, &d.host(",lzo")).args(args));
    assert!(ours.status.success(), "{}", show(&ours));
    let local = run(Command::new("gcc").current_dir(&dir.path).args(&args[1..]));
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&local.stderr)
    );
    assert_quiet_ok(&run(client(&dir, &d.host(",lzo")).args([
        "gcc",
        "--std=c11",
        "-c",
        "w.c",
        "-o",
        "s.o",
    ])));
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
}

/// Meson's PCH compiles (`-include X -fpch-preprocess` with `X.gch`
/// beside X) are distributed with X's text and give the local object; with
/// the option the preprocessor named the .gch, which no server has
/// (sweep R).
#[test]
fn pch_preprocess_compiles_remotely_as_locally() {
    let d = ours_d();
    let dir = TestDir::new("pchpre");
    dir.write("p.h", "#include <stdio.h>\n#define K 5\n");
    dir.write(
        "m.c",
        "int main(void) { printf(\"%d\\n\", K); return 0; }\n",
    );
    let gch = run(Command::new("gcc")
        .current_dir(&dir.path)
        .args(["-O2", "-g", "-x", "c-header", "p.h", "-o", "p.h.gch"]));
    assert!(gch.status.success(), "{}", show(&gch));
    let flags = [
        "-O2",
        "-g",
        "-include",
        "p.h",
        "-fpch-preprocess",
        "-c",
        "m.c",
    ];
    let mut args = vec!["gcc"];
    args.extend(flags);
    args.extend(["-o", "r.o"]);
    assert_quiet_ok(&run(client(&dir, &d.host(",lzo")).args(&args)));
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
    let local = run(Command::new("gcc")
        .current_dir(&dir.path)
        .args(flags)
        .args(["-o", "l.o"]));
    assert!(local.status.success(), "{}", show(&local));
    assert_eq!(
        std::fs::read(dir.join("r.o")).unwrap(),
        std::fs::read(dir.join("l.o")).unwrap()
    );
}

/// `-fsyntax-only` compiled remotely leaves no output file, as a local
/// compile does (stock's client writes an empty one).
#[test]
fn syntax_only_writes_no_object() {
    let d = ours_d();
    let dir = TestDir::new("odsyn");
    dir.write("k.c", "int f(int x) { return x + 1; }\n");
    for opts in ["", ",lzo"] {
        let out = run(client(&dir, &d.host(opts)).args([
            "gcc",
            "-fsyntax-only",
            "-c",
            "k.c",
            "-o",
            "k.o",
        ]));
        assert_quiet_ok(&out);
        assert!(!dir.join("k.o").exists(), "an empty object was written");
    }
    assert_eq!(wait_compiles(&d, 2), 2, "not remote: {}", d.log());
    // A real compile still writes its object.
    assert_quiet_ok(&run(
        client(&dir, &d.host("")).args(["gcc", "-c", "k.c", "-o", "k.o"])
    ));
    assert!(std::fs::metadata(dir.join("k.o")).unwrap().len() > 0);
}

/// Diagnostics made on the server keep their colours when the client's
/// stderr is a terminal (run under `script`, as an interactive make is),
/// and stay plain text when it is a pipe.
#[test]
fn diagnostics_keep_their_colours_on_a_terminal() {
    let d = ours_d();
    let dir = TestDir::new("odcolour");
    dir.write("w.c", "int f(void) { int unused; return 0; }\n");
    let line = format!("{} gcc -Wall -c w.c -o w.o", bin().display());
    let mut c = Command::new("script");
    client_env(&mut c, &dir, &d.host(""));
    c.env("DISTCC_FALLBACK", "0")
        .env("TERM", "xterm")
        .env_remove("GCC_COLORS")
        .args(["-qec", &line, "/dev/null"]);
    let out = run(&mut c);
    assert!(out.status.success(), "{}", show(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("unused") && shown.contains("\x1b["),
        "no colours: {shown:?}"
    );
    assert_eq!(wait_compiles(&d, 1), 1, "not remote: {}", d.log());
    let out = run(client(&dir, &d.host(""))
        .env("TERM", "xterm")
        .args(["gcc", "-Wall", "-c", "w.c", "-o", "w.o"]));
    let piped = String::from_utf8_lossy(&out.stderr);
    assert!(
        piped.contains("unused") && !piped.contains("\x1b["),
        "{piped:?}"
    );
}

#[test]
fn clang_protocols_1_2_3() {
    for opts in ["", ",lzo", ",cpp,lzo"] {
        check(opts, "clang", "t.c", C_SRC, &["-O2"]);
        check(opts, "clang++", "t.cpp", CXX_SRC, &["-O1"]);
    }
}

/// Clang in plain and lzo mode gives the local object where the name of
/// the main file or a predefined macro in a pragma matters: `#pragma pack`
/// and `unroll` arguments (which `clang -E` leaves unexpanded), PGO counter
/// names of static functions, and a command with its own -x. (Not yet: an
/// Objective-C module name, which Clang takes from the file it reads.)
#[test]
fn clang_objects_that_name_the_source_or_use_macros_in_pragmas() {
    let d = ours_d();
    let dir = TestDir::new("odclangnames");
    dir.write(
        "p.c",
        "#pragma pack(push, __SIZEOF_SHORT__)\nstruct S { char c; long l; };\n#pragma pack(pop)\n\
         int size(void) { return sizeof(struct S); }\n\
         int sum(int *v, int n) { int s = 0;\n#pragma clang loop unroll_count(__SIZEOF_INT__)\n\
         for (int i = 0; i < n; i++) s += v[i]; return s; }\n\
         static int helper(int x) { return x * 3; }\nint use(int x) { return helper(x); }\n",
    );
    let cases: [&[&str]; 3] = [
        &["clang", "-O2", "-c", "p.c", "-o"],
        &[
            "clang",
            "-O1",
            "-fprofile-instr-generate",
            "-c",
            "p.c",
            "-o",
        ],
        &["clang", "-O2", "-x", "c", "-c", "p.c", "-o"],
    ];
    let mut compiles = 0;
    for opts in ["", ",lzo"] {
        for args in cases {
            let out = run(client(&dir, &d.host(opts))
                .env("DISTCC_FALLBACK", "0")
                .env("DISTCC_SKIP_LOCAL_RETRY", "1")
                .args(args)
                .arg("remote.o"));
            assert_quiet_ok(&out);
            compiles += 1;
            assert_eq!(wait_compiles(&d, compiles), compiles, "{}", d.log());
            let mut local_args = args.to_vec();
            local_args.push("local.o");
            assert!(local(&dir, &local_args).status.success());
            assert!(
                read(&dir.join("remote.o")) == read(&dir.join("local.o")),
                "{opts} {args:?}: objects differ"
            );
        }
    }
}

/// Clang, unlike GCC, takes neither the source's name nor the working
/// directory from a preprocessed source it reads: in plain and lzo mode
/// our daemon names the main file (`-main-file-name`) and our client names
/// its directory (`-fdebug-compilation-dir`), so the debug information
/// names `t.c` in the client's directory, as a local compile does (stock
/// gives `/tmp`, and gdb finds no source).
#[test]
fn clang_debug_info_names_the_client_source_and_directory() {
    let names = |dir: &TestDir, object: &str| -> Vec<String> {
        let out = run(Command::new("readelf")
            .args(["--debug-dump=info", object])
            .current_dir(&dir.path));
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("DW_AT_name") || l.contains("DW_AT_comp_dir"))
            .take(2)
            .map(|l| l.rsplit(": ").next().unwrap_or("").trim().to_string())
            .collect()
    };
    for opts in ["", ",lzo"] {
        let d = ours_d();
        let dir = TestDir::new("odclg");
        dir.write("inc/hdr.h", "#define VALUE 42\n");
        dir.write("src/t.c", C_SRC);
        let args = |out: &'static str| ["clang", "-g", "-O1", "-I.", "-c", "src/t.c", "-o", out];
        assert_quiet_ok(&run(client(&dir, &d.host(opts)).args(args("remote.o"))));
        assert_eq!(wait_compiles(&d, 1), 1, "not remote: {}", d.log());
        assert!(local(&dir, &args("local.o")).status.success());
        let local_names = names(&dir, "local.o");
        assert_eq!(local_names.len(), 2, "{local_names:?}");
        assert_eq!(local_names[0], "src/t.c");
        assert_eq!(names(&dir, "remote.o"), local_names, "{opts}");
    }
}

/// An object the server compiled that does not fit on the client's disk
/// (a 16 KiB tmpfs, in a mount namespace of the client's own) is not the
/// server's fault: it is not backed off, the compile falls back to local,
/// whose compiler reports the full disk, and no partial object is left.
#[test]
fn a_full_output_disk_does_not_back_off_the_server() {
    let d = ours_d();
    let dir = TestDir::new("fullout");
    let body: String = (0..400)
        .map(|i| {
            format!(
                "int f{i}(int x) {{ return x * {i} + f{}(x - 1); }}\n",
                i.max(1) - 1
            )
        })
        .collect();
    dir.write("big.c", format!("int f0(int x);\n{body}"));
    std::fs::create_dir_all(dir.join("small")).unwrap();
    let mut cmd = Command::new("unshare");
    client_env(&mut cmd, &dir, &d.host(""));
    let out = run(cmd
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o size=16k tmpfs small && exec \"$@\"",
            "sh",
        ])
        .arg(bin())
        .args(["gcc", "-c", "big.c", "-o", "small/big.o"]));
    assert_eq!(wait_compiles(&d, 1), 1, "{}", d.log());
    assert!(!out.status.success(), "{}", show(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("No space left on device"), "{said}");
    assert!(
        said.contains("compiled on 127.0.0.1:") && said.contains("running locally instead"),
        "{said}"
    );
    let port = d.port;
    assert!(
        !dir.join(&format!("distccdir/lock/backoff_tcp_127.0.0.1_{port}_0"))
            .exists(),
        "the server was backed off: {said}"
    );
    assert!(
        dir.listing().iter().all(|f| !f.starts_with("small/")),
        "{:?}",
        dir.listing()
    );
}

/// One include server for the whole session (`pump --startup`): a header
/// installed into the compiler's own include directories meanwhile (here a
/// `--sysroot`'s, as a staging SDK build or `make install` does), changed
/// and removed, is seen each time, and the user header it enables is sent.
#[test]
fn a_long_lived_include_server_sees_system_headers_installed() {
    let d = ours_d();
    let dir = TestDir::new("odsysnew");
    std::fs::create_dir_all(dir.join("sysroot/usr/include")).unwrap();
    dir.write("inc/with.h", "#define K 1\n");
    dir.write(
        "t.c",
        "#if __has_include(<newhdr.h>)\n#include <newhdr.h>\n#include \"inc/with.h\"\n\
         #else\n#define K 2\n#define NEW 0\n#endif\nint f(void) { return K + NEW; }\n",
    );
    let (_is, socket) = include_server(&dir);
    let sysroot = format!("--sysroot={}", dir.join("sysroot").display());
    let new = dir.join("sysroot/usr/include/newhdr.h");
    let rounds = [
        None,
        Some("#define NEW 10\n"),
        Some("#define NEW 20\n"),
        None,
    ];
    for (round, installed) in rounds.into_iter().enumerate() {
        match installed {
            Some(text) => std::fs::write(&new, text).unwrap(),
            None => {
                let _ = std::fs::remove_file(&new);
            }
        }
        let out = run(client(&dir, &d.host(",cpp,lzo"))
            .env("INCLUDE_SERVER_PORT", &socket)
            .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
            .args(["gcc", &sysroot, "-O2", "-c", "t.c", "-o", "t.o"]));
        assert_quiet_ok(&out);
        let out = local(&dir, &["gcc", &sysroot, "-O2", "-c", "t.c", "-o", "l.o"]);
        assert!(out.status.success(), "round {round}: {}", show(&out));
        assert_eq!(
            read(&dir.join("t.o")),
            read(&dir.join("l.o")),
            "round {round}: pump object differs from the local one"
        );
    }
    assert_eq!(wait_compiles(&d, 4), 4, "{}", d.log());
}

/// The preprocessor's own spelling `-Wp,-MMD,f` (kbuild's): GCC names the
/// source's `.o` as the target, Clang the output; in plain and pump mode
/// the `.d` file is the local one for both.
#[test]
fn preprocessor_spelled_dependencies_name_the_local_target() {
    let d = ours_d();
    for compiler in ["gcc", "clang"] {
        for opts in [",lzo", ",cpp,lzo"] {
            let dir = TestDir::new("wpmmd");
            dir.write("inc/hdr.h", "#define VALUE 3\n");
            dir.write("t.c", C_SRC);
            std::fs::create_dir_all(dir.join("sub")).unwrap();
            let (_is, socket) = include_server(&dir);
            let args = |dotd: &'static str| {
                [compiler, "-Wp,-MMD,", "-c", "t.c", "-o", "sub/t.o"].map(|a| {
                    if a == "-Wp,-MMD," {
                        format!("-Wp,-MMD,{dotd}")
                    } else {
                        a.to_string()
                    }
                })
            };
            let out = run(client(&dir, &d.host(opts))
                .env("INCLUDE_SERVER_PORT", &socket)
                .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
                .env("DISTCC_FALLBACK", "0")
                .args(args("sub/remote.d")));
            assert_quiet_ok(&out);
            let argv = args("sub/local.d");
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            assert!(local(&dir, &argv).status.success());
            let remote = String::from_utf8(read(&dir.join("sub/remote.d"))).unwrap();
            let here = String::from_utf8(read(&dir.join("sub/local.d"))).unwrap();
            assert_eq!(remote, here, "{compiler}{opts}");
        }
    }
}

/// Clang reads `X.pch` (or `X.gch`) beside an `-include X` of its own
/// accord, even one built with other macros: such a compile stays here, in
/// plain and pump mode, and gives the local object.
#[test]
fn clang_implicit_precompiled_header_compiles_here() {
    let d = ours_d();
    for (opts, ext) in [(",lzo", "pch"), (",cpp,lzo", "gch")] {
        let dir = TestDir::new("odimplpch");
        dir.write(
            "q.h",
            "#ifdef FOO\n#define PRE 8\n#else\n#define PRE 7\n#endif\n",
        );
        dir.write("q.c", "int f(void) { return PRE; }\n");
        let pch = format!("q.h.{ext}");
        assert!(
            local(
                &dir,
                &["clang", "-DFOO", "-x", "c-header", "q.h", "-o", &pch]
            )
            .status
            .success()
        );
        let (_is, socket) = include_server(&dir);
        let out = run(client(&dir, &d.host(opts))
            .env("INCLUDE_SERVER_PORT", &socket)
            .args(["clang", "-include", "q.h", "-c", "q.c", "-o", "q.o"]));
        assert_quiet_ok(&out);
        assert!(
            local(
                &dir,
                &["clang", "-include", "q.h", "-c", "q.c", "-o", "l.o"]
            )
            .status
            .success()
        );
        assert_eq!(read(&dir.join("q.o")), read(&dir.join("l.o")), "{opts}");
    }
    assert_eq!(compiles_ok(&d), 0, "{}", d.log());
}

/// GCC uses a `.gch` beside an `-include X` even when X was edited after
/// it (it checks the command, not the text): a compile with such a stale
/// `.gch` stays here and gives the local object (sweep O, D7: the server
/// compiled the new text).
#[test]
fn gcc_stale_precompiled_header_compiles_here() {
    let d = ours_d();
    for opts in [",lzo", ",cpp,lzo"] {
        let dir = TestDir::new("odstalepch");
        dir.write("q.h", "#define PRE 7\n");
        dir.write("q.c", "int f(void) { return PRE; }\n");
        let gch = ["gcc", "-x", "c-header", "q.h", "-o", "q.h.gch"];
        assert!(local(&dir, &gch).status.success());
        // Edited after the .gch, which is not remade.
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        dir.write("q.h", "#define PRE 8\n");
        std::fs::File::options()
            .write(true)
            .open(dir.join("q.h"))
            .and_then(|f| f.set_modified(later))
            .unwrap();
        let (_is, socket) = include_server(&dir);
        let before = compiles_ok(&d);
        let args = ["gcc", "-include", "q.h", "-c", "q.c", "-o", "q.o"];
        let out = run(client(&dir, &d.host(opts))
            .env("INCLUDE_SERVER_PORT", &socket)
            .args(args));
        assert_quiet_ok(&out);
        let here = ["gcc", "-include", "q.h", "-c", "q.c", "-o", "l.o"];
        assert!(local(&dir, &here).status.success());
        assert_eq!(read(&dir.join("q.o")), read(&dir.join("l.o")), "{opts}");
        assert_eq!(compiles_ok(&d), before, "{opts}: compiled remotely");
    }
}

/// Clang's coverage mapping in pump mode names the client's directory and
/// paths, as a local compile does (not the server's root): with a relative
/// and an absolute source, and under the client's own prefix map.
#[test]
fn clang_coverage_mapping_names_the_client_paths_in_pump_mode() {
    let d = ours_d();
    let dir = TestDir::new("odcov");
    dir.write(
        "m.c",
        "static int sf(int x) { return x * 3; }\nint main(void) { return sf(0); }\n",
    );
    let (_is, socket) = include_server(&dir);
    let abs = dir.join("m.c").display().to_string();
    let map = format!("-fcoverage-prefix-map={}=/src", dir.path.display());
    let cov = ["-fprofile-instr-generate", "-fcoverage-mapping"];
    for extra in [vec!["m.c"], vec![abs.as_str()], vec![map.as_str(), "m.c"]] {
        let mut args = vec!["clang"];
        args.extend(cov);
        args.extend(extra.iter().copied());
        let out = run(client(&dir, &d.host(",cpp,lzo"))
            .env("INCLUDE_SERVER_PORT", &socket)
            .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
            .env("DISTCC_FALLBACK", "0")
            .args(&args)
            .args(["-c", "-o", "pump.o"]));
        assert_quiet_ok(&out);
        let mut here = args.clone();
        here.extend(["-c", "-o", "local.o"]);
        assert!(local(&dir, &here).status.success());
        assert_eq!(
            read(&dir.join("pump.o")),
            read(&dir.join("local.o")),
            "{extra:?}"
        );
    }
    assert_eq!(wait_compiles(&d, 3), 3, "{}", d.log());
}

/// Dependency targets as GCC names them, in plain and pump mode, for the
/// ways a target and a dependency file reach the driver or only its
/// preprocessor: `-MD -Wp,-MT,foo` (the driver still adds the output:
/// `foo obj/t.o:`), `-Wp,-MD,f,-MT,foo` (that target alone), and `-MD`
/// beside `-Wp,-MD,f` (the `-Wp` file names the output).
#[test]
fn dependency_targets_reach_the_driver_or_the_preprocessor_as_locally() {
    let d = ours_d();
    let cases: [(&[&str], &str); 4] = [
        (&["-MD", "-Wp,-MT,foo"], "obj/t.d"),
        (&["-Wp,-MD,wp.d,-MT,foo"], "wp.d"),
        (&["-Wp,-MMD,wp.d,-MQ,f$o"], "wp.d"),
        (&["-MD", "-Wp,-MD,wp.d"], "wp.d"),
    ];
    for (deps, written) in cases {
        for opts in [",lzo", ",cpp,lzo"] {
            let dir = TestDir::new("wpmt");
            dir.write("inc/hdr.h", "#define VALUE 3\n");
            dir.write("t.c", C_SRC);
            std::fs::create_dir_all(dir.join("obj")).unwrap();
            let (_is, socket) = include_server(&dir);
            let mut args = vec!["gcc", "-c", "t.c", "-o", "obj/t.o"];
            args.extend_from_slice(deps);
            assert!(local(&dir, &args).status.success());
            let here = read(&dir.join(written));
            std::fs::remove_file(dir.join(written)).unwrap();
            let out = run(client(&dir, &d.host(opts))
                .env("INCLUDE_SERVER_PORT", &socket)
                .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
                .env("DISTCC_FALLBACK", "0")
                .args(&args));
            assert_quiet_ok(&out);
            assert_eq!(
                String::from_utf8(read(&dir.join(written))).unwrap(),
                String::from_utf8(here).unwrap(),
                "{deps:?} {opts}"
            );
        }
    }
}

/// A dependency option without a dependency file to write (`-MT x`,
/// `-MF f`, `-MP`, `-Wp,-MT,x` without `-MD`; `-MG` without `-M`) makes
/// GCC fail: the job stays here, where it does, instead of a server
/// compiling it in pump mode and leaving an object.
#[test]
fn dependency_options_gcc_refuses_fail_as_locally() {
    let d = ours_d();
    for deps in [
        &["-MT", "tgt"][..],
        &["-MF", "x.d"],
        &["-MP"],
        &["-Wp,-MT,t"],
        &["-MD", "-MG"],
    ] {
        for opts in [",lzo", ",cpp,lzo"] {
            let dir = TestDir::new("lonedeps");
            dir.write("inc/hdr.h", "#define VALUE 3\n");
            dir.write("t.c", C_SRC);
            let (_is, socket) = include_server(&dir);
            let mut args = vec!["gcc", "-c", "t.c", "-o", "t.o"];
            args.extend_from_slice(deps);
            let out = run(client(&dir, &d.host(opts))
                .env("INCLUDE_SERVER_PORT", &socket)
                .env("DISTCC_FALLBACK", "0")
                .args(&args));
            assert_eq!(
                out.status.code(),
                Some(1),
                "{deps:?} {opts}: {}",
                show(&out)
            );
            assert!(!dir.join("t.o").exists(), "{deps:?} {opts}");
            assert!(!dir.join("x.d").exists(), "{deps:?} {opts}");
        }
    }
    assert_eq!(compiles_ok(&d), 0, "{}", d.log());
}

/// `-x cpp-output` (and its C++ form) marks the source as preprocessed
/// whatever its name: it is sent as it is, not run through the
/// preprocessor (which gives nothing for such input), so the object has
/// the function, as locally; a directive in it fails as locally. (The
/// text starts with a line marker, as preprocessed text does: without one
/// the object's file symbol names the server's temporary file, as with
/// stock's daemon.)
#[test]
fn an_explicit_preprocessed_language_is_sent_as_it_is() {
    let d = ours_d();
    for (cc, lang) in [("gcc", "cpp-output"), ("g++", "c++-cpp-output")] {
        for opts in ["", ",lzo"] {
            let dir = TestDir::new("xcppout");
            dir.write("b.c", "# 1 \"b.c\"\nint bfunc(int q) { return q + 1; }\n");
            dir.write("bad.c", "#define X 1\nint x = X;\n");
            let args = [cc, "-x", lang, "-c", "b.c", "-o", "local.o"];
            assert!(local(&dir, &args).status.success());
            let out =
                run(client(&dir, &d.host(opts))
                    .args([cc, "-x", lang, "-c", "b.c", "-o", "remote.o"]));
            assert_quiet_ok(&out);
            assert_eq!(
                read(&dir.join("remote.o")),
                read(&dir.join("local.o")),
                "{cc} -x {lang} {opts}"
            );
            let here = local(&dir, &[cc, "-x", lang, "-c", "bad.c", "-o", "bad.o"]);
            let out =
                run(client(&dir, &d.host(opts))
                    .args([cc, "-x", lang, "-c", "bad.c", "-o", "bad.o"]));
            assert_eq!(
                out.status.code(),
                here.status.code(),
                "{cc} {opts}: {}",
                show(&out)
            );
            assert!(!out.status.success() && !dir.join("bad.o").exists());
        }
    }
}

/// `gcc -S -MD b.c` (no `-o`): the driver names the object `t.o` as the
/// target, not the assembler file it writes; with `-o x.s` it names `x.s`.
#[test]
fn assembler_output_without_o_names_the_object_as_target() {
    let d = ours_d();
    for cc in ["gcc", "clang"] {
        for (extra, dotd) in [
            (&[][..], "t.d"),
            (&["-MF", "x.d"][..], "x.d"),
            (&["-o", "y.s"][..], "y.d"),
        ] {
            for opts in [",lzo", ",cpp,lzo"] {
                let dir = TestDir::new("smd");
                dir.write("inc/hdr.h", "#define VALUE 3\n");
                dir.write("t.c", C_SRC);
                let (_is, socket) = include_server(&dir);
                let mut args = vec![cc, "-S", "-MD", "t.c"];
                args.extend_from_slice(extra);
                assert!(local(&dir, &args).status.success());
                let here = read(&dir.join(dotd));
                std::fs::remove_file(dir.join(dotd)).unwrap();
                let out = run(client(&dir, &d.host(opts))
                    .env("INCLUDE_SERVER_PORT", &socket)
                    .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
                    .args(&args));
                assert_quiet_ok(&out);
                assert_eq!(
                    String::from_utf8(read(&dir.join(dotd))).unwrap(),
                    String::from_utf8(here).unwrap(),
                    "{cc} {extra:?} {opts}"
                );
            }
        }
    }
}

/// `-o nodir/x.o` where `nodir` does not exist: the compiler fails, and so
/// does the distcc job, without making the directory (stock makes it and
/// exits 0).
#[test]
fn an_output_directory_that_does_not_exist_fails_as_locally() {
    let d = ours_d();
    for opts in ["", ",lzo", ",cpp,lzo"] {
        let dir = TestDir::new("nodir");
        dir.write("inc/hdr.h", "#define VALUE 3\n");
        dir.write("t.c", C_SRC);
        let (_is, socket) = include_server(&dir);
        let here = local(&dir, &["gcc", "-c", "t.c", "-o", "nodir/x.o"]);
        assert!(!here.status.success());
        let out = run(client(&dir, &d.host(opts))
            .env("INCLUDE_SERVER_PORT", &socket)
            .args(["gcc", "-c", "t.c", "-o", "nodir/x.o"]));
        assert_eq!(
            out.status.code(),
            here.status.code(),
            "{opts}: {}",
            show(&out)
        );
        assert!(
            !dir.join("nodir").exists(),
            "{opts}: the directory was made"
        );
    }
    assert_eq!(compiles_ok(&d), 0, "{}", d.log());
}

/// Three commands that must give what the compiler gives here: Clang's
/// `-iquote DIR` leaves no "argument unused" warning on the server (it is
/// taken out with the other preprocessor options); `-MF -` prints the
/// dependencies on standard output; `-x c pre.i -MMD` preprocesses the
/// `.i` as C (as the `-x` says) and writes its `.d` file.
#[test]
fn preprocessor_options_behave_as_locally() {
    let d = ours_d();
    for opts in ["", ",lzo"] {
        let dir = TestDir::new("ppopts");
        dir.write("inc/hdr.h", "#define VALUE 3\n");
        dir.write("t.c", C_SRC);
        dir.write("pre.i", "#define TWO 2\nint two = TWO;\n");
        let cases: [(&[&str], &str); 5] = [
            (
                &[
                    "clang", "-iquote", "inc", "-Werror", "-c", "t.c", "-o", "t.o",
                ],
                "",
            ),
            (
                &["gcc", "-Iinc", "-MD", "-MF", "-", "-c", "t.c", "-o", "t.o"],
                "",
            ),
            (
                &["gcc", "-x", "c", "-MMD", "-c", "pre.i", "-o", "q.o"],
                "q.d",
            ),
            // GCC writes the -Wp file, never the -MF one (sweep L, D7).
            (
                &[
                    "gcc",
                    "-Iinc",
                    "-c",
                    "t.c",
                    "-Wp,-MD,wp.d",
                    "-MF",
                    "x.d",
                    "-o",
                    "t.o",
                ],
                "wp.d",
            ),
            // Clang writes the last, and says nothing (sweep L, D9).
            (
                &[
                    "clang",
                    "-Iinc",
                    "-Werror",
                    "-Wp,-MD,a.d",
                    "-Wp,-MMD,b.d",
                    "-c",
                    "t.c",
                    "-o",
                    "t.o",
                ],
                "b.d",
            ),
        ];
        for (args, dotd) in cases {
            let here = local(&dir, args);
            assert!(here.status.success(), "{args:?}: {}", show(&here));
            let want = (!dotd.is_empty()).then(|| read(&dir.join(dotd)));
            if !dotd.is_empty() {
                std::fs::remove_file(dir.join(dotd)).unwrap();
            }
            let out = run(client(&dir, &d.host(opts)).args(args));
            assert!(out.status.success(), "{args:?} {opts}: {}", show(&out));
            assert_eq!(out.stdout, here.stdout, "{args:?} {opts}");
            assert!(out.stderr.is_empty(), "{args:?} {opts}: {}", show(&out));
            if let Some(want) = want {
                assert_eq!(read(&dir.join(dotd)), want, "{args:?} {opts}");
            }
            assert!(!dir.join("-").exists(), "{args:?} {opts}: a file named -");
            for never in ["x.d", "a.d"] {
                assert!(!dir.join(never).exists(), "{args:?} {opts}: {never}");
            }
        }
    }
}

/// A `.i` made without `-g` (no working-directory line) compiled with
/// `-g`: the object records this directory, as a local compile does, not
/// the server's job directory, on our daemon and on stock's (sweep U, D7).
#[test]
fn preprocessed_sources_record_the_clients_directory() {
    let ours = ours_d();
    let stock = stock_daemon(&[]);
    let dir = TestDir::new("od-doti-cwd");
    dir.write("a.c", "int f(int x) { return x + 1; }\n");
    assert!(
        local(&dir, &["gcc", "-E", "a.c", "-o", "a.i"])
            .status
            .success()
    );
    assert!(
        local(&dir, &["gcc", "-g", "-c", "a.i", "-o", "local.o"])
            .status
            .success()
    );
    for (name, d) in [("ours", &ours), ("stock", &stock)] {
        let mut cmd = client(&dir, &d.host(",lzo"));
        assert_quiet_ok(&run(cmd.args(["gcc", "-g", "-c", "a.i", "-o", "remote.o"])));
        assert_eq!(
            read(&dir.join("remote.o")),
            read(&dir.join("local.o")),
            "{name}: the object differs from the local one"
        );
    }
    assert_eq!(wait_compiles(&ours, 1), 1, "{}", ours.log());
}

/// An object larger than the file-size limit (`ulimit -f`): the write
/// fails instead of the signal killing the client between creating its
/// temporary file and renaming it, so nothing is left beside the target
/// (sweep T, D2), and the local compile reports the limit as without
/// distcc.
#[test]
fn a_file_size_limit_leaves_no_temporary_file() {
    let d = ours_d();
    let dir = TestDir::new("od-fsize");
    dir.write("fat.c", "char big[3000000] = {1};\n");
    let mut cmd = client(&dir, &d.host(",lzo"));
    cmd.env("DISTCC_FALLBACK", "1")
        .args(["gcc", "-c", "fat.c", "-o", "fat.o"]);
    use std::os::unix::process::CommandExt;
    // SAFETY: only setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 2_000_000,
                rlim_max: 2_000_000,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
            Ok(())
        });
    }
    let out = run(&mut cmd);
    assert!(!out.status.success(), "{}", show(&out));
    let left: Vec<String> = std::fs::read_dir(&dir.path)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".distcc-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("File too large")
            || String::from_utf8_lossy(&out.stderr).contains("File size limit"),
        "{}",
        show(&out)
    );
}
