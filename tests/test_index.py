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


def test_drafts_and_details_survive_reopening(tmp_path):
    import numpy as np

    from desktop_app.library.index import Details, Draft

    folder = tmp_path / "photos"
    folder.mkdir()
    photo = folder / "a.jpg"
    index = LibraryIndex(tmp_path / "library.sqlite")
    index.save_drafts({photo: Draft("A red rug.", "person", ["red rug", "floor"], None)})
    attention = np.random.default_rng(0).random((3, 196)).astype(np.float32)
    index.save_details({photo: Details("A dog runs.", "m1", ["a", "dog", "runs"], [("A dog runs.", -1.5)],
                                       attention, 0.4, True)})
    index.close()
    index = LibraryIndex(tmp_path / "library.sqlite")  # as after a quit or a crash
    draft = index.drafts_under(folder)[photo.resolve()]
    assert draft.caption == "A red rug." and draft.keywords == ["red rug", "floor"] and draft.source == "person"
    assert index.drafts_under(tmp_path / "elsewhere") == {}
    assert [h.path for h in index.search_drafts("rug")] == [photo.resolve()]
    details = index.details_under(folder)[photo.resolve()]
    assert details.alternatives == [("A dog runs.", -1.5)] and details.needs_review and details.confidence == 0.4
    assert np.allclose(details.attention, attention, atol=1e-3)
    index.save_drafts({photo: None})
    assert index.drafts_under(None) == {}


def test_version_1_index_is_upgraded_in_place(tmp_path):
    """An index made before drafts existed opens, keeps its photos, and re-reads them (keywords with spaces)."""
    import sqlite3

    from desktop_app.library.index import SCHEMA, SCHEMA_VERSION

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.execute("INSERT INTO photos(path, size, mtime, caption, keywords) VALUES ('/x/a.jpg', 10, 1.0, 'A cat.', 'cat')")
    db.commit()
    db.close()
    index = LibraryIndex(path)
    assert index.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert index.search("cat")[0].caption == "A cat."
    assert index.db.execute("SELECT size FROM photos").fetchone()[0] == -1  # read again at the next scan
    assert index.drafts_under(None) == {}


def test_multi_word_keywords_stay_whole(samples, tmp_path):
    write_caption(samples / "chelsea.jpg", CaptionRecord("A cat.", keywords=["red rug", "cat"]))
    index = LibraryIndex(tmp_path / "library.sqlite")
    index.scan([samples])
    assert index.get(samples / "chelsea.jpg").keywords == ["red rug", "cat"]


def test_undo_keeps_only_metadata_and_restores_exactly(samples, tmp_path):
    """Undo keeps a JPEG's header (not the photo) and a sidecar's bytes, and puts both back byte for byte."""
    import os

    from desktop_app.library.undo import WriteJournal

    jpeg, png = samples / "chelsea.jpg", samples / "chelsea-small.png"
    os.utime(jpeg, (1_000_000_000, 1_000_000_000))
    before = {p: p.read_bytes() for p in (jpeg, png)}
    mtime = jpeg.stat().st_mtime_ns
    journal = WriteJournal("test", tmp_path / "undo")
    for photo in (jpeg, png):
        journal.remember(photo)
        write_caption(photo, CaptionRecord("A cat on a rug.", keywords=["cat"]))
        journal.written(photo)
    assert jpeg.read_bytes() != before[jpeg] and (samples / "chelsea-small.png.xmp").exists()
    assert journal.stored_bytes() < 70_000 < len(before[jpeg]) + len(before[png])
    report = journal.undo()
    assert sorted(report.restored) == sorted([jpeg, png]) and report.refused == []
    assert {p: p.read_bytes() for p in (jpeg, png)} == before
    assert jpeg.stat().st_mtime_ns == mtime and not (samples / "chelsea-small.png.xmp").exists()
    assert not list((tmp_path / "undo").iterdir())  # nothing left behind


def test_undo_leaves_a_photo_changed_since_alone(samples, tmp_path):
    from desktop_app.library.undo import WriteJournal

    photo = samples / "coffee.jpg"
    journal = WriteJournal("test", tmp_path / "undo")
    journal.remember(photo)
    write_caption(photo, CaptionRecord("A cup."))
    journal.written(photo)
    write_caption(photo, CaptionRecord("A person's own words.", source="person"))  # another edit after ours
    changed = photo.read_bytes()
    report = journal.undo()
    assert report.restored == [] and report.refused[0][0] == photo and "changed" in report.refused[0][1]
    assert photo.read_bytes() == changed
