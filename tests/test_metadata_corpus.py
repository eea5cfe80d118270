"""Captions written into 227 real camera, phone and odd files (../shared metadata-corpus) lose nothing.

One sweep (benchmarks/metadata_corpus.py: exiftool once per check over the whole folder)
writes every file twice; each file is then its own test case, so a failure names the file.
What each case asserts: the JPEG image data and trailers are byte-identical, every tag exiftool
reported before is there with the same value (but the caption tags we wrote), no new
`exiftool -validate` warning, MWG readers show our caption and still every keyword, City and
Creator they showed before, a second write changes no byte,
and a refused file is unchanged with a reason in words.
"""

from __future__ import annotations

import shutil
import sys
import warnings

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))  # benchmarks/ sits beside the package (plain `pytest` does not add the root)
from benchmarks.metadata_corpus import CAPTION, CORPUS, EMBEDDED, corpus_files, crafted_files, sweep  # noqa: E402

FILES = [path.name for path in corpus_files() + crafted_files()]  # the crafted ones from tests/data as well
pytestmark = pytest.mark.skipif(not corpus_files(), reason=f"metadata corpus not found at {CORPUS}")


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's notes on the corpus's broken TIFFs
        return {check.name: check for check in sweep(CORPUS, tmp_path_factory.mktemp("corpus"), crafted_files())}


@pytest.mark.parametrize("name", FILES or ["(no corpus)"])
def test_corpus_file_keeps_everything(checks, name):
    check = checks[name]
    assert check.outcome in ("written", "kept", "refused")
    assert not check.damage, f"{name}: " + "; ".join(check.damage)
    assert not check.new_warnings, f"{name}: new exiftool -validate warnings: {check.new_warnings}"
    if check.outcome == "written":
        assert check.mwg_description == CAPTION.text, f"{name}: MWG readers show {check.mwg_description!r}"
    else:
        assert check.reason


def test_most_of_the_corpus_gets_a_caption(checks):
    """Refusing is allowed where a file is broken, not as a way to pass the test above."""
    written = sum(check.outcome == "written" for check in checks.values())
    exif = sum("EXIF" in check.places for check in checks.values())
    assert written >= 0.9 * len(checks) and exif >= 100, (written, exif)


def test_corpus_png_webp_and_tiff_get_the_caption_embedded(checks):
    """Issue 28: PNG, WebP and TIFF get XMP inside them (the sweep checks their bytes and pixels); those that
    keep a sidecar (damaged, BigTIFF, text in a TIFF's ImageDescription) say why."""
    checked = [check for check in checks.values() if check.name.lower().endswith(EMBEDDED) and check.outcome == "written"]
    embedded = [check.name for check in checked if check.places == ["XMP"]]
    sidecar = sorted(check.name for check in checked if check.name not in embedded)
    assert len(embedded) >= 35, embedded
    assert all(checks[name].write_warnings[0].startswith("XMP not embedded: ") for name in sidecar), sidecar
