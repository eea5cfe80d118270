"""Fault runs of ``photocaption cluster caption``: a Ray worker killed mid-run, then the driver killed mid-run
and the run resumed; every photo must end in the results exactly once.

    nice -n 10 python benchmarks/cluster_faults.py [--photos 1000] [--images DIR] [--list FILE]

1. Worker: once the first part is written, SIGKILL the caption actor's worker process (found among the
   command's own descendants by its process title). Ray restarts the actor and retries its batches; the
   run must finish by itself.
2. Driver: once the first part is written, SIGKILL the command itself (the local Ray's head processes go with
   it; what is left 5 s later is named). A second run with the same --out resumes, and stops the processes the
   killed run recorded (desktop_app/cluster/local.py): none of them may be left after it.
After each: rows per photo (must be 1 for every photo) and the photos missing (must be none).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.process_tree import descendants  # noqa: E402
from desktop_app.cluster.local import start_time  # noqa: E402
from desktop_app.cluster.results import parts, read_results  # noqa: E402

FLICKR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flickr8k"
ROWS_PER_PART = 100


def start(photos: list[Path], out: Path) -> subprocess.Popen:
    return subprocess.Popen(["photocaption", "cluster", "caption", "--out", str(out), "--rows-per-part",
                             str(ROWS_PER_PART), *map(str, photos)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_first_part(run: subprocess.Popen, out: Path) -> None:
    while not (out.is_dir() and parts(out)):
        if run.poll() is not None:
            sys.exit(f"the run ended ({run.returncode}) before writing a part:\n{run.stderr.read()[-3000:]}")
        time.sleep(0.1)


def check(out: Path, photos: list[Path], what: str) -> bool:
    rows = Counter(read_results(out).column("path").to_pylist())
    expected = {str(p.resolve()) for p in photos}
    twice = sum(1 for n in rows.values() if n > 1)
    missing = len(expected - set(rows))
    print(f"{what}: {sum(rows.values())} rows for {len(expected)} photos in {len(parts(out))} parts; "
          f"photos with more than one row: {twice}; photos missing: {missing}")
    return twice == 0 and missing == 0 and set(rows) == expected


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return "?"


def summary_of(stderr: str) -> str:
    return next((line for line in reversed(stderr.splitlines()) if line.startswith("captioned ")), "(no summary)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--images", type=Path, default=FLICKR / "Images")
    parser.add_argument("--list", type=Path, default=FLICKR / "Flickr_8k.testImages.txt")
    args = parser.parse_args()
    photos = [args.images / n for n in args.list.read_text().split()[:args.photos]]
    ok = True
    with tempfile.TemporaryDirectory(prefix="cluster-faults-") as tmp:
        out = Path(tmp) / "worker-killed"
        run = start(photos, out)
        wait_for_first_part(run, out)
        actors = [pid for pid, title in descendants(run.pid).items() if "CaptionActor" in title]
        if not actors:
            run.kill()
            sys.exit("no caption actor process found below the run")
        os.kill(actors[0], signal.SIGKILL)
        print(f"1. killed the caption actor (pid {actors[0]}) after {len(read_results(out))} photos")
        _, stderr = run.communicate()
        print(f"   the run went on and ended with status {run.returncode}: {summary_of(stderr)}")
        ok &= run.returncode == 0 and check(out, photos, "   results")

        out = Path(tmp) / "driver-killed"
        run = start(photos, out)
        wait_for_first_part(run, out)
        below = {pid: start_time(pid) for pid in descendants(run.pid)}
        run.send_signal(signal.SIGKILL)
        run.communicate()
        done = len(read_results(out))
        time.sleep(5)  # the local Ray's processes notice their driver has gone
        left = [pid for pid, start in below.items() if start_time(pid) == start]
        print(f"2. killed the driver (pid {run.pid}) after {done} photos; 5 s later {len(left)} of its {len(below)} "
              "processes were still there: " + ", ".join(title(pid) for pid in left))
        resumed = subprocess.run(["photocaption", "cluster", "caption", "--out", str(out), *map(str, photos)],
                                 capture_output=True, text=True)
        still = [pid for pid, start in below.items() if start_time(pid) == start]
        print(f"   resumed: status {resumed.returncode}: {summary_of(resumed.stderr)}; of the killed run's processes "
              f"{len(still)} left after it (the resumed run stops what the killed one recorded)")
        ok &= resumed.returncode == 0 and check(out, photos, "   results") and not still
    print("every photo exactly once in both runs" if ok else "FAULT RUN FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
