"""photocaption serve over real HTTP on a free loopback port, with the shipped model.

One server is the real command (``python -m desktop_app serve``, its own process
and token file); a second runs in this process on a model whose batches can be
held, to fill the queue and watch requests share a batch deterministically.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed (pip install -e '.[serve]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install -e '.[serve]')")

from desktop_app.captioning.captioner import Captioner  # noqa: E402
from desktop_app.captioning.decode import DecodeOptions  # noqa: E402
from desktop_app.photos.pixels import PhotoError, load_pixels  # noqa: E402
from desktop_app.serve.access import AccessError, load_or_create_token  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "resources" / "models" / "default"
CORPUS = ROOT.parent / "shared" / "datasets" / "metadata-corpus" / "images"
SAMPLE_NAMES = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "chelsea-small.png")


def call(url: str, data: bytes | None = None, token: str | None = None, content_type: str | None = None,
         method: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], object]:
    """(status, headers, parsed JSON body) for one request; 4xx/5xx answers are returned, not raised."""
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        assert b"Traceback" not in body
        return exc.code, dict(exc.headers), json.loads(body)


def multipart(fields: dict[str, str], image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
                 f"Content-Type: image/jpeg\r\n\r\n".encode() + image + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def captioner() -> Captioner:
    return Captioner.open(BUNDLE, provider="cpu", threads=2)


@pytest.fixture(scope="module")
def photos(pristine_samples) -> list[Path]:
    return [pristine_samples / name for name in SAMPLE_NAMES]


@pytest.fixture(scope="module")
def cli_results(captioner, photos) -> dict:
    """Each sample's result from the model used directly, as the CLI does."""
    return dict(zip(photos, captioner.caption_paths(photos, DecodeOptions())))


@pytest.fixture(scope="module")
def reference(cli_results) -> dict[Path, str]:
    return {p: r.text for p, r in cli_results.items()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory, pristine_samples):
    """allowed/ (a photo, a symlink leading out, a text file) and outside/ (a photo)."""
    root = tmp_path_factory.mktemp("serve-files")
    allowed, outside = root / "allowed", root / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "chelsea.jpg").write_bytes((pristine_samples / "chelsea.jpg").read_bytes())
    (outside / "coffee.jpg").write_bytes((pristine_samples / "coffee.jpg").read_bytes())
    (allowed / "escape.jpg").symlink_to(outside / "coffee.jpg")
    (allowed / "escape-dir").symlink_to(outside, target_is_directory=True)
    (allowed / "notes.jpg").write_text("not a photo\n")
    return allowed, outside


@pytest.fixture(scope="module")
def server(tmp_path_factory, folders):
    """`python -m desktop_app serve` on a free port; yields (base URL, token, its first lines of output)."""
    config = tmp_path_factory.mktemp("config")
    env = {**os.environ, "XDG_CONFIG_HOME": str(config), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "desktop_app", "serve", "--port", "0", "--provider", "cpu",
                                "--threads", "2", "--model", str(BUNDLE), "--allow-folder", str(folders[0])],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while not any(line.startswith("serving http://") for line in seen):
        try:
            seen.append(lines.get(timeout=max(deadline - time.monotonic(), 0.1)))
        except queue.Empty:
            process.kill()
            pytest.fail("photocaption serve did not start:\n" + "".join(seen))
        if process.poll() is not None and lines.empty():
            pytest.fail(f"photocaption serve exited with {process.returncode}:\n" + "".join(seen))
    url = next(line for line in seen if line.startswith("serving ")).split()[1]
    token_file = config / "photocaption" / "serve-token"
    yield url, token_file.read_text().strip(), seen, token_file
    process.terminate()
    assert process.wait(timeout=20) == 0, "SIGTERM should stop the server cleanly (requests in hand finished)"


def test_token_made_on_first_run_printed_once_and_private(server, tmp_path):
    url, token, output, token_file = server
    assert (token_file.stat().st_mode & 0o777) == 0o600
    assert sum(token in line for line in output) == 1  # printed once, at creation
    again, created = load_or_create_token(token_file)
    assert (again, created) == (token, False)
    loose = tmp_path / "token"
    loose.write_text("x" * 40)
    loose.chmod(0o644)
    with pytest.raises(AccessError, match="other users"):
        load_or_create_token(loose)


def test_caption_an_uploaded_sample(server, cli_results, pristine_samples):
    url, token, _, _ = server
    photo = pristine_samples / "astronaut.jpg"
    status, _, body = call(f"{url}/v1/caption", photo.read_bytes(), token, "image/jpeg")
    assert status == 200, body
    cli = cli_results[photo]
    assert (body["caption"], body["keywords"], body["needs_review"]) == (cli.text, cli.keywords, cli.needs_review)
    assert body["confidence"] == (None if cli.confidence is None else round(cli.confidence, 3))
    assert body["model"].startswith("sat-") and "attention" not in body and "alternatives" not in body


def test_multipart_upload_with_n_best_and_attention(server, reference, pristine_samples):
    url, token, _, _ = server
    photo = pristine_samples / "chelsea.jpg"
    data, content_type = multipart({"n_best": "3", "attention": "true"}, photo.read_bytes())
    status, _, body = call(f"{url}/v1/caption", data, token, content_type)
    assert status == 200, body
    assert body["caption"] == reference[photo] == body["alternatives"][0]["caption"]
    assert len(body["alternatives"]) == 3
    attention = body["attention"]
    assert attention["grid"] == [7, 7] and len(attention["words"]) == len(attention["weights"])
    assert all(len(row) == 49 and abs(sum(row) - 1) < 1e-2 for row in attention["weights"])


def test_bad_option_is_a_400_in_words(server, pristine_samples):
    url, token, _, _ = server
    photo = (pristine_samples / "chelsea.jpg").read_bytes()
    status, _, body = call(f"{url}/v1/caption?beam=500", photo, token, "image/jpeg")
    assert status == 400 and "beam" in body["error"]
    status, _, body = call(f"{url}/v1/caption?url=http://example.com/a.jpg", b"x", token, "image/jpeg")
    assert status == 400 and "unknown option url" in body["error"]


def test_missing_or_wrong_token_is_401(server, pristine_samples):
    url, token, _, _ = server
    photo = (pristine_samples / "chelsea.jpg").read_bytes()
    for given in (None, "wrong", token[:-1]):
        status, headers, body = call(f"{url}/v1/caption", photo, given, "image/jpeg")
        assert status == 401 and headers.get("www-authenticate") == "Bearer" and "token" in body["error"]
        assert call(f"{url}/v1/health", token=given)[0] == 401
    assert call(f"{url}/v1/health", token=token)[0] == 200


def test_request_for_another_host_name_is_refused(server):
    """DNS rebinding: a web page's name pointed at 127.0.0.1 must not reach a loopback server."""
    url, token, _, _ = server
    status, _, body = call(f"{url}/v1/health", token=token, headers={"Host": "evil.example"})
    assert status == 400 and "localhost" in body["error"]


def test_upload_over_the_limit_is_413_and_the_server_goes_on(server):
    url, token, _, _ = server
    status, _, body = call(f"{url}/v1/caption", os.urandom(20 * 1024 * 1024), token, "image/jpeg")
    assert status == 413 and "16 MiB" in body["error"]
    assert call(f"{url}/v1/health", token=token)[0] == 200


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_not_an_image_corrupt_and_bomb_are_4xx_in_words(server, pristine_samples):
    url, token, _, _ = server
    jpeg = (pristine_samples / "chelsea.jpg").read_bytes()
    status, _, body = call(f"{url}/v1/caption", b"hello", token, "text/plain")
    assert status == 415 and "image/*" in body["error"]
    status, _, body = call(f"{url}/v1/caption", b"this is not a photo at all", token, "application/octet-stream")
    assert status == 422 and "not a photo this app can open" in body["error"]
    status, _, body = call(f"{url}/v1/caption", jpeg[: len(jpeg) // 3], token, "image/jpeg")
    assert status == 422 and "corrupt or truncated" in body["error"]
    status, _, body = call(f"{url}/v1/caption", _png_header_only(20_000, 20_000), token, "image/png")
    assert status == 422 and "too many pixels" in body["error"]
    status, _, body = call(f"{url}/v1/caption", b"", token, "image/jpeg")
    assert status == 400 and "empty" in body["error"]


def corpus_sample() -> list[Path]:
    """The smallest file of every format in the corpus (to stay fast), and every one whose name says it is broken."""
    files = sorted(p for p in CORPUS.iterdir() if p.is_file() and p.suffix.lower() != ".md")
    words = ("bad", "broken", "crash", "bomb", "truncated", "zero")
    broken = [p for p in files if any(word in p.name for word in words)]
    per_format: dict[str, list[Path]] = {}
    for p in sorted(files, key=lambda p: p.stat().st_size):
        per_format.setdefault(p.suffix.lower(), []).append(p)
    return sorted(set(broken) | {group[0] for group in per_format.values()})


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/datasets/metadata-corpus is not beside the checkout")
@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's, about the broken files this test reads on purpose
def test_real_camera_and_broken_files_are_answered_as_the_cli_reads_them(server, captioner):
    """Each file is captioned exactly when the CLI's reader reads it, else refused with the CLI's reason."""
    url, token, _, _ = server
    files = corpus_sample()
    expected: dict[Path, str | None] = {}
    for path in files:
        try:
            load_pixels(path, captioner.preprocessing)
            expected[path] = None
        except PhotoError as exc:
            expected[path] = str(exc)
    readable = [p for p in files if expected[p] is None]
    captions = dict(zip(readable, (r.text for r in captioner.caption_paths(readable, DecodeOptions()))))
    with ThreadPoolExecutor(8) as pool:  # concurrent, so real files share batches
        answers = dict(zip(files, pool.map(
            lambda p: call(f"{url}/v1/caption", p.read_bytes(), token, "application/octet-stream"), files)))
    assert len(readable) >= 15 and len(files) - len(readable) >= 8
    for path in files:
        status, _, body = answers[path]
        if expected[path] is None:
            assert (status, body.get("caption")) == (200, captions[path]), path.name
        else:
            assert (status, body) == (422, {"error": f"cannot caption this photo: {expected[path]}", "status": 422}), \
                path.name


def test_caption_by_path_only_inside_the_allowed_folders(server, folders, reference, pristine_samples):
    url, token, _, _ = server
    allowed, outside = folders

    def by_path(path: str) -> tuple[int, dict]:
        status, _, body = call(f"{url}/v1/caption/path", json.dumps({"path": path}).encode(), token, "application/json")
        return status, body

    status, body = by_path(str(allowed / "chelsea.jpg"))
    assert status == 200 and body["caption"] == reference[pristine_samples / "chelsea.jpg"]
    assert by_path(str(outside / "coffee.jpg"))[0] == 403
    assert by_path(f"{allowed}/../outside/coffee.jpg") == (403, {"error": "paths with '..' are refused", "status": 403})
    for escape in ("escape.jpg", "escape-dir/coffee.jpg"):
        status, body = by_path(str(allowed / escape))
        assert status == 403 and "symlink" in body["error"]
    assert by_path("/etc/passwd")[0] == 403
    assert by_path("chelsea.jpg")[0] == 400
    assert by_path(str(allowed / "missing.jpg"))[0] == 404
    status, body = by_path(str(allowed / "notes.jpg"))
    assert status == 422 and "not a photo this app can open" in body["error"]


def test_docs_page_and_openapi_need_no_token(server):
    url, _, _, _ = server
    status, _, spec = call(f"{url}/v1/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.") and "/v1/caption/path" in spec["paths"]
    with urllib.request.urlopen(f"{url}/docs", timeout=10) as page:
        assert b"POST /v1/caption" in page.read()


def test_cli_refuses_no_token_off_loopback_and_names_the_extra(capsys, monkeypatch):
    from desktop_app.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--no-token"]) == 2
    assert "--no-token is only allowed on a loopback address" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the serve extra were not installed
    assert main(["serve", "--port", "0"]) == 2
    assert 'install the serve extra: pip install -e ".[serve]"' in capsys.readouterr().err


# --- a server in this process, whose model batches can be held ----------------------------------------------------

class HeldCaptioner:
    """The real captioner, but each batch waits for ``release`` (so the queue can be filled on purpose)."""

    def __init__(self, captioner: Captioner):
        self.captioner, self.release, self.entered = captioner, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.captioner, name)

    def encode_batch(self, pixels):
        self.entered.set()
        assert self.release.wait(timeout=60)
        return self.captioner.encode_batch(pixels)


@contextlib.contextmanager
def serving(app):
    """``app`` on uvicorn in a thread of this process, on a free loopback port: yields the port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def held_server(captioner):
    from desktop_app.serve.app import AppSettings, build_app
    from desktop_app.serve.service import CaptionService, ServiceOptions

    held = HeldCaptioner(captioner)
    service = CaptionService(held, ServiceOptions(max_batch=8, max_wait=0.0, max_queue=4, decode_workers=2))
    with serving(build_app(service, AppSettings(token="t" * 32))) as port:
        yield f"http://127.0.0.1:{port}", "t" * 32, held, service
        held.release.set()
    service.close()


def test_queue_full_is_503_with_retry_after_and_waiting_photos_share_a_batch(held_server, reference, photos):
    url, token, held, service = held_server
    answers: dict[Path, tuple] = {}

    def post(photo: Path) -> threading.Thread:
        thread = threading.Thread(target=lambda: answers.__setitem__(
            photo, call(f"{url}/v1/caption", photo.read_bytes(), token, "application/octet-stream")))
        thread.start()
        return thread

    threads = [post(photos[0])]
    assert held.entered.wait(timeout=30)  # the first photo is in the model, held there
    threads += [post(p) for p in photos[1:4]]  # three more wait in the queue: 4 of 4 places taken
    deadline = time.monotonic() + 30
    while service.waiting < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.waiting == 4
    status, headers, body = call(f"{url}/v1/caption", photos[4].read_bytes(), token, "image/png")
    assert status == 503 and int(headers["retry-after"]) >= 1 and "busy" in body["error"]
    while service.queued < 3 and time.monotonic() < deadline:  # decoded, waiting for the model
        time.sleep(0.01)
    held.release.set()
    for thread in threads:
        thread.join(timeout=60)
    for photo in photos[:4]:
        status, _, body = answers[photo]
        assert status == 200 and body["caption"] == reference[photo]
    assert service.stats.as_dict()["largest_batch"] == 3 and service.stats.batches == 2
    assert call(f"{url}/v1/caption", photos[4].read_bytes(), token, "image/png")[0] == 200  # room again


class HeldSearch:
    """The real captioner, but its search's first step waits for ``release`` (photos arrive while it is busy)."""

    def __init__(self, captioner: Captioner):
        self.captioner, self.release, self.entered = captioner, threading.Event(), threading.Event()
        self.encoded: list[int] = []  # photos per encoder batch

    def __getattr__(self, name):
        return getattr(self.captioner, name)

    def encode_batch(self, pixels):
        self.encoded.append(len(pixels))
        return self.captioner.encode_batch(pixels)

    def running_search(self, options):
        search = self.captioner.running_search(options)
        step = search.step

        def held_step():
            self.entered.set()
            assert self.release.wait(timeout=60)
            return step()

        search.step = held_step
        return search


def test_photos_accepted_while_the_search_is_busy_are_encoded_as_they_come(captioner, reference, photos):
    """While a search runs, the encoder stage takes whatever photo has arrived and does not wait for the ones
    still uploading: each joins the running search at its next step, so waiting would only add latency."""
    import asyncio

    from desktop_app.serve.service import CaptionService, ServiceOptions

    held = HeldSearch(captioner)
    service = CaptionService(held, ServiceOptions(max_batch=8, max_wait=0.0, max_queue=8, decode_workers=2))
    answers: dict[Path, str] = {}

    def caption(photo: Path, uploaded: threading.Event | None = None, admitted: threading.Event | None = None) -> None:
        with service.admitted():
            if admitted is not None:
                admitted.set()
            if uploaded is not None:
                assert uploaded.wait(timeout=60)  # still uploading: accepted, not yet in the queue
            answers[photo] = asyncio.run(service.caption_bytes(photo.read_bytes(), DecodeOptions())).text

    def encoded(batches: int) -> list[int]:
        deadline = time.monotonic() + 30
        while len(held.encoded) < batches and time.monotonic() < deadline:
            time.sleep(0.01)
        return held.encoded

    accepted = [threading.Event() for _ in photos[1:4]]
    uploaded = [threading.Event() for _ in photos[1:4]]
    try:
        first = threading.Thread(target=caption, args=(photos[0],))
        first.start()
        assert held.entered.wait(timeout=30)  # photo 0 is in the search stage, held at its first step
        # While it is held a photo that waited for company would wait two minutes: a busy search lets it go at once.
        service.options = replace(service.options, max_wait=120.0)
        later = [threading.Thread(target=caption, args=(photo, done, event))
                 for photo, done, event in zip(photos[1:4], uploaded, accepted)]
        for thread in later:
            thread.start()
        for event in accepted:
            assert event.wait(timeout=30)
        # Each photo arrives only once the one before it is in the encoder, however slow the machine: an encoder
        # that waited for the photos still uploading would not take it, and encoded() would time out. Two of
        # them: the encoder hands the search one batch ahead and waits while the search is held.
        for n, done in enumerate(uploaded[:2], 2):
            done.set()
            assert encoded(n) == [1] * n  # alone, while the next photos were still on their way
        service.options = replace(service.options, max_wait=0.0)
        held.release.set()
        uploaded[2].set()
        for thread in [first, *later]:
            thread.join(timeout=60)
    finally:
        held.release.set()
        for done in uploaded:
            done.set()
        service.close()
    assert held.encoded == [1, 1, 1, 1] and service.stats.joined >= 1
    assert answers == {photo: reference[photo] for photo in photos[:4]}


def test_a_photo_encoded_during_a_search_joins_it(captioner, photos, monkeypatch):
    """Continuous batching: a photo encoded while another photo's beam search runs joins that search at the
    next step (the step graph runs on both) instead of waiting for it to end, and each gets exactly what
    ``Captioner.search`` gives it: caption, score, alternatives, confidence."""
    import asyncio

    from desktop_app.serve.service import CaptionService, ServiceOptions

    pixels = [load_pixels(photo, captioner.preprocessing) for photo in photos[:2]]
    expected = [captioner.search(captioner.encode_batch(p[None]), DecodeOptions())[0] for p in pixels]
    top, held, release = captioner.decoder.top, threading.Event(), threading.Event()

    def first_step_held(*args):
        if not held.is_set():  # photo 0's first step waits until photo 1 is encoded
            held.set()
            assert release.wait(timeout=60)
        return top(*args)

    monkeypatch.setattr(captioner.decoder, "top", first_step_held)
    service = CaptionService(captioner, ServiceOptions(max_batch=8, max_wait=0.0, max_queue=8, decode_workers=2))
    answers: dict[int, object] = {}

    def caption(n: int) -> threading.Thread:
        thread = threading.Thread(target=lambda: answers.__setitem__(
            n, asyncio.run(service.caption_bytes(photos[n].read_bytes(), DecodeOptions()))))
        thread.start()
        return thread

    try:
        threads = [caption(0)]
        assert held.wait(timeout=30)
        threads.append(caption(1))
        deadline = time.monotonic() + 30
        while service._encoded.empty() and time.monotonic() < deadline:  # photo 1 handed to the search stage
            time.sleep(0.005)
        release.set()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        release.set()
        service.close()
    stats = service.stats.as_dict()
    assert (stats["batches"], stats["joined_running_search"]) == (2, 1) and stats["mean_photos_per_step"] > 1
    for n, result in enumerate(expected):
        got = answers[n]
        assert (got.text, got.score, got.alternatives, got.confidence, got.keywords) == \
            (result.text, result.score, result.alternatives, result.confidence, result.keywords)
        assert np.array_equal(got.attention, result.attention)


def test_each_stage_gets_half_the_cores(monkeypatch):
    """The encoder and the search run at once, so by default each gets half the cores (never none)."""
    from desktop_app.serve import cli as serve_cli

    for cores, threads in ((2, 1), (8, 4), (1, 1), (None, 1)):
        monkeypatch.setattr(serve_cli.os, "cpu_count", lambda cores=cores: cores)
        assert serve_cli.stage_threads() == threads


def test_a_failed_search_step_answers_its_callers_and_the_service_goes_on(captioner, photos, monkeypatch):
    """An onnxruntime failure in the middle of a beam search answers the photos in that search with the error,
    and the next photo is captioned as usual."""
    import asyncio

    from desktop_app.serve.service import CaptionService, ServiceOptions

    top, calls = captioner.decoder.top, []

    def fails_on_the_third_step(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the step graph failed")
        return top(*args)

    monkeypatch.setattr(captioner.decoder, "top", fails_on_the_third_step)
    service = CaptionService(captioner, ServiceOptions(max_batch=8, max_wait=0.0, max_queue=8, decode_workers=2))
    try:
        with pytest.raises(RuntimeError, match="the step graph failed"):
            asyncio.run(service.caption_bytes(photos[0].read_bytes(), DecodeOptions()))
        after = asyncio.run(service.caption_bytes(photos[1].read_bytes(), DecodeOptions()))
    finally:
        service.close()
    pixels = load_pixels(photos[1], captioner.preprocessing)[None]
    expected = captioner.search(captioner.encode_batch(pixels), DecodeOptions())[0]
    assert (after.text, after.score) == (expected.text, expected.score)
    assert service.waiting == 0


# --- reading by path: checked once, opened once (issue 24 item 11) --------------------------------------------------

def _racing_resolve(monkeypatch, swap):
    """AllowedFolders.resolve as it is, then ``swap()`` runs: what another process can do between check and open."""
    from desktop_app.serve.folders import AllowedFolders

    checked = AllowedFolders.resolve

    def resolve(self, requested):
        resolved = checked(self, requested)
        swap()
        return resolved

    monkeypatch.setattr(AllowedFolders, "resolve", resolve)


def test_a_folder_swapped_for_a_symlink_after_the_check_is_not_followed(tmp_path, monkeypatch, pristine_samples):
    from desktop_app.serve.folders import AllowedFolders, PathRefused

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    (allowed / "sub" / "photo.jpg").write_bytes((pristine_samples / "chelsea.jpg").read_bytes())
    (outside / "photo.jpg").write_bytes(b"a secret outside the allowed folder")
    folders = AllowedFolders([allowed])

    def swap():
        (allowed / "sub").rename(allowed / "sub.old")
        (allowed / "sub").symlink_to(outside, target_is_directory=True)

    _racing_resolve(monkeypatch, swap)
    with pytest.raises(PathRefused, match="changed while it was opened") as refused:
        folders.open(str(allowed / "sub" / "photo.jpg"))
    assert refused.value.status == 403


def test_a_fifo_swapped_in_after_the_check_is_refused_without_blocking(tmp_path, monkeypatch, pristine_samples):
    from desktop_app.serve.folders import AllowedFolders, PathRefused

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    photo = allowed / "photo.jpg"
    photo.write_bytes((pristine_samples / "chelsea.jpg").read_bytes())
    folders = AllowedFolders([allowed])
    handle, resolved = folders.open(str(photo))
    with handle:
        assert handle.read(3) == b"\xff\xd8\xff" and resolved == photo.resolve()

    def swap():
        photo.unlink()
        os.mkfifo(photo)

    _racing_resolve(monkeypatch, swap)
    started = time.monotonic()
    with pytest.raises(PathRefused, match="not a regular file") as refused:
        folders.open(str(photo))
    assert refused.value.status == 400 and time.monotonic() - started < 5


# --- hostile requests (issue 24 item 12) ------------------------------------------------------------------------------

def test_odd_json_and_paths_are_400_in_words_not_500(server, folders):
    url, token, _, _ = server
    allowed, _ = folders
    for body in (json.dumps({"path": f"{allowed}/\ud800.jpg"}).encode(), json.dumps({"path": f"{allowed}/{'a' * 300}.jpg"}).encode(),
                 b"[" * 100_000, b'{"path": "/x.jpg", "beam": ' + b"7" * 5000 + b"}"):
        status, _, answer = call(f"{url}/v1/caption/path", body, token, "application/json")
        assert status == 400 and answer["error"] and "failed" not in answer["error"], (body[:40], answer)


def test_a_request_from_a_web_page_is_refused(server, pristine_samples):
    """A form on any web page can post to a local server (even one run with --no-token): browsers say where from."""
    url, token, _, _ = server
    jpeg = (pristine_samples / "chelsea.jpg").read_bytes()
    status, _, body = call(f"{url}/v1/caption", jpeg, token, "image/jpeg", headers={"Origin": "https://evil.example"})
    assert status == 403 and "web pages" in body["error"]
    assert call(f"{url}/v1/caption", jpeg, token, "image/jpeg", headers={"Origin": url})[0] == 200


@pytest.fixture
def small_server(captioner, monkeypatch):
    """An in-process server that admits 2 photos at once and waits 1 s for a stalled body."""
    from desktop_app.serve import guard
    from desktop_app.serve.app import AppSettings, build_app
    from desktop_app.serve.service import CaptionService, ServiceOptions

    monkeypatch.setattr(guard, "BODY_IDLE_S", 1.0, raising=False)
    service = CaptionService(captioner, ServiceOptions(max_queue=2))
    with serving(build_app(service, AppSettings(token="t" * 32, max_upload=2**20))) as port:
        yield port, "t" * 32
    service.close()


def test_slow_uploads_take_no_place_and_are_dropped(small_server, pristine_samples):
    """Clients that send headers and a little of a body, then stall, held every place (503 for everyone else)."""
    port, token = small_server
    slow = []
    for _ in range(4):
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(f"POST /v1/caption HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                       "Content-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n".encode() + b"\xff\xd8" * 5)
        slow.append(client)
    time.sleep(0.3)
    jpeg = (pristine_samples / "chelsea.jpg").read_bytes()
    status, _, body = call(f"http://127.0.0.1:{port}/v1/caption", jpeg, token, "image/jpeg")
    assert status == 200, body
    for client in slow:
        client.settimeout(10)
        assert client.recv(4096).startswith(b"HTTP/1.1 408"), "a stalled upload must be answered and dropped"
        client.close()


def test_a_chunked_upload_is_read_no_further_than_the_limit():
    """Without a declared length the body was read (and dropped) up to 64 MiB whatever --max-upload-mb said."""
    import asyncio

    from desktop_app.serve.guard import RequestGuard

    sent = 0

    async def receive():
        nonlocal sent
        sent += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": sent < 2000}  # 125 MiB on offer

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass

    async def send(message):
        pass

    guard = RequestGuard(app, token=None, max_body=2**20, loopback_only=False)
    scope = {"type": "http", "path": "/v1/caption", "headers": [(b"transfer-encoding", b"chunked")]}
    with pytest.raises(Exception) as stopped:
        asyncio.run(guard(scope, receive, send))
    assert getattr(stopped.value, "status_code", None) == 413
    assert sent * 65536 <= 2**20 + 65536


def test_bodies_held_at_once_share_a_budget():
    """Reading bodies before admission must not make memory unbounded: past the budget, a 503 before any is read."""
    import asyncio

    from desktop_app.serve.guard import RequestGuard

    first_in, release, answers = asyncio.Event(), asyncio.Event(), []

    async def app(scope, receive, send):
        await receive()
        first_in.set()
        await release.wait()

    def request(length: int):
        scope = {"type": "http", "path": "/v1/caption", "headers": [(b"content-length", str(length).encode())]}

        async def receive():
            return {"type": "http.request", "body": b"x" * length, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                answers.append(message["status"])

        return scope, receive, send

    async def both():
        guard = RequestGuard(app, token=None, max_body=2**20, loopback_only=False, bodies_budget=2**20)
        held = asyncio.create_task(guard(*request(600_000)))
        await first_in.wait()
        await guard(*request(600_000))  # over the budget while the first is held
        release.set()
        await held
        await guard(*request(600_000))  # the budget is free again
        return guard.bodies_held

    assert asyncio.run(both()) == 0
    assert answers == [503]
