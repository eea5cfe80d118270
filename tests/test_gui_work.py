"""A person's work is never lost, and the app says honestly what happened to every photo (offscreen Qt)."""

import os
import stat
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from conftest import exiftool
from desktop_app.library.keep import WriteReport
from desktop_app.metadata.record import MACHINE, PERSON
from test_gui import caption_and_wait, make_window, select, write_and_wait


@pytest.fixture
def window(qtbot, tmp_path):
    return make_window(qtbot, tmp_path)


def shown_paths(win):
    return [Path(win.filter.index(r, 0).data(Qt.ItemDataRole.UserRole + 1)) for r in range(win.filter.rowCount())]


def answer_dialog(qtbot, button_text):
    """Click a button of the question box that is about to open (the real dialog, not a stand-in)."""
    seen = []

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        for button in box.buttons():
            if button.text().replace("&", "") == button_text:
                button.click()
                return
        raise AssertionError(f"no {button_text!r} in {[b.text() for b in box.buttons()]}")

    QTimer.singleShot(20, click)
    return seen


def test_caption_all_quit_reopen_keeps_every_caption_and_edit(qtbot, window, samples, tmp_path):
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    select(window, "coffee.jpg")
    qtbot.keyClicks(window.caption_edit, " Mine")
    edited = window.current.caption
    select(window, "rocket.jpg")
    window.panel.keywords.setText("launch pad, rocket")
    window.panel.keywords.editingFinished.emit()
    machine = {i.path.name: i.caption for i in window.photos.items}
    assert window.close()  # the fixture's stand-in answers "keep as drafts"

    reopened = make_window(qtbot, tmp_path)  # same settings file and library index
    assert reopened.reopen_last()  # the last folder comes back
    qtbot.waitUntil(lambda: not reopened.runs.threads_running(), timeout=10_000)
    items = {i.path.name: i for i in reopened.photos.items}
    assert {name: i.caption for name, i in items.items()} == machine
    assert items["coffee.jpg"].caption == edited and items["coffee.jpg"].source == PERSON
    assert items["rocket.jpg"].keywords == ["launch pad", "rocket"]
    assert all(i.unsaved for i in items.values()) and "5 unsaved" in reopened.counts_label.text()
    assert items["chelsea.jpg"].attention is not None and items["chelsea.jpg"].alternatives  # details kept too
    assert "unsaved" in items["coffee.jpg"].badges() and "person" in items["coffee.jpg"].badges()


CRASHING_SESSION = """
import sys, time
from pathlib import Path
from types import SimpleNamespace
from PySide6.QtCore import QCoreApplication
from desktop_app.captioning.pipeline import CAPTIONED, PhotoOutcome
from desktop_app.gui.session import Session
from desktop_app.library.index import LibraryIndex

app = QCoreApplication([])
index, folder = Path(sys.argv[1]), Path(sys.argv[2])
session = Session(LibraryIndex(index), index.parent / "undo")
session.open(folder, sorted(folder.iterdir()))
session.apply_outcomes([(PhotoOutcome(item.path, CAPTIONED, SimpleNamespace(
    text=f"A photo called {item.path.stem}.", words=["a", "photo"], score=-1.0, alternatives=[], attention=None,
    keywords=[item.path.stem], confidence=0.9, needs_review=False)), None) for item in session.items], "m1")
session.edit_caption(session.item(folder / "coffee.jpg"), "A photo called coffee. typed just now")
print("drafts made", flush=True)
time.sleep(600)
"""


def test_drafts_survive_a_crash(qapp, samples, tmp_path):
    """Nothing is written at quit time: the process holding the drafts is killed (SIGKILL, no cleanup at all),
    and a new session on the same index sees every draft, the one typed last included."""
    import signal
    import subprocess
    import sys

    from desktop_app.gui.session import Session
    from desktop_app.library.index import LibraryIndex

    folder, index = samples.resolve(), tmp_path / "library.sqlite"
    child = subprocess.Popen([sys.executable, "-c", CRASHING_SESSION, str(index), str(folder)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    try:
        assert child.stdout.readline() == "drafts made\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    after = Session(LibraryIndex(index), tmp_path / "undo")
    after.open(folder, sorted(folder.iterdir()))
    assert after.restored_drafts == len(after.items) == 5
    assert {i.path.name: i.caption for i in after.items} == {
        i.path.name: f"A photo called {i.path.stem}." + (" typed just now" if i.path.stem == "coffee" else "")
        for i in after.items}
    assert after.item(folder / "coffee.jpg").source == PERSON


def test_quit_with_unsaved_work_asks(qtbot, window, samples):
    del window.ask_about_unsaved  # the real question
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    seen = answer_dialog(qtbot, "Cancel")
    assert not window.close() and window.isVisible()
    assert "5 photos have captions or keywords not yet written" in seen[0]
    answer_dialog(qtbot, "Discard")
    assert window.close()
    assert window.index_path.exists()
    from desktop_app.library.index import LibraryIndex

    assert LibraryIndex(window.index_path).drafts_under(samples) == {}  # a person chose to discard


def test_switching_folder_with_unsaved_work_can_write_all(qtbot, window, samples, tmp_path):
    del window.ask_about_unsaved
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    other = tmp_path / "other"
    other.mkdir()
    answer_dialog(qtbot, "Write All to Photos")
    assert not window.open_folder_asking(other)  # writes first
    qtbot.waitUntil(lambda: window.folder == other.resolve(), timeout=20_000)  # then opens it
    assert exiftool(samples / "coffee.jpg")["XMP-dc:Description"]


def test_read_only_photos_are_reported_failed(qtbot, window, samples):
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    for photo in samples.glob("*.jpg"):
        photo.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    write_and_wait(qtbot, window)
    message = window.statusBar().currentMessage()
    assert "wrote 1 photo," in message and "failed 4" in message  # the PNG is writable
    assert window.counts_label.text().startswith("5 photos: 1 captioned, 4 failed")  # a failed write counts once
    failed = [i for i in window.photos.items if "failed" in i.badges()]
    assert len(failed) == 4 and all("read-only" in i.write_error for i in failed)
    assert window.problems_panel.title.text().endswith("4 failed, 0 skipped")
    window.search_bar.show_only.setCurrentText("Show: failed")
    assert sorted(p.name for p in shown_paths(window)) == sorted(p.name for p in samples.glob("*.jpg"))


def test_person_caption_is_a_skip_with_its_reason(qtbot, window, samples):
    from desktop_app.metadata.record import CaptionRecord
    from desktop_app.metadata.store import write_caption

    write_caption(samples / "coffee.jpg", CaptionRecord("My espresso.", source=PERSON))
    window.open_folder(samples)
    qtbot.waitUntil(lambda: window.session.counts()["captioned"] == 1, timeout=10_000)
    caption_and_wait(qtbot, window)
    assert "captioned 4, skipped 1" in window.statusBar().currentMessage()
    texts = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert texts == ["Skipped: coffee.jpg: has a caption a person wrote"]


def test_keyword_only_edit_is_written(qtbot, window, samples):
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    write_and_wait(qtbot, window)
    select(window, "chelsea.jpg")
    item = window.current
    written = list(item.keywords)  # the model's keywords, now in the photo
    window.panel.keywords.setText("cat, red rug")
    window.panel.keywords.editingFinished.emit()
    assert item.unsaved and "unsaved" in item.badges()
    write_and_wait(qtbot, window, everything=False)
    assert "wrote 1 photo " in window.statusBar().currentMessage()
    assert not item.unsaved
    subject = exiftool(samples / "chelsea.jpg")["XMP-dc:Subject"]
    assert {"cat", "red rug"} <= set(subject)  # multi-word keyword whole
    assert item.keywords == subject  # the app shows what the photo holds
    kept = [k for k in written if k not in ("cat", "red rug")]  # the edit dropped them; the writer never removes one
    assert kept and set(subject) == set(written) | {"cat", "red rug"}
    notes = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert f"Note: chelsea.jpg: kept keywords already in the photo: {', '.join(kept)}" in notes


def test_keywords_follow_caption_edits_and_alternatives_stay_machine(qtbot, window, samples):
    window.open_folder(samples)
    select(window, "chelsea.jpg")
    caption_and_wait(qtbot, window, everything=False)
    item = window.current
    window.caption_edit.selectAll()
    qtbot.keyClicks(window.caption_edit, "A tabby cat asleep.")
    assert item.keywords[:3] == ["tabby", "cat", "asleep"] and item.source == PERSON
    text, score = item.alternatives[1]
    window.use_alternative(1)
    assert item.caption == text and item.source == MACHINE and item.score == score
    assert "written by the model" in window.panel.info.text()
    write_and_wait(qtbot, window, everything=False)
    tags = exiftool(samples / "chelsea.jpg")
    assert tags["XMP-pcap:Source"] == "machine" and tags["XMP-dc:Description"] == text
    assert abs(float(tags["XMP-pcap:Score"]) - score) < 1e-3


def test_write_as_made_then_undo(qtbot, window, samples):
    originals = {p.name: p.read_bytes() for p in samples.iterdir()}
    window.settings.write_as_captioned = True
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    assert "written into 5 photos, not written 0" in window.statusBar().currentMessage()
    assert not window.session.unsaved_items() and window.session.counts()["captioned"] == 5
    window.runs.undo_write()
    qtbot.waitUntil(lambda: window.runs.write_worker is None, timeout=10_000)
    assert {p.name: p.read_bytes() for p in samples.iterdir()} == originals
    assert len(window.session.unsaved_items()) == 5  # back to drafts, not lost


def test_ctrl_return_moves_a_single_selection(qtbot, window, samples):
    window.open_folder(samples)
    window.grid.setFocus()
    first = window.grid.currentIndex().row()
    for step in range(1, 4):
        qtbot.keyClick(window.grid, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert window.grid.currentIndex().row() == first + step
        assert len(window.grid.selectionModel().selectedIndexes()) == 1
    # from the caption editor too: the review loop
    window.caption_edit.setFocus()
    qtbot.keyClick(window.caption_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.grid.currentIndex().row() == first + 4
    assert len(window.selected_items()) == 1 and window.caption_edit.hasFocus()


def test_esc_clears_search_and_ctrl_backspace_deletes_a_word(qtbot, window, samples):
    window.open_folder(samples)
    assert window.grid.hasFocus() or QApplication.focusWidget() is window.grid  # focus starts on the photos
    window.search.setFocus()
    qtbot.keyClicks(window.search, "zzzz")
    assert window.filter.rowCount() == 0
    qtbot.keyClick(window.search, Qt.Key.Key_Escape)
    assert window.search.text() == "" and window.filter.rowCount() == 5
    select(window, "coffee.jpg")
    window.caption_edit.setFocus()
    qtbot.keyClicks(window.caption_edit, "A cup of coffee")
    qtbot.keyClick(window.caption_edit, Qt.Key.Key_Backspace, Qt.KeyboardModifier.ControlModifier)
    assert window.caption_edit.toPlainText() == "A cup of "
    qtbot.keyClick(window.caption_edit, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.caption_edit.toPlainText() == "A cup of coffee"  # Ctrl+Z: the editor's undo, nothing else


def test_mnemonics_are_unique_and_tab_order_follows_the_layout(window):
    from PySide6.QtWidgets import QLabel

    keys = [a.text().split("&")[1][0].lower() for a in window.menuBar().actions()]
    keys += [label.text().split("&")[1][0].lower() for label in window.findChildren(QLabel)
             if "&" in label.text() and label.buddy() is not None]
    keys += [window.search_bar.whole_library.text().split("&")[1][0].lower()]
    assert len(keys) == len(set(keys)), keys
    for menu in window.actions.menus.values():  # and once within each menu
        inside = [a.text().split("&")[1][0].lower() for a in menu.actions() if "&" in a.text()]
        assert len(inside) == len(set(inside)), [a.text() for a in menu.actions()]
    order, widget = [], window.search
    for _ in range(6):
        order.append(widget)
        widget = widget.nextInFocusChain()
        while not widget.focusPolicy() & Qt.FocusPolicy.TabFocus or not widget.isVisibleTo(window):
            widget = widget.nextInFocusChain()
    assert order.index(window.grid) < order.index(window.caption_edit)


def test_filters_sort_and_stale_preview(qtbot, window, samples):
    window.open_folder(samples)
    qtbot.waitUntil(lambda: not window.runs.threads_running(), timeout=10_000)
    select(window, "rocket.jpg")
    caption_and_wait(qtbot, window, everything=False)
    window.search_bar.show_only.setCurrentText("Show: uncaptioned")
    uncaptioned = [i.path for i in window.photos.items if not i.caption]  # astronaut.jpg has a caption already
    assert sorted(shown_paths(window)) == sorted(uncaptioned) and "rocket.jpg" not in [p.name for p in uncaptioned]
    assert window.current is not None and window.current.path.name != "rocket.jpg"  # never a hidden photo
    window.search_bar.show_only.setCurrentText("Show: unsaved")
    assert [p.name for p in shown_paths(window)] == ["rocket.jpg"]
    window.search_bar.show_only.setCurrentText("Show: all")
    window.search_bar.sort.setCurrentIndex(1)  # needs attention first: unsaved before uncaptioned
    assert shown_paths(window)[0].name == "rocket.jpg"
    qtbot.keyClicks(window.search, "zzzz")
    assert window.current is None and not window.preview.has_photo()


def test_settings_remember_and_do_not_keep_a_failed_provider(qtbot, window, samples, tmp_path, monkeypatch):
    from desktop_app.gui import settings as settings_module
    from desktop_app.captioning.runtime import ProviderError

    window.open_folder(samples)
    assert window.memory.last_folder == str(samples.resolve())
    assert window.memory.recent_folders()[0] == str(samples.resolve())
    assert int(window.store.value("settings_version")) == settings_module.SETTINGS_VERSION

    def failing_open(path=None, provider="auto", threads=0):
        raise ProviderError("CUDA is not usable here")

    class Dialog:
        def __init__(self, settings, parent):
            self.settings = settings_module.AppSettings(**{**settings.__dict__, "provider": "cuda"})

        def exec(self):
            return True

    monkeypatch.setattr("desktop_app.gui.main_window.SettingsDialog", Dialog)
    monkeypatch.setattr("desktop_app.gui.runs.Captioner.open", failing_open)
    window.open_settings()
    assert window.settings.provider == "auto" and window.store.value("provider") == "auto"


def test_startup_check_names_debian_packages():
    from desktop_app.gui import platform_check

    missing = platform_check.missing_packages({"libc.so.6": "libc6", "libxcb-nothere.so.9": "libxcb-nothere9"})
    assert missing == ["libxcb-nothere9"]
    message = platform_check.problem_message(["libxcb-icccm4", "libxcb-keysyms1"])
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in message
    assert platform_check.uses_xcb({"DISPLAY": ":0"}, "linux")
    assert not platform_check.uses_xcb({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not platform_check.uses_xcb({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not platform_check.uses_xcb({}, "win32")


def test_library_search_finds_other_folders_and_opens_them(qtbot, window, samples, tmp_path):
    import shutil

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(samples / "coffee.jpg", other / "espresso.jpg")
    window.open_folder(other)
    select(window, "espresso.jpg")
    window.caption_edit.selectAll()
    qtbot.keyClicks(window.caption_edit, "An espresso in a red cup.")
    write_and_wait(qtbot, window)
    window.open_folder(samples)
    qtbot.waitUntil(lambda: not window.runs.threads_running(), timeout=10_000)
    window.search_bar.whole_library.setChecked(True)
    qtbot.keyClicks(window.search, "espresso")
    assert window.filter.rowCount() == 0  # not in this folder...
    qtbot.waitUntil(lambda: window.library_results.count() == 1)  # the library is searched off the UI thread
    hits = [window.library_results.item(i).text() for i in range(window.library_results.count())]
    assert len(hits) == 1 and hits[0].startswith("espresso.jpg: An espresso in a red cup.")  # ...but in the library
    window.library_results.itemActivated.emit(window.library_results.item(0))
    assert window.folder == other.resolve() and window.current.path.name == "espresso.jpg"


def test_caption_all_again_keeps_a_typed_draft(qtbot, window, samples):
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    select(window, "coffee.jpg")
    machine = window.current.caption
    qtbot.keyClicks(window.caption_edit, " Mine")
    typed = window.current.caption
    window.caption_all()  # every photo has an unsaved caption already: none is captioned again
    assert window.runs.caption_worker is None and "nothing to caption: skipped 5" in window.statusBar().currentMessage()
    assert window.session.item((samples / "coffee.jpg").resolve()).caption == typed
    texts = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert "Skipped: coffee.jpg: has an unsaved caption a person wrote (kept as a draft)" in texts
    for _ in range(10):  # Ctrl+Z in the editor back to the model's words: the model's caption again, with its words
        if window.caption_edit.toPlainText() == machine:
            break
        window.caption_edit.undo()
    assert window.current.source == MACHINE and window.panel.word_buttons
    assert "written by the model" in window.panel.info.text()


def test_problems_come_to_the_front_of_an_empty_library_search(qtbot, window, samples):
    window.library_dock.show()
    window.library_dock.raise_()  # as a restored window layout may have it, with no search typed
    window.open_folder(samples)
    qtbot.waitUntil(lambda: not window.runs.threads_running(), timeout=10_000)
    window.session.start_run("Write")
    window.session.apply_writes([WriteReport(window.session.items[0].path, error="read-only")])  # a failed write
    assert not window.problems_dock.visibleRegion().isEmpty() and window.library_dock.visibleRegion().isEmpty()


def test_library_search_and_opening_the_model_never_freeze_the_window(qtbot, window, samples, tmp_path, monkeypatch):
    """Issue 27: the library was searched, and the model opened, on the UI thread: a slow index or a slow disk
    froze the window. Each key typed in a library search, and Caption All, now return at once; an answer that
    comes after another folder was opened is dropped."""
    import threading
    import time

    from desktop_app.gui import runs as runs_module

    window.open_folder(samples)
    qtbot.waitUntil(lambda: not window.runs.threads_running(), timeout=10_000)
    window.session.edit_caption(window.session.items[0], "A cup of coffee.")  # a draft: the library finds it
    gate = threading.Event()
    library_hits = window.session.library_hits
    monkeypatch.setattr(window.session, "library_hits", lambda text: (gate.wait(2), library_hits(text))[1])
    window.search_bar.whole_library.setChecked(True)
    typed = time.perf_counter()
    qtbot.keyClicks(window.search, "cup")
    assert time.perf_counter() - typed < 1.5  # three searches of 2 s each, had they run here
    (other := tmp_path / "other").mkdir()
    window.open_folder(other)
    gate.set()
    qtbot.waitUntil(lambda: not window.browse.searcher.running, timeout=10_000)
    assert window.library_results.count() == 0  # the hits asked for in the folder left are not shown
    window.search.setText("cup ")
    qtbot.waitUntil(lambda: window.library_results.count() == 1, timeout=10_000)  # asked for here: shown

    open_captioner = runs_module.open_captioner
    monkeypatch.setattr(runs_module, "open_captioner", lambda settings: (time.sleep(2), open_captioner(settings))[1])
    window.open_folder(samples)
    asked = time.perf_counter()
    window.caption_all()
    assert time.perf_counter() - asked < 1.0 and window.runs.busy and not window.actions.caption_all.isEnabled()
    qtbot.waitUntil(lambda: not window.runs.busy, timeout=120_000)
    assert window.session.counts()["unsaved"] == 5 and window.model_label.text().startswith("model: ")
