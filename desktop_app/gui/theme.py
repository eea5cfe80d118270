"""How the app looks to the people who need it to look a certain way (issue 29).

- A focus ring: whatever has the keyboard focus gets a ring in the palette's highlight colour, 1 px outside
  its edge and 2 px inside, in every window, whatever the style draws (Fusion's own focus marks are a
  faint tint on a line edit and a dotted rectangle on a check box, and nothing at all on a list view).
- High contrast: black, white and yellow, every text on its background at 7:1 or more (WCAG AAA), with
  white borders drawn where Fusion derives them from the window colour (on black they vanish). Asked for
  with ``PHOTOCAPTION_HIGH_CONTRAST=1``, a ``HighContrast`` GTK theme (``GTK_THEME=HighContrast``, also
  ``HighContrastInverse``) or the desktop's own contrast setting as Qt reads it.
- A window that fits the screen: at 2x scale a 1366x768 laptop is 683x384 logical pixels, less than the
  main window's controls need; the editor then goes under the grid and the whole scrolls, so every control
  stays on the screen and Tab scrolls to it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette, QRegion
from PySide6.QtWidgets import (QAbstractScrollArea, QApplication, QComboBox, QDockWidget, QFocusFrame, QMainWindow,
                               QScrollArea, QSplitter, QWidget)

HIGH_CONTRAST_ENV = "PHOTOCAPTION_HIGH_CONTRAST"

RING_OUTSIDE = 1  # px of the ring outside the focused control's edge (clipped where the control meets a window edge)
RING_INSIDE = 2  # px inside its edge, over its own frame: these always show

# ---- focus ring ---------------------------------------------------------------------------------------------


def shown_rect(widget: QWidget, window: QWidget | None = None) -> QRect:
    """The part of ``widget`` that shows in its window (clipped by every widget it is in, as a scroll area's
    viewport clips what it scrolls), in window coordinates."""
    window = window or widget.window()
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        rect &= QRect(parent.mapTo(window, QPoint(0, 0)), parent.size())
        parent = parent.parentWidget()
    return rect & window.rect()


class FocusRing(QFocusFrame):
    """The ring around one window's focused control. A QFocusFrame only so that Qt leaves it out of the
    accessibility tree (a screen reader has nothing to read in it); its geometry is set here, not by Qt's
    QFocusFrame machinery (which would put the ring outside the control, where a 0-margin layout clips it)."""

    def __init__(self, window: QWidget):
        super().__init__(window)
        self.setObjectName("photocaption_focus_ring")
        self.ring = QRect()  # the ring's outer edge, in this widget's coordinates

    def place(self, widget: QWidget | None) -> None:
        """Around ``widget`` (in this ring's window), the part of it that shows; hidden for None."""
        window = self.parentWidget()
        if widget is None or window is None or not widget.isVisible():
            self.hide()
            return
        outer = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size()).adjusted(
            -RING_OUTSIDE, -RING_OUTSIDE, RING_OUTSIDE, RING_OUTSIDE)
        shown = outer & shown_rect(widget.parentWidget(), window) if widget.parentWidget() is not window \
            else outer & window.rect()
        if shown.isEmpty():
            self.hide()
            return
        self.setGeometry(shown)
        self.ring = outer.translated(-shown.topLeft())
        width = RING_OUTSIDE + RING_INSIDE
        self.setMask(QRegion(self.ring).subtracted(QRegion(self.ring.adjusted(width, width, -width, -width))))
        self.show()
        self.raise_()
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        colour = ring_colour(self.palette())
        width = RING_OUTSIDE + RING_INSIDE
        ring = self.ring
        painter.fillRect(QRect(ring.left(), ring.top(), ring.width(), width), colour)
        painter.fillRect(QRect(ring.left(), ring.bottom() - width + 1, ring.width(), width), colour)
        painter.fillRect(QRect(ring.left(), ring.top(), width, ring.height()), colour)
        painter.fillRect(QRect(ring.right() - width + 1, ring.top(), width, ring.height()), colour)


def ring_colour(palette: QPalette) -> QColor:
    """The highlight colour, or the text colour where the highlight stands out less than 3:1 from the window
    (WCAG's least for a focus indicator; a light desktop highlight would)."""
    group = QPalette.ColorGroup.Active
    highlight = palette.color(group, QPalette.ColorRole.Highlight)
    window = palette.color(group, QPalette.ColorRole.Window)
    if contrast_ratio(highlight, window) >= 3:
        return highlight
    return palette.color(group, QPalette.ColorRole.WindowText)


_TRACKED = {QEvent.Type.Move, QEvent.Type.Resize, QEvent.Type.Show, QEvent.Type.Hide, QEvent.Type.ParentChange}


class FocusRings(QObject):
    """Keeps a ring on the focused control of every window: follows the focus, and the control as it (or a
    scroll area it is in) moves, resizes, shows or hides. A control that gets the focus inside a scroll area
    (by Tab, a mnemonic or a click) is scrolled into view first."""

    def __init__(self, app: QApplication):
        super().__init__(app)
        self._widget: QWidget | None = None
        self._watched: list[QWidget] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._place)
        app.focusChanged.connect(self._focus_changed)

    @staticmethod
    def ring_of(window: QWidget, make: bool = True) -> FocusRing | None:
        ring = window.findChild(FocusRing, "photocaption_focus_ring", Qt.FindChildOption.FindDirectChildrenOnly)
        if ring is None and make:
            ring = FocusRing(window)
        return ring

    def _focus_changed(self, old: QWidget | None, new: QWidget | None) -> None:
        for widget in self._watched:
            try:
                widget.removeEventFilter(self)
            except RuntimeError:  # deleted meanwhile
                pass
        self._watched = []
        if old is not None:
            try:
                ring = self.ring_of(old.window(), make=False)
            except RuntimeError:
                ring = None
            if ring is not None and (new is None or new.window() is not old.window()):
                ring.hide()
        self._widget = new if new is not None and not new.isWindow() else None
        if self._widget is None:
            return
        widget = self._widget
        while widget is not None and not widget.isWindow():
            widget.installEventFilter(self)
            self._watched.append(widget)
            widget = widget.parentWidget()
        if isinstance(new, QComboBox):
            from desktop_app.gui.accessibility import keep_closed_list_unfocused
            keep_closed_list_unfocused(new)
        scroll_into_view(self._widget)
        if _parked(self._widget):
            QTimer.singleShot(0, lambda: _pass_focus_on(new, old))
            return
        self._place()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _TRACKED:
            self._timer.start()
        return False

    def _place(self) -> None:
        widget = self._widget
        if widget is None:
            return
        try:
            window = widget.window()
        except RuntimeError:  # deleted
            self._widget = None
            return
        if window.windowType() == Qt.WindowType.Popup:  # a combo box's open list shows its own current item
            return
        ring = self.ring_of(window)
        ring.place(widget)


def _parked(widget: QWidget) -> bool:
    """Whether ``widget`` is nowhere in its window, and no scroll area could bring it there."""
    window = widget.window()
    if QRect(widget.mapTo(window, QPoint(0, 0)), widget.size()).intersects(window.rect()):
        return False
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        if isinstance(parent, QAbstractScrollArea):
            return False
        parent = parent.parentWidget()
    return bool(widget.focusPolicy() & Qt.FocusPolicy.TabFocus)


def _tabbable(widget: QWidget, window: QWidget) -> bool:
    """Whether Tab may stop on ``widget``: a control that shows, or would once scrolled to (it is, then)."""
    if not (widget.window() is window and widget.isVisible() and widget.isEnabled() and widget.focusProxy() is None
            and widget.focusPolicy() & Qt.FocusPolicy.TabFocus):
        return False
    scroll_into_view(widget)
    return not shown_rect(widget, window).isEmpty()


def _pass_focus_on(widget: QWidget, came_from: QWidget | None) -> None:
    """Tab stopped on a control that is nowhere on the screen (Qt parks the tab bar of docks that show one tab
    at -600,-530 and leaves it focusable): on to the next control that shows, the way Tab was going."""
    try:
        if QApplication.focusWidget() is not widget:
            return
        window = widget.window()
        steps_back, w = 0, widget
        while came_from is not None and w is not came_from and steps_back < 1000:
            w, steps_back = w.previousInFocusChain(), steps_back + 1
        steps_on, w = 0, widget
        while came_from is not None and w is not came_from and steps_on < 1000:
            w, steps_on = w.nextInFocusChain(), steps_on + 1
        forward = steps_back <= steps_on
        w = widget
        for _ in range(1000):
            w = w.nextInFocusChain() if forward else w.previousInFocusChain()
            if w is widget:
                return
            if _tabbable(w, window):
                w.setFocus(Qt.FocusReason.TabFocusReason if forward else Qt.FocusReason.BacktabFocusReason)
                return
    except RuntimeError:  # deleted meanwhile
        pass


def scroll_into_view(widget: QWidget) -> None:
    """Every scroll area ``widget`` is in (innermost first) scrolled so that all of it shows, or as much as fits
    (Qt's own scrolling on Tab shows only a text field's cursor)."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea) and parent.widget() is not None and parent.widget().isAncestorOf(widget):
            corner = widget.mapTo(parent.widget(), QPoint(0, 0))
            half_w, half_h = widget.width() // 2, widget.height() // 2
            parent.ensureVisible(corner.x() + half_w, corner.y() + half_h, half_w + 4, half_h + 4)
        if parent.isWindow():
            break
        parent = parent.parentWidget()


# ---- high contrast ------------------------------------------------------------------------------------------

BLACK, WHITE, YELLOW, CYAN = "#000000", "#ffffff", "#ffff00", "#00ffff"
GREY = "#aaaaaa"  # disabled text: 9:1 on black (WCAG exempts it; this still reads)

_ROLES = QPalette.ColorRole
HIGH_CONTRAST_COLOURS = {
    _ROLES.Window: BLACK, _ROLES.WindowText: WHITE,
    _ROLES.Base: BLACK, _ROLES.AlternateBase: "#141414", _ROLES.Text: WHITE, _ROLES.PlaceholderText: "#cccccc",
    _ROLES.Button: BLACK, _ROLES.ButtonText: WHITE, _ROLES.BrightText: YELLOW,
    _ROLES.Highlight: YELLOW, _ROLES.HighlightedText: BLACK, _ROLES.Accent: YELLOW,
    _ROLES.ToolTipBase: BLACK, _ROLES.ToolTipText: YELLOW,
    _ROLES.Link: CYAN, _ROLES.LinkVisited: "#ff99ff",
    _ROLES.Light: WHITE, _ROLES.Midlight: "#c0c0c0", _ROLES.Mid: "#808080", _ROLES.Dark: WHITE, _ROLES.Shadow: WHITE,
}
HIGH_CONTRAST_DISABLED = {
    _ROLES.WindowText: GREY, _ROLES.Text: GREY, _ROLES.ButtonText: GREY, _ROLES.PlaceholderText: GREY,
    _ROLES.Highlight: "#c0c0c0", _ROLES.HighlightedText: BLACK,
}

# Fusion draws borders, check boxes and scroll bars in shades of the window colour: on black, nothing.
HIGH_CONTRAST_SHEET = f"""
QPushButton, QToolButton {{ border: 1px solid {WHITE}; border-radius: 2px; padding: 3px 8px;
    background: {BLACK}; color: {WHITE}; }}
QPushButton:pressed, QPushButton:checked, QToolButton:pressed, QToolButton:checked {{ background: {YELLOW};
    color: {BLACK}; }}
QPushButton:disabled, QToolButton:disabled {{ border-color: {GREY}; color: {GREY}; }}
QLineEdit, QPlainTextEdit, QTextEdit, QAbstractItemView, QAbstractSpinBox {{ border: 1px solid {WHITE}; }}
QComboBox {{ border: 1px solid {WHITE}; padding: 2px 6px; background: {BLACK}; color: {WHITE}; }}
QComboBox::drop-down {{ border-left: 1px solid {WHITE}; width: 16px; }}
QComboBox::down-arrow {{ width: 0; height: 0; border-left: 5px solid {BLACK}; border-right: 5px solid {BLACK};
    border-top: 6px solid {WHITE}; }}
QComboBox QAbstractItemView {{ selection-background-color: {YELLOW}; selection-color: {BLACK}; }}
QCheckBox::indicator, QRadioButton::indicator {{ width: 13px; height: 13px; border: 2px solid {WHITE};
    background: {BLACK}; }}
QCheckBox::indicator:checked, QRadioButton::indicator:checked {{ background: {YELLOW}; }}
QCheckBox::indicator:indeterminate {{ background: {GREY}; }}
QRadioButton::indicator {{ border-radius: 8px; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: {YELLOW}; color: {BLACK}; }}
QMenu {{ border: 1px solid {WHITE}; }}
QMenu::separator {{ height: 1px; background: {WHITE}; margin: 3px 6px; }}
QToolTip {{ border: 1px solid {YELLOW}; color: {YELLOW}; background: {BLACK}; }}
QTabBar::tab {{ border: 1px solid {WHITE}; padding: 3px 10px; background: {BLACK}; color: {WHITE}; }}
QTabBar::tab:selected {{ background: {YELLOW}; color: {BLACK}; }}
QProgressBar {{ border: 1px solid {WHITE}; text-align: center; color: {WHITE}; background: {BLACK}; }}
QProgressBar::chunk {{ background: transparent; border-bottom: 5px solid {YELLOW}; }}
QAbstractSpinBox::up-button, QAbstractSpinBox::down-button {{ width: 16px; border-left: 1px solid {WHITE}; }}
QAbstractSpinBox::up-arrow {{ width: 0; height: 0; border-left: 4px solid {BLACK}; border-right: 4px solid {BLACK};
    border-bottom: 5px solid {WHITE}; }}
QAbstractSpinBox::down-arrow {{ width: 0; height: 0; border-left: 4px solid {BLACK}; border-right: 4px solid {BLACK};
    border-top: 5px solid {WHITE}; }}
QSplitter::handle {{ background: #808080; }}
QScrollBar {{ background: {BLACK}; border: 1px solid {WHITE}; }}
QScrollBar:vertical {{ width: 14px; }}
QScrollBar:horizontal {{ height: 14px; }}
QScrollBar::handle {{ background: {WHITE}; border: 2px solid {BLACK}; }}
QScrollBar::handle:vertical {{ min-height: 24px; }}
QScrollBar::handle:horizontal {{ min-width: 24px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; border: none; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: none; }}
QDockWidget::title {{ border-bottom: 1px solid {WHITE}; padding: 3px; }}
QStatusBar {{ border-top: 1px solid {WHITE}; }}
"""


def wants_high_contrast(environ: Mapping[str, str] | None = None) -> bool:
    """Whether to start in high contrast: ``PHOTOCAPTION_HIGH_CONTRAST`` (1/0) first, then a high-contrast GTK
    theme, then the desktop's contrast preference as Qt reads it (GNOME's high-contrast switch, Windows' and
    macOS' increased contrast; Qt >= 6.10)."""
    env = os.environ if environ is None else environ
    asked = env.get(HIGH_CONTRAST_ENV, "").strip().lower()
    if asked:
        return asked not in ("0", "no", "false", "off")
    if "highcontrast" in env.get("GTK_THEME", "").replace("-", "").replace("_", "").lower():
        return True
    app = QGuiApplication.instance()
    hints = app.styleHints() if app is not None else None
    accessibility = getattr(hints, "accessibility", None)
    preference = getattr(Qt, "ContrastPreference", None)
    if accessibility is not None and preference is not None:
        try:
            return accessibility().contrastPreference() == preference.HighContrast
        except (AttributeError, RuntimeError):
            pass
    return False


def high_contrast_palette() -> QPalette:
    palette = QPalette()
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive, QPalette.ColorGroup.Disabled):
        for role, colour in HIGH_CONTRAST_COLOURS.items():
            palette.setColor(group, role, QColor(colour))
    for role, colour in HIGH_CONTRAST_DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    return palette


def relative_luminance(colour: QColor) -> float:
    """WCAG 2's relative luminance of an sRGB colour."""
    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4
    return 0.2126 * linear(colour.redF()) + 0.7152 * linear(colour.greenF()) + 0.0722 * linear(colour.blueF())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG 2's contrast ratio, 1 to 21."""
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# the roles drawn on each other: background, text
TEXT_PAIRS = [(_ROLES.Window, _ROLES.WindowText), (_ROLES.Base, _ROLES.Text), (_ROLES.AlternateBase, _ROLES.Text),
              (_ROLES.Base, _ROLES.PlaceholderText), (_ROLES.Button, _ROLES.ButtonText),
              (_ROLES.Highlight, _ROLES.HighlightedText), (_ROLES.ToolTipBase, _ROLES.ToolTipText),
              (_ROLES.Base, _ROLES.Link), (_ROLES.Window, _ROLES.Link), (_ROLES.Window, _ROLES.Highlight)]


# ---- applying it ------------------------------------------------------------------------------------------


def apply(app: QApplication, high_contrast: bool | None = None) -> bool:
    """The focus ring, and high contrast when asked (None: as ``wants_high_contrast`` says, now and whenever the
    desktop's contrast setting changes). Returns whether high contrast is on. Call once, before the windows are
    made."""
    if app.property("photocaption_focus_rings") is None:
        app.setProperty("photocaption_focus_rings", True)
        app._photocaption_focus_rings = FocusRings(app)  # parented to the app; the attribute keeps the wrapper
        accessibility = getattr(app.styleHints(), "accessibility", None)
        signal = getattr(accessibility(), "contrastPreferenceChanged", None) if accessibility is not None else None
        if high_contrast is None and signal is not None:
            signal.connect(lambda *_: set_high_contrast(app, wants_high_contrast()))
    on = wants_high_contrast() if high_contrast is None else high_contrast
    set_high_contrast(app, on)
    return on


def is_high_contrast(app: QApplication | None = None) -> bool:
    """Whether high contrast is on: for colours drawn by hand (the grid's badges) to follow it."""
    app = app or QApplication.instance()
    return app is not None and app.styleSheet() == HIGH_CONTRAST_SHEET


def set_high_contrast(app: QApplication, on: bool) -> None:
    if on:
        app.setStyle("Fusion")  # a platform style may ignore the palette
        app.setPalette(high_contrast_palette())
        app.setStyleSheet(HIGH_CONTRAST_SHEET)
    elif app.styleSheet() == HIGH_CONTRAST_SHEET:
        app.setStyleSheet("")
        app.setPalette(app.style().standardPalette())


def remove(app: QApplication) -> None:
    """Undo ``apply`` (for tests, which share one application)."""
    rings = getattr(app, "_photocaption_focus_rings", None)
    if rings is not None:
        app.focusChanged.disconnect(rings._focus_changed)
        for window in app.topLevelWidgets():
            ring = FocusRings.ring_of(window, make=False)
            if ring is not None:
                ring.hide()
                ring.deleteLater()
        rings.deleteLater()
        del app._photocaption_focus_rings
    app.setProperty("photocaption_focus_rings", None)
    set_high_contrast(app, False)


# ---- fitting the screen -----------------------------------------------------------------------------------


def fit_to_screen(window: QMainWindow) -> None:
    """Keep ``window`` and every control of it on its screen. When its controls need more than the screen
    has (2x scale on a laptop): a side-by-side splitter as the central widget is turned top-to-bottom, the
    central widget goes into a scroll area, the docks are made as short as they can be. Then the window is
    sized and moved to fit. A window that fits is left as it is, but for its size and place."""
    available = window.screen().availableGeometry()
    central = window.centralWidget()
    if central is not None and central.objectName() != "fit_scroll":
        if isinstance(central, QSplitter):  # side by side where that fits (its orientation is saved with it)
            central.setOrientation(Qt.Orientation.Horizontal)
            if _needed(window).width() > available.width():
                central.setOrientation(Qt.Orientation.Vertical)
        needed = _needed(window)
        if needed.width() > available.width() or needed.height() > available.height():
            area = QScrollArea()
            area.setObjectName("fit_scroll")
            area.setFrameShape(QScrollArea.Shape.NoFrame)
            area.setWidgetResizable(True)
            area.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to the controls in it (and scrolls to them)
            window.takeCentralWidget()
            area.setWidget(central)
            window.setCentralWidget(area)
            docks = [d for d in window.findChildren(QDockWidget) if not d.isHidden() and not d.isFloating()]
            if docks:
                window.resizeDocks(docks, [d.minimumSizeHint().height() for d in docks], Qt.Orientation.Vertical)
    frame = window.frameGeometry().size() - window.geometry().size()
    least = _needed(window)
    width = min(max(window.width(), least.width()), available.width() - frame.width())
    height = min(max(window.height(), least.height()), available.height() - frame.height())
    window.resize(width, height)
    x = min(max(window.frameGeometry().x(), available.left()), available.right() + 1 - width - frame.width())
    y = min(max(window.frameGeometry().y(), available.top()), available.bottom() + 1 - height - frame.height())
    window.move(x, y)


def _needed(window: QMainWindow) -> QSize:
    """The least size ``window`` can have as its widgets are now."""
    if window.layout() is not None:
        window.layout().invalidate()
        window.layout().activate()
    return window.minimumSizeHint()
