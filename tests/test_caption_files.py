"""Bad dataset files give a message naming the file and line, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model_export.data.captions import DataError, load_flickr_folder, read_coco_json, read_karpathy_json
from synthetic_scenes import make_flickr_style

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def flickr(tmp_path):
    return make_flickr_style(tmp_path / "f", train=6, val=2, test=2)


def _rewrite_line(path: Path, number: int, text: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = text
    path.write_bytes(b"\n".join(lines))


def test_reads_flickr_folder(flickr):
    data = load_flickr_folder(flickr)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert all(len(data.captions[n]) == 2 for n in data.splits["train"])


def test_empty_caption_names_file_and_line(flickr):
    _rewrite_line(flickr / "captions.txt", 3, b"scene_0000.jpg,   ")
    with pytest.raises(DataError, match=r"captions.txt:3: empty caption for scene_0000.jpg"):
        load_flickr_folder(flickr)


def test_non_utf8_line_is_named(flickr):
    _rewrite_line(flickr / "captions.txt", 4, b"scene_0001.jpg,a caf\xe9 table")
    with pytest.raises(DataError, match=r"captions.txt:4: not valid UTF-8"):
        load_flickr_folder(flickr)


def test_split_naming_unknown_image(flickr):
    with open(flickr / "Flickr_8k.testImages.txt", "a") as f:
        f.write("nowhere.jpg\n")
    with pytest.raises(DataError, match=r"Flickr_8k.testImages.txt:3: nowhere.jpg has no captions"):
        load_flickr_folder(flickr)


def test_missing_photo_is_skipped_with_a_warning(flickr):
    (flickr / "Images" / "scene_0002.jpg").unlink()
    data = load_flickr_folder(flickr)
    assert "scene_0002.jpg" not in data.splits["train"]
    assert any("scene_0002.jpg" in w and "does not exist" in w for w in data.warnings)


def test_bad_header_and_missing_files(flickr, tmp_path):
    _rewrite_line(flickr / "captions.txt", 1, b"file,text")
    with pytest.raises(DataError, match=r"captions.txt:1: expected the header"):
        load_flickr_folder(flickr)
    with pytest.raises(DataError, match="dataset folder not found"):
        load_flickr_folder(tmp_path / "absent")


def test_token_file_without_tab(flickr):
    (flickr / "captions.txt").unlink()
    (flickr / "Flickr8k.token.txt").write_text("scene_0000.jpg#0\ta dog\nscene_0001.jpg#0 no tab here\n")
    with pytest.raises(DataError, match=r"Flickr8k.token.txt:2: expected 'NAME.jpg#K<TAB>caption'"):
        load_flickr_folder(flickr)


def test_coco_and_karpathy_json(tmp_path):
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                                "annotations": [{"image_id": 1, "caption": "a dog"}, {"image_id": 2, "caption": "x"}]}))
    with pytest.raises(DataError, match=r"annotations\[1\] names image_id 2"):
        read_coco_json(coco)
    karpathy = tmp_path / "dataset_flickr8k.json"
    karpathy.write_text(json.dumps({"images": [{"filename": "a.jpg", "split": "restval",
                                                "sentences": [{"raw": "A dog.", "tokens": ["a", "dog"]}]}]}))
    captions, splits = read_karpathy_json(karpathy)
    assert captions == {"a.jpg": ["A dog."]} and splits["train"] == ["a.jpg"]
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [\n  {"filename": }\n]}')
    with pytest.raises(DataError, match=r"broken.json:2: invalid JSON"):
        read_karpathy_json(broken)


def test_cli_prints_message_not_traceback(flickr, tmp_path):
    _rewrite_line(flickr / "captions.txt", 3, b"scene_0000.jpg,")
    run = subprocess.run([sys.executable, "-m", "model_export", "prepare", "--data", str(flickr), "--out",
                          str(tmp_path / "out"), "--no-features"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert "error:" in run.stderr and "captions.txt:3: empty caption" in run.stderr
    assert "Traceback" not in run.stderr
