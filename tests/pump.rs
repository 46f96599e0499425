//! `pump` behaviours (facts §2.4): exit status passthrough, the
//! `--startup`/`--shutdown` round trip with `eval`, only `export` lines on
//! stdout, host checks, and a real pump-mode compile through a `pump`
//! session (stock client and daemon, our include server in pump's process).

use crate::includes::stock_pump_daemon;
use crate::util::*;
use std::path::Path;
use std::process::Command;

/// `pump` with a hermetic environment; the distcc client used for
/// `--show-hosts` is stock's (DISTCC_LOCATION=/usr/bin).
fn pump(dir: &TestDir, hosts: Option<&str>) -> Command {
    let mut cmd = ours("pump");
    client_env(&mut cmd, dir, hosts.unwrap_or(""));
    if hosts.is_none() {
        cmd.env_remove("DISTCC_HOSTS").env("HOME", dir.join("home"));
    }
    cmd.env("DISTCC_LOCATION", "/usr/bin")
        .env("TMPDIR", dir.join("ctmp"))
        .env_remove("INCLUDE_SERVER_ARGS");
    cmd
}

/// `pump` with our binaries (`DISTCC_LOCATION`) and `hosts`, run in `work`;
/// `strict` turns every fallback into a failure, so the compile is known to
/// have used pump mode.
fn pump_ours(dir: &TestDir, hosts: &str, work: &std::path::Path, strict: bool) -> Command {
    let mut cmd = pump(dir, Some(hosts));
    cmd.current_dir(work)
        .env("DISTCC_LOCATION", bin().parent().unwrap());
    if strict {
        cmd.env("DISTCC_TESTING_INCLUDE_SERVER", "1")
            .env("DISTCC_FALLBACK", "0");
    }
    cmd
}

/// Runs `cc args` in `work` as a local compile, with `env` added; it must
/// succeed.
fn compile_locally(work: &Path, cc: &str, args: &[&str], env: &[(&str, &str)]) {
    let mut cmd = Command::new(cc);
    cmd.args(args).current_dir(work);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{cc} {args:?}: {}", show(&out));
}

/// Asserts that `work/got` has the bytes of `work/want` (text shown when
/// they differ and are text).
fn assert_same_file(work: &Path, got: &str, want: &str, what: &str) {
    let (g, w) = (
        std::fs::read(work.join(got)).unwrap(),
        std::fs::read(work.join(want)).unwrap(),
    );
    if g != w {
        match (std::str::from_utf8(&g), std::str::from_utf8(&w)) {
            (Ok(g), Ok(w)) => panic!("{what}: {got} differs from {want}\n{g}\n---\n{w}"),
            _ => panic!(
                "{what}: {got} ({} bytes) differs from {want} ({} bytes)",
                g.len(),
                w.len()
            ),
        }
    }
}

/// The value of `export NAME='value'` in `pump --startup`'s output.
fn export_value(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("export {name}='")))
        .map(|v| v.trim_end_matches('\'').to_string())
        .unwrap_or_else(|| panic!("no {name} in {stdout}"))
}

/// The words of a dependency file (continuation lines joined).
fn dep_words(text: Vec<u8>) -> Vec<String> {
    String::from_utf8(text)
        .unwrap()
        .replace("\\\n", " ")
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn exit_status_passes_through() {
    require_stock();
    let dir = TestDir::new("pump-exit");
    let out = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo")).args(["sh", "-c", "exit 3"]));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    // Banners on stdout, as stock's script prints them.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("__________Using distcc-pump from /usr/bin\n")
            && said.contains("__________Shutting down distcc-pump include server\n"),
        "{}",
        show(&out)
    );
    // The command saw the include server and pump's variables.
    let out = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo")).args([
        "sh",
        "-c",
        "test -S \"$INCLUDE_SERVER_PORT\" && test -d \"$INCLUDE_SERVER_DIR\" && echo ok",
    ]));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "ok"),
        "{}",
        show(&out)
    );
    // Nothing left behind in TMPDIR.
    let left: Vec<_> = std::fs::read_dir(dir.join("ctmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// SIGTERM to `pump` ends its command (which sees SIGTERM), and pump still
/// shuts its include server down and removes everything it made.
#[test]
fn a_signal_ends_the_command_and_cleans_up() {
    require_stock();
    // The command gets the signal pump got: after a Ctrl-C (SIGINT) it dies
    // of SIGINT and pump exits 130, as stock's script does.
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let dir = TestDir::new("pump-signal");
        let marker = dir.join("command-started");
        let mut cmd = pump(&dir, Some("127.0.0.1:1,cpp,lzo"));
        cmd.args(["sh", "-c", "touch \"$1\"; exec sleep 60", "sh"])
            .arg(&marker)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let started = std::time::Instant::now();
        while !marker.exists() && started.elapsed() < std::time::Duration::from_secs(20) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(marker.exists(), "the command never started");
        unsafe { libc::kill(child.id() as i32, sig) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let status = status.expect("pump did not end within 20 s of the signal");
        // The command ended by the signal: 128 + its number, as a shell
        // reports it.
        assert_eq!(status.code(), Some(code), "signal {sig}");
        let left: Vec<_> = std::fs::read_dir(dir.join("ctmp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn help_and_host_checks() {
    require_stock();
    let dir = TestDir::new("pump-hosts");
    let out = run(pump(&dir, None).arg("--help"));
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--startup"));
    // A system-wide hosts file counts as a host list (stock does the same).
    if !std::path::Path::new("/etc/distcc/hosts").exists() {
        let out = run(pump(&dir, None).arg("true"));
        assert!(!out.status.success(), "no hosts must fail: {}", show(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("DISTCC_HOSTS"));
    }
    let out = run(pump(&dir, Some("127.0.0.1:1,lzo")).arg("true"));
    assert!(
        !out.status.success(),
        "no ,cpp host must fail: {}",
        show(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(",cpp"));
}

#[test]
fn startup_shutdown_round_trip() {
    require_stock();
    let dir = TestDir::new("pump-startup");
    let out = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo")).arg("--startup"));
    assert!(out.status.success(), "{}", show(&out));
    // As stock's: nothing but the exports, no progress lines on stderr.
    assert!(out.stderr.is_empty(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut names = Vec::new();
    for line in stdout.lines() {
        let rest = line
            .strip_prefix("export ")
            .unwrap_or_else(|| panic!("not an export: {line}"));
        let (name, value) = rest.split_once('=').unwrap();
        assert!(value.starts_with('\'') && value.ends_with('\''), "{line}");
        names.push(name.to_string());
    }
    assert_eq!(
        names,
        [
            "INCLUDE_SERVER_PID",
            "INCLUDE_SERVER_DIR",
            "INCLUDE_SERVER_PORT",
            "DISTCC_HOSTS",
            "PATH"
        ]
    );
    let value = |n: &str| export_value(&stdout, n);
    let pid: i32 = value("INCLUDE_SERVER_PID").parse().unwrap();
    let server_dir = std::path::PathBuf::from(value("INCLUDE_SERVER_DIR"));
    assert!(std::path::Path::new(&value("INCLUDE_SERVER_PORT")).exists());
    // Private, as stock's (sweep O, D8): only this user reaches the socket,
    // and the server's copies of the sources (its client roots).
    use std::os::unix::fs::MetadataExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&server_dir), 0o700, "{}", server_dir.display());
    let roots: Vec<_> = ["/dev/shm", "/tmp"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .contains(&format!(".include_server-{pid}-"))
            })
        })
        .collect();
    assert!(!roots.is_empty(), "no client root of {pid}");
    for r in roots {
        assert_eq!(mode(&r), 0o700, "{}", r.display());
    }

    // A second --startup while the first server runs (sweep O, doubtful
    // 2): another server, as stock, with a warning on stderr only.
    let again = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo"))
        .arg("--startup")
        .env("INCLUDE_SERVER_PID", pid.to_string()));
    assert!(again.status.success(), "{}", show(&again));
    let again_out = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!(
            "include server {pid} (INCLUDE_SERVER_PID) is still running"
        )),
        "{}",
        show(&again)
    );
    let second = export_value(&again_out, "INCLUDE_SERVER_PID");
    assert_ne!(second, pid.to_string());
    let stop = run(pump(&dir, None)
        .arg("--shutdown")
        .env("INCLUDE_SERVER_PID", &second)
        .env(
            "INCLUDE_SERVER_DIR",
            export_value(&again_out, "INCLUDE_SERVER_DIR"),
        ));
    assert!(stop.status.success(), "{}", show(&stop));

    // eval the exports in a shell, ask the server through the stock client,
    // then shut down with the same variables.
    std::fs::write(dir.join("x.c"), "#include \"x.h\"\nint x;\n").unwrap();
    std::fs::write(dir.join("x.h"), "\n").unwrap();
    let script = format!(
        "eval \"$(cat <<'EOF'\n{stdout}EOF\n)\" && distcc --scan-includes gcc -c x.c && \"$PUMP\" pump --shutdown"
    );
    let mut sh = Command::new("sh");
    client_env(&mut sh, &dir, "127.0.0.1:1,cpp,lzo");
    sh.arg("-c")
        .arg(&script)
        .env("PUMP", bin())
        .env("DISTCC_LOCATION", "/usr/bin");
    let out = run(&mut sh);
    let alive = std::path::Path::new(&format!("/proc/{pid}/stat"))
        .exists()
        .then(|| std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
        .is_some_and(|s| !s.contains(") Z"));
    if alive {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FILE") && text.contains("/x.h"), "{text}");
    assert!(
        !alive,
        "include server {pid} still running after --shutdown"
    );
    assert!(!server_dir.exists(), "{} left behind", server_dir.display());
}

/// A build under `pump` really uses pump mode (fallback disabled) and gives
/// the local object.
#[test]
fn pump_compile_matches_local() {
    require_stock();
    let dir = TestDir::new("pump-compile");
    let (_daemon, port, _ddir) = stock_pump_daemon();
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("inc")).unwrap();
    std::fs::write(
        work.join("main.c"),
        "#include <stdio.h>\n#include \"inc/a.h\"\nint main(void){printf(\"%d\\n\", A);return 0;}\n",
    )
    .unwrap();
    std::fs::write(work.join("inc/a.h"), "#define A 42\n").unwrap();
    let mut cmd = pump(&dir, Some(&format!("127.0.0.1:{port},cpp,lzo")));
    cmd.current_dir(&work)
        .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
        .env("DISTCC_FALLBACK", "0")
        .args(["distcc", "gcc", "-O2", "-c", "main.c", "-o", "pump.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    let out = run(Command::new("gcc")
        .args(["-O2", "-c", "main.c", "-o", "local.o"])
        .current_dir(&work));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        std::fs::read(work.join("pump.o")).unwrap(),
        std::fs::read(work.join("local.o")).unwrap()
    );
}

/// A search directory that duplicates a system one is dropped as GCC drops
/// it: an `-I` directory that is also an `-idirafter` one, and an `-iquote`
/// directory that is also an `-isystem` one, so `b.h` comes from `e` in
/// both units (the include server used to send `d/b.h`: exit 0, wrong
/// object; found by the twins sweep).
#[test]
fn search_directories_duplicating_system_ones_are_dropped_as_gcc_does() {
    require_stock();
    let dir = TestDir::new("pump-sysdup");
    let (_daemon, port, _ddir) = stock_pump_daemon();
    let work = dir.join("w");
    for d in ["d", "e"] {
        std::fs::create_dir_all(work.join(d)).unwrap();
    }
    std::fs::write(work.join("d/b.h"), "int in_d;\n").unwrap();
    std::fs::write(work.join("e/b.h"), "int in_e;\n").unwrap();
    std::fs::write(work.join("angle.c"), "#include <b.h>\n").unwrap();
    std::fs::write(work.join("quote.c"), "#include \"b.h\"\n").unwrap();
    let hosts = format!("127.0.0.1:{port},cpp,lzo");
    for (src, flags) in [
        ("angle", &["-idirafter", "d", "-Id", "-Ie"][..]),
        ("quote", &["-iquote", "d", "-Ie", "-isystem", "d"][..]),
    ] {
        let (local, remote) = (format!("{src}-local.o"), format!("{src}-pump.o"));
        let source = format!("{src}.c");
        let mut args = flags.to_vec();
        args.extend(["-c", &source]);
        let mut local_args = args.clone();
        local_args.extend(["-o", &local]);
        compile_locally(&work, "gcc", &local_args, &[]);
        let mut cmd = pump_ours(&dir, &hosts, &work, true);
        cmd.args(["distcc", "gcc"])
            .args(&args)
            .args(["-o", &remote]);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{src}: {}", show(&out));
        assert_same_file(&work, &remote, &local, src);
    }
}

/// Without DISTCC_LOCATION, pump finds distcc beside itself as it was
/// invoked (by path, or through PATH), even when the binary both links
/// point to is not named `distcc`; when no `distcc` is anywhere near, the
/// error says where it looked and what to set.
#[test]
fn finds_distcc_beside_its_own_link() {
    let dir = TestDir::new("pump-location");
    let real = dir.join("opt/distcc-rs");
    std::fs::create_dir_all(dir.join("opt")).unwrap();
    if std::fs::hard_link(bin(), &real).is_err() {
        std::fs::copy(bin(), &real).unwrap();
    }
    for (sub, names) in [("bin", &["pump", "distcc"][..]), ("lonely", &["pump"][..])] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for name in names {
            std::os::unix::fs::symlink(&real, dir.join(&format!("{sub}/{name}"))).unwrap();
        }
    }
    let bin_dir = dir.join("bin").display().to_string();
    let show_path = ["sh", "-c", "echo \"$PATH\""];
    let system_path = std::env::var("PATH").unwrap_or_default();

    // By path.
    let mut cmd = Command::new(dir.join("bin/pump"));
    client_env(&mut cmd, &dir, "127.0.0.1:1,cpp,lzo");
    let out = run(cmd.args(show_path));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("Using distcc-pump from {bin_dir}\n")),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with(&format!("{bin_dir}:"))),
        "{}",
        show(&out)
    );

    // Through PATH, as a user types `pump`.
    let mut cmd = Command::new("pump");
    client_env(&mut cmd, &dir, "127.0.0.1:1,cpp,lzo");
    cmd.env("PATH", format!("{bin_dir}:{system_path}"));
    let out = run(cmd.args(show_path));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with(&format!("{bin_dir}:"))),
        "{}",
        show(&out)
    );

    // Run as `distcc distcc-pump`, with another installation's pump and
    // distcc first on PATH (Debian's /usr/bin): this binary's directory
    // still goes first, not the other's (sweep Z, D4).
    std::fs::create_dir_all(dir.join("other")).unwrap();
    for name in ["distcc-pump", "pump", "distcc"] {
        dir.write(&format!("other/{name}"), "#!/bin/sh\necho other\n");
        std::fs::set_permissions(
            dir.join(&format!("other/{name}")),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let other_dir = dir.join("other").display().to_string();
    for applet in ["distcc-pump", "pump"] {
        let mut cmd = Command::new(dir.join("bin/distcc"));
        client_env(&mut cmd, &dir, "127.0.0.1:1,cpp,lzo");
        cmd.env("PATH", format!("{other_dir}:{system_path}"));
        let out = run(cmd.arg(applet).args(show_path));
        assert!(out.status.success(), "{applet}: {}", show(&out));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains(&format!("Using distcc-pump from {bin_dir}\n"))
                && said.lines().any(|l| l.starts_with(&format!("{bin_dir}:"))),
            "{applet}: {}",
            show(&out)
        );
    }

    // Nothing named distcc beside the link or the binary.
    let mut cmd = Command::new(dir.join("lonely/pump"));
    client_env(&mut cmd, &dir, "127.0.0.1:1,cpp,lzo");
    let out = run(cmd.args(show_path));
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "can't find distcc (looked in {}, {})",
            dir.join("lonely").display(),
            dir.join("opt").display()
        )) && err.contains("DISTCC_LOCATION"),
        "{err}"
    );
}

/// When the include server cannot cover a unit, our client's one line
/// about preprocessing locally carries the server's reason (passed with
/// its reply), and the compile still succeeds in lzo mode.
#[test]
fn fallback_line_says_why() {
    require_stock();
    let dir = TestDir::new("pump-why");
    let (_daemon, port, _ddir) = stock_pump_daemon();
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    // A computed include naming an absolute path cannot be rewritten to
    // open the server's copy: not covered.
    let config = work.join("config.h");
    std::fs::write(&config, "#define C 3\n").unwrap();
    std::fs::write(
        work.join("main.c"),
        "#include CONFIG\nint main(void){return C;}\n",
    )
    .unwrap();
    let mut cmd = pump_ours(&dir, &format!("127.0.0.1:{port},cpp,lzo"), &work, false);
    cmd.args(["distcc", "gcc", "-O2", "-c", "main.c", "-o", "main.o"])
        .arg(format!("-DCONFIG=\"{}\"", config.display()));
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "include server gave up: absolute include {} in main.c",
        config.display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(work.join("main.o").exists());
}

/// Two uses of absolute `#include`s that the server could not name as GCC
/// names them locally are not covered: the unit is preprocessed here, with
/// the reason on the client's one line, and the object and `.d` are the
/// local ones (sweep AA: D1, an unguarded header included by absolute and
/// by relative path, each inclusion naming itself in `__FILE__`; D2, an
/// absolute include inside an `-isystem` header, whose includes GCC names
/// by their real paths; D6, `#include_next` below an absolute include).
/// Stock's include server gives up on all of them too.
#[test]
fn absolute_includes_gcc_names_otherwise_are_preprocessed_here() {
    let d = our_daemon(&[]);
    let dir = TestDir::new("pump-abs-names");
    let work = dir.join("w");
    for sub in ["inc", "sys"] {
        std::fs::create_dir_all(work.join(sub)).unwrap();
    }
    let work = std::fs::canonicalize(&work).unwrap();
    let w = work.display();
    std::fs::write(work.join("inc/a.h"), "F(__FILE__)\n").unwrap();
    std::fs::write(
        work.join("both.c"),
        format!("#define F(x) const char *CAT(f, __COUNTER__) = x;\n#define CAT(a, b) CAT2(a, b)\n#define CAT2(a, b) a##b\n#include \"{w}/inc/a.h\"\n#include \"inc/a.h\"\n"),
    )
    .unwrap();
    std::fs::write(work.join("sys/s.h"), format!("#include \"{w}/inc/b.h\"\n")).unwrap();
    std::fs::write(work.join("inc/b.h"), "#include \"../inc/c.h\"\n").unwrap();
    std::fs::write(work.join("inc/c.h"), "const char *fc = __FILE__;\n").unwrap();
    std::fs::write(work.join("sys.c"), "#include <s.h>\n").unwrap();
    // D6: `#include_next` below an absolute include (Clang went on from
    // the directory the server's relative name passes through).
    std::fs::create_dir_all(work.join("after")).unwrap();
    std::fs::write(work.join("inc/n.h"), "#include \"../after/n1.h\"\n").unwrap();
    std::fs::write(work.join("after/n1.h"), "#include \"n2.h\"\n").unwrap();
    std::fs::write(work.join("after/n2.h"), "#include_next <n2.h>\n").unwrap();
    std::fs::write(work.join("inc/n2.h"), "int from_inc;\n").unwrap();
    std::fs::write(work.join("sys/n2.h"), "int from_sys;\n").unwrap();
    std::fs::write(work.join("next.c"), format!("#include \"{w}/inc/n.h\"\n")).unwrap();
    for (src, why) in [
        ("both.c", "is included as inc/a.h"),
        ("sys.c", "which the compiler takes for a system header"),
        (
            "next.c",
            "which is opened below a rewritten absolute include",
        ),
    ] {
        let stem = src.trim_end_matches(".c");
        let args = ["-Iinc", "-isystem", "sys", "-c", src, "-MD"];
        compile_locally(
            &work,
            "gcc",
            &[&args[..], &["-o", &format!("{stem}-local.o")]].concat(),
            &[],
        );
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, false);
        cmd.args(["distcc", "gcc"])
            .args(args)
            .args(["-o", &format!("{stem}-pump.o")]);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{src}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("include server gave up") && err.contains(why),
            "{src}: {err}"
        );
        assert_same_file(
            &work,
            &format!("{stem}-pump.o"),
            &format!("{stem}-local.o"),
            src,
        );
        let local_d = std::fs::read_to_string(work.join(format!("{stem}-local.d"))).unwrap();
        let pump_d = std::fs::read_to_string(work.join(format!("{stem}-pump.d"))).unwrap();
        assert_eq!(pump_d.replace("-pump.o", "-local.o"), local_d, "{src}: .d");
    }
}

/// `#include_next <t.h>` in `w.h` (beside the source, or in a search
/// directory) opens `inc1/t.h`; then a literal absolute `#include` of
/// `inc2/t.h`, which the walk had also reached as a later hit of that
/// `#include_next` (the compiler opens the first hit only). Both headers
/// have `#pragma once`: the walk took the speculative hit as read, skipped
/// the absolute include, and sent the copy without a kept `#line`, so the
/// remote `__FILE__` was the server's climbing name (`../../tmp/…/t.h`),
/// exit 0. The same with a computed include of two possible names. Not
/// covered instead, with the reason; with DISTCC_TESTING_INCLUDE_SERVER=1
/// the compile fails.
#[test]
fn absolute_include_of_a_later_include_next_hit_is_preprocessed_here() {
    let d = our_daemon(&[]);
    let dir = TestDir::new("pump-abs-next-hit");
    let work = dir.join("w");
    for sub in ["inc1", "inc2", "wdir"] {
        std::fs::create_dir_all(work.join(sub)).unwrap();
    }
    let work = std::fs::canonicalize(&work).unwrap();
    let var = |n: &str| {
        format!("#pragma once\nstatic const char *{n} __attribute__((used)) = __FILE__;\n")
    };
    std::fs::write(work.join("inc1/t.h"), var("f1")).unwrap();
    std::fs::write(work.join("inc2/t.h"), var("f2")).unwrap();
    for w in ["w.h", "wdir/w.h"] {
        std::fs::write(work.join(w), "#include_next <t.h>\n").unwrap();
    }
    std::fs::write(
        work.join("u.c"),
        format!(
            "#include \"w.h\"\n#include \"{}/inc2/t.h\"\n",
            work.display()
        ),
    )
    .unwrap();
    // The same through a computed include with two possible names (the
    // analysis cannot decide `__has_builtin`): the compiler opens one.
    std::fs::write(
        work.join("c.c"),
        format!(
            "#if __has_builtin(__builtin_expect)\n#define H \"inc1/t.h\"\n#else\n#define H \"inc2/t.h\"\n#endif\n#include H\n#include \"{}/inc2/t.h\"\n",
            work.display()
        ),
    )
    .unwrap();
    let variants: [(&str, &[&str]); 5] = [
        ("u.c", &["-Iinc1", "-Iinc1/../inc2"]),
        ("u.c", &["-Iinc1", "-Iinc2"]),
        ("c.c", &[]),
        ("u.c", &["-Iwdir", "-Iinc1", "-Iinc1/../inc2"]),
        ("u.c", &["-Iwdir", "-Iinc1", "-Iinc2"]),
    ];
    for (n, (src, flags)) in variants.iter().enumerate() {
        if n >= 3 {
            // w.h found in its search directory, not beside the source.
            std::fs::remove_file(work.join("w.h")).ok();
        }
        let args = [*flags, &["-c", src, "-MD", "-MT", "u.o"]].concat();
        let (local, pumped) = (format!("local{n}"), format!("pump{n}"));
        compile_locally(
            &work,
            "gcc",
            &[&args[..], &["-o", &format!("{local}.o")]].concat(),
            &[],
        );
        for strict in [false, true] {
            let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, strict);
            cmd.args(["distcc", "gcc"])
                .args(&args)
                .args(["-o", &format!("{pumped}.o")]);
            let out = run(&mut cmd);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("include server gave up")
                    && err.contains("through a rewritten absolute include, and as "),
                "{src} {flags:?} strict {strict}: {err}"
            );
            if strict {
                assert!(!out.status.success(), "{src} {flags:?}: {}", show(&out));
                continue;
            }
            assert!(out.status.success(), "{src} {flags:?}: {}", show(&out));
            assert_same_file(
                &work,
                &format!("{pumped}.o"),
                &format!("{local}.o"),
                &format!("{src} {flags:?}"),
            );
            assert_same_file(
                &work,
                &format!("{pumped}.d"),
                &format!("{local}.d"),
                &format!("{src} {flags:?}: .d"),
            );
        }
    }
}

/// `#pragma once` twins (same bytes, same mtime: GCC reads the second as
/// the first) where an earlier unit made one copy keep its `#line` (an
/// absolute include of it): the server would get two different copies and
/// read both (a redefinition error remotely, a discrepancy). Not covered
/// instead, with the reason (sweep AA, D5).
#[test]
fn once_twins_with_one_kept_line_are_preprocessed_here() {
    let dir = TestDir::new("pump-twin-kept");
    let work = dir.join("w");
    for sub in ["inc", "inc2"] {
        std::fs::create_dir_all(work.join(sub)).unwrap();
    }
    let work = std::fs::canonicalize(&work).unwrap();
    let twin = "#pragma once\nint twin = 1;\n";
    std::fs::write(work.join("inc/twin_a.h"), twin).unwrap();
    std::fs::write(work.join("inc2/twin_b.h"), twin).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for f in ["inc/twin_a.h", "inc2/twin_b.h"] {
        set_mtime(&work.join(f), old);
    }
    let inc2 = work.join("inc2");
    std::fs::write(
        work.join("one.c"),
        format!("#include \"{}/twin_b.h\"\n", inc2.display()),
    )
    .unwrap();
    std::fs::write(
        work.join("two.c"),
        "#include <twin_a.h>\n#include <twin_b.h>\n",
    )
    .unwrap();
    let inc2_flag = format!("-I{}", inc2.display());
    let err = second_unit_preprocessed_here(
        &dir,
        &work,
        &["-Iinc", &inc2_flag],
        "are #pragma once twins",
    );
    assert!(!err.contains("discrepancy"), "{err}");
}

/// The same twins where the walk itself did not see the second one read
/// once: its `#pragma once` sits inside an `#ifndef` block, or it is
/// included inside an `#if` the analysis cannot decide (its mark is taken
/// back after the branch). A warm server (the first unit made one copy
/// keep its `#line`) sent the two copies with different bytes, the server
/// read the second again, and the object got a second `__FILE__` variable
/// with exit status 0; a fresh server got the unit right (twins sweep).
#[test]
fn once_twins_the_walk_does_not_mark_are_preprocessed_here() {
    let cat = "#define CAT2(a, b) a##b\n#define CAT(a, b) CAT2(a, b)\n";
    let var = "static const char *CAT(v, __COUNTER__) __attribute__((used)) = __FILE__;\n";
    for (name, twin, include_b) in [
        (
            "nested",
            format!("#ifndef NO_ONCE\n#pragma once\n#endif\n{var}"),
            "#include \"inc/t.h\"\n",
        ),
        (
            "unknown-branch",
            format!("#pragma once\n{var}"),
            "#if __has_builtin(__builtin_expect)\n#include \"inc/t.h\"\n#endif\n",
        ),
    ] {
        let dir = TestDir::new(&format!("pump-twin-unmarked-{name}"));
        let work = dir.join("w");
        for sub in ["inc", "inc2"] {
            std::fs::create_dir_all(work.join(sub)).unwrap();
        }
        let work = std::fs::canonicalize(&work).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for f in ["inc/t.h", "inc2/t.h"] {
            std::fs::write(work.join(f), &twin).unwrap();
            set_mtime(&work.join(f), old);
        }
        let inc2 = work.join("inc2");
        std::fs::write(
            work.join("one.c"),
            format!("{cat}#include \"{}/t.h\"\n", inc2.display()),
        )
        .unwrap();
        std::fs::write(
            work.join("two.c"),
            format!("{cat}#include <t.h>\n{include_b}int two;\n"),
        )
        .unwrap();
        let inc2_flag = format!("-I{}", inc2.display());
        second_unit_preprocessed_here(&dir, &work, &[&inc2_flag], "are #pragma once twins");
    }
}

/// A header an earlier unit reached by a literal absolute `#include` keeps
/// its `#line` in later units too; reached from an `-isystem` header as
/// `/abs/sys/../inc/h.h`, GCC names it by its shorter real path, which a
/// kept `#line` of the spelled name would override: not covered (sweep AA,
/// the family of D2).
#[test]
fn kept_line_on_a_renamed_system_header_is_preprocessed_here() {
    let dir = TestDir::new("pump-sys-renamed");
    let work = dir.join("w");
    for sub in ["inc", "sys"] {
        std::fs::create_dir_all(work.join(sub)).unwrap();
    }
    let work = std::fs::canonicalize(&work).unwrap();
    std::fs::write(work.join("inc/h.h"), "const char *f = __FILE__;\n").unwrap();
    std::fs::write(work.join("sys/s.h"), "#include \"../inc/h.h\"\n").unwrap();
    std::fs::write(
        work.join("one.c"),
        format!("#include \"{}/inc/h.h\"\n", work.display()),
    )
    .unwrap();
    std::fs::write(work.join("two.c"), "#include <s.h>\n").unwrap();
    let sys = format!("{}/sys", work.display());
    second_unit_preprocessed_here(&dir, &work, &["-isystem", &sys], "is a system header here");
}

/// Compiles `one.c`, then `two.c` with `flags`, in `work` under one `pump`
/// session (one include server for both units, as in one build) with our
/// daemon: the second unit must succeed, be preprocessed here with `reason`
/// on the client's line, and give the local object. Returns stderr.
fn second_unit_preprocessed_here(
    dir: &TestDir,
    work: &Path,
    flags: &[&str],
    reason: &str,
) -> String {
    let d = our_daemon(&[]);
    let local: Vec<&str> = [flags, &["-c", "two.c", "-o", "local.o"]].concat();
    compile_locally(work, "gcc", &local, &[]);
    let mut cmd = pump_ours(dir, &d.host(",cpp,lzo"), work, false);
    cmd.args([
        "sh",
        "-c",
        "distcc gcc -c one.c -o one.o && distcc gcc \"$@\" -c two.c -o pump.o",
        "sh",
    ])
    .args(flags);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains(reason), "{err}");
    assert_same_file(work, "pump.o", "local.o", "two.c");
    err
}

/// `-Wp,-MD,FILE` asks the preprocessor itself for the dependency file,
/// which names its target after the source (`a.o`), not after `-o` as the
/// driver's `-MD` does. A pump compile (the server writes the file) gives
/// what a local compile gives, for both forms.
#[test]
fn preprocessor_dependency_file_matches_local() {
    let dir = TestDir::new("pump-wp-md");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(work.join("src/a.c"), "#include \"a.h\"\nint x = A;\n").unwrap();
    std::fs::write(work.join("src/a.h"), "#define A 1\n").unwrap();
    for form in ["-Wp,-MD,{}", "-MD -MF {}"] {
        let dep_args = |name: &str| -> Vec<String> {
            form.replace("{}", name)
                .split(' ')
                .map(String::from)
                .collect()
        };
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
        cmd.args(["distcc", "gcc", "-O2", "-c", "src/a.c", "-o", "pump.o"])
            .args(dep_args("pump.d"));
        let out = run(&mut cmd);
        assert!(out.status.success(), "{form}: {}", show(&out));
        let out = run(Command::new("gcc")
            .args(["-O2", "-c", "src/a.c", "-o", "pump.o"])
            .args(dep_args("local.d"))
            .current_dir(&work));
        assert!(out.status.success(), "{form}: {}", show(&out));
        let pumped = std::fs::read(work.join("pump.d")).unwrap();
        let local = std::fs::read(work.join("local.d")).unwrap();
        assert_eq!(
            dep_words(pumped.clone()),
            dep_words(local.clone()),
            "{form}"
        );
        assert_eq!(
            String::from_utf8(pumped).unwrap(),
            String::from_utf8(local).unwrap(),
            "{form}: lines wrapped as locally"
        );
    }
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
}

/// A header reached through a literal absolute `#include` is opened on the
/// server through a rewritten relative name (`src/../../…/x.h`); the .d file
/// still names it as a local compile does, also when the source is reached
/// through a symlinked directory, with `-MP` phony targets.
/// Several dependency targets (`-MT a -MT b`, `-MT a -MQ b`, glued forms)
/// all reach the `.d` file, with our daemon and with stock's: a server takes
/// the first separate-word `-MT` out of the command, so our client glues
/// them when there is more than one, and our daemon keeps them all for a
/// stock client.
#[test]
fn every_dependency_target_is_kept() {
    require_stock();
    let dir = TestDir::new("pump-many-targets");
    let ours_d = our_daemon(&[]);
    let (_stock, stock_port, _sdir) = stock_pump_daemon();
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("a.c"), "#include \"a.h\"\nint x = A;\n").unwrap();
    std::fs::write(work.join("a.h"), "#define A 1\n").unwrap();
    // (who, hosts, our client?)
    let hosts = [
        ("ours", ours_d.host(",cpp,lzo"), true),
        ("stock", format!("127.0.0.1:{stock_port},cpp,lzo"), true),
        ("stock client, our daemon", ours_d.host(",cpp,lzo"), false),
    ];
    let forms = [
        "-MT t1.o -MT t2.o",
        "-MT t1.o -MQ t$2.o",
        "-MTt1.o -MT t2.o",
        "-MT t1.o",
    ];
    for (who, host, our_client) in &hosts {
        for form in forms {
            let targets: Vec<&str> = form.split(' ').collect();
            let mut cmd = pump_ours(&dir, host, &work, true);
            if !our_client {
                cmd.env("DISTCC_LOCATION", "/usr/bin");
            }
            cmd.args([
                "distcc", "gcc", "-c", "a.c", "-o", "a.o", "-MMD", "-MF", "pump.d",
            ])
            .args(&targets);
            let out = run(&mut cmd);
            assert!(out.status.success(), "{who} {form}: {}", show(&out));
            let mut local = vec!["-c", "a.c", "-o", "a.o", "-MMD", "-MF", "local.d"];
            local.extend(&targets);
            compile_locally(&work, "gcc", &local, &[]);
            assert_same_file(&work, "pump.d", "local.d", &format!("{who} {form}"));
        }
    }
    assert!(ours_d.log().contains("COMPILE_OK"), "{}", ours_d.log());
}

/// The target the client adds for `-MD` without `-MT` is quoted for make
/// as the compiler quotes it locally (`o\ d/a\ b.o`, `a$$b.o`), with our
/// daemon and with stock's.
#[test]
fn added_dependency_target_is_quoted_as_locally() {
    require_stock();
    let dir = TestDir::new("pump-quoted-target");
    let ours_d = our_daemon(&[]);
    let (_stock, stock_port, _sdir) = stock_pump_daemon();
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("o d")).unwrap();
    std::fs::write(work.join("a.c"), "int f(void) { return 1; }\n").unwrap();
    for (who, host) in [
        ("ours", ours_d.host(",cpp,lzo")),
        ("stock", format!("127.0.0.1:{stock_port},cpp,lzo")),
    ] {
        for (object, deps) in [("o d/a b.o", "o d/a b.d"), ("a$b.o", "a$b.d")] {
            compile_locally(&work, "gcc", &["-MD", "-c", "a.c", "-o", object], &[]);
            std::fs::rename(work.join(deps), work.join("local.d")).unwrap();
            let mut cmd = pump_ours(&dir, &host, &work, true);
            cmd.args(["distcc", "gcc", "-MD", "-c", "a.c", "-o", object]);
            let out = run(&mut cmd);
            assert!(out.status.success(), "{who} {object}: {}", show(&out));
            assert_same_file(&work, deps, "local.d", &format!("{who} {object}"));
        }
    }
    assert!(ours_d.log().contains("COMPILE_OK"), "{}", ours_d.log());
}

/// Clang's pump `.d` file is the local one too: wrapped at Clang's
/// columns with the client's paths.
#[test]
fn clang_dependency_file_matches_local() {
    let dir = TestDir::new("pump-clang-dotd");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    // Short names, so that several share a line locally, where the server's
    // longer paths (under its root) would not.
    let inc = dir.join("a");
    std::fs::create_dir_all(&inc).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let mut src = String::new();
    for n in 0..6 {
        std::fs::write(
            inc.join(format!("first_header_{n}.h")),
            format!("int a{n};\n"),
        )
        .unwrap();
        std::fs::write(
            work.join(format!("local_header_{n}.h")),
            format!("int b{n};\n"),
        )
        .unwrap();
        src.push_str(&format!(
            "#include \"first_header_{n}.h\"\n#include \"local_header_{n}.h\"\n"
        ));
    }
    std::fs::write(work.join("m.c"), src).unwrap();
    let inc_flag = format!("-I{}", inc.display());
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args([
        "distcc", "clang", &inc_flag, "-MD", "-MF", "pump.d", "-c", "m.c", "-o", "m.o",
    ]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    let local = [
        &inc_flag[..],
        "-MD",
        "-MF",
        "local.d",
        "-c",
        "m.c",
        "-o",
        "m.o",
    ];
    compile_locally(&work, "clang", &local, &[]);
    assert_same_file(&work, "pump.d", "local.d", "clang");
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
}

#[test]
fn dependency_file_names_absolute_includes_as_local() {
    let dir = TestDir::new("pump-abs-dotd");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("abs/inc")).unwrap();
    let header = dir.join("abs/inc/x.h");
    // Headers found beside it (and above it) are opened on the server
    // through the same climbing name: their __FILE__ and .d names too.
    std::fs::write(&header, "#define X 1\n#include \"beside.h\"\n").unwrap();
    std::fs::write(
        dir.join("abs/inc/beside.h"),
        "#include \"../above.h\"\nstatic const char *beside = __FILE__;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("abs/above.h"),
        "static const char *above = __FILE__;\n",
    )
    .unwrap();
    std::fs::write(
        work.join("src/a.c"),
        format!(
            "#include \"{}\"\n#include \"a.h\"\nint x = X + A;\nconst char *f(int i) {{ return i ? beside : above; }}\n",
            header.display()
        ),
    )
    .unwrap();
    std::fs::write(work.join("src/a.h"), "#define A 1\n").unwrap();
    std::os::unix::fs::symlink(work.join("src"), work.join("lnk")).unwrap();
    let words = |path: std::path::PathBuf| dep_words(std::fs::read(path).unwrap());
    for source in ["src/a.c", "lnk/a.c"] {
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
        cmd.args(["distcc", "gcc", "-O2", "-MD", "-MP", "-c", source])
            .args(["-o", "pump.o", "-MF", "pump.d", "-MT", "a.o"]);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{source}: {}", show(&out));
        let out = run(Command::new("gcc")
            .args([
                "-O2", "-MD", "-MP", "-c", source, "-o", "local.o", "-MF", "local.d", "-MT", "a.o",
            ])
            .current_dir(&work));
        assert!(out.status.success(), "{source}: {}", show(&out));
        assert_eq!(
            std::fs::read(work.join("pump.o")).unwrap(),
            std::fs::read(work.join("local.o")).unwrap(),
            "{source}: __FILE__ strings as locally"
        );
        let pumped = words(work.join("pump.d"));
        assert!(
            pumped.contains(&header.display().to_string()),
            "{source}: {pumped:?}"
        );
        assert_eq!(pumped, words(work.join("local.d")), "{source}");
        // Byte for byte: lines wrapped where the local compiler wraps them.
        assert_eq!(
            String::from_utf8(std::fs::read(work.join("pump.d")).unwrap()).unwrap(),
            String::from_utf8(std::fs::read(work.join("local.d")).unwrap()).unwrap(),
            "{source}"
        );
    }
    assert_eq!(d.log().matches("COMPILE_OK").count(), 2, "{}", d.log());
}

/// An `-MT` text is written verbatim by GCC, blanks and all: the pump-mode
/// `.d` file has it as the local one does (sweep U, D2).
#[test]
fn dependency_targets_keep_their_blanks() {
    let dir = TestDir::new("pump-mt-blanks");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("a.c"), "#include \"a.h\"\nint x = A;\n").unwrap();
    std::fs::write(work.join("a.h"), "#define A 1\n").unwrap();
    for target in ["a  b", " lead", "trail ", "tab\there"] {
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
        cmd.args(["distcc", "gcc", "-MD", "-c", "a.c", "-o", "pump.o"])
            .args(["-MF", "pump.d", "-MT", target]);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{target:?}: {}", show(&out));
        let out = run(Command::new("gcc")
            .args([
                "-MD", "-c", "a.c", "-o", "local.o", "-MF", "local.d", "-MT", target,
            ])
            .current_dir(&work));
        assert!(out.status.success(), "{target:?}: {}", show(&out));
        assert_eq!(
            String::from_utf8(std::fs::read(work.join("pump.d")).unwrap()).unwrap(),
            String::from_utf8(std::fs::read(work.join("local.d")).unwrap()).unwrap(),
            "{target:?}"
        );
    }
    assert_eq!(d.log().matches("COMPILE_OK").count(), 4, "{}", d.log());
}

/// A daemon whose TMPDIR has a blank, `$` and `#` in its name: the
/// compiler writes its paths in make's quoting, and they are taken out of
/// the `.d` file all the same (sweep U, D5; stock sends them).
#[test]
fn daemon_paths_in_make_quoting_leave_the_dependency_file() {
    let dir = TestDir::new("pump-quoted-root");
    let d = our_daemon_tagged("ours tmp$#", &[]);
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("a.c"), "#include \"h.h\"\nint x;\n").unwrap();
    std::fs::write(work.join("h.h"), "int y;\n").unwrap();
    let source = work.join("a.c").display().to_string();
    let object = work.join("a.o").display().to_string();
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args([
        "distcc", "gcc", "-c", &source, "-MD", "-MF", "pump.d", "-o", &object,
    ]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    compile_locally(
        &work,
        "gcc",
        &["-c", &source, "-MD", "-MF", "local.d", "-o", &object],
        &[],
    );
    assert_eq!(
        std::fs::read_to_string(work.join("pump.d")).unwrap(),
        std::fs::read_to_string(work.join("local.d")).unwrap()
    );
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
}

/// Headers found through absolute directories whose names hold `??=` (a
/// trigraph, with `-std=c11`) or a newline: the `#line` the include server
/// writes names them exactly, so `__FILE__` is the local one and the
/// compile does not fail there (sweep U, D9 and D10). The client's own
/// prefix map makes the daemon keep the `#line`.
#[test]
fn line_names_survive_trigraphs_and_newlines() {
    let dir = TestDir::new("pump-line-escapes");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    for sub in ["t??=x", "n\nl"] {
        let inc = work.join(sub);
        std::fs::create_dir_all(&inc).unwrap();
        std::fs::write(inc.join("h.h"), "static const char hf[] = __FILE__;\n").unwrap();
        std::fs::write(
            work.join("a.c"),
            "#include <h.h>\nconst char *f(void) { return hf; }\n",
        )
        .unwrap();
        let inc = inc.display().to_string();
        let opts = [
            "-c",
            "-std=c11",
            "-ffile-prefix-map=/nonexistent=/x",
            "-I",
            &inc,
            "a.c",
        ];
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
        cmd.args(["distcc", "gcc"])
            .args(opts)
            .args(["-o", "pump.o"]);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{sub:?}: {}\n{}", show(&out), d.log());
        compile_locally(&work, "gcc", &[&opts[..], &["-o", "local.o"]].concat(), &[]);
        assert_same_file(&work, "pump.o", "local.o", sub);
    }
    assert_eq!(d.log().matches("COMPILE_OK").count(), 2, "{}", d.log());
}

/// A `.d` file asked for by DEPENDENCIES_OUTPUT alone: GCC names the
/// source's base name with `.o` as the target, whatever `-o` says, and
/// appends to the file; pump mode does the same (sweep U, D11).
#[test]
fn dependencies_output_alone_appends_with_gccs_target() {
    let dir = TestDir::new("pump-depout");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    std::fs::create_dir_all(work.join("o")).unwrap();
    std::fs::write(work.join("sub/x.c"), "#include \"x.h\"\nint x = X;\n").unwrap();
    std::fs::write(work.join("sub/x.h"), "#define X 1\n").unwrap();
    for value in ["dep.d", "dep.d tgt"] {
        for (name, pumped) in [("local", false), ("pump", true)] {
            let file = format!("{name}.d");
            std::fs::write(work.join(&file), "earlier: rule\n").unwrap();
            let env_value = value.replace("dep.d", &file);
            let args = ["-c", "sub/x.c", "-o", "o/y.o"];
            if pumped {
                let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
                cmd.env("DEPENDENCIES_OUTPUT", &env_value)
                    .args(["distcc", "gcc"])
                    .args(args);
                let out = run(&mut cmd);
                assert!(out.status.success(), "{value}: {}", show(&out));
            } else {
                compile_locally(&work, "gcc", &args, &[("DEPENDENCIES_OUTPUT", &env_value)]);
            }
        }
        assert_eq!(
            std::fs::read_to_string(work.join("pump.d")).unwrap(),
            std::fs::read_to_string(work.join("local.d")).unwrap(),
            "{value}"
        );
    }
    assert_eq!(d.log().matches("COMPILE_OK").count(), 2, "{}", d.log());
}

/// An AddressSanitizer unit named by an absolute path (CMake's way): the
/// object records the source path as given, so it is preprocessed here and
/// the server's job directory appears nowhere (sweep U, D13).
#[test]
fn address_sanitized_absolute_sources_name_the_local_path() {
    let dir = TestDir::new("pump-asan");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(
        work.join("src/a.c"),
        "int g[10];\nint f(int i) { return g[i]; }\n",
    )
    .unwrap();
    let source = work.join("src/a.c").display().to_string();
    let opts = ["-fsanitize=address", "-c", &source];
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args(["distcc", "gcc"])
        .args(opts)
        .args(["-o", "pump.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    compile_locally(&work, "gcc", &[&opts[..], &["-o", "local.o"]].concat(), &[]);
    assert_same_file(&work, "pump.o", "local.o", "asan");
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
}

/// An absolute source spelled with `//` or `/./` (a Makefile's
/// `$(srcdir)/./a.c`): GCC names the headers it includes by quote from the
/// directory as spelled, and so do the copies' `#line`s, kept here by the
/// client's own prefix map (sweep U, D14).
#[test]
fn includer_spelling_names_its_headers() {
    let dir = TestDir::new("pump-spelled-dir");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("h.h"), "static const char hf[] = __FILE__;\n").unwrap();
    std::fs::write(
        work.join("a.c"),
        "#include \"h.h\"\nconst char *f(void) { return hf; }\n",
    )
    .unwrap();
    for sep in ["//", "/./"] {
        let source = format!("{}{sep}a.c", work.display());
        let opts = ["-c", "-ffile-prefix-map=/nonexistent=/x", &source];
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
        cmd.args(["distcc", "gcc"])
            .args(opts)
            .args(["-o", "pump.o"]);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{sep}: {}\n{}", show(&out), d.log());
        compile_locally(&work, "gcc", &[&opts[..], &["-o", "local.o"]].concat(), &[]);
        assert_same_file(&work, "pump.o", "local.o", sep);
    }
    assert_eq!(d.log().matches("COMPILE_OK").count(), 2, "{}", d.log());
}

/// A legal tree deeper than 256 directories is served (sweep U, D6: our
/// daemon refused it and the client backed the server off).
#[test]
fn deep_trees_are_served() {
    let dir = TestDir::new("pump-deep");
    let d = our_daemon(&[]);
    let work = dir.join(&"a/".repeat(300));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("m.c"), "#include \"m.h\"\nint m = M;\n").unwrap();
    std::fs::write(work.join("m.h"), "#define M 3\n").unwrap();
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args(["distcc", "gcc", "-c", "m.c", "-o", "pump.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}\n{}", show(&out), d.log());
    compile_locally(&work, "gcc", &["-c", "m.c", "-o", "local.o"], &[]);
    assert_same_file(&work, "pump.o", "local.o", "deep");
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
}

/// The client's own `-ffile-prefix-map` applies in pump mode as it does
/// locally, although the server compiles under its job root: no string in
/// the object names the build directory or the server's root
/// (`__BASE_FILE__` of an absolute source, `__FILE__`, the debug info),
/// and the object is the local one, byte for byte, `-g` included.
#[test]
fn client_prefix_maps_apply_under_the_server_root() {
    let dir = TestDir::new("pump-prefix-map");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::create_dir_all(work.join("inc")).unwrap();
    std::fs::write(work.join("inc/h.h"), "#define HDR __FILE__\n").unwrap();
    std::fs::write(
        work.join("src/m.c"),
        "#include \"h.h\"\nconst char *base = __BASE_FILE__;\nconst char *file = __FILE__;\nconst char *hdr = HDR;\n",
    )
    .unwrap();
    let w = work.display().to_string();
    let source = format!("{w}/src/m.c");
    let args = |out: &str| -> Vec<String> {
        [
            "-O2",
            "-g",
            "-I",
            &format!("{w}/inc"),
            &format!("-ffile-prefix-map={w}=."),
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["-c".into(), source.clone(), "-o".into(), out.into()])
        .collect()
    };
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args(["distcc", "gcc"]).args(args("pump.o"));
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
    let out = run(Command::new("gcc").args(args("local.o")).current_dir(&work));
    assert!(out.status.success(), "{}", show(&out));
    let has = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|x| x == needle.as_bytes());
    let pumped = std::fs::read(work.join("pump.o")).unwrap();
    let local = std::fs::read(work.join("local.o")).unwrap();
    assert!(has(&local, "./src/m.c"), "the local object maps the source");
    for (what, needle) in [("build directory", w.as_str()), ("server root", "distccd_")] {
        assert!(!has(&pumped, needle), "the pump object names the {what}");
    }
    // With the build directory mapped away, nothing else differs.
    assert!(
        pumped == local,
        "the pump object differs from the local one"
    );
}

/// Sanitizers record the file of a global or a check in the object as the
/// file was opened, which no prefix map reaches: a header found through an
/// absolute `-I` keeps the `#line` naming its client path, and the object
/// is the local one (before, AddressSanitizer's global descriptor named
/// the server's job root).
#[test]
fn sanitizer_locations_name_the_client_paths() {
    let dir = TestDir::new("pump-sanitize");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("inc")).unwrap();
    std::fs::write(
        work.join("inc/a.h"),
        "int g_hdr[4];\nstatic inline int at(int *p, int i) { return p[i]; }\n",
    )
    .unwrap();
    std::fs::write(
        work.join("m.c"),
        "#include \"a.h\"\nint g_main[4];\nint f(int i) { return at(g_hdr, i); }\n",
    )
    .unwrap();
    let inc = format!("-I{}", work.join("inc").display());
    for sanitizer in ["-fsanitize=address", "-fsanitize=undefined"] {
        let args = |out: &str| -> Vec<String> {
            ["-O1", sanitizer, &inc, "-c", "m.c", "-o", out]
                .map(String::from)
                .to_vec()
        };
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
        cmd.args(["distcc", "gcc"]).args(args("pump.o"));
        let out = run(&mut cmd);
        assert!(out.status.success(), "{sanitizer}: {}", show(&out));
        compile_locally(
            &work,
            "gcc",
            &args("local.o")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &[],
        );
        assert_same_file(&work, "pump.o", "local.o", sanitizer);
    }
    assert_eq!(d.log().matches("COMPILE_OK").count(), 2, "{}", d.log());
}

/// A header named through a trigraph (`??=include`) is read only when the
/// options turn trigraphs on (`-std=c11`): the include server then gives
/// up on the unit with the reason, and it compiles from local
/// preprocessing, as a local compile would. With `-std=gnu11` the same
/// bytes are no directive, and the unit is covered.
/// `__TIMESTAMP__` (the file's time), and `__DATE__`/`__TIME__` when
/// SOURCE_DATE_EPOCH is set (reproducible builds), would take the server's
/// clock and copy: such units are preprocessed here, with the reason, and
/// give the local object. Without SOURCE_DATE_EPOCH `__DATE__` stays remote.
#[test]
fn clock_macros_fall_back_where_the_server_would_differ() {
    let dir = TestDir::new("pump-clock");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("date.h"),
        "static const char *when = __DATE__ \" \" __TIME__;\n",
    )
    .unwrap();
    std::fs::write(
        work.join("d.c"),
        "#include \"date.h\"\nconst char *f(void) { return when; }\n",
    )
    .unwrap();
    std::fs::write(work.join("t.c"), "const char *stamp = __TIMESTAMP__;\n").unwrap();
    // A name built by pasting (sweep Q, D1).
    std::fs::write(
        work.join("p.c"),
        "#define CAT(a, b) a##b\nconst char *p = CAT(__DA, TE__);\n",
    )
    .unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_577_836_800);
    for f in ["t.c", "date.h", "d.c", "p.c"] {
        set_mtime(&work.join(f), old);
    }
    let compile = |src: &str, out: &str, epoch: bool| {
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, false);
        if epoch {
            cmd.env("SOURCE_DATE_EPOCH", "86400");
        } else {
            cmd.env_remove("SOURCE_DATE_EPOCH");
        }
        cmd.args(["distcc", "gcc", "-O2", "-c", src, "-o", out]);
        run(&mut cmd)
    };
    for (src, epoch, why) in [
        ("t.c", false, "t.c uses __TIMESTAMP__"),
        (
            "d.c",
            true,
            "date.h uses __DATE__ or __TIME__, and SOURCE_DATE_EPOCH is set",
        ),
        (
            "p.c",
            true,
            "p.c uses __DATE__ or __TIME__, and SOURCE_DATE_EPOCH is set",
        ),
    ] {
        let out = compile(src, "pump.o", epoch);
        assert!(out.status.success(), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{}",
            show(&out)
        );
        let local = ["-O2", "-c", src, "-o", "local.o"];
        compile_locally(&work, "gcc", &local, &[("SOURCE_DATE_EPOCH", "86400")]);
        assert_same_file(&work, "pump.o", "local.o", src);
    }
    // SOURCE_DATE_EPOCH set for the compile only, after pump started (as
    // dpkg-buildpackage does), so the include server does not see it: our
    // client does, and preprocesses here (sweep O, D6).
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, false);
    cmd.env_remove("SOURCE_DATE_EPOCH").args([
        "sh",
        "-c",
        "SOURCE_DATE_EPOCH=86400 exec distcc gcc -O2 -c d.c -o late.o",
    ]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH is set"),
        "{}",
        show(&out)
    );
    let local = ["-O2", "-c", "d.c", "-o", "local.o"];
    compile_locally(&work, "gcc", &local, &[("SOURCE_DATE_EPOCH", "86400")]);
    assert_same_file(&work, "late.o", "local.o", "SOURCE_DATE_EPOCH after pump");
    // No SOURCE_DATE_EPOCH: the compile's own time either way, so remote.
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .args(["distcc", "gcc", "-O2", "-c", "d.c", "-o", "now.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
}

/// Objects with debug information built in pump mode are the local ones,
/// byte for byte, with GCC and Clang, DWARF 5 and 4, headers found through
/// relative and absolute `-I` directories: the server maps its job root
/// away with `-fdebug-prefix-map` (stock 3.4 leaves the root in DWARF 5's
/// `.debug_line_str`; a rewrite in place pads it with slashes).
#[test]
fn debug_objects_built_in_pump_mode_are_the_local_ones() {
    let dir = TestDir::new("pump-debug-identical");
    let d = our_daemon(&[]);
    dir.write(
        "w/inc/sub/deep.h",
        "static inline int deep(int x) { return x * 3; }\n",
    );
    dir.write(
        "w/abs/far.h",
        "#include \"sub/deep.h\"\nstatic inline int far(int x) { return deep(x) + 1; }\n",
    );
    dir.write(
        "w/u.c",
        "#include \"far.h\"\n#include <stdio.h>\nint main(void) { printf(\"%d\\n\", far(2)); return 0; }\n",
    );
    let work = dir.join("w");
    let abs = format!("-I{}", work.join("abs").display());
    for cc in ["gcc", "clang"] {
        for dwarf in ["-g", "-gdwarf-4"] {
            let args = ["-O1", dwarf, "-Iinc", abs.as_str(), "-c", "u.c", "-o"];
            let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
            cmd.args(["distcc", cc]).args(args).arg("pump.o");
            let out = run(&mut cmd);
            assert!(out.status.success(), "{cc} {dwarf}: {}", show(&out));
            let mut local = args.to_vec();
            local.push("local.o");
            compile_locally(&work, cc, &local, &[]);
            assert_same_file(&work, "pump.o", "local.o", &format!("{cc} {dwarf}"));
        }
    }
    assert!(d.log().contains("COMPILE_OK"), "{}", d.log());
}

/// In a directory entered through a symlink, a compiler records `$PWD` in
/// debug information, where a pump-mode server would record the physical
/// directory the client sends (sweep L, D13): such a unit is preprocessed
/// here and says why, so the object is the local one, while a unit
/// without debug information still goes through pump mode.
#[test]
fn a_symlinked_directory_keeps_its_name_in_debug_information() {
    let dir = TestDir::new("pump-symlinked-cwd");
    let d = our_daemon(&[]);
    let real = dir.join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(
        real.join("h.h"),
        "static int twice(int q) { return 2 * q; }\n",
    )
    .unwrap();
    std::fs::write(
        real.join("b.c"),
        "#include \"h.h\"\nint bfunc(int q) { return twice(q) + 1; }\n",
    )
    .unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let map = format!("-ffile-prefix-map={}=.", link.display());
    let pwd = link.display().to_string();
    for (flags, strict) in [
        (vec!["-g", "-O2", map.as_str()], false),
        (vec!["-g", "-O2"], false),
        (vec!["-O2", "-g", "-g0"], true),
    ] {
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &link, strict);
        cmd.env("PWD", &pwd)
            .args(["distcc", "gcc"])
            .args(&flags)
            .args(["-c", "b.c", "-o", "pump.o"]);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{flags:?}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.contains("is reached through a symlink"),
            !strict,
            "{flags:?}: {}",
            show(&out)
        );
        let mut local: Vec<&str> = flags.clone();
        local.extend(["-c", "b.c", "-o", "local.o"]);
        compile_locally(&link, "gcc", &local, &[("PWD", pwd.as_str())]);
        assert_same_file(&real, "pump.o", "local.o", &format!("{flags:?}"));
    }
}

/// `#pragma GCC dependency "f"` warns when f is newer than the file, a
/// comparison of times that protocol 3 does not carry: such a unit is
/// preprocessed here, with the reason, so the warning (and with -Werror the
/// failure) is the local one (sweep O, D4: the server saw no difference).
#[test]
fn pragma_dependency_compares_times_here() {
    let dir = TestDir::new("pump-pragma-dep");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("gen")).unwrap();
    std::fs::write(
        work.join("u.c"),
        "#pragma GCC dependency \"gen/parse.y\"\nint u(void) { return 1; }\n",
    )
    .unwrap();
    std::fs::write(work.join("gen/parse.y"), "%token X\n").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    set_mtime(&work.join("u.c"), old);
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, false);
    cmd.args(["distcc", "gcc", "-Werror", "-c", "u.c", "-o", "pump.o"]);
    let out = run(&mut cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(err.contains("older than"), "{}", show(&out));
    assert!(
        err.contains("#pragma GCC dependency"),
        "the reason: {}",
        show(&out)
    );
    assert!(!work.join("pump.o").exists());
    // Not newer: no warning here, none there; the object is the local one.
    set_mtime(
        &work.join("gen/parse.y"),
        old - std::time::Duration::from_secs(60),
    );
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, false);
    cmd.args(["distcc", "gcc", "-Werror", "-c", "u.c", "-o", "pump.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    compile_locally(
        &work,
        "gcc",
        &["-Werror", "-c", "u.c", "-o", "local.o"],
        &[],
    );
    assert_same_file(&work, "pump.o", "local.o", "u.c");
}

/// SUNPRO_DEPENDENCIES is written by the preprocessor from its
/// environment: pump mode steps aside for it (the file is the local one).
#[test]
fn sunpro_dependencies_are_written_as_locally() {
    let dir = TestDir::new("pump-sunpro");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("h.h"), "#define X 1\n").unwrap();
    std::fs::write(
        work.join("a.c"),
        "#include \"h.h\"\nint f(void) { return X; }\n",
    )
    .unwrap();
    let sunpro = [("SUNPRO_DEPENDENCIES", "local.d a.o")];
    compile_locally(&work, "gcc", &["-c", "a.c", "-o", "a.o"], &sunpro);
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, false);
    cmd.env("SUNPRO_DEPENDENCIES", "pump.d a.o")
        .args(["distcc", "gcc", "-c", "a.c", "-o", "a.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SUNPRO_DEPENDENCIES is set"),
        "{}",
        show(&out)
    );
    assert_same_file(&work, "pump.d", "local.d", "SUNPRO_DEPENDENCIES");
}

/// The local compile the trigraph cases are compared with.
const TRIGRAPH_LOCAL: [&str; 8] = [
    "-std=c11",
    "-Wno-trigraphs",
    "-iquote",
    "q",
    "-c",
    "t.c",
    "-o",
    "local.o",
];

#[test]
fn trigraphs_fall_back_with_the_reason() {
    let dir = TestDir::new("pump-trigraph");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    std::fs::create_dir_all(work.join("q")).unwrap();
    std::fs::write(work.join("q/tri.h"), "int tri;\n").unwrap();
    std::fs::write(
        work.join("t.c"),
        "??=include \"tri.h\"\nconst char *s = \"??=\";\nint main(void) { return 0; }\n",
    )
    .unwrap();
    let compile = |std: &str, out: &str| {
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, false);
        cmd.args(["distcc", "gcc", std, "-Wno-trigraphs", "-iquote", "q"])
            .args(["-c", "t.c", "-o", out]);
        run(&mut cmd)
    };
    let out = compile("-std=c11", "c11.o");
    assert!(out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "include server gave up: t.c has a trigraph, and the options turn trigraphs on"
        ),
        "{err}"
    );
    compile_locally(&work, "gcc", &TRIGRAPH_LOCAL, &[]);
    assert_same_file(&work, "c11.o", "local.o", "trigraphs");
    // Without trigraphs `??=include` is not a directive: covered, remote.
    std::fs::write(
        work.join("t.c"),
        "const char *s = \"??=\";\nint main(void) { return 0; }\n",
    )
    .unwrap();
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args(["distcc", "gcc", "-std=gnu11", "-c", "t.c", "-o", "gnu.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    // Trigraphs that only change tokens (`??(` in a comment, as in gtest.h,
    // `??!` in code) leave the directives alone: covered, remote, and the
    // local object under trigraph options.
    std::fs::write(
        work.join("q/tri.h"),
        "// {ASSERT|EXPECT}_??() macros\nint tri??(2??) = { 1 ??! 2 };\n",
    )
    .unwrap();
    std::fs::write(
        work.join("t.c"),
        "#include \"tri.h\"\nint main(void) { return tri[0]; }\n",
    )
    .unwrap();
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args([
        "distcc",
        "gcc",
        "-std=c11",
        "-Wno-trigraphs",
        "-iquote",
        "q",
    ])
    .args(["-c", "t.c", "-o", "tokens.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    compile_locally(&work, "gcc", &TRIGRAPH_LOCAL, &[]);
    assert_same_file(&work, "tokens.o", "local.o", "trigraphs");
}

/// Without a `,cpp` host, `pump CMD` and `pump --startup` say so as stock's
/// pump does (`pump: error: ...`, nothing on stdout for eval) and exit 1.
#[test]
fn no_pump_host_is_an_error_of_pumps_own() {
    let dir = TestDir::new("pump-nocpp");
    let location = bin().parent().unwrap().to_path_buf();
    for args in [&["true"][..], &["--startup"][..]] {
        let out = run(pump(&dir, Some("127.0.0.1:1/4,lzo"))
            .env("DISTCC_LOCATION", &location)
            .args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        if args == ["--startup"] {
            assert!(out.stdout.is_empty(), "{}", show(&out));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "pump: error: pump mode requested, but distcc hosts list does not contain any hosts with ',cpp' option"
            ) && !err.contains("include-server["),
            "{args:?}: {err}"
        );
    }
}

/// INCLUDE_SERVER_ARGS in the forms stock's include server takes (getopt
/// clusters and prefixes, shell quoting through pump's eval) start ours;
/// what stock refuses stops `pump --startup` and `pump CMD` alike (sweep
/// W, D2).
#[test]
fn include_server_args_as_stock_reads_them() {
    let dir = TestDir::new("pump-isargs");
    let location = bin().parent().unwrap().to_path_buf();
    let good =
        r#"-sv --unsafe --no_f --stat_reset_triggers="a b" --path_observation_re='x y' extra"#;
    let out = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo"))
        .env("DISTCC_LOCATION", &location)
        .env("INCLUDE_SERVER_ARGS", good)
        .arg("--startup"));
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let shutdown = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo"))
        .env("DISTCC_LOCATION", &location)
        .env(
            "INCLUDE_SERVER_PID",
            export_value(&stdout, "INCLUDE_SERVER_PID"),
        )
        .env(
            "INCLUDE_SERVER_DIR",
            export_value(&stdout, "INCLUDE_SERVER_DIR"),
        )
        .env(
            "INCLUDE_SERVER_PORT",
            export_value(&stdout, "INCLUDE_SERVER_PORT"),
        )
        .arg("--shutdown"));
    assert!(shutdown.status.success(), "{}", show(&shutdown));
    for bad in [
        "--bogus",
        "-dx",
        "--email_bound=x",
        "--simple_algorithm",
        "'open",
    ] {
        for args in [&["true"][..], &["--startup"][..]] {
            let out = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo"))
                .env("DISTCC_LOCATION", &location)
                .env("INCLUDE_SERVER_ARGS", bad)
                .args(args));
            assert_eq!(out.status.code(), Some(1), "{bad} {args:?}: {}", show(&out));
            assert!(
                String::from_utf8_lossy(&out.stderr)
                    .contains("Could not start distcc-pump include server"),
                "{bad} {args:?}: {}",
                show(&out)
            );
        }
    }
}

/// A DISTCC_MAX_DISCREPANCY below 1 stops pump at once, with stock's
/// message, for `pump CMD` and `pump --startup` alike (sweep W, D7).
#[test]
fn bad_max_discrepancy_stops_pump() {
    let dir = TestDir::new("pump-maxdisc");
    let location = bin().parent().unwrap().to_path_buf();
    for args in [&["true"][..], &["--startup"][..]] {
        let out = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo"))
            .env("DISTCC_LOCATION", &location)
            .env("DISTCC_MAX_DISCREPANCY", "0")
            .args(args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        assert!(out.stdout.is_empty(), "{args:?}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(
                "pump: Bad DISTCC_MAX_DISCREPANCY value: \"0\". Needs to be 1 or greater."
            ),
            "{args:?}: {}",
            show(&out)
        );
    }
}

/// Two copies of a `#pragma once` header with the same bytes: GCC reads the
/// second again when its mtime differs (both are in the `.d` file), and
/// skips it when the mtimes agree. Pump mode does the same with our daemon
/// and with stock's, though protocol 3 carries no mtimes.
#[test]
fn identical_once_copies_are_read_as_locally() {
    let dir = TestDir::new("pump-once-twins");
    let ours = our_daemon(&[]);
    let stock = stock_daemon(&[]);
    let work = dir.join("w");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(work.join(sub)).unwrap();
        std::fs::write(
            work.join(sub).join("t.h"),
            "#pragma once\n#ifndef T_H\n#define T_H\nstruct twin { int x; };\n#endif\n",
        )
        .unwrap();
    }
    std::fs::write(
        work.join("m.c"),
        "#include \"a/t.h\"\n#include \"b/t.h\"\nint f(struct twin *p) { return p->x; }\n",
    )
    .unwrap();
    let set_mtime = |name: &str, secs: u64| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let f = std::fs::File::options()
            .write(true)
            .open(work.join(name))
            .unwrap();
        f.set_modified(t).unwrap();
    };
    // Other mtimes (both copies read), one mtime (read once), other ones.
    for (round, b_secs) in [(0, 1_700_000_005), (1, 1_700_000_000), (2, 1_700_000_009)] {
        set_mtime("a/t.h", 1_700_000_000);
        set_mtime("b/t.h", b_secs);
        compile_locally(&work, "gcc", &["-MD", "-c", "m.c", "-o", "local.o"], &[]);
        let local = std::fs::read_to_string(work.join("local.d")).unwrap();
        assert_eq!(
            local.contains("b/t.h"),
            b_secs != 1_700_000_000,
            "round {round}, GCC's own rule: {local}"
        );
        for (peer, d) in [("ours", &ours), ("stock", &stock)] {
            let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
            cmd.args(["distcc", "gcc", "-MD", "-c", "m.c", "-o", "pump.o"]);
            let out = run(&mut cmd);
            assert!(
                out.status.success(),
                "round {round}, {peer}: {}",
                show(&out)
            );
            assert_same_file(
                &work,
                "pump.o",
                "local.o",
                &format!("round {round}, {peer}"),
            );
            let pumped = std::fs::read_to_string(work.join("pump.d")).unwrap();
            assert_eq!(
                dep_words(pumped.into_bytes())[1..],
                dep_words(local.clone().into_bytes())[1..],
                "round {round}, {peer}"
            );
        }
    }
}

/// Identical files with other mtimes and no `#pragma once` go with their
/// own bytes: Clang's DWARF 5 line table records each file's MD5, and
/// `-Wnewline-eof` looks at the last byte (sweep U, D3). In a unit with
/// `#import`, GCC compares every file it reads with the earlier ones, so
/// there the copies are told apart as locally.
#[test]
fn identical_copies_keep_their_bytes_unless_gcc_could_merge_them() {
    let dir = TestDir::new("pump-twins-bytes");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(work.join(sub)).unwrap();
        // No final newline.
        std::fs::write(work.join(sub).join("u.h"), "extern int shared;").unwrap();
    }
    std::fs::write(
        work.join("m.c"),
        "#include \"a/u.h\"\n#include \"b/u.h\"\nint shared = 1;\n",
    )
    .unwrap();
    std::fs::write(
        work.join("i.c"),
        "#import \"a/u.h\"\n#import \"b/u.h\"\nint shared = 1;\n",
    )
    .unwrap();
    for (sub, secs) in [("a", 1_700_000_000), ("b", 1_700_000_007)] {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let f = std::fs::File::options()
            .write(true)
            .open(work.join(sub).join("u.h"))
            .unwrap();
        f.set_modified(t).unwrap();
    }
    let flags = ["-g", "-gdwarf-5", "-Wnewline-eof", "-c", "m.c"];
    compile_locally(
        &work,
        "clang",
        &[&flags[..], &["-o", "local.o"]].concat(),
        &[],
    );
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args(["distcc", "clang"])
        .args(flags)
        .args(["-o", "pump.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    // The directories differ (padded with slashes, see the README); the
    // files' MD5 sums must not.
    let md5s = |obj: &str| -> Vec<String> {
        let out = run(Command::new("readelf")
            .args(["--debug-dump=line", obj])
            .current_dir(&work));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .find(|w| w.len() == 34 && w.starts_with("0x"))
            })
            .map(String::from)
            .collect()
    };
    let local_md5s = md5s("local.o");
    assert!(!local_md5s.is_empty());
    assert_eq!(md5s("pump.o"), local_md5s, "clang -g, MD5 of the files");
    let warned = String::from_utf8_lossy(&out.stderr)
        .matches("no newline")
        .count();
    assert_eq!(warned, 2, "{}", show(&out));
    // #import: both copies read (other mtimes), as locally.
    let flags = ["-Wno-deprecated", "-MD", "-c", "i.c"];
    compile_locally(
        &work,
        "gcc",
        &[&flags[..], &["-o", "local.o"]].concat(),
        &[],
    );
    let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
    cmd.args(["distcc", "gcc"])
        .args(flags)
        .args(["-o", "pump.o"]);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    let local = std::fs::read(work.join("local.d")).unwrap();
    assert!(String::from_utf8_lossy(&local).contains("b/u.h"));
    assert_eq!(
        dep_words(std::fs::read(work.join("pump.d")).unwrap())[1..],
        dep_words(local)[1..]
    );
    assert_eq!(d.log().matches("COMPILE_OK").count(), 2, "{}", d.log());
}

/// The server `pump --startup` leaves running holds none of the caller's
/// other descriptors (a pipe a caller waits on, a make jobserver).
#[test]
fn startup_server_holds_no_descriptor_of_the_caller() {
    let dir = TestDir::new("pump-startup-fds");
    let held = std::fs::File::create(dir.join("held")).unwrap();
    let mut cmd = pump(&dir, Some("127.0.0.1:1,cpp,lzo"));
    cmd.arg("--startup");
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = held.as_raw_fd();
    // SAFETY: only dup2 between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 leaves the copy without close-on-exec, as a shell's
            // `exec 7>file` does.
            if libc::dup2(fd, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |n: &str| export_value(&stdout, n);
    let pid: i32 = value("INCLUDE_SERVER_PID").parse().unwrap();
    let holds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .any(|target| target == dir.join("held"));
    let out = run(pump(&dir, None)
        .arg("--shutdown")
        .env("INCLUDE_SERVER_PID", pid.to_string())
        .env("INCLUDE_SERVER_DIR", value("INCLUDE_SERVER_DIR")));
    assert!(out.status.success(), "{}", show(&out));
    assert!(!holds, "the include server holds the caller's descriptor 7");
}

/// A TMPDIR that does not exist: pump's error names it.
#[test]
fn a_missing_tmpdir_is_named() {
    let dir = TestDir::new("pump-notmp");
    let missing = dir.join("no-such-tmp");
    let out = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo"))
        .env("TMPDIR", &missing)
        .args(["true"]));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pump: error:") && err.contains(&missing.display().to_string()),
        "{}",
        show(&out)
    );
}

/// Two copies of a `#pragma once` header with the same bytes and mtime:
/// Clang tells them apart by file and reads both, GCC takes them for one.
/// The server gives each name a file of its own, with the same mtime, so
/// both compilers do there what they do locally.
#[test]
fn same_mtime_once_copies_are_read_as_each_compiler_does() {
    let dir = TestDir::new("pump-once-clang");
    let d = our_daemon(&[]);
    let work = dir.join("w");
    let header = "#pragma once\n#ifdef SEEN\n#define TWICE 1\n#endif\n#define SEEN 1\n";
    for sub in ["d1", "d2"] {
        std::fs::create_dir_all(work.join(sub)).unwrap();
        std::fs::write(work.join(sub).join("t.h"), header).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        std::fs::File::options()
            .write(true)
            .open(work.join(sub).join("t.h"))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    std::fs::write(
        work.join("a.c"),
        "#include \"d1/t.h\"\n#include \"d2/t.h\"\n#ifdef TWICE\nint v = 2;\n#else\nint v = 1;\n#endif\n",
    )
    .unwrap();
    for cc in ["clang", "gcc"] {
        // Twice, so that the second job finds the files kept in its tree.
        for round in 0..2 {
            let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
            cmd.args(["distcc", cc, "-c", "a.c", "-o", "pump.o"]);
            let out = run(&mut cmd);
            assert!(out.status.success(), "{cc} {round}: {}", show(&out));
            compile_locally(&work, cc, &["-c", "a.c", "-o", "local.o"], &[]);
            assert_same_file(&work, "pump.o", "local.o", &format!("{cc} round {round}"));
        }
    }
}

/// Same-bytes, same-mtime `#pragma once` copies, one found through an
/// absolute `-I`: the include server sends that one with a `#line` naming
/// its path, so the two copies differ on the wire. The daemon takes the
/// line out, and both must then get one mtime, also when one is kept from
/// an earlier job (sweep J, D7: GCC on the server read both, a second
/// symbol in the object).
#[test]
fn once_copies_through_an_absolute_directory_are_read_once() {
    let dir = TestDir::new("pump-once-abs");
    let d = our_daemon(&["--jobs", "1"]);
    let work = dir.join("w");
    let header = "#pragma once\n#define C2(a,b) a##b\n#define C(a,b) C2(a,b)\n\
                  __attribute__((used)) static const char C(s_, __COUNTER__)[] = \"twin\";\n";
    for (sub, name) in [("inc", "twin_a.h"), ("inc2", "twin_b.h")] {
        std::fs::create_dir_all(work.join(sub)).unwrap();
        std::fs::write(work.join(sub).join(name), header).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_704_110_400);
        std::fs::File::options()
            .write(true)
            .open(work.join(sub).join(name))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    std::fs::write(work.join("first.c"), "#include \"twin_a.h\"\n").unwrap();
    std::fs::write(
        work.join("m.c"),
        "#include \"twin_a.h\"\n#include \"twin_b.h\"\n",
    )
    .unwrap();
    let abs = format!("-I{}", work.join("inc2").display());
    let compile = |src: &str, out: &str| {
        let mut cmd = pump_ours(&dir, &d.host(",cpp,lzo"), &work, true);
        cmd.args(["distcc", "gcc", "-Iinc", &abs, "-c", src, "-o", out]);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{src}: {}", show(&out));
    };
    // The first job leaves twin_a.h in the daemon's tree; the next one
    // writes twin_b.h a second later.
    compile("first.c", "first.o");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    compile("m.c", "pump.o");
    compile_locally(
        &work,
        "gcc",
        &["-Iinc", &abs, "-c", "m.c", "-o", "local.o"],
        &[],
    );
    assert_same_file(&work, "pump.o", "local.o", "m.c");
}

/// `pump --shutdown` signals only an include server: a stale or mistyped
/// INCLUDE_SERVER_PID naming another process leaves it alone and says so
/// (stock sends it SIGTERM); a command pump cannot run gives the shell's
/// 127 (sweep O, doubtful points 3 and 4).
#[test]
fn shutdown_spares_other_processes_and_missing_commands_are_127() {
    let dir = TestDir::new("pump-foreign-pid");
    let mut other = Guard::spawn(
        {
            let mut c = Command::new("sleep");
            c.arg("30");
            c
        },
        "sleep",
    );
    let out = run(pump(&dir, None)
        .arg("--shutdown")
        .env("INCLUDE_SERVER_PID", other.pid().to_string())
        .env("INCLUDE_SERVER_DIR", dir.join("nosuchdir")));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a distcc-pump include server"),
        "{}",
        show(&out)
    );
    assert!(other.alive(), "pump --shutdown killed an unrelated process");
    let out = run(pump(&dir, Some("127.0.0.1:1,cpp,lzo")).arg("/nonexistent/command"));
    assert_eq!(out.status.code(), Some(127), "{}", show(&out));
}

/// `pump --shutdown` removes the session's own files and then its
/// directory only when that leaves it empty: an `INCLUDE_SERVER_DIR` that
/// names some other directory (a stale or mistyped value) keeps everything
/// that is not a session file (stock's `rm -rf` would take it all).
#[test]
fn shutdown_removes_only_the_session_files() {
    let dir = TestDir::new("pump-shutdown-dir");
    let other = dir.join("precious");
    std::fs::create_dir_all(other.join("sub")).unwrap();
    std::fs::write(other.join("sub/keep.h"), "int keep;\n").unwrap();
    std::fs::write(other.join("stdout"), "session output\n").unwrap();
    let out = run(pump(&dir, None)
        .arg("--shutdown")
        .env("INCLUDE_SERVER_DIR", &other)
        .env_remove("INCLUDE_SERVER_PID"));
    assert!(out.status.success(), "{}", show(&out));
    assert!(other.join("sub/keep.h").is_file(), "{}", show(&out));
    assert!(
        !other.join("stdout").exists(),
        "a session file is removed (and shown)"
    );
}
