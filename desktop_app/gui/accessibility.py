"""What a screen reader needs beyond accessible names: announcements, labels read as meant, Qt workarounds.

Checked through AT-SPI (the bus Orca reads) by tests/test_accessibility.py.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, QEvent, QItemSelectionModel, QObject, Qt, QTimer
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (QAccessibleWidget, QApplication, QComboBox, QLabel, QPlainTextEdit, QTextEdit,
                               QWidget)


class _Notice(QLabel):
    """What ``announce`` shows: an empty 1 px label a screen reader gets as a notification named by the message.
    Orca reads a notification as it shows ("notification wrote 5 photos"); Qt's announcement event (Qt >= 6.8) is
    newer than Orca 43 (Debian 12), which does not listen for it: the end of a run went unsaid. Only one of the
    two is sent, or a newer Orca would say it twice."""

    def __init__(self, window: QWidget, message: str, said_at: float):
        super().__init__(window)
        self.setObjectName("photocaption_notice")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setGeometry(0, 0, 1, 1)
        self.setAccessibleName(message)
        self.said_at = said_at


REPEAT_SECONDS = 2.0  # the same message again within this is not said again (the status bar may set it twice)


def announce(widget: QWidget, message: str) -> None:
    """Have a screen reader say ``message`` now, politely (after what it is saying): the end of a run, a search's
    count. The message stays readable where it is shown (the status bar); nothing is done without a reader."""
    if not message or not _reader_active():
        return
    window = widget.window()
    old = window.findChild(_Notice, "photocaption_notice", Qt.FindChildOption.FindDirectChildrenOnly)
    now = time.monotonic()
    if old is not None:
        if old.accessibleName() == message and now - old.said_at < REPEAT_SECONDS:
            return
        old.setParent(None)  # a new node each time: Orca read a reused one twice (its new name, then its showing)
        old.deleteLater()
    notice = _Notice(window, message, now)
    notice.show()
    notice.lower()


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
    """A screen reader reads a multi-line field that gets the focus by the line the caret is on: Orca said
    "Caption: text. shuttle, holding her white helmet." for a caption wrapped on three lines. While such a field
    has the focus and its text wraps, its accessible description is its whole text, which Orca reads after that
    line; the field's own description comes back when the focus leaves or the person starts typing. (An
    announcement would be gentler, but Orca 43 does not listen for them.) One line, or no screen reader: nothing."""

    def __init__(self, app: QApplication):
        super().__init__(app)
        self._field: QPlainTextEdit | QTextEdit | None = None
        self._own = ""  # the field's description before
        self._whole = ""  # what was set
        app.focusChanged.connect(self._focused)

    def _focused(self, old: QWidget | None, new: QWidget | None) -> None:
        self.restore()
        if isinstance(new, (QPlainTextEdit, QTextEdit)) and _reader_active():
            text = new.toPlainText().strip()
            if text and visual_lines(new) > 1:
                self._field, self._own, self._whole = new, new.accessibleDescription(), text
                new.setAccessibleDescription(text)
                new.textChanged.connect(self.restore)

    def restore(self) -> None:
        field, self._field = self._field, None
        if field is None:
            return
        try:
            field.textChanged.disconnect(self.restore)
            if field.accessibleDescription() == self._whole:  # not set anew meanwhile (another photo shown)
                field.setAccessibleDescription(self._own)
        except (RuntimeError, TypeError):  # the field is gone
            pass


def install(app: QApplication) -> None:
    """What a screen reader needs app-wide (start_qt calls this): the accessibility factory (dock tabs, combo
    boxes, notices) and the whole of a wrapped field read on focus."""
    _install_factory()
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
    focus beside the control that had it. The current item is set again as the list opens, where the arrow keys
    start (Qt left it on the first item). And a choice changed on the closed box is said (``_say_choice``)."""

    def __init__(self, box: QComboBox):
        super().__init__(box)
        self.box = box
        self._said = ""  # the description set here, if the box has it
        self._closing = False
        box.currentIndexChanged.connect(self.unfocus)
        box.currentIndexChanged.connect(self._say_choice)
        box.view().installEventFilter(self)
        box.installEventFilter(self)
        self.unfocus()

    def _say_choice(self) -> None:
        """A choice changed with the arrow keys on the closed box is otherwise silent (Orca 43 ignores the value
        change Qt sends): the focused box's description becomes the choice, a change Orca reads out. Only on a box
        with no description of its own."""
        box = self.box
        if self._closing or box.view().isVisible() or not box.hasFocus():
            return
        if box.accessibleDescription() in ("", self._said):
            self._said = box.currentText()
            box.setAccessibleDescription(self._said)

    def _closed(self) -> None:
        """The list is closed and the choice made."""
        self._closing = False
        self.unfocus()

    def _forget(self) -> None:
        """The choice said above is no description of the box: gone when the box loses the focus or opens."""
        if self._said and self.box.accessibleDescription() == self._said:
            self.box.setAccessibleDescription("")
        self._said = ""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.box:
            if event.type() == QEvent.Type.FocusOut:
                self._forget()
            return False
        if event.type() == QEvent.Type.Hide:
            self._closing = True  # a choice made now was made in the list, and is read as the box gets the focus
            QTimer.singleShot(0, self._closed)
        elif event.type() == QEvent.Type.Show:  # opening: the choice is current, where the arrow keys start
            self._forget()  # the open list says its items itself; back on the box, the reader reads the choice
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
    if key == "_Notice":
        return QAccessibleWidget(obj, QAccessible.Role.Notification)
    if key == "QComboBox" and isinstance(obj, QComboBox):
        keep_closed_list_unfocused(obj)  # then Qt goes on to make the box's own accessible interface
    return None


def keep_closed_list_unfocused(box: QComboBox) -> None:
    """``_ClosedListUnfocused`` on ``box``, once: done the first time a screen reader asks about a combo box, and
    (theme.FocusRings) the first time one gets the focus, so its list opens on the current choice for everyone."""
    if not box.property("photocaption_list_unfocused"):
        box.setProperty("photocaption_list_unfocused", True)
        _ClosedListUnfocused(box)  # parented to the box


_factory_installed = False


def _install_factory() -> None:
    """``_factory`` in Qt's list, once the application exists: a factory PySide installs before it is never
    called, nor is any installed after (this module is imported before start_qt makes the application)."""
    global _factory_installed
    if not _factory_installed and QCoreApplication.instance() is not None:
        QAccessible.installFactory(_factory)  # PySide keeps what the factory returns alive until the app ends
        _factory_installed = True


_install_factory()  # imported once the application is there (tests); else start_qt does it (install)
