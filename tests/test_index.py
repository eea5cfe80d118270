"""The library index finds photos by the words in their captions, including captions other tools wrote."""

import subprocess

from desktop_app.library.index import LibraryIndex, fts_query
from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import write_caption


def test_fts_query_is_safe_and_prefix_matches_last_word():
    assert fts_query('dog "OR" -') == '"dog" AND "or"*'
    assert fts_query("  ") == ""


def test_scan_reads_existing_captions_and_search_ranks(samples, tmp_path):
    write_caption(samples / "chelsea.jpg", CaptionRecord("A cat lying on a red rug.", keywords=["cat", "rug"]))
    write_caption(samples / "coffee.jpg", CaptionRecord("A cup of coffee on a wooden table."))
    write_caption(samples / "chelsea-small.png", CaptionRecord("A small cat.", keywords=["cat"]))
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Description=Eileen Collins in her flight suit",
                    str(samples / "astronaut.jpg")], check=True)
    index = LibraryIndex(tmp_path / "library.sqlite")
    assert index.scan([samples]) == 5
    assert index.scan([samples]) == 0  # unchanged photos are not read again
    hits = index.search("cat")
    assert {h.path.name for h in hits} == {"chelsea.jpg", "chelsea-small.png"}
    assert [h.path.name for h in index.search("coff")] == ["coffee.jpg"]  # prefix while typing
    assert index.search("cats")[0].path.name.startswith("chelsea")  # porter stemming
    astronaut = index.search("flight suit")
    assert astronaut[0].path.name == "astronaut.jpg" and astronaut[0].source == "other"
    assert index.search("rug cat")[0].path.name == "chelsea.jpg"
    assert index.search("zebra") == []


def test_changed_caption_updates_the_index(samples, tmp_path):
    index = LibraryIndex(tmp_path / "library.sqlite")
    photo = samples / "coffee.jpg"
    write_caption(photo, CaptionRecord("A cup of coffee."))
    index.scan([samples])
    write_caption(photo, CaptionRecord("An espresso on a saucer.", source="person"), )
    index.scan([samples])
    assert index.search("espresso")[0].path == photo.resolve()
    assert index.search("cup") == []
    assert index.get(photo).source == "person"
