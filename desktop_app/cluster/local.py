"""The local Ray a run starts when it is given no ``--address``: started for the run, stopped after it, also when
the run is stopped by a signal, and what a killed run left behind stopped by the next one.

Ray ties its head processes (GCS, raylet, ...) to the driver that started them (the kernel kills them when it
dies), and its workers notice the raylet gone within seconds; but after a ``kill -9`` of the driver the raylet's
two agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``, about 80 MB each) go on for a minute or more,
trying to reach the dead GCS. So a run records the processes below it (pid and start time, refreshed every
few seconds) in a file of its own under ``STATE``; the next local run stops those of a record whose driver is
gone (SIGTERM, then SIGKILL), and only those: a process is matched by pid and start time, never by name, so
another run's Ray, or anyone else's, is left alone. Linux only (``/proc``); elsewhere nothing is recorded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

STATE = Path(tempfile.gettempdir()) / f"photocaption-ray-{os.getuid() if hasattr(os, 'getuid') else 0}"
REFRESH_S = 2.0
GRACE_S = 3.0


class Stopped(KeyboardInterrupt):
    """The run was asked to stop by a signal: like Ctrl-C, it keeps the parts written and stops Ray."""


@contextlib.contextmanager
def ray_for_run(address: str | None) -> Iterator[None]:
    """Ray for one run: connected to ``address``, or with none started here (after stopping what a killed run
    left); shut down after, also when the run is stopped by SIGTERM or SIGHUP (as by Ctrl-C)."""
    import ray

    handlers = {}
    _stop_signal.clear()
    main = threading.current_thread() is threading.main_thread()
    for number in (signal.SIGTERM, signal.SIGHUP) if main else ():
        handlers[number] = signal.signal(number, _stop)
    record = None
    try:
        if address is None:
            stop_leftovers()
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
        for number in handlers:  # again: Ray's core worker puts its own in (which ends the process at once)
            signal.signal(number, _stop)
        if address is None and Path("/proc").is_dir():
            record = Record()
        yield
    finally:
        try:
            ray.shutdown()
        finally:
            if record is not None:
                record.close()
            for number, handler in handlers.items():
                signal.signal(number, handler)


_stop_signal: list[str] = []  # the signal that asked the run to stop, once one has


def _stop(number: int, frame) -> None:
    """Raise where the main thread is; an exception raised inside a weakref callback or ``__del__`` is printed
    and dropped by Python, so the signal is also remembered for ``check_stop``, which the run calls per batch."""
    _stop_signal.append(signal.Signals(number).name)
    raise Stopped(f"stopped by {_stop_signal[0]}")


def check_stop() -> None:
    if _stop_signal:
        raise Stopped(f"stopped by {_stop_signal[0]}")


class Record:
    """This run's local Ray processes in ``STATE/<pid>.json``, kept up to date by a thread until ``close``."""

    def __init__(self):
        STATE.mkdir(mode=0o700, exist_ok=True)
        self.file = STATE / f"{os.getpid()}.json"
        self.seen: dict[int, int] = {}
        self.done = threading.Event()
        self.save()
        self.thread = threading.Thread(target=self._refresh, name="local-ray-record", daemon=True)
        self.thread.start()

    def save(self) -> None:
        self.seen.update(processes_below(os.getpid()))
        alive = {pid: start for pid, start in self.seen.items() if start_time(pid) == start}
        temp = self.file.with_suffix(".tmp")
        driver = [os.getpid(), start_time(os.getpid())]
        temp.write_text(json.dumps({"driver": driver, "processes": list(alive.items())}))
        os.replace(temp, self.file)

    def _refresh(self) -> None:
        while not self.done.wait(REFRESH_S):
            try:
                self.save()
            except OSError:
                pass

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        self.file.unlink(missing_ok=True)


def stop_leftovers() -> list[int]:
    """Stop the recorded processes of local runs whose driver has gone; returns their pids."""
    stopped: list[int] = []
    for file in STATE.glob("*.json") if STATE.is_dir() else []:
        try:
            state = json.loads(file.read_text())
            driver, processes = tuple(state["driver"]), [tuple(p) for p in state["processes"]]
        except (OSError, ValueError, KeyError, TypeError):
            file.unlink(missing_ok=True)
            continue
        if start_time(driver[0]) == driver[1]:
            continue  # its run goes on
        targets = left = [pid for pid, start in processes if start_time(pid) == start]
        for number in (signal.SIGTERM, signal.SIGKILL):
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, number)
            deadline = time.monotonic() + GRACE_S
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = [pid for pid, start in processes if start_time(pid) == start]
        stopped += [pid for pid in targets if pid not in left]
        file.unlink(missing_ok=True)
    return stopped


def start_time(pid: int) -> int | None:
    """A process's start time (clock ticks after boot), which tells it from a later one with the same pid; None
    when there is none running (a zombie has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def pids_below(root: int) -> list[int]:
    """Every process below ``root``, parents before their children (zombies too: their children are still below)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def processes_below(root: int) -> dict[int, int]:
    """pid -> start time of every running process below ``root``."""
    return {pid: start for pid in pids_below(root) if (start := start_time(pid)) is not None}
