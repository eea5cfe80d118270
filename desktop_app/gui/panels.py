"""The window's parts, one widget each: search box, preview, caption editor, Problems and library results.

They show state and say what a person did (signals); the window connects them
to the session. None of them changes a caption itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QRect, QSize, Qt, Signal
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QListView,
                               QListWidget, QListWidgetItem, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton,
                               QScrollArea, QSizePolicy, QStatusBar, QVBoxLayout, QWidget)

from desktop_app.gui import accessibility
from desktop_app.gui.accessibility import SpokenLabel, announce
from desktop_app.gui.attention import overlay
from desktop_app.gui.photo_model import THUMB
from desktop_app.gui.session import FILTERS, SORT_NAME, SORT_STATE, PhotoItem, Problem
from desktop_app.metadata.record import MACHINE, PERSON


class SearchBox(QLineEdit):
    """The search field: Esc clears it (before Esc means anything else)."""

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and event.key() == Qt.Key.Key_Escape and self.text():
            event.accept()  # this Esc is ours, not the window's Cancel
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            return
        super().keyPressEvent(event)


class ChoiceBox(QComboBox):
    """A drop-down list a screen reader names by what it chooses. On Linux, Qt names a combo box by its
    current value and takes the name from a label whose buddy it is (a label not shown: the items already
    say "Show:", "Sort:"). Its closed list claims no focus (``accessibility.keep_closed_list_unfocused``)."""

    def __init__(self, name: str, bar: QWidget):
        super().__init__()  # the layout parents it to ``bar``: the label there is its sibling, as Qt looks for it
        self.setAccessibleName(name)
        self.view().setAccessibleName(name)
        QLabel(name, bar, buddy=self).hide()
        accessibility.keep_closed_list_unfocused(self)


class SearchBar(QWidget):
    """Search words, whether they search the folder or the whole library, the state filter and the sort."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.search = SearchBox()
        self.search.setPlaceholderText("Search captions (Ctrl+F; Esc clears)")
        self.search.setAccessibleName("Search captions")
        self.search.setClearButtonEnabled(True)
        self.whole_library = QCheckBox("&Library")
        self.whole_library.setToolTip("Search every indexed folder, not only the open one")
        self.whole_library.setAccessibleName("Search the whole library")
        self.show_only = ChoiceBox("Show only photos that are", self)
        self.show_only.addItems([f"Show: {f}" for f in FILTERS])
        self.sort = ChoiceBox("Sort photos by", self)
        self.sort.addItem("Sort: name", SORT_NAME)
        self.sort.addItem("Sort: needs attention first", SORT_STATE)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.search, 1)
        row.addWidget(self.whole_library)
        row.addWidget(self.show_only)
        row.addWidget(self.sort)

    def kind(self) -> str:
        return FILTERS[self.show_only.currentIndex()]


def photo_grid() -> QListView:
    """The thumbnails with their state badges; uniform items laid out in batches, so thousands scroll smoothly
    (a plain QListView: what a screen reader and the X server test see stays as it was)."""
    grid = QListView()
    grid.setViewMode(QListView.ViewMode.IconMode)
    grid.setIconSize(QSize(THUMB, THUMB))
    grid.setGridSize(QSize(THUMB + 24, THUMB + 44))
    grid.setResizeMode(QListView.ResizeMode.Adjust)
    grid.setUniformItemSizes(True)
    grid.setLayoutMode(QListView.LayoutMode.Batched)
    grid.setBatchSize(200)
    grid.setMovement(QListView.Movement.Static)
    grid.setWordWrap(False)
    grid.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    grid.setAccessibleName("Photos")
    grid.setAccessibleDescription("Thumbnails of the open folder with their state; each reads its caption")
    grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    return grid


class PreviewPane(QScrollArea):
    """The photo, fitted to the pane (and refitted as the window changes) or zoomed; optionally a heat-map."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel("Open a folder (Ctrl+O) to begin")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setAccessibleName("Photo preview")
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 120)  # small enough that the window fits a 1366x768 laptop screen
        self.setAccessibleName("Photo preview")
        self._photo: QPixmap | None = None
        self._attention: np.ndarray | None = None
        self.zoom = 0.0  # 0: fit to the pane

    def show_photo(self, path: Path | None, message: str = "") -> None:
        self._photo = None
        self._attention = None
        if path is not None:
            pixmap = QPixmap(str(path))
            self._photo = None if pixmap.isNull() else pixmap
        if self._photo is None:
            self.label.setPixmap(QPixmap())
            self.label.setText(message)
        self._render()

    def has_photo(self) -> bool:
        return self._photo is not None

    def set_attention(self, weights: np.ndarray | None) -> None:
        self._attention = weights
        self._render()

    def set_zoom(self, zoom: float) -> None:
        self.zoom = max(0.0, min(zoom, 8.0))
        self.setWidgetResizable(self.zoom == 0.0)
        self._render()

    def zoom_by(self, factor: float) -> None:
        current = self.zoom or self._fit_scale()
        self.set_zoom(current * factor)

    def _fit_scale(self) -> float:
        if self._photo is None:
            return 1.0
        area = self.viewport().size()
        return min(area.width() / max(self._photo.width(), 1), area.height() / max(self._photo.height(), 1))

    def _render(self) -> None:
        if self._photo is None:
            return
        scale = self.zoom or self._fit_scale()
        size = QSize(max(int(self._photo.width() * scale), 1), max(int(self._photo.height() * scale), 1))
        pixmap = self._photo.scaled(size, Qt.AspectRatioMode.KeepAspectRatio,
                                    Qt.TransformationMode.SmoothTransformation)
        if self._attention is not None:
            pixmap = overlay(pixmap, self._attention)
        self.label.setPixmap(pixmap)
        if self.zoom:
            self.label.resize(pixmap.size())

    def pixmap(self) -> QPixmap:
        return self.label.pixmap()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self.zoom:
            self._render()


class CaptionPanel(QWidget):
    """The selected photo's caption, who wrote it and where it is, its words, alternatives and keywords."""

    caption_edited = Signal(str)
    keywords_edited = Signal(list)
    alternative_chosen = Signal(int)
    word_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._loading = False
        self.caption_edit = QPlainTextEdit()
        self.caption_edit.setPlaceholderText("No caption yet: caption it with Ctrl+R, or type one")
        self.caption_edit.setAccessibleName("Caption of the selected photo")
        self.caption_edit.setTabChangesFocus(True)
        self.caption_edit.setMaximumHeight(80)
        self.caption_edit.textChanged.connect(self._caption_changed)

        self.info = SpokenLabel()
        self.info.setAccessibleDescription("Who wrote the caption and where it is")  # a name would hide the text
        self.info.setWordWrap(True)  # a long line wraps here instead of widening (and reflowing) the window
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self.words_row = QHBoxLayout()
        self.words_row.setContentsMargins(0, 0, 0, 0)
        words = QWidget()
        words.setLayout(self.words_row)
        self.words_area = QScrollArea()  # a long caption scrolls sideways instead of clipping its words
        self.words_area.setWidget(words)  # sized to its words after each fill (adjustSize), so it scrolls
        self.words_area.setFrameShape(QScrollArea.Shape.NoFrame)
        self.words_area.setFixedHeight(42)
        self.words_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.words_area.setAccessibleName("Caption words: choose one to see where the model looked")
        self.word_buttons: list[QPushButton] = []

        self.alternatives = QListWidget()
        self.alternatives.setAccessibleName("Alternative captions")
        self.alternatives.setMaximumHeight(90)
        self.alternatives.itemActivated.connect(lambda item: self.alternative_chosen.emit(self.alternatives.row(item)))
        self.keywords = QLineEdit()
        self.keywords.setAccessibleName("Keywords")
        self.keywords.setPlaceholderText("keywords, comma separated")
        self.keywords.editingFinished.connect(self._keywords_changed)

        form = QVBoxLayout(self)
        form.addWidget(QLabel("Capt&ion:", buddy=self.caption_edit))
        form.addWidget(self.caption_edit)
        form.addWidget(self.info)
        form.addWidget(QLabel("Where it looked (click a word; Alt+Left/Right):"))
        form.addWidget(self.words_area)
        form.addWidget(QLabel("Al&ternatives (Enter to use):", buddy=self.alternatives))
        form.addWidget(self.alternatives)
        form.addWidget(QLabel("&Keywords:", buddy=self.keywords))
        form.addWidget(self.keywords)

    def show_item(self, item: PhotoItem | None) -> None:
        self._loading = True
        if self.caption_edit.toPlainText().strip() != (item.caption if item else ""):
            self.caption_edit.setPlainText(item.caption if item else "")  # a fresh photo: a fresh undo history
            self.caption_edit.moveCursor(self.caption_edit.textCursor().MoveOperation.End)
        self.caption_edit.setEnabled(item is not None)
        # the placeholder is painted, never read out: a screen reader gets it as the description instead
        self.caption_edit.setAccessibleDescription("" if item and item.caption else self.caption_edit.placeholderText())
        self.keywords.setText(", ".join(item.keywords) if item else "")
        self._loading = False
        self.show_alternatives(item)
        self.describe(item)
        self.fill_words(item)

    def show_alternatives(self, item: PhotoItem | None) -> None:
        """The model's other captions (and its own, when a person's caption is shown instead)."""
        self.alternatives.clear()
        for text, score in (item.alternatives if item else []):
            entry = QListWidgetItem(text)
            entry.setToolTip(f"model score {score:.2f}")
            self.alternatives.addItem(entry)

    def follow(self, item: PhotoItem) -> bool:
        """The shown photo changed elsewhere while its caption is being typed: all but the caption follows (the
        model's caption lands among the alternatives). True when its words were laid out again."""
        self.describe(item)
        self.show_alternatives(item)
        if not self.keywords.hasFocus():
            self.keywords.setText(", ".join(item.keywords))
        if len(self.word_buttons) == (len(item.words) if item.attention is not None else 0):
            return False
        self.fill_words(item)
        return True

    def describe(self, item: PhotoItem | None) -> None:
        if item is None:
            self.info.setText("")
            return
        parts = []
        if item.caption:
            who = {PERSON: "written by a person", MACHINE: "written by the model"}.get(item.source, "from another tool")
            if item.source == MACHINE and item.confidence is not None:
                who += f" (confidence {item.confidence:.0%})"
            parts.append(who)
        if item.unsaved:
            parts.append("unsaved (kept as a draft; Ctrl+S writes it)")
        elif item.saved_caption:
            places = ", ".join(item.places)
            parts.append(f"saved in {places}" if places.startswith("sidecar") else
                         f"saved in the photo ({places})" if places else "saved")
        if item.caption and item.needs_review:
            parts.append("needs review: the model is unsure")
        problem = item.unreadable and "this file cannot be opened" or item.write_error or item.error or item.skipped
        self.info.setText(" · ".join(parts) + (f"  ⚠ {problem}" if problem else ""))

    def fill_words(self, item: PhotoItem | None) -> None:
        for button in self.word_buttons:
            button.hide()  # gone now, not at the next event-loop turn
            button.deleteLater()
        self.word_buttons = []
        while self.words_row.count():
            self.words_row.takeAt(0)
        self.words_area.widget().adjustSize()
        if item is None or item.attention is None or not item.words:
            return
        for n, word in enumerate(item.words):
            button = QPushButton(word)
            button.setFlat(True)
            button.setCheckable(True)  # the word whose heat-map is shown stays pressed
            button.setStyleSheet("QPushButton { padding: 2px 4px; min-width: 0; }")
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)  # never squeezed: the row scrolls
            button.setAccessibleName(f"Show where the model looked for '{word}'")
            button.clicked.connect(lambda _=False, n=n: self.word_chosen.emit(n))
            self.words_row.addWidget(button)
            button.show()  # now, so that the row's size below counts it
            self.word_buttons.append(button)
        self.words_area.widget().adjustSize()
        chain = [self.words_area, *self.word_buttons]  # Tab reaches the words here, not after the whole window
        for before, after in zip(chain, chain[1:]):
            QWidget.setTabOrder(before, after)

    def check_word(self, word: int | None) -> None:
        for n, button in enumerate(self.word_buttons):
            button.setChecked(n == word)
        if word is not None and 0 <= word < len(self.word_buttons):
            self.words_area.ensureWidgetVisible(self.word_buttons[word])

    def _caption_changed(self) -> None:
        if not self._loading:
            self.caption_edited.emit(self.caption_edit.toPlainText())

    def _keywords_changed(self) -> None:
        if not self._loading:
            self.keywords_edited.emit([k.strip() for k in self.keywords.text().split(",") if k.strip()])

    def commit_keywords(self) -> None:
        """Take the keyword field's text as typed so far: a command (Ctrl+Return, Ctrl+S) may run while the
        field still has focus, before Return or leaving the field would have committed it. Only text a person
        typed: a keyword holding a comma (from another tool) is not split by merely showing it."""
        if self.keywords.isModified():
            self.keywords.setModified(False)
            self._keywords_changed()

    def set_caption_text(self, text: str) -> None:
        """Replace the editor's text as one undoable edit (Ctrl+Z in the editor brings the old text back)."""
        cursor = self.caption_edit.textCursor()
        cursor.select(cursor.SelectionType.Document)
        cursor.insertText(text)


class StatusBar(QStatusBar):
    """A status bar whose message, when it is longer than the room left of the counts, ends in "…" (the whole
    message in its tooltip) instead of being cut off against them ("see Proble1200 photos"). Each message is
    also announced to a screen reader, as a live status line is: the end of a run, a search's count."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self.messageChanged.connect(self.setToolTip)
        self.messageChanged.connect(lambda message: announce(self, message))
        self.counts = SpokenLabel()
        self.counts.setAccessibleDescription("Photo counts")  # a name would hide the counts from a screen reader
        self.rate = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setAccessibleName("Progress")
        self.progress.setFormat("%v/%m")
        self.progress.hide()
        self.model = QLabel("model: not loaded")
        for widget in (self.counts, self.rate, self.progress, self.model):
            self.addPermanentWidget(widget)

    def start_progress(self, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.show()

    def addPermanentWidget(self, widget: QWidget, stretch: int = 0) -> None:
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch)

    def message_room(self) -> QRect:
        """Where the message goes: from the left edge to a gap before the first shown permanent widget."""
        right = min((w.x() for w in self._permanent if w.isVisible()), default=self.width()) - 12
        return QRect(6, 0, max(right - 6, 0), self.height())

    def shown_message(self) -> str:
        return self.fontMetrics().elidedText(self.currentMessage(), Qt.TextElideMode.ElideRight, self.message_room().width())

    def paintEvent(self, event) -> None:
        if not self.currentMessage():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(self.message_room(), Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter
                         | Qt.TextFlag.TextSingleLine, self.shown_message())


class ProblemsList(QWidget):
    """This run's problems: failures and skips apart, in plain words; choosing one selects its photo."""

    photo_chosen = Signal(Path)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel("No problems")
        self.list = QListWidget()
        self.list.setAccessibleName("Problems: photos that could not be captioned or written")
        self.list.itemActivated.connect(self._chosen)
        self.list.itemClicked.connect(self._chosen)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setAccessibleName("Clear the problems list")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(top)
        layout.addWidget(self.list)

    def show_problems(self, problems: list[Problem], run: str) -> None:
        self.list.clear()
        failed = [p for p in problems if p.kind == "failed"]
        skips: dict[str, list[Problem]] = {}
        for problem in problems:
            if problem.kind == "skipped":
                skips.setdefault(problem.message, []).append(problem)
        notes = [p for p in problems if p.kind not in ("failed", "skipped")]
        for problem in failed + [same[0] for same in skips.values() if len(same) == 1] + notes:
            label = {"failed": "Failed", "skipped": "Skipped", "warning": "Note"}.get(problem.kind, problem.kind)
            label += " earlier" if problem.earlier else ""
            self._add(f"{label}: {problem.path.name}: {problem.message}", [problem])
        for message, same in skips.items():  # a re-run's hundreds of "already captioned": one line
            if len(same) > 1:
                self._add(f"Skipped {len(same)} photos: {message}", same)
        skipped = sum(len(same) for same in skips.values())
        if problems:
            self.title.setText(f"{run + ': ' if run else ''}{len(failed)} failed, {skipped} skipped")
        else:
            self.title.setText(f"{run}: no problems" if run else "No problems")
        self.clear_button.setEnabled(bool(problems))

    def _add(self, text: str, problems: list[Problem]) -> None:
        """One line; choosing it selects its (first) photo; the tooltip names its photos."""
        entry = QListWidgetItem(text)
        entry.setData(Qt.ItemDataRole.UserRole, str(problems[0].path))
        names = [str(p.path) for p in problems[:20]]
        entry.setToolTip("\n".join(names + ([f"and {len(problems) - 20} more"] if len(problems) > 20 else [])))
        self.list.addItem(entry)

    def _chosen(self, entry: QListWidgetItem) -> None:
        self.photo_chosen.emit(Path(entry.data(Qt.ItemDataRole.UserRole)))


class LibraryResults(QListWidget):
    """Search hits across every indexed folder; choosing one opens its folder and selects it."""

    photo_chosen = Signal(Path)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Library search results")
        self.itemActivated.connect(lambda e: self.photo_chosen.emit(Path(e.data(Qt.ItemDataRole.UserRole))))

    def show_hits(self, hits) -> None:
        self.clear()
        for hit in hits:
            entry = QListWidgetItem(f"{hit.path.name}: {hit.caption}   ({hit.path.parent})")
            entry.setData(Qt.ItemDataRole.UserRole, str(hit.path))
            self.addItem(entry)


WRITE, KEEP, DISCARD, CANCEL = "write", "keep", "discard", "cancel"


def ask_about_unsaved(parent: QWidget, count: int, doing: str) -> str:
    """Before leaving unsaved work: write all, keep as drafts (the default: nothing lost, nothing written
    unasked), discard, or cancel."""
    plural = count > 1
    box = QMessageBox(QMessageBox.Icon.Question, "Unsaved captions",
                      f"{count} photo{'s have' if plural else ' has'} captions or keywords not yet written "
                      f"into the photo{'s' if plural else ''}. Before you {doing}:", parent=parent)
    box.setInformativeText("Kept drafts come back when you open this folder again.")
    write = box.addButton("&Write All to Photos", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("&Keep as Drafts", QMessageBox.ButtonRole.ActionRole)
    discard = box.addButton("&Discard", QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.setEscapeButton(cancel)
    box.exec()
    return {write: WRITE, keep: KEEP, discard: DISCARD}.get(box.clickedButton(), CANCEL)
