"""What a screen reader needs beyond accessible names: announcements, labels read as meant, a Qt workaround.

Checked through AT-SPI (the bus Orca reads) by tests/test_accessibility.py.
"""

from __future__ import annotations

from PySide6 import QtGui
from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, QTimer
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (QAccessibleWidget, QApplication, QComboBox, QLabel, QPlainTextEdit, QTextEdit,
                               QWidget)

_Announcement = getattr(QtGui, "QAccessibleAnnouncementEvent", None)  # Qt >= 6.8


def announce(widget: QWidget, message: str) -> None:
    """Have a screen reader say ``message`` now, politely (after what it is saying): the end of a run, a
    search's count. On Qt before 6.8 there is no such event; the message stays readable in the status bar."""
    if message and _Announcement is not None and QAccessible.isActive():
        QAccessible.updateAccessibility(_Announcement(widget, message))


def _reader_active() -> bool:
    return QAccessible.isActive()


def visual_lines(edit: QPlainTextEdit | QTextEdit) -> int:
    """How many lines ``edit`` shows its text on, wrapped as it is now."""
    lines, block = 0, edit.document().begin()
    while block.isValid():
        layout = block.layout()
        lines += max(1, layout.lineCount()) if layout is not None else 1
        block = block.next()
    return lines


class WholeTextOnFocus(QObject):
    """A screen reader reads a multi-line field that gets the focus by the line the caret is on: Orca said "Caption
    of the selected photo, text, with a toy." for a caption wrapped on two lines (the caret at its end). When such
    a field's text wraps, its whole text is announced too, politely, after that line: the listener hears the
    caption once in full. One line, or no screen reader: nothing."""

    def __init__(self, app: QApplication):
        super().__init__(app)
        app.focusChanged.connect(self._focused)

    def _focused(self, old: QWidget | None, new: QWidget | None) -> None:
        if isinstance(new, (QPlainTextEdit, QTextEdit)) and _reader_active():
            text = new.toPlainText().strip()
            if text and visual_lines(new) > 1:
                announce(new, text)


def install(app: QApplication) -> None:
    """What a screen reader needs app-wide (start_qt calls this): the whole of a wrapped field read on focus."""
    if getattr(app, "_photocaption_whole_text", None) is None:
        app._photocaption_whole_text = WholeTextOnFocus(app)


class SpokenLabel(QLabel):
    """A label whose " · " separators a screen reader reads as a pause: Orca said "5 unsaved middle dot
    5 needs review". The name follows the text; set the text with setText."""

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setAccessibleName(text.replace(" · ", "; "))


class _DockTabs(QAccessibleWidget):
    """The tabs of docked panels (Problems, Library search) as one node named by the tab in front. Qt's own
    tab nodes mark the front tab "focused" whatever has the focus, so Orca said "Problems page tab" while
    the photo grid had it; the tabs are also in the View menu."""

    def text(self, kind):
        if kind == QAccessible.Text.Name:
            bar = self.widget()
            return bar.tabText(bar.currentIndex())
        return super().text(kind)


class _ClosedListUnfocused(QObject):
    """A combo box's list, while closed, has no current item. Qt marks a list's current item "focused" on the
    accessibility bus even while the list is hidden, so every combo box of the Settings dialog claimed the
    focus beside the control that had it. Qt sets the current item again as the list opens (the arrow keys
    start from it; it did not: the list opened on its first item, so this sets it as the list shows)."""

    def __init__(self, box: QComboBox):
        super().__init__(box)
        self.box = box
        box.currentIndexChanged.connect(self.unfocus)
        box.view().installEventFilter(self)
        self.unfocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Hide:
            QTimer.singleShot(0, self.unfocus)  # once the list is closed and the choice made
        elif event.type() == QEvent.Type.Show:  # opening: the choice is current, where the arrow keys start
            box = self.box
            current = box.model().index(box.currentIndex(), box.modelColumn(), box.rootModelIndex())
            if current.isValid() and box.view().selectionModel() is not None:
                box.view().selectionModel().setCurrentIndex(
                    current, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        return False

    def unfocus(self) -> None:
        try:
            view = self.box.view()
        except RuntimeError:  # the box is gone
            return
        if not view.isVisible() and view.selectionModel() is not None:
            view.selectionModel().clearCurrentIndex()


def _factory(key: str, obj) -> QAccessibleWidget | None:
    if key == "QMainWindowTabBar":
        return _DockTabs(obj, QAccessible.Role.PageTabList)
    if key == "QComboBox" and isinstance(obj, QComboBox):
        keep_closed_list_unfocused(obj)  # then Qt goes on to make the box's own accessible interface
    return None


def keep_closed_list_unfocused(box: QComboBox) -> None:
    """``_ClosedListUnfocused`` on ``box``, once: done the first time a screen reader asks about a combo box, and
    (theme.FocusRings) the first time one gets the focus, so its list opens on the current choice for everyone."""
    if not box.property("photocaption_list_unfocused"):
        box.setProperty("photocaption_list_unfocused", True)
        _ClosedListUnfocused(box)  # parented to the box


QAccessible.installFactory(_factory)  # PySide keeps what the factory returns alive until the app ends
