"""Start the desktop app."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop_app.resources import APP_ICON


def run_app(folder: Path | None = None, model: Path | None = None) -> int:
    from desktop_app.gui import platform_check
    from desktop_app.gui.main_window import MainWindow

    problem = platform_check.check()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("photocaption")
    app.setOrganizationName("photocaption")
    if APP_ICON.is_file():
        app.setWindowIcon(QIcon(str(APP_ICON)))
    window = MainWindow()
    if model is not None:
        window.settings.model_path = str(model)
    window.show()
    if folder is not None:
        window.open_folder(folder)
    else:
        window.reopen_last()
    return app.exec()
