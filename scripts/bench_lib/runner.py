"""One measured build, and the probes that decide what is available.

A build is `make -jN` over a generated Makefile, in a fresh build dir, in
one configuration:
  local      CC=gcc CXX=g++
  cpp-only   CC="gcc -E": make plus the preprocessor, the baseline that is
             subtracted from plain/lzo client CPU ("outside the preprocessor")
  make-only  CC=true: make's own cost per job, the baseline for pump
  plain/lzo/pump with a client implementation and a daemon implementation
             (protocol 1, 2, 3: host options "", ",lzo", ",cpp,lzo")
The daemons are started fresh for each build and stopped after it, so every
build has its own logs, counters and memory peaks.
"""

import hashlib
import os
import shutil
import subprocess
import time

import accounting
import impls
from procs import Sampler, descendants
from projects import write_makefile

HOST_OPTS = {"plain": "", "lzo": ",lzo", "pump": ",cpp,lzo"}
DISTRIBUTED = ("plain", "lzo", "pump")


class Config:
    """What to run: mode, client implementation, daemon implementation."""

    def __init__(self, mode, client=None, daemon=None):
        self.mode = mode
        self.client = client
        self.daemon = daemon

    @property
    def key(self):
        if self.mode not in DISTRIBUTED:
            return self.mode
        if self.client == self.daemon:
            return f"{self.mode}:{self.client}"
        return f"{self.mode}:{self.client}>{self.daemon}"

    def label(self):
        if self.mode not in DISTRIBUTED:
            return self.mode
        if self.client == "stock-debian":
            return f"{self.mode} stock-debian (include server as shipped)"
        if self.client == self.daemon:
            return f"{self.mode} {self.client}"
        return f"{self.mode} {self.client} client > {self.daemon} daemon"


class Context:
    """What every build needs: processes, accounting, places, options."""

    def __init__(self, table, cgroups, workdir, jobs, interval, impl_by_name, log,
                 addrs=("127.0.0.2", "127.0.0.3"), timeout=3600):
        self.table = table
        self.cgroups = cgroups
        self.workdir = workdir
        self.jobs = jobs
        self.interval = interval
        self.impls = impl_by_name
        self.log = log
        self.addrs = list(addrs)
        self.timeout = timeout
        self.seq = 0
        self.reference = {}


def _hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def _make_argv(ctx, cfg, daemons):
    """(argv, env extras) for the build command of a configuration."""
    base = ["make", "-f", "Makefile", f"-j{ctx.jobs}", "--no-print-directory"]
    if cfg.mode == "local":
        return base + ["CC=gcc", "CXX=g++"], {}
    if cfg.mode == "cpp-only":
        return base + ["CC=gcc -E", "CXX=g++ -E"], {}
    if cfg.mode == "make-only":
        return base + ["CC=true", "CXX=true"], {}
    client = ctx.impls[cfg.client]
    extra = {"DISTCC_HOSTS": daemons.hosts(HOST_OPTS[cfg.mode])}
    cmd = base + [f"CC={client.client} gcc", f"CXX={client.client} g++"]
    if cfg.mode == "pump":
        extra.update(client.pump_env)
        cmd = [client.pump] + cmd
    return cmd, extra


def run_build(ctx, project, cfg, keep_logs=None, keep_if=None):
    """Builds `project` once in configuration `cfg`. Returns a dict of raw
    figures; "error" is set when the build could not be measured."""
    table = ctx.table
    ctx.seq += 1
    bdir = os.path.join(ctx.workdir, "builds", f"{ctx.seq:04}-{project.name}-"
                        f"{cfg.key.replace(':', '-').replace('>', '-to-')}")
    write_makefile(project, bdir)
    tmp = os.path.join(bdir, "tmp")
    os.makedirs(tmp)
    os.makedirs(os.path.join(bdir, "distcc-dir"))
    res = {"jobs": len(project), "error": None}
    daemons = None
    server_cg = client_cg = None
    sampler = None
    try:
        if cfg.mode in DISTRIBUTED:
            daemons = impls.Daemons(ctx.impls[cfg.daemon], ctx.addrs, bdir, ctx.jobs)
            if ctx.cgroups:
                server_cg = ctx.cgroups.group("server")
            daemons.start(table, server_cg)
        if ctx.cgroups:
            client_cg = ctx.cgroups.group("client")
        argv, extra = _make_argv(ctx, cfg, daemons)
        env = impls.clean_env(dict(extra, TMPDIR=tmp, DISTCC_DIR=os.path.join(bdir, "distcc-dir")))
        daemon_exes = [ctx.impls[cfg.daemon].daemon_exe] if daemons else []

        def server_pids():
            if server_cg:
                return server_cg.pids()
            return daemons.pids() if daemons else []

        def client_pids():
            if client_cg:
                return client_cg.pids()
            # Everything below the harness that is not a daemon: make's tree
            # and the daemonised include server (re-parented to the harness).
            server = set(server_pids())
            return [q for q in descendants([table.me]) if q not in server]

        our_exe = ctx.impls["ours"].daemon_exe if "ours" in ctx.impls else None

        def is_match(_pid, exe, argv_):
            if any(a.endswith("include_server.py") for a in argv_[:3]):
                return True
            if our_exe and exe == our_exe and argv_:
                return os.path.basename(argv_[0]) in ("pump", "include-server", "include_server")
            return False

        sampler = Sampler(table, ctx.interval, server_pids, client_pids, daemon_exes, is_match)
        cpu0 = accounting.children_cpu_s()
        lo0 = accounting.loopback_bytes()
        logpath = os.path.join(bdir, "make.log")
        t0 = time.monotonic()
        with open(logpath, "w") as logf:
            p = table.spawn(argv, cgroup=client_cg, cwd=bdir, env=env, stdin=subprocess.DEVNULL,
                            stdout=logf, stderr=subprocess.STDOUT)
            sampler.start()
            try:
                rc = table.wait(p, timeout=ctx.timeout)
            except subprocess.TimeoutExpired:
                table.end([p.pid] + descendants([p.pid]))
                table.wait(p, timeout=10)
                rc = "timeout"
        res["wall_s"] = time.monotonic() - t0
        # Orphans of the build (the include server) are reaped by the
        # sampler; give it a moment so their CPU is in RUSAGE_CHILDREN.
        table.reap_orphans()
        cpu1 = accounting.children_cpu_s()
        res["lo_bytes"] = accounting.loopback_bytes() - lo0
        sampler.finish()
        res.update(sampler.results())
        if daemons:
            daemons.stop(table)
        cpu2 = accounting.children_cpu_s()
        if client_cg:
            res["client_cpu_s"] = client_cg.cpu_s()
            res["server_cpu_s"] = server_cg.cpu_s() if server_cg else 0.0
        else:
            res["client_cpu_s"] = cpu1 - cpu0
            res["server_cpu_s"] = cpu2 - cpu1 if daemons else 0.0
        res["make_rc"] = rc
        with open(logpath, errors="replace") as f:
            text = f.read()
        lines = text.splitlines()
        res["fallback_local"] = sum(1 for l in lines if impls.LOCAL_FALLBACK_RE.search(l))
        res["fallback_pump"] = sum(1 for l in lines if impls.PUMP_FALLBACK_RE.search(l))
        res["remote_ok"] = daemons.count("COMPILE_OK") if daemons else 0
        res["daemon_logged"] = bool(daemons) and any(os.path.getsize(l) > 0 for l, _ in daemons.logs)
        check_objects(ctx, project, cfg, bdir, res)
        if rc != 0:
            tail = " | ".join(l for l in text.strip().splitlines()[-3:])
            res["error"] = f"make exited {rc}: {tail}"[:400]
    except RuntimeError as e:
        res["error"] = str(e)
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.finish()
        if daemons:
            daemons.stop(table)
        for cg in (client_cg, server_cg):
            if cg is not None:
                ctx.cgroups.release(cg, table)
        failed = res.get("error") or res.get("objects_bad") or (keep_if and keep_if(res))
        if keep_logs and failed:
            _keep(bdir, keep_logs, os.path.basename(bdir))
        shutil.rmtree(bdir, ignore_errors=True)
    return res


def check_objects(ctx, project, cfg, bdir, res):
    """Counts objects that exist and are ELF, and compares them byte for
    byte with the local build's objects (the reference)."""
    if cfg.mode == "make-only":
        res["objects_ok"] = res["objects_bad"] = res["objects_differ"] = 0
        return
    ok = bad = differ = 0
    ref = ctx.reference.setdefault(project.name, {})
    for s in project.sources:
        path = os.path.join(bdir, "o", s.obj)
        if cfg.mode == "cpp-only":
            ok += os.path.exists(path)
            bad += not os.path.exists(path)
            continue
        if not impls.is_elf_object(path):
            bad += 1
            continue
        ok += 1
        h = _hash(path)
        if cfg.mode == "local":
            ref[s.obj] = h
        elif s.obj in ref and ref[s.obj] != h:
            differ += 1
    res["objects_ok"], res["objects_bad"], res["objects_differ"] = ok, bad, differ


def _keep(bdir, dest, name):
    """Copies the logs of a failed build (or one of ours with fallbacks) to
    the results dir."""
    out = os.path.join(dest, "kept-logs", name)
    os.makedirs(out, exist_ok=True)
    for root, _dirs, files in os.walk(bdir):
        for f in files:
            if f.endswith(".log") or f == "stderr" or f == "Makefile":
                rel = os.path.relpath(os.path.join(root, f), bdir).replace("/", "_")
                try:
                    shutil.copy(os.path.join(root, f), os.path.join(out, rel))
                except OSError:
                    pass
