"""The app stays responsive: launch-to-thumbnails on a 1,000-photo folder, event-loop gaps while captioning.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py [--bundle DIR] [--caption 200] [--write-as-made]

Prints the time from creating the window to the first screenful of thumbnails,
and the largest gap between 10 ms timer ticks while a captioning batch runs
(a frozen UI shows up as a long gap). With --write-as-made each caption is also
written into its photo as it is made (on a fresh copy of the folder), as the
setting "Write each caption as soon as it is made" does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEvent, QEventLoop, QObject, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.photo_folders import make_folder  # noqa: E402


def wait_until(condition) -> float:
    """Run the event loop until ``condition()`` holds (polled every ms from the UI thread; the
    workers' own signals arrive on their threads); returns when it first held.

    A local QEventLoop, not app.quit(): quitting the application closes the window, whose
    closeEvent waits for the folder scan and would be counted."""
    loop, poll, held = QEventLoop(), QTimer(), []

    def check() -> None:
        if condition():
            held.append(time.perf_counter())
            poll.stop()
            loop.quit()

    poll.timeout.connect(check)
    poll.start(1)
    loop.exec()
    return held[0]


class PaintSeen(QObject):
    """Notes the grid's first paint: only then has it asked for every visible thumbnail (the
    first request comes earlier, from sizing the current item, and is not a screenful)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.seen = True
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--caption", type=int, default=200, help="photos to caption while measuring gaps")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "photocaption-bench")
    parser.add_argument("--write-as-made", action="store_true", help="write each caption into its photo as made")
    args = parser.parse_args()
    folder = args.work / f"gui{args.photos}"
    make_folder(folder, args.photos, (500, 375))
    copy_root = None
    if args.write_as_made:  # the writes change the photos: work on a copy, removed at the end
        copy_root = Path(tempfile.mkdtemp())
        folder = Path(shutil.copytree(folder, copy_root / folder.name))

    app = QApplication([])
    from desktop_app.gui.main_window import MainWindow

    work = Path(tempfile.mkdtemp())
    clock = time.perf_counter()
    window = MainWindow(QSettings(str(work / "s.ini"), QSettings.Format.IniFormat), work / "index.sqlite")
    if args.bundle:
        window.settings.model_path = str(args.bundle)
    window.settings.write_as_captioned = args.write_as_made
    window.resize(1280, 800)
    painted = PaintSeen()
    window.grid.viewport().installEventFilter(painted)
    window.show()
    window.open_folder(folder)
    photos = window.photos
    shown_at = wait_until(lambda: painted.seen and 0 < photos.thumbnails_requested() <= photos.thumbnails_loaded())
    print(f"launch to the first screenful ({photos.thumbnails_loaded()} thumbnails), {args.photos}-photo folder: "
          f"{(shown_at - clock) * 1000:.0f} ms")

    gaps: list[float] = []
    ticker, elapsed = QTimer(), QElapsedTimer()

    def tick() -> None:
        gaps.append(elapsed.restart())

    load = time.perf_counter()
    window.runs.load_model(window.settings)  # off the UI thread, as the app does
    wait_until(lambda: window.runs.captioner is not None and window.runs.loading is None)
    print(f"model load (off the UI thread): {(time.perf_counter() - load) * 1000:.0f} ms")
    ticker.timeout.connect(tick)
    elapsed.start()
    ticker.start(10)
    window.caption([i.path for i in window.photos.items[: args.caption]], recaption=True)
    start = time.perf_counter()
    finished_at = wait_until(lambda: window.runs.caption_worker is None)
    seconds = finished_at - start
    ticker.stop()
    gaps.sort()
    print(f"captioned {args.caption} photos in {seconds:.1f} s ({args.caption / seconds:.1f} photos/s) "
          f"with the UI running: timer ticks {len(gaps)}, max gap {gaps[-1]:.0f} ms, "
          f"p99 {gaps[int(len(gaps) * 0.99)]:.0f} ms (10 ms timer)"
          + (f"; written into {window.session.counts()['captioned']} photos as made" if args.write_as_made else ""))
    window.ask_about_unsaved = lambda doing: "discard"  # a benchmark's captions are not anyone's work
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    if copy_root is not None:
        shutil.rmtree(copy_root, ignore_errors=True)


if __name__ == "__main__":
    main()
