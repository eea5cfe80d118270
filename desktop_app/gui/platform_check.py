"""Before Qt starts on X11: name the Debian packages of any missing system library, in one message.

Qt's xcb platform plugin needs about a dozen X libraries that a stock desktop may
lack; when one is missing Qt names only the first it thinks of ("xcb-cursor0 is
needed") and aborts. Loading each library ourselves first finds every missing one.
"""

from __future__ import annotations

import ctypes
import os
import sys

# library file -> the Debian/Ubuntu package that ships it (what Qt 6's xcb plugin loads)
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def uses_xcb(environ=os.environ, platform: str = sys.platform) -> bool:
    """Will Qt pick its X11 (xcb) plugin? (Linux, and not told otherwise, and no Wayland session.)"""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def missing_packages(libraries: dict[str, str] = XCB_LIBRARIES) -> list[str]:
    """Debian packages of the libraries that cannot be loaded here."""
    missing = []
    for library, package in libraries.items():
        try:
            ctypes.CDLL(library)
        except OSError:
            missing.append(package)
    return missing


def problem_message(packages: list[str]) -> str:
    return ("photocaption cannot open its window: these system libraries are missing.\n"
            "On Debian or Ubuntu, install them with:\n\n"
            f"    sudo apt install {' '.join(packages)}\n\n"
            "(Other systems: install the same X11/xcb libraries from their packages.)")


def check() -> str:
    """A message naming what to install, or "" when the window can start."""
    if not uses_xcb():
        return ""
    packages = missing_packages()
    return problem_message(packages) if packages else ""
