"""Start the desktop app."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from desktop_app.resources import APP_ICON


def start_qt(high_contrast: bool | None = None) -> QApplication | None:
    """The application object both windows run in (its name keys the settings), with the focus ring and, when
    asked (None: when the environment or the desktop asks, see ``theme.wants_high_contrast``), high contrast;
    None, with the reason printed, when this system lacks what Qt needs."""
    from desktop_app.gui import accessibility, platform_check, theme

    problem = platform_check.check()
    if problem:
        print(problem, file=sys.stderr)
        return None
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("photocaption")
    app.setOrganizationName("photocaption")
    if APP_ICON.is_file():
        app.setWindowIcon(QIcon(str(APP_ICON)))
    theme.apply(app, high_contrast)
    accessibility.install(app)
    return app


def run_app(folder: Path | None = None, model: Path | None = None, high_contrast: bool | None = None) -> int:
    from PySide6.QtCore import QTimer

    from desktop_app.gui.main_window import MainWindow
    from desktop_app.gui.theme import fit_to_screen

    app = start_qt(high_contrast)
    if app is None:
        return 1
    window = MainWindow()
    if model is not None:
        window.settings.model_path = str(model)
    fit_to_screen(window)  # at 2x scale on a laptop its controls need more than the screen has
    window.show()
    QTimer.singleShot(0, lambda: fit_to_screen(window))  # again with the window manager's frame known
    if folder is not None:
        window.open_folder(folder)
    else:
        window.reopen_last()
    return app.exec()
