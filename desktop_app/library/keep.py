"""Keep a caption: write it into the photo, read back what the photo now holds, and index that.

The one path ``photocaption caption`` and the desktop app's writers take (as every Picard front end
calls ``File.save``), Qt-free. A photo that cannot be written, read back or indexed is a report the
caller shows, never an exception that stops the batch and never silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.library.index import Details, LibraryIndex
from desktop_app.library.undo import WriteJournal
from desktop_app.metadata.atomic import remove_stale_temp_files
from desktop_app.metadata.record import MACHINE, CaptionRecord
from desktop_app.metadata.store import MetadataError, WriteOptions, read_caption, write_caption

if TYPE_CHECKING:
    from desktop_app.captioning.captioner import CaptionResult


@dataclass
class WriteReport:
    """One photo's write, as the writer saw it."""

    path: Path
    places: list[str] = field(default_factory=list)
    skipped: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    saved: CaptionRecord | None = None  # what the photo holds now, read back after the write


def machine_record(result: CaptionResult, model_id: str) -> CaptionRecord:
    """What is written for a caption the model made."""
    return CaptionRecord(result.text, MACHINE, model_id, result.keywords, result.score,
                         needs_review=result.needs_review, confidence=result.confidence)


def machine_details(result: CaptionResult, model_id: str) -> Details:
    """What the index keeps of a caption the model made besides its text (for review in the app)."""
    return Details(result.text, model_id, list(result.words), list(result.alternatives), result.attention,
                   result.confidence, bool(result.needs_review))


def index_photo(index: LibraryIndex | None, path: Path, sidecar_naming: str) -> CaptionRecord | None:
    """Read what the photo holds and index it (with an index); raises what reading or indexing raises."""
    saved = read_caption(path, sidecar_naming)
    if index is not None:
        index.record(path, saved)
    return saved


def write_and_index(path: Path, record: CaptionRecord, options: WriteOptions, index: LibraryIndex | None,
                    journal: WriteJournal | None = None) -> WriteReport:
    """Write one caption (remembered in ``journal`` for undo) and say what happened: written (where, and what
    the photo holds now, indexed), skipped (why) or failed (why)."""
    try:
        if journal is not None:
            journal.remember(path)
        result = write_caption(path, record, options)
    except (MetadataError, OSError) as exc:
        _forget(journal, path)
        return WriteReport(path, error=str(exc))
    except Exception as exc:  # one photo must never stop the batch: it fails alone, named to the person
        _forget(journal, path)
        return WriteReport(path, error=f"unexpected error: {type(exc).__name__}: {exc}")
    if not result.places:
        _forget(journal, path)
        return WriteReport(path, skipped=result.skipped or "nothing was written", warnings=list(result.warnings))
    if journal is not None:
        journal.written(path)
    report = WriteReport(path, list(result.places), "", list(result.warnings))
    try:
        report.saved = index_photo(index, path, options.sidecar_naming)
    except Exception as exc:  # written, but reading it back failed: say so, keep going
        report.warnings.append(f"written, but could not be read back or indexed: {exc}")
    return report


def sweep_temp_files(paths: list[Path]) -> None:
    """Remove a killed run's hidden temp files beside these photos, even when this batch writes nothing."""
    for folder in sorted({Path(path).parent for path in paths}):
        remove_stale_temp_files(folder, force=True)


def _forget(journal: WriteJournal | None, path: Path) -> None:
    if journal is not None:
        journal.forget(path)
