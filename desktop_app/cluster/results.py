"""The results folder of a cluster run: Parquet parts, what is done already, one row per photo in the end.

Parts are written whole (a temp file renamed into place), so a killed run leaves only complete parts,
and whatever it had not written yet is captioned again by the next run. A photo is keyed by its path;
its size and modification time say whether the row still describes it. When a photo has rows in several
parts (a failed photo retried, a photo changed since), the newest part's row wins and the older rows are
dropped from their parts, so the folder holds each photo once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from desktop_app.cluster.storage import Place, keys_of, locate, path_key

FAILED = "failed"
PART_GLOB = "part-*.parquet"
TEMP_PREFIX = ".tmp-part-"

# The CLI's --jsonl fields (captioning.captioner.result_fields) plus what says which photo and model a row is.
# Alternatives are [caption, score] pairs in JSON; Parquet needs one type per column, so they are structs here.
SCHEMA = pa.schema([
    ("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
    ("status", pa.string()), ("message", pa.string()), ("model_id", pa.string()),
    ("caption", pa.string()), ("score", pa.float64()),
    ("alternatives", pa.list_(pa.struct([("caption", pa.string()), ("score", pa.float64())]))),
    ("keywords", pa.list_(pa.string())), ("confidence", pa.float64()), ("needs_review", pa.bool_()),
])


@dataclass(frozen=True)
class Photo:
    """A photo as a run sees it: what identifies the row that describes it."""

    path: str
    size: int
    mtime_ns: int


def stat_photo(path: Path) -> Photo:
    stat = path.stat()
    return Photo(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _place(out: Path | Place) -> Place:
    return out if isinstance(out, Place) else locate(out)


def parts(out: Path | Place) -> list[str]:
    """The complete parts (their paths on the results' file system), oldest first (their names sort by the run's
    start, then the part number)."""
    out = _place(out)
    if out.local:
        return sorted(str(p) for p in Path(out.path).glob(PART_GLOB))
    return sorted(i.path for i in _listing(out) if fnmatch(i.base_name, PART_GLOB))


def _listing(out: Place) -> list[pafs.FileInfo]:
    try:
        return out.fs.get_file_info(pafs.FileSelector(out.path, allow_not_found=True))
    except FileNotFoundError:
        return []


def make_folder(out: Path | Place) -> None:
    out = _place(out)
    out.fs.create_dir(out.path, recursive=True)


@dataclass
class Scan:
    """What a run needs to know of the results before it starts: which photos are done, as sorted
    ``storage.photo_key`` numbers, and how many rows a newer part replaced (dropped)."""

    done: np.ndarray
    dropped: int


def scan(out: Path | Place, retry_failed: bool = False) -> Scan:
    """Tidy the results folder and say which photos it holds. A killed run's unfinished parts go (never renamed
    into place, so nothing in them counts), and each photo's rows that a newer part replaces (a failed photo
    retried, a photo changed since) are dropped from their parts: this runs at the start and end of every run,
    so a run killed between writing a retried photo and dropping its old row is tidied next time.

    Memory: per row two 64-bit hashes and a flag (17 bytes), twice that while sorting (340 MB at most for 10
    million photos), one part's rows at a time besides: no Python object per photo. A run calls it in a Ray
    task, not in its driver."""
    out = _place(out)
    remove_temp_files(out)
    names = parts(out)
    paths, keys, failed, sizes = [], [], [], []
    for part in names:
        table = pq.read_table(part, columns=["path", "size", "mtime_ns", "status"], filesystem=out.fs)
        column = table.column("path").to_pylist()
        paths.append(np.fromiter(map(path_key, column), np.uint64, len(column)))
        keys.append(keys_of(column, table.column("size").to_pylist(), table.column("mtime_ns").to_pylist()))
        failed.append(np.asarray(table.column("status").to_numpy(zero_copy_only=False) == FAILED))
        sizes.append(len(column))
    if not names:
        return Scan(np.zeros(0, np.uint64), 0)
    path_keys, photo_keys, failed_rows = np.concatenate(paths), np.concatenate(keys), np.concatenate(failed)
    del paths, keys, failed
    # rows in part order: of each path's rows the last is the newest; the others are stale
    order = np.argsort(path_keys, kind="stable")
    ordered = path_keys[order]
    stale = np.zeros(len(order), bool)
    stale[order[:-1][ordered[:-1] == ordered[1:]]] = True
    del order, ordered, path_keys
    starts = np.cumsum([0, *sizes])
    for number, part in enumerate(names):
        rows = stale[starts[number]:starts[number + 1]]
        if rows.any():
            keep = np.flatnonzero(~rows)
            if len(keep):
                _write_atomic(out, PurePosixPath(part).name,
                              pq.read_table(part, filesystem=out.fs).take(pa.array(keep)))
            else:
                out.fs.delete_file(part)
    done = photo_keys[~stale & ~(failed_rows & retry_failed)]
    done.sort()
    return Scan(done, int(stale.sum()))


def drop_superseded(out: Path | Place) -> int:
    """Drop each photo's rows that a newer part replaces; returns how many rows went."""
    return scan(out).dropped


def done_photos(out: Path | Place, retry_failed: bool) -> set[Photo]:
    """Photos the results already hold (failed ones only without ``retry_failed``), as they were when captioned:
    for tests and small folders (a run uses ``scan``, which keeps no Python object per photo)."""
    done: set[Photo] = set()
    for table in iter_parts(out, columns=["path", "size", "mtime_ns", "status"]):
        for row in table.to_pylist():
            if row["status"] != FAILED or not retry_failed:
                done.add(Photo(row["path"], row["size"], row["mtime_ns"]))
    return done


def remove_temp_files(out: Path | Place) -> None:
    """A killed run's unfinished parts: never renamed into place, so nothing in them counts."""
    out = _place(out)
    if out.local:
        for temp in Path(out.path).glob(TEMP_PREFIX + "*"):
            temp.unlink(missing_ok=True)
        return
    for info in _listing(out):
        if info.base_name.startswith(TEMP_PREFIX):
            out.fs.delete_file(info.path)


def iter_parts(out: Path | Place, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The results, one part at a time."""
    out = _place(out)
    for part in parts(out):
        yield pq.read_table(part, columns=columns, filesystem=out.fs)


def read_results(out: Path | Place) -> pa.Table:
    """Every row of the results folder, in one table."""
    return pa.concat_tables(list(iter_parts(out)) or [SCHEMA.empty_table()])


class PartWriter:
    """Writes rows as they arrive into parts of about ``rows_per_part`` rows, or fewer after ``seconds``, so
    a long run's results reach the disk as it goes and a kill loses at most one part's worth."""

    def __init__(self, out: Path | Place, rows_per_part: int = 1000, seconds: float = 30.0):
        self.out, self.rows_per_part, self.seconds = _place(out), rows_per_part, seconds
        self.run = f"{time.time_ns():020d}"
        self.pending: list[pa.Table] = []
        self.rows = self.written = self.number = 0
        self.since = time.monotonic()

    def add(self, tables: Iterable[pa.Table]) -> None:
        for table in tables:
            self.pending.append(table)
            self.rows += table.num_rows
            if self.rows >= self.rows_per_part or time.monotonic() - self.since >= self.seconds:
                self.flush()

    def flush(self) -> None:
        if self.rows:
            self.number += 1
            _write_atomic(self.out, f"part-{self.run}-{self.number:06d}.parquet",
                          pa.concat_tables(self.pending).cast(SCHEMA))
            self.written += self.rows
        self.pending, self.rows, self.since = [], 0, time.monotonic()


def _write_atomic(out: Place, name: str, table: pa.Table) -> None:
    """A part appears whole or not at all: written under a temp name, then renamed (on object storage an upload
    appears whole when it completes; the move is a copy there, the temp name a leftover only if killed)."""
    temp = f"{out.path}/{TEMP_PREFIX}{os.getpid()}-{name}"
    if out.local:
        pq.write_table(table, temp)
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, f"{out.path}/{name}")
        return
    pq.write_table(table, temp, filesystem=out.fs)
    out.fs.move(temp, f"{out.path}/{name}")
