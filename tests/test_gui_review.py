"""Issue 25's desktop-app items, driven by keys as a person would (offscreen Qt): the shortcuts window, typing
while the model's caption arrives, keyword text not yet committed, marking captions reviewed."""

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop_app.captioning.pipeline import CAPTIONED, PhotoOutcome
from desktop_app.gui.session import FILTERS, NEEDS_REVIEW, SORT_STATE
from desktop_app.metadata.record import PERSON
from desktop_app.metadata.store import read_caption
from test_gui import make_window, select, write_and_wait
from test_gui_session import result
from test_gui_work import shown_paths

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path)


def opened(qtbot, window, folder):
    window.open_folder(folder)
    qtbot.waitUntil(lambda: not window.runs.threads_running(), timeout=10_000)
    return window


def test_f1_and_the_help_menu_show_the_keyboard_shortcuts(qtbot, window):
    """Issue 25 item 6: F1 raised TypeError (an action named `shortcuts` hid the method `Actions.shortcuts`)."""
    qtbot.keyClick(window.grid, Qt.Key.Key_F1)
    shown = window.shortcuts_window
    assert shown is not None and shown.isVisible()
    assert "F1: Keyboard Shortcuts" in shown.text() and "Ctrl+M: Mark Reviewed" in shown.text()
    shown.close()
    window.actions.show_shortcuts.trigger()  # Help > Keyboard Shortcuts
    assert window.shortcuts_window.isVisible()


def test_typing_wins_over_the_model_caption_arriving(qtbot, window, samples):
    """Issue 25 item 5: a caption being typed became the model's caption with the rest of the keys appended.
    The model's outcome can only arrive through the event loop, so it lands after the keys typed here."""
    opened(qtbot, window, samples)
    select(window, "coffee.jpg")
    item = window.current
    window.runs.load_model(window.settings)  # opened off the UI thread; then a run starts at once
    qtbot.waitUntil(lambda: window.runs.captioner is not None and not window.runs.busy, timeout=30_000)
    window.caption_all()
    assert window.runs.caption_worker is not None and not item.caption  # nothing from the model yet
    window.focus_caption()
    qtbot.keyClicks(window.caption_edit, "An espresso cup")
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=120_000)  # its signals may be queued already
    qtbot.keyClicks(window.caption_edit, " on a saucer")
    typed = "An espresso cup on a saucer"
    assert window.caption_edit.toPlainText() == typed
    assert (item.caption, item.source, item.needs_review) == (typed, PERSON, False)
    machine = window.index.details_of(item.path).text  # what the model said, kept as its first alternative
    assert machine and item.alternatives[0][0] == machine
    assert window.panel.alternatives.item(0).text() == machine
    assert window.index.drafts_under(samples.resolve())[item.path].caption == typed
    others = [i for i in window.session.items if i is not item]
    assert all(i.caption and i.caption == window.index.details_of(i.path).text for i in others)


def test_keywords_typed_without_return_are_kept_by_ctrl_return_and_ctrl_s(qtbot, window, samples):
    """Issue 25 item 7: Ctrl+Return dropped ", dugout"; Ctrl+S said "nothing to write" with text still in the field."""
    opened(qtbot, window, samples)
    select(window, "astronaut.jpg")
    astronaut = window.current
    qtbot.keyClicks(window.caption_edit, "An astronaut.")
    window.panel.keywords.setFocus()
    window.panel.keywords.selectAll()
    qtbot.keyClicks(window.panel.keywords, "space, dugout")
    qtbot.keyClick(window.panel.keywords, Qt.Key.Key_Return, CTRL)  # keep and go on to the next photo
    assert window.current is not astronaut
    assert astronaut.keywords == ["space", "dugout"] and astronaut.unsaved

    select(window, "rocket.jpg")
    qtbot.keyClicks(window.caption_edit, "A rocket on its pad.")
    window.panel.keywords.setFocus()
    window.panel.keywords.selectAll()
    qtbot.keyClicks(window.panel.keywords, "launch, paddleboard")
    qtbot.keyClick(window.panel.keywords, Qt.Key.Key_S, CTRL)  # write the selected photo
    qtbot.waitUntil(lambda: window.runs.write_worker is None, timeout=30_000)
    assert read_caption(samples / "rocket.jpg").keywords == ["launch", "paddleboard"]
    assert "wrote 1 photo " in window.statusBar().currentMessage()  # item 10: not "1 photos"


def test_mark_reviewed_shrinks_the_needs_review_list_ordered_by_confidence(qtbot, window, samples, tmp_path):
    """Issue 25 item 9: a machine caption could not be marked reviewed, the needs-review list was in name order,
    and the needs-attention sort went stale after a filter change."""
    opened(qtbot, window, samples)
    confidence = {"astronaut.jpg": 0.30, "chelsea-small.png": 0.05, "chelsea.jpg": 0.20, "coffee.jpg": 0.10}
    window.session.apply_outcomes([
        (PhotoOutcome(item.path, CAPTIONED, result(f"A photo named {item.path.stem}.", needs_review=True,
                                                   confidence=confidence[item.path.name])), None)
        for item in window.session.items if item.path.name in confidence], "m1")
    window.search_bar.show_only.setCurrentIndex(FILTERS.index(NEEDS_REVIEW))
    window.search_bar.sort.setCurrentIndex(window.search_bar.sort.findData(SORT_STATE))
    least_sure_first = sorted(confidence, key=confidence.get)
    assert [p.name for p in shown_paths(window)] == least_sure_first

    select(window, "chelsea-small.png")
    qtbot.keyClick(window.grid, Qt.Key.Key_M, CTRL)
    assert [p.name for p in shown_paths(window)] == least_sure_first[1:]
    qtbot.waitUntil(lambda: "3 needs review" in window.counts_label.text())  # counts are redrawn every 150 ms
    reviewed = window.session.item((samples / "chelsea-small.png").resolve())
    assert "needs review" not in reviewed.badges() and not window.index.details_of(reviewed.path).needs_review

    select(window, "coffee.jpg")
    qtbot.keyClick(window.grid, Qt.Key.Key_Return, CTRL)  # keeping a caption is reviewing it
    window.search_bar.show_only.setCurrentIndex(0)
    window.search_bar.show_only.setCurrentIndex(FILTERS.index(NEEDS_REVIEW))
    assert [p.name for p in shown_paths(window)] == ["chelsea.jpg", "astronaut.jpg"]

    reopened = make_window(qtbot, tmp_path)  # the marks are in the index: a relaunch keeps them
    opened(qtbot, reopened, samples)
    assert sorted(i.path.name for i in reopened.session.items if i.needs_review) == ["astronaut.jpg", "chelsea.jpg"]


def test_a_problem_names_its_photo_once(qapp, tmp_path):
    """Issue 25 item 10: each failure line held the file name twice ("locked.jpg: not written: locked.jpg is ...")."""
    from desktop_app.gui.session import Session, WriteReport
    from desktop_app.library.index import LibraryIndex

    photo = tmp_path / "locked.jpg"
    photo.write_bytes(b"")
    session = Session(LibraryIndex(tmp_path / "index.sqlite"), tmp_path / "undo")
    session.open(tmp_path, [photo])
    session.apply_writes([WriteReport(photo, error="locked.jpg is read-only")])
    session.apply_outcomes([(PhotoOutcome(photo, "failed", message=f"cannot open: [Errno 13] Permission denied: "
                                                                   f"'{photo.resolve()}'"), None)])
    assert [p.message for p in session.problems] == ["not written: the photo is read-only",
                                                     "cannot open: [Errno 13] Permission denied"]



def failed_lines(window) -> int:
    return sum(window.problems.item(i).text().startswith("Failed") for i in range(window.problems.count()))


def test_counts_add_up_to_the_photos_at_every_step(qtbot, window, samples):
    """Issue 25 item 8: "62 unsaved, 1 uncaptioned, 2 failed" made 65 of 64; a 0-byte photo was uncaptioned until
    its thumbnail loaded; "1 failed" stood beside a Problems list saying "No problems"."""
    (samples / "empty.jpg").write_bytes(b"")

    def check(step: str) -> dict:
        c = window.session.counts()
        assert sum(c[k] for k in ("captioned", "unsaved", "uncaptioned", "failed")) == c["photos"] == 6, (step, c)
        qtbot.waitUntil(lambda: failed_lines(window) == c["failed"])  # Problems names every failed photo
        for kind in ("uncaptioned", "unsaved", "failed"):  # and each filter shows what its count says
            window.search_bar.show_only.setCurrentText(f"Show: {kind}")
            assert len(shown_paths(window)) == c[kind], (step, kind)
        window.search_bar.show_only.setCurrentText("Show: all")
        return c

    window.open_folder(samples)
    assert check("opened")["failed"] == 1 and window.photos.thumbnails_loaded() == 0  # before any thumbnail
    qtbot.waitUntil(lambda: not window.runs.threads_running(), timeout=10_000)
    check("captions read")
    window.caption_all()
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=120_000)
    assert check("captioned")["unsaved"] == 5
    window.session.start_run("another run")  # a new run's list starts empty: the failed photo is still named
    assert check("new run")["failed"] == 1
    write_and_wait(qtbot, window)
    assert check("written")["captioned"] == 5


def test_small_things_of_item_10(qtbot, window, samples, monkeypatch):
    """Issue 25 item 10: the first window was taller than a 768-pixel screen; a re-run listed one "already captioned"
    line per photo and counted those photos in its speed; library results did not follow arriving captions."""
    from desktop_app.gui import runs

    available = window.screen().availableGeometry()
    assert window.width() <= available.width() and window.height() <= available.height()

    opened(qtbot, window, samples)
    window.session.start_run("Caption all")
    window.session.apply_outcomes([(PhotoOutcome(i.path, "skipped", message="already captioned by this model"), None)
                                   for i in window.session.items[:3]])
    lines = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert lines == ["Skipped 3 photos: already captioned by this model"]
    assert window.problems_panel.title.text().endswith("0 failed, 3 skipped")

    window.runs.counts, window.runs.rate_start = {"captioned": 0}, None
    with monkeypatch.context() as patch:
        clock = iter([100.0, 102.0])
        patch.setattr(runs.time, "perf_counter", lambda: next(clock))
        window.runs.caption_progress(500, 1000, 0.0, 0.0)  # 500 skipped photos: no model time
        window.runs.counts["captioned"] = 10
        window.runs.caption_progress(510, 1000, 0.0, 0.0)
    assert window.rate_label.text().startswith("5.0 photos/s")  # 10 captioned in 2 s, not 510

    window.search_bar.whole_library.setChecked(True)
    qtbot.keyClicks(window.search, "zebra")
    qtbot.waitUntil(window.library_dock.isVisible)  # the library's answer (off the UI thread): no hits
    assert window.library_results.count() == 0
    rocket = window.session.item((samples / "rocket.jpg").resolve())
    window.session.apply_outcomes([(PhotoOutcome(rocket.path, CAPTIONED, result("A zebra on a pad.")), None)], "m1")
    qtbot.waitUntil(lambda: window.library_results.count() == 1)


def test_a_long_status_message_ends_in_an_ellipsis_before_the_counts(qtbot, window, samples):
    """Issue 25 item 10: a long message was cut off against the counts ("see Proble1200 photos")."""
    opened(qtbot, window, samples)
    bar = window.statusBar()
    bar.showMessage("captioned 1200, skipped 0, failed 3 (unsaved: Ctrl+Shift+S writes all); see Problems " * 3)
    qtbot.waitUntil(lambda: window.counts_label.isVisible() and window.counts_label.x() > 0)
    shown = bar.shown_message()
    assert shown.endswith("…") and bar.toolTip() == bar.currentMessage()
    assert 6 + bar.fontMetrics().horizontalAdvance(shown) < window.counts_label.x()
    bar.showMessage("wrote 1 photo")
    assert bar.shown_message() == "wrote 1 photo"
