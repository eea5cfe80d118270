"""Caption many photos: decode on worker threads while the model runs on batches.

Three stages run at once: Pillow decodes photos on a small thread pool (it
releases the GIL), an encoder thread runs the encoder on batch n+1, and this
thread runs the beam search of batch n. The search is many small steps that
keep neither core busy alone, so without the overlap the encoder would wait
for it. Each photo ends as exactly one ``PhotoOutcome``; a bad photo is a
"failed" outcome with a reason, never an exception that stops the batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop_app.captioning.captioner import Captioner, CaptionResult
from desktop_app.captioning.decode import DecodeOptions
from desktop_app.metadata.record import MACHINE
from desktop_app.metadata.store import MetadataError, read_caption
from desktop_app.photos.pixels import PhotoError, load_pixels

CAPTIONED, SKIPPED, FAILED = "captioned", "skipped", "failed"


@dataclass
class PhotoOutcome:
    path: Path
    status: str  # CAPTIONED, SKIPPED or FAILED
    result: CaptionResult | None = None
    message: str = ""


@dataclass
class Progress:
    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        return (self.total - self.done) / self.rate if self.rate > 0 else float("inf")


@dataclass(frozen=True)
class PipelineOptions:
    decode: DecodeOptions = DecodeOptions()
    batch_size: int = 32  # the decoder step costs per row, but bigger batches read its weights fewer times
    decode_workers: int = 2
    recaption: bool = False  # caption again photos this model already captioned
    protect_person_captions: bool = True  # skip photos whose caption a person wrote (no point computing one)
    sidecar_naming: str = "ext"


class Cancelled(Exception):
    pass


def caption_photos(paths: Sequence[Path], captioner: Captioner, options: PipelineOptions = PipelineOptions(),
                   on_outcome: Callable[[PhotoOutcome], None] = lambda outcome: None,
                   on_progress: Callable[[Progress], None] = lambda progress: None,
                   cancel: threading.Event | None = None, pause: threading.Event | None = None) -> dict[str, int]:
    """Caption ``paths`` in order; returns counts per status. ``cancel`` stops after the current batch."""
    cancel = cancel or threading.Event()
    spec = captioner.preprocessing
    counts = {CAPTIONED: 0, SKIPPED: 0, FAILED: 0}
    start, done = time.perf_counter(), 0

    def prepare(path: Path) -> np.ndarray | PhotoOutcome:
        try:
            existing = read_caption(path, options.sidecar_naming) if path.is_file() else None
            if existing and not options.recaption:
                if existing.source == MACHINE and existing.model_id == captioner.model_id and not existing.written_by_person:
                    return PhotoOutcome(path, SKIPPED, message="already captioned by this model")
                if existing.written_by_person and options.protect_person_captions:
                    return PhotoOutcome(path, SKIPPED, message="has a caption a person wrote")
            return load_pixels(path, spec)
        except (PhotoError, MetadataError) as exc:
            return PhotoOutcome(path, FAILED, message=str(exc))
        except Exception as exc:  # a photo must never stop the batch
            return PhotoOutcome(path, FAILED, message=f"unexpected error: {type(exc).__name__}: {exc}")

    def emit(outcome: PhotoOutcome) -> None:
        nonlocal done
        counts[outcome.status] += 1
        done += 1
        on_outcome(outcome)
        on_progress(Progress(done, len(paths), time.perf_counter() - start))

    def search(batch: list[tuple[Path, np.ndarray]], encoding: Future) -> None:
        try:
            results = captioner.search(encoding.result(), options.decode)
        except Exception as exc:  # onnxruntime failure: report it per photo and go on
            for path, _ in batch:
                emit(PhotoOutcome(path, FAILED, message=f"model failed: {exc}"))
            return
        for (path, _), result in zip(batch, results):
            emit(PhotoOutcome(path, CAPTIONED, result))

    window = max(options.batch_size * 3, options.decode_workers * 2)
    pending: deque[tuple[Path, Future]] = deque()
    encoded: deque[tuple[list[tuple[Path, np.ndarray]], Future]] = deque()  # batches at the encoder
    batch: list[tuple[Path, np.ndarray]] = []
    queue = iter(paths)
    with ThreadPoolExecutor(max_workers=max(options.decode_workers, 1), thread_name_prefix="decode") as pool, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as encoder:
        try:
            while True:
                while len(pending) < window:
                    path = next(queue, None)
                    if path is None:
                        break
                    pending.append((path, pool.submit(prepare, Path(path))))
                if not pending:
                    break
                while pause is not None and pause.is_set() and not cancel.is_set():
                    time.sleep(0.05)
                if cancel.is_set():
                    raise Cancelled
                path, future = pending.popleft()
                item = future.result()
                if isinstance(item, PhotoOutcome):
                    emit(item)
                else:
                    batch.append((path, item))
                if len(batch) >= options.batch_size or (not pending and batch):
                    encoded.append((batch, encoder.submit(captioner.encode_batch, np.stack([p for _, p in batch]))))
                    batch = []
                    if len(encoded) > 1:  # search the previous batch while the encoder works on this one
                        search(*encoded.popleft())
            while encoded:
                if cancel.is_set():
                    raise Cancelled
                search(*encoded.popleft())
        except Cancelled:
            for _, future in [*pending, *encoded]:
                future.cancel()
    return counts
