"""The main window as a low-vision person may run it, measured: started as ``photocaption gui`` makes it (theme
applied, fitted to the screen), on the sample photos, under whatever QT_SCALE_FACTOR, screen and contrast the
environment sets. tests/test_theme.py runs it in a subprocess (the scale factor is read once per process) with
QT_SCALE_FACTOR=2 on an offscreen 1366x768 screen; ``--screenshot PATH`` also saves the window (how
resources/screenshots/scale-2.png, at 2x on 1366x768, and high-contrast.png, at 1x with --high-contrast, were
made; then quantized to 128 colours with Pillow to keep them small).

Usage: scale_probe.py SAMPLES WORK [--screenshot PATH] [--high-contrast] [--describe]; --describe: the describe
window on SAMPLES/chelsea.jpg instead. Prints one JSON object: the screen's
available geometry, the window's frame geometry, and each focus stop Tab reaches (in order, until it comes
round) with its size, its place in the window, and the part of it that shows once it has the focus.
"""

import json
import sys
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget


def rect(r: QRect) -> list[int]:
    return [r.x(), r.y(), r.width(), r.height()]


def tab_stops(app, window, first) -> list[dict]:
    """Each control Tab stops on from ``first``, until it comes round: its size, its place in ``window`` and the
    part of it that shows (once it has the focus: scrolled to)."""
    from desktop_app.gui import theme
    stops = []
    first.setFocus(Qt.FocusReason.TabFocusReason)
    for _ in range(80):
        app.processEvents()
        widget = app.focusWidget()
        if widget is None or (stops and widget is stops[0][0]):
            break
        app.processEvents()
        stops.append((widget, {"class": type(widget).__name__, "name": widget.accessibleName(),
                               "size": [widget.width(), widget.height()],
                               "rect": rect(QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())),
                               "shown": rect(theme.shown_rect(widget, window))}))
        QTest.keyClick(widget, Qt.Key.Key_Tab)  # as a person presses it: what handles Tab does
    return [info for _, info in stops]


def focusable(window) -> list[dict]:
    return [{"class": type(w).__name__, "name": w.accessibleName(),
             "rect": rect(QRect(w.mapTo(window, QPoint(0, 0)), w.size()))}
            for w in window.findChildren(QWidget) if w.isVisible() and w.isEnabled()
            and w.focusPolicy() & Qt.FocusPolicy.TabFocus and w.focusProxy() is None]


def describe_window(app, photo: Path, work: Path) -> int:
    """The describe window instead (its model made to fail at once: the layout is the same, the wait none)."""
    from desktop_app.describe import ModelOnce
    from desktop_app.gui.describe_window import DescribeWindow
    window = DescribeWindow([photo], ModelOnce(work / "no-model-here"))
    window.show()
    window.activateWindow()
    while not window.descriptions:
        app.processEvents()
    app.processEvents()
    print(json.dumps({"available": rect(window.screen().availableGeometry()), "frame": rect(window.frameGeometry()),
                      "window": [window.width(), window.height()], "stops": tab_stops(app, window, window.caption),
                      "focusable": focusable(window)}))
    window.close()
    return 0


def main() -> int:
    samples, work = Path(sys.argv[1]), Path(sys.argv[2])
    shot = sys.argv[sys.argv.index("--screenshot") + 1] if "--screenshot" in sys.argv else None
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from desktop_app.gui import theme
    from desktop_app.gui.main_window import MainWindow
    theme.apply(app, True if "--high-contrast" in sys.argv else None)
    if "--describe" in sys.argv:
        return describe_window(app, samples / "chelsea.jpg", work)
    window = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat), work / "index.sqlite")
    window.ask_about_unsaved = lambda doing: "discard"
    theme.fit_to_screen(window)
    window.show()
    window.activateWindow()
    window.open_folder(samples)
    result = {}

    def measure() -> None:
        app.processEvents()
        theme.fit_to_screen(window)
        app.processEvents()
        result["available"] = rect(window.screen().availableGeometry())
        result["frame"] = rect(window.frameGeometry())
        result["window"] = [window.width(), window.height()]
        if shot:  # a person's caption for the first photo, the focus on it (scrolled to where it shows)
            window.grid.setFocus(Qt.FocusReason.TabFocusReason)
            window.panel.set_caption_text("An astronaut in an orange suit in front of a flag and a rocket.")
            window.caption_edit.setFocus(Qt.FocusReason.TabFocusReason)
            app.processEvents()
            window.grab().save(shot)
        result["stops"] = tab_stops(app, window, window.search)
        result["focusable"] = focusable(window)
        print(json.dumps(result))
        QTimer.singleShot(0, app.quit)

    QTimer.singleShot(500, measure)
    app.exec()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
