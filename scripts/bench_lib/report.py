"""Medians, ratios, the markdown report and the SVG chart.

Every figure is the median over the runs of a configuration (runs with an
error are left out). Derived figures:
  client ms/job       client cgroup CPU / jobs (make, clients, cpp, include server)
  client overhead     client CPU minus the baseline's, per job: the cpp-only
                      baseline for plain/lzo (so: outside the preprocessor),
                      the make-only baseline for pump and local
  server ms/job       server cgroup CPU / jobs (daemons and compilers)
  daemon ms/job       the daemon processes' own CPU / jobs (no compilers)
  CPU vs local        (client + server CPU) / local build's CPU
"""

import html
import statistics

from runner import DISTRIBUTED


def _med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def one_line(res):
    if res.get("error"):
        return "ERROR " + res["error"][:160]
    j = res["jobs"]
    parts = [f"wall {res['wall_s']:.2f}s", f"client {res['client_cpu_s']:.2f}s",
             f"server {res['server_cpu_s']:.2f}s", f"daemon {1000 * res['daemon_cpu_s'] / j:.1f}ms/job"]
    if res.get("remote_ok") or res.get("fallback_local") or res.get("fallback_pump"):
        parts.append(f"remote {res['remote_ok']} fallback {res['fallback_local']}"
                     f"/{res['fallback_pump']}")
    if res.get("objects_differ"):
        parts.append(f"{res['objects_differ']} objects differ from local")
    return " ".join(parts)


class Figures:
    """Median figures of one configuration of one project."""

    def __init__(self, runs, baseline_client_s=None):
        ok = [r for r in runs if not r.get("error")]
        self.n = len(ok)
        self.failed = len(runs) - len(ok)
        if not ok:
            return
        j = ok[0]["jobs"]
        self.jobs = j
        self.wall = _med(r["wall_s"] for r in ok)
        self.client = _med(r["client_cpu_s"] for r in ok)
        self.server = _med(r["server_cpu_s"] for r in ok)
        self.total = _med(r["client_cpu_s"] + r["server_cpu_s"] for r in ok)
        self.daemon = _med(r["daemon_cpu_s"] for r in ok)
        self.is_cpu = _med(r["is_cpu_s"] for r in ok)
        self.is_hwm = _med(r["is_hwm_kb"] for r in ok)
        self.d_rss = _med(r["daemon_rss_peak_kb"] for r in ok)
        self.d_hwm = _med(r["daemon_hwm_kb"] for r in ok)
        self.lo = _med(r["lo_bytes"] for r in ok)
        self.remote = _med(r["remote_ok"] for r in ok)
        self.fb_local = _med(r["fallback_local"] for r in ok)
        self.fb_pump = _med(r["fallback_pump"] for r in ok)
        self.obj_ok = _med(r["objects_ok"] for r in ok)
        self.obj_differ = max(r["objects_differ"] for r in ok)
        self.overhead = None
        if baseline_client_s is not None:
            self.overhead = _med(r["client_cpu_s"] - baseline_client_s for r in ok)

    def ms(self, v):
        return None if v is None else 1000.0 * v / self.jobs


def _f(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def _ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def compute(proj_list, configs, results):
    """{project: {config key: Figures}}."""
    out = {}
    for p in proj_list:
        runs = results.get(p.name, {})
        base = {}
        for key in ("cpp-only", "make-only"):
            good = [r for r in runs.get(key, []) if not r.get("error")]
            base[key] = _med(r["client_cpu_s"] for r in good)
        figs = {}
        for c in configs:
            if c.key not in runs:
                continue
            if c.mode in ("plain", "lzo"):
                b = base["cpp-only"]
            elif c.mode in ("pump", "local"):
                b = base["make-only"]
            else:
                b = None
            figs[c.key] = Figures(runs[c.key], b)
        out[p.name] = figs
    return out


def markdown(args, proj_list, configs, status, results, notes, elapsed):
    figs_all = compute(proj_list, configs, results)
    L = ["# distcc benchmark: ours beside stock distcc 3.4", ""]
    L.append(f"make -j{args.jobs}, two daemons (127.0.0.2, 127.0.0.3) each `--jobs {args.jobs}`, "
             f"hosts `/{args.jobs}`; median of {args.runs} run(s)"
             + (f" ({args.libgit2_runs} for libgit2)" if "libgit2" in args.projects else "")
             + (f" ({args.real_runs} for RocksDB)" if "rocksdb" in args.projects else "")
             + f"; measured builds took {elapsed / 60:.1f} min.")
    L.append("")
    L.append("## Setup")
    for n in notes:
        L.append(f"- {n}")
    L.append("")
    L.append("## Configurations")
    L.append("| configuration | status |")
    L.append("|---|---|")
    for c in configs:
        L.append(f"| {c.label()} | {status.get(c.key, 'not run')} |")
    L.append("")
    L += headlines(proj_list, figs_all)
    for p in proj_list:
        figs = figs_all.get(p.name, {})
        local = figs.get("local")
        L.append(f"## {p.name}: {p.description}")
        L.append("")
        L.append("| configuration | wall s | jobs/s | client ms/job | client overhead ms/job "
                 "| server ms/job | daemon ms/job (no compiler) | total CPU s | CPU vs local |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in configs:
            f = figs.get(c.key)
            if f is None:
                continue
            if f.n == 0:
                L.append(f"| {c.label()} | failed | | | | | | | |")
                continue
            dist = c.mode in DISTRIBUTED
            L.append("| " + " | ".join([
                c.label(), _f(f.wall), _f(f.jobs / f.wall if f.wall else None),
                _f(f.ms(f.client)), _f(f.ms(f.overhead)) if c.mode not in ("cpp-only", "make-only") else "–",
                _f(f.ms(f.server)) if dist else "–", _f(f.ms(f.daemon)) if dist else "–",
                _f(f.total), _f(_ratio(f.total, local.total if local and local.n else None)),
            ]) + " |")
        L.append("")
        L.append("| configuration | loopback KB/job | daemon peak RSS MB (sum) | daemon VmHWM MB (max) "
                 "| include server ms/job | include server peak MB | remote OK | fell back to local "
                 "| pump preprocessed locally | objects ok / differ from local |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in configs:
            f = figs.get(c.key)
            if f is None or f.n == 0 or c.mode not in DISTRIBUTED:
                continue
            pump = c.mode == "pump"
            L.append("| " + " | ".join([
                c.label(), _f(f.lo / 1024 / f.jobs if f.lo is not None else None),
                _f(f.d_rss / 1024 if f.d_rss else None), _f(f.d_hwm / 1024 if f.d_hwm else None),
                _f(f.ms(f.is_cpu)) if pump else "–",
                _f(f.is_hwm / 1024 if f.is_hwm else None) if pump else "–",
                f"{f.remote:.0f}/{f.jobs}", _f(f.fb_local, 0), _f(f.fb_pump, 0) if pump else "–",
                f"{f.obj_ok:.0f} / {f.obj_differ}",
            ]) + " |")
        L.append("")
        rows = ratio_rows(p.name, figs, configs)
        if rows:
            L.append(f"### {p.name}: ratios (below 1 is better for ours)")
            L.append("| mode | what | ratio |")
            L.append("|---|---|---:|")
            for mode, what, r in rows:
                L.append(f"| {mode} | {what} | {_f(r)} |")
            L.append("")
    L.append("## Definitions")
    L.append("- client: CPU of make and everything it starts (clients, cpp, pump and include "
             "server); server: CPU of the daemons and the compilers they run.")
    L.append("- client overhead: client CPU minus the baseline build's client CPU (cpp-only = "
             "`gcc -E` for plain/lzo, i.e. outside the preprocessor; make-only = `CC=true` "
             "for pump), per job.")
    L.append("- daemon ms/job: the daemon processes' own CPU (their utime+stime, threads "
             "included, compilers excluded), sampled from /proc.")
    L.append("- CPU vs local: (client + server CPU) / CPU of the local build on the same machine "
             "(median of the local builds; each run builds locally before and after our configurations).")
    L.append("- remote OK: COMPILE_OK lines in the daemon logs; fell back to local: clients' "
             "'running locally' warnings; pump preprocessed locally: 'failed to get includes' "
             "warnings (the job then ran in lzo mode).")
    L.append("")
    return "\n".join(L)


def _ok(f):
    return f is not None and f.n > 0


def headlines(proj_list, figs_all):
    """The figures the daemon, client and pump issues quote, side by side."""
    L = []
    daemon_rows, client_rows, pump_rows = [], [], []
    for p in proj_list:
        figs = figs_all.get(p.name, {})
        local = figs.get("local")
        for mode in DISTRIBUTED:
            s, x, o = figs.get(f"{mode}:stock"), figs.get(f"{mode}:stock>ours"), figs.get(f"{mode}:ours")
            if _ok(s) and _ok(x):
                daemon_rows.append("| " + " | ".join([
                    p.name, mode, _f(x.jobs / x.wall), _f(s.jobs / s.wall),
                    _f(x.ms(x.daemon)), _f(s.ms(s.daemon)), _f(_ratio(x.daemon, s.daemon)),
                    _f(x.d_rss / 1024 if x.d_rss else None), _f(s.d_rss / 1024 if s.d_rss else None),
                    _f(x.d_hwm / 1024 if x.d_hwm else None), _f(s.d_hwm / 1024 if s.d_hwm else None),
                ]) + " |")
            if mode in ("plain", "lzo") and _ok(s) and _ok(o):
                client_rows.append("| " + " | ".join([
                    p.name, mode, _f(o.ms(o.overhead)), _f(s.ms(s.overhead)),
                    _f(_ratio(o.overhead, s.overhead)), _f(o.ms(o.client)), _f(s.ms(s.client)),
                ]) + " |")
        # Plain rows are there to compare pump with: none without a pump row.
        any_pump = any(_ok(figs.get(k)) for k in ("pump:ours", "pump:stock",
                                                    "pump:stock-debian>stock"))
        for key, name in (("pump:ours", "pump ours"), ("pump:stock", "pump stock (patched)"),
                          ("pump:stock-debian>stock", "pump stock-debian"), ("plain:ours", "plain ours"),
                          ("plain:stock", "plain stock")):
            f = figs.get(key)
            if not _ok(f) or not any_pump:
                continue
            pump = key.startswith("pump")
            pump_rows.append("| " + " | ".join([
                p.name, name, _f(f.ms(f.client)), _f(f.ms(f.overhead)),
                _f(_ratio(f.total, local.total if _ok(local) else None)),
                f"{f.fb_local:.0f} + {f.fb_pump:.0f}" if pump else f"{f.fb_local:.0f}",
                _f(f.ms(f.is_cpu)) if pump else "–",
                _f(f.is_hwm / 1024 if f.is_hwm else None) if pump else "–",
            ]) + " |")
    if daemon_rows:
        L.append("## Daemon under stock client load (stock client > our daemon vs stock/stock)")
        L.append("| project | mode | jobs/s ours | jobs/s stock | daemon ms/job ours | stock | ratio "
                 "| daemon peak RSS MB ours | stock | VmHWM MB ours | stock |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        L += daemon_rows + [""]
    if client_rows:
        L.append("## Client CPU per job outside the preprocessor (plain, lzo)")
        L.append("| project | mode | overhead ms/job ours | stock | ratio | client ms/job ours | stock |")
        L.append("|---|---|---:|---:|---:|---:|---:|")
        L += client_rows
        L.append("")
        L.append("Overhead here is a build's client CPU minus the cpp-only build's: a difference of two "
                 "large numbers that moves by more than the overhead itself on big units (it can come "
                 "out negative). \"Client process's own CPU per job\" below measures it directly.")
        L.append("")
    if pump_rows:
        L.append("## Pump")
        L.append("| project | configuration | client ms/job (incl. include server) | same minus make "
                 "| total CPU / local | fallbacks (local + preprocessed locally) "
                 "| include server ms/job | include server peak MB |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|")
        L += pump_rows + [""]
    return L


def ratio_rows(pname, figs, configs):
    """(mode, what, value) rows: ours/stock, stock client>our daemon vs
    stock, and ours/local."""
    rows = []
    local = figs.get("local")
    for mode in DISTRIBUTED:
        o = figs.get(f"{mode}:ours")
        s = figs.get(f"{mode}:stock")
        x = figs.get(f"{mode}:stock>ours")
        good = lambda f: f is not None and f.n > 0  # noqa: E731
        if good(o) and good(s):
            rows.append((mode, "wall ours/stock", _ratio(o.wall, s.wall)))
            rows.append((mode, "client overhead per job ours/stock", _ratio(o.overhead, s.overhead)))
            rows.append((mode, "client CPU per job ours/stock", _ratio(o.client, s.client)))
            rows.append((mode, "daemon CPU per job ours/stock", _ratio(o.daemon, s.daemon)))
            rows.append((mode, "total CPU ours/stock", _ratio(o.total, s.total)))
        if good(x) and good(s):
            rows.append((mode, "daemon CPU per job, stock client: ours/stock", _ratio(x.daemon, s.daemon)))
            rows.append((mode, "jobs/s, stock client: ours/stock", _ratio(s.wall, x.wall)))
            rows.append((mode, "daemon peak RSS, stock client: ours/stock", _ratio(x.d_rss, s.d_rss)))
        for name, f in (("ours", o), ("stock", s)):
            if good(f) and local is not None and local.n:
                rows.append((mode, f"wall {name}/local", _ratio(f.wall, local.wall)))
                rows.append((mode, f"total CPU {name}/local", _ratio(f.total, local.total)))
    return [r for r in rows if r[2] is not None]


def svg(proj_list, configs, results):
    """A horizontal bar chart of the main ratios, one group per project and
    mode, with the 1.0 line marked. Written by hand: no packages needed."""
    figs_all = compute(proj_list, configs, results)
    wanted = ("client overhead per job ours/stock", "daemon CPU per job ours/stock",
              "daemon CPU per job, stock client: ours/stock", "wall ours/stock",
              "total CPU ours/local", "total CPU stock/local")
    groups = []
    for p in proj_list:
        rows = [r for r in ratio_rows(p.name, figs_all.get(p.name, {}), configs) if r[1] in wanted]
        by_mode = {}
        for mode, what, val in rows:
            by_mode.setdefault(mode, []).append((what, val))
        for mode in DISTRIBUTED:
            if by_mode.get(mode):
                groups.append((f"{p.name} · {mode}", by_mode[mode]))
    if not groups:
        return None
    colors = {w: c for w, c in zip(wanted, ["#1f77b4", "#d62728", "#ff7f0e", "#2ca02c",
                                            "#9467bd", "#8c564b"])}
    bar_h, gap, left, width, top = 14, 10, 360, 420, 50
    vmax = max(2.0, min(4.0, max(v for _, rows in groups for _, v in rows) * 1.1))
    scale = width / vmax
    y = top
    parts = []
    for title, rows in groups:
        parts.append(f'<text x="10" y="{y + 12}" font-weight="bold">{html.escape(title)}</text>')
        y += 18
        for what, val in rows:
            w = min(val, vmax) * scale
            parts.append(f'<text x="{left - 8}" y="{y + 11}" text-anchor="end">'
                         f'{html.escape(what)}</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{colors[what]}"/>')
            label = f"{val:.2f}" + (" ▶" if val > vmax else "")
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 11}">{label}</text>')
            y += bar_h + 3
        y += gap
    height = y + 30
    one = left + 1.0 * scale
    axis = [f'<line x1="{one:.1f}" y1="{top - 8}" x2="{one:.1f}" y2="{y}" stroke="#000" '
            f'stroke-dasharray="4,3"/>',
            f'<text x="{one:.1f}" y="{top - 12}" text-anchor="middle">1.0</text>']
    for t in range(0, int(vmax) + 1):
        x = left + t * scale
        axis.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 5}" stroke="#000"/>')
        axis.append(f'<text x="{x:.1f}" y="{y + 18}" text-anchor="middle">{t}</text>')
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" '
            f'height="{height}" font-family="sans-serif" font-size="11">'
            f'<rect width="100%" height="100%" fill="#fff"/>'
            f'<text x="10" y="20" font-size="14" font-weight="bold">distcc benchmark: ratios '
            f'(ours/stock, and total CPU over the local build; below 1 is better)</text>')
    return head + "".join(parts + axis) + "</svg>\n"
