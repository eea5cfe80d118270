"""Ray path vs the CLI on the same photos, in the same run: photos/s of each, their ratio, identical results.

    nice -n 10 python benchmarks/cluster_caption.py [--photos 1000] [--images DIR] [--list FILE] [--extra-args ...]

Runs ``photocaption caption --dry-run --jsonl`` and ``photocaption cluster caption --out`` (a local Ray
started by the command) as separate processes on the first N photos of the Flickr8k test list, each
timed end to end (start-up, model loading and Ray's start included), then again on 16 photos to take each
command's fixed start-up cost out: the steady rate is (N - 16) / (time for N - time for 16). Compares
caption, keywords, confidence, score, alternatives and needs-review per photo. The photos are only read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from desktop_app.cluster.results import read_results  # noqa: E402

FLICKR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flickr8k"
SMALL = 16
COMPARED = ("caption", "keywords", "confidence", "score", "alternatives", "needs_review")


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} ... failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return seconds


def cli_run(photos: list[Path], work: Path, name: str) -> tuple[float, dict[str, dict]]:
    jsonl = work / f"{name}.jsonl"
    seconds = timed(["photocaption", "caption", "--dry-run", "-q", "--jsonl", str(jsonl), *map(str, photos)])
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return seconds, {str(Path(r["path"]).resolve()): r for r in rows}


def ray_run(photos: list[Path], work: Path, name: str, extra: list[str]) -> tuple[float, dict[str, dict]]:
    out = work / name
    seconds = timed(["photocaption", "cluster", "caption", "--out", str(out), *extra, *map(str, photos)])
    rows = read_results(out).to_pylist()
    for r in rows:
        r["alternatives"] = [[a["caption"], a["score"]] for a in r["alternatives"]]
    return seconds, {r["path"]: r for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000, help="how many photos of the list")
    parser.add_argument("--images", type=Path, default=FLICKR / "Images")
    parser.add_argument("--list", type=Path, default=FLICKR / "Flickr_8k.testImages.txt")
    parser.add_argument("--extra-args", nargs=argparse.REMAINDER, default=[],
                        help="more arguments for photocaption cluster caption (e.g. --actors 2)")
    args = parser.parse_args()
    names = [n for n in args.list.read_text().split() if n][:args.photos]
    photos = [args.images / n for n in names]
    print(f"{len(photos)} photos from {args.list}; {os.cpu_count()} CPUs; load average before: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        work = Path(tmp)
        cli_small, _ = cli_run(photos[:SMALL], work, "cli-small")
        ray_small, _ = ray_run(photos[:SMALL], work, "ray-small", args.extra_args)
        cli_seconds, cli = cli_run(photos, work, "cli")
        ray_seconds, ray = ray_run(photos, work, "ray", args.extra_args)
    n = len(photos)
    cli_rate, ray_rate = n / cli_seconds, n / ray_seconds
    cli_steady, ray_steady = (n - SMALL) / (cli_seconds - cli_small), (n - SMALL) / (ray_seconds - ray_small)
    print(f"{'':28}{'photocaption caption':>22}{'cluster caption (Ray)':>24}{'ratio Ray/CLI':>15}")
    print(f"{'end to end, photos/s':28}{cli_rate:>22.1f}{ray_rate:>24.1f}{ray_rate / cli_rate:>15.2f}")
    print(f"{'start-up (16 photos), s':28}{cli_small:>22.1f}{ray_small:>24.1f}")
    print(f"{'steady, photos/s':28}{cli_steady:>22.1f}{ray_steady:>24.1f}{ray_steady / cli_steady:>15.2f}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if set(cli) != set(ray):
        print(f"DIFFERENT PHOTOS: {len(set(cli) - set(ray))} only in the CLI's, {len(set(ray) - set(cli))} only in Ray's")
    differ = {field: sum(cli[p][field] != ray[p][field] for p in set(cli) & set(ray)) for field in COMPARED}
    same = not any(differ.values()) and set(cli) == set(ray)
    print("results identical (" + ", ".join(COMPARED) + f") for all {n} photos" if same else
          "results DIFFER: " + ", ".join(f"{field} on {k} photos" for field, k in differ.items() if k))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
