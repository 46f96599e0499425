//! `distcc --install-links DIR` and `--install-links --compilers DIR`: the
//! links exist, point at the binary, dispatch to the right applet, and the
//! compiler set is what Debian's update-distcc-symlinks makes from PATH.

use crate::util::{TestDir, bin, ours, run, show};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn links_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in &names {
        let target = std::fs::read_link(dir.join(n)).unwrap();
        assert_eq!(
            std::fs::canonicalize(target).unwrap(),
            std::fs::canonicalize(bin()).unwrap(),
            "{n}"
        );
    }
    names
}

#[test]
fn applet_links_dispatch() {
    let t = TestDir::new("links");
    let dir = t.join("bin");
    for _ in 0..2 {
        let out = run(ours("distcc").arg("--install-links").arg(&dir));
        assert!(out.status.success(), "{}", show(&out));
    }
    assert_eq!(
        links_in(&dir),
        [
            "distcc",
            "distcc-pump",
            "distccd",
            "distccmon-text",
            "include-server",
            "lsdistcc",
            "pump"
        ]
    );
    // Through the link, argv[0] selects the applet.
    let out = run(Command::new(dir.join("lsdistcc")).arg("--help"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Usage: lsdistcc"));
    let out = run(Command::new(dir.join("distcc-pump")).arg("--help"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("pump"),
        "{}",
        show(&out)
    );
}

#[test]
fn compiler_links_follow_path() {
    let t = TestDir::new("links-cc");
    let fake = t.join("fakebin");
    for name in [
        "gcc",
        "g++",
        "cc",
        "gcc-12",
        "x86_64-linux-gnu-gcc-12",
        "x86_64-linux-gnu-g++",
        "clang",
        "clang++-16",
        "gcc-ar-12",
        "x86_64-linux-gnu-gcc-ar",
        "ld",
        "notacompiler",
    ] {
        let p = t.write(&format!("fakebin/{name}"), "#!/bin/sh\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Not executable: not a compiler.
    t.write("fakebin/gcc-11", "");
    let dir = t.join("masq");
    let out = run(ours("distcc")
        .args(["--install-links", "--compilers"])
        .arg(&dir)
        .env("PATH", &fake));
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        links_in(&dir),
        [
            "cc",
            "clang",
            "clang++-16",
            "g++",
            "gcc",
            "gcc-12",
            "x86_64-linux-gnu-g++",
            "x86_64-linux-gnu-gcc-12"
        ]
    );
    // A real file in the way is not replaced.
    std::fs::remove_file(dir.join("gcc")).unwrap();
    std::fs::write(dir.join("gcc"), "keep").unwrap();
    let out = run(ours("distcc")
        .args(["--install-links", "--compilers"])
        .arg(&dir)
        .env("PATH", &fake));
    assert!(!out.status.success());
    assert_eq!(std::fs::read(dir.join("gcc")).unwrap(), b"keep");
}

#[test]
fn real_path_gives_the_same_set_as_debian() {
    let t = TestDir::new("links-real");
    let dir = t.join("masq");
    let out = run(ours("distcc")
        .args(["--install-links", "--compilers"])
        .arg(&dir)
        .env("PATH", "/usr/bin:/bin"));
    assert!(out.status.success(), "{}", show(&out));
    let ours_set = links_in(&dir);
    assert!(ours_set.contains(&"gcc".to_string()) && ours_set.contains(&"cc".to_string()));
    // Debian's update-distcc-symlinks made /usr/lib/distcc from the same
    // compilers (the distcc package is installed by scripts/test).
    if Path::new("/usr/lib/distcc/gcc").exists() {
        let mut stock: Vec<String> = std::fs::read_dir("/usr/lib/distcc")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        stock.sort();
        assert_eq!(ours_set, stock);
    }
}

#[test]
fn missing_directory_is_a_usage_error() {
    let out = run(ours("distcc").arg("--install-links"));
    assert_eq!(out.status.code(), Some(101), "{}", show(&out));
}

/// The binary installed as `DIR/distcc` makes the other links beside
/// itself and leaves itself alone; another real file of a link's name is
/// still refused.
#[test]
fn links_beside_the_binary_itself() {
    let t = TestDir::new("links-self");
    let dir = t.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let me = dir.join("distcc");
    std::fs::copy(bin(), &me).unwrap();
    let out = run(Command::new(&me).arg("--install-links").arg(&dir));
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !std::fs::symlink_metadata(&me)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    for name in ["distccd", "pump", "distcc-pump", "lsdistcc"] {
        let target = std::fs::read_link(dir.join(name)).unwrap();
        assert_eq!(
            std::fs::canonicalize(target).unwrap(),
            std::fs::canonicalize(&me).unwrap()
        );
    }
    std::fs::remove_file(dir.join("pump")).unwrap();
    std::fs::write(dir.join("pump"), "not ours").unwrap();
    let out = run(Command::new(&me).arg("--install-links").arg(&dir));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a symlink"),
        "{}",
        show(&out)
    );
}
