"""The app starts in a real X server (Xvfb through xcb, as on a desktop), not only offscreen."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
from pathlib import Path
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from desktop_app.gui import platform_check
problem = platform_check.check()
if problem:
    print(problem); sys.exit(3)
app = QApplication([])
from desktop_app.gui.main_window import MainWindow
work = Path(sys.argv[1])
window = MainWindow(QSettings(str(work / "s.ini"), QSettings.Format.IniFormat), work / "index.sqlite")
window.show()
window.open_folder(Path(sys.argv[2]))
def check():
    print("platform", app.platformName(), "exposed", window.isVisible() and window.windowHandle().isExposed(),
          "photos", len(window.session.items), "focus", type(window.focusWidget()).__name__)
    window.close()
    app.quit()
QTimer.singleShot(1500, check)
app.exec()
"""


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed (Debian: apt install xvfb xauth)")
def test_app_starts_in_a_real_x_server(samples, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT)}
    env.pop("WAYLAND_DISPLAY", None)
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", sys.executable, "-c", SCRIPT,
                          str(tmp_path), str(samples)], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode != 3, f"missing system libraries:\n{run.stdout}"
    assert run.returncode == 0, run.stdout + run.stderr
    assert "platform xcb exposed True photos 5 focus QListView" in run.stdout, run.stdout + run.stderr
