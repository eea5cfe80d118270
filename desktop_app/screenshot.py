"""``python -m desktop_app.screenshot OUT.png [ATTENTION.png] [PROBLEMS.png] [SHORTCUTS.png]``: the app at work.

Renders offscreen (no display needed), at 1366x768 (a common laptop screen), on a
temporary copy of the sample photos plus a damaged file and a read-only photo, so
every state shows: the grid with its state badges (one machine caption marked
reviewed, the others still needing review), the attention view, the Problems list
after a write that partly failed, and the keyboard shortcuts window (F1). Nothing
outside the temporary folder is touched.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path


def _window_on_samples(work: Path):
    """A shown main window at laptop size on a throwaway copy (in ``work``) of the sample photos plus a damaged file;
    returns it and the copy's folder."""
    from PySide6.QtCore import QSettings

    from desktop_app.gui.main_window import MainWindow
    from desktop_app.resources import SAMPLE_PHOTOS

    samples = Path(shutil.copytree(SAMPLE_PHOTOS, work / "samples", ignore=shutil.ignore_patterns("*.md")))
    (samples / "damaged.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a photo")
    window = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat), work / "index.sqlite")
    window.ask_about_unsaved = lambda doing: "discard"  # a throwaway copy
    window.resize(1366, 768)
    window.show()
    window.open_folder(samples)
    return window, samples


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m desktop_app.screenshot OUT.png [ATTENTION.png] [PROBLEMS.png] [SHORTCUTS.png]",
              file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="photocaption-shot-"))
    window, samples = _window_on_samples(work)

    def select(name: str) -> None:
        for row in range(window.filter.rowCount()):
            index = window.filter.index(row, 0)
            if window.photos.items[window.filter.mapToSource(index).row()].path.name == name:
                window.grid.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def save(path: str, what: str, widget=None) -> None:
        app.processEvents()
        (widget or window).grab().save(path)
        print(f"{what}: {path}")

    def after_captions() -> None:
        select("coffee.jpg")
        window.panel.set_caption_text("A cup of coffee on a saucer, with a spoon.")  # a person's edit
        (samples / "rocket.jpg").chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # a read-only photo
        window.write([window.session.item(samples / n) for n in ("chelsea.jpg", "rocket.jpg")])
        wait(lambda: window.runs.write_worker is None, after_write)

    def after_write() -> None:
        window.search_bar.sort.setCurrentIndex(1)  # needs attention first
        select("chelsea.jpg")
        window.mark_reviewed()  # a person checked this one: it needs review no more
        save(args[0], "grid with state badges")
        if len(args) > 1:
            words = window.current.words
            window.show_attention(words.index(max(words, key=len)) if words else 0)
            save(args[1], "attention view")
        if len(args) > 2:
            window.show_attention(None)
            window.search_bar.show_only.setCurrentText("Show: failed")
            window.problems_dock.raise_()
            window.resizeDocks([window.problems_dock], [190], Qt.Orientation.Vertical)
            select("rocket.jpg")
            save(args[2], "problems and the failed filter")
        if len(args) > 3:
            window.show_shortcuts()
            save(args[3], "keyboard shortcuts (F1)", window.shortcuts_window)
        QTimer.singleShot(0, app.quit)

    def wait(condition, then) -> None:
        poll = QTimer(window)

        def check() -> None:  # polled from the UI thread: the workers' own signals arrive on their threads
            if condition():
                poll.stop()
                QTimer.singleShot(200, then)

        poll.timeout.connect(check)
        poll.start(100)

    def start() -> None:
        window.caption_all()
        wait(lambda: window.runs.caption_worker is None and not window.runs.threads_running(), after_captions)

    QTimer.singleShot(300, start)
    app.exec()
    window.close()
    (samples / "rocket.jpg").chmod(0o644)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
