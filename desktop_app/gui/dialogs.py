"""The window's small dialogs: what the model cannot do, the keyboard shortcuts, discarding unsaved work."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


def choose_folder(parent: QWidget, start: str) -> Path | None:
    folder = QFileDialog.getExistingDirectory(parent, "Open a folder of photos", start)
    return Path(folder) if folder else None


def choose_export_file(parent: QWidget, kind: str) -> Path | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Export captions", f"captions.{kind}", f"*.{kind}")
    return Path(path) if path else None


def show_model_error(parent: QWidget, message: str) -> None:
    """Window-modal but not blocking: the event loop (and any test driving it) keeps running."""
    box = QMessageBox(QMessageBox.Icon.Critical, "Model cannot be used", message, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()


def show_shortcuts(parent: QWidget, window: QMessageBox | None, lines: list[str]) -> QMessageBox:
    """A window beside the main one, not modal: the keys stay in sight while a person tries them. Returns it
    (``window``, when there is one already)."""
    if window is None:
        window = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", "", QMessageBox.StandardButton.Close,
                             parent)
        window.setWindowModality(Qt.WindowModality.NonModal)
    window.setText("\n".join(lines))
    window.show()
    window.raise_()
    return window


def confirm_discard(parent: QWidget, count: int) -> bool:
    """Whether a person really drops ``count`` unsaved captions and edits."""
    answer = QMessageBox.question(parent, "Discard unsaved changes",
                                  f"Discard {count} unsaved captions and edits? The photos keep what they hold.",
                                  QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                                  QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Discard
