"""The app as a screen reader gets it on Linux: started as a person starts it (``photocaption gui``) in Xvfb,
on an AT-SPI bus of its own, its accessibility tree read through pyatspi (tests/atspi_walker.py), before
after a "Caption All" run and after "Write All to Photos", both invoked through that bus. Orca reads this
same tree; see issue 29."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import show_active

WALKER = Path(__file__).with_name("atspi_walker.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # pyatspi is a Debian package of the system Python
APP = Path(sys.executable).with_name("photocaption")


def missing() -> str:
    """Why this machine cannot run the check (Debian: apt install xvfb xauth dbus-daemon at-spi2-core
    python3-pyatspi), or "" when it can."""
    for tool in ("xvfb-run", "dbus-run-session"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if not Path("/usr/libexec/at-spi-bus-launcher").exists():
        return "at-spi2-core (the AT-SPI bus) not installed"
    if not Path(SYSTEM_PYTHON).exists() or subprocess.run([SYSTEM_PYTHON, "-c", "import pyatspi"],
                                                          capture_output=True).returncode:
        return "python3-pyatspi not installed in the system Python"
    return ""


# On the session bus dbus-run-session makes: the app, then the walker; the app goes when the walker is done.
SESSION = 'app="$1"; shift; "$app" gui "$SAMPLES" & pid=$!; "$@"; status=$?; kill $pid; wait $pid; exit $status'


@pytest.fixture(scope="module")
def trees(pristine_samples, tmp_path_factory):
    """The tree once the photos are listed ("before"), once a Caption All run has ended ("captioned") and once
all are written ("written"); what was announced."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("atspi")
    samples = work / "samples"
    shutil.copytree(pristine_samples, samples)
    (work / "run").mkdir(mode=0o700)
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1", "SAMPLES": str(samples),
           "XDG_CONFIG_HOME": str(work / "config"), "PHOTOCAPTION_INDEX": str(work / "index.sqlite"),
           "XDG_RUNTIME_DIR": str(work / "run")}
    for name in ("WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS"):
        env.pop(name, None)
    run = subprocess.run(["dbus-run-session", "--", "xvfb-run", "-a", "-s", "-screen 0 1366x768x24",  # a laptop's
                          "bash", "-c", SESSION, "session", str(APP),
                          SYSTEM_PYTHON, str(WALKER), "photocaption", "Caption All", "captioned 5",
                          "Write All to Photos", "wrote 5 photos"],
                         capture_output=True, text=True, env=env, timeout=120, cwd=work)
    assert run.stdout.strip(), run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" not in result, result["error"] + "\n" + run.stderr[-3000:]
    return {"before": result["before"], "captioned": result["after"]["Caption All"],
            "written": result["after"]["Write All to Photos"], "announced": result["announced"]}


def named(tree, role, name_part):
    return [n for n in tree if n["role"] == role and name_part in n["name"]]


@pytest.mark.parametrize("when", ["before", "captioned", "written"])
def test_every_control_is_named_and_one_has_the_focus(trees, when):
    tree = trees[when]
    unnamed = [(n["role"], n["description"]) for n in tree if "focusable" in n["states"] and not n["name"].strip()]
    assert unnamed == []
    focused = [(n["role"], n["name"]) for n in tree if "focused" in n["states"]]
    assert len(focused) <= 1, focused


def test_state_and_run_end_are_readable(trees):
    before, after, written = trees["before"], trees["captioned"], trees["written"]
    assert named(before, "label", "5 photos: 5 uncaptioned")  # the status-bar counts, as text
    editor = named(before, "text", "Caption of the selected photo")[0]
    assert editor["labelled_by"] == ["Caption:"] and editor["description"].startswith("No caption yet")
    assert named(after, "label", "5 photos: 5 unsaved; 5 needs review")  # "·" is no "middle dot"
    who = [n for n in after if n["role"] == "label" and n["name"].startswith("written by the model")]
    assert who and "unsaved" in who[0]["name"] and "needs review" in who[0]["name"], who
    assert named(after, "status bar", "captioned 5, skipped 0, failed 0")  # the end of the run
    assert named(written, "status bar", "wrote 5 photos")
    saved = named(written, "label", "saved in the photo (XMP")
    assert saved and saved[0]["name"].startswith("written by the model"), saved
    assert named(written, "label", "5 photos: 5 captioned; 5 needs review")
    for message in ("captioned 5, skipped 0, failed 0", "wrote 5 photos"):  # and said when they happen
        assert any(a.startswith(message) for a in trees["announced"]), trees["announced"]


def test_the_status_bar_is_on_a_laptop_screen(trees):
    """Marked showing, it must be where a sighted helper (and a screen magnifier) finds it."""
    bar = [n for n in trees["before"] if n["role"] == "status bar"][0]
    x, y, width, height = bar["extents"]
    assert "showing" in bar["states"] and y >= 0 and y + height <= 768, bar["extents"]


def test_filter_sort_and_grid_items_read_as_meant(trees):
    after = trees["captioned"]
    boxes = [n["labelled_by"] for n in after if n["role"] == "combo box"]
    assert boxes == [["Show only photos that are"], ["Sort photos by"]]
    editor = named(after, "text", "Caption of the selected photo")[0]
    item = named(after, "list item", "astronaut.jpg, unsaved, needs review, machine caption: ")[0]
    caption = editor["text"]
    assert caption and item["name"].endswith(caption) and caption not in item["description"]  # read once
    assert "focused" in item["states"]


def test_tab_reaches_the_caption_words_right_after_the_caption(qtbot, tmp_path, samples):
    """The word buttons are made per photo; Tab must still reach them between the caption and the alternatives,
    not after every other control of the window."""
    from PySide6.QtCore import Qt

    from test_gui import caption_and_wait, make_window
    window = make_window(qtbot, tmp_path)
    window.open_folder(samples)
    caption_and_wait(qtbot, window, everything=False)
    stops, widget = [], window.caption_edit
    while widget is not window.panel.alternatives and len(stops) < 100:
        widget = widget.nextInFocusChain()
        if widget.focusPolicy() & Qt.FocusPolicy.TabFocus and widget.isVisibleTo(window):
            stops.append(widget)
    assert window.panel.word_buttons
    assert stops == [window.panel.words_area, *window.panel.word_buttons, window.panel.alternatives]


def focused_nodes(widget):
    """The nodes under ``widget`` a screen reader is told have the focus, as Qt builds them (what AT-SPI relays)."""
    from PySide6.QtGui import QAccessible

    found, stack = [], [QAccessible.queryAccessibleInterface(widget)]
    while stack:
        node = stack.pop()
        if node is None or not node.isValid():
            continue
        if node.state().focused:
            found.append((node.role().name, node.text(QAccessible.Text.Name)))
        stack.extend(node.child(i) for i in range(node.childCount()))
    return found


def test_the_settings_dialog_s_closed_lists_claim_no_focus(qapp, qtbot):
    """Each combo box's closed list marked its current item focused: Orca heard of four focused things. A choice
    changed with the arrow keys on a closed box was silent under Orca 43 (transcripts in the closing note)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from desktop_app.gui import accessibility
    from desktop_app.gui.settings import AppSettings, SettingsDialog
    accessibility.install(qapp)  # what fixes it, as start_qt does
    dialog = SettingsDialog(AppSettings())
    show_active(qtbot, dialog)
    assert len(focused_nodes(dialog)) <= 1 and all(role != "ListItem" for role, _ in focused_nodes(dialog))
    combo = dialog.provider
    combo.setFocus()
    assert combo.currentIndex() == 0
    QTest.keyClick(combo, Qt.Key.Key_Down)  # changed with the list closed, as Orca users do
    assert [role for role, _ in focused_nodes(dialog)] == ["ComboBox"], focused_nodes(dialog)
    assert combo.accessibleDescription() == combo.currentText() == "cuda"  # a change Orca 43 reads out
    choose_from_the_open_list(qtbot, combo)
    assert all(role != "ListItem" for role, _ in focused_nodes(dialog))
    assert combo.accessibleDescription() == ""  # chosen in the list: read as the box gets the focus back
    dialog.activateWindow()  # the offscreen platform leaves no window active once a popup closes (X does)
    qtbot.waitUntil(dialog.isActiveWindow)
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus)
    qtbot.wait(20)  # the event loop turns between two keys
    QTest.keyClick(combo, Qt.Key.Key_Up)
    assert combo.accessibleDescription() == "cuda"
    dialog.beam.setFocus()
    assert combo.accessibleDescription() == ""  # no stale choice read when Tab comes back


def choose_from_the_open_list(qtbot, combo):
    """Open the list (it opens on the current choice: the arrow keys go on from it), Down, Enter: the next choice
    is made; the closed list has no current item again."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    before = combo.currentIndex()
    combo.showPopup()
    qtbot.waitUntil(combo.view().isVisible)
    assert combo.view().currentIndex().row() == before
    QTest.keyClick(combo.view(), Qt.Key.Key_Down)
    QTest.keyClick(combo.view(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not combo.view().isVisible())
    assert combo.currentIndex() == before + 1
    qtbot.waitUntil(lambda: not combo.view().currentIndex().isValid())


def test_the_show_and_sort_boxes_choose_from_their_open_list(themed_app, qtbot):
    from PySide6.QtWidgets import QHBoxLayout, QWidget

    from desktop_app.gui.panels import ChoiceBox
    bar = QWidget()
    row = QHBoxLayout(bar)
    box = ChoiceBox("Sort photos by", bar)
    box.addItems(["Sort: name", "Sort: needs attention first", "Sort: date"])
    row.addWidget(box)
    show_active(qtbot, bar)
    box.setFocus()
    choose_from_the_open_list(qtbot, box)


@pytest.fixture
def themed_app(qapp):
    from desktop_app.gui import theme
    theme.apply(qapp, high_contrast=False)
    yield qapp
    theme.remove(qapp)


def test_a_wrapped_caption_is_read_whole_when_the_field_gets_the_focus(qapp, qtbot, monkeypatch):
    """A screen reader reads a multi-line field by the caret's line; while a wrapped caption's field has the
    focus, its description is the whole caption (Orca reads it after the line), and then what it was."""
    from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QVBoxLayout, QWidget

    from desktop_app.gui import accessibility
    monkeypatch.setattr(accessibility, "_reader_active", lambda: True)
    accessibility.install(qapp)
    window = QWidget()
    column = QVBoxLayout(window)
    other, edit = QLineEdit(), QPlainTextEdit()
    edit.setAccessibleDescription("its own")
    column.addWidget(other)
    column.addWidget(edit)
    window.resize(220, 200)
    show_active(qtbot, window)
    edit.setPlainText("A cat.")
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus)
    assert edit.accessibleDescription() == "its own"  # one line: the reader reads it all already
    other.setFocus()
    caption = "A baseball player in a white uniform is swinging a bat at a ball on a sunny field."
    edit.setPlainText(caption)
    qtbot.waitUntil(lambda: accessibility.visual_lines(edit) > 1)
    edit.setFocus()
    qtbot.waitUntil(lambda: edit.accessibleDescription() == caption)
    other.setFocus()
    qtbot.waitUntil(lambda: edit.accessibleDescription() == "its own")
    edit.setFocus()
    qtbot.waitUntil(lambda: edit.accessibleDescription() == caption)
    edit.insertPlainText(" Sunny.")  # typing: the person knows the text now
    assert edit.accessibleDescription() == "its own"


def test_an_announcement_is_a_notification_shown(qapp, qtbot, monkeypatch):
    """Orca 43 reads a notification as it shows ("notification wrote 5 photos") and ignores Qt's announcement
    events."""
    from PySide6.QtGui import QAccessible
    from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

    from desktop_app.gui import accessibility
    accessibility.install(qapp)
    window = QWidget()
    status = QLabel("status", window)
    QVBoxLayout(window).addWidget(status)
    qtbot.addWidget(window)
    window.show()
    monkeypatch.setattr(accessibility, "_reader_active", lambda: False)
    accessibility.announce(status, "wrote 5 photos")
    assert window.findChild(accessibility._Notice) is None  # no screen reader, nothing
    monkeypatch.setattr(accessibility, "_reader_active", lambda: True)
    accessibility.announce(status, "wrote 5 photos")
    notice = window.findChild(accessibility._Notice)
    node = QAccessible.queryAccessibleInterface(notice)
    assert notice.isVisible() and node.role() == QAccessible.Role.Notification
    assert node.text(QAccessible.Text.Name) == "wrote 5 photos" and notice.text() == ""  # nothing drawn
    accessibility.announce(status, "captioned 5")
    notices = window.findChildren(accessibility._Notice)
    assert len(notices) == 1 and notices[0].accessibleName() == "captioned 5" and notices[0].isVisible()


def test_the_same_announcement_twice_at_once_is_said_once(qapp, qtbot, monkeypatch):
    """Orca said "wrote 4 photos" twice after Write All: the status bar set the message twice. A repeat within
    REPEAT_SECONDS shows no new notification; the same words later, or other words, do."""
    from PySide6.QtWidgets import QLabel, QWidget

    from desktop_app.gui import accessibility
    window = QWidget()
    status = QLabel("status", window)
    qtbot.addWidget(window)
    window.show()
    monkeypatch.setattr(accessibility, "_reader_active", lambda: True)
    clock = [100.0]
    monkeypatch.setattr(accessibility.time, "monotonic", lambda: clock[0])
    accessibility.announce(status, "wrote 4 photos")
    first = window.findChild(accessibility._Notice)
    accessibility.announce(status, "wrote 4 photos")
    assert window.findChildren(accessibility._Notice) == [first]  # not shown again
    clock[0] += accessibility.REPEAT_SECONDS + 0.1
    accessibility.announce(status, "wrote 4 photos")
    again = window.findChildren(accessibility._Notice)
    assert len(again) == 1 and again[0] is not first and again[0].isVisible()
