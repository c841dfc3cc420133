"""Readings from /proc: a process's CPU time and RSS, loopback bytes, and machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/PID/stat fields 14 and 15."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / _TICK


def write_calls(pid: int) -> int:
    """Write system calls ``pid`` made so far (``syscw`` of /proc/PID/io: write and writev,
    which is how uvloop and Node send on a socket); 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("syscw:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def self_cpu_seconds() -> float:
    """User + system CPU of this process (the generator)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loopback_bytes() -> int:
    """Bytes received on ``lo`` (equal to bytes sent): every TCP segment, headers included."""
    try:
        lines = Path("/proc/net/dev").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[0])
    return 0


def cpu_times() -> dict[int, tuple[int, int, int]]:
    """Per CPU, from /proc/stat: (busy ticks, softirq+irq ticks, all ticks).

    Busy counts user, nice, system, irq and softirq. Loopback TCP work runs largely in softirq,
    which the kernel charges to no process, so a pinned server's /proc/PID/stat time can be
    well under its core's busy time.
    """
    out: dict[int, tuple[int, int, int]] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *values = line.split()
                v = [int(x) for x in values[:8]]
                user, nice, system, idle, iowait, irq, softirq, steal = v
                busy = user + nice + system + irq + softirq
                out[int(name[3:])] = (busy, irq + softirq, busy + idle + iowait + steal)
    return out


def core_figures(before: dict[int, tuple[int, int, int]],
                 after: dict[int, tuple[int, int, int]]) -> dict[str, dict[str, float]]:
    """Busy and softirq share of each CPU between two ``cpu_times`` readings."""
    out: dict[str, dict[str, float]] = {}
    for cpu, (busy1, soft1, total1) in after.items():
        busy0, soft0, total0 = before.get(cpu, (0, 0, 0))
        total = max(1, total1 - total0)
        out[f"cpu{cpu}"] = {
            "busy": round((busy1 - busy0) / total, 3),
            "softirq": round((soft1 - soft0) / total, 3),
            "busy_s": round((busy1 - busy0) / _TICK, 3),
        }
    return out


def _ksoftirqd_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().startswith("ksoftirqd"):
                    pids.append(int(entry.name))
    return pids


_KSOFTIRQD: list[int] | None = None


def ksoftirqd_seconds() -> float:
    """CPU of the ksoftirqd threads: softirq work the kernel deferred (loopback TCP, mostly)."""
    global _KSOFTIRQD
    if _KSOFTIRQD is None:
        _KSOFTIRQD = _ksoftirqd_pids()
    total = 0.0
    for pid in _KSOFTIRQD:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += cpu_seconds(pid)
    return total


@dataclass(frozen=True, slots=True)
class Snapshot:
    """CPU of server and generator, loopback bytes and a monotonic time, taken together.

    ``server_cpu`` sums every server process (the nodes of a cluster); ``node_cpu`` has each
    one and ``aux_cpu`` the other processes a run accounts for by name (``redis``).
    """

    t: float
    server_cpu: float
    gen_cpu: float
    lo_bytes: int
    cores: dict[int, tuple[int, int, int]]
    ksoftirqd: float
    node_cpu: tuple[float, ...] = ()
    aux_cpu: dict[str, float] = field(default_factory=dict)
    server_writes: int = 0
    """Write system calls of the server processes so far (``write_calls``)."""

    @classmethod
    def take(cls, server_pid: int | Sequence[int] | None,
             aux: dict[str, int] | None = None) -> Snapshot:
        if server_pid is None:
            pids: Sequence[int] = ()
        elif isinstance(server_pid, int):
            pids = (server_pid,)
        else:
            pids = server_pid
        nodes = tuple(cpu_seconds(pid) for pid in pids)
        aux_cpu = {name: cpu_seconds(pid) for name, pid in (aux or {}).items()}
        return cls(time.monotonic(), sum(nodes), self_cpu_seconds(), loopback_bytes(),
                   cpu_times(), ksoftirqd_seconds(), nodes, aux_cpu,
                   sum(write_calls(pid) for pid in pids))


def raise_fd_limit() -> int:
    """Raise this process's open-file soft limit to the hard limit; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin_self(cpus: set[int]) -> bool:
    """Pin this process to ``cpus`` when the machine has them; True when pinned."""
    try:
        available = os.sched_getaffinity(0)
        if not cpus or not cpus <= available or cpus == available:
            return False
        os.sched_setaffinity(0, cpus)
    except OSError:
        return False
    return True


def machine_facts() -> dict[str, object]:
    """nproc, CPU model, kernel, memory, Python and Node versions."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    node = ""
    with contextlib.suppress(OSError):
        node = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "os": platform.platform(),
        "memory_mib": mem_kib // 1024,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "node": node,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }
