"""The implementations under test, their daemons, and availability probes.

  ours         target/<profile>/distcc (or --bin), run as distcc, distccd and
               pump through symlinks in the run's temp dir
  stock        Debian's distcc 3.4: /usr/bin/distcc, /usr/bin/distccd, and a
               patched copy of distcc-pump (see prepare_stock_pump)
  stock-debian /usr/bin/distcc-pump exactly as Debian ships it: its include
               server fails on Python 3.11 and every file falls back

Daemons are started by PID (`--no-detach --daemon`) on 127.0.0.2,
127.0.0.3, ... in their own session and cgroup, and stopped by PID.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

from procs import descendants

STOCK_CLIENT = "/usr/bin/distcc"
STOCK_DAEMON = "/usr/bin/distccd"
STOCK_PUMP = "/usr/bin/distcc-pump"
STOCK_INCLUDE_SERVER_DIR = "/usr/lib/python3/dist-packages/include_server"
SYSTEM_PYTHON = "/usr/bin/python3"

LOCAL_FALLBACK_RE = re.compile(r"running locally")
PUMP_FALLBACK_RE = re.compile(r"preprocessing locally|failed to get includes")


class Impl:
    """Paths of one implementation, and what of it works."""

    def __init__(self, name, client, daemon, pump, pump_env=None, note=""):
        self.name = name
        self.client = client
        self.daemon = daemon
        self.pump = pump
        self.pump_env = pump_env or {}
        self.note = note
        self.daemon_exe = os.path.realpath(daemon) if daemon else None
        # mode -> reason, for roles that do not work ("client", "daemon").
        self.broken = {"client": {}, "daemon": {}}

    def unavailable(self, role, mode):
        return self.broken[role].get(mode) or self.broken[role].get("*")


def link_ours(binary, bindir):
    """Symlinks distcc, distccd and pump to our multi-call binary."""
    os.makedirs(bindir, exist_ok=True)
    for name in ("distcc", "distccd", "pump", "include-server"):
        path = os.path.join(bindir, name)
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink(binary, path)
    return Impl("ours", os.path.join(bindir, "distcc"), os.path.join(bindir, "distccd"),
                os.path.join(bindir, "pump"))


# --- the patched stock include server ------------------------------------------

CONFIG_H = """/* Written by scripts/bench: the configure results the pump C extension needs
 * on x86_64 Linux with glibc (only the extension is built from this tree). */
#define STDC_HEADERS 1
#define HAVE_STDLIB_H 1
#define HAVE_STRING_H 1
#define HAVE_STRINGS_H 1
#define HAVE_CTYPE_H 1
#define HAVE_UNISTD_H 1
#define HAVE_STDINT_H 1
#define HAVE_INTTYPES_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_SYS_STAT_H 1
#define HAVE_SYS_SELECT_H 1
#define HAVE_SYS_MMAN_H 1
#define HAVE_SYS_RESOURCE_H 1
#define HAVE_SYS_SENDFILE_H 1
#define HAVE_RESOLV_H 1
#define HAVE_ARPA_NAMESER_H 1
#define HAVE_NETINET_TCP_H 1
#define HAVE_SENDFILE 1
#define HAVE_SNPRINTF 1
#define HAVE_VSNPRINTF 1
#define HAVE_ASPRINTF 1
#define HAVE_VASPRINTF 1
#define HAVE_C99_VSNPRINTF 1
#define HAVE_DECL_SNPRINTF 1
#define HAVE_DECL_VSNPRINTF 1
#define HAVE_DECL_ASPRINTF 1
#define HAVE_DECL_VASPRINTF 1
#define HAVE_MEMSET 1
#define HAVE_MEMMOVE 1
#define HAVE_MEMCPY 1
#define HAVE_MEMCMP 1
#define HAVE_SOCKADDR_STORAGE 1
#define HAVE_LONG_DOUBLE 1
#define HAVE_LONG_LONG 1
#define HAVE_IN_PORT_T 1
#define HAVE_IN_ADDR_T 1
#define HAVE_HSTRERROR 1
#define HAVE_GETLINE 1
#define HAVE_VA_COPY 1
#define HAVE_STRSEP 1
#define HAVE_MKDTEMP 1
#define HAVE_GETTIMEOFDAY 1
#define HAVE_GETPAGESIZE 1
#define HAVE_GETLOADAVG 1
#define HAVE_GETCWD 1
#define HAVE_VARARG_MACROS 1
#define SIZEOF_SHORT 2
#define SIZEOF_INT 4
#define SIZEOF_LONG 8
#define SIZEOF_LONG_LONG 8
#define SIZEOF_SIZE_T 8
#define SIZEOF_VOID_P 8
#define PACKAGE "distcc"
#define PACKAGE_NAME "distcc"
#define PACKAGE_VERSION "3.4"
#define PACKAGE_BUGREPORT "distcc@lists.samba.org"
#define GNU_HOST "x86_64-pc-linux-gnu"
#define NATIVE_COMPILER_TRIPLE "x86_64-linux-gnu"
#define LIBDIR "/usr/lib"
#define SYSCONFDIR "/etc"
#define RETSIGTYPE void
"""

EXT_SOURCES = [
    "src/clirpc.c", "src/clinet.c", "src/state.c", "src/srvrpc.c", "src/pump.c", "src/rpc.c",
    "src/io.c", "src/include_server_if.c", "src/trace.c", "src/snprintf.c", "src/util.c",
    "src/tempfile.c", "src/filename.c", "src/bulk.c", "src/sendfile.c", "src/compress.c",
    "src/argutil.c", "src/cleanup.c", "src/emaillog.c", "src/timeval.c", "src/netutil.c",
    "lzo/minilzo.c",
]
EXT_MODULE = "include_server/c_extensions/distcc_pump_c_extensions_module.c"


def _codename():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"') or "bookworm"
    except OSError:
        pass
    return "bookworm"


def _fetch_source(table, cache, log):
    """Debian's distcc source (orig tarball) via `apt-get source` with a
    private deb-src list under the cache dir. Returns the tarball path."""
    srcdir = os.path.join(cache, "stock-src")
    os.makedirs(srcdir, exist_ok=True)
    found = [f for f in os.listdir(srcdir) if f.startswith("distcc_") and f.endswith(".orig.tar.gz")]
    if not found:
        apt = os.path.join(cache, "apt")
        for sub in ("lists/partial", "archives/partial"):
            os.makedirs(os.path.join(apt, sub), exist_ok=True)
        sources = os.path.join(apt, "sources.list")
        with open(sources, "w") as f:
            f.write(f"deb-src http://deb.debian.org/debian {_codename()} main\n")
        opts = ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", f"Dir::State::Lists={apt}/lists", "-o", f"Dir::Cache={apt}",
                "-o", "APT::Sandbox::User=root", "-q"]
        log("fetching Debian's distcc source package (apt-get source, private deb-src list)")
        rc, out = table.run(["apt-get"] + opts + ["update"], timeout=300)
        if rc != 0:
            raise RuntimeError("apt-get update (deb-src) failed: " + out.strip()[-300:])
        # The .debian.tar.xz may be missing from the mirror; the orig tarball is
        # what the extension is built from, so a partial download is enough.
        table.run(["apt-get"] + opts + ["--download-only", "source", "distcc"],
                  cwd=srcdir, timeout=300)
        found = [f for f in os.listdir(srcdir)
                 if f.startswith("distcc_") and f.endswith(".orig.tar.gz")]
        if not found:
            raise RuntimeError("apt-get source distcc did not provide the orig tarball")
    return os.path.join(srcdir, sorted(found)[-1])


def patch_module(text):
    """The upstream PY_SSIZE_T_CLEAN fix: define it before Python.h, and make
    the lengths filled by "s#" Py_ssize_t (an int there is overwritten with
    8 bytes once the macro is defined)."""
    if "PY_SSIZE_T_CLEAN" not in text:
        text = text.replace('#include "Python.h"', '#define PY_SSIZE_T_CLEAN\n#include "Python.h"', 1)
    text = re.sub(r"\bint (in_len|len);(\s+(?:int res;|char \*out_buf;))", r"Py_ssize_t \1;\2", text)
    return text


def prepare_stock_pump(table, cache, log, allow_fetch=True):
    """Builds the patched include server into cache/stock-pump and returns
    (Impl for stock with that pump, description). Raises RuntimeError with
    the reason when it cannot be built."""
    out = os.path.join(cache, "stock-pump")
    pkg = os.path.join(out, "include_server")
    pump = os.path.join(out, "pump")
    marker = os.path.join(out, "ok")
    if not os.path.exists(STOCK_PUMP) or not os.path.isdir(STOCK_INCLUDE_SERVER_DIR):
        raise RuntimeError("Debian's distcc-pump is not installed")
    if not os.path.exists(marker):
        if not allow_fetch and not os.path.isdir(os.path.join(cache, "stock-src")):
            raise RuntimeError("not built yet (run scripts/bench once without --smoke)")
        tarball = _fetch_source(table, cache, log)
        log(f"building the stock include server's C extension from {os.path.basename(tarball)} "
            "with the PY_SSIZE_T_CLEAN fix")
        build = os.path.join(out, "build")
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(build)
        with tarfile.open(tarball) as tar:
            members = [m for m in tar.getmembers()
                       if re.match(r"^[^/]+/(src|lzo|include_server)/", m.name) and m.isfile()]
            for m in members:
                m.name = m.name.split("/", 1)[1]
            tar.extractall(build, members=members)
        with open(os.path.join(build, "config.h"), "w") as f:
            f.write(CONFIG_H)
        module = os.path.join(build, EXT_MODULE)
        with open(module) as f:
            patched = patch_module(f.read())
        with open(module, "w") as f:
            f.write(patched)
        rc, info = table.run([SYSTEM_PYTHON, "-c",
                              "import sysconfig as s;print(s.get_config_var('EXT_SUFFIX'));"
                              "print(s.get_config_var('INCLUDEPY'))"])
        if rc != 0:
            raise RuntimeError(f"{SYSTEM_PYTHON} does not run")
        suffix, incdir = info.split()[:2]
        if not os.path.exists(os.path.join(incdir, "Python.h")):
            raise RuntimeError(f"{incdir}/Python.h missing (install python3-dev)")
        os.makedirs(pkg)
        so = os.path.join(pkg, "distcc_pump_c_extensions" + suffix)
        rc, msg = table.run(["gcc", "-shared", "-fPIC", "-O2", "-w", "-D_GNU_SOURCE",
                             "-I" + build, "-I" + incdir, "-I" + os.path.join(build, "src"),
                             "-I" + os.path.join(build, "lzo")]
                            + [os.path.join(build, s) for s in EXT_SOURCES] + [module, "-o", so],
                            timeout=300)
        if rc != 0:
            raise RuntimeError("building the C extension failed: " + msg.strip()[-400:])
        for f in os.listdir(STOCK_INCLUDE_SERVER_DIR):
            if f.endswith(".py"):
                shutil.copy(os.path.join(STOCK_INCLUDE_SERVER_DIR, f), pkg)
        with open(STOCK_PUMP) as f:
            script = f.read()
        script, n = re.subn(r"(?m)^include_server=.*$",
                            f"include_server='{pkg}/include_server.py'", script)
        if n != 1:
            raise RuntimeError("cannot find the include_server= line in distcc-pump")
        with open(pump, "w") as f:
            f.write(script)
        os.chmod(pump, 0o755)
        shutil.rmtree(build, ignore_errors=True)
        rc, msg = table.run([SYSTEM_PYTHON, "-c",
                             "import distcc_pump_c_extensions as e\n"
                             "assert e.OsPathExists('/') and not e.OsPathExists('/nonexistent-x')\n"
                             "assert e.OsPathIsFile('/etc/hostname') or True\n"
                             "assert len(e.CompressLzo1xAlloc('x' * 100)) > 4\n"],
                            cwd=pkg, env=dict(os.environ, PYTHONPATH=pkg))
        if rc != 0:
            raise RuntimeError("the rebuilt extension does not work: " + msg.strip()[-300:])
        with open(marker, "w") as f:
            f.write(os.path.basename(tarball) + "\n")
    with open(marker) as f:
        origin = f.read().strip()
    note = (f"stock pump = Debian's distcc-pump and include server, with the C extension "
            f"rebuilt from {origin} plus the upstream PY_SSIZE_T_CLEAN fix (Py_ssize_t lengths "
            f"for \"s#\"), kept in {out}")
    return pump, {"DISTCC_LOCATION": "/usr/bin"}, note


# --- daemons -----------------------------------------------------------------------


def _listening(addr, port):
    """Whether a TCP socket listens on addr:port in this network namespace."""
    want = "%08X:%04X" % (int.from_bytes(bytes(map(int, addr.split("."))), "little"), port)
    try:
        with open("/proc/self/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == want and parts[3] == "0A":
                    return True
    except (OSError, StopIteration):
        pass
    return False


def free_port(addr):
    import socket

    s = socket.socket()
    try:
        s.bind((addr, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _tail(path, n=3):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
        return " | ".join(lines[-n:])
    except OSError:
        return ""


class Daemons:
    """The daemons of one build: one per address."""

    def __init__(self, impl, addrs, workdir, jobs):
        self.impl = impl
        self.addrs = addrs
        self.workdir = workdir
        self.jobs = jobs
        self.procs = []
        self.ports = []
        self.logs = []

    def start(self, table, cgroup, timeout=10.0):
        """Starts the daemons and waits until they listen. Raises
        RuntimeError with the reason if one does not come up."""
        for i, addr in enumerate(self.addrs):
            d = os.path.join(self.workdir, f"daemon{i}")
            tmp = os.path.join(d, "tmp")
            os.makedirs(tmp, exist_ok=True)
            for p in (d, tmp):
                os.chmod(p, 0o1777)
            logf = os.path.join(d, "distccd.log")
            errf = os.path.join(d, "stderr")
            for p in (logf, errf):
                with open(p, "w"):
                    pass
                os.chmod(p, 0o666)
            port = free_port(addr)
            argv = [self.impl.daemon, "--listen", addr, "--allow", "127.0.0.0/8",
                    "--enable-tcp-insecure", "--no-detach", "--daemon", "--port", str(port),
                    "--log-file", logf, "--jobs", str(self.jobs)]
            env = clean_env({"TMPDIR": tmp})
            with open(errf, "w") as err:
                p = table.spawn(argv, cgroup=cgroup, cwd=d, env=env, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=subprocess.STDOUT)
            self.procs.append(p)
            self.ports.append(port)
            self.logs.append((logf, errf))
        deadline = time.monotonic() + timeout
        pending = list(range(len(self.procs)))
        while pending and time.monotonic() < deadline:
            for i in list(pending):
                if _listening(self.addrs[i], self.ports[i]):
                    pending.remove(i)
                elif self.procs[i].poll() is not None:
                    why = _tail(self.logs[i][1]) or _tail(self.logs[i][0])
                    raise RuntimeError(f"{self.impl.name} distccd exited with "
                                       f"{self.procs[i].returncode}: {why}"[:300])
            time.sleep(0.02)
        if pending:
            raise RuntimeError(f"{self.impl.name} distccd did not listen within {timeout:.0f}s")

    def hosts(self, opts):
        return " ".join(f"{a}:{p}/{self.jobs}{opts}" for a, p in zip(self.addrs, self.ports))

    def pids(self):
        roots = [p.pid for p in self.procs if p.poll() is None]
        return roots + descendants(roots)

    def stop(self, table):
        """SIGTERM to each daemon we started, then to what is left of its
        children; waits for all of them."""
        pids = self.pids()
        table.end([p.pid for p in self.procs], grace=5.0)
        table.end(pids, grace=2.0)
        for p in self.procs:
            try:
                table.wait(p, timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def count(self, word):
        n = 0
        for logf, _ in self.logs:
            try:
                with open(logf, errors="replace") as f:
                    n += sum(1 for line in f if word in line)
            except OSError:
                pass
        return n


def clean_env(extra):
    """The harness's environment without any distcc, include-server or
    compiler-path variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISTCC_", "INCLUDE_SERVER_", "CCACHE_"))
           and k not in ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "MAKEFLAGS", "MFLAGS",
                         "MAKELEVEL", "CC", "CXX", "PYTHONPATH", "PYTHONHOME", "TMPDIR")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    env["LC_ALL"] = "C"
    env.update(extra)
    return env


def is_elf_object(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit("this module is part of scripts/bench")
