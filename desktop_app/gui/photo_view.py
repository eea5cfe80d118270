"""The right side of the window: the photo (with where the model looked) over its caption panel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QWidget

from desktop_app.gui.panels import CaptionPanel, PreviewPane
from desktop_app.gui.session import PhotoItem


class PhotoView(QSplitter):
    """Shows one photo, or why there is none, with its caption; keeps which word's heat-map is shown."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Vertical, parent)
        self.setObjectName("right")
        self.preview, self.panel = PreviewPane(), CaptionPanel()
        self.addWidget(self.preview)
        self.addWidget(self.panel)
        self.setStretchFactor(0, 3)
        self.word = -1  # the word whose heat-map shows (-1: the plain photo)

    def show_item(self, item: PhotoItem | None, empty: str = "") -> None:
        """This photo afresh (``empty`` says why there is none)."""
        if item is None:
            self.preview.show_photo(None, empty)
        else:
            problem = "This file cannot be opened as a photo." if item.unreadable else item.error
            self.preview.show_photo(item.path, problem or "This file cannot be opened as a photo.")
        self.preview.setAccessibleDescription(item.caption if item and item.caption else "no caption yet")
        self.panel.show_item(item)
        self.word = -1

    def follow(self, item: PhotoItem) -> None:
        """The shown photo changed elsewhere (the model, a revert, an undo): shown afresh, or, while a person types
        its caption, all of it but the caption."""
        if self.panel.caption_edit.toPlainText().strip() != item.caption:
            self.show_item(item)
            return
        self.preview.setAccessibleDescription(item.caption or "no caption yet")
        if self.panel.follow(item) and item.attention is None:
            self.show_attention(item, None)

    def show_attention(self, item: PhotoItem | None, word: int | None) -> str | None:
        """The photo with the heat-map of word ``word`` (None: the plain photo); returns the word shown, if any."""
        if item is not None and word is not None and item.attention is not None and 0 <= word < len(item.attention):
            self.word = word
            self.preview.set_attention(item.attention[word])
            self.panel.check_word(word)
            return item.words[word]
        self.word = -1
        self.preview.set_attention(None)
        self.panel.check_word(None)
        return None
