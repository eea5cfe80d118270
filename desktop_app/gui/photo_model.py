"""The photos of the open folder as a Qt list model, with lazily loaded, cached thumbnails."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import (QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, QRunnable,
                            QSortFilterProxyModel, Qt, QThreadPool, Signal)
from PySide6.QtGui import QColor, QIcon, QImage, QImageReader, QPainter, QPixmap

from desktop_app.metadata.record import MACHINE, PERSON

THUMB = 160
PathRole = Qt.ItemDataRole.UserRole + 1


@dataclass
class PhotoItem:
    path: Path
    caption: str = ""  # what the app shows (may be unsaved)
    source: str = ""  # MACHINE, PERSON or "" (none / another tool)
    saved_caption: str = ""  # what the photo's metadata holds
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    attention: np.ndarray | None = None
    score: float | None = None
    error: str = ""

    @property
    def unsaved(self) -> bool:
        return bool(self.caption) and self.caption != self.saved_caption


class _ThumbnailSignals(QObject):
    done = Signal(str, QImage)


class _ThumbnailJob(QRunnable):
    """Decode a thumbnail off the UI thread; JPEGs decode at reduced scale (QImageReader's scaled size)."""

    def __init__(self, path: Path, signals: _ThumbnailSignals):
        super().__init__()
        self.path, self.signals = path, signals

    def run(self) -> None:
        reader = QImageReader(str(self.path))
        reader.setAutoTransform(True)
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > THUMB:
            reader.setScaledSize(size.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if not image.isNull() and max(image.width(), image.height()) > THUMB:
            image = image.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        self.signals.done.emit(str(self.path), _centred_square(image))


def _centred_square(image: QImage) -> QImage:
    """The thumbnail centred on a transparent THUMB x THUMB square: every cell of the grid
    then has the same geometry, so names line up and none is pushed out of its cell."""
    if image.isNull():
        return image
    square = QImage(THUMB, THUMB, QImage.Format.Format_ARGB32_Premultiplied)
    square.fill(Qt.GlobalColor.transparent)
    painter = QPainter(square)
    painter.drawImage((THUMB - image.width()) // 2, (THUMB - image.height()) // 2, image)
    painter.end()
    return square


class PhotoListModel(QAbstractListModel):
    """One row per photo. Thumbnails are requested only when a row is painted, and kept once made."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.items: list[PhotoItem] = []
        self._row: dict[Path, int] = {}
        self._thumbs: dict[Path, QIcon] = {}
        self._requested: set[Path] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._signals = _ThumbnailSignals()
        self._signals.done.connect(self._thumbnail_ready)
        placeholder = QPixmap(THUMB, THUMB)
        placeholder.fill(QColor("#d0d0d0"))
        self._placeholder = QIcon(placeholder)

    def set_photos(self, items: list[PhotoItem]) -> None:
        self._pool.clear()
        self.beginResetModel()
        self.items = items
        self._row = {item.path: i for i, item in enumerate(items)}
        self._thumbs.clear()
        self._requested.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return ("● " if item.unsaved else "") + item.path.name
        if role == Qt.ItemDataRole.DecorationRole:
            if item.path not in self._thumbs and item.path not in self._requested:
                self._requested.add(item.path)
                self._pool.start(_ThumbnailJob(item.path, self._signals))
            return self._thumbs.get(item.path, self._placeholder)
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            state = " (unsaved)" if item.unsaved else ""
            who = {PERSON: ", written by a person", MACHINE: ", machine caption"}.get(item.source, "")
            text = item.error and f"Error: {item.error}" or item.caption or "no caption yet"
            return f"{item.path.name}: {text}{who}{state}"
        if role == Qt.ItemDataRole.AccessibleDescriptionRole:
            return item.caption or "no caption yet"
        if role == Qt.ItemDataRole.ForegroundRole and item.error:
            return QColor("#b00020")
        if role == PathRole:
            return str(item.path)
        return None

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        row = self._row.get(Path(path))
        if row is None:
            return
        self._thumbs[Path(path)] = QIcon(QPixmap.fromImage(image)) if not image.isNull() else self._placeholder
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def thumbnails_loaded(self) -> int:
        return len(self._thumbs)

    def thumbnails_requested(self) -> int:
        """Thumbnails the view has asked for so far (the rows it has painted)."""
        return len(self._requested)

    def item(self, path: Path) -> PhotoItem | None:
        row = self._row.get(Path(path))
        return None if row is None else self.items[row]

    def refresh(self, *paths: Path) -> None:
        """Repaint these photos' rows: one signal for the span they cover, however many."""
        rows = [self._row[Path(p)] for p in paths if Path(p) in self._row]
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)))


class SearchFilter(QSortFilterProxyModel):
    """Shows only the photos a search matched (all photos when there is no search)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._allowed: set[str] | None = None

    def set_allowed(self, paths: set[str] | None) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10
            self.beginFilterChange()
            self._allowed = paths
            self.endFilterChange()
        else:
            self._allowed = paths
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent) -> bool:
        if self._allowed is None:
            return True
        return self.sourceModel().index(row, 0, parent).data(PathRole) in self._allowed
