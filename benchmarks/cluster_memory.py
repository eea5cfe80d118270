"""Peak memory of a whole ``photocaption cluster caption`` run (driver and every Ray process it started) for a
small and a large number of photos: it must not grow with the number of photos.

    nice -n 10 python benchmarks/cluster_memory.py [--small 2000] [--large 20000] [--images DIR] [--list FILE]

The photos are copies of the Flickr8k test photos (as many rounds as needed, in a temporary folder). RSS is
summed over the command and its descendants every 0.2 s; shared memory (Ray's object store) counts once per
process that maps it, so the sum overstates the total, the same way for both runs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.cluster_faults import FLICKR  # noqa: E402
from benchmarks.process_tree import descendants, rss_mib  # noqa: E402
from desktop_app.cluster.results import read_results  # noqa: E402


def peak_run(folder: Path, out: Path) -> tuple[float, float, float]:
    """Peak summed RSS, the driver's own peak RSS (MiB) and seconds of one run over ``folder``."""
    start = time.perf_counter()
    run = subprocess.Popen(["photocaption", "cluster", "caption", "--out", str(out), str(folder)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = driver = 0.0
    while run.poll() is None:
        own = rss_mib(run.pid)
        driver = max(driver, own)
        peak = max(peak, own + sum(rss_mib(pid) for pid in descendants(run.pid)))
        time.sleep(0.2)
    stderr = run.stderr.read()
    if run.returncode != 0:
        sys.exit(f"the run failed ({run.returncode}):\n{stderr[-3000:]}")
    return peak, driver, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--images", type=Path, default=FLICKR / "Images")
    parser.add_argument("--list", type=Path, default=FLICKR / "Flickr_8k.testImages.txt")
    args = parser.parse_args()
    sources = [args.images / n for n in args.list.read_text().split()]
    with tempfile.TemporaryDirectory(prefix="cluster-memory-") as tmp:
        for count in (args.small, args.large):
            folder = Path(tmp) / f"photos-{count}"
            folder.mkdir()
            for i in range(count):
                source = sources[i % len(sources)]
                shutil.copyfile(source, folder / f"{i:06d}-{source.name}")
            out = Path(tmp) / f"out-{count}"
            peak, driver, seconds = peak_run(folder, out)
            rows = read_results(out).num_rows
            print(f"{count:>6} photos: peak RSS of the run {peak:7.0f} MiB (driver {driver:5.0f} MiB), "
                  f"{seconds:6.1f} s, {rows} result rows", flush=True)
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
