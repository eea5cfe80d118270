"""The left side of the window: the search bar over the thumbnail grid, and which photos are selected."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QVBoxLayout, QWidget

from desktop_app.gui.browse import Browse
from desktop_app.gui.panels import SearchBar, photo_grid
from desktop_app.gui.photo_model import PathRole, PhotoFilter, PhotoListModel
from desktop_app.gui.session import PhotoItem, Session

SELECT = QItemSelectionModel.SelectionFlag.ClearAndSelect


class BrowserPane(QWidget):
    """Search bar and grid over the session's photos (a list model behind a filtering, sorting proxy)."""

    current_changed = Signal(object)  # the photo now current in the grid (None: none)
    shown_changed = Signal()  # a search, filter or sort changed what the grid shows

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.photos = PhotoListModel(session, self)
        self.filter = PhotoFilter(session, self)
        self.filter.setSourceModel(self.photos)
        self.search_bar = SearchBar()
        self.search = self.search_bar.search
        self.grid = photo_grid()
        self.grid.setModel(self.filter)
        self.grid.selectionModel().currentChanged.connect(lambda current, _: self.current_changed.emit(self.item_at(current)))
        self.search_bar.sort.currentIndexChanged.connect(
            lambda _: (self.filter.set_order(self.search_bar.sort.currentData()), self.shown_changed.emit()))
        for signal in (self.filter.modelReset, self.filter.layoutChanged, self.filter.rowsRemoved):
            signal.connect(lambda *_: self.shown_changed.emit())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search_bar)
        layout.addWidget(self.grid)

    def follow(self, browse: Browse) -> None:
        """Search words, library box and filter go to ``browse``; what it allows, the grid shows."""
        bar = self.search_bar
        self.search.textChanged.connect(browse.search)
        bar.whole_library.toggled.connect(lambda checked: browse.search(self.search.text(), checked))
        bar.show_only.currentIndexChanged.connect(lambda _: browse.set_kind(bar.kind()))
        browse.allowed_changed.connect(lambda allowed: (self.filter.set_allowed(allowed), self.shown_changed.emit()))
        browse.kind_changed.connect(lambda kind: (self.filter.set_kind(kind), self.shown_changed.emit()))

    def set_menu(self, actions: list[QAction], edit_caption) -> None:
        """The grid's context menu: these actions, then Edit Caption."""
        def show(position) -> None:
            menu = QMenu(self)
            for action in actions:
                menu.addAction(action)
            menu.addSeparator()
            menu.addAction("Edit Caption", edit_caption)
            menu.exec(self.grid.viewport().mapToGlobal(position))
        self.grid.customContextMenuRequested.connect(show)

    def item_at(self, index: QModelIndex) -> PhotoItem | None:
        return self.session.item(Path(index.data(PathRole))) if index.isValid() else None

    def current_item(self) -> PhotoItem | None:
        return self.item_at(self.grid.currentIndex())

    def selected_items(self) -> list[PhotoItem]:
        rows = sorted(self.filter.mapToSource(i).row() for i in self.grid.selectionModel().selectedIndexes())
        return [self.photos.items[r] for r in rows]

    def select(self, index: QModelIndex) -> None:
        """This photo alone selected and current, in sight."""
        self.grid.selectionModel().setCurrentIndex(index, SELECT)
        self.grid.scrollTo(index)

    def select_first(self) -> bool:
        """The first photo shown, when none is current; True if it was selected."""
        if self.grid.currentIndex().isValid() or not self.filter.rowCount():
            return False
        self.select(self.filter.index(0, 0))
        return True

    def select_next(self) -> None:
        """The photo after the current one (the first when none is current), if there is one."""
        current = self.grid.currentIndex()
        following = self.filter.index(current.row() + 1, 0) if current.isValid() else self.filter.index(0, 0)
        if following.isValid():
            self.select(following)

    def select_path(self, path: Path) -> None:
        """Select this photo in the grid (widening the search and filter if they hide it)."""
        item = self.session.item(Path(path))
        if item is None:
            return
        row = self.photos.items.index(item)
        proxy = self.filter.mapFromSource(self.photos.index(row))
        if not proxy.isValid():
            self.search.clear()
            self.search_bar.show_only.setCurrentIndex(0)
            proxy = self.filter.mapFromSource(self.photos.index(row))
        self.select(proxy)
