"""The session's photos as a Qt list model (lazily loaded, cached thumbnails with each photo's state drawn
on them as badges) and the proxy that filters and sorts them."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import (QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, QRect, QRunnable,
                            QSortFilterProxyModel, Qt, QThreadPool, Signal)
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QImageReader, QPainter, QPixmap

from desktop_app.gui import theme
from desktop_app.gui.session import ALL, SORT_NAME, PhotoItem, Session

THUMB = 160
PathRole = Qt.ItemDataRole.UserRole + 1
BadgesRole = Qt.ItemDataRole.UserRole + 2
READ_BADGES = {"machine": "machine caption", "person": "caption by a person", "other tool": "caption from another tool"}
BADGE_COLOURS = {"unreadable": "#6d4c41", "failed": "#b00020", "unsaved": "#e65100", "needs review": "#8e24aa",
                 "captioned": "#2e7d32", "person": "#1565c0", "machine": "#455a64", "other tool": "#5d4037",
                 "uncaptioned": "#757575"}
FAILED_TEXT = "#b00020"
# High contrast: every badge yellow on black with a yellow edge (19.6:1, seen on light and dark thumbnails alike).
HIGH_CONTRAST_BADGE = ("#000000", "#ffff00")


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
    """One row per photo of the session. Thumbnails are requested only when a row is painted, and kept once made."""

    DECORATED_KEPT = 400  # thumbnails with badges kept ready: a few screenfuls

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
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
        broken = QPixmap(THUMB, THUMB)
        broken.fill(QColor("#f3e5e5"))
        painter = QPainter(broken)
        painter.setPen(QColor(FAILED_TEXT))
        painter.drawText(broken.rect(), Qt.AlignmentFlag.AlignCenter, "cannot open\nthis file")
        painter.end()
        self._broken = QIcon(broken)
        self._decorated: OrderedDict[Path, tuple[tuple, QIcon]] = OrderedDict()
        session.reset.connect(lambda: self.set_photos(session.items))
        session.changed.connect(lambda paths: self.refresh(*paths))

    def set_photos(self, items: list[PhotoItem]) -> None:
        self._pool.clear()
        self.beginResetModel()
        self.items = list(items)
        self._row = {item.path: i for i, item in enumerate(items)}
        self._thumbs.clear()
        self._decorated.clear()
        self._requested.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.path.name
        if role == Qt.ItemDataRole.DecorationRole:
            if item.path not in self._thumbs and item.path not in self._requested:
                self._requested.add(item.path)
                self._pool.start(_ThumbnailJob(item.path, self._signals))
            return self._with_badges(item, self._thumbs.get(item.path, self._placeholder))
        if role == Qt.ItemDataRole.ToolTipRole:
            problem = item.write_error or item.error or item.skipped
            return (f"{item.path.name}: {item.caption or 'no caption yet'} ({', '.join(item.badges())})"
                    + (f"\n{problem}" if problem else ""))
        if role == Qt.ItemDataRole.AccessibleTextRole:  # read once, state before caption; no description repeats it
            problem = item.write_error or item.error or item.skipped
            states = ", ".join(READ_BADGES.get(b, b) for b in item.badges())
            return f"{item.path.name}, {states}: {item.caption or 'no caption yet'}" + (f". {problem}" if problem else "")
        if role == Qt.ItemDataRole.ForegroundRole and item.failed and not theme.is_high_contrast():
            return QColor(FAILED_TEXT)  # (high contrast keeps its yellow-on-black text: the badge says "failed")
        if role == BadgesRole:
            return item.badges()
        if role == PathRole:
            return str(item.path)
        return None

    def _with_badges(self, item: PhotoItem, icon: QIcon) -> QIcon:
        """The thumbnail with the photo's state drawn on it, made when the state changes and kept for the
        rows on screen (LRU). Drawn here, not by a Python item delegate: a delegate's paint calls back into
        Python once per role per cell, each waiting for the GIL that busy worker threads hold (45 ms a repaint)."""
        badges = tuple(item.badges())
        key = (item.path, badges, icon.cacheKey(), theme.is_high_contrast())
        cached = self._decorated.get(item.path)
        if cached is not None and cached[0] == key:
            self._decorated.move_to_end(item.path)
            return cached[1]
        pixmap = icon.pixmap(THUMB, THUMB)
        draw_badges(pixmap, badges)
        decorated = QIcon(pixmap)
        self._decorated[item.path] = (key, decorated)
        if len(self._decorated) > self.DECORATED_KEPT:
            self._decorated.popitem(last=False)
        return decorated

    def _thumbnail_ready(self, path: str, image: QImage) -> None:
        row = self._row.get(Path(path))
        if row is None:
            return
        item = self.items[row]
        if image.isNull():
            self._thumbs[item.path] = self._broken
            if not item.unreadable:
                item.unreadable = True
                self.session.changed.emit([item.path])  # counts and filters learn of it too
        else:
            self._thumbs[item.path] = QIcon(QPixmap.fromImage(image))
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


class PhotoFilter(QSortFilterProxyModel):
    """What the grid shows: a state filter ("only unsaved"), the search's matches, and the sort order."""

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.kind = ALL
        self.order = SORT_NAME
        self._allowed: set[Path] | None = None
        self.setDynamicSortFilter(False)  # re-filtered on request: a photo being edited must not vanish mid-edit

    def _change(self, apply) -> None:
        """Filter again, and sort again by state (states change while the list is shown)."""
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10
            self.beginFilterChange()
            apply()
            self.endFilterChange()
        else:
            apply()
            self.invalidateFilter()
        if self.order != SORT_NAME:
            self.sort(0)

    def set_allowed(self, paths: set[Path] | None) -> None:
        self._change(lambda: setattr(self, "_allowed", paths))

    def set_kind(self, kind: str) -> None:
        self._change(lambda: setattr(self, "kind", kind))

    def refilter(self) -> None:
        self._change(lambda: None)

    def set_order(self, order: str) -> None:
        self.order = order
        self.invalidate()
        self.sort(0)

    def filterAcceptsRow(self, row: int, parent) -> bool:
        items = self.sourceModel().items
        if row >= len(items):
            return False
        item = items[row]
        if self._allowed is not None and item.path not in self._allowed:
            return False
        return Session.shown_by(item, self.kind)

    def lessThan(self, left, right) -> bool:
        items = self.sourceModel().items
        a, b = items[left.row()], items[right.row()]
        if self.order == SORT_NAME:
            return (a.path.name.lower(), str(a.path)) < (b.path.name.lower(), str(b.path))
        return self.session.state_key(a) < self.session.state_key(b)


def draw_badges(pixmap: QPixmap, badges: tuple[str, ...]) -> None:
    """A photo's state as small coloured labels in the thumbnail's top-left corner."""
    if not badges:
        return
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont()
    font.setPixelSize(11)
    font.setBold(True)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    y = 4
    high_contrast = theme.is_high_contrast()
    for badge in badges[:3]:
        box = QRect(4, y, metrics.horizontalAdvance(badge) + 8, metrics.height() + 2)
        if high_contrast:
            painter.setPen(QColor(HIGH_CONTRAST_BADGE[1]))
            painter.setBrush(QColor(HIGH_CONTRAST_BADGE[0]))
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(BADGE_COLOURS.get(badge, "#555555")))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(HIGH_CONTRAST_BADGE[1] if high_contrast else "white"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, badge)
        y += box.height() + 2
    painter.end()
