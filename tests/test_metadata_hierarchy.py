"""Machine keywords also go to lr:hierarchicalSubject (photocaption|word), which Immich, Lightroom and digiKam
take tags from, but never where that would hide keywords a person chose."""

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import exiftool
from desktop_app.metadata.record import PERSON, CaptionRecord
from desktop_app.metadata.store import WriteOptions, write_caption

CAPTION = CaptionRecord("A cat lying on a wooden floor.", model_id="tree-test@1", keywords=["cat", "wooden floor"])


def tags(path):
    found = exiftool("-XMP-lr:HierarchicalSubject", "-XMP-dc:Subject", path)
    return found.get("XMP-lr:HierarchicalSubject"), found.get("XMP-dc:Subject")


@pytest.fixture(params=["cat.jpg", "cat.png", "cat.tif", "cat.gif"])
def photo(request, tmp_path):
    path = tmp_path / request.param
    Image.new("RGB", (32, 24), "brown").save(path)
    return path


def readable(path):
    """The file exiftool reads our XMP from: the photo, or a GIF's sidecar."""
    return path.with_name(path.name + ".xmp") if path.suffix == ".gif" else path


def test_machine_keywords_get_a_hierarchy_under_one_root(photo):
    write_caption(photo, CAPTION)
    assert tags(readable(photo)) == (["photocaption|cat", "photocaption|wooden floor"], ["cat", "wooden floor"])
    write_caption(photo, CaptionRecord("A cat asleep.", model_id="tree-test@2", keywords=["sleep"]))
    assert tags(readable(photo))[0] == ["photocaption|cat", "photocaption|wooden floor", "photocaption|sleep"]


def test_no_hierarchy_where_a_person_chose_keywords_unless_asked(tmp_path):
    path = tmp_path / "holiday.jpg"
    Image.new("RGB", (32, 24), "blue").save(path)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Subject=Crete", str(path)], check=True)
    write_caption(path, CAPTION)
    assert tags(path) == (None, ["Crete", "cat", "wooden floor"])
    write_caption(path, CAPTION, WriteOptions(keyword_hierarchy="always"))
    assert tags(path)[0] == ["photocaption|cat", "photocaption|wooden floor"]


def test_a_persons_own_hierarchy_or_keywords_get_no_machine_entries(tmp_path):
    path = tmp_path / "places.png"
    Image.new("RGB", (32, 24), "blue").save(path)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-lr:HierarchicalSubject=Places|Crete", str(path)],
                   check=True)
    write_caption(path, CAPTION)
    assert tags(path)[0] == ["Places|Crete"]
    mine, never = tmp_path / "mine.jpg", tmp_path / "never.jpg"
    for each in (mine, never):
        Image.new("RGB", (32, 24), "blue").save(each)
    write_caption(mine, CaptionRecord("Our cat Mimi.", source=PERSON, keywords=["Mimi"]))  # a person's words
    write_caption(never, CAPTION, WriteOptions(keyword_hierarchy="never"))
    assert tags(mine) == (None, ["Mimi"]) and tags(never)[0] is None
    iptc = Path(shutil.copy(Path(__file__).parent / "data" / "iptc_keywords.jpg", tmp_path / "iptc.jpg"))
    iptc.chmod(0o644)
    write_caption(iptc, CaptionRecord("A dog.", keywords=["dog"]))  # keywords a person keeps in IPTC count too
    assert tags(iptc) == (None, ["HvK", 2006, "summer", "Budapest", "dog"])  # exiftool gives 2006 as a number
