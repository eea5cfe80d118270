"""Long work off the UI thread: captioning a batch, writing captions, scanning a folder.

Each worker is a QObject moved to its own QThread; it talks to ``runs.Runs`` only
through queued signals, so the event loop never blocks. Every write goes through
``library.keep.write_and_index`` (as the CLI's do): remember for undo, write, read back
what the photo now holds and index it, all on the worker's thread (each worker opens
the index itself; every index operation uses its own short connection).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.captioning.captioner import Captioner
from desktop_app.captioning.pipeline import PipelineOptions, PhotoOutcome, Progress, caption_photos
from desktop_app.library.index import LibraryIndex
from desktop_app.library.keep import WriteReport, machine_record, sweep_temp_files, write_and_index
from desktop_app.library.undo import WriteJournal
from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import WriteOptions, read_caption


class CaptionWorker(QObject):
    """Captions photos; with ``write`` set, also writes each caption into its photo as it comes.

    Outcomes reach the window in bundles (a model batch's worth, or every quarter second), not
    one signal per photo: each delivery makes the UI thread take the GIL from the busy worker
    threads, and 64 of them per batch showed up as 150 ms stalls of the event loop.
    """

    outcomes = Signal(list)  # [(PhotoOutcome, WriteReport or None)]
    progress = Signal(int, int, float, float)  # done, total, photos/s, eta seconds
    finished = Signal(object, bool, object)  # counts dict, cancelled, WriteJournal or None
    FLUSH_SECONDS = 0.25

    def __init__(self, captioner: Captioner, paths: list[Path], options: PipelineOptions,
                 write: WriteOptions | None = None, journal: WriteJournal | None = None,
                 index_path: Path | None = None):
        super().__init__()
        self.captioner, self.paths, self.options, self.write = captioner, paths, options, write
        self.cancel_event, self.pause_event = threading.Event(), threading.Event()
        self.journal = journal if write else None
        self.index_path = index_path
        self._index: LibraryIndex | None = None
        self._pending: list[tuple[PhotoOutcome, WriteReport | None]] = []
        self._last: Progress | None = None
        self._flushed_at = float("-inf")  # the first photo is shown at once

    def _on_outcome(self, outcome: PhotoOutcome) -> None:
        report = None
        if self.write and outcome.result is not None:
            record = machine_record(outcome.result, self.captioner.model_id)
            report = write_and_index(outcome.path, record, self.write, self._index, self.journal)
        self._pending.append((outcome, report))

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
        if self.write:
            sweep_temp_files(self.paths)
        if self.write and self.index_path is not None:
            self._index = LibraryIndex(self.index_path)
        try:
            counts = caption_photos(self.paths, self.captioner, self.options, self._on_outcome, self._on_progress,
                                    self.cancel_event, self.pause_event)
        finally:
            if self._index is not None:
                self._index.close()
        self._flush()
        self.finished.emit(counts, self.cancel_event.is_set(), self.journal)


class WriteWorker(QObject):
    """Writes captions into photos (the app's one writer while no captioning runs), each undoable."""

    written = Signal(list)  # [WriteReport], a bundle at a time
    progress = Signal(int, int)  # done, total
    finished = Signal(object, bool)  # the WriteJournal of this batch, cancelled
    FLUSH_SECONDS = 0.2

    def __init__(self, jobs: list[tuple[Path, CaptionRecord]], options: WriteOptions, journal: WriteJournal,
                 index_path: Path | None = None):
        super().__init__()
        self.jobs, self.options, self.journal, self.index_path = jobs, options, journal, index_path
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        sweep_temp_files([path for path, _ in self.jobs])
        index = LibraryIndex(self.index_path) if self.index_path is not None else None
        pending: list[WriteReport] = []
        flushed = time.monotonic()
        try:
            for n, (path, record) in enumerate(self.jobs, 1):
                if self.cancel_event.is_set():
                    break
                pending.append(write_and_index(path, record, self.options, index, self.journal))
                if time.monotonic() - flushed >= self.FLUSH_SECONDS:
                    self.written.emit(pending)
                    self.progress.emit(n, len(self.jobs))
                    pending, flushed = [], time.monotonic()
        finally:
            if index is not None:
                index.close()
        if pending:
            self.written.emit(pending)
        self.finished.emit(self.journal, self.cancel_event.is_set())


class ScanWorker(QObject):
    """Indexes the captions already in a folder's photos, then hands them to the window."""

    finished = Signal(object, object)  # the folder, dict: path -> (caption, source, keywords)

    def __init__(self, index_path: Path, folder: Path, recursive: bool, sidecar_naming: str):
        super().__init__()
        self.index_path, self.folder, self.recursive, self.naming = index_path, folder, recursive, sidecar_naming

    @Slot()
    def run(self) -> None:
        from desktop_app.library.index import LibraryIndex

        index = LibraryIndex(self.index_path)
        try:
            index.scan([self.folder], self.recursive, self.naming)
            self.finished.emit(self.folder, index.captions_under(self.folder))
        finally:
            index.close()


class UndoWorker(QObject):
    """Puts a write batch back, then reads back and indexes what the photos hold again."""

    finished = Signal(object, object)  # UndoReport, {photo: CaptionRecord or None}

    def __init__(self, journal: WriteJournal, sidecar_naming: str, index_path: Path | None = None):
        super().__init__()
        self.journal, self.naming, self.index_path = journal, sidecar_naming, index_path

    @Slot()
    def run(self) -> None:
        report = self.journal.undo()
        saved: dict[Path, CaptionRecord | None] = {}
        index = LibraryIndex(self.index_path) if self.index_path is not None else None
        try:
            for path in report.restored:
                try:
                    saved[path] = read_caption(path, self.naming)
                except Exception:  # restored, but unreadable now: shown without a caption
                    saved[path] = None
                if index is not None:
                    index.record(path, saved[path])
        finally:
            if index is not None:
                index.close()
        self.finished.emit(report, saved)
