"""One model, many callers: photo decoding on a small thread pool, then dynamic batching on one model thread.

Requests that arrive while the model is busy, or within ``max_wait`` of the
first one, go through the encoder and decoder as one batch (as the folder
pipeline's batches do). Admission is bounded: at most ``max_queue`` photos are
accepted and not yet answered; past that a caller gets ``QueueFull`` at once
instead of joining an ever-growing backlog. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop_app.captioning.captioner import Captioner, CaptionResult
from desktop_app.captioning.decode import DecodeOptions
from desktop_app.photos.pixels import load_pixels


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
    # Batches in the model at once. 2 lets one batch's NumPy decode loop overlap another's graphs, but on
    # 2 cores it split batches (mean 2.4 photos) and cost 5-15% more CPU per photo for no steady gain
    # (benchmarks/serve_load.py, interleaved runs 2026-11-23).
    model_workers: int = 1


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
        self._decode = ThreadPoolExecutor(max(options.decode_workers, 1), thread_name_prefix="serve-decode")
        self._models = [threading.Thread(target=self._run, name=f"serve-model-{n}", daemon=True)
                        for n in range(max(options.model_workers, 1))]
        for thread in self._models:
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
        """An uploaded photo, read exactly as the CLI reads files (``load_pixels``; ``PhotoError`` in words)."""
        pixels = await asyncio.get_running_loop().run_in_executor(self._decode, self._pixels_from_bytes, data)
        return await self._caption(pixels, options)

    async def caption_file(self, path: Path, options: DecodeOptions) -> CaptionResult:
        pixels = await asyncio.get_running_loop().run_in_executor(
            self._decode, load_pixels, path, self.captioner.preprocessing)
        return await self._caption(pixels, options)

    def _pixels_from_bytes(self, data: bytes) -> np.ndarray:
        """``load_pixels`` reads files: a private temp file keeps the CLI's exact reading path
        (format sniffing, EXIF orientation, JPEG draft decoding, pixel limits)."""
        fd, name = tempfile.mkstemp(prefix="photocaption-upload-")  # mode 0600, removed right after
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return load_pixels(Path(name), self.captioner.preprocessing)
        finally:
            os.unlink(name)

    async def _caption(self, pixels: np.ndarray, options: DecodeOptions) -> CaptionResult:
        future: Future = Future()
        self._jobs.put(_Job(pixels, options, future))
        return await asyncio.wrap_future(future)

    # --- the model thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch, stop = [job], False
            deadline = job.queued_at + self.options.max_wait  # a photo that already waited does not wait again
            while len(batch) < self.options.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    more = self._jobs.get(timeout=remaining) if remaining > 0 else self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[_Job]) -> None:
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]  # callers gone: skip
        if not batch:
            return
        with self._lock:  # counted before any caller hears back, so an answered caller sees its batch
            self.stats.batches += 1
            self.stats.photos += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
        groups: dict[DecodeOptions, list[_Job]] = {}
        for job in batch:
            groups.setdefault(job.options, []).append(job)
        start = time.perf_counter()
        for options, jobs in groups.items():
            try:
                results = self.captioner.caption_pixels(np.stack([job.pixels for job in jobs]), options)
            except Exception as exc:  # an onnxruntime failure answers these callers, the thread goes on
                for job in jobs:
                    job.future.set_exception(exc)
                continue
            for job, result in zip(jobs, results):
                job.future.set_result(result)
        pace = (time.perf_counter() - start) / len(batch)
        self._seconds_per_photo = pace if self.stats.batches == 1 else 0.8 * self._seconds_per_photo + 0.2 * pace

    def close(self) -> None:
        for _ in self._models:
            self._jobs.put(None)
        for thread in self._models:
            thread.join(timeout=30)
        self._decode.shutdown(wait=True, cancel_futures=True)
