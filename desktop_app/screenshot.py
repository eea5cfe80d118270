"""``python -m desktop_app.screenshot OUT.png [ATTENTION.png]``: the main window with captioned samples.

Renders offscreen (no display needed) on a temporary copy of the sample photos,
so the look can be reviewed without touching anything.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m desktop_app.screenshot OUT.png [ATTENTION.png]", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_app.gui.main_window import MainWindow
    from desktop_app.resources import SAMPLE_PHOTOS

    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="photocaption-shot-"))
    samples = shutil.copytree(SAMPLE_PHOTOS, work / "samples")
    window = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat), work / "index.sqlite")
    window.resize(1280, 800)
    window.show()
    window.open_folder(Path(samples))

    def shoot_main() -> None:
        window.grid.setCurrentIndex(window.filter.index(2, 0))
        app.processEvents()
        window.grab().save(args[0])
        print(f"main window: {args[0]}")
        if len(args) > 1:
            words = window._current.words
            window.show_attention(words.index(max(words, key=len)) if words else 0)
            app.processEvents()
            window.grab().save(args[1])
            print(f"attention view: {args[1]}")
        QTimer.singleShot(0, app.quit)

    poll = QTimer()

    def wait_for_captions() -> None:
        # Polled from the UI thread: the worker's own signals arrive on its thread.
        if window.caption_worker is None and all(item.caption for item in window.photos.items):
            poll.stop()
            QTimer.singleShot(200, shoot_main)

    def start() -> None:
        window.caption_all()
        poll.timeout.connect(wait_for_captions)
        poll.start(100)

    QTimer.singleShot(300, start)
    app.exec()
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
