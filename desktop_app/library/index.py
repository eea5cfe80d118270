"""SQLite (stdlib) index of photos and their captions, searchable with FTS5.

The captions live in the photos' own metadata; this index is a cache of them
for fast search. Scanning a folder reads captions already there (ours or other
tools'), so a library captioned elsewhere is searchable at once.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from desktop_app.metadata.record import PERSON, CaptionRecord
from desktop_app.metadata.store import read_caption
from desktop_app.photos.discover import find_photos

SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY,
    path TEXT UNIQUE NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    ctime REAL NOT NULL DEFAULT 0,  -- changes when a caption is written with the mtime kept
    caption TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL DEFAULT '',
    keywords TEXT NOT NULL DEFAULT ''
);
CREATE VIRTUAL TABLE IF NOT EXISTS photos_fts USING fts5(
    caption, keywords, content='photos', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS photos_ai AFTER INSERT ON photos BEGIN
    INSERT INTO photos_fts(rowid, caption, keywords) VALUES (new.id, new.caption, new.keywords);
END;
CREATE TRIGGER IF NOT EXISTS photos_ad AFTER DELETE ON photos BEGIN
    INSERT INTO photos_fts(photos_fts, rowid, caption, keywords) VALUES ('delete', old.id, old.caption, old.keywords);
END;
CREATE TRIGGER IF NOT EXISTS photos_au AFTER UPDATE ON photos BEGIN
    INSERT INTO photos_fts(photos_fts, rowid, caption, keywords) VALUES ('delete', old.id, old.caption, old.keywords);
    INSERT INTO photos_fts(rowid, caption, keywords) VALUES (new.id, new.caption, new.keywords);
END;
"""


def default_index_path() -> Path:
    """Per-user data folder: $PHOTOCAPTION_INDEX, else the platform's usual place."""
    if os.environ.get("PHOTOCAPTION_INDEX"):
        return Path(os.environ["PHOTOCAPTION_INDEX"])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "photocaption" / "library.sqlite"


@dataclass
class IndexedPhoto:
    path: Path
    caption: str
    source: str
    model_id: str
    keywords: list[str]


def _source_of(caption: CaptionRecord | None) -> str:
    if caption is None:
        return ""
    return PERSON if caption.written_by_person and caption.source else (caption.source or "other")


def fts_query(text: str) -> str:
    """User words -> an FTS5 query: every word must match, the last one as a prefix (search as you type)."""
    words = re.findall(r"\w+", text.lower())
    if not words:
        return ""
    parts = [f'"{w}"' for w in words[:-1]] + [f'"{words[-1]}"*']
    return " AND ".join(parts)


class LibraryIndex:
    def __init__(self, path: Path | str = ":memory:"):
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def record(self, photo: Path, caption: CaptionRecord | None) -> None:
        """Store what a photo's metadata says now (or that it has no caption)."""
        photo = Path(photo).resolve()
        try:
            stat = photo.stat()
        except OSError:
            return
        values = (str(photo), stat.st_size, stat.st_mtime, stat.st_ctime, caption.text if caption else "",
                  _source_of(caption), caption.model_id if caption else "",
                  " ".join(caption.keywords) if caption else "")
        with self.db:
            self.db.execute(
                "INSERT INTO photos(path, size, mtime, ctime, caption, source, model_id, keywords) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime=excluded.mtime, ctime=excluded.ctime, "
                "caption=excluded.caption, "
                "source=excluded.source, model_id=excluded.model_id, keywords=excluded.keywords", values)

    def scan(self, folders: Iterable[Path], recursive: bool = True, sidecar_naming: str = "ext") -> int:
        """Index photos whose size or times changed since the last scan; returns how many were read."""
        known = {row[0]: tuple(row[1:]) for row in self.db.execute("SELECT path, size, mtime, ctime FROM photos")}
        read = 0
        for photo in find_photos(folders, recursive):
            resolved = photo.resolve()
            try:
                stat = resolved.stat()
            except OSError:
                continue
            if known.get(str(resolved)) == (stat.st_size, stat.st_mtime, stat.st_ctime):
                continue
            try:
                caption = read_caption(resolved, sidecar_naming)
            except Exception:  # an unreadable photo is indexed without a caption
                caption = None
            self.record(resolved, caption)
            read += 1
        return read

    def search(self, text: str, limit: int = 200) -> list[IndexedPhoto]:
        """Photos whose caption or keywords match all words, best match first (BM25)."""
        query = fts_query(text)
        if not query:
            return []
        rows = self.db.execute(
            "SELECT p.path, p.caption, p.source, p.model_id, p.keywords FROM photos_fts f "
            "JOIN photos p ON p.id = f.rowid WHERE photos_fts MATCH ? ORDER BY bm25(photos_fts) LIMIT ?",
            (query, limit)).fetchall()
        return [IndexedPhoto(Path(r[0]), r[1], r[2], r[3], r[4].split()) for r in rows]

    def get(self, photo: Path) -> IndexedPhoto | None:
        row = self.db.execute("SELECT path, caption, source, model_id, keywords FROM photos WHERE path = ?",
                              (str(Path(photo).resolve()),)).fetchone()
        return IndexedPhoto(Path(row[0]), row[1], row[2], row[3], row[4].split()) if row else None

    def captions_under(self, folder: Path) -> dict[Path, tuple[str, str, list[str]]]:
        """Every indexed caption of photos inside ``folder``: path -> (caption, source, keywords)."""
        prefix = str(Path(folder).resolve()).rstrip("/\\") + os.sep
        rows = self.db.execute("SELECT path, caption, source, keywords FROM photos WHERE substr(path, 1, ?) = ?",
                               (len(prefix), prefix))
        return {Path(r[0]): (r[1], r[2], r[3].split()) for r in rows}

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
