"""CPU and memory accounting, and the private network namespace.

Client side (make, clients, cpp, include server) and server side (daemons
and the compilers they run) are separated with two cgroups v2 per build:
every process is moved into its group before exec, so cpu.stat usage_usec
counts it and all its descendants, including those that already exited.
No controller needs to be enabled for that (cpu.stat is always there).

Without a writable cgroup2 hierarchy, the fallback is getrusage(CHILDREN)
deltas around waiting for make (client) and for the daemons (server), which
is exact as long as the harness reaps everything itself (it is a subreaper).

The harness moves itself into a new network namespace when it can: the
daemons on 127.0.0.2/127.0.0.3 are then alone on the loopback device, so
its byte counters measure this build only, and no port clashes with other
programs on the machine.
"""

import ctypes
import fcntl
import os
import resource
import socket
import struct

CLONE_NEWNET = 0x40000000


def cgroup2_mount():
    """The cgroup2 mount point, or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    fields = left.split()
                    return fields[4], fields[3]
    except OSError:
        pass
    return None


def own_cgroup2_path():
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


class Cgroup:
    """One cgroup v2 directory."""

    def __init__(self, path):
        self.path = path

    def procs_file(self):
        return os.path.join(self.path, "cgroup.procs")

    def pids(self):
        try:
            with open(self.procs_file()) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def cpu_s(self):
        """usage_usec of cpu.stat in seconds."""
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                key, _, val = line.partition(" ")
                if key == "usage_usec":
                    return int(val) / 1e6
        return 0.0

    def memory_peak_kb(self):
        """memory.peak when the memory controller is enabled here, else None."""
        try:
            with open(os.path.join(self.path, "memory.peak")) as f:
                return int(f.read()) // 1024
        except (OSError, ValueError):
            return None

    def remove(self, table):
        """Ends what is left inside (processes this run started) and removes
        the directory."""
        for _ in range(5):
            pids = self.pids()
            if not pids:
                break
            table.end(pids, grace=2.0)
        try:
            os.rmdir(self.path)
        except OSError:
            pass


class CgroupSet:
    """A parent cgroup for the whole run, with per-build children."""

    def __init__(self, base):
        self.base = base
        self.seq = 0
        self.live = []

    @staticmethod
    def create(table):
        """Returns (CgroupSet, None) or (None, reason)."""
        mount = cgroup2_mount()
        if mount is None:
            return None, "no cgroup2 hierarchy mounted"
        mnt, root = mount
        own = own_cgroup2_path()
        if own is None:
            return None, "process is not in a cgroup2 hierarchy"
        rel = os.path.relpath(own, root) if own.startswith(root) else own.lstrip("/")
        base = os.path.normpath(os.path.join(mnt, rel, f"distcc-bench-{os.getpid()}"))
        try:
            os.mkdir(base)
        except OSError as e:
            return None, f"cannot create {base}: {e.strerror}"
        cg = CgroupSet(base)
        probe = cg.group("probe")
        try:
            rc, out = table.run(["true"], cgroup=probe, timeout=10)
            ok = rc == 0 and probe.cpu_s() >= 0
        except OSError as e:
            ok, out = False, str(e)
        probe.remove(table)
        cg.live.remove(probe)
        if not ok:
            cg.close(table)
            return None, f"cannot move processes into {base}: {out.strip()[:200]}"
        return cg, None

    def group(self, name):
        self.seq += 1
        path = os.path.join(self.base, f"{name}-{self.seq}")
        os.mkdir(path)
        g = Cgroup(path)
        self.live.append(g)
        return g

    def release(self, group, table):
        group.remove(table)
        if group in self.live:
            self.live.remove(group)

    def close(self, table):
        for g in list(self.live):
            self.release(g, table)
        try:
            os.rmdir(self.base)
        except OSError:
            pass


def children_cpu_s():
    """CPU of all reaped children of the harness so far (fallback accounting)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def enter_private_netns():
    """Moves the harness into a new network namespace with loopback up.
    Returns None on success, or the reason it could not."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            return f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
            req = struct.pack("16sH14s", b"lo", 0, b"")
            flags = struct.unpack("16sH14s", fcntl.ioctl(s, siocgifflags, req))[1]
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))
        finally:
            s.close()
    except OSError as e:
        return f"loopback setup failed: {e}"
    return None


def loopback_bytes():
    """Bytes received on lo in this network namespace (/proc/self/net/dev
    follows the reader's namespace; /sys/class/net does not)."""
    try:
        with open("/proc/self/net/dev") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name.strip() == "lo":
                    return int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return 0
