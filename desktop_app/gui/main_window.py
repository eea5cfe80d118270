"""The main window: folder -> thumbnail grid -> preview + attention -> caption editor -> write."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QThread, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QPixmap, QTextCursor
from PySide6.QtWidgets import (QAbstractItemView, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QLineEdit,
                               QListView, QListWidget, QMainWindow, QMessageBox, QPlainTextEdit, QProgressBar,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from desktop_app.bundle.format import BundleError
from desktop_app.captioning.captioner import Captioner
from desktop_app.captioning.decode import DecodeOptions
from desktop_app.captioning.pipeline import CAPTIONED, FAILED, PipelineOptions
from desktop_app.captioning.runtime import ProviderError
from desktop_app.gui.attention import overlay
from desktop_app.gui.photo_model import THUMB, PathRole, PhotoItem, PhotoListModel, SearchFilter
from desktop_app.gui.settings import AppSettings, SettingsDialog
from desktop_app.gui.workers import CaptionWorker, ScanWorker, WriteWorker
from desktop_app.library.index import LibraryIndex, default_index_path, fts_query
from desktop_app.metadata.journal import WriteJournal
from desktop_app.metadata.record import MACHINE, PERSON, CaptionRecord
from desktop_app.metadata.store import read_caption
from desktop_app.photos.discover import find_photos


class MainWindow(QMainWindow):
    def __init__(self, settings_store: QSettings | None = None, index_path: Path | None = None):
        super().__init__()
        self.setWindowTitle("photocaption")
        self.resize(1280, 800)
        self.store = settings_store or QSettings("photocaption", "photocaption")
        self.settings = AppSettings.load(self.store)
        self.index_path = index_path or default_index_path()
        self.index = LibraryIndex(self.index_path)
        self.captioner: Captioner | None = None
        self.folder: Path | None = None
        self.journal: WriteJournal | None = None
        self._threads: list[tuple[QThread, object]] = []
        self.caption_worker: CaptionWorker | None = None
        self._current: PhotoItem | None = None
        self._loading_editor = False
        self.opened_at = 0.0
        self._build_widgets()
        self._build_actions()
        self._update_actions()

    # ---- layout -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.photos = PhotoListModel(self)
        self.filter = SearchFilter(self)
        self.filter.setSourceModel(self.photos)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search captions (Ctrl+F)")
        self.search.setAccessibleName("Search captions")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.apply_search)

        self.grid = QListView()
        self.grid.setModel(self.filter)
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 24, THUMB + 44))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setUniformItemSizes(True)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(200)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setAccessibleName("Photos")
        self.grid.setAccessibleDescription("Thumbnails of the open folder; each reads its caption")
        self.grid.selectionModel().currentChanged.connect(lambda current, _: self.show_photo(current))

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.grid)

        self.preview = QLabel("Open a folder (Ctrl+O) to begin")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(320, 240)
        self.preview.setAccessibleName("Photo preview")

        self.caption_edit = QPlainTextEdit()
        self.caption_edit.setPlaceholderText("No caption yet: caption it with Ctrl+R, or type one")
        self.caption_edit.setAccessibleName("Caption of the selected photo")
        self.caption_edit.setTabChangesFocus(True)
        self.caption_edit.setMaximumHeight(80)
        self.caption_edit.textChanged.connect(self._caption_edited)

        self.caption_info = QLabel()
        self.caption_info.setAccessibleName("Who wrote the caption")
        self.words_row = QHBoxLayout()
        words = QWidget()
        words.setLayout(self.words_row)
        words.setAccessibleName("Caption words: choose one to see where the model looked")
        self.alternatives = QListWidget()
        self.alternatives.setAccessibleName("Alternative captions")
        self.alternatives.setMaximumHeight(90)
        self.alternatives.itemActivated.connect(lambda item: self.use_alternative(item.text()))
        self.keywords = QLineEdit()
        self.keywords.setAccessibleName("Keywords")
        self.keywords.setPlaceholderText("keywords, comma separated")
        self.keywords.editingFinished.connect(self._keywords_edited)

        panel = QWidget()
        form = QVBoxLayout(panel)
        form.addWidget(QLabel("&Caption:", buddy=self.caption_edit))
        form.addWidget(self.caption_edit)
        form.addWidget(self.caption_info)
        form.addWidget(QLabel("Where it looked (click a word):"))
        form.addWidget(words)
        form.addWidget(QLabel("&Alternatives (Enter to use):", buddy=self.alternatives))
        form.addWidget(self.alternatives)
        form.addWidget(QLabel("&Keywords:", buddy=self.keywords))
        form.addWidget(self.keywords)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.preview)
        right.addWidget(panel)
        right.setStretchFactor(0, 3)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.setCentralWidget(splitter)

        self.problems = QListWidget()
        self.problems.setAccessibleName("Problems: photos that could not be captioned or written")
        dock = QDockWidget("Problems", self)
        dock.setObjectName("problems")
        dock.setWidget(self.problems)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.resizeDocks([dock], [110], Qt.Orientation.Vertical)
        self.problems_dock = dock

        self.model_label = QLabel("model: not loaded")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setAccessibleName("Captioning progress")
        self.progress.setFormat("%v/%m")
        self.progress.hide()
        self.rate_label = QLabel()
        self.statusBar().addPermanentWidget(self.rate_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.model_label)

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self.open_action = self._action(file, "&Open Folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        self.recursive_action = self._action(file, "Include &Sub-folders", self._toggle_recursive)
        self.recursive_action.setCheckable(True)
        self.recursive_action.setChecked(self.settings.recursive)
        file.addSeparator()
        self.export_csv_action = self._action(file, "Export Captions as &CSV…", lambda: self.export("csv"))
        self.export_json_action = self._action(file, "Export Captions as &JSON…", lambda: self.export("json"))
        file.addSeparator()
        self._action(file, "&Settings…", self.open_settings, "Ctrl+,")
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        caption = bar.addMenu("&Caption")
        self.caption_selected_action = self._action(caption, "Caption &Selected", self.caption_selected, "Ctrl+R")
        self.caption_all_action = self._action(caption, "Caption &All", self.caption_all, "Ctrl+Shift+R")
        self.pause_action = self._action(caption, "&Pause", self.toggle_pause, "Ctrl+P")
        self.cancel_action = self._action(caption, "&Cancel", self.cancel, "Esc")

        edit = bar.addMenu("&Edit")
        self.accept_action = self._action(edit, "&Accept Caption and Next", self.accept_and_next, "Ctrl+Return")
        self.revert_action = self._action(edit, "&Revert Caption", self.revert, "Ctrl+Backspace")
        self.copy_action = self._action(edit, "&Copy Alt Text", self.copy_alt_text, "Ctrl+Shift+C")
        edit.addSeparator()
        self.write_selected_action = self._action(edit, "&Write Selected to Files", self.write_selected, "Ctrl+S")
        self.write_all_action = self._action(edit, "Write A&ll to Files", self.write_all, "Ctrl+Shift+S")
        self.undo_action = self._action(edit, "&Undo Last Write", self.undo_write, QKeySequence.StandardKey.Undo)
        edit.addSeparator()
        self._action(edit, "&Find", lambda: (self.search.setFocus(), self.search.selectAll()), QKeySequence.StandardKey.Find)

        view = bar.addMenu("&View")
        self._action(view, "&Next Word's Attention", lambda: self.step_word(1), "Alt+Right")
        self._action(view, "&Previous Word's Attention", lambda: self.step_word(-1), "Alt+Left")
        self._action(view, "Photo &Only (no heat-map)", lambda: self.show_attention(None), "Alt+0")
        view.addAction(self.problems_dock.toggleViewAction())

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard Shortcuts", self.show_shortcuts, "F1")
        self._word = -1

    def _update_actions(self) -> None:
        busy = self.caption_worker is not None
        has_photos = bool(self.photos.items)
        for action in (self.caption_selected_action, self.caption_all_action):
            action.setEnabled(has_photos and not busy)
        self.pause_action.setEnabled(busy)
        self.cancel_action.setEnabled(busy)
        self.undo_action.setEnabled(self.journal is not None and not busy)
        for action in (self.write_selected_action, self.write_all_action, self.export_csv_action, self.export_json_action):
            action.setEnabled(has_photos)

    # ---- model ---------------------------------------------------------------------------------
    def ensure_captioner(self) -> Captioner | None:
        if self.captioner is None:
            try:
                path = Path(self.settings.model_path) if self.settings.model_path else None
                self.captioner = Captioner.open(path, provider=self.settings.provider)
            except (BundleError, ProviderError) as exc:
                self._show_model_error(str(exc))
                return None
            self.model_label.setText(f"model: {self.captioner.model_id} on {self.captioner.provider}")
        return self.captioner

    def _show_model_error(self, message: str) -> None:
        """Window-modal but not blocking: the event loop (and any test driving it) keeps running."""
        self.statusBar().showMessage(f"model cannot be used: {message}", 15000)
        box = QMessageBox(QMessageBox.Icon.Critical, "Model cannot be used", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # ---- folders -------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", str(self.folder or Path.home()))
        if folder:
            self.open_folder(Path(folder))

    def _toggle_recursive(self, checked: bool) -> None:
        self.settings.recursive = checked
        self.settings.save(self.store)
        if self.folder:
            self.open_folder(self.folder)

    def open_folder(self, folder: Path) -> None:
        """Show the photos at once (thumbnails load as they scroll into view); read captions in the background."""
        self.opened_at = time.perf_counter()
        self.folder = Path(folder).resolve()
        paths = list(find_photos([self.folder], self.settings.recursive))
        self.photos.set_photos([PhotoItem(p) for p in paths])
        self.setWindowTitle(f"photocaption — {self.folder}")
        self.statusBar().showMessage(f"{len(paths)} photos; reading their captions…")
        self._update_actions()
        if paths:
            self.grid.setCurrentIndex(self.filter.index(0, 0))
        worker = ScanWorker(self.index_path, self.folder, self.settings.recursive, self.settings.sidecar_naming)
        worker.finished.connect(self._captions_read)
        self._start(worker)

    def _captions_read(self, captions: dict) -> None:
        for item in self.photos.items:
            caption, source, keywords = captions.get(item.path, ("", "", []))
            if caption and not item.unsaved:
                item.caption = item.saved_caption = caption
                item.source, item.keywords = source, keywords
        self.photos.dataChanged.emit(self.photos.index(0), self.photos.index(max(len(self.photos.items) - 1, 0)))
        done = sum(1 for i in self.photos.items if i.caption)
        self.statusBar().showMessage(f"{len(self.photos.items)} photos, {done} already captioned", 5000)
        self.show_photo(self.grid.currentIndex())

    def _start(self, worker) -> QThread:
        thread = QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit)
        thread.finished.connect(self._forget_thread)  # a window slot, so it runs on the UI thread
        self._threads.append((thread, worker))
        thread.start()
        return thread

    @Slot()
    def _forget_thread(self) -> None:
        finished = self.sender()
        self._threads = [(thread, worker) for thread, worker in self._threads if thread is not finished]

    # ---- selection & preview ---------------------------------------------------------------
    def selected_items(self) -> list[PhotoItem]:
        rows = sorted(self.filter.mapToSource(i).row() for i in self.grid.selectionModel().selectedIndexes())
        return [self.photos.items[r] for r in rows]

    def show_photo(self, index) -> None:
        self._current = self.photos.item(Path(index.data(PathRole))) if index.isValid() else None
        item = self._current
        self._loading_editor = True
        self.caption_edit.setPlainText(item.caption if item else "")
        self.caption_edit.moveCursor(QTextCursor.MoveOperation.End)  # typing extends the caption
        self._loading_editor = False
        self.keywords.setText(", ".join(item.keywords) if item else "")
        self.alternatives.clear()
        for text, score in (item.alternatives if item else []):
            self.alternatives.addItem(text)
        self._describe(item)
        self._fill_words(item)
        self.show_attention(None)

    def _describe(self, item: PhotoItem | None) -> None:
        if item is None:
            self.caption_info.setText("")
            return
        who = {PERSON: "written by a person", MACHINE: "written by the model"}.get(item.source, "from another tool" if item.caption else "")
        state = "unsaved" if item.unsaved else ("saved in the photo" if item.caption else "")
        error = f"  ⚠ {item.error}" if item.error else ""
        self.caption_info.setText(" · ".join(x for x in (who, state) if x) + error)
        self.preview.setAccessibleDescription(item.caption or "no caption yet")

    def _fill_words(self, item: PhotoItem | None) -> None:
        while self.words_row.count():
            widget = self.words_row.takeAt(0).widget()
            if widget:
                widget.hide()  # gone now, not at the next event-loop turn
                widget.deleteLater()
        self._word = -1
        if item is None or item.attention is None or not item.words:
            return
        for n, word in enumerate(item.words):
            button = QPushButton(word)
            button.setFlat(True)
            button.setCheckable(True)  # the word whose heat-map is shown stays pressed
            button.setStyleSheet("QPushButton { padding: 2px 4px; min-width: 0; }")
            button.setAccessibleName(f"Show where the model looked for '{word}'")
            button.clicked.connect(lambda _=False, n=n: self.show_attention(n))
            self.words_row.addWidget(button)
        self.words_row.addStretch(1)

    def _photo_pixmap(self) -> QPixmap | None:
        if self._current is None:
            return None
        pixmap = QPixmap(str(self._current.path))
        if pixmap.isNull():
            return None
        return pixmap.scaled(self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)

    def show_attention(self, word: int | None) -> None:
        """The photo, with the heat-map of word ``word`` (None: the plain photo)."""
        pixmap = self._photo_pixmap()
        if pixmap is None:
            self.preview.setText(self._current.error if self._current and self._current.error else "")
            return
        item = self._current
        if word is not None and item.attention is not None and 0 <= word < len(item.attention):
            pixmap = overlay(pixmap, item.attention[word])
            self._word = word
            for n in range(self.words_row.count()):
                button = self.words_row.itemAt(n).widget()
                if button is not None:
                    button.setChecked(n == word)
            self.statusBar().showMessage(f"where the model looked for '{item.words[word]}'", 3000)
        self.preview.setPixmap(pixmap)

    def step_word(self, delta: int) -> None:
        if self._current and self._current.words:
            self.show_attention((self._word + delta) % len(self._current.words))

    # ---- captioning ------------------------------------------------------------------------
    def caption_selected(self) -> None:
        self.caption([i.path for i in self.selected_items()], recaption=True)

    def caption_all(self) -> None:
        self.caption([i.path for i in self.photos.items], recaption=False)

    def caption(self, paths: list[Path], recaption: bool) -> None:
        if not paths or self.caption_worker is not None or self.ensure_captioner() is None:
            return
        s = self.settings
        options = PipelineOptions(decode=DecodeOptions(beam_size=s.beam_size, max_length=s.max_length, no_repeat_ngram=3),
                                  recaption=recaption, protect_person_captions=not s.overwrite_person_captions,
                                  sidecar_naming=s.sidecar_naming)
        worker = CaptionWorker(self.captioner, paths, options, s.write_options() if s.write_as_captioned else None)
        worker.outcomes.connect(self._caption_outcomes)
        worker.progress.connect(self._caption_progress)
        worker.finished.connect(self._caption_finished)
        self.caption_worker = worker
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress.show()
        self.pause_action.setText("&Pause")
        self._start(worker)
        self._update_actions()

    def _caption_outcomes(self, outcomes: list) -> None:
        """A bundle of finished photos from the worker: update their items, then the grid once."""
        changed: list[Path] = []
        for outcome, written_to in outcomes:
            item = self.photos.item(outcome.path)
            if item is None:
                continue
            if outcome.status == CAPTIONED:
                r = outcome.result
                item.caption, item.source, item.words, item.attention = r.text, MACHINE, r.words, r.attention
                item.alternatives, item.keywords, item.score, item.error = r.alternatives, r.keywords, r.score, ""
                if written_to:
                    item.saved_caption = r.text
                    self.index.record(item.path, read_caption(item.path, self.settings.sidecar_naming))
            elif outcome.status == FAILED:
                item.error = outcome.message
            if outcome.message:
                self.problems.addItem(f"{outcome.status}: {outcome.path.name}: {outcome.message}")
            changed.append(item.path)
        self.photos.refresh(*changed)
        if self._current is not None and self._current.path in changed:
            self.show_photo(self.grid.currentIndex())

    def _caption_progress(self, done: int, total: int, rate: float, eta: float) -> None:
        self.progress.setValue(done)
        eta_text = "" if eta == float("inf") else f", {int(eta) // 60}:{int(eta) % 60:02d} left"
        self.rate_label.setText(f"{rate:.1f} photos/s{eta_text}")

    def _caption_finished(self, counts: dict, cancelled: bool, journal) -> None:
        self.caption_worker = None
        self.progress.hide()
        self.rate_label.setText("")
        if journal is not None and len(journal):
            self._replace_journal(journal)
        message = (f"{'Cancelled: ' if cancelled else ''}captioned {counts['captioned']}, skipped {counts['skipped']}, "
                   f"failed {counts['failed']}")
        self.statusBar().showMessage(message, 10000)
        self._update_actions()
        self.apply_search(self.search.text())

    def toggle_pause(self) -> None:
        worker = self.caption_worker
        if worker is None:
            return
        if worker.pause_event.is_set():
            worker.pause_event.clear()
            self.pause_action.setText("&Pause")
            self.statusBar().showMessage("resumed", 2000)
        else:
            worker.pause_event.set()
            self.pause_action.setText("&Resume")
            self.statusBar().showMessage("paused")

    def cancel(self) -> None:
        if self.caption_worker is not None:
            self.caption_worker.cancel_event.set()
            self.statusBar().showMessage("cancelling after the current batch…")

    # ---- review & edit ---------------------------------------------------------------------
    def _caption_edited(self) -> None:
        item = self._current
        if self._loading_editor or item is None:
            return
        text = self.caption_edit.toPlainText().strip()
        if text != item.caption:
            item.caption, item.source = text, PERSON
            item.attention, item.words = None, []
            self._fill_words(item)
            self._describe(item)
            self.photos.refresh(item.path)

    def _keywords_edited(self) -> None:
        if self._current is not None:
            self._current.keywords = [w.strip() for w in self.keywords.text().split(",") if w.strip()]

    def use_alternative(self, text: str) -> None:
        item = self._current
        if item is None:
            return
        self.caption_edit.setPlainText(text)
        item.source = MACHINE  # the model's words, chosen by a person

    def accept_and_next(self) -> None:
        """Keep this caption and move on: the review loop is Ctrl+Return, photo after photo."""
        current = self.grid.currentIndex()
        following = self.filter.index(current.row() + 1, 0)
        if following.isValid():
            self.grid.setCurrentIndex(following)

    def revert(self) -> None:
        item = self._current
        if item is None:
            return
        saved = read_caption(item.path, self.settings.sidecar_naming)
        item.caption = saved.text if saved else ""
        item.saved_caption = item.caption
        item.source = (PERSON if saved.written_by_person else saved.source) if saved else ""
        self.photos.refresh(item.path)
        self.show_photo(self.grid.currentIndex())

    def copy_alt_text(self) -> None:
        if self._current and self._current.caption:
            QGuiApplication.clipboard().setText(self._current.caption)
            self.statusBar().showMessage("alt text copied", 2000)

    # ---- writing ---------------------------------------------------------------------------
    def write_selected(self) -> None:
        self.write(self.selected_items())

    def write_all(self) -> None:
        self.write(self.photos.items)

    def write(self, items: list[PhotoItem]) -> None:
        model_id = self.captioner.model_id if self.captioner else ""
        jobs = [(i.path, CaptionRecord(i.caption, i.source or PERSON, model_id, i.keywords, i.score))
                for i in items if i.unsaved]
        if not jobs:
            self.statusBar().showMessage("nothing to write: no unsaved captions", 3000)
            return
        worker = WriteWorker(jobs, self.settings.write_options())
        worker.written.connect(self._written)
        worker.finished.connect(self._write_finished)
        self.statusBar().showMessage(f"writing {len(jobs)} captions…")
        self._start(worker)

    def _written(self, path: str, places: str, problem: str) -> None:
        item = self.photos.item(Path(path))
        if item is None:
            return
        if places:
            item.saved_caption = item.caption
            self.index.record(item.path, read_caption(item.path, self.settings.sidecar_naming))
        if problem:
            self.problems.addItem(f"{'written' if places else 'not written'}: {item.path.name}: {problem}")
        self.photos.refresh(item.path)

    def _write_finished(self, journal: WriteJournal) -> None:
        self._replace_journal(journal)
        self.statusBar().showMessage(f"wrote captions into {len(journal)} photos (Ctrl+Z undoes)", 5000)
        self.show_photo(self.grid.currentIndex())
        self._update_actions()

    def _replace_journal(self, journal: WriteJournal) -> None:
        if self.journal is not None:
            self.journal.discard()
        self.journal = journal

    def undo_write(self) -> None:
        if self.journal is None:
            return
        restored = self.journal.undo()
        self.journal = None
        for path in restored:
            item = self.photos.item(path)
            saved = read_caption(path, self.settings.sidecar_naming)
            self.index.record(path, saved)
            if item is not None:
                item.saved_caption = saved.text if saved else ""
                self.photos.refresh(path)
        self.statusBar().showMessage(f"restored {len(restored)} photos as they were before the last write", 5000)
        self.show_photo(self.grid.currentIndex())
        self._update_actions()

    # ---- search & export -------------------------------------------------------------------
    def apply_search(self, text: str) -> None:
        if not fts_query(text):
            self.filter.set_allowed(None)
            return
        allowed = {str(hit.path) for hit in self.index.search(text, limit=1_000_000)}
        words = text.lower().split()
        allowed |= {str(i.path) for i in self.photos.items  # captions made here and not yet written
                    if i.unsaved and all(w in i.caption.lower() for w in words)}
        self.filter.set_allowed(allowed)
        self.statusBar().showMessage(f"{self.filter.rowCount()} photos match", 3000)

    def export(self, kind: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export captions", f"captions.{kind}", f"*.{kind}")
        if path:
            self.export_to(Path(path), kind)

    def export_to(self, path: Path, kind: str) -> None:
        rows = [{"path": str(i.path), "caption": i.caption, "source": i.source, "keywords": " ".join(i.keywords),
                 "saved": not i.unsaved} for i in self.photos.items if i.caption]
        if kind == "json":
            path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
        else:
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=["path", "caption", "source", "keywords", "saved"])
                writer.writeheader()
                writer.writerows(rows)
        self.statusBar().showMessage(f"exported {len(rows)} captions to {path}", 5000)

    # ---- dialogs ---------------------------------------------------------------------------
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            changed_model = (dialog.settings.model_path, dialog.settings.provider) != (self.settings.model_path,
                                                                                        self.settings.provider)
            self.settings = dialog.settings
            self.settings.save(self.store)
            if changed_model:
                self.captioner = None
                self.model_label.setText("model: not loaded")
                self.ensure_captioner()

    def show_shortcuts(self) -> None:
        lines = [f"{a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)}: {a.text().replace('&', '')}"
                 for top in self.menuBar().actions() if top.menu()
                 for a in top.menu().actions() if not a.shortcut().isEmpty()]
        QMessageBox.information(self, "Keyboard shortcuts", "\n".join(lines))

    def closeEvent(self, event) -> None:
        if self.caption_worker is not None:
            self.caption_worker.cancel_event.set()
        for thread, _ in list(self._threads):
            thread.quit()
            thread.wait(10000)
        if self.journal is not None:
            self.journal.discard()
        self.index.close()
        super().closeEvent(event)
