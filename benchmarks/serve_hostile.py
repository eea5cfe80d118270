"""The hostile requests of issue 24 against a running `photocaption serve`, each answered in words, none harmful.

Starts the real server (its own process, the shipped model, ``--allow-folder`` a scratch folder)
and sends: an EPS named .jpg (``{ } loop``: it would hang Ghostscript), a 280 KB 16-bit
12000x12000 PNG, a chunked upload past the limit, 70 clients that stall inside their bodies,
JSON nested 100,000 deep, a 5,000-digit number, a path with lone surrogates and one with a
300-character name, a FIFO and a symlinked folder to read by path, and a cross-site form post.
Watches the process table for Ghostscript the whole time and the server's peak memory (VmHWM).

    nice -n 10 python benchmarks/serve_hostile.py

Prints one line per case (status and the answer's words) and the totals; exit 1 if any case failed.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BUNDLE = ROOT / "resources" / "models" / "default"
SAMPLE = ROOT / "resources" / "samples" / "chelsea.jpg"


def ghostscript_running() -> list[str]:
    """Command lines of running processes named gs (Ghostscript)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() in ("gs", "gsc", "gswin64c"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


class Server:
    def __init__(self, folder: Path, config: Path):
        env = {**os.environ, "XDG_CONFIG_HOME": str(config), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "desktop_app", "serve", "--port", "0", "--provider", "cpu", "--threads", "2",
             "--model", str(BUNDLE), "--allow-folder", str(folder)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()
        while not any(line.startswith("serving http://") for line in self.log):
            self.log.append(self.lines.get(timeout=120))
        self.url = next(line for line in self.log if line.startswith("serving ")).split()[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.token = (config / "photocaption" / "serve-token").read_text().strip()

    def peak_mib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) // 1024

    def call(self, path: str, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, data=data, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read()).get("caption", "")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())["error"]

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=30)
        while not self.lines.empty():
            self.log.append(self.lines.get())
        return "".join(self.log)


def raw(port: int, head: str, body: bytes = b"", read: bool = True, timeout: float = 60) -> bytes:
    """One HTTP request over a plain socket; the first line of the answer (or what the server did)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        try:
            client.sendall(head.encode() + body)
        except OSError as exc:
            return f"connection closed while sending ({exc.strerror})".encode()
        try:
            return client.recv(200).split(b"\r\n")[0] if read else b""
        except OSError as exc:
            return f"no answer ({exc})".encode()


def run_cases(server: Server, allowed: Path, case: Callable[[str, bool, str], None]) -> None:
    """Every hostile request in turn; ``case`` records how each was answered."""
    from test_pixels import _png_16bit_grey

    auth = f"Authorization: Bearer {server.token}\r\n"
    host = f"Host: 127.0.0.1:{server.port}\r\n"
    jpeg = SAMPLE.read_bytes()
    status, words = server.call("/v1/caption", (ROOT / "tests" / "data" / "loop.eps").read_bytes(), "image/jpeg")
    case("EPS named .jpg", status == 422 and "EPS" in words, f"{status} {words}")
    before = server.peak_mib()
    status, words = server.call("/v1/caption", _png_16bit_grey(12000, 12000), "image/png")
    case("280 KB 16-bit 12000x12000 PNG", status == 422 and server.peak_mib() - before < 200,
         f"{status} {words}; server peak {before} -> {server.peak_mib()} MiB")
    chunks = b"".join(b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n" for _ in range(400))  # 25 MiB
    answer = raw(server.port, f"POST /v1/caption HTTP/1.1\r\n{host}{auth}Content-Type: image/jpeg\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n", chunks)
    case("chunked 25 MiB upload, limit 16 MiB", b"413" in answer or b"closed while sending" in answer, answer.decode())
    slow = []
    for _ in range(70):
        client = socket.create_connection(("127.0.0.1", server.port))
        client.sendall(f"POST /v1/caption HTTP/1.1\r\n{host}{auth}Content-Type: image/jpeg\r\n"
                       "Content-Length: 1000000\r\n\r\n".encode() + b"\xff\xd8")
        slow.append(client)
    time.sleep(0.5)
    status, words = server.call("/v1/caption", jpeg, "image/jpeg")
    case("an upload while 70 clients stall in their bodies", status == 200, f"{status} {words}")
    answers, deadline = [], time.monotonic() + 30  # the server drops a stalled body after 15 s
    for client in slow:
        client.settimeout(max(deadline - time.monotonic(), 0.1))
        try:
            answers.append(client.recv(200).split(b"\r\n")[0].decode())
        except OSError as exc:
            answers.append(str(exc))
        client.close()
    case("the 70 stalled clients", all("408" in a for a in answers), f"{sum('408' in a for a in answers)} got 408")
    for name, body in [("JSON nested 100,000 deep", b"[" * 100_000),
                       ("a 5,000-digit number", b'{"path": "/x.jpg", "beam": ' + b"7" * 5000 + b"}"),
                       ("lone surrogates in a path", json.dumps({"path": f"{allowed}/\ud800.jpg"}).encode()),
                       ("a 300-character name", json.dumps({"path": f"{allowed}/{'a' * 300}.jpg"}).encode()),
                       ("a FIFO by path", json.dumps({"path": str(allowed / "fifo.jpg")}).encode()),
                       ("a symlinked folder by path", json.dumps({"path": str(allowed / "escape/secret.jpg")}).encode())]:
        started = time.monotonic()
        status, words = server.call("/v1/caption/path", body, "application/json")
        case(name, 400 <= status < 500 and time.monotonic() - started < 10, f"{status} {words}")
    status, words = server.call("/v1/caption", jpeg, "image/jpeg", {"Origin": "https://evil.example"})
    case("a cross-site post (Origin: https://evil.example)", status == 403, f"{status} {words}")
    status, words = server.call("/v1/caption", jpeg, "image/jpeg")
    case("a plain upload afterwards", status == 200, f"{status} {words}")


def main() -> int:
    results: list[tuple[str, bool, str]] = []
    gs_seen: list[str] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            gs_seen.extend(ghostscript_running())
            time.sleep(0.05)

    def case(name: str, ok: bool, words: str) -> None:
        results.append((name, ok, words))
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {words}", flush=True)

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        allowed, outside = work / "allowed", work / "outside"
        (allowed / "sub").mkdir(parents=True)
        outside.mkdir()
        (allowed / "sub" / "photo.jpg").write_bytes(SAMPLE.read_bytes())
        os.mkfifo(allowed / "fifo.jpg")
        (allowed / "escape").symlink_to(outside, target_is_directory=True)
        (outside / "secret.jpg").write_bytes(SAMPLE.read_bytes())
        server = Server(allowed, work / "config")
        threading.Thread(target=watch, daemon=True).start()
        try:
            run_cases(server, allowed, case)
        finally:
            watching.set()
            log = server.stop()
    case("Ghostscript processes seen", not gs_seen, str(len(gs_seen)))
    case("tracebacks in the server's log", "Traceback" not in log, str(log.count("Traceback")))
    failed = [name for name, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)} of {len(results)} cases as they should be"
          + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
