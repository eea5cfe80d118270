"""GNOME's desktop-search extractor (tracker-extract-3, Debian's tracker-extract) finds the captions we embed.

Runs the real extractor on captioned copies; skipped, with the reason, where it is not installed
(.ci/run installs it). It needs a D-Bus session, started here by dbus-run-session.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import write_caption

EXTRACTOR = shutil.which("tracker-extract-3") or next(
    (p for p in ("/usr/libexec/tracker-extract-3", "/usr/lib/tracker/tracker-extract-3") if Path(p).is_file()), None)
pytestmark = [
    pytest.mark.skipif(EXTRACTOR is None, reason="GNOME's tracker-extract-3 is not installed (apt install tracker-extract)"),
    pytest.mark.skipif(shutil.which("dbus-run-session") is None, reason="dbus-run-session is not installed (dbus-daemon)"),
]
CAPTION = CaptionRecord("A tabby cat lying on a red rug.", model_id="tracker-test@1", keywords=["cat", "rug"])


def extract(path: Path) -> str:
    """The extractor's Turtle for one file."""
    run = subprocess.run(["dbus-run-session", "--", EXTRACTOR, "--file", str(path), "--output-format", "turtle"],
                         capture_output=True, text=True, timeout=120)
    return run.stdout


@pytest.mark.parametrize("name", ["cat.jpg", "cat.png", "cat.tif"])
def test_gnome_desktop_search_reads_the_embedded_caption_and_a_keyword(tmp_path, name):
    photo = tmp_path / name
    Image.new("RGB", (64, 48), "red").save(photo)
    assert f'nie:description "{CAPTION.text}"' not in extract(photo)
    write_caption(photo, CAPTION)
    turtle = extract(photo)
    assert f'nie:description "{CAPTION.text}"' in turtle
    assert "nao:hasTag <urn:tag:cat>" in turtle  # tracker 3.4 takes only the first keyword of a PNG or TIFF
    assert "<urn:tag:rug>" in turtle or not name.endswith(".jpg")
