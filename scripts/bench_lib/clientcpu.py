"""The client process's own CPU per job, measured directly.

The builds' "client overhead" is client-side CPU minus a cpp-only build's:
a small difference of two large, noisy numbers, unreadable on real
projects. Here each client runs alone under `perf stat -i` (no inherit):
task-clock of the distcc process itself, without the preprocessor or any
other child, i.e. exactly "client CPU outside the preprocessor". Ours and
stock's client compile the same sample of each project's files against
one of our daemons, in plain and lzo mode, each file REPEAT times. The two
clients take turns run by run (ours then stock, then stock then ours, ...),
so a slow spell of the machine falls on both; a file's figure is the median
of its runs (one stray run, such as a page-cache flush or a neighbour's
burst on the shared VM, does not move it), and a project's is the mean of
its files' figures (CPU per job).
"""

import os
import shutil
import statistics

import impls
from runner import HOST_OPTS

# RocksDB units take seconds each on the daemon, so fewer are sampled; six
# (not three) because one unit's figure swings by a millisecond from run to
# run on a shared VM, for both clients alike.
SAMPLES = {"empty": 10, "headers": 10, "libgit2": 10, "rocksdb": 6}
REPEAT = 3
MODES = ("plain", "lzo")


def perf_available(table):
    """None if `perf stat -i` works here, else why not."""
    if not shutil.which("perf"):
        return "perf is not installed"
    rc, out = table.run(["perf", "stat", "-i", "-x,", "-e", "task-clock", "true"], timeout=30)
    if rc != 0:
        return "perf stat does not work here: " + out.strip()[-200:]
    return None


def _sample(sources, k):
    if len(sources) <= k:
        return list(sources)
    step = len(sources) / k
    return [sources[int(i * step)] for i in range(k)]


def _task_clock_ms(text):
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) > 3 and parts[2].startswith("task-clock"):
            try:
                return float(parts[0])
            except ValueError:
                return None
    return None


def _run_once(table, client, project, s, env, cwd, output):
    """One compile of source `s` by `client` under `perf stat -i`: (ms, None),
    or (None, why) when it failed."""
    cc = "gcc" if s.lang == "c" else "g++"
    flags = project.cflags if s.lang == "c" else project.cxxflags
    argv = (["perf", "stat", "-i", "-x,", "-e", "task-clock", "--", client, cc]
            + flags + s.extra + ["-c", s.path, "-o", output])
    rc, text = table.run(argv, env=env, cwd=cwd, timeout=900)
    ms = _task_clock_ms(text)
    if rc != 0 or ms is None:
        return None, text.strip()[-300:]
    return ms, None


def measure(ctx, proj_list, log):
    """{project: {mode: {"ours": ms, "stock": ms, "files": n}}} and a list of
    errors. Needs both clients and our daemon."""
    table = ctx.table
    out, errors = {}, []
    for project in proj_list:
        srcs = _sample(project.sources, SAMPLES.get(project.name, 5))
        bdir = os.path.join(ctx.workdir, "clientcpu", project.name)
        tmp = os.path.join(bdir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        daemons = impls.Daemons(ctx.impls["ours"], ctx.addrs[:1], bdir, ctx.jobs)
        try:
            daemons.start(table, None)
        except RuntimeError as e:
            errors.append(f"{project.name}: {e}")
            continue
        try:
            for mode in MODES:
                env = impls.clean_env({
                    "DISTCC_HOSTS": daemons.hosts(HOST_OPTS[mode]),
                    "DISTCC_FALLBACK": "0",
                    "TMPDIR": tmp,
                    "DISTCC_DIR": os.path.join(bdir, "distcc-dir"),
                })
                sums = {"ours": [], "stock": []}
                turn = 0
                for s in srcs:
                    runs = {"ours": [], "stock": []}
                    for _ in range(REPEAT):
                        names = ["ours", "stock"] if turn % 2 == 0 else ["stock", "ours"]
                        turn += 1
                        for name in names:
                            ms, err = _run_once(table, ctx.impls[name].client, project, s, env,
                                                bdir, os.path.join(bdir, f"{name}.o"))
                            if err is not None:
                                errors.append(f"{project.name} {mode} {name} "
                                              f"{os.path.basename(s.path)}: {err}")
                                continue
                            runs[name].append(ms)
                    # A file counts only when both clients ran it.
                    if runs["ours"] and runs["stock"]:
                        for name in runs:
                            sums[name].append(statistics.median(runs[name]))
                if sums["ours"] and sums["stock"]:
                    out.setdefault(project.name, {})[mode] = {
                        "ours": sum(sums["ours"]) / len(sums["ours"]),
                        "stock": sum(sums["stock"]) / len(sums["stock"]),
                        "files": min(len(sums["ours"]), len(sums["stock"])),
                    }
                    r = out[project.name][mode]
                    log(f"{project.name:8} client own CPU {mode:5} ours {r['ours']:.2f} ms, "
                        f"stock {r['stock']:.2f} ms ({r['files']} files x {REPEAT})")
        finally:
            daemons.stop(table)
    return out, errors


def markdown(data):
    """The report section."""
    if not data:
        return []
    L = ["## Client process's own CPU per job (perf stat -i: the distcc process alone, "
         "preprocessor excluded)", "",
         f"Each sampled file compiled {REPEAT} times by each client against our daemon, "
         "the two clients taking turns run by run; per file the median of its runs, "
         "then the mean over the files.", "",
         "| project | mode | files | ours ms/job | stock ms/job | ratio |",
         "|---|---|---:|---:|---:|---:|"]
    for pname, modes in data.items():
        for mode, r in modes.items():
            ratio = r["ours"] / r["stock"] if r["stock"] else None
            L.append(f"| {pname} | {mode} | {r['files']} | {r['ours']:.2f} | {r['stock']:.2f} | "
                     + (f"{ratio:.2f}" if ratio is not None else "–") + " |")
    L.append("")
    return L
