"""The client process's own CPU per job, measured directly.

The builds' "client overhead" is client-side CPU minus a cpp-only build's:
a small difference of two large, noisy numbers, unreadable on real
projects. Here each client runs alone under `perf stat -i` (no inherit):
task-clock of the distcc process itself, without the preprocessor or any
other child, i.e. exactly "client CPU outside the preprocessor". Ours and
stock's client compile the same sample of each project's files against
one of our daemons, in plain and lzo mode, each file REPEAT times (perf's
mean), alternating the two clients file by file.
"""

import os
import shutil
import subprocess

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
                for i, s in enumerate(srcs):
                    names = ["ours", "stock"] if i % 2 == 0 else ["stock", "ours"]
                    for name in names:
                        cc = "gcc" if s.lang == "c" else "g++"
                        flags = project.cflags if s.lang == "c" else project.cxxflags
                        argv = (["perf", "stat", "-i", "-x,", "-e", "task-clock", "-r", str(REPEAT),
                                 "--", ctx.impls[name].client, cc] + flags + s.extra
                                + ["-c", s.path, "-o", os.path.join(bdir, f"{name}.o")])
                        rc, text = table.run(argv, env=env, cwd=bdir, timeout=900)
                        ms = _task_clock_ms(text)
                        if rc != 0 or ms is None:
                            errors.append(f"{project.name} {mode} {name} {os.path.basename(s.path)}: "
                                          + text.strip()[-300:])
                            continue
                        sums[name].append(ms)
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
         f"Each sampled file compiled {REPEAT} times by each client against our daemon; "
         "mean over the files.", "",
         "| project | mode | files | ours ms/job | stock ms/job | ratio |",
         "|---|---|---:|---:|---:|---:|"]
    for pname, modes in data.items():
        for mode, r in modes.items():
            ratio = r["ours"] / r["stock"] if r["stock"] else None
            L.append(f"| {pname} | {mode} | {r['files']} | {r['ours']:.2f} | {r['stock']:.2f} | "
                     + (f"{ratio:.2f}" if ratio is not None else "–") + " |")
    L.append("")
    return L
