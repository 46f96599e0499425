"""Child processes of the benchmark: spawning, reaping, sampling, cleanup.

The harness makes itself a child subreaper, so every process it starts, and
every process those leave behind (the daemonised include server, the
daemons' children), stays a descendant of the harness. That gives two
guarantees: cleanup can find and end exactly the processes this run started
(by PID, walking /proc/<pid>/task/*/children), and orphans are reaped here
instead of lingering as zombies under an init that does not reap.

Every child is started through ProcessTable.spawn/run, which registers it
under a lock, so the orphan reaper never steals the exit status of a process
that subprocess is waiting for.
"""

import ctypes
import os
import signal
import subprocess
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Interrupted(Exception):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""


def set_subreaper():
    """Makes this process the reaper of its orphaned descendants."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except OSError:
        return False


def children_of(pid):
    """Direct children of pid (all its threads), from /proc."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def descendants(roots):
    """All live descendants of the given PIDs (not the roots), breadth first."""
    seen, todo, out = set(roots), list(roots), []
    for _ in range(100000):
        if not todo:
            break
        pid = todo.pop()
        for child in children_of(pid):
            if child not in seen:
                seen.add(child)
                out.append(child)
                todo.append(child)
    return out


def read_stat(pid):
    """(state, ppid, cpu_seconds, starttime) of a process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(")") + 2 :].split()
    # Fields after the command: state(3) ppid(4) ... utime(14) stime(15) ... starttime(22)
    state, ppid = rest[0], int(rest[1])
    cpu = (int(rest[11]) + int(rest[12])) / CLK_TCK
    return state, ppid, cpu, int(rest[19])


def read_cpu_s(pid, stat_cpu):
    """CPU seconds of a process: the sum of its live threads' schedstat
    run time (nanoseconds), or utime+stime from /proc/<pid>/stat (clock
    ticks, but including threads that already exited), whichever is larger."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return stat_cpu
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return max(total / 1e9, stat_cpu)


def read_mem_kb(pid):
    """(VmRSS, VmHWM) in KiB, zeros if unknown."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def read_exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def read_argv(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


class ProcessTable:
    """The processes this harness started, and the means to end them."""

    def __init__(self):
        self.me = os.getpid()
        self.lock = threading.Lock()
        self.popens = {}
        self.subreaper = set_subreaper()

    def spawn(self, argv, cgroup=None, **kw):
        """Starts argv in a new session (so a daemon's killpg cannot reach the
        harness), optionally moved into a cgroup before exec."""
        procs_file = cgroup.procs_file() if cgroup is not None else None

        def setup():
            os.setsid()
            if procs_file:
                fd = os.open(procs_file, os.O_WRONLY)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)

        with self.lock:
            p = subprocess.Popen(argv, preexec_fn=setup, **kw)
            self.popens[p.pid] = p
        return p

    def wait(self, p, timeout=None):
        """Waits for a spawned process; forgets it once it has exited."""
        try:
            rc = p.wait(timeout=timeout)
        finally:
            if p.returncode is not None:
                with self.lock:
                    self.popens.pop(p.pid, None)
        return rc

    def run(self, argv, timeout=600, **kw):
        """Runs a command to completion, like subprocess.run with capture."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.STDOUT)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = self.spawn(argv, **kw)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.end([p.pid] + descendants([p.pid]))
            self.wait(p, timeout=10)
            raise
        finally:
            with self.lock:
                if p.returncode is not None:
                    self.popens.pop(p.pid, None)
        text = out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")
        return p.returncode, text

    def reap_orphans(self):
        """Reaps exited descendants that were re-parented to the harness."""
        with self.lock:
            for pid in children_of(self.me):
                if pid in self.popens:
                    continue
                st = read_stat(pid)
                if st and st[0] == "Z":
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass

    def end(self, pids, grace=3.0):
        """SIGTERM, then SIGKILL after `grace` seconds, to the given PIDs
        (processes this run started or their descendants)."""
        pids = [p for p in pids if p != self.me]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.reap_orphans()
            self._poll_popens()
            alive = [p for p in pids if _alive(p)]
            if not alive:
                return
            time.sleep(0.05)
        for pid in pids:
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        for _ in range(100):
            self.reap_orphans()
            self._poll_popens()
            if not any(_alive(p) for p in pids):
                break
            time.sleep(0.02)

    def _poll_popens(self):
        with self.lock:
            for pid, p in list(self.popens.items()):
                if p.poll() is not None:
                    self.popens.pop(pid, None)

    def end_all(self):
        """Ends every descendant of the harness (used at exit and on signals)."""
        for _ in range(5):
            pids = descendants([self.me])
            if not pids:
                break
            self.end(pids, grace=2.0)
        self._poll_popens()


def _alive(pid):
    st = read_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


class Sampler(threading.Thread):
    """Samples the processes of a build every `interval` seconds.

    server_pids()/client_pids() return the PIDs to look at (members of the
    cgroups, or descendants of the daemons / make). Records, per process
    (keyed by pid and start time so PID reuse is harmless):
      - the last CPU seen while the process was a daemon (its executable is
        one of daemon_exes): daemon CPU without the compilers it runs;
      - peak sum of the daemons' resident memory, and their peak VmHWM;
      - the include server's CPU and peak VmHWM (is_match(pid, exe, argv)).
    Also reaps orphans on every tick.
    """

    def __init__(self, table, interval, server_pids, client_pids, daemon_exes, is_match):
        super().__init__(daemon=True)
        self.table = table
        self.interval = interval
        self.server_pids = server_pids
        self.client_pids = client_pids
        self.daemon_exes = set(daemon_exes)
        self.is_match = is_match
        self.stop_event = threading.Event()
        self.daemon_cpu = {}
        self.daemon_rss_peak_kb = 0
        self.daemon_hwm_kb = 0
        self.is_cpu = {}
        self.is_hwm_kb = 0
        self.ticks = 0

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.table.reap_orphans()
            self.stop_event.wait(self.interval)

    def finish(self):
        """Stops the thread and takes one last sample."""
        self.stop_event.set()
        self.join(timeout=10)
        self.sample()

    def sample(self):
        self.ticks += 1
        rss_sum = 0
        for pid in self.server_pids():
            st = read_stat(pid)
            if st is None or st[0] == "Z":
                continue
            if read_exe(pid) in self.daemon_exes:
                self.daemon_cpu[(pid, st[3])] = read_cpu_s(pid, st[2])
                rss, hwm = read_mem_kb(pid)
                rss_sum += rss
                self.daemon_hwm_kb = max(self.daemon_hwm_kb, hwm)
        self.daemon_rss_peak_kb = max(self.daemon_rss_peak_kb, rss_sum)
        for pid in self.client_pids():
            st = read_stat(pid)
            if st is None or st[0] == "Z":
                continue
            # Read every time: a forked child execs into something else.
            if self.is_match(pid, read_exe(pid), read_argv(pid)):
                self.is_cpu[(pid, st[3])] = read_cpu_s(pid, st[2])
                self.is_hwm_kb = max(self.is_hwm_kb, read_mem_kb(pid)[1])

    def results(self):
        return {
            "daemon_cpu_s": sum(self.daemon_cpu.values()),
            "daemon_procs": len(self.daemon_cpu),
            "daemon_rss_peak_kb": self.daemon_rss_peak_kb,
            "daemon_hwm_kb": self.daemon_hwm_kb,
            "is_cpu_s": sum(self.is_cpu.values()),
            "is_hwm_kb": self.is_hwm_kb,
            "samples": self.ticks,
        }


def install_signal_handlers():
    """SIGINT/SIGTERM raise Interrupted in the main thread, so that the
    try/finally blocks run and clean up."""

    def handler(signum, _frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
