"""The "Describe with photocaption" window (``photocaption describe --window``), opened from a file manager.

Small on purpose: the photo, its caption in a read-only field a screen reader reads as "Caption", the keywords,
who wrote it and how sure it is, and four things to do with it. Every control has a name and is reached with
Tab; the model runs on a worker thread, so the window answers the keyboard (and Orca) while it loads.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

from PySide6.QtCore import QProcess, Qt
from PySide6.QtGui import QCloseEvent, QGuiApplication, QIcon, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QScrollArea,
                               QVBoxLayout, QWidget)

from desktop_app.describe import Description, ModelOnce, describe_photo
from desktop_app.gui import accessibility
from desktop_app.gui.background import Background
from desktop_app.resources import APP_ICON

PREVIEW = (420, 320)  # the largest preview: beside the text, 940 px wide in all
TEXT_WIDTH = 480  # what the text and the buttons beside the preview need, about


def _picture_size(available_width: int) -> tuple[int, int]:
    """The preview as large as leaves the text its room: smaller on a small screen (1366x768 at 2x scale is
    683 px wide), never under 120 px."""
    width = max(120, min(PREVIEW[0], available_width - TEXT_WIDTH - 40))
    return width, width * PREVIEW[1] // PREVIEW[0]


def _describe(photo: Path, model: ModelOnce, sidecar_naming: str) -> tuple[Description, QImage]:
    """One photo described and its preview scaled, off the UI thread."""
    try:
        description = describe_photo(photo, model, sidecar_naming)
    except Exception as exc:  # the model missing or damaged: said in the window, which stays usable
        description = Description(photo, problem=f"could not describe it: {exc}")
    return description, _preview(photo)


def _preview(photo: Path) -> QImage:
    """The photo upright and small (the same reader the model uses: HEIC and RAW too); empty if unreadable."""
    from desktop_app.photos.pixels import load_rgb

    try:
        image = load_rgb(photo, PREVIEW)
        image.thumbnail(PREVIEW)
    except Exception:  # the text says why the photo is unreadable; the picture just stays empty
        return QImage()
    return QImage(image.tobytes(), image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888).copy()


def app_command(folder: Path) -> tuple[str, list[str]]:
    """``photocaption gui FOLDER`` as this very install runs it (the standalone app is its own executable)."""
    if getattr(sys, "frozen", False):
        return sys.executable, ["gui", str(folder)]
    return sys.executable, ["-m", "desktop_app", "gui", str(folder)]


def _read_only_text(name: str, lines: int) -> QPlainTextEdit:
    """A read-only field a keyboard reaches with Tab and reads with the arrow keys (a label would be skipped)."""
    field = QPlainTextEdit()
    field.setReadOnly(True)
    field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                  | Qt.TextInteractionFlag.TextSelectableByMouse)
    field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    field.setTabChangesFocus(True)
    field.setAccessibleName(name)
    field.setFixedHeight(field.fontMetrics().lineSpacing() * lines + 16)
    return field


def _button(text: str, name: str, description: str) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(name)
    button.setAccessibleDescription(description)
    button.setToolTip(description)
    return button


class DescribeWindow(QWidget):
    """One photo at a time; with several (a file manager's multi-selection), Previous and Next move between them."""

    def __init__(self, photos: list[Path], model: ModelOnce, sidecar_naming: str = "ext"):
        super().__init__()
        self.photos, self.sidecar_naming = [Path(p) for p in photos], sidecar_naming
        self.descriptions: dict[int, Description] = {}
        self.previews: dict[int, QImage] = {}
        self.row = 0
        self.setWindowTitle("Describe with photocaption")
        if APP_ICON.is_file():
            self.setWindowIcon(QIcon(str(APP_ICON)))
        self._build_controls()
        self._lay_out()
        self._jobs = Background(1, self)  # one model, photos in order: the one on screen comes first
        self._jobs.done.connect(self._described)
        for row, photo in enumerate(self.photos):
            self._jobs.run(row, partial(_describe, photo, model, sidecar_naming))
        self.show_row(0)
        self.caption.setFocus()

    def _build_controls(self) -> None:
        self.picture = QLabel()
        self.picture.setAccessibleName("Photo")
        self.picture.setFixedSize(*_picture_size(self.screen().availableGeometry().width()))
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.heading = QLabel()
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.caption = _read_only_text("Caption", 3)
        self.about = _read_only_text("About this caption", 3)
        self.keywords = QLineEdit()
        self.keywords.setReadOnly(True)
        self.keywords.setAccessibleName("Keywords")
        self.status = QLabel()
        self.status.setAccessibleName("Status")
        self.status.setWordWrap(True)
        self.copy = _button("&Copy", "Copy", "Copy the caption to the clipboard")
        self.write = _button("&Write into the photo", "Write into the photo",
                             "Store the caption in the photo's metadata (a person's caption is never replaced)")
        self.edit = _button("&Edit in the app", "Edit in the app", "Open the photo's folder in the photocaption app")
        self.previous = _button("&Previous photo", "Previous photo", "Describe the previous photo")
        self.next = _button("&Next photo", "Next photo", "Describe the next photo")
        self.close_button = _button("C&lose", "Close", "Close this window")
        self.copy.clicked.connect(self.copy_caption)
        self.write.clicked.connect(self.write_caption)
        self.edit.clicked.connect(self.edit_in_app)
        self.previous.clicked.connect(lambda: self.show_row(self.row - 1))
        self.next.clicked.connect(lambda: self.show_row(self.row + 1))
        self.close_button.clicked.connect(self.close)
        QShortcut(QKeySequence(QKeySequence.StandardKey.Cancel), self, self.close)
        for button in (self.previous, self.next):
            button.setVisible(len(self.photos) > 1)

    def _lay_out(self) -> None:
        """Photo left, text and buttons right, in a scroll area for small screens; Tab in reading order."""
        text = QVBoxLayout()
        text.addWidget(self.heading)
        for label, field in (("Cap&tion", self.caption), ("&About this caption", self.about),
                             ("&Keywords", self.keywords)):
            shown = QLabel(label)
            shown.setBuddy(field)
            text.addWidget(shown)
            text.addWidget(field)
        text.addWidget(self.status)
        text.addStretch()
        buttons = QHBoxLayout()
        for button in (self.copy, self.write, self.edit, self.previous, self.next, self.close_button):
            buttons.addWidget(button)
        text.addLayout(buttons)
        body = QWidget()
        layout = QHBoxLayout(body)
        layout.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(text, 1)
        scroll = QScrollArea()  # scrolls only where the screen is smaller than the controls (large fonts, 2x scale)
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to the controls in it, and scrolls to them
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        chain = [self.caption, self.about, self.keywords, self.copy, self.write, self.edit, self.previous, self.next,
                 self.close_button]
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)
        available = self.screen().availableGeometry()
        wanted = body.sizeHint()
        self.resize(min(wanted.width() + 4, available.width()), min(max(wanted.height(), PREVIEW[1] + 40) + 4,
                                                                    available.height()))

    @property
    def description(self) -> Description | None:
        return self.descriptions.get(self.row)

    def show_row(self, row: int) -> None:
        self.row = max(0, min(row, len(self.photos) - 1))
        photo, d = self.photos[self.row], self.description
        where = f" ({self.row + 1} of {len(self.photos)})" if len(self.photos) > 1 else ""
        self.heading.setText(photo.name + where)
        self.setWindowTitle(f"{photo.name} - Describe with photocaption")
        self.previous.setEnabled(self.row > 0)
        self.next.setEnabled(self.row < len(self.photos) - 1)
        image = self.previews.get(self.row)
        pixmap = QPixmap.fromImage(image) if image is not None and not image.isNull() else QPixmap()
        if not pixmap.isNull() and (pixmap.width() > self.picture.width() or pixmap.height() > self.picture.height()):
            pixmap = pixmap.scaled(self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        self.picture.setPixmap(pixmap)
        if d is None:
            self.caption.setPlainText("")
            self.caption.setPlaceholderText("Describing the photo...")
            self.about.setPlainText("")
            self.keywords.setText("")
            self._say(f"Describing {photo.name}...")
        elif d.problem:
            self.caption.setPlainText(d.problem)
            self.about.setPlainText("No caption: photocaption could not read this photo.")
            self.keywords.setText("")
            self._say("")
        else:
            self.caption.setPlainText(d.caption)
            self.about.setPlainText(f"Written by {d.written_by}; {d.confidence}. Stored in: {d.stored}.")
            self.keywords.setText(", ".join(d.keywords))
            self._say("")
        self.picture.setAccessibleDescription(d.caption if d is not None else "")
        self.copy.setEnabled(bool(d and d.caption))
        self.write.setEnabled(bool(d and d.result is not None and not d.stored_in))
        self.edit.setEnabled(True)

    def _described(self, row: int, described: tuple[Description, QImage], _error: None) -> None:
        """(``_describe`` puts its own failure into the description: no error comes back.)"""
        description, self.previews[row] = described
        self.descriptions[row] = description
        if row == self.row:
            self.show_row(row)
            self._say(description.problem or f"Described: {description.caption}", announce=True)

    def _say(self, text: str, announce: bool = False) -> None:
        """The status line; ``announce`` also has the screen reader speak it (where the reader's focus is not)."""
        self.status.setText(text)
        if announce and text:
            accessibility.announce(self.status, text)

    def copy_caption(self) -> None:
        QGuiApplication.clipboard().setText(self.description.caption)
        self._say("Caption copied to the clipboard.", announce=True)

    def write_caption(self) -> None:
        """Through the one write path (``metadata.store``), which keeps a person's caption: never overwrite here."""
        from desktop_app.metadata.record import MACHINE, CaptionRecord
        from desktop_app.metadata.store import MetadataError, WriteOptions, write_caption

        d = self.description
        r = d.result
        record = CaptionRecord(d.caption, MACHINE, d.model_id, d.keywords, r.score,
                               needs_review=r.needs_review, confidence=r.confidence)
        try:
            written = write_caption(d.photo, record, WriteOptions(sidecar_naming=self.sidecar_naming))
        except (MetadataError, OSError) as exc:
            self._say(f"Not written: {exc}", announce=True)
            return
        if not written.places:
            self._say(f"Not written: {written.skipped or 'nothing was written'}", announce=True)
            return
        d.stored_in = list(written.places)
        self.show_row(self.row)
        self._say(f"Written into the photo: {', '.join(written.places)}.", announce=True)

    def edit_in_app(self) -> None:
        folder = self.photos[self.row].parent
        program, arguments = app_command(folder)
        ok, _ = QProcess.startDetached(program, arguments)
        self._say(f"Opening {folder} in the photocaption app." if ok else "Could not start the photocaption app.",
                  announce=True)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._jobs.pool.clear()  # photos not yet started are not described for nobody
        super().closeEvent(event)


def run_window(photos: list[Path], model: ModelOnce, sidecar_naming: str = "ext",
               high_contrast: bool | None = None) -> int:
    """``high_contrast``: None, as the environment or the desktop asks (``theme.wants_high_contrast``)."""
    from desktop_app.gui.app import start_qt

    app = start_qt(high_contrast)
    if app is None:
        return 1
    window = DescribeWindow(photos, model, sidecar_naming)
    window.show()
    return app.exec()
