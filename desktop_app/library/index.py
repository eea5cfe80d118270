"""SQLite (stdlib) index of photos and their captions, searchable with FTS5.

The captions live in the photos' own metadata; this index is a cache of them
for fast search. Scanning a folder reads captions already there (ours or other
tools'), so a library captioned elsewhere is searchable at once.

It also keeps what exists nowhere else: drafts (captions and keyword edits not
yet written into their photos, saved as they are made so a crash or a quit
loses nothing) and the model's details for a caption (alternatives, attention,
confidence), so they survive after the caption is written. The schema carries a
version (``PRAGMA user_version``) and is upgraded in place on open.

Any number of processes (the app, CLI commands, ``serve``) use one index file at once. Each
operation opens its own connection and closes it when done, never holding one between operations:
SQLite's POSIX locks belong to the process and are all dropped when *any* descriptor of the file is
closed in it (https://www.sqlite.org/howtocorrupt.html, 2.2), e.g. by a file dialog that looked into
the index's folder. A connection held across that loses its locks unseen, and another process's
close then checkpoints and deletes the -wal/-shm still in use, losing what is written after.
A damaged index is moved aside and a new one made, keeping the drafts that can still be read.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop_app.library import terms
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
    caption, keywords, content='photos', content_rowid='id', tokenize='""" + terms.FTS_TOKENIZER + """'
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

# Added in schema version 2: unsaved work, and the model's details for a caption.
DRAFTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS drafts (
    path TEXT PRIMARY KEY,
    caption TEXT NOT NULL,
    source TEXT NOT NULL,            -- machine or person
    keywords TEXT NOT NULL,          -- JSON list: keywords may hold spaces
    score REAL,
    model_id TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS details (
    path TEXT PRIMARY KEY,
    text TEXT NOT NULL,              -- the caption these details belong to
    model_id TEXT NOT NULL,
    words TEXT NOT NULL,             -- JSON list
    alternatives TEXT NOT NULL,      -- JSON [[text, score], ...]
    attention BLOB,                  -- float16 [len(words), cells]
    cells INTEGER NOT NULL DEFAULT 0,
    confidence REAL,
    needs_review INTEGER NOT NULL DEFAULT 0
);
"""
# Added in schema version 3: why a photo could not be captioned or written, kept until the photo changes.
FAILURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,           -- the file as it failed: a photo changed since is tried afresh
    mtime REAL NOT NULL,
    error TEXT NOT NULL DEFAULT '',  -- why it could not be captioned
    write_error TEXT NOT NULL DEFAULT ''  -- why its caption could not be written
);
"""
SCHEMA_VERSION = 3
CAPTION_WEIGHT = 4.0  # BM25 weight of a caption's words against a keyword's: caption matches rank first
KEYWORD_SEPARATOR = "\n"  # in photos.keywords: one keyword a line, so "red rug" stays one keyword


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
class Draft:
    """A caption (and keywords) made or edited in the app and not yet written into the photo."""

    caption: str
    source: str
    keywords: list[str]
    score: float | None = None
    model_id: str = ""


@dataclass
class Details:
    """What the model said about a caption besides its text."""

    text: str
    model_id: str
    words: list[str]
    alternatives: list[tuple[str, float]]
    attention: np.ndarray | None = None
    confidence: float | None = None
    needs_review: bool = False


@dataclass
class Failure:
    """Why a photo could not be captioned (``error``) or written (``write_error``)."""

    error: str = ""
    write_error: str = ""


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
    """User words -> an FTS5 query: every term must match by any word that counts as it (``terms.parse``: "animal"
    finds "cat"), the last one also as a prefix (search as you type)."""
    return terms.fts_query(terms.parse(text))


def _keywords(stored: str) -> list[str]:
    return [k for k in stored.split(KEYWORD_SEPARATOR) if k]


def _prefix(folder: Path | None) -> tuple[int, str]:
    """(length, prefix) for ``substr(path, 1, length) = prefix``: every path when folder is None."""
    if folder is None:
        return 0, ""
    prefix = str(Path(folder).resolve()).rstrip("/\\") + os.sep
    return len(prefix), prefix


_DAMAGED_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB (primary result codes)
SCAN_BATCH = 200  # photos read in a scan before their rows are written, in one short connection


class IndexDamaged(sqlite3.DatabaseError):
    """The index file is not a database, or its pages are malformed."""


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    return isinstance(exc, IndexDamaged) or (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _DAMAGED_CODES


def _salvage_drafts(path: Path) -> tuple[list[tuple], str]:
    """The drafts rows a damaged index still yields (read-only), and why the rest could not be read ('' if none lost)."""
    rows: list[tuple] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return rows, str(exc)
    try:
        cursor = db.execute("SELECT path, caption, source, keywords, score, model_id, updated FROM drafts")
        while (row := cursor.fetchone()) is not None:
            rows.append(row)
        return rows, ""
    except sqlite3.Error as exc:
        return rows, str(exc)
    finally:
        db.close()


class LibraryIndex:
    """The index file at ``path`` (":memory:" for a private, throw-away one); safe to share between threads."""

    def __init__(self, path: Path | str = ":memory:"):
        self.path = path
        self.notice = ""  # in words, when opening had to repair a damaged index file
        self._held: sqlite3.Connection | None = None  # only ":memory:", which lives as long as its connection
        self._lock = threading.Lock()
        if path == ":memory:":
            self._held = sqlite3.connect(":memory:", check_same_thread=False)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            if self._held is not None or not _is_damage(exc):
                raise
            self.notice = self._replace_damaged(str(exc))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, closed after it (see the module's note on locks)."""
        if self._held is not None:
            with self._lock:
                yield self._held
            return
        db = sqlite3.connect(str(self.path), timeout=30)
        try:
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit is not an fsync; a crash loses no committed page
            yield db
        finally:
            db.close()

    def _prepare(self) -> None:
        """WAL mode, the schema at SCHEMA_VERSION, and a quick check that the file is sound."""
        with self._connect() as db:
            if self._held is None:
                db.execute("PRAGMA journal_mode=WAL")  # kept in the file: readers and one writer at once
            db.executescript(SCHEMA)
            self._upgrade(db)
            if self._held is None:
                problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
                if problems != ["ok"]:
                    raise IndexDamaged("; ".join(problems))

    def _upgrade(self, db: sqlite3.Connection) -> None:
        """Bring an older index up to SCHEMA_VERSION, step by step, keeping what it holds."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"{self.path} was made by a newer photocaption (schema {version})")
        with db:
            if version < 2:
                db.executescript(DRAFTS_SCHEMA)
                # version 1 joined keywords with spaces (splitting "red rug"): read every photo again
                db.execute("UPDATE photos SET size = -1")
            if version < 3:
                db.executescript(FAILURES_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _replace_damaged(self, reason: str) -> str:
        """Move the damaged file (and its -wal/-shm) aside, make a new index with the drafts still readable.

        Returns what was done, in words. A second process repairing at the same moment finds the new
        index sound and leaves it.
        """
        path = Path(self.path)
        with _repair_lock(path):
            with suppress(sqlite3.DatabaseError):
                self._prepare()
                return ""  # another process repaired it meanwhile
            drafts, lost = _salvage_drafts(path)
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                with suppress(FileNotFoundError):
                    os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            self._prepare()
            with self._connect() as db, db:
                db.executemany("INSERT OR REPLACE INTO drafts(path, caption, source, keywords, score, model_id, updated) "
                               "VALUES (?,?,?,?,?,?,?)", drafts)
        kept = f"{len(drafts)} unsaved draft{'s' if len(drafts) != 1 else ''} recovered"
        if lost:
            kept += f"; other unsaved drafts could not be read ({lost}) and are lost"
        return (f"the library index {path} was damaged ({reason}); it was moved to {aside.name} and a new one made "
                f"({kept}); captions come back into it as folders are opened or scanned")

    def close(self) -> None:
        """Nothing stays open between operations; a ":memory:" index is dropped."""
        if self._held is not None:
            self._held.close()

    def record(self, photo: Path, caption: CaptionRecord | None) -> None:
        """Store what a photo's metadata says now (or that it has no caption)."""
        self._record_many([(photo, caption)])

    def _record_many(self, captions: list[tuple[Path, CaptionRecord | None]]) -> None:
        rows = []
        for photo, caption in captions:
            photo = Path(photo).resolve()
            try:
                stat = photo.stat()
            except OSError:
                continue
            rows.append((str(photo), stat.st_size, stat.st_mtime, stat.st_ctime, caption.text if caption else "",
                         _source_of(caption), caption.model_id if caption else "",
                         KEYWORD_SEPARATOR.join(caption.keywords) if caption else ""))
        with self._connect() as db, db:
            db.executemany(
                "INSERT INTO photos(path, size, mtime, ctime, caption, source, model_id, keywords) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime=excluded.mtime, ctime=excluded.ctime, "
                "caption=excluded.caption, "
                "source=excluded.source, model_id=excluded.model_id, keywords=excluded.keywords", rows)

    def scan(self, folders: Iterable[Path], recursive: bool = True, sidecar_naming: str = "ext") -> int:
        """Index photos whose size or times changed since the last scan; returns how many were read.

        Rows are written SCAN_BATCH photos at a time, each batch in one short connection.
        """
        with self._connect() as db:
            known = {row[0]: tuple(row[1:]) for row in db.execute("SELECT path, size, mtime, ctime FROM photos")}
        read, pending = 0, []
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
            pending.append((resolved, caption))
            read += 1
            if len(pending) >= SCAN_BATCH:
                self._record_many(pending)
                pending = []
        if pending:
            self._record_many(pending)
        return read

    def _rows(self, sql: str, values: tuple = ()) -> list[tuple]:
        """Every row of one query, read in one short connection."""
        with self._connect() as db:
            return db.execute(sql, values).fetchall()

    def search(self, text: str, limit: int = 200) -> list[IndexedPhoto]:
        """Photos whose caption or keywords match every term, best match first (BM25, a caption's words counting
        ``CAPTION_WEIGHT`` times a keyword's); ``terms.matches`` says why each matched."""
        query = fts_query(text)
        if not query:
            return []
        rows = self._rows(
            "SELECT p.path, p.caption, p.source, p.model_id, p.keywords FROM photos_fts f "
            "JOIN photos p ON p.id = f.rowid WHERE photos_fts MATCH ? ORDER BY bm25(photos_fts, ?, 1.0) LIMIT ?",
            (query, CAPTION_WEIGHT, limit))
        return [IndexedPhoto(Path(r[0]), r[1], r[2], r[3], _keywords(r[4])) for r in rows]

    def get(self, photo: Path) -> IndexedPhoto | None:
        rows = self._rows("SELECT path, caption, source, model_id, keywords FROM photos WHERE path = ?",
                          (str(Path(photo).resolve()),))
        return IndexedPhoto(Path(rows[0][0]), *rows[0][1:4], _keywords(rows[0][4])) if rows else None

    def captions_under(self, folder: Path) -> dict[Path, tuple[str, str, list[str]]]:
        """Every indexed caption of photos inside ``folder``: path -> (caption, source, keywords)."""
        rows = self._rows("SELECT path, caption, source, keywords FROM photos WHERE substr(path, 1, ?) = ?",
                          _prefix(folder))
        return {Path(r[0]): (r[1], r[2], _keywords(r[3])) for r in rows}

    # ---- drafts: unsaved work ------------------------------------------------------------------
    def save_drafts(self, drafts: dict[Path, Draft | None]) -> None:
        """Keep these drafts (None: the photo has none any more), in one transaction."""
        now = time.time()
        with self._connect() as db, db:
            for photo, draft in drafts.items():
                key = str(Path(photo).resolve())
                if draft is None:
                    db.execute("DELETE FROM drafts WHERE path = ?", (key,))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO drafts(path, caption, source, keywords, score, model_id, updated) "
                        "VALUES (?,?,?,?,?,?,?)", (key, draft.caption, draft.source, json.dumps(draft.keywords),
                                                   draft.score, draft.model_id, now))

    def drafts_under(self, folder: Path | None = None) -> dict[Path, Draft]:
        """Drafts of photos inside ``folder`` (every draft when None)."""
        rows = self._rows("SELECT path, caption, source, keywords, score, model_id FROM drafts "
                          "WHERE substr(path, 1, ?) = ?", _prefix(folder))
        return {Path(r[0]): Draft(r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows}

    def search_drafts(self, text: str) -> list[IndexedPhoto]:
        """Drafts whose caption or keywords hold every word (few: a plain scan is enough)."""
        asked = terms.parse(text)
        if not asked:
            return []
        return [IndexedPhoto(path, draft.caption, draft.source, draft.model_id, draft.keywords)
                for path, draft in self.drafts_under(None).items()
                if len(terms.matches(asked, draft.caption, draft.keywords)) == len(asked)]

    # ---- failures: kept across sessions until the photo changes ---------------------------------
    def save_failures(self, failures: dict[Path, Failure | None]) -> None:
        """Keep why these photos failed, with their size and mtime now (None, or a Failure with no message:
        the photo has not failed, or not any more), in one transaction."""
        rows, gone = [], []
        for photo, failure in failures.items():
            photo = Path(photo).resolve()
            try:
                stat = photo.stat() if failure and (failure.error or failure.write_error) else None
            except OSError:
                stat = None  # gone: nothing to keep about it
            if stat is None:
                gone.append((str(photo),))
            else:
                rows.append((str(photo), stat.st_size, stat.st_mtime, failure.error, failure.write_error))
        with self._connect() as db, db:
            db.executemany("DELETE FROM failures WHERE path = ?", gone)
            db.executemany("INSERT OR REPLACE INTO failures(path, size, mtime, error, write_error) VALUES (?,?,?,?,?)",
                           rows)

    def failures_under(self, folder: Path | None = None) -> dict[Path, Failure]:
        """Failures of photos inside ``folder`` that are still as they were when they failed; a photo changed
        since (its size or mtime differ) or gone is left out, to be tried again."""
        rows = self._rows("SELECT path, size, mtime, error, write_error FROM failures WHERE substr(path, 1, ?) = ?",
                          _prefix(folder))
        out = {}
        for path, size, mtime, error, write_error in rows:
            try:
                stat = os.stat(path)
            except OSError:
                continue
            if (stat.st_size, stat.st_mtime) == (size, mtime):
                out[Path(path)] = Failure(error, write_error)
        return out

    # ---- details: alternatives, attention, confidence ------------------------------------------
    def save_details(self, details: dict[Path, Details]) -> None:
        with self._connect() as db, db:
            for photo, d in details.items():
                attention = None if d.attention is None else np.asarray(d.attention, np.float16)
                db.execute(
                    "INSERT OR REPLACE INTO details(path, text, model_id, words, alternatives, attention, cells, "
                    "confidence, needs_review) VALUES (?,?,?,?,?,?,?,?,?)",
                    (str(Path(photo).resolve()), d.text, d.model_id, json.dumps(d.words), json.dumps(d.alternatives),
                     None if attention is None else attention.tobytes(),
                     0 if attention is None else attention.shape[-1], d.confidence, int(d.needs_review)))

    def details_under(self, folder: Path | None = None) -> dict[Path, Details]:
        return self._details("WHERE substr(path, 1, ?) = ?", _prefix(folder))

    def details_of(self, photo: Path) -> Details | None:
        return self._details("WHERE path = ?", (str(Path(photo).resolve()),)).get(Path(photo).resolve())

    def _details(self, where: str, values: tuple) -> dict[Path, Details]:
        rows = self._rows("SELECT path, text, model_id, words, alternatives, attention, cells, confidence, "
                          f"needs_review FROM details {where}", values)
        out = {}
        for r in rows:
            attention = None
            if r[5] is not None and r[6]:
                attention = np.frombuffer(r[5], np.float16).reshape(-1, r[6]).astype(np.float32)
            out[Path(r[0])] = Details(r[1], r[2], json.loads(r[3]), [tuple(a) for a in json.loads(r[4])],
                                      attention, r[7], bool(r[8]))
        return out

    def __len__(self) -> int:
        return self._rows("SELECT COUNT(*) FROM photos")[0][0]


@contextmanager
def _repair_lock(path: Path) -> Iterator[None]:
    """One process at a time repairs an index (an flock on a lock file beside it, where the OS has flock)."""
    try:
        import fcntl
    except ImportError:  # Windows has no flock: two processes repairing at the same instant is not guarded there
        yield
        return
    with open(f"{path}.repair-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
