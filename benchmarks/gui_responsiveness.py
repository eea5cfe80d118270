"""The app stays responsive: launch-to-thumbnails on a 1,000-photo folder, event-loop gaps while captioning.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_responsiveness.py [--bundle DIR] [--caption 200]

Prints the time from creating the window to the first screenful of thumbnails,
and the largest gap between 10 ms timer ticks while a captioning batch runs
(a frozen UI shows up as a long gap).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks.photo_folders import make_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--caption", type=int, default=200, help="photos to caption while measuring gaps")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "photocaption-bench")
    args = parser.parse_args()
    folder = args.work / f"gui{args.photos}"
    make_folder(folder, args.photos, (500, 375))

    app = QApplication([])
    from desktop_app.gui.main_window import MainWindow

    work = Path(tempfile.mkdtemp())
    clock = time.perf_counter()
    window = MainWindow(QSettings(str(work / "s.ini"), QSettings.Format.IniFormat), work / "index.sqlite")
    if args.bundle:
        window.settings.model_path = str(args.bundle)
    window.resize(1280, 800)
    window.show()
    window.open_folder(folder)
    first_screen = 12
    poll = QTimer()
    poll.timeout.connect(lambda: window.photos.thumbnails_loaded() >= first_screen and app.quit())
    poll.start(1)
    app.exec()
    poll.stop()
    to_thumbs = time.perf_counter() - clock
    print(f"launch to first {first_screen} thumbnails, {args.photos}-photo folder: {to_thumbs * 1000:.0f} ms")

    gaps: list[float] = []
    ticker, elapsed = QTimer(), QElapsedTimer()
    elapsed.start()

    def tick() -> None:
        gaps.append(elapsed.restart())

    ticker.timeout.connect(tick)
    ticker.start(10)
    window.ensure_captioner()
    window.caption([i.path for i in window.photos.items[: args.caption]], recaption=True)
    start = time.perf_counter()
    # Polled from the UI thread (the worker's signals are emitted on its own thread).
    poll.timeout.disconnect()
    poll.timeout.connect(lambda: window.caption_worker is None and app.quit())
    poll.start(5)
    app.exec()
    poll.stop()
    seconds = time.perf_counter() - start
    ticker.stop()
    gaps.sort()
    print(f"captioned {args.caption} photos in {seconds:.1f} s ({args.caption / seconds:.1f} photos/s) "
          f"with the UI running: timer ticks {len(gaps)}, max gap {gaps[-1]:.0f} ms, "
          f"p99 {gaps[int(len(gaps) * 0.99)]:.0f} ms (10 ms timer)")
    window.close()


if __name__ == "__main__":
    main()
