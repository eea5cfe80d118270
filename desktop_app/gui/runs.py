"""Runs: captioning, writing and undoing on worker threads, the folder scan and model loading, with no widget
in sight.

The window starts and cancels runs here and shows what the signals say; tests drive a ``Runs``
without a window. One caption run or one writer at a time; the session takes every outcome.
The model is opened off the UI thread too (a few hundred milliseconds, seconds on a cold disk
or a GPU provider): the window never freezes while it loads.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from desktop_app.captioning.captioner import Captioner
from desktop_app.captioning.decode import DecodeOptions
from desktop_app.captioning.pipeline import PipelineOptions
from desktop_app.gui.background import Background
from desktop_app.gui.messages import count_of
from desktop_app.gui.session import PhotoItem, Session
from desktop_app.gui.settings import AppSettings
from desktop_app.gui.workers import CaptionWorker, ScanWorker, UndoWorker, WriteWorker


def open_captioner(settings: AppSettings) -> Captioner:
    """The model and provider these settings name (may raise BundleError or ProviderError); slow: called off the
    UI thread."""
    path = Path(settings.model_path) if settings.model_path else None
    return Captioner.open(path, provider=settings.provider)


class Runs(QObject):
    """Starts, pauses, cancels and finishes runs; keeps their workers, threads, counts and rate."""

    message = Signal(str, int)  # status text, milliseconds to show it (0: until the next one)
    started = Signal(int)  # a caption or write run of this many photos began
    progress = Signal(int)  # photos done so far
    rate = Signal(str)  # photos/s and time left of a caption run ("" once it ends)
    busy_changed = Signal()  # a run began or ended: what may be done now changed
    caption_finished = Signal()
    write_finished = Signal()
    undone = Signal()
    captions_read = Signal()  # the folder scan's captions are in the session
    model_changed = Signal(str)  # what to say about the model in use
    model_failed = Signal(str)  # why the model cannot be used
    settings_changed = Signal()  # the settings in use changed: keep them
    close_requested = Signal()  # the writes asked for before quitting are done
    open_requested = Signal(object)  # the writes asked for before opening this folder are done, all of them

    def __init__(self, session: Session, settings: AppSettings, index_path: Path, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.settings, self.index_path = session, settings, index_path
        self.captioner: Captioner | None = None
        self.caption_worker: CaptionWorker | None = None
        self.write_worker: WriteWorker | UndoWorker | None = None
        self.counts: dict[str, int] = {}  # this run's outcomes so far, by kind
        self.rate_start: tuple[float, int] | None = None  # (time, photos captioned) of the first delivery
        self.close_after_write = False  # quit once the running write is done
        self.open_after_write: Path | None = None  # open this folder once the running write is done
        self._threads: list[tuple[QThread, QObject]] = []
        self.loader = Background(1, self)
        self.loader.done.connect(self._model_loaded)
        self.loading: AppSettings | None = None  # the settings whose model is being opened
        self._after_load: tuple | None = None  # (folder, caption arguments) of the run waiting for the model

    @property
    def busy(self) -> bool:
        return self.caption_worker is not None or self.write_worker is not None or self.loading is not None

    def threads_running(self) -> bool:
        """Any worker still at work (the folder scan and model loading included)."""
        return bool(self._threads) or bool(self.loader.running)

    @property
    def model_id(self) -> str:
        return self.captioner.model_id if self.captioner else ""

    def load_model(self, settings: AppSettings) -> None:
        """Open the model these settings name, off the UI thread; ``model_changed`` or ``model_failed`` says how
        it went, and the settings take its model and provider only once it is open."""
        self.loading = settings
        self.message.emit("loading the model…", 0)
        self.loader.run(settings, lambda: open_captioner(settings))
        self.busy_changed.emit()

    @Slot(object, object, object)
    def _model_loaded(self, settings: AppSettings, captioner: Captioner | None, error: Exception | None) -> None:
        if not self.loader.running:  # (another model asked for meanwhile is still opening: still busy)
            self.loading = None
        waiting, self._after_load = self._after_load, None
        if error is not None:
            kept = "\n\nKept the model and provider in use." if self.captioner is not None or waiting is None else ""
            self.message.emit("", 0)
            self.model_failed.emit(f"{error}{kept}")
            self.busy_changed.emit()
            return
        self.captioner = captioner
        if (settings.model_path, settings.provider) != (self.settings.model_path, self.settings.provider):
            self.settings.model_path, self.settings.provider = settings.model_path, settings.provider
            self.settings_changed.emit()
        self.model_changed.emit(f"model: {captioner.model_id} on {captioner.provider}")
        self.message.emit("", 0)
        self.busy_changed.emit()
        if waiting is not None and waiting[0] == self.session.folder:  # a run asked for in the folder still open
            self._start_captioning(*waiting[1:])

    def use_settings(self, new: AppSettings) -> None:
        """Take new settings; a new model or provider is opened first (off the UI thread), and one that fails is
        neither used nor remembered (the model in use stays)."""
        swap = (new.model_path, new.provider) != (self.settings.model_path, self.settings.provider)
        self.settings = replace(new, model_path=self.settings.model_path, provider=self.settings.provider)
        self.settings_changed.emit()
        if swap:
            self.load_model(new)

    def _start(self, worker: QObject) -> QThread:
        thread = QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit)
        thread.finished.connect(self._forget_thread)  # a slot of this UI-thread object: runs on the UI thread
        self._threads.append((thread, worker))
        thread.start()
        return thread

    @Slot()
    def _forget_thread(self) -> None:
        finished = self.sender()
        self._threads = [(thread, worker) for thread, worker in self._threads if thread is not finished]

    # ---- the folder scan -------------------------------------------------------------------
    def scan(self, folder: Path) -> None:
        """Index the captions the folder's photos hold, in the background; ``captions_read`` when they are in."""
        s = self.settings
        worker = ScanWorker(self.index_path, folder, s.recursive, s.sidecar_naming)
        worker.finished.connect(self._captions_read)
        self._start(worker)

    def _captions_read(self, folder: Path, captions: dict) -> None:
        if Path(folder).resolve() != self.session.folder:
            return  # another folder was opened meanwhile: these captions are not its photos'
        self.session.apply_saved(captions)
        c = self.session.counts()
        self.message.emit(f"{count_of(c['photos'], 'photo')}, {c['captioned']} captioned"
                          + (f", {c['unsaved']} unsaved (kept from last time)" if self.session.restored_drafts else ""),
                          8000)
        self.captions_read.emit()

    # ---- captioning ------------------------------------------------------------------------
    def caption(self, paths: list[Path], recaption: bool, label: str = "Caption") -> bool:
        """Caption these photos on a worker thread (writing each as it comes if the settings say so); the model is
        opened first if it is not yet (the run then starts once it is, if the folder is still open)."""
        if not paths or self.busy:
            return False
        if self.captioner is None:
            self._after_load = (self.session.folder, list(paths), recaption, label)
            self.load_model(self.settings)
            return True
        return self._start_captioning(paths, recaption, label)

    def _start_captioning(self, paths: list[Path], recaption: bool, label: str) -> bool:
        s = self.settings
        self.session.start_run(label)  # drafts are not captioned again unasked: they are this run's first skips
        if not (paths := self.session.to_caption(paths, recaption, self.captioner.model_id,
                                                 not s.overwrite_person_captions)):
            self.message.emit(f"nothing to caption: skipped {self.session.run_skipped} (see Problems)", 8000)
            return False
        options = PipelineOptions(decode=DecodeOptions(beam_size=s.beam_size, max_length=s.max_length),
                                  recaption=recaption, protect_person_captions=not s.overwrite_person_captions,
                                  sidecar_naming=s.sidecar_naming)
        journal = self.session.new_journal(f"captions written as made ({count_of(len(paths), 'photo')})") \
            if s.write_as_captioned else None
        write = s.write_options() if journal is not None else None
        worker = CaptionWorker(self.captioner, paths, options, write, journal, self.index_path)
        worker.outcomes.connect(self._caption_outcomes)
        worker.progress.connect(self.caption_progress)
        worker.finished.connect(self._caption_finished)
        self.caption_worker = worker
        self.counts = {}
        self.rate_start = None
        self.started.emit(len(paths))
        self.rate.emit("estimating…")
        self._start(worker)
        self.busy_changed.emit()
        return True

    def _caption_outcomes(self, outcomes: list) -> None:
        """A bundle of finished photos from the worker: the session takes them (and keeps them as drafts)."""
        self._add_counts(self.session.apply_outcomes(outcomes, self.model_id))

    def _add_counts(self, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value

    def caption_progress(self, done: int, total: int, rate: float = 0.0, eta: float = 0.0) -> None:
        """The rate counts photos the model captioned (a skipped one costs it nothing), from the first delivered
        photo: the first batch pays for warming the model up."""
        self.progress.emit(done)
        now, made = time.perf_counter(), self.counts.get("captioned", 0)
        if self.rate_start is None:
            self.rate_start = (now, made)
            return
        start, made0 = self.rate_start
        if now - start < 1.0 or made - made0 < 2:
            return
        rate = (made - made0) / (now - start)
        left = (total - done) / rate
        self.rate.emit(f"{rate:.1f} photos/s, {int(left) // 60}:{int(left) % 60:02d} left")

    def _caption_finished(self, counts: dict, cancelled: bool, journal) -> None:
        self.caption_worker = None
        self.rate.emit("")
        if journal is not None:
            self.session.push_undo(journal)
        c = self.counts
        counts = {**counts, "skipped": counts["skipped"] + self.session.run_skipped}  # drafts left alone count too
        message = (f"{'Cancelled: ' if cancelled else ''}captioned {counts['captioned']}, skipped {counts['skipped']}, "
                   f"failed {counts['failed']}")
        if journal is not None:
            message += f"; written into {count_of(c.get('written', 0), 'photo')}, not written {c.get('not written', 0)}"
        elif counts["captioned"]:
            message += " (unsaved: Ctrl+Shift+S writes all)"
        if counts["skipped"] or counts["failed"] or c.get("not written"):
            message += "; see Problems"
        self.message.emit(message, 15000)
        self.caption_finished.emit()

    def toggle_pause(self) -> bool:
        """Pause or resume the caption run; True while it is paused."""
        worker = self.caption_worker
        if worker is None:
            return False
        if worker.pause_event.is_set():
            worker.pause_event.clear()
            self.message.emit("resumed", 2000)
            return False
        worker.pause_event.set()
        self.message.emit("paused", 0)
        return True

    def cancel(self) -> None:
        """Stop the caption run after its batch, or a write after its photo (an undo runs to its end)."""
        if self.caption_worker is not None:
            self.caption_worker.cancel_event.set()
            self.message.emit("cancelling after the current batch…", 0)
        elif isinstance(self.write_worker, WriteWorker):
            self.write_worker.cancel_event.set()
            self.message.emit("stopping after the current photo…", 0)

    def stop_captioning(self) -> None:
        """Cancel the caption run and wait for its thread (its captions so far are drafts already)."""
        if self.caption_worker is None:
            return
        self.caption_worker.cancel_event.set()
        for thread, worker in list(self._threads):
            if worker is self.caption_worker:
                thread.quit()
                thread.wait(30000)

    def wait_all(self) -> None:
        """Let every worker's thread end (on closing)."""
        self.loader.wait()
        for thread, _ in list(self._threads):
            thread.quit()
            thread.wait(10000)

    # ---- writing ---------------------------------------------------------------------------
    def write(self, items: list[PhotoItem]) -> bool:
        """Write these photos' unsaved captions and keyword edits, on the writer thread; undoable."""
        if self.busy:
            self.message.emit("wait for the current captioning or writing to finish", 5000)
            return False
        jobs = self.session.write_jobs(items, self.model_id)
        if not jobs:
            self.message.emit("nothing to write: no unsaved captions or keyword edits", 3000)
            return False
        journal = self.session.new_journal(f"write of {len(jobs)} photo{'s' if len(jobs) > 1 else ''}")
        worker = WriteWorker(jobs, self.settings.write_options(), journal, self.index_path)
        worker.written.connect(self._written)
        worker.progress.connect(self._write_progress)  # a method of this UI-thread object: runs on the UI thread
        worker.finished.connect(self._write_finished)
        self.write_worker = worker
        self.session.start_run(f"Write {count_of(len(jobs), 'photo')}")
        self.counts = {}
        self.started.emit(len(jobs))
        self.message.emit(f"writing {count_of(len(jobs), 'caption')}…", 0)
        self._start(worker)
        self.busy_changed.emit()
        return True

    def _write_progress(self, done: int, total: int) -> None:
        self.progress.emit(done)

    def _written(self, reports: list) -> None:
        self._add_counts(self.session.apply_writes(reports))

    def _write_finished(self, journal, cancelled: bool) -> None:
        self.write_worker = None
        self.session.push_undo(journal)
        c = self.counts
        written, skipped, failed = c.get("written", 0), c.get("skipped", 0), c.get("failed", 0)
        message = f"{'Stopped: ' if cancelled else ''}wrote {count_of(written, 'photo')}"
        if skipped or failed:
            message += f", skipped {skipped}, failed {failed} (see Problems)"
        if written:
            message += " (Ctrl+Alt+Z undoes)"
        self.message.emit(message, 15000)
        self.write_finished.emit()
        if self.close_after_write:
            self.close_after_write = False
            QTimer.singleShot(0, self.close_requested.emit)
        elif self.open_after_write is not None:
            folder, self.open_after_write = self.open_after_write, None
            if not failed:  # all written: go on to the folder asked for (after a failure, stay and show why)
                QTimer.singleShot(0, lambda: self.open_requested.emit(folder))

    def undo_write(self) -> None:
        """Put the last write back, on the writer thread."""
        if self.busy or not self.session.undo_stack:
            return
        journal = self.session.pop_undo()
        worker = UndoWorker(journal, self.settings.sidecar_naming, self.index_path)
        worker.finished.connect(self._undone)
        self.write_worker = worker
        self.message.emit(f"undoing the {journal.label}…", 0)
        self._start(worker)
        self.busy_changed.emit()

    def _undone(self, report, saved: dict) -> None:
        self.write_worker = None
        self.session.apply_undo(report, saved)
        message = f"restored {count_of(len(report.restored), 'photo')} as they were before the write"
        if report.refused:
            message += f"; {len(report.refused)} left as they are (see Problems)"
        self.message.emit(message, 10000)
        self.undone.emit()
