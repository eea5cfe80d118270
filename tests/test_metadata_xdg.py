"""The freedesktop attributes desktop search reads (user.xdg.comment, user.xdg.tags) follow the caption.

KDE's Baloo indexes both; a person's own values (typed in Dolphin's information panel) are never replaced.
"""

import os

import pytest
from PIL import Image

from desktop_app.library.undo import WriteJournal
from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import WriteOptions, write_caption

CAPTION = CaptionRecord("A cat lying on a wooden floor.", model_id="xdg-test@1", keywords=["cat", "wooden floor"])
COMMENT, TAGS = "user.xdg.comment", "user.xdg.tags"


def attribute(path, name):
    try:
        return os.getxattr(path, name).decode()
    except OSError:
        return None


@pytest.fixture
def folder(tmp_path):
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except (OSError, AttributeError):
        pytest.skip(f"the file system of {tmp_path} has no user extended attributes")
    probe.unlink()
    return tmp_path


def photo(folder, name):
    path = folder / name
    Image.new("RGB", (32, 24), "brown").save(path)
    return path


@pytest.mark.parametrize("name", ["cat.jpg", "cat.png", "cat.webp", "cat.tif", "cat.gif"])
def test_caption_and_keywords_go_to_the_freedesktop_attributes_with_the_photo(folder, name):
    path = photo(folder, name)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    result = write_caption(path, CAPTION)
    assert attribute(path, COMMENT) == CAPTION.text
    assert attribute(path, TAGS) == "cat,wooden floor"
    assert result.attributes == [COMMENT, TAGS]
    assert path.stat().st_mtime == 1_000_000_000  # the modification time is kept, as for the caption itself
    newer = CaptionRecord("A cat asleep.", model_id="xdg-test@2", keywords=["sleep"])
    write_caption(path, newer)  # a value that mirrors our earlier caption is kept in step
    assert attribute(path, COMMENT) == newer.text and attribute(path, TAGS) == "cat,wooden floor,sleep"


def test_a_persons_desktop_comment_and_tags_are_kept(folder):
    path = photo(folder, "holiday.jpg")
    os.setxattr(path, COMMENT, "Crete, summer 2019".encode())
    os.setxattr(path, TAGS, b"family,beach")
    result = write_caption(path, CAPTION)
    assert result.places == ["XMP", "EXIF"] and not result.warnings
    assert attribute(path, COMMENT) == "Crete, summer 2019" and attribute(path, TAGS) == "family,beach"
    assert set(result.left_alone) == {COMMENT, TAGS} and result.attributes == []
    write_caption(path, CAPTION, WriteOptions(overwrite=True))
    assert attribute(path, COMMENT) == CAPTION.text


def test_attributes_only_where_asked_and_undo_takes_them_back(folder, tmp_path):
    quiet = photo(folder, "quiet.png")
    write_caption(quiet, CAPTION, WriteOptions(write_xattrs=False))
    assert attribute(quiet, COMMENT) is None
    for name in ("undo.jpg", "undo.tif", "undo.gif"):  # rewritten photos, and one whose caption went to a sidecar
        path = photo(folder, name)
        journal = WriteJournal("test", tmp_path / "undo")
        journal.remember(path)
        write_caption(path, CAPTION)
        journal.written(path)
        assert attribute(path, COMMENT) == CAPTION.text
        assert journal.undo().restored == [path]
        assert attribute(path, COMMENT) is None and attribute(path, TAGS) is None


def test_the_cli_can_leave_the_attributes_alone(folder):
    import subprocess
    import sys

    path = photo(folder, "cli.jpg")
    run = subprocess.run([sys.executable, "-m", "desktop_app", "caption", str(path), "--no-index", "-q", "--no-xattrs"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "captioned 1" in run.stderr and attribute(path, COMMENT) is None
