"""What a screen reader needs beyond accessible names: announcements, labels read as meant, a Qt workaround.

Checked through AT-SPI (the bus Orca reads) by tests/test_accessibility.py.
"""

from __future__ import annotations

from PySide6 import QtGui
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QAccessibleWidget, QLabel, QWidget

_Announcement = getattr(QtGui, "QAccessibleAnnouncementEvent", None)  # Qt >= 6.8


def announce(widget: QWidget, message: str) -> None:
    """Have a screen reader say ``message`` now, politely (after what it is saying): the end of a run, a
    search's count. On Qt before 6.8 there is no such event; the message stays readable in the status bar."""
    if message and _Announcement is not None and QAccessible.isActive():
        QAccessible.updateAccessibility(_Announcement(widget, message))


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


def _factory(key: str, obj) -> QAccessibleWidget | None:
    return _DockTabs(obj, QAccessible.Role.PageTabList) if key == "QMainWindowTabBar" else None


QAccessible.installFactory(_factory)  # PySide keeps what the factory returns alive until the app ends
