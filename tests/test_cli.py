"""The headless CLI end to end: captions land in metadata, bad photos are named, nothing is damaged."""

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import DEFAULT_BUNDLE, exiftool, image_data

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, index: Path):
    env = {**os.environ, "PHOTOCAPTION_INDEX": str(index)}
    return subprocess.run([sys.executable, "-m", "desktop_app", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def test_default_bundle_captions_the_samples(samples, tmp_path):
    """What the README's run command does, on a copy of the samples."""
    assert (DEFAULT_BUNDLE / "manifest.json").is_file(), "the default model bundle must ship in resources/models/default"
    before = {p.name: image_data(p) for p in samples.glob("*.jpg")}
    run = run_cli("caption", samples, "--jsonl", tmp_path / "out.jsonl", index=tmp_path / "index.sqlite")
    assert run.returncode == 0, run.stderr
    assert "captioned 5, skipped 0, failed 0 of 5 photos" in run.stderr
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and all(line["caption"] and line["status"] == "captioned" for line in lines)
    for photo in samples.glob("*.jpg"):
        tags = exiftool(photo)
        assert tags["XMP-dc:Description"] == tags["XMP-iptcCore:AltTextAccessibility"] == tags["IFD0:ImageDescription"]
        assert tags["XMP-pcap:Source"] == "machine"
        assert image_data(photo) == before[photo.name]
    assert exiftool(samples / "chelsea-small.png.xmp")["XMP-dc:Description"]
    again = run_cli("caption", samples, index=tmp_path / "index.sqlite")
    assert "captioned 0, skipped 5" in again.stderr  # resume: already captioned by this model
    word = lines[0]["caption"].split()[1].strip(".").lower()
    found = run_cli("search", word, index=tmp_path / "index.sqlite")
    assert lines[0]["path"] in found.stdout


def test_bad_photos_are_named_and_the_batch_goes_on(tiny_bundle, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("RGB", (320, 240), "orange").save(folder / "good.jpg")
    good = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is a text file")
    bomb = bytearray(good)
    sof = bomb.index(b"\xff\xc0")
    bomb[sof + 5:sof + 9] = (30000).to_bytes(2, "big") * 2
    (folder / "bomb.jpg").write_bytes(bytes(bomb))
    Image.new("RGB", (320, 240), "teal").save(folder / "locked.jpg")
    (folder / "locked.jpg").chmod(0o444)
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    run = run_cli("caption", folder, "--model", tiny_bundle[0], index=tmp_path / "index.sqlite")
    assert run.returncode == 1  # some failed
    assert "captioned 1, skipped 0, failed 5 of 6 photos" in run.stderr
    for name, reason in [("truncated.jpg", "corrupt or truncated"), ("zero.jpg", "not an image"),
                         ("notes.jpg", "not an image"), ("bomb.jpg", "refused"), ("locked.jpg", "read-only")]:
        assert any(name in line and reason in line for line in run.stderr.splitlines()), (name, run.stderr)
    for path in folder.iterdir():
        if path.name != "good.jpg":
            assert path.read_bytes() == snapshot[path.name]
    assert exiftool(folder / "good.jpg")["XMP-dc:Description"]
    assert not list(folder.glob(".*photocaption-tmp"))


def test_dry_run_writes_nothing_and_show_reports(tiny_bundle, samples, tmp_path):
    before = {p: p.read_bytes() for p in samples.iterdir()}
    run = run_cli("caption", samples, "--model", tiny_bundle[0], "--dry-run", index=tmp_path / "i.sqlite")
    assert run.returncode == 0 and run.stdout.count("\n") == 5
    assert {p: p.read_bytes() for p in samples.iterdir()} == before
    run_cli("caption", samples / "coffee.jpg", "--model", tiny_bundle[0], "--write", "sidecar", index=tmp_path / "i.sqlite")
    show = run_cli("show", samples / "coffee.jpg", index=tmp_path / "i.sqlite")
    assert "stored in: sidecar coffee.jpg.xmp" in show.stdout and "written by: model" in show.stdout


def test_missing_or_broken_model_is_a_clear_error(tmp_path, samples):
    run = run_cli("caption", samples, "--model", tmp_path / "nope", index=tmp_path / "i.sqlite")
    assert run.returncode == 2 and "error: model bundle folder not found" in run.stderr
    assert "Traceback" not in run.stderr
