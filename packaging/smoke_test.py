"""Smoke test of the built app: ``python packaging/smoke_test.py dist/photocaption``.

Runs the frozen binary with no network (``unshare -n`` where allowed) on copies of
the sample photos: captions them through the CLI entry, checks the caption is in
the photo's metadata (exiftool when present, else the app's own reader), that
the pixels are unchanged, and that the window starts offscreen. Prints the
cold-start time to the first caption.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def offline_prefix() -> list[str]:
    """``unshare -n`` (a new, empty network namespace) when this user may create one."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-rn"]
    print("note: cannot create a network namespace here; running with the network as it is")
    return []


def fail(message: str) -> None:
    print(f"SMOKE TEST FAILED: {message}")
    sys.exit(1)


def main() -> int:
    app = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/photocaption").resolve()
    binary = app / ("photocaption.exe" if os.name == "nt" else "photocaption")
    if not binary.is_file():
        fail(f"{binary} not found (build it with python packaging/build.py)")
    work = Path(tempfile.mkdtemp(prefix="photocaption-smoke-"))
    photo = work / "chelsea.jpg"
    shutil.copy(app / "_internal" / "resources" / "samples" / "chelsea.jpg", photo)
    before = np.asarray(Image.open(photo))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(work), XDG_DATA_HOME=str(work / "data"))
    prefix = offline_prefix()

    start = time.perf_counter()
    run = subprocess.run(prefix + [str(binary), "caption", str(photo), "--jsonl", str(work / "out.jsonl")],
                         capture_output=True, text=True, env=env, timeout=600)
    cold = time.perf_counter() - start
    print(run.stdout + run.stderr)
    if run.returncode != 0:
        fail(f"caption exited with {run.returncode}")
    record = json.loads((work / "out.jsonl").read_text().splitlines()[0])
    caption = record.get("caption", "")
    if not caption:
        fail(f"no caption in {record}")

    if shutil.which("exiftool"):
        tags = json.loads(subprocess.run(["exiftool", "-j", "-G1", str(photo)], capture_output=True, text=True).stdout)[0]
        stored = tags.get("XMP-dc:Description")
        reader = "exiftool"
    else:
        shown = subprocess.run(prefix + [str(binary), "show", str(photo)], capture_output=True, text=True, env=env)
        stored = caption if caption in shown.stdout else None
        reader = "photocaption show"
    if stored != caption:
        fail(f"{reader} reads {stored!r} from the photo, expected {caption!r}")
    if not np.array_equal(before, np.asarray(Image.open(photo))):
        fail("the photo's pixels changed")

    gui = subprocess.Popen(prefix + [str(binary), "gui", str(work)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env)
    time.sleep(8)
    alive = gui.poll() is None
    gui.kill()
    output = gui.communicate()[0]
    if not alive:
        fail(f"the window did not stay up offscreen:\n{output}")

    print(f"caption: {caption!r} (read back by {reader}; pixels unchanged; window starts offscreen)")
    print(f"cold start to first caption: {cold:.1f} s  (network: {'none' if prefix else 'as is'})")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
