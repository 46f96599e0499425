"""scripts/bench: options, the run plan, and the main loop.

Order of work: build our binary; prepare stock (patched pump); fetch the
real sources (all network use happens here, before anything is measured);
enter a private network namespace; create the cgroups; generate the micro
projects; probe every configuration on a two-file project (a configuration
of ours that fails there is reported "unavailable: <reason>" and skipped);
then the measured builds, alternating configurations within each run; then
the report. Everything the run starts is ended, and its temp dir removed,
in the `finally` of main(), also on SIGINT/SIGTERM.
"""

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time

import accounting
import clientcpu
import impls
import procs
import projects
import report
from runner import DISTRIBUTED, Config, Context, run_build

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODES = ["local", "plain", "lzo", "pump"]
ALL_PROJECTS = ["empty", "headers", "libgit2", "rocksdb"]


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measure our distcc beside stock distcc 3.4 (Debian) on the same builds, "
        "in one run: wall time, client and server CPU (cgroups), CPU per job, loopback bytes, "
        "daemon and include-server memory, remote jobs and fallbacks. Default: the quick set "
        "(micro projects, a few minutes).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Modes: local (gcc), plain (protocol 1), lzo (protocol 2), pump (protocol 3). "
        "Configurations of ours that do not work yet are reported as unavailable.\n"
        "Results: <out>/results.md (printed too), results.json, ratios.svg.",
    )
    ap.add_argument("--smoke", action="store_true",
                    help="short check run by scripts/test: one tiny project, one run, all "
                    "available modes, debug build of ours; fails on harness errors or wrong results")
    ap.add_argument("--full", action="store_true",
                    help="everything: micro projects, libgit2 and RocksDB (under an hour on 2 cores)")
    ap.add_argument("--runs", type=int, help="runs per configuration, the median is reported "
                    "(default 3 for micro projects, 2 for libgit2; smoke 1); each run "
                    "builds locally twice, before and after our configurations")
    ap.add_argument("--real-runs", type=int,
                    help="runs for the RocksDB subset (default: --runs if given, else 1)")
    ap.add_argument("--jobs", "-j", type=int, default=4,
                    help="make -jN, the per-host limit and each daemon's --jobs (default 4)")
    ap.add_argument("--projects", help="comma list of " + ",".join(ALL_PROJECTS))
    ap.add_argument("--modes", default=",".join(MODES), help="comma list of " + ",".join(MODES))
    ap.add_argument("--impl", choices=["ours", "stock", "both"], default="both",
                    help="implementations to measure (default both)")
    ap.add_argument("--no-cross", action="store_true",
                    help="skip stock client > our daemon (the daemon figures under stock load)")
    ap.add_argument("--bin", help="our distcc binary (default: build the static release binary, "
                    "as scripts/build-static does: the form we ship)")
    ap.add_argument("--dynamic", action="store_true",
                    help="build ours with a plain `cargo build --release` (dynamically linked) instead")
    ap.add_argument("--out", help="results dir (default bench-results/<UTC timestamp>, "
                    "bench-results/smoke for --smoke)")
    ap.add_argument("--cache", help="cache dir for fetched sources and the patched stock "
                    "include server (default ${XDG_CACHE_HOME:-~/.cache}/distcc-bench)")
    ap.add_argument("--files", type=int, help="files per micro project (default 150 empty, "
                    "60 headers; smoke 6)")
    ap.add_argument("--rocksdb-files", type=int, default=30,
                    help="size of the RocksDB subset (default 30: one local build of 100 files "
                    "takes about 460 s of CPU here, too much for --full's hour)")
    ap.add_argument("--interval", type=float, default=0.05,
                    help="sampling interval of /proc for daemon CPU and memory (default 0.05 s)")
    ap.add_argument("--no-client-cpu", action="store_true",
                    help="skip the direct measurement of each client process's own CPU "
                    "(perf stat -i on a sample of files; never run by --smoke)")
    ap.add_argument("--report", metavar="DIR",
                    help="only rewrite DIR/results.md and ratios.svg from DIR/results.json")
    ap.add_argument("--no-cgroups", action="store_true",
                    help="account CPU with getrusage and /proc instead of cgroups v2")
    ap.add_argument("--no-netns", action="store_true",
                    help="do not move into a private network namespace")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    args.modes = modes
    if args.projects:
        args.projects = [p.strip() for p in args.projects.split(",") if p.strip()]
        for p in args.projects:
            if p not in ALL_PROJECTS:
                ap.error(f"unknown project {p!r}")
    elif args.smoke:
        args.projects = ["headers"]
    elif args.full:
        args.projects = list(ALL_PROJECTS)
    else:
        args.projects = ["empty", "headers"]
    args.libgit2_runs = args.runs
    if args.runs is None:
        args.runs = 1 if args.smoke else 3
        # The real projects dominate the time budget of --full (< 1 h on 2 cores).
        args.libgit2_runs = 2
        if args.real_runs is None:
            args.real_runs = 1
    if args.real_runs is None:
        args.real_runs = args.runs
    if args.runs < 1 or args.real_runs < 1 or args.jobs < 1:
        ap.error("--runs, --real-runs and --jobs must be at least 1")
    return args


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, msg):
        line = f"[bench {time.strftime('%H:%M:%S')}] {msg}"
        self.lines.append(line)
        print(line, flush=True)


STATIC_TARGET = "x86_64-unknown-linux-gnu"


def build_ours(table, args, log):
    """Path of our binary, or (None, reason)."""
    if args.bin:
        path = os.path.abspath(args.bin)
        if not os.access(path, os.X_OK):
            return None, f"--bin {args.bin} is not an executable file"
        return path, None
    static = not args.smoke and not args.dynamic
    profile = [] if args.smoke else ["--release"]
    env = None
    if static:
        # The shipped form (scripts/build-static): glibc linked in, so each
        # compile's exec of the client skips the dynamic loader.
        profile += ["--target", STATIC_TARGET]
        env = dict(os.environ, RUSTFLAGS="-C target-feature=+crt-static")
    log(f"building ours: cargo build {' '.join(profile)}".rstrip()
        + (" (RUSTFLAGS=-C target-feature=+crt-static)" if static else ""))
    rc, out = table.run(["cargo", "build", "--quiet"] + profile, cwd=REPO, timeout=1800, env=env)
    if rc != 0:
        return None, "cargo build failed: " + out.strip().splitlines()[-1][:200] if out.strip() else "cargo build failed"
    parts = ["target"] + ([STATIC_TARGET] if static else []) + ["debug" if args.smoke else "release"]
    path = os.path.join(REPO, *parts, "distcc")
    if not os.access(path, os.X_OK):
        return None, f"{path} missing after cargo build"
    return path, None


def plan_configs(args):
    """The configurations to run, local and the baselines first."""
    want = set(["ours", "stock"] if args.impl == "both" else [args.impl])
    cfgs = []
    if "local" in args.modes:
        cfgs.append(Config("local"))
    dist = [m for m in args.modes if m in DISTRIBUTED]
    if any(m in ("plain", "lzo") for m in dist):
        cfgs.append(Config("cpp-only"))
    if dist:
        cfgs.append(Config("make-only"))
    for m in dist:
        if "ours" in want:
            cfgs.append(Config(m, "ours", "ours"))
        if "stock" in want:
            cfgs.append(Config(m, "stock", "stock"))
        if want == {"ours", "stock"} and not args.no_cross:
            cfgs.append(Config(m, "stock", "ours"))
        if m == "pump" and "stock" in want:
            cfgs.append(Config(m, "stock-debian", "stock"))
    return cfgs


def judge_probe(cfg, res):
    """None if a configuration works on the probe project, else the reason."""
    if res.get("error"):
        return res["error"]
    if res.get("objects_bad"):
        return f"{res['objects_bad']} of {res['jobs']} objects missing or not ELF"
    if cfg.mode in DISTRIBUTED:
        if res.get("fallback_local"):
            return f"{res['fallback_local']} of {res['jobs']} jobs fell back to a local compile"
        if cfg.mode == "pump" and cfg.client != "stock-debian" and res.get("fallback_pump"):
            return f"{res['fallback_pump']} of {res['jobs']} pump jobs were preprocessed locally"
        if cfg.daemon == "stock" and res.get("remote_ok", 0) < res["jobs"]:
            return f"stock daemon logged {res.get('remote_ok', 0)} of {res['jobs']} COMPILE_OK"
    return None


def main(argv):
    args = parse_args(argv)
    if args.report:
        print(write_report(os.path.abspath(args.report)))
        return 0
    log = Log()
    procs.install_signal_handlers()
    table = procs.ProcessTable()
    cache = os.path.abspath(args.cache or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "distcc-bench"))
    os.makedirs(cache, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    # Smoke runs (every scripts/test) overwrite one dir instead of piling up.
    out = os.path.abspath(args.out or os.path.join(REPO, "bench-results",
                                                   "smoke" if args.smoke else stamp))
    if args.smoke and not args.out:
        shutil.rmtree(out, ignore_errors=True)
    workdir = tempfile.mkdtemp(prefix="distcc-bench.")
    os.chmod(workdir, 0o755)
    failures = []
    notes = []
    try:
        return _main(args, log, table, cache, out, workdir, notes, failures)
    except procs.Interrupted as e:
        log(f"interrupted by {e}; cleaning up")
        saver = CLEANUP.pop("save", None)
        if saver is not None:
            try:
                saver()
                log(f"partial results in {out}")
            except (OSError, ValueError, KeyError) as err:
                log(f"could not write partial results: {err}")
        return 130
    finally:
        signal_safe_cleanup(table, workdir, log)


def signal_safe_cleanup(table, workdir, log):
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    table.end_all()
    cg = CLEANUP.get("cgroups")
    if cg is not None:
        cg.close(table)
    shutil.rmtree(workdir, ignore_errors=True)
    leftover = procs.descendants([table.me])
    if leftover:
        log(f"warning: processes still running after cleanup: {leftover}")


CLEANUP = {}


def _main(args, log, table, cache, out, workdir, notes, failures):
    impl_by_name = {}
    unavailable = {}

    ours_bin, why = build_ours(table, args, log) if args.impl != "stock" else (None, None)
    if args.impl != "stock":
        if ours_bin:
            # Installed as a user installs it (a copy), like stock's
            # package. The file the linker just wrote sits in the page cache
            # in single pages (it was written through a mapping), and every
            # exec then pays about 0.2-0.3 ms more to map its code; a copy
            # is laid out in large folios, as an installed program is.
            installed = os.path.join(workdir, "installed", "distcc")
            os.makedirs(os.path.dirname(installed), exist_ok=True)
            shutil.copyfile(ours_bin, installed)
            os.chmod(installed, 0o755)
            impl_by_name["ours"] = impls.link_ours(installed, os.path.join(workdir, "bin"))
            rc, head = table.run(["git", "-C", REPO, "describe", "--always", "--dirty"], timeout=30)
            commit = f", commit {head.strip()}" if rc == 0 and not args.bin else ""
            notes.append(f"ours = {ours_bin}{commit}, run from a copy (installed/distcc)"
                         + (" (debug build)" if args.smoke and not args.bin else "")
                         + (" (static release build)" if not args.smoke and not args.bin
                            and not args.dynamic else ""))
        else:
            unavailable["ours"] = why
    if args.impl != "ours":
        if all(os.access(p, os.X_OK) for p in (impls.STOCK_CLIENT, impls.STOCK_DAEMON)):
            stock = impls.Impl("stock", impls.STOCK_CLIENT, impls.STOCK_DAEMON, None)
            impl_by_name["stock"] = stock
            debian = impls.Impl("stock-debian", impls.STOCK_CLIENT, impls.STOCK_DAEMON,
                                impls.STOCK_PUMP)
            impl_by_name["stock-debian"] = debian
            if "pump" in args.modes:
                try:
                    pump, env, note = impls.prepare_stock_pump(table, cache, log,
                                                               allow_fetch=not args.smoke)
                    stock.pump, stock.pump_env = pump, env
                    notes.append(note)
                    notes.append("stock-debian pump = /usr/bin/distcc-pump as installed: its "
                                 "include server fails on Python 3.11, so every file falls back")
                except RuntimeError as e:
                    stock.broken["client"]["pump"] = f"patched stock include server: {e}"
                    notes.append(f"patched stock pump could not be built here: {e}")
        else:
            unavailable["stock"] = "/usr/bin/distcc or /usr/bin/distccd not installed"

    real = [p for p in args.projects if p in ("libgit2", "rocksdb")]
    crate_dirs = None
    if real:
        try:
            crate_dirs = projects.fetch_crates(table, cache, log)
        except (RuntimeError, OSError, ValueError) as e:
            notes.append(f"real projects skipped: {e}")
            failures.append(f"fetching sources: {e}")

    if args.no_netns:
        notes.append("no private network namespace (--no-netns): loopback bytes include "
                     "other traffic on this machine")
    else:
        why = accounting.enter_private_netns()
        if why:
            notes.append(f"no private network namespace ({why}): loopback bytes include "
                         "other traffic on this machine")
        else:
            notes.append("private network namespace: daemons on 127.0.0.2/127.0.0.3, loopback "
                         "bytes are this benchmark's only")
    if args.no_cgroups:
        cgroups, why = None, "--no-cgroups"
    else:
        cgroups, why = accounting.CgroupSet.create(table)
    CLEANUP["cgroups"] = cgroups
    if cgroups:
        notes.append(f"CPU by cgroups v2 (cpu.stat usage_usec) under {cgroups.base}")
    else:
        notes.append(f"cgroups v2 unavailable ({why}): CPU from getrusage(RUSAGE_CHILDREN) deltas")
    notes.append("daemon CPU without compilers = utime+stime of the daemon processes, "
                 f"sampled every {args.interval:g} s from /proc (memory likewise: VmRSS/VmHWM)")

    proj_list = []
    gen = os.path.join(workdir, "src")
    for name in args.projects:
        if name == "empty":
            proj_list.append(projects.make_empty(gen, args.files or (6 if args.smoke else 150)))
        elif name == "headers":
            proj_list.append(projects.make_headers(gen, args.files or (6 if args.smoke else 60)))
        elif name == "libgit2" and crate_dirs:
            proj_list.append(projects.make_libgit2(cache, crate_dirs))
        elif name == "rocksdb" and crate_dirs:
            proj_list.append(projects.make_rocksdb(crate_dirs, args.rocksdb_files))

    ctx = Context(table, cgroups, workdir, args.jobs, args.interval, impl_by_name, log)
    configs = plan_configs(args)
    probe = projects.make_headers(os.path.join(workdir, "probe"), 2, depth=3)
    probe.name = "probe"
    runnable = []
    status = {}
    for cfg in configs:
        # A part known not to be there (e.g. the patched stock pump could not
        # be built) makes the configuration unavailable without a probe.
        reason = None
        for role in ("client", "daemon"):
            name = getattr(cfg, role)
            if not name:
                continue
            if name not in impl_by_name:
                reason = unavailable.get(name.split("-")[0], "not installed")
            elif impl_by_name[name].unavailable(role, cfg.mode):
                reason = impl_by_name[name].unavailable(role, cfg.mode)
        if reason is None:
            res = run_build(ctx, probe, cfg, keep_logs=out,
                            keep_if=lambda r, c=cfg: judge_probe(c, r) is not None)
            reason = judge_probe(cfg, res)
            if reason is not None and "ours" not in (cfg.client, cfg.daemon):
                # Stock and local must work: otherwise the harness is broken.
                failures.append(f"{cfg.label()} does not work on the probe project: {reason}")
        if reason is None:
            runnable.append(cfg)
            status[cfg.key] = "ok"
        else:
            status[cfg.key] = f"unavailable: {reason}"
        log(f"probe {cfg.label():40} {status[cfg.key]}")
    for name, why in unavailable.items():
        notes.append(f"{name}: unavailable: {why}")
        if name == "stock":
            failures.append(f"stock distcc: {why}")

    results = {}
    client_own = {}
    started = time.monotonic()

    def save(partial):
        """results.json after every build, so an interrupted run keeps what
        it measured (the report is written from it at the end or on SIGINT)."""
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump({"args": vars(args), "status": status, "notes": notes + (
                       ["PARTIAL: the run was interrupted; only the builds done so far are "
                        "in the figures"] if partial else []),
                       "results": results, "client_own": client_own,
                       "elapsed": time.monotonic() - started,
                       "projects": [{"name": p.name, "description": p.description,
                                     "jobs": len(p)} for p in proj_list],
                       "configs": [[c.mode, c.client, c.daemon] for c in configs]},
                      f, indent=1, default=str)
        with open(os.path.join(out, "bench.log"), "w") as f:
            f.write("\n".join(log.lines) + "\n")

    CLEANUP["save"] = lambda: (save(True), write_report(out))
    for project in proj_list:
        runs = {"rocksdb": args.real_runs, "libgit2": args.libgit2_runs}.get(project.name, args.runs)
        projects.warm_cache(project)
        ctx.reference.pop(project.name, None)
        for r in range(runs):
            local = [c for c in runnable if c.mode == "local"]
            rest = [c for c in runnable if c.mode != "local"]
            rest = rest if r % 2 == 0 else rest[::-1]
            ours = [c for c in rest if c.client == "ours"]
            # This machine's speed drifts by a fifth within minutes: our
            # builds sit between two local ones, so that "total CPU /
            # local" (the median over all local builds) compares builds
            # made close together in time.
            order = local + ours + (local if ours else []) + [c for c in rest if c not in ours]
            for cfg in order:
                res = run_build(ctx, project, cfg, keep_logs=out,
                                keep_if=lambda r, c=cfg: c.client == "ours" and bool(
                                    r.get("fallback_local") or r.get("fallback_pump")))
                results.setdefault(project.name, {}).setdefault(cfg.key, []).append(res)
                log(f"{project.name:8} run {r + 1}/{runs} {cfg.label():40} "
                    + report.one_line(res))
                save(True)
                if res.get("error") or res.get("objects_bad"):
                    failures.append(f"{project.name} {cfg.label()}: "
                                    + (res.get("error") or f"{res['objects_bad']} objects missing"))
                elif res.get("objects_differ"):
                    # Without -g a distributed compile gives the local bytes.
                    failures.append(f"{project.name} {cfg.label()}: {res['objects_differ']} "
                                    "objects differ from the local build's")
    if not args.smoke and not args.no_client_cpu and "ours" in impl_by_name \
            and "stock" in impl_by_name:
        why = clientcpu.perf_available(table)
        if why:
            notes.append(f"client processes' own CPU not measured: {why}")
        else:
            measured, errors = clientcpu.measure(ctx, proj_list, log)
            client_own.update(measured)
            save(True)
            failures.extend(f"client own CPU: {e}" for e in errors)
    CLEANUP.pop("save", None)
    save(False)
    md = write_report(out)
    print()
    print(md)
    log(f"results in {out}")
    if failures:
        for f in failures:
            log(f"FAILED: {f}")
        return 1
    return 0


class _Saved:
    """A project as recorded in results.json (enough for the report)."""

    def __init__(self, d):
        self.name, self.description, self.jobs = d["name"], d["description"], d["jobs"]

    def __len__(self):
        return self.jobs


def write_report(out):
    """(Re)writes results.md and ratios.svg from out/results.json; returns
    the markdown. `scripts/bench --report DIR` calls this alone."""
    with open(os.path.join(out, "results.json")) as f:
        data = json.load(f)
    args = argparse.Namespace(**data["args"])
    proj_list = [_Saved(d) for d in data["projects"]]
    configs = [Config(*c) for c in data["configs"]]
    md = report.markdown(args, proj_list, configs, data["status"], data["results"],
                         data["notes"], data["elapsed"])
    md += "\n".join(clientcpu.markdown(data.get("client_own"))) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    svg = report.svg(proj_list, configs, data["results"])
    if svg:
        with open(os.path.join(out, "ratios.svg"), "w") as f:
            f.write(svg)
    return md


def entry():
    sys.exit(main(sys.argv[1:]))
