"""Captions to a CSV or JSON file, for another program: Qt-free.

The file is made whole in memory and then takes its name at once (``metadata.atomic.replace_atomically``:
a temp file beside it, flushed, ``os.replace``), so an export that fails half way, or a crash, leaves the
earlier export as it was, never a truncated one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from desktop_app.gui.messages import count_of
from desktop_app.metadata.atomic import replace_atomically

FIELDS = ["path", "caption", "source", "keywords", "saved"]


def export_rows(items) -> list[dict]:
    """Every caption shown (saved or not), one row a photo with a caption."""
    return [{"path": str(i.path), "caption": i.caption, "source": i.source, "keywords": list(i.keywords),
             "saved": not i.unsaved} for i in items if i.caption]


def export_bytes(rows: list[dict], kind: str) -> bytes:
    """The file's bytes. Keywords stay whole: a list in JSON, joined by "; " in CSV (a keyword may hold spaces)."""
    if kind == "json":
        return json.dumps(rows, indent=2).encode("utf-8")
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows({**r, "keywords": "; ".join(r["keywords"])} for r in rows)
    return text.getvalue().encode("utf-8")


def export_captions(items, path: Path, kind: str) -> int:
    """Write the captions of ``items`` to ``path`` as ``kind`` ("csv" or "json"), all or nothing; returns how many."""
    rows = export_rows(items)
    replace_atomically(Path(path), export_bytes(rows, kind), keep_mtime=False)
    return len(rows)


def export_and_say(items, path: Path, kind: str) -> tuple[str, int]:
    """Export, and what to tell the person: (status text, milliseconds to show it)."""
    try:
        count = export_captions(items, path, kind)
    except OSError as exc:
        return f"could not export to {path}: {exc.strerror or exc}", 10000
    return f"exported {count_of(count, 'caption')} to {path}", 5000
