"""The session (the app's state without widgets), driven directly."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from desktop_app.captioning.pipeline import CAPTIONED, FAILED, SKIPPED, PhotoOutcome
from desktop_app.gui.session import (FAILED_FILTER, NEEDS_REVIEW, UNCAPTIONED, UNSAVED, Session, WriteReport,
                                     follow_caption)
from desktop_app.gui.messages import for_problems_list
from desktop_app.gui.panels import ProblemsList
from desktop_app.library.index import LibraryIndex
from desktop_app.metadata.record import MACHINE, PERSON, CaptionRecord


def result(text, needs_review=False, confidence=0.9):
    words = text.lower().rstrip(".").split()
    return SimpleNamespace(text=text, words=words, score=-1.0, alternatives=[(text, -1.0), ("Another one.", -2.0)],
                           attention=np.ones((len(words), 4), np.float32), keywords=[w for w in words if len(w) > 2],
                           confidence=confidence, needs_review=needs_review)


@pytest.fixture
def session(qapp, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = [folder / f"{n}.jpg" for n in "abcd"]
    for p in paths:
        p.write_bytes(b"a photo")  # not empty: a 0-byte file is unreadable at once
    s = Session(LibraryIndex(tmp_path / "index.sqlite"), tmp_path / "undo")
    s.open(folder, paths)
    s.apply_saved({})
    return s


def test_states_counts_and_filters(session):
    a, b, c, d = session.items
    counts = session.apply_outcomes([
        (PhotoOutcome(a.path, CAPTIONED, result("A dog on grass.")), None),
        (PhotoOutcome(b.path, CAPTIONED, result("A blurry thing.", needs_review=True, confidence=0.2)), None),
        (PhotoOutcome(c.path, FAILED, message="not a photo this app can open (unknown format or damaged file)"), None),
        (PhotoOutcome(d.path, SKIPPED, message="has a caption a person wrote"), None)], "m1")
    assert counts == {"captioned": 2, "skipped": 1, "failed": 1, "written": 0, "not written": 0}
    assert b.badges() == ["unsaved", "needs review", "machine"]
    assert "Pillow" not in c.error and "failed" in c.badges()
    assert [p.kind for p in session.problems] == ["failed", "skipped"]
    shown = {kind: [i.path.name for i in session.items if Session.shown_by(i, kind)]
             for kind in (UNCAPTIONED, UNSAVED, FAILED_FILTER, NEEDS_REVIEW)}
    assert shown == {UNCAPTIONED: ["d.jpg"], UNSAVED: ["a.jpg", "b.jpg"], FAILED_FILTER: ["c.jpg"],
                     NEEDS_REVIEW: ["b.jpg"]}
    c_ = session.counts()
    assert (c_["unsaved"], c_["failed"], c_["needs review"], c_["uncaptioned"]) == (2, 1, 1, 1)  # c is failed only
    assert [i.path.name for i in sorted(session.items, key=session.state_rank)][:2] == ["c.jpg", "b.jpg"]


def test_a_write_is_counted_by_what_happened(session):
    a, b, c, _ = session.items
    session.apply_outcomes([(PhotoOutcome(p.path, CAPTIONED, result("A cat.")), None) for p in (a, b, c)], "m1")
    saved = CaptionRecord("A cat.", MACHINE, "m1", ["cat"], places=["XMP", "EXIF"])
    counts = session.apply_writes([WriteReport(a.path, ["XMP", "EXIF"], saved=saved),
                                   WriteReport(b.path, skipped="kept the caption a person wrote ('x'); use overwrite to replace it"),
                                   WriteReport(c.path, error="c.jpg is read-only")])
    assert counts == {"written": 1, "skipped": 1, "failed": 1}
    assert not a.unsaved and b.unsaved and c.unsaved and "failed" in c.badges()
    assert "Settings" in b.skipped and "overwrite to" not in b.skipped  # plain words
    assert session.index.drafts_under(session.folder).keys() == {b.path, c.path}


def test_edits_follow_and_persist(session, tmp_path):
    a = session.items[0]
    session.apply_outcomes([(PhotoOutcome(a.path, CAPTIONED, result("A dog on grass.")), None)], "m1")
    a.keywords = ["dog", "grass", "golden retriever"]  # a concept keyword from the photo itself
    session.edit_caption(a, "A puppy on a lawn.")
    assert a.source == PERSON and a.keywords == ["puppy", "lawn", "golden retriever"] and a.attention is None
    session.choose_alternative(a, 0)
    assert a.source == MACHINE and a.caption == "A dog on grass." and a.attention is not None  # its own attention
    session.edit_keywords(a, ["dog", "red rug"])
    session.edit_caption(a, "A dog on a rug.")
    assert a.keywords == ["dog", "red rug"]  # typed keywords no longer follow the caption
    again = Session(LibraryIndex(session.index.path), tmp_path / "undo")
    again.open(session.folder, [i.path for i in session.items])
    assert again.items[0].caption == "A dog on a rug." and again.items[0].keywords == ["dog", "red rug"]
    assert session.discard_all() == 1 and not session.index.drafts_under(session.folder)


def test_keywords_for_an_uncaptioned_photo_are_kept_not_lost(session):
    a = session.items[0]
    session.edit_keywords(a, ["beach"])
    assert a.unsaved and session.index.drafts_under(session.folder)[a.path].keywords == ["beach"]
    assert session.write_jobs([a], "m1") == [] and "add a caption first" in session.problems[-1].message


def test_a_written_draft_is_dropped_when_the_photo_holds_it(session):
    a = session.items[0]
    session.edit_caption(a, "Mine.")
    again = Session(session.index, session.undo_folder)
    again.open(session.folder, [i.path for i in session.items])
    assert again.restored_drafts == 1
    again.apply_saved({a.path: ("Mine.", PERSON, ["mine"])})  # written before a crash, or by another tool
    assert not again.items[0].unsaved and not session.index.drafts_under(session.folder)


def test_helpers():
    assert follow_caption(["dog", "grass", "retriever"], "A dog on grass.", "A cat on a mat.") == ["cat", "mat", "retriever"]
    photo = Path("/p/a.jpg")
    assert for_problems_list("a caption a person wrote is there; use overwrite to replace it", photo) == \
        "a caption a person wrote is there; turn on 'Replace captions a person wrote' in Settings to replace it"
    assert [for_problems_list(m, photo) for m in (
        "a.jpg: file not found", "cannot read a.jpg: permission denied", "a.jpg.xmp: could not write (denied)",
        "[Errno 13] Permission denied: '/p/a.jpg'", "ba.jpg is another photo", "a.jpg is read-only")] == [
        "file not found", "cannot read the photo: permission denied", "a.jpg.xmp: could not write (denied)",
        "[Errno 13] Permission denied", "ba.jpg is another photo", "the photo is read-only"]


def problem_lines(session) -> list[str]:
    shown = ProblemsList()
    shown.show_problems(session.shown_problems(), session.run_label)
    return [shown.list.item(i).text() for i in range(shown.list.count())]


def test_each_problem_line_names_its_photo_once(session):
    """Issue 25 item 10: "Failed: a.jpg: a.jpg: file not found" named the photo twice (the writer's and the
    reader's messages start with, or hold, the photo's name)."""
    a, b, c, _ = session.items
    session.apply_outcomes([(PhotoOutcome(a.path, FAILED, message="a.jpg: file not found"), None),
                            (PhotoOutcome(b.path, FAILED, message="cannot read b.jpg: permission denied"), None)])
    session.apply_writes([WriteReport(c.path, error="c.jpg: could not write (Permission denied)")])
    lines = problem_lines(session)
    assert lines == ["Failed: a.jpg: file not found", "Failed: b.jpg: cannot read the photo: permission denied",
                     "Failed: c.jpg: not written: could not write (Permission denied)"]


def counted(session) -> dict:
    c = session.counts()
    assert sum(c[k] for k in ("captioned", "unsaved", "uncaptioned", "failed")) == c["photos"] == len(session.items)
    return c


def reopened(session, tmp_path) -> Session:
    again = Session(LibraryIndex(tmp_path / "index.sqlite"), tmp_path / "undo")
    again.open(session.folder, [i.path for i in session.items])
    counted(again)
    again.apply_saved({})
    return again


def test_failures_survive_a_relaunch_until_the_photo_changes(session, tmp_path):
    """Issue 25 item 8: failures were forgotten on relaunch (counts and Problems said nothing failed). They are kept
    in the index with the photo's size and mtime: a photo changed since is tried afresh."""
    a, b, c, d = session.items
    session.apply_outcomes([(PhotoOutcome(a.path, FAILED, message="a.jpg: file not found"), None),
                            (PhotoOutcome(b.path, CAPTIONED, result("A cat.")), None)], "m1")
    session.apply_writes([WriteReport(b.path, error="b.jpg is read-only")])
    assert counted(session)["failed"] == 2
    again = reopened(session, tmp_path)
    assert counted(again)["failed"] == 2 and again.items[1].unsaved  # b: failed to write, its draft kept
    assert [(p.path.name, p.message, p.earlier) for p in again.shown_problems()] == [
        ("a.jpg", "file not found", True), ("b.jpg", "the photo is read-only", True)]
    assert problem_lines(again) == ["Failed earlier: a.jpg: file not found",
                                    "Failed earlier: b.jpg: the photo is read-only"]
    a.path.write_bytes(b"a photo, mended")  # another size: tried again, not failed
    again.apply_outcomes([(PhotoOutcome(b.path, CAPTIONED, result("A cat.")), None)], "m1")  # captioned: error gone
    again.apply_writes([WriteReport(b.path, ["XMP"])])
    third = reopened(again, tmp_path)
    assert counted(third)["failed"] == 0 and not third.shown_problems()


def test_export_is_all_or_nothing(session, tmp_path):
    """An export that fails half way leaves the earlier export whole (it was truncated and half written)."""
    a, b, c, d = session.items
    session.apply_outcomes([(PhotoOutcome(p.path, CAPTIONED, result("A cat.")), None) for p in (a, b, c)], "m1")
    out = tmp_path / "out"
    out.mkdir()
    target = out / "captions.csv"
    assert session.export(target, "csv") == 3
    before = target.read_bytes()
    c.caption = "A cat \ud800 that cannot be encoded."  # a lone surrogate: UTF-8 refuses it
    with pytest.raises(UnicodeEncodeError):
        session.export(target, "csv")
    assert target.read_bytes() == before and [p.name for p in out.iterdir()] == ["captions.csv"]


def test_caption_all_leaves_unsaved_captions_alone(session):
    """A draft counts as a caption for a run, as a saved one does: Caption All never replaces a person's
    unsaved caption, and skips this model's own (a stopped run goes on where it stopped)."""
    a, b, c, d = session.items
    session.apply_outcomes([(PhotoOutcome(p.path, CAPTIONED, result("A dog on grass.")), None) for p in (a, b)], "m1")
    session.edit_caption(b, "Our dog Rex.")
    paths = [i.path for i in session.items]
    session.start_run("Caption all")
    assert session.to_caption(paths, recaption=False, model_id="m1") == [c.path, d.path]
    assert session.run_skipped == 2 and [p.kind for p in session.problems] == ["skipped", "skipped"]
    assert "a person wrote" in session.problems[1].message and b.caption == "Our dog Rex."
    session.start_run("Caption all")
    assert session.to_caption(paths, recaption=False, model_id="m2") == [a.path, c.path, d.path]  # another model
    assert session.to_caption(paths, recaption=False, model_id="m1", protect_person=False) == [b.path, c.path, d.path]
    session.start_run("Caption selected")
    assert session.to_caption(paths, recaption=True, model_id="m1") == paths and session.run_skipped == 0


def test_undoing_an_edit_back_to_the_models_words_is_the_models_caption_again(session):
    a = session.items[0]
    session.apply_outcomes([(PhotoOutcome(a.path, CAPTIONED, result("A dog on grass.", needs_review=True)), None)], "m1")
    session.edit_caption(a, "A dog on grass. Mine")
    assert a.source == PERSON and a.attention is None and not a.needs_review
    session.edit_caption(a, "A dog on grass.")  # Ctrl+Z in the editor
    assert a.source == MACHINE and a.attention is not None and a.words and a.needs_review and a.score == -1.0
    session.edit_caption(a, "Another one.")  # typing an alternative's words is choosing it
    assert a.source == MACHINE and a.score == -2.0 and a.attention is None
    assert session.index.drafts_under(session.folder)[a.path].source == MACHINE


def test_undoing_an_edit_back_to_a_caption_that_is_none_of_the_alternatives_is_the_models_again(session):
    """A caption made of what the models see ("Possibly: food, coffee.") is the model's top caption but none of its
    beam's alternatives: Ctrl+Z back to it made it a person's caption, without its words."""
    a = session.items[0]
    seen = result("Possibly: food, coffee.")
    seen.alternatives = [("A cup on a table.", -1.5)]
    session.apply_outcomes([(PhotoOutcome(a.path, CAPTIONED, seen), None)], "m1")
    session.edit_caption(a, "Possibly: food, coffee. Mine")
    assert a.source == PERSON and a.attention is None
    session.edit_caption(a, "Possibly: food, coffee.")  # Ctrl+Z in the editor
    assert a.source == MACHINE and a.words and a.attention is not None and a.score == -1.0


def test_runs_write_and_undo_without_a_window(qtbot, samples, tmp_path):
    """The run controller needs no window: a write runs on its thread, says what it did, goes on to the folder
    asked for meanwhile, and is undone."""
    from desktop_app.gui.runs import Runs
    from desktop_app.gui.settings import AppSettings

    index_path = tmp_path / "library.sqlite"
    session = Session(LibraryIndex(index_path), tmp_path / "undo")
    folder = samples.resolve()
    session.open(folder, sorted(folder.glob("*.jpg")))
    session.apply_saved({})
    runs = Runs(session, AppSettings(), index_path)
    messages, shown = [], []
    runs.message.connect(lambda text, ms: messages.append(text))
    runs.started.connect(shown.append)
    item = session.items[0]
    session.edit_caption(item, "A photo a person described.")
    with qtbot.waitSignal(runs.open_requested, timeout=30_000) as asked:  # the folder a person asked for, after
        assert runs.write([item]) and runs.busy
        runs.open_after_write = tmp_path
    assert asked.args == [tmp_path] and runs.open_after_write is None
    assert shown == [1] and runs.counts == {"written": 1, "skipped": 0, "failed": 0} and not item.unsaved
    assert messages[-1] == "wrote 1 photo (Ctrl+Alt+Z undoes)" and not runs.busy
    with qtbot.waitSignal(runs.undone, timeout=30_000):
        runs.undo_write()
    assert item.saved_caption != "A photo a person described." and messages[-1].startswith("restored 1 photo")
    runs.wait_all()
    qtbot.waitUntil(lambda: not runs.threads_running())


def test_ctrl_s_writes_an_unsure_machine_caption_with_its_note(qapp, samples, tmp_path):
    """Issue 29: a machine caption that needs review, written from the app (Ctrl+S), says so beside the alt text,
    as one written by `photocaption caption` does; a sure one and a person's caption carry no note."""
    from conftest import exiftool
    from desktop_app.library.keep import write_and_index
    from desktop_app.metadata.store import WriteOptions

    photos = [samples / "chelsea.jpg", samples / "coffee.jpg", samples / "rocket.jpg"]
    s = Session(LibraryIndex(tmp_path / "index.sqlite"), tmp_path / "undo")
    s.open(samples, photos)
    s.apply_saved({})
    unsure, sure, typed = s.items
    s.apply_outcomes([(PhotoOutcome(unsure.path, CAPTIONED, result("A cat on a rug.", True, 0.25)), None),
                      (PhotoOutcome(sure.path, CAPTIONED, result("A cup of coffee.", False, 0.9)), None)], "m1")
    s.edit_caption(typed, "A rocket launch at dusk.")
    for path, record in s.write_jobs(s.items, "m1"):
        report = write_and_index(path, record, WriteOptions(), s.index)
        assert report.places and not report.error and not report.skipped, report
    notes = {p.name: exiftool("-XMP-iptcCore:ExtDescrAccessibility", str(p)).get("XMP-iptcCore:ExtDescrAccessibility")
             for p in photos}
    assert "not sure of it (confidence 25%)" in notes["chelsea.jpg"]
    assert notes["coffee.jpg"] is None and notes["rocket.jpg"] is None


def runs_on(samples, tmp_path):
    from desktop_app.gui.runs import Runs
    from desktop_app.gui.settings import AppSettings

    session = Session(LibraryIndex(tmp_path / "index.sqlite"), tmp_path / "undo")
    session.open(samples, sorted(samples.glob("*.jpg")))
    return session, Runs(session, AppSettings(), tmp_path / "index.sqlite")


def slow_model(monkeypatch, seconds: float) -> None:
    import time

    from desktop_app.gui import runs as runs_module

    real = runs_module.open_captioner
    monkeypatch.setattr(runs_module, "open_captioner", lambda settings: (time.sleep(seconds), real(settings))[1])


def test_the_model_opens_off_the_ui_thread(qtbot, samples, tmp_path, monkeypatch):
    """Issue 27: the model was opened on the UI thread when a run was asked for (the window froze meanwhile).
    The run is asked for at once and starts when the model is open."""
    import time

    slow_model(monkeypatch, 1.0)
    session, runs = runs_on(samples, tmp_path)
    models = []
    runs.model_changed.connect(models.append)
    asked = time.perf_counter()
    assert runs.caption([i.path for i in session.items], recaption=True, label="Caption all")
    assert time.perf_counter() - asked < 0.5 and runs.busy and runs.caption_worker is None
    with qtbot.waitSignal(runs.caption_finished, timeout=120_000):
        pass
    assert runs.counts["captioned"] == len(session.items) and models and not runs.busy
    runs.wait_all()


def test_a_run_asked_for_in_a_folder_left_while_the_model_opens_does_not_start(qtbot, samples, tmp_path, monkeypatch):
    slow_model(monkeypatch, 0.5)
    session, runs = runs_on(samples, tmp_path)
    assert runs.caption([i.path for i in session.items], recaption=True, label="Caption all")
    session.open(tmp_path, [])  # another folder before the model is open
    with qtbot.waitSignal(runs.model_changed, timeout=30_000):
        pass
    assert runs.captioner is not None and runs.caption_worker is None and not runs.busy
    runs.wait_all()


def test_a_folder_scan_that_ends_after_another_folder_opened_is_dropped(qtbot, samples, tmp_path):
    """Issue 27: the scan of a folder left before it ended gave its captions to the next folder's photos (all
    shown uncaptioned until that folder's own scan came in)."""
    from desktop_app.metadata.store import write_caption

    session, runs = runs_on(samples, tmp_path)
    write_caption(session.items[0].path, CaptionRecord("A cup of coffee.", PERSON, "", ["cup"]))
    other = tmp_path / "other"
    other.mkdir()
    with qtbot.waitSignal(runs.captions_read, timeout=30_000):
        runs.scan(samples)
    assert session.items[0].saved_caption == "A cup of coffee." and session.counts()["captioned"] == 1
    runs.scan(other)  # as if started for a folder left since: its answer comes while samples is open
    qtbot.waitUntil(lambda: not runs.threads_running(), timeout=30_000)
    qtbot.wait(50)
    assert session.items[0].saved_caption == "A cup of coffee." and session.counts()["captioned"] == 1


def test_library_search_answers_only_the_latest_words_in_the_open_folder(qtbot, session, monkeypatch):
    """The library is searched off the UI thread; an answer that comes after the folder changed is dropped."""
    import threading
    import time

    from desktop_app.gui.browse import Browse

    gate = threading.Event()
    monkeypatch.setattr(session, "library_hits", lambda text: (gate.wait(10), [SimpleNamespace(caption=text)])[1])
    browse = Browse(session)
    answers = []
    browse.library_hits.connect(lambda hits, asked: answers.append([h.caption for h in hits]))
    asked = time.perf_counter()
    browse.search("dog", whole_library=True)
    assert time.perf_counter() - asked < 0.5 and browse.allowed == set()  # the folder's own matches: none
    session.open(session.folder, [i.path for i in session.items])  # the folder opened again meanwhile
    gate.set()
    qtbot.waitUntil(lambda: not browse.searcher.running, timeout=10_000)
    assert answers == []
    browse.search("cat")
    browse.search("cats")  # typed on: only the last words are answered
    qtbot.waitUntil(lambda: not browse.searcher.running, timeout=10_000)
    assert answers == [["cats"]]
    browse.searcher.wait()


def test_leaving_a_folder_with_unsaved_work_without_a_window(qtbot, samples, tmp_path):
    """Issue 27: opening a folder and settling unsaved work before leaving it were the window's; Folders does it,
    and a test stands in for the person."""
    from PySide6.QtCore import QSettings

    from desktop_app.gui.folders import Folders
    from desktop_app.gui.settings import Memory

    session, runs = runs_on(samples, tmp_path)
    answers: list[str] = []
    folders = Folders(session, runs, Memory(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)),
                      lambda doing: answers.pop(0))
    with qtbot.waitSignal(runs.captions_read, timeout=30_000):
        assert folders.open(samples) == "5 photos; reading their captions…"
    assert folders.last_folder() == samples.resolve()
    session.edit_caption(session.items[0], "A cup of coffee.")
    answers[:] = ["cancel", "keep"]
    assert not folders.may_open(tmp_path) and session.items[0].unsaved  # cancelled: stay
    assert folders.may_open(tmp_path) and session.items[0].unsaved  # kept as a draft: go
    answers[:] = ["write"]
    with qtbot.waitSignal(runs.close_requested, timeout=30_000):  # written first, then it closes
        assert not folders.may_quit() and runs.close_after_write
    assert not session.items[0].unsaved and folders.may_quit()
    assert not folders.discard_unsaved(lambda count: True)
