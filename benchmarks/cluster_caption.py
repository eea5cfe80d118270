"""Ray path vs the CLI on the same photos, in the same run: photos/s of each, their ratio, identical results.

    nice -n 10 python benchmarks/cluster_caption.py [--photos 1000] [--rounds 3] [--images DIR] [--list FILE]
                                                    [--extra-args ...]

Runs ``photocaption caption --dry-run --jsonl`` and ``photocaption cluster caption --out`` (a local Ray
started by the command) as separate processes on the first N photos of the Flickr8k test list, each
timed end to end (start-up, model loading and Ray's start included), then on 16 photos to take each
command's fixed start-up cost out: the steady rate is (N - 16) / (time for N - time for 16). On a machine
shared with other work the load moves between runs, so each round runs both commands back to back (in
turn first) and the ratios are taken per round; the medians are the result. Compares caption, keywords,
confidence, score, alternatives and needs-review per photo. The photos are only read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both commands")
    parser.add_argument("--images", type=Path, default=FLICKR / "Images")
    parser.add_argument("--list", type=Path, default=FLICKR / "Flickr_8k.testImages.txt")
    parser.add_argument("--extra-args", nargs=argparse.REMAINDER, default=[],
                        help="more arguments for photocaption cluster caption (e.g. --actors 2)")
    args = parser.parse_args()
    names = [n for n in args.list.read_text().split() if n][:args.photos]
    photos, n = [args.images / name for name in names], len(names)
    print(f"{n} photos from {args.list}; {os.cpu_count()} CPUs; load average before: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'round':<7}{'CLI photos/s':>14}{'Ray photos/s':>14}{'ratio':>7}{'CLI steady':>12}{'Ray steady':>12}"
          f"{'ratio':>7}{'start-up CLI / Ray, s':>24}")
    rows, same = [], True
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
            work, seconds, found = Path(tmp), {}, {}
            for name in (["cli", "ray"] if round_ % 2 else ["ray", "cli"]):
                runner = cli_run if name == "cli" else lambda p, w, tag: ray_run(p, w, tag, args.extra_args)
                small, _ = runner(photos[:SMALL], work, f"{name}-small")
                full, found[name] = runner(photos, work, name)
                seconds[name] = (small, full)
        (cli_small, cli_full), (ray_small, ray_full) = seconds["cli"], seconds["ray"]
        rates = (n / cli_full, n / ray_full, (n - SMALL) / (cli_full - cli_small), (n - SMALL) / (ray_full - ray_small))
        rows.append(rates)
        print(f"{round_:<7}{rates[0]:>14.1f}{rates[1]:>14.1f}{rates[1] / rates[0]:>7.2f}{rates[2]:>12.1f}"
              f"{rates[3]:>12.1f}{rates[3] / rates[2]:>7.2f}{f'{cli_small:.1f} / {ray_small:.1f}':>24}", flush=True)
        same &= report_differences(found["cli"], found["ray"], n)
    end_to_end = statistics.median(r[1] / r[0] for r in rows)
    steady = statistics.median(r[3] / r[2] for r in rows)
    print(f"median ratio Ray/CLI: end to end {end_to_end:.2f}, steady {steady:.2f}; load average after: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("results identical (" + ", ".join(COMPARED) + f") for all {n} photos in every round" if same
          else "results DIFFER (see above)")
    sys.exit(0 if same else 1)


def report_differences(cli: dict[str, dict], ray: dict[str, dict], n: int) -> bool:
    """Print what differs between the two commands' results; True when nothing does."""
    if set(cli) != set(ray):
        print(f"DIFFERENT PHOTOS: {len(set(cli) - set(ray))} only in the CLI's, {len(set(ray) - set(cli))} only in Ray's")
    differ = {field: sum(cli[p][field] != ray[p][field] for p in set(cli) & set(ray)) for field in COMPARED}
    if any(differ.values()):
        print("results DIFFER: " + ", ".join(f"{field} on {k} of {n} photos" for field, k in differ.items() if k))
    return set(cli) == set(ray) and not any(differ.values())


if __name__ == "__main__":
    main()
