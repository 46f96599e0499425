//! The SSH transport against a real sshd on loopback, protocols 1, 2 and 3.
//!
//! The test starts `/usr/sbin/sshd -D` (needs root) with its own config,
//! host key and authorized key in a temp directory, and a throw-away client
//! key; `DISTCC_SSH` carries `-i key -p PORT`. The remote command is a
//! small wrapper around stock `/usr/bin/distccd` or ours that adds a log
//! file, so the test can see that the job really ran over ssh.

use crate::client::*;
use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Sshd {
    _guard: Guard,
    port: u16,
    dir: TestDir,
}

fn keygen(path: &std::path::Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

fn start_sshd() -> Sshd {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the sshd test needs root");
    assert!(
        std::path::Path::new("/usr/sbin/sshd").exists(),
        "openssh-server is not installed"
    );
    // sshd insists on its privilege-separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let dir = TestDir::new("sshd");
    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o777)).unwrap();
    keygen(&dir.join("hostkey"));
    keygen(&dir.join("id"));
    std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).unwrap();
    for _ in 0..5 {
        let port = free_port();
        let config = dir.write(
            "sshd_config",
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n\
                 StrictModes no\nPidFile {pid}\n",
                hk = dir.join("hostkey").display(),
                ak = dir.join("authorized_keys").display(),
                pid = dir.join("sshd.pid").display(),
            ),
        );
        let mut cmd = Command::new("/usr/sbin/sshd");
        cmd.arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap());
        let mut guard = Guard::spawn(cmd, "sshd");
        if wait_for_port("127.0.0.1", port, Duration::from_secs(10)) {
            return Sshd {
                _guard: guard,
                port,
                dir,
            };
        }
        assert!(!guard.alive(), "sshd runs but does not listen");
    }
    panic!("could not start sshd");
}

/// Compiles over ssh with `daemon` (a shell command prefix) as distccd.
fn over_ssh(daemon: &str) {
    let sshd = start_sshd();
    let wrapper = sshd.dir.write(
        "distccd-wrapper",
        format!(
            "#!/bin/sh\nexec {daemon} \"$@\" --verbose --log-file {} 2>/dev/null\n",
            sshd.dir.join("distccd.log").display()
        ),
    );
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ssh = format!(
        "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        sshd.dir.join("id").display(),
        sshd.port
    );
    let is_dir = TestDir::new("sshis");
    let (_is, socket) = include_server(&is_dir);
    for (n, spec) in [
        format!("@127.0.0.1:{}", wrapper.display()),
        format!("root@127.0.0.1:{},lzo", wrapper.display()),
        format!("@127.0.0.1:{},cpp,lzo", wrapper.display()),
    ]
    .iter()
    .enumerate()
    {
        let dir = TestDir::new("sshc");
        dir.write(
            "t.c",
            "#include <stdio.h>\nint main(void) { puts(\"ssh\"); return 0; }\n",
        );
        let out = run(client(&dir, spec)
            .env("DISTCC_SSH", &ssh)
            .env("INCLUDE_SERVER_PORT", &socket)
            .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
            .args(["gcc", "-O2", "-c", "t.c", "-o", "t.o"]));
        assert_quiet_ok(&out);
        // distccd logs its summary after replying: wait (bounded) for it.
        let read_log = || std::fs::read_to_string(sshd.dir.join("distccd.log")).unwrap_or_default();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while read_log().matches("COMPILE_OK").count() < n + 1
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = read_log();
        assert_eq!(
            log.matches("COMPILE_OK").count(),
            n + 1,
            "not compiled over ssh: {log}\nsshd: {}",
            std::fs::read_to_string(sshd.dir.join("sshd.log")).unwrap_or_default()
        );
        assert!(
            local(&dir, &["gcc", "-O2", "-c", "t.c", "-o", "l.o"])
                .status
                .success()
        );
        assert_eq!(read(&dir.join("t.o")), read(&dir.join("l.o")));
        // The ssh lock file name has no port.
        assert!(dir.join("distccdir/lock/cpu_ssh_127.0.0.1_0").exists());
    }
    // Another pump-mode unit: its file list is written over the memory
    // file the last one released once its daemon answered through ssh.
    let dir = TestDir::new("sshc");
    dir.write("w.h", "#define WORDS \"over ssh again\"\n");
    dir.write(
        "u.c",
        "#include <stdio.h>\n#include \"w.h\"\nint main(void) { puts(WORDS); return 0; }\n",
    );
    let out = run(
        client(&dir, &format!("@127.0.0.1:{},cpp,lzo", wrapper.display()))
            .env("DISTCC_SSH", &ssh)
            .env("INCLUDE_SERVER_PORT", &socket)
            .env("DISTCC_TESTING_INCLUDE_SERVER", "1")
            .env("DISTCC_FALLBACK", "0")
            .env("DISTCC_SKIP_LOCAL_RETRY", "1")
            .args(["gcc", "-O2", "-c", "u.c", "-o", "u.o"]),
    );
    assert_quiet_ok(&out);
    assert!(
        local(&dir, &["gcc", "-O2", "-c", "u.c", "-o", "l.o"])
            .status
            .success()
    );
    assert_eq!(read(&dir.join("u.o")), read(&dir.join("l.o")));
}

#[test]
fn compile_over_ssh_with_stock_distccd() {
    over_ssh("/usr/bin/distccd");
}

#[test]
fn compile_over_ssh_with_our_distccd() {
    over_ssh(&format!("'{}' distccd", bin().display()));
}

/// The binary dropped on a server under its own name (`distcc`) serves
/// `@host:/path/to/distcc`, which ssh runs as `/path/to/distcc --inetd`.
#[test]
fn compile_over_ssh_with_the_binary_under_its_own_name() {
    over_ssh(&format!("'{}'", bin().display()));
}

#[test]
fn ssh_failure_falls_back() {
    let dir = TestDir::new("sshfail");
    dir.write("t.c", "int x;\n");
    let log = dir.join("log");
    let out = run(client(&dir, "@127.0.0.1")
        .env("DISTCC_FALLBACK", "1")
        .env("DISTCC_LOG", &log)
        .env("DISTCC_SSH", "/bin/false")
        .args(["gcc", "-c", "t.c"]));
    assert_quiet_ok(&out);
    assert!(dir.join("t.o").exists());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("running locally instead"), "{text}");
    // The reason is ssh's ending, not a server's refusal.
    assert!(text.contains("ssh exited with status 1"), "{text}");
    // The same when ssh took the request and ended without an answer.
    let ssh = dir.write(
        "dropssh",
        "#!/bin/sh\ntimeout 0.3 cat >/dev/null\nexit 255\n",
    );
    std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run(client(&dir, "@127.0.0.1")
        .env("DISTCC_FALLBACK", "1")
        .env("DISTCC_LOG", &log)
        .env("DISTCC_SSH", &ssh)
        .env("DISTCC_BACKOFF_PERIOD", "0")
        .args(["gcc", "-c", "t.c"]));
    assert_quiet_ok(&out);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("no answer over ssh (ssh exited with status 255)"),
        "{text}"
    );
}
