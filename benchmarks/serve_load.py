"""Load on `photocaption serve`: N concurrent clients posting photos vs the CLI pipeline on the same photos.

    python benchmarks/serve_load.py [--clients 8] [--duration 30] [--rounds 6] [--photos 300]

Starts the real server (``python -m desktop_app serve``, loopback, token) on a
free port and warms it up (10 s of the same load). Then, in ``--rounds`` turns,
one pass of the folder pipeline (`photocaption caption`'s engine, nothing
written; same photos, model, threads and decode settings) and one slice of the
load: N client threads (one keep-alive connection each) posting the photos as
raw JPEG bodies, ``--duration`` seconds in all. Taking turns lets both meet the
same machine, whose speed drifts when it is shared. Prints photos/s of each,
p50/p99 latency, errors, CPU time per photo, the server's mean batch size, the
photos its beam search steps run on, and its resident memory after the warm-up,
at the end and at its peak.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.caption_folder import BEAM  # noqa: E402
from benchmarks.photo_folders import make_folder  # noqa: E402
from benchmarks.process_tree import cpu_seconds, rss_mib  # noqa: E402
from desktop_app.captioning.captioner import Captioner  # noqa: E402
from desktop_app.captioning.pipeline import PipelineOptions, caption_photos  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAX_CLIENTS, MAX_DURATION = 64, 600  # bounded: this is a load test on the local machine, not a stress tool


CLI_OPTIONS = PipelineOptions(decode=BEAM, decode_workers=2, recaption=True)  # `photocaption caption`'s engine


def cli_pass(captioner: Captioner, paths: list[Path]) -> tuple[float, float]:
    """One pass of the folder pipeline over ``paths`` (nothing written): (seconds, CPU seconds)."""
    cpu, start = cpu_seconds(os.getpid()), time.perf_counter()
    counts = caption_photos(paths, captioner, CLI_OPTIONS)
    assert counts["captioned"] == len(paths), counts
    return time.perf_counter() - start, cpu_seconds(os.getpid()) - cpu


def start_server(args: argparse.Namespace, config: Path) -> tuple[subprocess.Popen, int, str]:
    command = [sys.executable, "-m", "desktop_app", "serve", "--host", "127.0.0.1", "--port", "0", "--provider", "cpu",
               "--threads", str(args.server_threads), "--max-wait-ms", str(args.max_wait_ms),
               "--max-queue", str(max(64, 2 * args.clients))]
    if args.bundle:
        command += ["--model", str(args.bundle)]
    env = {**os.environ, "XDG_CONFIG_HOME": str(config), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("serving http://"):
            port = int(line.split()[1].rsplit(":", 1)[1])
            # Keep reading its output so the pipe never fills and blocks the server.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, port, (config / "photocaption" / "serve-token").read_text().strip()
    raise SystemExit("the server did not start:\n" + "".join(output))


def post(connection: http.client.HTTPConnection, token: str, photo: bytes) -> tuple[int, bytes]:
    connection.request("POST", "/v1/caption", body=photo,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"})
    response = connection.getresponse()
    return response.status, response.read()


def get_json(port: int, token: str, path: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    return json.loads(connection.getresponse().read())


def load(port: int, token: str, photos: list[bytes], clients: int, duration: float, offset: int = 0) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = time.perf_counter()
    stop_at = start + duration

    def client(n: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = offset + n * len(photos) // clients  # each client starts at its own place in the folder
        while time.perf_counter() < stop_at:
            sent = time.perf_counter()
            try:
                status, body = post(connection, token, photos[i % len(photos)])
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            if status == 200:
                latencies[n].append(time.perf_counter() - sent)
            else:
                errors.append(f"{status}: {body[:200]!r}")
            i += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - start, "latencies": [t for per_client in latencies for t in per_client],
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help=f"concurrent clients (1-{MAX_CLIENTS})")
    parser.add_argument("--duration", type=float, default=30.0, help=f"seconds of load (at most {MAX_DURATION})")
    parser.add_argument("--rounds", type=int, default=6, help="CLI passes and load slices taken in turn")
    parser.add_argument("--photos", type=int, default=300, help="distinct photos (Flickr8k-size JPEGs)")
    parser.add_argument("--threads", type=int, default=2, help="model threads of the CLI pipeline (its default: one per core)")
    parser.add_argument("--server-threads", type=int, default=0,
                        help="the server's model threads per stage (0 = its default: half the cores)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the server's batching wait")
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "photocaption-bench")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration <= MAX_DURATION or args.rounds < 1:
        parser.error(f"--clients must be 1-{MAX_CLIENTS}, --duration 0-{MAX_DURATION} s, --rounds at least 1")

    paths = make_folder(args.work / "500px", args.photos, (500, 375))
    photos = [p.read_bytes() for p in paths]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    captioner = Captioner.open(args.bundle, provider="cpu", threads=args.threads)
    caption_photos(paths[:CLI_OPTIONS.batch_size], captioner, CLI_OPTIONS)  # warm-up
    cli = {"seconds": 0.0, "cpu": 0.0, "photos": 0}
    served = {"seconds": 0.0, "cpu": 0.0, "client_cpu": 0.0, "latencies": [], "errors": []}

    with tempfile.TemporaryDirectory() as config:
        process, port, token = start_server(args, Path(config))
        try:
            # Warm-up under the same load: RSS levels off after ~20 s of batches of every size (10 s gets most of it).
            warm = load(port, token, photos, args.clients, min(10.0, args.duration))
            assert not warm["errors"], warm["errors"][:3]
            rss_start, peak, sampling = rss_mib(process.pid), [0.0], threading.Event()

            def sample() -> None:
                while not sampling.wait(0.5):
                    peak[0] = max(peak[0], rss_mib(process.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            # CLI passes and load slices in turn, so both meet the same machine (it is shared and its speed drifts).
            for round_ in range(args.rounds):
                seconds, cpu = cli_pass(captioner, paths)
                cli["seconds"] += seconds
                cli["cpu"] += cpu
                cli["photos"] += len(paths)
                cpu, own_cpu = cpu_seconds(process.pid), cpu_seconds(os.getpid())
                result = load(port, token, photos, args.clients, args.duration / args.rounds,
                              offset=round_ * len(photos) // args.rounds)
                served["cpu"] += cpu_seconds(process.pid) - cpu
                served["client_cpu"] += cpu_seconds(os.getpid()) - own_cpu
                served["seconds"] += result["seconds"]
                served["latencies"] += result["latencies"]
                served["errors"] += result["errors"]
            sampling.set()
            sampler.join()
            rss_end = rss_mib(process.pid)
            batches = get_json(port, token, "/v1/health")["batches"]
        finally:
            process.terminate()
            process.wait(timeout=30)

    done = len(served["latencies"])
    cli_rate, rate = cli["photos"] / cli["seconds"], done / served["seconds"]
    cli_cpu, server_cpu = cli["cpu"] / cli["photos"] * 1000, served["cpu"] / max(done, 1) * 1000
    p50, p99 = (np.percentile(served["latencies"], [50, 99]) * 1000) if done else (float("nan"),) * 2
    print(f"CLI pipeline, {len(paths)} photos 500x375 x {args.rounds} passes, beam 3, {args.threads} threads: "
          f"{cli_rate:.1f} photos/s, CPU {cli_cpu:.1f} ms/photo")
    print(f"server, {args.clients} clients, {args.rounds} slices, {served['seconds']:.1f} s in all: {done} photos, "
          f"{rate:.1f} photos/s = {rate / cli_rate:.0%} of the CLI (target >= 80%)")
    print(f"server CPU {server_cpu:.1f} ms/photo = {server_cpu / cli_cpu:.0%} of the CLI's "
          f"(the {args.clients} clients used {served['client_cpu'] / max(done, 1) * 1000:.1f} ms/photo more)")
    print(f"latency p50 {p50:.0f} ms, p99 {p99:.0f} ms; errors {len(served['errors'])}")
    for line in sorted(set(served["errors"]))[:5]:
        print(f"  error: {line}")
    print(f"batches: mean {batches['mean_batch']} photos, largest {batches['largest_batch']} "
          f"(max wait {args.max_wait_ms:g} ms)")
    print(f"beam search: {batches['mean_photos_per_step']} photos per step, {batches['joined_running_search']} "
          f"of {batches['batches']} batches joined a running search")
    print(f"server memory (RSS): {rss_start:.0f} MiB after warm-up, {rss_end:.0f} MiB at the end, "
          f"peak {peak[0]:.0f} MiB")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
