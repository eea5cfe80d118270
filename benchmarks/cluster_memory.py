"""Peak memory of ``photocaption cluster caption`` runs (the driver, and the driver with every Ray process it
started) at a small and a large number of photos: neither may grow with the number of photos.

    nice -n 10 python benchmarks/cluster_memory.py [--small 5000] [--large 20000] [--skip-only 20000,200000]
                                                   [--no-caption] [--code CHECKOUT] [--images DIR] [--list FILE]

Two kinds of run, each at both counts:
- ``caption``: a folder of N photos captioned from nothing (the whole pipeline: listing, decoding, the model,
  the results written). N photos take N / (photos/s) seconds: about 3 and 11 minutes here for 5,000 and 20,000.
- ``skip-only`` (cheap, so it can go to 200,000): the results already hold every photo (a part written by this
  script with each photo's path, size and mtime), so the run only lists, stats and skips: the step that used to
  keep a list of every photo and a set of the done ones in the driver.
The photos are hard links to the Flickr8k test photos (as many rounds as needed) in one temporary folder, given
to the command as one SOURCE folder. RSS and PSS are summed over the command and its descendants every 0.2 s:
in the RSS sum shared memory (Ray's object store) counts once per process that maps it, so it overstates the
total; PSS splits shared pages between the processes that map them, so its sum is the run's real footprint.
The largest processes' own peaks (by process title) say where memory goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.cluster_faults import FLICKR  # noqa: E402
from benchmarks.process_tree import descendants, pss_mib, rss_mib  # noqa: E402
from desktop_app.cluster.results import SCHEMA, read_results  # noqa: E402


def peak_run(folder: Path, out: Path, code: Path | None = None) -> dict:
    """One run over ``folder`` (of the photocaption in ``code``, a checkout, when given: to compare with an older
    commit): peak summed RSS and PSS of the run, the driver's peak RSS (MiB), each process's peak RSS by its
    title, seconds and the summary line."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(code)} if code else None
    run = subprocess.Popen([sys.executable, "-m", "desktop_app", "cluster", "caption", "--out", str(out), str(folder)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=code)
    peak = {"rss": 0.0, "pss": 0.0, "driver": 0.0}
    each: dict[str, float] = {}
    while run.poll() is None:
        below = descendants(run.pid)
        rss = {pid: rss_mib(pid) for pid in [run.pid, *below]}
        peak["driver"] = max(peak["driver"], rss[run.pid])
        peak["rss"] = max(peak["rss"], sum(rss.values()))
        peak["pss"] = max(peak["pss"], sum(map(pss_mib, rss)))
        for pid, title in below.items():
            name = title.split()[0].rsplit("/", 1)[-1] if title else "?"
            each[name] = max(each.get(name, 0.0), rss[pid])
        time.sleep(0.2)
    stderr = run.stderr.read()
    if run.returncode != 0:
        sys.exit(f"the run failed ({run.returncode}):\n{stderr[-3000:]}")
    summary = next((line for line in reversed(stderr.splitlines()) if line.startswith("captioned ")), "")
    return {**peak, "each": each, "seconds": time.perf_counter() - start, "summary": summary.split(";")[0]}


def link_photos(sources: list[Path], folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        source = sources[i % len(sources)]
        try:
            os.link(source, folder / f"{i:07d}-{source.name}")
        except OSError:  # another file system: a copy
            shutil.copyfile(source, folder / f"{i:07d}-{source.name}")


def mark_done(folder: Path, out: Path) -> None:
    """A results folder that holds every photo of ``folder`` as captioned (parts of 1,000 photos, as a run writes)."""
    out.mkdir()
    rows: list[dict] = []
    for number, entry in enumerate(os.scandir(folder)):
        if rows and number % 1000 == 0:
            part = out / f"part-{0:020d}-{number // 1000:06d}.parquet"
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), part)
            rows = []
        stat = entry.stat()
        rows.append({"path": str(Path(entry.path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                     "status": "captioned", "message": "", "model_id": "synthetic", "caption": "a photo",
                     "score": -1.0, "alternatives": [], "keywords": [], "confidence": 1.0, "needs_review": False})
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), out / f"part-{0:020d}-{999999:06d}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--skip-only", default="20000,200000", help="counts for the skip-only runs ('' for none)")
    parser.add_argument("--no-caption", action="store_true", help="only the skip-only runs")
    parser.add_argument("--code", type=Path, help="run the photocaption of this checkout (e.g. a git worktree of an "
                        "older commit) instead of this one")
    parser.add_argument("--images", type=Path, default=FLICKR / "Images")
    parser.add_argument("--list", type=Path, default=FLICKR / "Flickr_8k.testImages.txt")
    args = parser.parse_args()
    sources = [args.images / n for n in args.list.read_text().split()]
    runs = [("skip-only", int(n)) for n in args.skip_only.split(",") if n]
    runs += [] if args.no_caption else [("caption", args.small), ("caption", args.large)]
    with tempfile.TemporaryDirectory(prefix="cluster-memory-") as tmp:
        for kind, count in runs:
            folder, out = Path(tmp) / f"photos-{kind}-{count}", Path(tmp) / f"out-{kind}-{count}"
            link_photos(sources, folder, count)
            if kind == "skip-only":
                mark_done(folder, out)
            peak = peak_run(folder, out, args.code)
            rows = read_results(out).num_rows
            print(f"{kind:>9} {count:>7} photos: peak of the run RSS {peak['rss']:7.0f} MiB, PSS {peak['pss']:7.0f} "
                  f"MiB (driver RSS {peak['driver']:5.0f} MiB), {peak['seconds']:6.1f} s, {rows} result rows "
                  f"({peak['summary']})", flush=True)
            top = sorted(peak["each"].items(), key=lambda item: -item[1])[:8]
            print("          largest processes (peak RSS, MiB): " + ", ".join(f"{n} {m:.0f}" for n, m in top), flush=True)
            shutil.rmtree(folder)
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
