"""The desktop app, driven as a person would (offscreen Qt)."""

import shutil
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from conftest import exiftool, image_data
from desktop_app.gui.main_window import MainWindow
from desktop_app.metadata.record import PERSON
from desktop_app.metadata.store import read_caption


@pytest.fixture
def window(qtbot, tmp_path):
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(store, tmp_path / "library.sqlite")
    qtbot.addWidget(win)
    win.show()
    return win


def caption_and_wait(qtbot, win, everything=True):
    (win.caption_all if everything else win.caption_selected)()
    assert win.caption_worker is not None
    with qtbot.waitSignal(win.caption_worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: win.caption_worker is None)


def select(win, name):
    for row in range(win.filter.rowCount()):
        index = win.filter.index(row, 0)
        if Path(index.data(Qt.ItemDataRole.UserRole + 1)).name == name:
            win.grid.setCurrentIndex(index)
            return
    raise AssertionError(f"{name} not in the grid")


def test_caption_review_edit_write_undo(qtbot, window, samples):
    """Open the samples, caption all with the default model, edit one caption, write, check, undo."""
    originals = {p.name: p.read_bytes() for p in samples.iterdir()}
    window.open_folder(samples)
    qtbot.waitUntil(lambda: window.photos.thumbnails_loaded() == 5, timeout=10_000)
    caption_and_wait(qtbot, window)
    assert all(item.caption and item.unsaved for item in window.photos.items)
    assert "on CPU" in window.model_label.text() or "on CUDA" in window.model_label.text()

    select(window, "coffee.jpg")
    qtbot.keyClicks(window.caption_edit, " Mine")
    edited = window._current.caption
    assert edited.endswith("Mine") and window._current.source == PERSON
    window.write_all()
    qtbot.waitUntil(lambda: not any(i.unsaved for i in window.photos.items), timeout=20_000)
    tags = exiftool(samples / "coffee.jpg")
    assert tags["XMP-dc:Description"] == edited and tags["XMP-pcap:Source"] == "person"
    chelsea = exiftool(samples / "chelsea.jpg")
    assert chelsea["XMP-pcap:Source"] == "machine" and chelsea["XMP-dc:Description"]
    assert image_data(samples / "coffee.jpg") == image_data(Path(__file__).parents[1] / "resources/samples/coffee.jpg")

    qtbot.waitUntil(lambda: window.undo_action.isEnabled(), timeout=5_000)
    window.undo_action.trigger()
    assert {p.name: p.read_bytes() for p in samples.iterdir()} == originals


def test_cancel_mid_batch_leaves_photos_whole(qtbot, window, tiny_bundle, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    source = Path(__file__).parents[1] / "resources/samples"
    for n in range(40):
        shutil.copy(source / ("chelsea.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg")[n % 4], folder / f"p{n:02d}.jpg")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    window.settings.model_path = str(tiny_bundle[0])
    window.settings.write_as_captioned = True
    window.open_folder(folder)
    window.caption_all()
    worker = window.caption_worker
    qtbot.waitUntil(lambda: window.progress.value() >= 1, timeout=60_000)
    window.cancel_action.trigger()
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        pass
    counts, cancelled, _ = blocker.args
    assert cancelled and 1 <= counts["captioned"] < 40
    written = [p for p in folder.iterdir() if p.read_bytes() != before[p.name]]
    assert len(written) == counts["captioned"]
    for photo in folder.iterdir():
        if photo in written:
            assert image_data(photo) == image_data(source / ("chelsea.jpg", "coffee.jpg", "rocket.jpg",
                                                              "astronaut.jpg")[int(photo.stem[1:]) % 4])
            assert read_caption(photo).text
        else:
            assert read_caption(photo) is None
    assert not list(folder.glob(".*"))  # no temp files left behind


def test_search_filters_the_grid(qtbot, window, tiny_bundle, samples):
    window.settings.model_path = str(tiny_bundle[0])
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    window.write_all()
    qtbot.waitUntil(lambda: not any(i.unsaved for i in window.photos.items), timeout=20_000)
    word = window.photos.items[0].caption.split()[1]
    expected = {str(i.path) for i in window.photos.items if word in i.caption.lower().split()}
    qtbot.keyClicks(window.search, word)
    shown = {window.filter.index(r, 0).data(Qt.ItemDataRole.UserRole + 1) for r in range(window.filter.rowCount())}
    assert shown == expected and 0 < len(shown) <= 5
    window.search.clear()
    assert window.filter.rowCount() == 5
    qtbot.keyClicks(window.search, "zzzz")
    assert window.filter.rowCount() == 0


def test_attention_view_and_keyboard(qtbot, window, tiny_bundle, samples):
    window.settings.model_path = str(tiny_bundle[0])
    window.open_folder(samples)
    select(window, "rocket.jpg")
    caption_and_wait(qtbot, window, everything=False)
    item = window._current
    assert item.attention is not None and len(item.attention) == len(item.words)
    plain = window.preview.pixmap().toImage()
    window.step_word(1)
    heat = window.preview.pixmap().toImage()
    assert heat != plain and window._word == 0
    assert window.preview.accessibleDescription() == item.caption
    # every menu command a person needs has a keyboard shortcut
    needed = [window.open_action, window.caption_selected_action, window.caption_all_action, window.cancel_action,
              window.write_selected_action, window.write_all_action, window.undo_action, window.copy_action,
              window.accept_action, window.revert_action, window.pause_action]
    assert all(not a.shortcut().isEmpty() for a in needed)
    window.copy_action.trigger()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == item.caption


def test_unreadable_photo_goes_to_the_problem_list(qtbot, window, tiny_bundle, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    shutil.copy(Path(__file__).parents[1] / "resources/samples/coffee.jpg", folder / "good.jpg")
    window.settings.model_path = str(tiny_bundle[0])
    window.open_folder(folder)
    caption_and_wait(qtbot, window)
    problems = [window.problems.item(i).text() for i in range(window.problems.count())]
    assert any("broken.jpg" in p and "failed" in p for p in problems)
    assert window.photos.item(folder / "good.jpg").caption


def test_export_csv_and_json(qtbot, window, tiny_bundle, samples, tmp_path):
    import csv
    import json

    window.settings.model_path = str(tiny_bundle[0])
    window.open_folder(samples)
    caption_and_wait(qtbot, window)
    window.export_to(tmp_path / "c.csv", "csv")
    window.export_to(tmp_path / "c.json", "json")
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert len(rows) == 5 and all(r["caption"] for r in rows)
    assert json.loads((tmp_path / "c.json").read_text())[0]["caption"] == rows[0]["caption"]


def test_signal_emit_keeps_refcounts(window):
    """A long captioning run emits thousands of signals; PySide6 6.12.0 dropped a reference to
    True on every emit, and Python 3.11 then aborted at exit. Guard the pinned version."""
    photos = window.photos
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(3000):
        photos.dataChanged.emit(photos.index(0), photos.index(0))
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before
