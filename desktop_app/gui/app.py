"""Start the desktop app."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop_app.resources import APP_ICON


def start_qt() -> QApplication | None:
    """The application object both windows run in (its name keys the settings); None, with the reason printed,
    when this system lacks what Qt needs."""
    from desktop_app.gui import platform_check

    problem = platform_check.check()
    if problem:
        print(problem, file=sys.stderr)
        return None
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("photocaption")
    app.setOrganizationName("photocaption")
    if APP_ICON.is_file():
        app.setWindowIcon(QIcon(str(APP_ICON)))
    return app


def run_app(folder: Path | None = None, model: Path | None = None) -> int:
    from desktop_app.gui.main_window import MainWindow

    app = start_qt()
    if app is None:
        return 1
    window = MainWindow()
    if model is not None:
        window.settings.model_path = str(model)
    window.show()
    if folder is not None:
        window.open_folder(folder)
    else:
        window.reopen_last()
    return app.exec()
