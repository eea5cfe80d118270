"""One model, many callers: photo decoding on a small thread pool, then the model in two stages.

As in the folder pipeline, one thread runs the encoder on batch n+1 while
another runs the beam search of batch n: the search is many small steps that
keep neither core busy alone. Batches form from the photos that arrive while
the model is busy: the encoder stage gathers until every photo accepted and not
yet in the search stage has joined (so the callers who were answered together
come back together), the batch is full, or the search stage is idle and the
first photo has waited ``max_wait``. Taking whatever had arrived as soon as the
encoder was free split the batches (2.3 photos with 8 clients) and cost more
than the overlap gained. Admission is bounded: at most ``max_queue`` photos are
accepted and not yet answered; past that a caller gets ``QueueFull`` at once
instead of joining an ever-growing backlog. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop_app.captioning.captioner import Captioner, CaptionResult, EncodedBatch
from desktop_app.captioning.decode import DecodeOptions
from desktop_app.photos.pixels import decode_pixels, load_pixels


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
    max_gather: float = 0.1  # seconds the encoder stage waits at most for a batch's stragglers while searching


@dataclass
class _Job:
    pixels: np.ndarray
    options: DecodeOptions
    future: Future
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    batches: int = 0
    photos: int = 0
    largest: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"batches": self.batches, "photos": self.photos, "largest_batch": self.largest,
                "mean_batch": round(self.photos / self.batches, 2) if self.batches else 0.0}


class CaptionService:
    def __init__(self, captioner: Captioner, options: ServiceOptions = ServiceOptions()):
        self.captioner, self.options = captioner, options
        self.stats = BatchStats()
        self._seconds_per_photo = 0.0  # moving average over recent batches, for Retry-After
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

    async def caption_file(self, path: Path, options: DecodeOptions) -> CaptionResult:
        pixels = await asyncio.get_running_loop().run_in_executor(
            self._decode, load_pixels, path, self.captioner.preprocessing)
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
                group_here = len(batch) >= self._admitted - self._searching
                search_idle = self._searching == 0
            waited = time.monotonic() - first.queued_at
            if group_here or waited >= (self.options.max_wait if search_idle else self.options.max_gather):
                break
            try:  # short waits while searching: the search stage going idle ends the gathering too
                more = self._jobs.get(timeout=self.options.max_wait - waited if search_idle else 0.002)
            except queue.Empty:
                continue
            if more is None:
                return batch, True
            batch.append(more)
        while len(batch) < self.options.max_batch:  # photos already queued ride along
            try:
                more = self._jobs.get_nowait()
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

    def _search_stage(self) -> None:
        while (item := self._encoded.get()) is not None:
            jobs, options, encoded = item
            start = time.perf_counter()
            try:
                results: list[CaptionResult] | Exception = self.captioner.search(encoded, options)
            except Exception as exc:  # an onnxruntime failure answers these callers, the stage goes on
                results = exc
            with self._lock:
                self._searching -= len(jobs)
            for n, job in enumerate(jobs):
                if isinstance(results, Exception):
                    job.future.set_exception(results)
                else:
                    job.future.set_result(results[n])
            pace = (time.perf_counter() - start) / len(jobs)  # the search is the slower stage
            self._seconds_per_photo = pace if not self._seconds_per_photo else 0.8 * self._seconds_per_photo + 0.2 * pace

    def close(self) -> None:
        self._jobs.put(None)
        for thread in self._stages:
            thread.join(timeout=30)
        self._decode.shutdown(wait=True, cancel_futures=True)
