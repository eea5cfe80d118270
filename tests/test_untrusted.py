"""Hostile or broken files are per-photo errors in words: they never stop a batch, never start another program."""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.metadata.record import MACHINE, CaptionRecord
from desktop_app.metadata.store import MetadataError, read_caption, write_caption

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
CAPTION = CaptionRecord("a dog running on the grass", MACHINE, "test@1", ["dog"], -0.5)


@pytest.fixture
def deep_photos(tmp_path):
    """A JPEG whose XMP nests 1,000 elements deep, and a PNG whose sidecar does (11 KB each)."""
    shutil.copy(DATA / "deep_xmp.jpg", tmp_path / "deep.jpg")
    Image.new("RGB", (16, 16), "blue").save(tmp_path / "side.png")
    shutil.copy(DATA / "deep_xmp.xmp", tmp_path / "side.png.xmp")
    return tmp_path / "deep.jpg", tmp_path / "side.png"


def test_deeply_nested_xmp_is_refused_in_words_and_left_unchanged(deep_photos):
    for photo in deep_photos:
        before = {p.name: p.read_bytes() for p in photo.parent.iterdir()}
        record = read_caption(photo)  # reading says why, never raises
        assert record is None or any("nested" in reason for reason in record.unreadable)
        with pytest.raises(MetadataError, match="nested more than 100 levels deep"):
            write_caption(photo, CAPTION)
        assert {p.name: p.read_bytes() for p in photo.parent.iterdir()} == before


def test_a_deep_xmp_photo_fails_alone_and_the_cli_batch_goes_on(deep_photos, tmp_path):
    folder = deep_photos[0].parent
    Image.new("RGB", (64, 48), "orange").save(folder / "good.jpg")
    run = subprocess.run([sys.executable, "-m", "desktop_app", "caption", str(folder), "--no-index", "-q"],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PHOTOCAPTION_INDEX": str(tmp_path / "i")})
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "captioned 1, skipped 0, failed 2 of 3 photos" in run.stderr
    for name in ("deep.jpg", "side.png"):
        assert any(name in line and "nested" in line for line in run.stderr.splitlines()), run.stderr


def test_any_unexpected_write_error_fails_that_photo_only(tmp_path, monkeypatch, capsys):
    """Whatever a write raises, the CLI names the photo and captions the rest."""
    from desktop_app import cli
    from desktop_app.library import keep

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.new("RGB", (64, 48), "orange").save(tmp_path / name)

    def write(path, record, options):
        if path.name == "b.jpg":
            raise RecursionError("maximum recursion depth exceeded")
        return write_caption(path, record, options)

    monkeypatch.setattr(keep, "write_caption", write)  # the writer the CLI and the app share
    assert cli.main(["caption", str(tmp_path), "--no-index", "-q"]) == cli.EXIT_SOME_FAILED
    err = capsys.readouterr().err
    assert "captioned 2, skipped 0, failed 1 of 3 photos" in err
    assert any("b.jpg" in line and "RecursionError" in line for line in err.splitlines()), err


def test_a_photo_the_library_index_refuses_is_said_not_swallowed(tmp_path, monkeypatch, capsys):
    """Issue 27: the CLI dropped index errors (``except Exception: pass``); now each reaches its photo's line,
    whether the caption was written (and read back) or the photo was only indexed as it is."""
    import sqlite3

    from desktop_app import cli
    from desktop_app.library.index import LibraryIndex

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (64, 48), "orange").save(folder / name)
    record = LibraryIndex.record

    def refuse_b(self, path, saved):
        if Path(path).name == "b.jpg":
            raise sqlite3.OperationalError("database or disk is full")
        return record(self, path, saved)

    monkeypatch.setattr(LibraryIndex, "record", refuse_b)
    for write, said in (("embed", "captioned: {}: written, but could not be read back or indexed: "),
                        ("none", "not indexed: {}: ")):
        assert cli.main(["caption", str(folder), "--write", write, "--recaption",
                         "--index", str(tmp_path / "i.sqlite")]) == cli.EXIT_OK
        lines = capsys.readouterr().err.splitlines()
        assert said.format(folder / "b.jpg") + "database or disk is full" in lines, lines
        assert not any("a.jpg" in line and "index" in line for line in lines), lines


def test_the_apps_writer_reports_any_error_as_that_photos_failure(tmp_path, deep_photos, monkeypatch):
    from desktop_app.library import keep
    from desktop_app.library.undo import WriteJournal
    from desktop_app.metadata.store import WriteOptions

    journal = WriteJournal()
    report = keep.write_and_index(deep_photos[0], CAPTION, WriteOptions(), None, journal)
    assert "nested" in report.error
    monkeypatch.setattr(keep, "write_caption", lambda *a: (_ for _ in ()).throw(RecursionError("deep")))
    report = keep.write_and_index(deep_photos[1], CAPTION, WriteOptions(), None, journal)
    assert "RecursionError" in report.error


@pytest.fixture
def no_ghostscript(monkeypatch):
    """Records every attempt to start Ghostscript (or any program) instead of starting it."""
    from PIL import EpsImagePlugin

    started = []

    def record(*args, **kwargs):
        started.append(args)
        raise OSError("a program was started")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", record)
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: bool(record()))
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: record(self))
    for name in ("Popen", "check_call", "run"):
        monkeypatch.setattr(subprocess, name, record)
    return started


def test_an_eps_file_named_jpg_is_refused_in_words_and_starts_no_program(tmp_path, no_ghostscript):
    """An EPS (`{ } loop` would hang Ghostscript) named .jpg, .png or uploaded: refused by content, EPS named."""
    from desktop_app.bundle.format import Preprocessing
    from desktop_app.photos.pixels import PhotoError, decode_pixels, load_pixels

    spec = Preprocessing()
    eps = (DATA / "loop.eps").read_bytes()
    for name in ("x.jpg", "x.png", "x.tif"):
        (tmp_path / name).write_bytes(eps)
        with pytest.raises(PhotoError, match="by its content this is EPS, a format photocaption does not open"):
            load_pixels(tmp_path / name, spec)
        assert read_caption(tmp_path / name) is None
    with pytest.raises(PhotoError, match="EPS"):
        decode_pixels(eps, spec)  # what serve does with an upload
    assert no_ghostscript == []


def test_supported_formats_still_open(tmp_path, no_ghostscript):
    from desktop_app.photos.pixels import load_rgb

    for fmt, suffix in [("JPEG", ".jpg"), ("PNG", ".png"), ("TIFF", ".tif"), ("WEBP", ".webp"), ("BMP", ".bmp"),
                        ("GIF", ".gif")]:
        Image.new("RGB", (40, 30), "orange").save(tmp_path / f"p{suffix}", fmt)
        assert load_rgb(tmp_path / f"p{suffix}").size == (40, 30)
    assert no_ghostscript == []


def test_pillow_and_libtiff_notes_on_odd_tags_stay_off_stderr():
    """Issue 24 item 8: ~280 lines of Pillow warnings and libtiff messages flooded stderr over the corpus."""
    from benchmarks.metadata_corpus import CORPUS

    files = [DATA / "odd_tags.tif", *[p for p in [CORPUS / "pil__crash-2020-10-test.tif"] if p.is_file()]]
    code = ("import sys\nfrom desktop_app.photos.pixels import load_rgb\nfrom desktop_app.metadata.store import "
            "read_caption\nfor name in sys.argv[1:]:\n    read_caption(name)\n    try:\n        load_rgb(name)\n"
            "    except Exception as exc:\n        print(exc)\n")
    run = subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and run.stderr == "", run.stderr[-2000:]


def test_mpo_files_are_found_captioned_and_keep_their_second_image(tmp_path):
    """Issue 24 item 8: .mpo files (3D and multi-shot cameras) were skipped without a word."""
    from desktop_app.photos.discover import find_photos
    from desktop_app.photos.pixels import load_rgb

    photo = tmp_path / "stereo.mpo"
    left, right = Image.new("RGB", (64, 48), "orange"), Image.new("RGB", (64, 48), "blue")
    left.save(photo, "MPO", save_all=True, append_images=[right])
    assert list(find_photos([tmp_path])) == [photo]
    assert load_rgb(photo).size == (64, 48)
    assert write_caption(photo, CAPTION).places[:2] == ["XMP", "EXIF"]
    tags = json.loads(subprocess.run(["exiftool", "-j", "-XMP-dc:Description", "-MPImage2", str(photo)],
                                     capture_output=True, text=True, check=True).stdout)[0]
    assert tags["Description"] == CAPTION.text and "MPImage2" in tags
    second = subprocess.run(["exiftool", "-b", "-MPImage2", str(photo)], capture_output=True, check=True).stdout
    assert Image.open(io.BytesIO(second)).getpixel((5, 5))[2] > 200  # still the blue image


def test_a_run_that_writes_nothing_still_removes_a_killed_runs_temp_files(tmp_path):
    """Issue 24 item 8: leftovers of a killed write (hidden, unlocked) survived every run that wrote nothing."""
    from desktop_app.metadata.record import PERSON

    photo = tmp_path / "kept.jpg"
    Image.new("RGB", (64, 48), "orange").save(photo)
    write_caption(photo, CaptionRecord("Grandma's birthday", PERSON))  # a person's caption: the run skips it
    leftover = tmp_path / ".kept.jpg.k1ll3d.photocaption-tmp"
    leftover.write_bytes(b"half a photo")
    run = subprocess.run([sys.executable, "-m", "desktop_app", "caption", str(tmp_path), "--no-index", "-q"],
                         capture_output=True, text=True, cwd=ROOT)
    assert "captioned 0, skipped 1" in run.stderr, run.stderr
    assert not leftover.exists()


def test_the_apps_write_batch_removes_a_killed_runs_temp_files_even_writing_nothing(tmp_path):
    from desktop_app.gui.workers import WriteWorker
    from desktop_app.library.undo import WriteJournal
    from desktop_app.metadata.record import PERSON
    from desktop_app.metadata.store import WriteOptions

    photo = tmp_path / "kept.jpg"
    Image.new("RGB", (64, 48), "orange").save(photo)
    write_caption(photo, CaptionRecord("Grandma's birthday", PERSON))
    leftover = tmp_path / ".kept.jpg.k1ll3d.photocaption-tmp"
    leftover.write_bytes(b"half a photo")
    WriteWorker([(photo, CAPTION)], WriteOptions(), WriteJournal(folder=tmp_path / "undo")).run()  # skipped
    assert not leftover.exists()
