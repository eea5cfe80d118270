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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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


def parts(out: Path) -> list[Path]:
    """The complete parts, oldest first (their names sort by the run's start, then the part number)."""
    return sorted(out.glob(PART_GLOB))


def drop_superseded(out: Path) -> int:
    """Drop each photo's rows that a newer part replaces; returns how many rows went. Runs at the start and end
    of every run, so a run killed between writing a retried photo and dropping its old row is tidied next time."""
    newest: dict[str, Path] = {}
    columns: dict[Path, list[str]] = {}
    for part in parts(out):
        columns[part] = pq.read_table(part, columns=["path"]).column("path").to_pylist()
        for path in columns[part]:
            newest[path] = part
    dropped = 0
    for part, paths in columns.items():
        stale = [i for i, path in enumerate(paths) if newest[path] != part]
        if not stale:
            continue
        dropped += len(stale)
        keep = sorted(set(range(len(paths))) - set(stale))
        if keep:
            _write_atomic(out, part.name, pq.read_table(part).take(keep))
        else:
            part.unlink()
    return dropped


def done_photos(out: Path, retry_failed: bool) -> set[Photo]:
    """Photos the results already hold (failed ones only without ``retry_failed``), as they were when captioned."""
    done: set[Photo] = set()
    for part in parts(out):
        table = pq.read_table(part, columns=["path", "size", "mtime_ns", "status"]).to_pydict()
        for path, size, mtime_ns, status in zip(table["path"], table["size"], table["mtime_ns"], table["status"]):
            if status != FAILED or not retry_failed:
                done.add(Photo(path, size, mtime_ns))
    return done


def remove_temp_files(out: Path) -> None:
    """A killed run's unfinished parts: never renamed into place, so nothing in them counts."""
    for temp in out.glob(TEMP_PREFIX + "*"):
        temp.unlink(missing_ok=True)


def read_results(out: Path) -> pa.Table:
    """Every row of the results folder, in one table."""
    return pa.concat_tables([pq.read_table(part) for part in parts(out)] or [SCHEMA.empty_table()])


class PartWriter:
    """Writes rows as they arrive into parts of about ``rows_per_part`` rows, or fewer after ``seconds``, so
    a long run's results reach the disk as it goes and a kill loses at most one part's worth."""

    def __init__(self, out: Path, rows_per_part: int = 1000, seconds: float = 30.0):
        self.out, self.rows_per_part, self.seconds = out, rows_per_part, seconds
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


def _write_atomic(out: Path, name: str, table: pa.Table) -> None:
    temp = out / f"{TEMP_PREFIX}{os.getpid()}-{name}"
    pq.write_table(table, temp)
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, out / name)
