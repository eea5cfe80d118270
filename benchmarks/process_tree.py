"""A command's process tree from /proc: its descendants, their memory and CPU time (Linux only).

The cluster benchmarks need the whole tree: a local Ray's processes (GCS, raylet, workers) run below
the command that started it, not in it."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

from desktop_app.cluster.local import pids_below

TICKS = os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below ``root`` ("" where it has gone)."""
    titles: dict[int, str] = {}
    for pid in pids_below(root):
        try:
            titles[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            titles[pid] = ""
    return titles


def _proc_mib(pid: int, file: str, field: str) -> float:
    """A "Field: N kB" line of /proc/PID/FILE in MiB (0 once the process has gone)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mib(pid: int) -> float:
    return _proc_mib(pid, "status", "VmRSS")


def pss_mib(pid: int) -> float:
    """Proportional set size: shared pages split between the processes that map them, so a sum over processes
    counts Ray's object store once."""
    return _proc_mib(pid, "smaps_rollup", "Pss")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def run_measured(command: list[str], interval: float = 0.2) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``command``; returns its result, wall seconds and CPU seconds of its whole tree: the larger of the
    CPU time of this process's reaped children (the command and the descendants it reaped, so run one command
    at a time) and the sum of every process's last sampled CPU time (which also counts those it did not reap,
    less their last ``interval``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, float] = {}
    while run.poll() is None:
        for pid in [run.pid, *descendants(run.pid)]:
            seen[pid] = max(seen.get(pid, 0.0), cpu_seconds(pid))
        time.sleep(interval)
    wall = time.perf_counter() - start
    stdout, stderr = run.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return subprocess.CompletedProcess(command, run.returncode, stdout, stderr), wall, max(reaped, sum(seen.values()))
