"""What the grid shows of the open folder, and the library search: a controller with no widget.

The window hands it the search words, the "show only" filter and whether the whole library is searched;
it says which photos may show (``allowed``), what to tell the person (``message``), and the library's
hits (``library_hits``). The folder's own search is quick (the index answers by FTS5, drafts are matched
here); the library search runs off the UI thread, and a result that arrives after the words changed or
another folder was opened is dropped.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.gui.background import Background
from desktop_app.gui.messages import count_of
from desktop_app.gui.session import ALL, Session


class Browse(QObject):
    allowed_changed = Signal(object)  # set of paths the search lets through, None: no search
    kind_changed = Signal(str)  # the "show only" filter
    library_hits = Signal(list, bool)  # [IndexedPhoto] of the latest library search (for the folder still open),
    # and whether a person asked for it (not a refresh while captions arrive)
    library_cleared = Signal()
    message = Signal(str, int)  # status text, milliseconds

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.text, self.kind, self.whole_library = "", ALL, False
        self.allowed: set[Path] | None = None
        self.searcher = Background(1, self)
        self.searcher.done.connect(self._hits_arrived)
        self._asked = 0  # the latest library search: older answers are dropped
        session.reset.connect(self.forget_library_search)

    def shown(self) -> int:
        """How many photos the grid shows now (what the search allows, of the kind the filter asks for)."""
        return sum(1 for item in self.session.items
                   if (self.allowed is None or item.path in self.allowed) and Session.shown_by(item, self.kind))

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        self.kind_changed.emit(kind)
        self.message.emit(f"{count_of(self.shown(), 'photo')} shown", 3000)  # heard, too

    def search(self, text: str, whole_library: bool | None = None) -> None:
        """Show the photos of this folder matching ``text`` (drafts by their draft); with the whole library,
        search every indexed folder too, in the background."""
        self.text = text
        if whole_library is not None:
            self.whole_library = whole_library
        self.allowed = self.session.matching(text)
        self.allowed_changed.emit(self.allowed)
        if self.whole_library and self.allowed is not None:
            self.search_library(text)
            self.message.emit(f"{count_of(self.shown(), 'photo')} match here; searching the library…", 3000)
        else:
            self.forget_library_search()
            self.library_cleared.emit()
            if self.allowed is not None:
                self.message.emit(f"{count_of(self.shown(), 'photo')} match", 3000)

    def refresh(self) -> None:
        """Search again with the same words (captions arrived or were written)."""
        if self.text:
            self.search(self.text)

    def refresh_library(self) -> None:
        """The library search again, quietly (captions arriving now are found too)."""
        if self.whole_library and self.allowed is not None:
            self.search_library(self.text, asked=False)

    def search_library(self, text: str, asked: bool = True) -> None:
        """Photos of every indexed folder matching ``text``, off the UI thread; ``library_hits`` when found."""
        self._asked += 1
        self.searcher.run((self._asked, self.session.folder, asked), lambda: self.session.library_hits(text))

    @Slot()
    def forget_library_search(self) -> None:
        """A library search still running answers nobody now."""
        self._asked += 1

    @Slot(object, object, object)
    def _hits_arrived(self, tag: tuple, hits: list | None, error: Exception | None) -> None:
        number, folder, asked = tag
        if (number, folder) != (self._asked, self.session.folder):
            return  # newer words, or another folder: this answer is stale
        if error is not None:
            self.message.emit(f"library search failed: {error}", 8000)
            return
        self.library_hits.emit(hits, asked)
        if asked:
            self.message.emit(f"{count_of(self.shown(), 'photo')} match here, {len(hits)} in the library", 3000)
