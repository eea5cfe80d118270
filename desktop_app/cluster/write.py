"""Write a cluster run's results back (issue 31): each caption into its photo and the library index.

The cluster only captions; writing into photos happens here, in one local process, through the same
``keep.write_and_index`` as ``photocaption caption``, so the same rules hold: a person's caption is kept
unless asked to overwrite, the write is atomic and keeps the file's identity, and what the photo holds
afterwards is read back and indexed. A row is written only while the photo still has the size and
modification time it was captioned with: otherwise the caption may describe another picture.

Each write-back can be undone (``undo_write_back``, ``photocaption cluster undo``) with the app's undo journal
(``library.undo.WriteJournal``, which keeps what a write can change: a JPEG's header, a sidecar): journals of
at most ``JOURNAL_PHOTOS`` photos each, saved after every photo written, under ``RESULTS/_undo/write-<time>/``
(the leading ``_`` keeps Parquet readers out of it). Memory stays one journal's worth however many photos.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop_app.captioning.captioner import CaptionResult
from desktop_app.cluster import results
from desktop_app.library.index import LibraryIndex
from desktop_app.library.undo import WriteJournal
from desktop_app.library.keep import (WriteReport, index_photo, machine_details, machine_record, sweep_temp_files,
                                      write_and_index)
from desktop_app.metadata.store import WriteOptions, read_caption

CHANGED = "the photo changed since it was captioned (caption it again with cluster caption)"
ALREADY = "it holds this caption already (written back before)"
GONE = "the photo is gone"
NOT_CAPTIONED = "the cluster run could not caption it (cluster caption --retry-failed tries again)"
NOT_WRITTEN = "not written (--write none): indexed only"
UNDO_FOLDER = "_undo"
JOURNAL_PHOTOS = 20  # photos per undo journal: each save rewrites its journal's list, so it stays short


@dataclass
class WriteBackSummary:
    """What a write-back did: counts, and for each photo not written, why in words."""

    rows: int = 0
    written: int = 0
    kept_person: list[str] = field(default_factory=list)  # "path: what was kept, where"
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> photos
    failed: list[str] = field(default_factory=list)  # "path: why"
    warnings: list[str] = field(default_factory=list)  # "path: what" (written, but not in every place; not indexed)
    needs_review: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def row_result(row: dict) -> CaptionResult:
    """A result row as the captioner's result, for ``machine_record`` and ``machine_details``. The results keep
    no attention (where the model looked), so the app shows none for these captions."""
    words = row["caption"].split()  # the captioner's text is its words joined by spaces
    return CaptionResult(row["caption"], words, row["score"],
                         [(a["caption"], a["score"]) for a in row["alternatives"]],
                         np.zeros((len(words), 0), np.float32), list(row["keywords"]), row["confidence"],
                         bool(row["needs_review"]))


def still_as_captioned(row: dict) -> str:
    """Why the row no longer describes its photo, or "" when the photo has the size and time it was captioned with."""
    try:
        now = results.stat_photo(Path(row["path"]))
    except FileNotFoundError:
        return GONE
    return "" if (now.size, now.mtime_ns) == (row["size"], row["mtime_ns"]) else CHANGED


def holds_this_caption(row: dict, sidecar_naming: str) -> bool:
    """True when the photo holds the row's caption as the model wrote it: an embedded write-back changes the
    photo's size, so a second write-back must not call that "changed"."""
    try:
        saved = read_caption(Path(row["path"]), sidecar_naming)
    except Exception:  # unreadable now: it is "changed", as said
        return False
    return saved is not None and (saved.machine_text, saved.model_id) == (row["caption"], row["model_id"])


class Journals:
    """One write-back's undo journals, in ``RESULTS/_undo/write-<time>/``: a new one every ``JOURNAL_PHOTOS``
    photos, each saved after every photo it holds, so a write-back killed half-way is undone but for the photo
    in hand."""

    def __init__(self, out: Path):
        self.folder = out / UNDO_FOLDER / f"write-{time.time_ns():020d}"
        self.current: WriteJournal | None = None

    def journal(self) -> WriteJournal:
        if self.current is None or len(self.current) >= JOURNAL_PHOTOS:
            self.current = WriteJournal(f"cluster write {self.folder.name}", self.folder)
        return self.current

    def saved(self) -> None:
        if self.current is not None and len(self.current):
            self.current.save()

    def close(self) -> None:
        if self.current is not None and not len(self.current):
            self.current.discard()
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()


def write_back(out: Path, options: WriteOptions, index: LibraryIndex | None, write: bool = True,
               undo: bool = True) -> WriteBackSummary:
    """Write every captioned row of the results folder ``out`` into its photo and index it (with an ``index``);
    without ``write`` (``--write none``) only index what the photos hold, with the model's details. Reads one
    part at a time (each photo has one row: every run ends by dropping superseded rows). With ``undo``, what
    it writes can be put back by ``undo_write_back``."""
    summary = WriteBackSummary()
    journals = Journals(out) if write and undo else None
    swept: set[Path] = set()  # folders, not photos
    try:
        for table in results.iter_parts(out):
            rows = table.to_pylist()
            summary.rows += len(rows)
            if write:
                folders = {Path(r["path"]).parent for r in rows if r["status"] != results.FAILED} - swept
                sweep_temp_files([folder / "photo" for folder in folders])
                swept |= folders
            for row in rows:
                _write_row(row, options, index, write, summary, journals)
    finally:
        if journals is not None:
            journals.close()
    return summary


def write_backs(out: Path) -> list[Path]:
    """The write-backs that can be undone, oldest first."""
    return sorted((out / UNDO_FOLDER).glob("write-*"))


@dataclass
class UndoBack:
    """What undoing a write-back did."""

    name: str  # the write-back's folder name (write-<time>)
    restored: list[Path] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)  # (photo, why it was left as it is)
    warnings: list[str] = field(default_factory=list)  # "path: what" (put back, but not indexed)


def undo_write_back(out: Path, index: LibraryIndex | None, sidecar_naming: str = "ext") -> UndoBack | None:
    """Put the photos of the results folder ``out``'s last write-back back as they were (those another program
    changed since are left alone, named with why), and index what they hold again; None when there is none."""
    found = write_backs(out)
    if not found:
        return None
    report = UndoBack(found[-1].name)
    for folder in sorted(found[-1].glob("undo-*")):
        try:
            journal = WriteJournal.load(folder)
        except (OSError, ValueError):  # killed before its first photo was written: nothing to undo
            shutil.rmtree(folder, ignore_errors=True)
            continue
        undone = journal.undo()
        report.restored += undone.restored
        report.refused += undone.refused
    shutil.rmtree(found[-1], ignore_errors=True)
    for path in report.restored:  # the library learns what the photo holds again
        try:
            index_photo(index, path, sidecar_naming)
        except Exception as exc:
            report.warnings.append(f"{path}: put back, but not indexed: {exc}")
    return report


def _write_row(row: dict, options: WriteOptions, index: LibraryIndex | None, write: bool,
               summary: WriteBackSummary, journals: Journals | None) -> None:
    path = Path(row["path"])
    why_not = NOT_CAPTIONED if row["status"] == results.FAILED else still_as_captioned(row)
    if why_not == CHANGED and holds_this_caption(row, options.sidecar_naming):
        why_not = ALREADY
    if why_not:
        summary.skip(why_not)
        return
    result = row_result(row)
    if write:
        report = write_and_index(path, machine_record(result, row["model_id"]), options, index,
                                 journals.journal() if journals is not None else None)
        if journals is not None:
            journals.saved()
    else:
        report = WriteReport(path, skipped=NOT_WRITTEN)
    if report.error:
        summary.failed.append(f"{path}: {report.error}")
        return
    summary.warnings += [f"{path}: {warning}" for warning in report.warnings]
    try:
        if report.places:  # written, read back and indexed by write_and_index
            summary.written += 1
            summary.needs_review += result.needs_review
        else:  # the library learns what the photo holds instead
            saved = index_photo(index, path, options.sidecar_naming)
            if write and saved is not None and saved.written_by_person:
                summary.kept_person.append(f"{path}: {report.skipped}")
            else:
                summary.skip(report.skipped)
        if index is not None and (report.places or not write):  # confidence and needs-review, for the app
            index.save_details({path: machine_details(result, row["model_id"])})
    except Exception as exc:  # the photo stays out of the library, said by name; the others go on
        summary.warnings.append(f"{path}: not indexed: {exc}")
