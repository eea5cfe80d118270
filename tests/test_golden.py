"""The shipped model's captions for the sample photos, as recorded: a change in reading photos,
preprocessing, export or decoding that alters what the model says fails here, loudly.

Re-record only when the model or its decoding is changed on purpose (and say so in the commit):
``python tests/test_golden.py`` rewrites tests/data/golden_captions.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).parent / "data" / "golden_captions.json"
TOLERANCE = 2e-3  # scores and confidences: float noise across CPUs, far below what moves a caption


def caption_samples(folder: Path, out: Path) -> dict[str, dict]:
    """What `photocaption caption --dry-run --jsonl` says of each photo in ``folder``, by file name."""
    from desktop_app import cli

    jsonl = out / "captions.jsonl"
    status = cli.main(["caption", str(folder), "--dry-run", "--provider", "cpu", "--jsonl", str(jsonl), "-q"])
    assert status == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return {Path(line["path"]).name: {key: line[key] for key in ("caption", "score", "alternatives", "keywords",
                                                                   "confidence", "needs_review")} for line in lines}


def test_shipped_model_says_what_it_said(pristine_samples, tmp_path):
    recorded = json.loads(GOLDEN.read_text())
    now = caption_samples(pristine_samples, tmp_path)
    assert sorted(now) == sorted(recorded)
    for name, then in recorded.items():
        got = now[name]
        assert (got["caption"], got["keywords"], got["needs_review"]) == \
            (then["caption"], then["keywords"], then["needs_review"]), name
        assert [text for text, _ in got["alternatives"]] == [text for text, _ in then["alternatives"]], name
        assert abs(got["score"] - then["score"]) < TOLERANCE, name
        assert abs(got["confidence"] - then["confidence"]) < TOLERANCE, name


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    with tempfile.TemporaryDirectory() as scratch:
        samples = Path(__file__).resolve().parents[1] / "resources" / "samples"
        result = caption_samples(samples, Path(scratch))
    GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(result)} photos in {GOLDEN}")
