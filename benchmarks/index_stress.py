"""Many processes on one library index, killed at random with kill -9: count the drafts lost and check the file.

One "app" process edits captions through the GUI's Session object (each edit is a draft saved at
once), and, as the app's Open Folder dialog does, opens and closes the index file in between.
Four CLI processes run `photocaption search`, `scan` and `caption` (which writes captions and the
model's details) on the same index, over and over. Every 0.5-3 s one process, app included, is
killed with SIGKILL and started again. The app logs each edit before it starts ("begin") and once
Session has returned ("done"). At the end a fresh process reads the index:

- drafts lost: a photo whose last finished edit is not what the index holds (nor the edit that was
  in flight when the app was killed);
- integrity: ``PRAGMA integrity_check``; no damaged index moved aside; no traceback from any process.

    nice -n 10 python benchmarks/index_stress.py [--seconds 120] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

APP_PHOTOS, CLI_PHOTOS = 400, 6
CLI_COMMANDS = (["search", "dog"], ["scan", "{cli}"], ["caption", "{cli}", "-q", "--recaption"], ["search", "draft"])


def make_photos(folder: Path, count: int) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True)
    paths = [folder / f"photo{n:04d}.jpg" for n in range(count)]
    for n, path in enumerate(paths):
        Image.new("RGB", (64, 48), (n * 7 % 256, n * 13 % 256, n * 29 % 256)).save(path, quality=80)
    return paths


def run_app(index_path: Path, folder: Path, log: Path, seed: int) -> None:
    """The app's side: Session edits, each a draft saved at once; the index file touched as a file dialog does."""
    from desktop_app.gui.session import Session
    from desktop_app.library.index import LibraryIndex

    session = Session(LibraryIndex(index_path), index_path.parent / "undo")
    session.open(folder, sorted(folder.glob("*.jpg")))
    rng = random.Random(seed)
    with open(log, "a", buffering=1) as out:
        for n in range(10**9):
            item = rng.choice(session.items)
            text = f"draft {seed}-{n} of {item.path.name}"
            out.write(f"begin\t{item.path}\t{text}\n")
            session.edit_caption(item, text)
            out.write(f"done\t{item.path}\t{text}\n")
            if n % 3 == 0:
                with open(index_path, "rb") as handle:  # the Open Folder dialog looking at the index's folder
                    handle.read(100)
            time.sleep(rng.uniform(0, 0.02))


def lost_drafts(log: Path, index_path: Path) -> tuple[int, int, str]:
    """(drafts lost, photos edited, why the index could not be read or ''): each photo's last finished
    edit must be what the index holds."""
    done: dict[str, str] = {}
    in_flight: dict[str, str] = {}
    for line in log.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) != 3:  # a line cut by a kill
            continue
        kind, path, text = parts
        if kind == "begin":
            in_flight[path] = text
        else:
            done[path] = text
    code = ("import json, sys\nfrom desktop_app.library.index import LibraryIndex\n"
            "print(json.dumps({str(p): d.caption for p, d in LibraryIndex(sys.argv[1]).drafts_under(None).items()}))")
    read = subprocess.run([sys.executable, "-c", code, str(index_path)], capture_output=True, text=True, cwd=ROOT)
    held = json.loads(read.stdout) if read.returncode == 0 else {}
    lost = sum(held.get(path) not in (text, in_flight.get(path)) for path, text in done.items())
    return lost, len(done), "" if read.returncode == 0 else read.stderr.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--app", action="store_true", help=argparse.SUPPRESS)  # the app process itself
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.app:
        run_app(args.index, args.folder, args.log, args.seed)
        return 0
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        index_path, log = work / "library" / "library.sqlite", work / "app.log"
        index_path.parent.mkdir()
        app_folder, cli_folder = work / "app-photos", work / "cli-photos"
        make_photos(app_folder, APP_PHOTOS)
        make_photos(cli_folder, CLI_PHOTOS)
        env = {**os.environ, "PHOTOCAPTION_INDEX": str(index_path), "QT_QPA_PLATFORM": "offscreen"}
        errors = work / "errors"
        errors.mkdir()
        started = 0

        def start(slot: int) -> subprocess.Popen:
            nonlocal started
            started += 1
            if slot == 0:
                command = [sys.executable, __file__, "--app", "--index", str(index_path), "--folder", str(app_folder),
                           "--log", str(log), "--seed", str(started)]
            else:
                words = [w.format(cli=cli_folder) for w in rng.choice(CLI_COMMANDS)]
                command = [sys.executable, "-m", "desktop_app", *words, "--index", str(index_path)]
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                    stderr=open(errors / f"{started}.err", "w"))

        slots = [start(slot) for slot in range(5)]
        kills, runs, end = 0, 0, time.monotonic() + args.seconds
        next_kill = time.monotonic() + rng.uniform(0.5, 3)
        while time.monotonic() < end:
            time.sleep(0.05)
            if time.monotonic() >= next_kill:
                victim = rng.randrange(len(slots))
                slots[victim].send_signal(signal.SIGKILL)
                slots[victim].wait()
                slots[victim] = start(victim)
                kills, next_kill = kills + 1, time.monotonic() + rng.uniform(0.5, 3)
            for slot, process in enumerate(slots):
                if process.poll() is not None:  # a CLI command finished: the next one
                    runs += 1
                    slots[slot] = start(slot)
        for process in slots:
            process.send_signal(signal.SIGKILL)
            process.wait()
        lost, edited, unreadable = lost_drafts(log, index_path)
        try:
            db = sqlite3.connect(index_path)
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
            db.close()
        except sqlite3.DatabaseError as exc:
            integrity = str(exc)
        tracebacks = sum("Traceback" in path.read_text(errors="replace") for path in errors.iterdir())
        moved_aside = len(list(index_path.parent.glob("*.damaged-*")))
        print(f"{args.seconds:.0f} s: {kills} kill -9, {runs} CLI commands finished, {started} processes started")
        print(f"photos with drafts: {edited}; drafts lost: {lost}" + (f" (index unreadable: {unreadable})"
                                                                        if unreadable else ""))
        print(f"integrity_check: {integrity}; damaged index moved aside: {moved_aside}; processes with a traceback: "
              f"{tracebacks}")
        return 0 if lost == 0 and integrity == "ok" and not (moved_aside or tracebacks or unreadable) else 1


if __name__ == "__main__":
    raise SystemExit(main())
