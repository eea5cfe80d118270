"""The library index finds photos by the words in their captions, including captions other tools wrote."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from desktop_app.library.index import Draft, LibraryIndex, fts_query
from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import write_caption


def test_fts_query_is_safe_and_prefix_matches_last_word():
    assert fts_query('zzyzx "OR" -') == '("zzyzx") AND ("or" OR "or"*)'
    assert fts_query("  ") == ""


def test_broad_words_synonyms_and_two_word_names_find_photos(tmp_path):
    """person finds the woman, animal the cat, vehicle the bus, food the hot dog, bike the bicycle; each hit says why,
    and a caption's match ranks above a keyword's."""
    from desktop_app.library.terms import matches, parse

    photos = {"woman.jpg": ("A woman sitting on a bench.", []), "cat.jpg": ("A cat on a sofa.", ["tabby"]),
              "bus.jpg": ("A red bus on a street.", []), "lunch.jpg": ("A plate with two hot dogs.", []),
              "bike.jpg": ("A bicycle leaning on a wall.", []), "room.jpg": ("An empty room.", ["cat"]),
              "hot.jpg": ("A dog on a hot day.", [])}
    index = LibraryIndex(tmp_path / "library.sqlite")
    for name, (caption, keywords) in photos.items():
        (tmp_path / name).write_bytes(b"x")
        index.record(tmp_path / name, CaptionRecord(caption, keywords=keywords))
    found = {q: [h.path.name for h in index.search(q)] for q in ("person", "animal", "vehicle", "food", "bike",
                                                                   "hot dog", "sofas", "cat")}
    assert found["person"] == ["woman.jpg"]
    assert sorted(found["animal"]) == ["cat.jpg", "hot.jpg", "room.jpg"]  # not the hot dogs
    assert sorted(found["vehicle"]) == ["bike.jpg", "bus.jpg"] and found["bike"] == ["bike.jpg"]
    assert found["food"] == ["lunch.jpg"] and found["hot dog"] == ["lunch.jpg"]  # one term, not "hot" and "dog"
    assert found["sofas"] == ["cat.jpg"]
    assert found["cat"] == ["cat.jpg", "room.jpg"]  # the caption's cat above the keyword's
    why = [str(m) for m in matches(parse("animal"), *photos["cat.jpg"])]
    assert why == ["caption 'cat' (a kind of animal)"]
    assert [str(m) for m in matches(parse("cat"), *photos["room.jpg"])] == ["keyword 'cat'"]


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
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT size FROM photos").fetchone()[0] == -1  # read again at the next scan
    db.close()
    assert index.search("cat")[0].caption == "A cat."
    assert index.drafts_under(None) == {}


def test_multi_word_keywords_stay_whole(samples, tmp_path):
    write_caption(samples / "chelsea.jpg", CaptionRecord("A cat.", keywords=["red rug", "cat"]))
    index = LibraryIndex(tmp_path / "library.sqlite")
    index.scan([samples])
    assert index.get(samples / "chelsea.jpg").keywords == ["red rug", "cat"]


def test_undo_keeps_only_metadata_and_restores_exactly(samples, tmp_path):
    """Undo keeps a JPEG's header and a PNG's XMP chunk (not the photos), and puts both back byte for byte."""
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
    assert all(p.read_bytes() != before[p] for p in (jpeg, png)) and not (samples / "chelsea-small.png.xmp").exists()
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


OTHER_PROCESS = """
import sys
from pathlib import Path
from desktop_app.library.index import Draft, LibraryIndex
index = LibraryIndex(sys.argv[1])
for n in range(int(sys.argv[3])):
    index.save_drafts({Path(f"/photos/{sys.argv[2]}-{n}.jpg"): Draft(f"caption {n}", "person", ["k"])})
    index.search("caption")
index.close()
"""


def _all_drafts_in_a_fresh_process(path):

    code = "import sys; from desktop_app.library.index import LibraryIndex; print(len(LibraryIndex(sys.argv[1]).drafts_under(None)))"
    return int(subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout)


def test_a_file_dialog_touching_the_index_loses_nothing_to_another_process(tmp_path):
    """Issue 24 item 1: a descriptor of the index opened and closed in this process (as the GUI's file dialog
    did) dropped its SQLite locks; another process's close then deleted the -wal in use, and later drafts were lost."""

    path = tmp_path / "library.sqlite"
    index = LibraryIndex(path)
    index.save_drafts({Path(f"/photos/a-{n}.jpg"): Draft("first", "person", []) for n in range(10)})
    for round_ in range(3):
        with open(path, "rb") as handle:  # what a file dialog does when it looks at the file
            handle.read(100)
        subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(path), f"other{round_}", "1"], check=True)
        index.save_drafts({Path(f"/photos/b-{round_}-{n}.jpg"): Draft("later", "person", []) for n in range(10)})
    assert _all_drafts_in_a_fresh_process(path) == 10 + 3 * 10 + 3


def test_processes_writing_at_once_lose_nothing(tmp_path):
    """Four processes save drafts at once while this one keeps opening and closing the file: all arrive, file sound."""

    path = tmp_path / "library.sqlite"
    index = LibraryIndex(path)
    others = [subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, str(path), f"p{i}", "40"]) for i in range(3)]
    n = 0
    while any(p.poll() is None for p in others) or n < 40:
        with open(path, "rb") as handle:
            handle.read(100)
        index.save_drafts({Path(f"/photos/me-{n}.jpg"): Draft("mine", "person", [])})
        n += 1
    assert all(p.wait() == 0 for p in others)
    assert _all_drafts_in_a_fresh_process(path) == n + 3 * 40
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()


def test_a_file_that_is_not_a_database_is_moved_aside_and_rebuilt(tmp_path):
    """Issue 24 item 2: no traceback; the damaged file is kept beside it; the new index works."""
    path = tmp_path / "library.sqlite"
    path.write_bytes(b"this is not an SQLite file" * 100)
    index = LibraryIndex(path)
    assert "damaged (file is not a database)" in index.notice and "moved to library.sqlite.damaged-" in index.notice
    assert "could not be read" in index.notice
    aside = list(tmp_path.glob("library.sqlite.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    index.record(Path(__file__), CaptionRecord("A cat.", keywords=["cat"]))
    assert index.search("cat") and LibraryIndex(path).notice == ""


def test_a_malformed_index_keeps_the_drafts_it_still_holds(tmp_path):
    """Pages of the photos table trashed: the drafts are read out of the damaged file into the new index."""

    path = tmp_path / "library.sqlite"
    index = LibraryIndex(path)
    for n in range(300):
        index.record(Path(__file__), CaptionRecord(f"caption number {n} " * 5))
        index.save_drafts({Path(f"/photos/{n}.jpg"): Draft(f"draft {n}", "person", ["k"]) for n in range(5)})
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'photos'").fetchone()[0]
    db.close()
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xde\xad" * (page_size // 2))
    again = LibraryIndex(path)
    assert "was damaged" in again.notice and "5 unsaved drafts recovered" in again.notice
    assert sorted(again.drafts_under(None)) == [Path(f"/photos/{n}.jpg") for n in range(5)]


def test_the_cli_and_the_app_start_on_a_damaged_index(tmp_path, qtbot):

    path = tmp_path / "library.sqlite"
    path.write_bytes(b"garbage" * 1000)
    run = subprocess.run([sys.executable, "-m", "desktop_app", "search", "cat", "--index", str(path)],
                         capture_output=True, text=True, cwd=Path(__file__).parents[1], env=dict(os.environ))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "was damaged" in run.stderr and "no matches" in run.stderr
    path.write_bytes(b"garbage" * 1000)
    from test_gui import make_window

    window = make_window(qtbot, tmp_path)
    assert "was damaged" in window.statusBar().currentMessage()


def test_undo_keeps_a_sidecar_another_program_rewrote_or_made(tmp_path, monkeypatch):
    """Issue 24 item 9: undo deleted the sidecar it had made even after darktable rewrote it (same size, on a file
    system with coarse timestamps), and deleted a Lightroom-style photo.xmp made after the write."""
    from PIL import Image

    from desktop_app.library import undo
    from desktop_app.metadata.store import SIDECAR, WriteOptions, sidecar_path

    monkeypatch.setattr(undo, "_identity", lambda p: (p.stat().st_ino, p.stat().st_size, 0) if p.exists() else None)
    darktable, lightroom = tmp_path / "darktable.jpg", tmp_path / "lightroom.jpg"
    for photo in (darktable, lightroom):
        Image.new("RGB", (16, 16), "red").save(photo)
    journal = undo.WriteJournal("test", tmp_path / "undo")
    for photo in (darktable, lightroom):
        journal.remember(photo)
        write_caption(photo, CaptionRecord("A cat on a rug."), WriteOptions(mode=SIDECAR))  # as --write sidecar
        journal.written(photo)
    ours = sidecar_path(darktable)
    rewritten = ours.read_bytes().replace(b"A cat on a rug.", b"A dog on a rug.")
    with open(ours, "r+b") as handle:  # rewritten in place, same size
        handle.write(rewritten)
    theirs = sidecar_path(lightroom, "stem")
    theirs.write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    report = journal.undo()
    assert report.refused == [(darktable, "darktable.jpg.xmp, made by this write, was changed by another program "
                                          "since; kept, not deleted")]
    assert ours.read_bytes() == rewritten
    assert report.restored == [lightroom] and not sidecar_path(lightroom).exists() and theirs.exists()
