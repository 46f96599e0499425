//! Name lookups in the statically linked build: only glibc's built-in
//! sources.
//!
//! A static glibc reaches every name-service source other than `files` and
//! `dns` by loading its shared module (`libnss_mdns4_minimal`,
//! `libnss_myhostname`, `libnss_resolve`, `libnss_systemd`, ...), and doing
//! that from a static binary crashes the process (SIGSEGV, no message).
//! Desktop distributions list such modules in `/etc/nsswitch.conf`, so a
//! host name missing from `/etc/hosts` killed the client. Before its first
//! lookup, the static build tells glibc to use `files dns` for host names
//! (and `files` for users and groups), which needs no module; systemd's
//! resolver is still reached through its DNS stub in `/etc/resolv.conf`.
//! The dynamically linked build uses the system's configuration unchanged.
//! Called by the client's connect and by lsdistcc before they resolve names.

/// Restricts host, user and group lookups to the built-in sources (static
/// build only; once per process, before the first lookup).
pub fn use_builtin_sources() {
    #[cfg(target_feature = "crt-static")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            unsafe extern "C" {
                // glibc: replaces the nsswitch.conf line of one database.
                fn __nss_configure_lookup(
                    dbname: *const libc::c_char,
                    service_line: *const libc::c_char,
                ) -> libc::c_int;
            }
            for (db, line) in [
                (c"hosts", c"files dns"),
                (c"passwd", c"files"),
                (c"group", c"files"),
            ] {
                // SAFETY: two NUL-terminated static strings; called once,
                // before any lookup of this process (the Once and the
                // callers' order guarantee it).
                unsafe { __nss_configure_lookup(db.as_ptr(), line.as_ptr()) };
            }
        });
    }
}
