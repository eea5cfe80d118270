"""The window's frame: the two sides (grid | photo and caption) and the docks below them (Problems and the
library search's results, tabbed, Problems in front)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QSplitter, QWidget

from desktop_app.gui.panels import LibraryResults, ProblemsList
from desktop_app.gui.session import Problem


def tab_order(chain: list[QWidget]) -> None:
    """Tab goes through these widgets in this order."""
    for a, b in zip(chain, chain[1:]):
        QWidget.setTabOrder(a, b)


def side_by_side(left: QWidget, right: QWidget) -> QSplitter:
    """The grid beside the photo and its caption, 3:2; the splitter's name keys its remembered state."""
    splitter = QSplitter()
    splitter.setObjectName("main")
    splitter.addWidget(left)
    splitter.addWidget(right)
    splitter.setStretchFactor(0, 3)
    splitter.setStretchFactor(1, 2)
    return splitter


def add_dock(window: QMainWindow, title: str, name: str, widget: QWidget) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    return dock


class Docks:
    """``problems_panel`` in ``problems_dock``, ``library_results`` in ``library_dock`` (hidden until a search)."""

    def __init__(self, window: QMainWindow):
        self.problems_panel = ProblemsList()
        self.problems_dock = add_dock(window, "Problems", "problems", self.problems_panel)
        window.resizeDocks([self.problems_dock], [130], Qt.Orientation.Vertical)
        self.library_results = LibraryResults()
        self.library_dock = add_dock(window, "Library search", "library", self.library_results)
        window.tabifyDockWidget(self.problems_dock, self.library_dock)
        self.problems_dock.raise_()
        self.library_dock.hide()

    def show_problems(self, problems: list[Problem], run: str, to_front: bool) -> None:
        """The problems; brought to the front if asked (unless library hits are showing)."""
        self.problems_panel.show_problems(problems, run)
        if to_front and not self.library_results.count():
            self.problems_dock.raise_()

    def show_library_hits(self, hits: list, asked: bool) -> None:
        """The hits; the dock comes to the front when a person searched (not when the hits were refreshed)."""
        self.library_results.show_hits(hits)
        if asked:
            self.library_dock.show()
            self.library_dock.raise_()
