"""Shared fixtures: a synthetic captioning set, a tiny model trained on it, and its exported bundle.

Built once per test session (about a minute on two cores) and reused by the
training, export and app tests, so every layer is tested on a real model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "samples"
DEFAULT_BUNDLE = ROOT / "resources" / "models" / "default"

TINY_MODEL = dict(embed_dim=64, hidden_dim=128, memory_dim=128, attention_dim=64, dropout=0.1, lr=3e-3,
                  batch_size=16, alpha_c=1.0, patience=10, threads=0, quiet=True)
TINY_EPOCHS = 8


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


@pytest.fixture
def samples(tmp_path):
    """The shipped sample photos, copied so tests can write into them."""
    return Path(shutil.copytree(SAMPLES, tmp_path / "samples"))


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
