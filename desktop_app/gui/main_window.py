"""The main window: builds the widgets and connects them to the controllers, which hold the state and do the work.

Folder -> thumbnail grid with state badges -> preview + attention -> caption editor -> write.
``Session`` holds the photos and what was done to them; ``Runs`` captions, writes, undoes and opens
the model off the UI thread; ``Browse`` searches and filters; ``Folders`` opens a folder and settles
unsaved work before it is left. The window shows what they say, and passes on what a person does.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMainWindow, QMessageBox

from desktop_app.gui.actions import Actions
from desktop_app.gui.browse import Browse
from desktop_app.gui.browser_pane import BrowserPane
from desktop_app.gui.dialogs import choose_export_file, choose_folder, confirm_discard, show_model_error, show_shortcuts
from desktop_app.gui.export import export_and_say
from desktop_app.gui.folders import Folders
from desktop_app.gui.layout import Docks, side_by_side, tab_order
from desktop_app.gui.messages import count_of
from desktop_app.gui.panels import StatusBar, ask_about_unsaved
from desktop_app.gui.photo_view import PhotoView
from desktop_app.gui.runs import Runs
from desktop_app.gui.session import PhotoItem, Session
from desktop_app.gui.settings import AppSettings, Memory, SettingsDialog
from desktop_app.library.index import LibraryIndex, default_index_path


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
        self.browse = Browse(self.session, self)
        self.folders = Folders(self.session, self.runs, self.memory, lambda doing: self.ask_about_unsaved(doing))
        self.folder: Path | None = None
        self._current: PhotoItem | None = None
        self._focused_once = False
        self.shortcuts_window: QMessageBox | None = None
        self.opened_at = 0.0
        self._counts_timer = QTimer(self, singleShot=True, interval=150)  # counts at most every 150 ms
        self._counts_timer.timeout.connect(self._show_state)
        self._build_widgets()
        self.actions = Actions(self)
        for connect in (self._connect_browser, self._connect_editor, self._connect_runs):
            connect()
        tab_order([self.search, self.search_bar.whole_library, self.search_bar.show_only, self.search_bar.sort,
                   self.grid, self.caption_edit, self.panel.words_area, self.panel.alternatives, self.panel.keywords,
                   self.problems, self.problems_panel.clear_button])
        self.memory.restore_window(self, [self.splitter, self.right])
        self.memory.fill_recent(self.actions.recent_menu, self.open_folder_asking)
        self._update_actions()
        self._show_counts()
        if self.index.notice:  # a damaged index was moved aside and a new one made: say so until the next message
            self.statusBar().showMessage(self.index.notice)

    def _build_widgets(self) -> None:
        """Grid (left) beside preview over caption panel (right); Problems and library search below."""
        self.browser = BrowserPane(self.session)
        self.photos, self.filter, self.grid = self.browser.photos, self.browser.filter, self.browser.grid
        self.search_bar, self.search = self.browser.search_bar, self.browser.search
        self.right = PhotoView()
        self.preview, self.panel = self.right.preview, self.right.panel
        self.caption_edit = self.panel.caption_edit
        self.splitter = side_by_side(self.browser, self.right)
        self.setCentralWidget(self.splitter)
        self.docks = Docks(self)
        self.problems_panel, self.problems_dock = self.docks.problems_panel, self.docks.problems_dock
        self.library_results, self.library_dock = self.docks.library_results, self.docks.library_dock
        self.problems = self.problems_panel.list
        self.setStatusBar(bar := StatusBar())
        self.counts_label, self.rate_label, self.progress, self.model_label = bar.counts, bar.rate, bar.progress, bar.model

    def _connect_browser(self) -> None:
        self.browser.follow(self.browse)
        self.browse.message.connect(self.statusBar().showMessage)
        self.browse.library_hits.connect(self.docks.show_library_hits)
        self.browse.library_cleared.connect(self.library_results.clear)
        self.browser.current_changed.connect(self.show_photo)
        self.browser.shown_changed.connect(self._keep_current_visible)
        a = self.actions
        self.browser.set_menu([a.caption_selected, a.write_selected, a.revert, a.copy], self.focus_caption)
        self.grid.doubleClicked.connect(lambda _: self.focus_caption())
        self.grid.selectionModel().selectionChanged.connect(lambda *_: self._update_actions())
        self.problems_panel.clear_button.clicked.connect(self.session.clear_problems)
        self.problems_panel.photo_chosen.connect(self.browser.select_path)
        self.library_results.photo_chosen.connect(self.open_photo)

    def _connect_editor(self) -> None:
        edits = ((self.panel.caption_edited, self.session.edit_caption), (self.panel.keywords_edited, self.session.edit_keywords))
        for signal, edit in edits:
            signal.connect(lambda value, edit=edit: self._current is not None and edit(self._current, value))
        self.panel.alternative_chosen.connect(self.use_alternative)
        self.panel.word_chosen.connect(self.show_attention)
        self.session.changed.connect(self._session_changed)
        self.session.reset.connect(self._show_counts)
        self.session.problems_changed.connect(lambda: self._show_problems(to_front=True))
        self.session.undo_changed.connect(self._update_actions)

    def _connect_runs(self) -> None:
        r = self.runs
        r.message.connect(self.statusBar().showMessage)
        r.started.connect(self.statusBar().start_progress)
        r.started.connect(lambda _: self.actions.pause.setText("&Pause"))
        r.progress.connect(self.progress.setValue)
        r.rate.connect(self.rate_label.setText)
        r.busy_changed.connect(self._update_actions)
        r.caption_finished.connect(lambda: (self._run_finished(), self.browse.refresh()))
        r.write_finished.connect(self._run_finished)
        r.undone.connect(lambda: (self._show_counts(), self._refresh_current(), self._update_actions()))
        r.captions_read.connect(lambda: (self._show_counts(), self._refresh_current()))
        r.model_changed.connect(self.model_label.setText)
        r.model_failed.connect(self._show_model_error)
        r.settings_changed.connect(lambda: self.settings.save(self.store))
        r.close_requested.connect(self.close)
        r.open_requested.connect(self.open_folder_asking)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._focused_once:
            self._focused_once = True
            self.grid.setFocus()

    @property
    def settings(self) -> AppSettings:
        """The app's settings: one object, shared with the runs."""
        return self.runs.settings

    @property
    def current(self) -> PhotoItem | None:
        """The photo the caption panel shows (read-only: the grid's current row sets it)."""
        return self._current

    def _show_problems(self, to_front: bool = False) -> None:
        """The run's problems and every failed photo; in front when the run has some (a run's, not a refresh)."""
        self.docks.show_problems(self.session.shown_problems(), self.session.run_label,
                                 to_front and bool(self.session.problems))

    def _show_state(self) -> None:
        """After changes (at most every 150 ms): counts, actions, Problems (every failed photo), library hits."""
        self._show_counts()
        self._update_actions()
        self._show_problems()
        if self.library_dock.isVisible():
            self.browse.refresh_library()  # captions arriving now are found too

    def _update_actions(self) -> None:
        self.actions.enable(bool(self.session.items), bool(self.grid.selectionModel().selectedIndexes()),
                            self.runs.busy, self.runs.caption_worker is not None, self.session.undo_label())

    def _show_counts(self) -> None:
        self.counts_label.setText(self.session.counts_text())

    def _session_changed(self, paths: list) -> None:
        if not self._counts_timer.isActive():  # counts and actions at most every 150 ms, not per bundle
            self._counts_timer.start()
        if self._current is not None and self._current.path in set(paths):
            self.right.follow(self._current)

    def _show_model_error(self, message: str) -> None:
        self.statusBar().showMessage(f"model cannot be used: {' '.join(message.split())}", 15000)  # one line
        show_model_error(self, message)

    def _run_finished(self) -> None:
        """A caption or write run ended: its photos' states are final for now."""
        self.progress.hide()
        self.filter.refilter()
        self._show_counts()
        self._update_actions()

    # ---- folders -------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        if folder := choose_folder(self, str(self.folder or self.memory.last_folder or Path.home())):
            self.open_folder_asking(folder)

    def toggle_recursive(self) -> None:
        self.settings.recursive = self.actions.recursive.isChecked()
        self.settings.save(self.store)
        if self.folder:
            self.open_folder_asking(self.folder)

    def reopen_last(self) -> bool:
        """Open the folder of the last session, if it is still there (as photo managers do)."""
        if (last := self.folders.last_folder()) is not None:
            self.open_folder(last)
        return last is not None

    def open_folder_asking(self, folder: Path) -> bool:
        """Open another folder; unsaved work in this one is asked about first."""
        self.panel.commit_keywords()
        if not self.folders.may_open(folder):
            return False
        self.open_folder(folder)
        return True

    def open_folder(self, folder: Path) -> None:
        """Show the photos at once (thumbnails load as they scroll into view); read captions in the background."""
        self.opened_at = time.perf_counter()
        self.folder, self._current = Path(folder).resolve(), None
        self.statusBar().showMessage(self.folders.open(self.folder))
        self.memory.fill_recent(self.actions.recent_menu, self.open_folder_asking)
        self.setWindowTitle(f"photocaption — {self.folder}")
        self._update_actions()
        self.browser.select_first()

    # ---- selection & preview ---------------------------------------------------------------
    def selected_items(self) -> list[PhotoItem]:
        return self.browser.selected_items()

    def show_photo(self, item: PhotoItem | None) -> None:
        self.panel.commit_keywords()  # keywords typed for the photo being left belong to it
        self._current = item
        self._refresh_current()

    def _refresh_current(self) -> None:
        self.right.show_item(self._current, "No photo selected" if self.session.items else "Open a folder (Ctrl+O)")

    def _keep_current_visible(self) -> None:
        """After a search, filter or sort: the preview shows the selected photo, never a hidden one."""
        if not self.browser.select_first() and self.browser.current_item() is not self._current:
            self._current = self.browser.current_item()
            self._refresh_current()

    def open_photo(self, path: Path) -> None:
        """A library search hit: open its folder (asking about unsaved work) and select it."""
        path = Path(path)
        if self.session.item(path) is None and not self.open_folder_asking(path.parent):
            return
        self.browser.select_path(path)
        self.grid.setFocus()

    def show_attention(self, word: int | None) -> None:
        """The photo, with the heat-map of word ``word`` (None: the plain photo)."""
        if (shown := self.right.show_attention(self._current, word)) is not None:
            self.statusBar().showMessage(f"where the model looked for '{shown}'", 3000)

    def step_word(self, delta: int) -> None:
        if (item := self._current) and item.words and item.attention is not None:
            self.show_attention((self.right.word + delta) % len(item.words))

    def focus_caption(self) -> None:
        if self._current is not None:
            self.caption_edit.setFocus()
            self.caption_edit.moveCursor(self.caption_edit.textCursor().MoveOperation.End)

    # ---- captioning, review, writing -------------------------------------------------------
    def caption_selected(self) -> None:
        self.caption([i.path for i in self.selected_items()], recaption=True, label="Caption selected")

    def caption_all(self) -> None:
        self.caption([i.path for i in self.session.items], recaption=False, label="Caption all")

    def caption(self, paths: list[Path], recaption: bool, label: str = "Caption") -> None:
        self.runs.caption(paths, recaption, label)  # its start resets Pause/Resume

    def toggle_pause(self) -> None:
        if self.runs.caption_worker is not None:
            self.actions.pause.setText("&Resume" if self.runs.toggle_pause() else "&Pause")

    def use_alternative(self, row: int) -> None:
        if self._current is not None and 0 <= row < len(self._current.alternatives):
            self.session.choose_alternative(self._current, row)
            self._refresh_current()

    def accept_and_next(self) -> None:
        """Keep this caption (a person has reviewed it) and move on, one photo selected: the review loop is
        Ctrl+Return, photo after photo. The kept photo stays in a needs-review list until it is filtered again."""
        self.panel.commit_keywords()
        if self._current is not None:
            self.session.mark_reviewed([self._current])
        self.browser.select_next()

    def mark_reviewed(self) -> None:
        """The selected machine captions were checked by a person: they leave the needs-review list at once."""
        marked = self.session.mark_reviewed(self.selected_items() or ([self._current] if self._current else []))
        self.statusBar().showMessage(f"marked {count_of(marked, 'caption')} reviewed"
                                     if marked else "nothing to mark: no selected caption needs review", 3000)
        self.filter.refilter()

    def revert(self) -> None:
        """Back to what the photo holds; in the editor this is one more edit, so Ctrl+Z there brings it back."""
        if (item := self._current) is not None and item.unsaved:
            if self.caption_edit.toPlainText().strip() != item.saved_caption:
                self.panel.set_caption_text(item.saved_caption)
            self.session.revert(item)
            self._refresh_current()

    def copy_alt_text(self) -> None:
        if self._current and self._current.caption:
            QGuiApplication.clipboard().setText(self._current.caption)
            self.statusBar().showMessage("alt text copied", 2000)

    def discard_unsaved(self) -> None:
        if self.folders.discard_unsaved(lambda count: confirm_discard(self, count)):
            self._refresh_current()

    def write_selected(self) -> None:
        self.write(self.selected_items())

    def write_all(self) -> None:
        self.write(self.session.items)

    def write(self, items: list[PhotoItem]) -> bool:
        """Write these photos' unsaved captions and keyword edits (the keywords being typed too); undoable."""
        self.panel.commit_keywords()
        return self.runs.write(items)

    # ---- export and dialogs ----------------------------------------------------------------
    def export(self, kind: str) -> None:
        if path := choose_export_file(self, kind):
            self.export_to(path, kind)

    def export_to(self, path: Path, kind: str) -> None:
        self.statusBar().showMessage(*export_and_say(self.session.items, path, kind))

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.runs.use_settings(dialog.settings)  # saved once in use (a new model: once it is open)

    def show_shortcuts(self) -> None:
        self.shortcuts_window = show_shortcuts(self, self.shortcuts_window, self.actions.shortcuts())

    def ask_about_unsaved(self, doing: str) -> str:
        """WRITE, KEEP, DISCARD or CANCEL (tests may stand in for the person here)."""
        return ask_about_unsaved(self, len(self.session.unsaved_items()), doing)

    def closeEvent(self, event) -> None:
        self.panel.commit_keywords()
        if not self.folders.may_quit():
            event.ignore()
            return
        self.memory.remember_window(self, [self.splitter, self.right])
        self.session.discard_undo()
        self.index.close()
        super().closeEvent(event)
