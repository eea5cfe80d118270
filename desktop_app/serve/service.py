"""One model, many callers: photo decoding on a small thread pool, then the model in two stages.

As in the folder pipeline, one thread runs the encoder while another runs the
beam search: the search is many small steps that keep neither core busy alone.
The search is continuous: a batch encoded while a search runs joins it at the
next step (``BeamSearch``), so each step graph call runs on every photo in
flight instead of on one batch that empties as its photos end, and each photo
is answered as soon as its own search ends. So the encoder stage has no reason
to hold photos back while the search is busy: it encodes whatever has arrived;
only when the search is idle does the first photo wait ``max_wait`` for
company. Only photos with the same decode options share a search (each set of
options has its own, stepped in turn); greedy (beam 1) batches are searched
whole. Admission is bounded: at most ``max_queue`` photos are accepted and not
yet answered; past that a caller gets ``QueueFull`` at once instead of joining
an ever-growing backlog. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

import numpy as np

from desktop_app.captioning.captioner import Captioner, CaptionResult, EncodedBatch
from desktop_app.captioning.decode import BeamSearch, DecodeOptions
from desktop_app.photos.pixels import decode_pixels, read_pixels


class QueueFull(Exception):
    """More photos are waiting than the service accepts; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"the server is busy: too many photos waiting; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class ServiceOptions:
    max_batch: int = 32  # photos per model batch, as the folder pipeline
    max_wait: float = 0.005  # seconds the first photo of a batch waits for company
    max_queue: int = 64  # photos accepted and not yet answered
    decode_workers: int = 2  # threads turning photo files into pixels


@dataclass
class _Job:
    pixels: np.ndarray
    options: DecodeOptions
    future: Future
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    batches: int = 0  # encoder batches
    photos: int = 0
    largest: int = 0
    steps: int = 0  # beam search steps (one step graph call for every photo in flight)
    step_photos: int = 0  # photos fed to those steps, summed over steps
    joined: int = 0  # encoder batches that joined a beam search already running

    def as_dict(self) -> dict[str, float]:
        return {"batches": self.batches, "photos": self.photos, "largest_batch": self.largest,
                "mean_batch": round(self.photos / self.batches, 2) if self.batches else 0.0,
                "search_steps": self.steps, "joined_running_search": self.joined,
                "mean_photos_per_step": round(self.step_photos / self.steps, 2) if self.steps else 0.0}


Outcome = list[CaptionResult] | Exception  # a batch's results, or why none came
T = TypeVar("T")


def _attempt(make: Callable[[], T]) -> T | Exception:
    """``make()``, or the exception it raised: an onnxruntime failure answers its callers, the stage goes on."""
    try:
        return make()
    except Exception as exc:
        return exc


class CaptionService:
    def __init__(self, captioner: Captioner, options: ServiceOptions = ServiceOptions()):
        self.captioner, self.options = captioner, options
        self.stats = BatchStats()
        self._seconds_per_photo = 0.0  # moving average over recent batches, for Retry-After
        self._paced_from = 0.0  # the search stage's last answer, or when it last went busy
        self._admitted = 0
        self._lock = threading.Lock()
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        # Encoded batches waiting for the search stage: one at most, so the encoder never runs ahead of it.
        self._encoded: queue.Queue[tuple[list[_Job], DecodeOptions, EncodedBatch] | None] = queue.Queue(maxsize=1)
        self._searching = 0  # photos handed to the search stage and not yet answered
        self._decode = ThreadPoolExecutor(max(options.decode_workers, 1), thread_name_prefix="serve-decode")
        self._stages = [threading.Thread(target=self._encode_stage, name="serve-encode", daemon=True),
                        threading.Thread(target=self._search_stage, name="serve-search", daemon=True)]
        for thread in self._stages:
            thread.start()

    # --- admission -------------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        """Photos accepted and not yet answered (being read, queued for the model, or in it)."""
        return self._admitted

    @property
    def queued(self) -> int:
        """Photos read and waiting for the model."""
        return self._jobs.qsize()

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold one of the ``max_queue`` places for a photo from request to answer, or raise ``QueueFull``."""
        with self._lock:
            if self._admitted >= self.options.max_queue:
                raise QueueFull(self._retry_after())
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    def _retry_after(self) -> int:
        """Seconds until the photos waiting now are done at the recent pace (at least 1)."""
        return max(1, int(np.ceil(self._admitted * self._seconds_per_photo)))

    # --- captioning ------------------------------------------------------------------------
    async def caption_bytes(self, data: bytes, options: DecodeOptions) -> CaptionResult:
        """An uploaded photo, read as the CLI reads files (``decode_pixels``; ``PhotoError`` in words), in memory."""
        pixels = await asyncio.get_running_loop().run_in_executor(
            self._decode, decode_pixels, data, self.captioner.preprocessing)
        return await self._caption(pixels, options)

    async def caption_file(self, handle: BinaryIO, name: str, options: DecodeOptions) -> CaptionResult:
        """A photo file the caller opened (``AllowedFolders.open``), read through that handle only."""
        pixels = await asyncio.get_running_loop().run_in_executor(
            self._decode, read_pixels, handle, name, self.captioner.preprocessing)
        return await self._caption(pixels, options)

    async def _caption(self, pixels: np.ndarray, options: DecodeOptions) -> CaptionResult:
        future: Future = Future()
        self._jobs.put(_Job(pixels, options, future))
        return await asyncio.wrap_future(future)

    # --- the model: encoder stage, then search stage ---------------------------------------------
    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """``first`` and the photos that join it (see the module docstring); True when close() was called."""
        batch = [first]
        while len(batch) < self.options.max_batch:
            with self._lock:
                search_idle = self._searching == 0
            wait = self.options.max_wait - (time.monotonic() - first.queued_at) if search_idle else 0.0
            try:
                more = self._jobs.get(timeout=wait) if wait > 0 else self._jobs.get_nowait()
            except queue.Empty:
                break
            if more is None:
                return batch, True
            batch.append(more)
        return batch, False

    def _encode_stage(self) -> None:
        stop = False
        while not stop:
            job = self._jobs.get()
            if job is None:
                break
            batch, stop = self._gather(job)
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]  # callers gone: skip
            if not batch:
                continue
            with self._lock:  # counted before any caller hears back, so an answered caller sees its batch
                self.stats.batches += 1
                self.stats.photos += len(batch)
                self.stats.largest = max(self.stats.largest, len(batch))
            groups: dict[DecodeOptions, list[_Job]] = {}
            for job in batch:
                groups.setdefault(job.options, []).append(job)
            for options, jobs in groups.items():
                try:
                    encoded = self.captioner.encode_batch(np.stack([job.pixels for job in jobs]))
                except Exception as exc:  # an onnxruntime failure answers these callers, the stage goes on
                    for job in jobs:
                        job.future.set_exception(exc)
                    continue
                with self._lock:
                    self._searching += len(jobs)
                self._encoded.put((jobs, options, encoded))
        self._encoded.put(None)

    def _arrivals(self, wait: bool) -> list[tuple[list[_Job], DecodeOptions, EncodedBatch] | None]:
        """Encoded batches handed over since the last step (None: close() was called); with ``wait``, at least
        one (nothing is being searched)."""
        arrived = []
        try:
            arrived.append(self._encoded.get(block=wait))
            while True:
                arrived.append(self._encoded.get_nowait())
        except queue.Empty:
            return arrived

    def _search_stage(self) -> None:
        """One running beam search per set of decode options, stepped in turn; encoded batches join theirs at the
        next step and each batch is answered as soon as its photos have ended. Greedy (beam 1) costs a few
        steps a photo: its batches are searched whole, at once."""
        searches: dict[DecodeOptions, BeamSearch] = {}
        closing = False
        while searches or not closing:
            arrived = self._arrivals(wait=not searches and not closing)
            if not searches:
                self._paced_from = time.perf_counter()  # busy again: the pace counts from here
            running = set(searches)  # searches past their first step
            for item in arrived:
                if item is None:
                    closing = True
                    continue
                jobs, options, encoded = item
                if options.beam_size < 2:
                    self._answer(jobs, _attempt(lambda: self.captioner.search(encoded, options)))
                    continue
                if options not in searches:
                    searches[options] = self.captioner.running_search(options)
                failed = _attempt(lambda: searches[options].add(encoded.features, encoded.bias, (jobs, encoded)))
                if isinstance(failed, Exception):
                    self._answer(jobs, failed)
                elif options in running:
                    with self._lock:
                        self.stats.joined += 1
            for options, search in list(searches.items()):
                if not (search and self._step(search)):
                    del searches[options]

    def _step(self, search: BeamSearch) -> bool:
        """One step of ``search``; answers the photos that ended at it (all of its photos, if it failed). False
        when nothing is left to search."""
        fed = search.photos
        try:
            ended = search.step()
        except Exception as exc:
            for (jobs, _), unanswered in search.pending:
                self._answer([jobs[photo] for photo in unanswered], exc)
            return False
        with self._lock:
            self.stats.steps += 1
            self.stats.step_photos += fed
        for (jobs, encoded), photo, caption in ended:
            self._answer([jobs[photo]], _attempt(lambda: [self.captioner.result(encoded, photo, caption)]))
        return len(search) > 0

    def _answer(self, jobs: list[_Job], outcome: Outcome) -> None:
        """Each caller's result (or the failure), and the pace for Retry-After: search time per photo answered."""
        with self._lock:
            self._searching -= len(jobs)
        for n, job in enumerate(jobs):
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome[n])
        now = time.perf_counter()
        pace, self._paced_from = (now - self._paced_from) / len(jobs), now
        self._seconds_per_photo = pace if not self._seconds_per_photo else 0.8 * self._seconds_per_photo + 0.2 * pace

    def close(self) -> None:
        self._jobs.put(None)
        for thread in self._stages:
            thread.join(timeout=30)
        self._decode.shutdown(wait=True, cancel_futures=True)
