"""Every command of the window, in one registry: menu, text, shortcut, and the window (or run) method it calls.

Shortcuts follow common editors: Ctrl+Backspace is left to the text fields
(delete a word), Ctrl+Z is the caption editor's undo only, and undoing a write
has its own key. Each menu mnemonic is used once.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

Std = QKeySequence.StandardKey


class Actions:
    """Named QActions (``actions.write_all``) built from the table below."""

    def __init__(self, window: QMainWindow):
        self.window = window
        self.menus: dict[str, QMenu] = {}
        bar = window.menuBar()
        for key, title in (("file", "&File"), ("caption", "&Caption"), ("edit", "&Edit"), ("view", "&View"),
                           ("help", "&Help")):
            self.menus[key] = bar.addMenu(title)
        w = window
        table = [
            ("file", "open", "&Open Folder…", w.choose_folder, Std.Open),
            ("file", None, None, None, None),
            ("file", "recursive", "Include &Sub-folders", w.toggle_recursive, None),
            ("file", None, None, None, None),
            ("file", "export_csv", "Export Captions as &CSV…", lambda: w.export("csv"), None),
            ("file", "export_json", "Export Captions as &JSON…", lambda: w.export("json"), None),
            ("file", None, None, None, None),
            ("file", "settings", "Se&ttings…", w.open_settings, "Ctrl+,"),
            ("file", "quit", "&Quit", w.close, Std.Quit),
            ("caption", "caption_selected", "Caption &Selected", w.caption_selected, "Ctrl+R"),
            ("caption", "caption_all", "Caption &All", w.caption_all, "Ctrl+Shift+R"),
            ("caption", "pause", "&Pause", w.toggle_pause, "Ctrl+P"),
            ("caption", "cancel", "&Cancel", w.runs.cancel, "Esc"),
            ("edit", "accept", "&Keep Caption and Next Photo", w.accept_and_next, "Ctrl+Return"),
            ("edit", "mark_reviewed", "&Mark Reviewed", w.mark_reviewed, "Ctrl+M"),
            ("edit", "revert", "&Revert to Saved Caption", w.revert, None),
            ("edit", "copy", "&Copy Alt Text", w.copy_alt_text, "Ctrl+Shift+C"),
            ("edit", None, None, None, None),
            ("edit", "write_selected", "&Write Selected to Photos", w.write_selected, Std.Save),
            ("edit", "write_all", "Write A&ll to Photos", w.write_all, "Ctrl+Shift+S"),
            ("edit", "undo_write", "&Undo Last Write", w.runs.undo_write, "Ctrl+Alt+Z"),
            ("edit", "discard", "&Discard Unsaved Changes…", w.discard_unsaved, None),
            ("edit", None, None, None, None),
            ("edit", "find", "&Find", lambda: (w.search.setFocus(), w.search.selectAll()), Std.Find),
            ("view", "go_grid", "Go to &Photos", lambda: w.grid.setFocus(), "Ctrl+1"),
            ("view", "go_caption", "Go to &Caption", w.focus_caption, "Ctrl+2"),
            ("view", None, None, None, None),
            ("view", "next_word", "&Next Word's Attention", lambda: w.step_word(1), "Alt+Right"),
            ("view", "previous_word", "P&revious Word's Attention", lambda: w.step_word(-1), "Alt+Left"),
            ("view", "photo_only", "Photo &Only (no heat-map)", lambda: w.show_attention(None), "Alt+0"),
            ("view", None, None, None, None),
            ("view", "zoom_in", "Zoom &In", lambda: w.preview.zoom_by(1.25), Std.ZoomIn),
            ("view", "zoom_out", "Zoom O&ut", lambda: w.preview.zoom_by(0.8), Std.ZoomOut),
            ("view", "zoom_fit", "&Fit Photo to Pane", lambda: w.preview.set_zoom(0.0), "Ctrl+0"),
            ("view", "zoom_actual", "&Actual Size", lambda: w.preview.set_zoom(1.0), "Ctrl+Alt+0"),
            ("help", "show_shortcuts", "&Keyboard Shortcuts", w.show_shortcuts, "F1"),
        ]
        self.all: dict[str, QAction] = {}
        for menu, name, text, slot, shortcut in table:
            if name is None:
                self.menus[menu].addSeparator()
                continue
            if hasattr(self, name):  # an action named like a method hid the method (F1 raised TypeError)
                raise ValueError(f"action name {name!r} is taken by an attribute of Actions")
            action = QAction(text, window)
            if shortcut is not None:
                action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(lambda _=False, slot=slot: slot())
            self.menus[menu].addAction(action)
            self.all[name] = action
            setattr(self, name, action)
        self.recursive.setCheckable(True)
        self.recursive.setChecked(w.settings.recursive)
        self.recent_menu = QMenu("Open &Recent", window)
        self.menus["file"].insertMenu(self.recursive, self.recent_menu)
        for dock in (w.problems_dock, w.library_dock):  # View > Problems, View > Library search
            self.menus["view"].addAction(dock.toggleViewAction())
        self.view_problems = w.problems_dock.toggleViewAction()

    def enable(self, has_photos: bool, selected: bool, busy: bool, captioning: bool, undo_label: str) -> None:
        """What may be done now: one run and one writer at a time, and nothing on an empty folder."""
        self.caption_all.setEnabled(has_photos and not busy)
        self.caption_selected.setEnabled(has_photos and selected and not busy)
        self.pause.setEnabled(captioning)
        self.cancel.setEnabled(busy)
        self.undo_write.setEnabled(bool(undo_label) and not busy)
        self.undo_write.setText(f"&Undo {undo_label}" if undo_label else "&Undo Last Write")
        for action in (self.write_selected, self.write_all, self.discard):
            action.setEnabled(has_photos and not busy)
        for action in (self.export_csv, self.export_json):
            action.setEnabled(has_photos)

    def shortcuts(self) -> list[str]:
        """Every action's key and name, then the keys of the text fields and the grid, for the shortcuts window."""
        return [f"{a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)}: {a.text().replace('&', '')}"
                for a in self.all.values() if not a.shortcut().isEmpty()] + [
            "Ctrl+Backspace (in text): delete the word before the cursor", "Ctrl+Z (in the caption): undo typing",
            "Esc (in search): clear the search", "Double-click a photo: edit its caption"]
