"""Ray path vs the CLI on the same photos, in the same run: photos/s and CPU per photo of each, their ratios,
identical results.

    nice -n 10 python benchmarks/cluster_caption.py [--photos 1000] [--rounds 3] [--images DIR] [--list FILE]
                                                    [--extra-args ...]

Runs ``photocaption caption --dry-run --jsonl`` and ``photocaption cluster caption --out`` (a local Ray
started by the command) as separate processes on the first N photos of the Flickr8k test list, each
timed end to end (start-up, model loading and Ray's start included), then on 16 photos to take each
command's fixed start-up cost out: the steady rate is (N - 16) / (time for N - time for 16). On a machine
shared with other work the load moves between runs, so each round runs both commands back to back (in
turn first) and the ratios are taken per round; the medians are the result. A busy machine also favours
the command with more processes (Ray's) in the wall-clock rates, so the CPU time of each command's whole
process tree per photo is printed too: photos per CPU-second do not depend on how the cores were shared.
Compares caption, keywords, confidence, score, alternatives and needs-review per photo. The photos are only
read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.process_tree import run_measured  # noqa: E402
from desktop_app.cluster.results import read_results  # noqa: E402

FLICKR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flickr8k"
SMALL = 16
COMPARED = ("caption", "keywords", "confidence", "score", "alternatives", "needs_review")


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds of the command's process tree."""
    run, wall, cpu = run_measured(command)
    if run.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} ... failed ({run.returncode}):\n{run.stderr[-3000:]}")
    return wall, cpu


def cli_run(photos: list[Path], work: Path, name: str) -> tuple[tuple[float, float], dict[str, dict]]:
    jsonl = work / f"{name}.jsonl"
    seconds = timed(["photocaption", "caption", "--dry-run", "-q", "--jsonl", str(jsonl), *map(str, photos)])
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return seconds, {str(Path(r["path"]).resolve()): r for r in rows}


def ray_run(photos: list[Path], work: Path, name: str, extra: list[str]) -> tuple[tuple[float, float], dict[str, dict]]:
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
    print("per round: photos/s (wall clock) and photos per CPU-second of the whole process tree, CLI / Ray = ratio;"
          " steady: the 16-photo run's time taken off")
    rows, same = [], True
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
            work, measured, found = Path(tmp), {}, {}
            for name in (["cli", "ray"] if round_ % 2 else ["ray", "cli"]):
                runner = cli_run if name == "cli" else lambda p, w, tag: ray_run(p, w, tag, args.extra_args)
                small, _ = runner(photos[:SMALL], work, f"{name}-small")
                full, found[name] = runner(photos, work, name)
                measured[name] = (small, full)
        rates = {}
        for name, ((small_wall, small_cpu), (full_wall, full_cpu)) in measured.items():
            rates[name] = (n / full_wall, (n - SMALL) / (full_wall - small_wall), n / full_cpu,
                           (n - SMALL) / (full_cpu - small_cpu))
        rows.append([ray / cli for cli, ray in zip(rates["cli"], rates["ray"])])
        cells = [f"{c:.1f} / {r:.1f} = {r / c:.2f}" for c, r in zip(rates["cli"], rates["ray"])]
        print(f"round {round_}: wall {cells[0]}, steady {cells[1]}; per CPU-s {cells[2]}, steady {cells[3]}; "
              f"start-up CLI {measured['cli'][0][0]:.1f} s, Ray {measured['ray'][0][0]:.1f} s", flush=True)
        same &= report_differences(found["cli"], found["ray"], n)
    medians = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(f"median ratio Ray/CLI: wall clock {medians[0]:.2f} (steady {medians[1]:.2f}), per CPU-second "
          f"{medians[2]:.2f} (steady {medians[3]:.2f}); load average after: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("results identical (" + ", ".join(COMPARED) + f") for all {n} photos in every round" if same
          else "results DIFFER (see above)")
    sys.exit(0 if same else 1)


def report_differences(cli: dict[str, dict], ray: dict[str, dict], n: int) -> bool:
    """Print what differs between the two commands' results; True when nothing does."""
    if set(cli) != set(ray):
        print(f"DIFFERENT PHOTOS: {len(set(cli) - set(ray))} only in the CLI's, "
              f"{len(set(ray) - set(cli))} only in Ray's")
    differ = {field: sum(cli[p][field] != ray[p][field] for p in set(cli) & set(ray)) for field in COMPARED}
    if any(differ.values()):
        print("results DIFFER: " + ", ".join(f"{field} on {k} of {n} photos" for field, k in differ.items() if k))
    return set(cli) == set(ray) and not any(differ.values())


if __name__ == "__main__":
    main()
