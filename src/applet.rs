//! The applet table and argv[0] dispatch of the multi-call binary.
//!
//! One executable serves as `distcc`, `distccd`, `pump`, `lsdistcc`,
//! `include-server`, `distccmon-text`, and as any compiler name (masquerade).
//! [`select`] is pure: it maps an argv to an [`Invocation`] and the binary
//! root (`applets/main.rs`) runs it.

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// The programs this binary can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applet {
    /// The client front end, `distcc [COMPILER] ARGS` (explicit or implicit mode).
    Client,
    /// The client masquerading as a compiler (argv[0] is `gcc`, `cc`, ...).
    Masquerade,
    /// The build-server daemon.
    Daemon,
    /// `pump`: runs a command with an include server.
    Pump,
    /// `lsdistcc`: finds live servers.
    Lsdistcc,
    /// The include server in the foreground.
    IncludeServer,
    /// `distccmon-text`: shows running jobs from the client state files.
    Monitor,
    /// `distcc --install-links DIR`: creates the applet and compiler links.
    InstallLinks,
}

/// Names that select an applet exactly, and the applet links
/// `--install-links` creates.
pub const APPLET_NAMES: &[(&str, Applet)] = &[
    ("distccd", Applet::Daemon),
    ("pump", Applet::Pump),
    ("distcc-pump", Applet::Pump),
    ("lsdistcc", Applet::Lsdistcc),
    ("include-server", Applet::IncludeServer),
    ("include_server", Applet::IncludeServer),
    ("distccmon-text", Applet::Monitor),
];

/// Applet links made by `distcc --install-links DIR` (one name per applet,
/// and `distcc-pump` as Debian calls `pump`).
pub const LINK_NAMES: &[&str] = &[
    "distcc",
    "distccd",
    "pump",
    "distcc-pump",
    "lsdistcc",
    "include-server",
    "distccmon-text",
];

/// What to run: an applet, the name it was called by, and its arguments
/// (without argv[0]).
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The applet to run.
    pub applet: Applet,
    /// argv[0] as given (for masquerade this is the compiler name and path;
    /// run as `distcc APPLET`, the applet's name).
    pub argv0: OsString,
    /// argv[0] of the process: the program as it was started (for `distcc
    /// APPLET`, the `distcc`, where `argv0` is only the applet's name).
    pub started_as: OsString,
    /// The remaining arguments.
    pub args: Vec<OsString>,
}

/// The applet for a program name (the file name of argv[0]).
pub fn applet_for_name(name: &OsStr) -> Applet {
    if let Some(&(_, applet)) = APPLET_NAMES.iter().find(|(n, _)| OsStr::new(n) == name) {
        return applet;
    }
    if name.as_encoded_bytes().windows(6).any(|w| w == b"distcc") {
        Applet::Client
    } else {
        Applet::Masquerade
    }
}

/// Chooses the applet for a full argv. `distcc <applet> ARGS` runs an applet
/// without a link (busybox style), so a single static file works as
/// `./distcc distccd --daemon`.
pub fn select(mut argv: Vec<OsString>) -> Invocation {
    if argv.is_empty() {
        argv.push(OsString::from("distcc"));
    }
    let argv0 = argv.remove(0);
    // file_name, not file_stem: `gcc-12.2` must stay `gcc-12.2`.
    let name = Path::new(&argv0)
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| argv0.clone());
    let applet = applet_for_name(&name);
    if applet == Applet::Client && argv.first().is_some_and(|a| a == "--install-links") {
        argv.remove(0);
        return Invocation {
            applet: Applet::InstallLinks,
            started_as: argv0.clone(),
            argv0,
            args: argv,
        };
    }
    // `@host:/opt/distcc` in a host list runs `/opt/distcc --inetd` over
    // ssh: the binary dropped on a server under its own name serves that.
    if applet == Applet::Client && argv.first().is_some_and(|a| a == "--inetd") {
        return Invocation {
            applet: Applet::Daemon,
            argv0: OsString::from("distccd"),
            started_as: argv0,
            args: argv,
        };
    }
    if applet == Applet::Client
        && let Some(first) = argv.first()
        && let Some(&(_, sub)) = APPLET_NAMES.iter().find(|(n, _)| OsStr::new(n) == first)
    {
        let sub_name = argv.remove(0);
        return Invocation {
            applet: sub,
            argv0: sub_name,
            started_as: argv0,
            args: argv,
        };
    }
    Invocation {
        applet,
        started_as: argv0.clone(),
        argv0,
        args: argv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(words: &[&str]) -> Invocation {
        select(words.iter().map(OsString::from).collect())
    }

    #[test]
    fn exact_applet_names() {
        assert_eq!(
            sel(&["/usr/sbin/distccd", "--daemon"]).applet,
            Applet::Daemon
        );
        assert_eq!(sel(&["pump", "make"]).applet, Applet::Pump);
        assert_eq!(sel(&["lsdistcc"]).applet, Applet::Lsdistcc);
        assert_eq!(sel(&["include_server"]).applet, Applet::IncludeServer);
        assert_eq!(sel(&["include-server"]).applet, Applet::IncludeServer);
        assert_eq!(sel(&["distccmon-text", "1"]).applet, Applet::Monitor);
    }

    #[test]
    fn client_and_masquerade() {
        assert_eq!(sel(&["distcc", "gcc", "-c", "x.c"]).applet, Applet::Client);
        assert_eq!(sel(&["/opt/bin/my-distcc-2"]).applet, Applet::Client);
        let m = sel(&["/usr/lib/distcc/gcc-12.2", "-c", "x.c"]);
        assert_eq!(m.applet, Applet::Masquerade);
        assert_eq!(m.argv0, OsString::from("/usr/lib/distcc/gcc-12.2"));
        assert_eq!(m.args.len(), 2);
        assert_eq!(sel(&["x86_64-linux-gnu-g++-12"]).applet, Applet::Masquerade);
    }

    #[test]
    fn busybox_style_subcommand() {
        let inv = sel(&["./distcc", "distccd", "--daemon"]);
        assert_eq!(inv.applet, Applet::Daemon);
        assert_eq!(inv.args, vec![OsString::from("--daemon")]);
        // A compiler named like an applet is not reinterpreted for masquerade.
        assert_eq!(sel(&["gcc", "pump"]).applet, Applet::Masquerade);
        // What ssh runs for `@host:/opt/distcc`.
        let inv = sel(&["/opt/distcc", "--inetd"]);
        assert_eq!(inv.applet, Applet::Daemon);
        assert_eq!(inv.args, vec![OsString::from("--inetd")]);
        assert_eq!(sel(&["gcc", "--inetd"]).applet, Applet::Masquerade);
    }

    #[test]
    fn install_links_is_its_own_applet() {
        let inv = sel(&["distcc", "--install-links", "/tmp/x"]);
        assert_eq!(inv.applet, Applet::InstallLinks);
        assert_eq!(inv.args, vec![OsString::from("/tmp/x")]);
    }

    #[test]
    fn empty_argv_is_client() {
        assert_eq!(select(Vec::new()).applet, Applet::Client);
    }
}
