"""Load on `photocaption serve`: N concurrent clients posting photos vs the CLI pipeline on the same photos.

    python benchmarks/serve_load.py [--clients 8] [--duration 30] [--photos 300] [--threads 2]

Starts the real server (``python -m desktop_app serve``, loopback, token) on a
free port, warms it up (10 s of the same load), then N client threads (one keep-alive connection each)
post the photos as raw JPEG bodies for ``--duration`` seconds. Prints photos/s,
p50/p99 latency, errors, the server's CPU time per photo, mean batch size and
resident memory at the start, the end and its peak; and, in the same run, before
and after the load, the folder pipeline (`photocaption caption`'s engine, nothing
written) on the same photos with the same model, threads and decode settings.
CPU time per photo is the steadier comparison on a shared machine.
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
from desktop_app.captioning.captioner import Captioner  # noqa: E402
from desktop_app.captioning.pipeline import PipelineOptions, caption_photos  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAX_CLIENTS, MAX_DURATION = 64, 600  # bounded: this is a load test on the local machine, not a stress tool


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc; NaN elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def cli_pipeline(bundle: Path | None, threads: int, paths: list[Path]) -> tuple[float, float]:
    """`photocaption caption --dry-run`'s engine on ``paths``: (photos/s, CPU ms per photo)."""
    captioner = Captioner.open(bundle, provider="cpu", threads=threads)
    options = PipelineOptions(decode=BEAM, decode_workers=2, recaption=True)
    caption_photos(paths[:options.batch_size], captioner, options)  # warm-up
    cpu, start = cpu_seconds(os.getpid()), time.perf_counter()
    counts = caption_photos(paths, captioner, options)
    seconds = time.perf_counter() - start
    assert counts["captioned"] == len(paths), counts
    return len(paths) / seconds, (cpu_seconds(os.getpid()) - cpu) / len(paths) * 1000


def start_server(args: argparse.Namespace, config: Path) -> tuple[subprocess.Popen, int, str]:
    command = [sys.executable, "-m", "desktop_app", "serve", "--host", "127.0.0.1", "--port", "0", "--provider", "cpu",
               "--threads", str(args.threads), "--max-wait-ms", str(args.max_wait_ms),
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


def load(port: int, token: str, photos: list[bytes], clients: int, duration: float) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start = time.perf_counter()
    stop_at = start + duration

    def client(n: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = n * len(photos) // clients  # each client starts at its own place in the folder
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
    elapsed = time.perf_counter() - start
    done = np.array([t for per_client in latencies for t in per_client])
    return {"photos": len(done), "seconds": elapsed, "rate": len(done) / elapsed, "errors": errors,
            "p50_ms": float(np.percentile(done, 50) * 1000) if len(done) else float("nan"),
            "p99_ms": float(np.percentile(done, 99) * 1000) if len(done) else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help=f"concurrent clients (1-{MAX_CLIENTS})")
    parser.add_argument("--duration", type=float, default=30.0, help=f"seconds of load (at most {MAX_DURATION})")
    parser.add_argument("--photos", type=int, default=300, help="distinct photos (Flickr8k-size JPEGs)")
    parser.add_argument("--threads", type=int, default=2, help="model threads, for the server and the pipeline")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="the server's batching wait")
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "photocaption-bench")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--clients must be 1-{MAX_CLIENTS} and --duration 0-{MAX_DURATION} s")

    paths = make_folder(args.work / "500px", args.photos, (500, 375))
    photos = [p.read_bytes() for p in paths]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    cli_before, cli_cpu_before = cli_pipeline(args.bundle, args.threads, paths)
    print(f"CLI pipeline, {len(paths)} photos 500x375, beam 3, {args.threads} threads: {cli_before:.1f} photos/s, "
          f"CPU {cli_cpu_before:.0f} ms/photo")

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
            cpu, own_cpu = cpu_seconds(process.pid), cpu_seconds(os.getpid())
            result = load(port, token, photos, args.clients, args.duration)
            server_cpu = (cpu_seconds(process.pid) - cpu) / max(result["photos"], 1) * 1000
            client_cpu = (cpu_seconds(os.getpid()) - own_cpu) / max(result["photos"], 1) * 1000
            sampling.set()
            sampler.join()
            rss_end = rss_mib(process.pid)
            batches = get_json(port, token, "/v1/health")["batches"]
        finally:
            process.terminate()
            process.wait(timeout=30)
    cli_after, cli_cpu_after = cli_pipeline(args.bundle, args.threads, paths)  # the machine may have changed
    cli, cli_cpu = (cli_before + cli_after) / 2, (cli_cpu_before + cli_cpu_after) / 2

    print(f"CLI pipeline again after the load: {cli_after:.1f} photos/s, CPU {cli_cpu_after:.0f} ms/photo "
          f"(mean {cli:.1f} photos/s, {cli_cpu:.0f} ms/photo)")
    print(f"server, {args.clients} clients for {result['seconds']:.1f} s: {result['photos']} photos, "
          f"{result['rate']:.1f} photos/s = {result['rate'] / cli:.0%} of the CLI (target >= 80%)")
    print(f"server CPU {server_cpu:.0f} ms/photo = {server_cpu / cli_cpu:.0%} of the CLI's "
          f"(the {args.clients} clients used {client_cpu:.1f} ms/photo more)")
    print(f"latency p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms; errors {len(result['errors'])}")
    for line in sorted(set(result["errors"]))[:5]:
        print(f"  error: {line}")
    print(f"batches: mean {batches['mean_batch']} photos, largest {batches['largest_batch']} "
          f"(max wait {args.max_wait_ms:g} ms)")
    print(f"server memory (RSS): {rss_start:.0f} MiB after warm-up, {rss_end:.0f} MiB at the end, "
          f"peak {peak[0]:.0f} MiB")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
