"""Long work off the UI thread: captioning a batch, writing captions, scanning a folder.

Each worker is a QObject moved to its own QThread; it talks to the window only
through queued signals, so the event loop never blocks.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.captioning.captioner import Captioner
from desktop_app.captioning.pipeline import PipelineOptions, PhotoOutcome, Progress, caption_photos
from desktop_app.metadata.journal import WriteJournal
from desktop_app.metadata.record import MACHINE, CaptionRecord
from desktop_app.metadata.store import MetadataError, WriteOptions, write_caption


class CaptionWorker(QObject):
    """Captions photos; with ``write`` set, also writes each caption into its photo as it comes.

    Outcomes reach the window in bundles (a model batch's worth, or every quarter second), not
    one signal per photo: each delivery makes the UI thread take the GIL from the busy worker
    threads, and 64 of them per batch showed up as 150 ms stalls of the event loop.
    """

    outcomes = Signal(list)  # [(PhotoOutcome, where it was written or "")]
    progress = Signal(int, int, float, float)  # done, total, photos/s, eta seconds
    finished = Signal(object, bool, object)  # counts dict, cancelled, WriteJournal or None
    FLUSH_SECONDS = 0.25

    def __init__(self, captioner: Captioner, paths: list[Path], options: PipelineOptions,
                 write: WriteOptions | None = None):
        super().__init__()
        self.captioner, self.paths, self.options, self.write = captioner, paths, options, write
        self.cancel_event, self.pause_event = threading.Event(), threading.Event()
        self.journal = WriteJournal() if write else None
        self._pending: list[tuple[PhotoOutcome, str]] = []
        self._last: Progress | None = None
        self._flushed_at = float("-inf")  # the first photo is shown at once

    def _on_outcome(self, outcome: PhotoOutcome) -> None:
        places = ""
        if self.write and outcome.result is not None:
            r = outcome.result
            record = CaptionRecord(r.text, MACHINE, self.captioner.model_id, r.keywords, r.score)
            try:
                self.journal.remember(outcome.path)
                result = write_caption(outcome.path, record, self.write)
                places = ", ".join(result.places)
                outcome.message = result.skipped or "; ".join(result.warnings)
            except (MetadataError, OSError) as exc:
                outcome.message = f"caption made but not written: {exc}"
        self._pending.append((outcome, places))

    def _on_progress(self, progress: Progress) -> None:
        self._last = progress
        if len(self._pending) >= self.options.batch_size or time.monotonic() - self._flushed_at >= self.FLUSH_SECONDS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.outcomes.emit(self._pending)
            self._pending = []
        if self._last is not None:
            p = self._last
            self.progress.emit(p.done, p.total, p.rate, p.eta)
        self._flushed_at = time.monotonic()

    @Slot()
    def run(self) -> None:
        counts = caption_photos(self.paths, self.captioner, self.options, self._on_outcome, self._on_progress,
                                self.cancel_event, self.pause_event)
        self._flush()
        self.finished.emit(counts, self.cancel_event.is_set(), self.journal)


class WriteWorker(QObject):
    """Writes captions into photos, remembering each photo first so the batch can be undone."""

    written = Signal(str, str, str)  # path, places or "", problem or ""
    finished = Signal(object)  # the WriteJournal of this batch

    def __init__(self, jobs: list[tuple[Path, CaptionRecord]], options: WriteOptions):
        super().__init__()
        self.jobs, self.options = jobs, options
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        journal = WriteJournal()
        for path, record in self.jobs:
            if self.cancel_event.is_set():
                break
            try:
                journal.remember(path)
                result = write_caption(path, record, self.options)
                self.written.emit(str(path), ", ".join(result.places), result.skipped or "; ".join(result.warnings))
            except (MetadataError, OSError) as exc:
                self.written.emit(str(path), "", str(exc))
        self.finished.emit(journal)


class ScanWorker(QObject):
    """Indexes the captions already in a folder's photos, then hands them to the window."""

    finished = Signal(object)  # dict: path -> (caption, source, keywords)

    def __init__(self, index_path: Path, folder: Path, recursive: bool, sidecar_naming: str):
        super().__init__()
        self.index_path, self.folder, self.recursive, self.naming = index_path, folder, recursive, sidecar_naming

    @Slot()
    def run(self) -> None:
        from desktop_app.library.index import LibraryIndex

        index = LibraryIndex(self.index_path)
        try:
            index.scan([self.folder], self.recursive, self.naming)
            self.finished.emit(index.captions_under(self.folder))
        finally:
            index.close()
