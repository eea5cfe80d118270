"""Desktop search finds our captions: GNOME's extractor (tracker-extract-3) reads the embedded XMP, KDE's Baloo
the freedesktop attributes (user.xdg.comment / user.xdg.tags).

Runs the real programs on captioned photos; skipped, with the reason, where they are not installed
(.ci/run installs them). Both need a D-Bus session, started here by dbus-run-session.
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
pytestmark = pytest.mark.skipif(shutil.which("dbus-run-session") is None,
                                reason="dbus-run-session is not installed (apt install dbus-daemon)")
needs_tracker = pytest.mark.skipif(EXTRACTOR is None,
                                   reason="GNOME's tracker-extract-3 is not installed (apt install tracker-extract)")
needs_baloo = pytest.mark.skipif(shutil.which("baloo_file") is None or shutil.which("baloosearch") is None,
                                 reason="KDE's Baloo is not installed (apt install baloo-kf5)")
CAPTION = CaptionRecord("A tabby cat lying on a red rug.", model_id="tracker-test@1", keywords=["cat", "rug"])


def extract(path: Path) -> str:
    """The extractor's Turtle for one file."""
    run = subprocess.run(["dbus-run-session", "--", EXTRACTOR, "--file", str(path), "--output-format", "turtle"],
                         capture_output=True, text=True, timeout=120)
    return run.stdout


@needs_tracker
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


BALOO = """
baloo_file >/dev/null 2>&1 &
for i in $(seq 90); do baloosearch tags:rug 2>/dev/null | grep -q "cat.webp" && break; sleep 1; done
echo "== tags"; baloosearch tags:rug
echo "== comment"; baloosearch usercomment:tabby
kill $!
"""


@needs_baloo
def test_kde_desktop_search_finds_every_format_by_its_attributes(tmp_path):
    """Baloo's image extractor reads only a JPEG's EXIF description; the attributes reach PNG, WebP, TIFF and GIF too."""
    home, pictures = tmp_path / "home", tmp_path / "home" / "Pictures"
    pictures.mkdir(parents=True)
    (home / ".config").mkdir()
    (home / ".config" / "baloofilerc").write_text(
        f"[Basic Settings]\nIndexing-Enabled=true\n\n[General]\nfolders[$e]={pictures}/\nfirst run=false\n")
    names = ["cat.jpg", "cat.png", "cat.webp", "cat.tif", "cat.gif"]
    for name in names:
        Image.new("RGB", (64, 48), "red").save(pictures / name)
        write_caption(pictures / name, CAPTION)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local" / "share"), "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run(["dbus-run-session", "--", "bash", "-c", BALOO], env=env, capture_output=True, text=True,
                         timeout=180)
    tags, comment = run.stdout.split("== comment")
    assert all(str(pictures / name) in tags for name in names), run.stdout
    assert all(str(pictures / name) in comment for name in names), run.stdout
