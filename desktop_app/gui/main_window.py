"""The main window: builds the widgets and wires them to the session (state), the runs (workers) and the actions.

Folder -> thumbnail grid with state badges -> preview + attention -> caption editor -> write.
What a person does goes to the ``Session`` or ``Runs``; what they say changed is shown.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QSettings, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QMainWindow, QMenu, QMessageBox, QSplitter, QVBoxLayout,
                               QWidget)

from desktop_app.gui.actions import Actions
from desktop_app.gui.panels import (DISCARD, KEEP, WRITE, LibraryResults, ProblemsList, SearchBar, StatusBar,
                                    ask_about_unsaved, photo_grid)
from desktop_app.gui.photo_view import PhotoView
from desktop_app.gui.photo_model import PathRole, PhotoFilter, PhotoListModel
from desktop_app.gui.session import PhotoItem, Session, count_of
from desktop_app.gui.settings import AppSettings, Memory, SettingsDialog
from desktop_app.gui.runs import Runs
from desktop_app.library.index import LibraryIndex, default_index_path
from desktop_app.photos.discover import find_photos



class MainWindow(QMainWindow):
    def __init__(self, settings_store: QSettings | None = None, index_path: Path | None = None):
        super().__init__()
        self.setWindowTitle("photocaption")
        available = self.screen().availableGeometry()  # a 1366x768 laptop: the status bar stays on the screen
        self.resize(min(1280, available.width() * 95 // 100), min(800, available.height() * 9 // 10))
        self.store = settings_store or QSettings("photocaption", "photocaption")
        self.memory = Memory(self.store)
        self.index_path = Path(index_path or default_index_path())
        self.index = LibraryIndex(self.index_path)
        self.session = Session(self.index, self.index_path.parent / "undo", self)
        self.runs = Runs(self.session, AppSettings.load(self.store), self.index_path, self)
        self.folder: Path | None = None
        self._current: PhotoItem | None = None
        self._focused_once = False
        self.shortcuts_window: QMessageBox | None = None
        self.opened_at = 0.0
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.setInterval(150)
        self._counts_timer.timeout.connect(self._show_state)
        self._build_widgets()
        self.actions = Actions(self)
        self.actions.recursive.setChecked(self.settings.recursive)
        self.actions.view_problems = self.problems_dock.toggleViewAction()
        self.actions.menus["view"].addAction(self.actions.view_problems)
        self.actions.menus["view"].addAction(self.library_dock.toggleViewAction())
        self._connect_session()
        self._connect_runs()
        self._tab_order()
        self._restore_memory()
        self._update_actions()
        self._show_counts()
        if self.index.notice:  # a damaged index was moved aside and a new one made: say so until the next message
            self.statusBar().showMessage(self.index.notice)

    # ---- layout -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.photos = PhotoListModel(self.session, self)
        self.filter = PhotoFilter(self.session, self)
        self.filter.setSourceModel(self.photos)
        left = self._build_grid()
        self._build_editor(left)
        self._build_docks()
        self._build_status_bar()

    def _build_grid(self) -> QWidget:
        """The search bar over the thumbnail grid: the left side of the window."""
        self.search_bar = SearchBar()
        self.search = self.search_bar.search
        self.search.textChanged.connect(self.apply_search)
        self.search_bar.whole_library.toggled.connect(lambda _: self.apply_search(self.search.text()))
        self.search_bar.show_only.currentIndexChanged.connect(lambda _: self._filter_changed())
        self.search_bar.sort.currentIndexChanged.connect(
            lambda _: (self.filter.set_order(self.search_bar.sort.currentData()), self._keep_current_visible()))

        self.grid = photo_grid()
        self.grid.setModel(self.filter)
        self.grid.customContextMenuRequested.connect(self._grid_menu)
        self.grid.doubleClicked.connect(lambda _: self.focus_caption())
        self.grid.selectionModel().currentChanged.connect(lambda current, _: self.show_photo(current))
        self.grid.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        for signal in (self.filter.modelReset, self.filter.layoutChanged, self.filter.rowsRemoved):
            signal.connect(self._keep_current_visible)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.search_bar)
        left_layout.addWidget(self.grid)
        return left

    def _build_editor(self, left: QWidget) -> None:
        """The preview over the caption panel, beside the grid."""
        self.right = PhotoView()
        self.preview, self.panel = self.right.preview, self.right.panel
        self.caption_edit = self.panel.caption_edit
        self.panel.caption_edited.connect(self._caption_edited)
        self.panel.keywords_edited.connect(self._keywords_edited)
        self.panel.alternative_chosen.connect(self.use_alternative)
        self.panel.word_chosen.connect(self.show_attention)

        self.splitter = QSplitter()
        self.splitter.setObjectName("main")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.setCentralWidget(self.splitter)

    def _build_docks(self) -> None:
        """Problems and library search, tabbed below; Problems in front."""
        self.problems_panel = ProblemsList()
        self.problems = self.problems_panel.list
        self.problems_panel.clear_button.clicked.connect(self.session.clear_problems)
        self.problems_panel.photo_chosen.connect(self.select_path)
        self.problems_dock = QDockWidget("Problems", self)
        self.problems_dock.setObjectName("problems")
        self.problems_dock.setWidget(self.problems_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.problems_dock)
        self.resizeDocks([self.problems_dock], [130], Qt.Orientation.Vertical)

        self.library_results = LibraryResults()
        self.library_results.photo_chosen.connect(self.open_photo)
        self.library_dock = QDockWidget("Library search", self)
        self.library_dock.setObjectName("library")
        self.library_dock.setWidget(self.library_results)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.library_dock)
        self.tabifyDockWidget(self.problems_dock, self.library_dock)
        self.problems_dock.raise_()
        self.library_dock.hide()

    def _build_status_bar(self) -> None:
        """The status bar, with the counts, the rate, the progress and the model at its right."""
        bar = StatusBar()
        self.setStatusBar(bar)
        self.counts_label, self.rate_label, self.progress = bar.counts, bar.rate, bar.progress
        self.model_label = bar.model

    def _tab_order(self) -> None:
        chain = [self.search, self.search_bar.whole_library, self.search_bar.show_only, self.search_bar.sort,
                 self.grid, self.caption_edit, self.panel.words_area, self.panel.alternatives, self.panel.keywords,
                 self.problems, self.problems_panel.clear_button]
        for a, b in zip(chain, chain[1:]):
            QWidget.setTabOrder(a, b)

    def _connect_session(self) -> None:
        self.session.changed.connect(self._session_changed)
        self.session.reset.connect(self._show_counts)
        self.session.problems_changed.connect(self._show_problems)
        self.session.undo_changed.connect(self._update_actions)

    def _connect_runs(self) -> None:
        r = self.runs
        r.message.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        r.started.connect(self._run_started)
        r.progress.connect(self.progress.setValue)
        r.rate.connect(self.rate_label.setText)
        r.busy_changed.connect(self._update_actions)
        r.caption_finished.connect(self._caption_finished)
        r.write_finished.connect(self._run_finished)
        r.undone.connect(self._undone)
        r.captions_read.connect(self._captions_read)
        r.model_changed.connect(self.model_label.setText)
        r.model_failed.connect(self._show_model_error)
        r.close_requested.connect(self.close)
        r.open_requested.connect(self.open_folder_asking)

    @property
    def settings(self) -> AppSettings:
        """The app's settings: one object, shared with the runs."""
        return self.runs.settings

    def _show_problems(self) -> None:
        """The run's problems, brought to the front when there are some (unless library hits are showing)."""
        self.problems_panel.show_problems(self.session.shown_problems(), self.session.run_label)
        if self.session.problems and not self.library_results.count():
            self.problems_dock.raise_()

    def _show_state(self) -> None:
        """After changes (at most every 150 ms): counts, actions, and Problems, which lists every failed photo."""
        self._show_counts()
        self._update_actions()
        self.problems_panel.show_problems(self.session.shown_problems(), self.session.run_label)
        if self.search_bar.whole_library.isChecked() and self.library_dock.isVisible() and self.search.text():
            self._show_library_hits(self.search.text())  # captions arriving now are found too

    def _restore_memory(self) -> None:
        geometry, state = self.memory.window()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        for splitter in (self.splitter, self.right):
            saved = self.memory.splitter(splitter.objectName())
            if saved is not None:
                splitter.restoreState(saved)
        self._fill_recent()

    def _fill_recent(self) -> None:
        menu = self.actions.recent_menu
        menu.clear()
        for folder in self.memory.recent_folders():
            menu.addAction(folder, lambda folder=folder: self.open_folder_asking(Path(folder)))
        menu.setEnabled(not menu.isEmpty())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._focused_once:
            self._focused_once = True
            self.grid.setFocus()

    def _update_actions(self) -> None:
        self.actions.enable(bool(self.session.items), bool(self.grid.selectionModel().selectedIndexes()),
                            self.runs.busy, self.runs.caption_worker is not None, self.session.undo_label())

    def _show_counts(self) -> None:
        self.counts_label.setText(self.session.counts_text())

    # ---- model ---------------------------------------------------------------------------------
    def _show_model_error(self, message: str) -> None:
        """Window-modal but not blocking: the event loop (and any test driving it) keeps running."""
        self.statusBar().showMessage(f"model cannot be used: {' '.join(message.split())}", 15000)  # one line
        box = QMessageBox(QMessageBox.Icon.Critical, "Model cannot be used", message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # ---- folders -------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = str(self.folder or self.memory.last_folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos", start)
        if folder:
            self.open_folder_asking(Path(folder))

    def toggle_recursive(self) -> None:
        self.settings.recursive = self.actions.recursive.isChecked()
        self.settings.save(self.store)
        if self.folder:
            self.open_folder_asking(self.folder)

    def reopen_last(self) -> bool:
        """Open the folder of the last session, if it is still there (as photo managers do)."""
        last = self.memory.last_folder
        if last and Path(last).is_dir():
            self.open_folder(Path(last))
            return True
        return False

    def open_folder_asking(self, folder: Path) -> bool:
        """Open another folder; unsaved work in this one is asked about first."""
        if self.runs.busy:
            self.statusBar().showMessage("wait for the current captioning or writing to finish (Esc cancels)", 5000)
            return False
        if not self._settle_unsaved("open another folder"):
            if self.runs.write_worker is not None:  # writing everything first: open it when that is done
                self.runs.open_after_write = Path(folder)
            return False
        self.open_folder(folder)
        return True

    def open_folder(self, folder: Path) -> None:
        """Show the photos at once (thumbnails load as they scroll into view); read captions in the background."""
        self.opened_at = time.perf_counter()
        self.folder = Path(folder).resolve()
        paths = list(find_photos([self.folder], self.settings.recursive))
        self._current = None
        self.session.open(self.folder, paths)
        self.memory.opened(self.folder)
        self._fill_recent()
        self.setWindowTitle(f"photocaption — {self.folder}")
        restored = self.session.restored_drafts
        self.statusBar().showMessage(f"{count_of(len(paths), 'photo')}; reading their captions…"
                                     + (f" {count_of(restored, 'unsaved caption')} kept from last time" if restored else ""))
        self._update_actions()
        if paths:
            self.grid.selectionModel().setCurrentIndex(self.filter.index(0, 0),
                                                       QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.runs.scan(self.folder)

    def _captions_read(self) -> None:
        self._show_counts()
        self._refresh_current()

    # ---- selection & preview ---------------------------------------------------------------
    def selected_items(self) -> list[PhotoItem]:
        rows = sorted(self.filter.mapToSource(i).row() for i in self.grid.selectionModel().selectedIndexes())
        return [self.photos.items[r] for r in rows]

    @property
    def current(self) -> PhotoItem | None:
        """The photo the caption panel shows (read-only: the grid's current row sets it)."""
        return self._current

    def show_photo(self, index) -> None:
        self.panel.commit_keywords()  # keywords typed for the photo being left belong to it
        self._current = self.session.item(Path(index.data(PathRole))) if index.isValid() else None
        self._refresh_current()

    def _refresh_current(self) -> None:
        self.right.show_item(self._current, "No photo selected" if self.session.items else "Open a folder (Ctrl+O)")

    def _keep_current_visible(self) -> None:
        """After a search, filter or sort: the preview shows the selected photo, never a hidden one."""
        current = self.grid.currentIndex()
        if not current.isValid() and self.filter.rowCount():
            self.grid.selectionModel().setCurrentIndex(self.filter.index(0, 0),
                                                       QItemSelectionModel.SelectionFlag.ClearAndSelect)
            return
        shown = self.session.item(Path(current.data(PathRole))) if current.isValid() else None
        if shown is not self._current:
            self._current = shown
            self._refresh_current()

    def select_path(self, path: Path) -> None:
        """Select this photo in the grid (widening the filter if it hides it)."""
        item = self.session.item(Path(path))
        if item is None:
            return
        row = self.photos.items.index(item)
        proxy = self.filter.mapFromSource(self.photos.index(row))
        if not proxy.isValid():
            self.search.clear()
            self.search_bar.show_only.setCurrentIndex(0)
            proxy = self.filter.mapFromSource(self.photos.index(row))
        self.grid.selectionModel().setCurrentIndex(proxy, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.grid.scrollTo(proxy)

    def open_photo(self, path: Path) -> None:
        """A library search hit: open its folder (asking about unsaved work) and select it."""
        path = Path(path)
        if self.session.item(path) is None:
            if not self.open_folder_asking(path.parent):
                return
        self.select_path(path)
        self.grid.setFocus()

    def show_attention(self, word: int | None) -> None:
        """The photo, with the heat-map of word ``word`` (None: the plain photo)."""
        shown = self.right.show_attention(self._current, word)
        if shown is not None:
            self.statusBar().showMessage(f"where the model looked for '{shown}'", 3000)

    def step_word(self, delta: int) -> None:
        if self._current and self._current.words and self._current.attention is not None:
            self.show_attention((self.right.word + delta) % len(self._current.words))

    def _session_changed(self, paths: list) -> None:
        if not self._counts_timer.isActive():  # counts and actions at most every 150 ms, not per bundle
            self._counts_timer.start()
        if self._current is not None and self._current.path in set(paths):
            self.right.follow(self._current)

    def _grid_menu(self, position) -> None:
        a = self.actions
        menu = QMenu(self)
        for action in (a.caption_selected, a.write_selected, a.revert, a.copy):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction("Edit Caption", self.focus_caption)
        menu.exec(self.grid.viewport().mapToGlobal(position))

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def focus_grid(self) -> None:
        self.grid.setFocus()

    def focus_caption(self) -> None:
        if self._current is not None:
            self.caption_edit.setFocus()
            self.caption_edit.moveCursor(self.caption_edit.textCursor().MoveOperation.End)

    # ---- captioning ------------------------------------------------------------------------
    def caption_selected(self) -> None:
        self.caption([i.path for i in self.selected_items()], recaption=True, label="Caption selected")

    def caption_all(self) -> None:
        self.caption([i.path for i in self.session.items], recaption=False, label="Caption all")

    def caption(self, paths: list[Path], recaption: bool, label: str = "Caption") -> None:
        if self.runs.caption(paths, recaption, label):
            self.actions.pause.setText("&Pause")

    def _run_started(self, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.show()

    def _run_finished(self) -> None:
        """A caption or write run ended: its photos' states are final for now."""
        self.progress.hide()
        self.filter.refilter()
        self._show_counts()
        self._update_actions()

    def _caption_finished(self) -> None:
        self._run_finished()
        if self.search.text():
            self.apply_search(self.search.text())

    def toggle_pause(self) -> None:
        if self.runs.caption_worker is not None:
            self.actions.pause.setText("&Resume" if self.runs.toggle_pause() else "&Pause")

    # ---- review & edit ---------------------------------------------------------------------
    def _caption_edited(self, text: str) -> None:
        if self._current is not None:
            self.session.edit_caption(self._current, text)

    def _keywords_edited(self, keywords: list) -> None:
        if self._current is not None:
            self.session.edit_keywords(self._current, keywords)

    def use_alternative(self, row: int) -> None:
        item = self._current
        if item is None or not 0 <= row < len(item.alternatives):
            return
        self.session.choose_alternative(item, row)
        self._refresh_current()

    def accept_and_next(self) -> None:
        """Keep this caption (a person has reviewed it) and move on, one photo selected: the review loop is
        Ctrl+Return, photo after photo. The kept photo stays in a needs-review list until it is filtered again."""
        self.panel.commit_keywords()
        if self._current is not None:
            self.session.mark_reviewed([self._current])
        current = self.grid.currentIndex()
        following = self.filter.index(current.row() + 1, 0) if current.isValid() else self.filter.index(0, 0)
        if following.isValid():
            self.grid.selectionModel().setCurrentIndex(following, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self.grid.scrollTo(following)

    def mark_reviewed(self) -> None:
        """The selected machine captions were checked by a person: they leave the needs-review list at once."""
        items = self.selected_items() or ([self._current] if self._current else [])
        marked = self.session.mark_reviewed(items)
        self.statusBar().showMessage(f"marked {count_of(marked, 'caption')} reviewed"
                                     if marked else "nothing to mark: no selected caption needs review", 3000)
        self.filter.refilter()

    def revert(self) -> None:
        """Back to what the photo holds; in the editor this is one more edit, so Ctrl+Z there brings it back."""
        item = self._current
        if item is None or not item.unsaved:
            return
        if self.caption_edit.toPlainText().strip() != item.saved_caption:
            self.panel.set_caption_text(item.saved_caption)
        self.session.revert(item)
        self._refresh_current()

    def copy_alt_text(self) -> None:
        if self._current and self._current.caption:
            QGuiApplication.clipboard().setText(self._current.caption)
            self.statusBar().showMessage("alt text copied", 2000)

    def discard_unsaved(self) -> None:
        count = len(self.session.unsaved_items())
        if not count:
            self.statusBar().showMessage("nothing unsaved", 3000)
            return
        answer = QMessageBox.question(self, "Discard unsaved changes",
                                      f"Discard {count} unsaved captions and edits? The photos keep what they hold.",
                                      QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Discard:
            self.session.discard_all()
            self._refresh_current()

    # ---- writing ---------------------------------------------------------------------------
    def write_selected(self) -> None:
        self.write(self.selected_items())

    def write_all(self) -> None:
        self.write(self.session.items)

    def write(self, items: list[PhotoItem]) -> bool:
        """Write these photos' unsaved captions and keyword edits (the keywords being typed too); undoable."""
        self.panel.commit_keywords()
        return self.runs.write(items)

    def _undone(self) -> None:
        self._show_counts()
        self._refresh_current()
        self._update_actions()

    # ---- search & export -------------------------------------------------------------------
    def _filter_changed(self) -> None:
        self.filter.set_kind(self.search_bar.kind())
        self.statusBar().showMessage(f"{count_of(self.filter.rowCount(), 'photo')} shown", 3000)  # heard, too
        self._keep_current_visible()

    def apply_search(self, text: str) -> None:
        allowed = self.session.matching(text)
        self.filter.set_allowed(allowed)
        if self.search_bar.whole_library.isChecked() and allowed is not None:
            hits = self._show_library_hits(text)
            self.library_dock.show()
            self.library_dock.raise_()
            self.statusBar().showMessage(f"{count_of(self.filter.rowCount(), 'photo')} match here, {hits} in the library", 3000)
        else:
            self.library_results.clear()
            if allowed is not None:
                self.statusBar().showMessage(f"{count_of(self.filter.rowCount(), 'photo')} match", 3000)
        self._keep_current_visible()

    def _show_library_hits(self, text: str) -> int:
        """Photos of every indexed folder matching ``text`` (drafts on their draft); returns how many."""
        hits = self.session.library_hits(text)
        self.library_results.show_hits(hits)
        return len(hits)

    def export(self, kind: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export captions", f"captions.{kind}", f"*.{kind}")
        if path:
            self.export_to(Path(path), kind)

    def export_to(self, path: Path, kind: str) -> None:
        try:
            count = self.session.export(path, kind)
        except OSError as exc:
            self.statusBar().showMessage(f"could not export to {path}: {exc.strerror or exc}", 10000)
            return
        self.statusBar().showMessage(f"exported {count_of(count, 'caption')} to {path}", 5000)

    # ---- dialogs ---------------------------------------------------------------------------
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if not dialog.exec():
            return
        self.runs.use_settings(dialog.settings)
        self.settings.save(self.store)

    def show_shortcuts(self) -> None:
        """A window beside the main one, not modal: the keys stay in sight while a person tries them."""
        if self.shortcuts_window is None:
            self.shortcuts_window = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", "",
                                                QMessageBox.StandardButton.Close, self)
            self.shortcuts_window.setWindowModality(Qt.WindowModality.NonModal)
        self.shortcuts_window.setText("\n".join(self.actions.shortcuts()))
        self.shortcuts_window.show()
        self.shortcuts_window.raise_()

    def ask_about_unsaved(self, doing: str) -> str:
        """WRITE, KEEP, DISCARD or CANCEL (tests may stand in for the person here)."""
        return ask_about_unsaved(self, len(self.session.unsaved_items()), doing)

    def _settle_unsaved(self, doing: str) -> bool:
        """Ask about unsaved work before leaving it; True when it is fine to go on now."""
        self.panel.commit_keywords()
        if not self.session.unsaved_items():
            return True
        choice = self.ask_about_unsaved(doing)
        if choice == DISCARD:
            self.session.discard_all()
        elif choice == WRITE:
            if self.write(self.session.items):
                self.runs.close_after_write = doing == "quit"
                return False  # goes on (quits) when the writes are done
        return choice in (KEEP, DISCARD)

    def closeEvent(self, event) -> None:
        if self.runs.write_worker is not None:
            self.statusBar().showMessage("still writing: the window closes when it is done", 5000)
            self.runs.close_after_write = True
            event.ignore()
            return
        if self.runs.caption_worker is not None:
            self.runs.stop_captioning()
            QGuiApplication.processEvents()  # take in the worker's last outcomes
        if not self._settle_unsaved("quit"):
            event.ignore()
            return
        self.runs.wait_all()
        self.memory.save_window(self.saveGeometry(), self.saveState(),
                                {s.objectName(): s.saveState() for s in (self.splitter, self.right)})
        self.session.discard_undo()
        self.index.close()
        super().closeEvent(event)
