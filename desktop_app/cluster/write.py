"""Write a cluster run's results back (issue 31): each caption into its photo and the library index.

The cluster only captions; writing into photos happens here, in one local process, through the same
``keep.write_and_index`` as ``photocaption caption``, so the same rules hold: a person's caption is kept
unless asked to overwrite, the write is atomic and keeps the file's identity, and what the photo holds
afterwards is read back and indexed. A row is written only while the photo still has the size and
modification time it was captioned with: otherwise the caption may describe another picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop_app.captioning.captioner import CaptionResult
from desktop_app.cluster import results
from desktop_app.library.index import LibraryIndex
from desktop_app.library.keep import (WriteReport, index_photo, machine_details, machine_record, sweep_temp_files,
                                      write_and_index)
from desktop_app.metadata.store import WriteOptions, read_caption

CHANGED = "the photo changed since it was captioned (caption it again with cluster caption)"
ALREADY = "it holds this caption already (written back before)"
GONE = "the photo is gone"
NOT_CAPTIONED = "the cluster run could not caption it (cluster caption --retry-failed tries again)"
NOT_WRITTEN = "not written (--write none): indexed only"


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


def write_back(out: Path, options: WriteOptions, index: LibraryIndex | None, write: bool = True) -> WriteBackSummary:
    """Write every captioned row of the results folder ``out`` into its photo and index it (with an ``index``);
    without ``write`` (``--write none``) only index what the photos hold, with the model's details. Reads one
    part at a time (each photo has one row: every run ends by dropping superseded rows)."""
    summary = WriteBackSummary()
    swept: set[Path] = set()  # folders, not photos
    for table in results.iter_parts(out):
        rows = table.to_pylist()
        summary.rows += len(rows)
        if write:
            folders = {Path(r["path"]).parent for r in rows if r["status"] != results.FAILED} - swept
            sweep_temp_files([folder / "photo" for folder in folders])
            swept |= folders
        for row in rows:
            _write_row(row, options, index, write, summary)
    return summary


def _write_row(row: dict, options: WriteOptions, index: LibraryIndex | None, write: bool,
               summary: WriteBackSummary) -> None:
    path = Path(row["path"])
    why_not = NOT_CAPTIONED if row["status"] == results.FAILED else still_as_captioned(row)
    if why_not == CHANGED and holds_this_caption(row, options.sidecar_naming):
        why_not = ALREADY
    if why_not:
        summary.skip(why_not)
        return
    result = row_result(row)
    report = (write_and_index(path, machine_record(result, row["model_id"]), options, index) if write
              else WriteReport(path, skipped=NOT_WRITTEN))
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
