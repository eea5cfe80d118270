"""Shared fixtures: a synthetic captioning set, a tiny model trained on it, and its exported bundle;
the shipped sample photos as they shipped.

The tiny model is built once per test session and reused by the training, export and app
tests, so every layer is tested on a real model: about 95 s of the suite on two free cores
(``pytest --durations=5`` shows it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "samples"
SAMPLE_DIGESTS = Path(__file__).parent / "data" / "sample_photos.sha256"
DEFAULT_BUNDLE = ROOT / "resources" / "models" / "default"

TINY_MODEL = dict(embed_dim=64, hidden_dim=128, memory_dim=128, attention_dim=64, dropout=0.1, lr=3e-3,
                  batch_size=16, alpha_c=1.0, patience=10, threads=0, quiet=True)
TINY_EPOCHS = 8


EXIFTOOL_MISSING = "exiftool, the reference metadata reader, is not installed (Debian: apt install libimage-exiftool-perl)"


def _without_exiftool_skip():
    """Hook body: a test that runs exiftool is skipped, with the reason, where exiftool is not installed."""
    try:
        return (yield)
    except FileNotFoundError as exc:
        if exc.filename == "exiftool" and shutil.which("exiftool") is None:
            pytest.skip(EXIFTOOL_MISSING)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _without_exiftool_skip())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _without_exiftool_skip())


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """A prepared synthetic dataset (features cached)."""
    from model_export.data.captions import load_flickr_folder
    from model_export.data.prepare import cache_features, write_prepared
    from synthetic_scenes import make_flickr_style

    root = tmp_path_factory.mktemp("synthetic")
    make_flickr_style(root / "raw", train=800, val=40, test=40)  # fewer scenes get memorised, not learned
    data = write_prepared(load_flickr_folder(root / "raw"), root / "prepared", "lite0", min_count=1, source="synthetic")
    cache_features(data, batch_size=40, workers=0)
    return root / "prepared"


@pytest.fixture(scope="session")
def trained(synthetic, tmp_path_factory):
    """A tiny decoder trained on the synthetic set for a few epochs: (run folder, training summary)."""
    from model_export.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run")
    summary = train(TrainConfig(data=synthetic, out=out, epochs=TINY_EPOCHS, **TINY_MODEL))
    return out, summary


@pytest.fixture(scope="session")
def tiny_bundle(trained, synthetic, tmp_path_factory):
    from model_export.export import export_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    scores = export_bundle(trained[0] / "best.pt", out, data_dir=synthetic, parity_count=8)
    return out, scores


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    """A copy of the tiny bundle that a test may damage."""
    return Path(shutil.copytree(tiny_bundle[0], tmp_path / "bundle"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _committed(name: str) -> bytes | None:
    """A sample photo as the checkout's HEAD holds it, when this is a git checkout."""
    try:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:resources/samples/{name}"],
                              capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


@pytest.fixture(scope="session")
def pristine_samples(tmp_path_factory) -> Path:
    """The sample photos byte for byte as shipped (digests in tests/data), whatever the working tree
    holds now: a photo captioned in place (once the README's quickstart did that) is taken from git."""
    folder = tmp_path_factory.mktemp("pristine-samples")
    for line in SAMPLE_DIGESTS.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        local = SAMPLES / name
        data = local.read_bytes() if local.is_file() else b""
        if _sha256(data) != digest:
            data = _committed(name) or b""
        if _sha256(data) != digest:
            pytest.fail(f"resources/samples/{name} is not the shipped photo and git cannot give it back; "
                        f"restore it (git checkout resources/samples) or update {SAMPLE_DIGESTS.name}")
        (folder / name).write_bytes(data)  # shared by the whole session: tests write only into `samples`
    return folder


@pytest.fixture
def samples(pristine_samples, tmp_path):
    """The shipped sample photos, copied so a test may write into them."""
    folder = tmp_path / "samples"
    folder.mkdir()
    for photo in pristine_samples.iterdir():
        shutil.copyfile(photo, folder / photo.name)
    return folder


def show_active(qtbot, widget) -> None:
    """Show ``widget`` as the active window (focus and its ring need one) and wait until it is."""
    qtbot.addWidget(widget)
    widget.show()
    widget.activateWindow()
    qtbot.waitUntil(widget.isActiveWindow)


def exiftool(*args: str) -> dict:
    """exiftool's JSON for one file, keys as GROUP:Tag."""
    import json

    out = subprocess.run(["exiftool", "-j", "-G1", "-a", "-struct", *map(str, args)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[0]


def image_data(path: Path) -> bytes:
    """The JPEG's entropy-coded image bytes (from SOS on): must never change when metadata is written."""
    data = Path(path).read_bytes()
    pos = 2
    while data[pos + 1] != 0xDA:  # walk the segment lengths; a thumbnail's own SOS hides inside APP1
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return data[pos:]
