"""Caption photos on Ray Data: decode tasks spread over the cluster feed a pool of caption actors.

Each actor loads the model once and runs two batches at a time (one in the encoder, one in the beam
search), as the CLI's pipeline overlaps them on one machine. The pool is sized from the cluster's
resources minus the CPUs kept for reading and decoding: a pool that takes every CPU leaves the decode
tasks none, and Ray Data then waits forever. Results stream back to this driver, which writes them as
Parquet parts (``results.PartWriter``); Ray retries a task or restarts an actor that dies, and only a
finished batch's rows reach the driver, so a lost worker neither loses nor duplicates a photo.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from desktop_app.bundle.format import BundleError, Preprocessing, load_bundle
from desktop_app.captioning.captioner import Captioner, result_fields
from desktop_app.captioning.decode import DecodeOptions
from desktop_app.cluster import results
from desktop_app.photos.pixels import DECODE_BUDGET, PhotoError, load_pixels
from desktop_app.resources import DEFAULT_BUNDLE

CAPTIONED = "captioned"


@dataclass(frozen=True)
class JobOptions:
    model: Path | None = None  # bundle folder, at the same path on every node (None: the installed default)
    provider: str = "auto"
    threads: int = 0  # model threads per actor call; 0 = half the CPUs the actor holds (two calls run at once)
    decode: DecodeOptions = DecodeOptions()
    batch_size: int = 32
    read_cpus: float = 0  # CPUs kept for reading and decoding; 0 = a quarter of the cluster's, at least 1
    actors: int = 0  # caption actors; 0 = one per GPU, else as many as the CPUs left over allow
    retry_failed: bool = False
    rows_per_part: int = 1000


class PoolError(Exception):
    """The cluster has too few CPUs for reading plus one caption actor."""


@dataclass(frozen=True)
class PoolPlan:
    actors: int
    actor_cpus: float
    actor_gpus: float
    decode_cpus: float


@dataclass
class Summary:
    photos: int  # found in the sources
    already_done: int  # skipped: the results hold them as they are now
    captioned: int = 0
    failed: int = 0
    seconds: float = 0.0
    plan: PoolPlan | None = None


def plan_pool(cpus: float, gpus: float, options: JobOptions) -> PoolPlan:
    """How many caption actors, with what each holds. On CPUs, each actor holds 2 CPUs (its encoder and its
    search run at once) after the decode tasks' share is set aside; with GPUs, one actor per GPU."""
    read = options.read_cpus or max(1.0, cpus // 4)
    left = cpus - read
    if left < 1:
        raise PoolError(f"the cluster has {cpus:g} CPUs: {read:g} for reading leaves none for the model")
    if gpus >= 1:
        actors = options.actors or int(gpus)
        return PoolPlan(actors, min(1.0, left / actors), 1.0, min(read, 1.0))
    actor_cpus = min(2.0, left)
    actors = options.actors or max(1, int(left // actor_cpus))
    return PoolPlan(actors, min(actor_cpus, left / actors), 0.0, min(read, 1.0))


def decode_photos(batch: dict[str, np.ndarray], spec: Preprocessing) -> dict[str, np.ndarray]:
    """A Ray task: photo files -> the encoder's pixels, or in ``error`` why a photo cannot be read (in words,
    as the CLI says it)."""
    count = len(batch["path"])
    pixels = np.zeros((count, 3, spec.input_height, spec.input_width), np.float32)
    errors = [""] * count
    for i, path in enumerate(batch["path"]):
        try:
            pixels[i] = load_pixels(Path(path), spec)
        except PhotoError as exc:
            errors[i] = str(exc)
        except Exception as exc:  # one photo must never stop the batch
            errors[i] = f"unexpected error: {type(exc).__name__}: {exc}"
    return {**batch, "pixels": pixels, "error": np.array(errors, dtype=object)}


class CaptionActor:
    """Holds one loaded model for the whole run; each call captions one decoded batch into result rows."""

    def __init__(self, model: Path, provider: str, threads: int, decode: DecodeOptions, model_id: str):
        self.captioner = Captioner.open(model, provider=provider, threads=threads)
        if self.captioner.model_id != model_id:  # a node with another bundle at that path would mix models
            raise BundleError(f"this node's bundle at {model} is {self.captioner.model_id}, the run's is {model_id}")
        self.decode = decode

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        count = len(batch["path"])
        fields, status = [result_fields(None)] * count, [results.FAILED] * count
        messages = [str(m) for m in batch["error"]]
        readable = [i for i in range(count) if not messages[i]]
        if readable:
            try:
                encoded = self.captioner.encode_batch(batch["pixels"][readable])
                for i, result in zip(readable, self.captioner.search(encoded, self.decode)):
                    fields[i], status[i] = result_fields(result), CAPTIONED
            except Exception as exc:  # onnxruntime failure: reported per photo, as the CLI does
                for i in readable:
                    messages[i] = f"model failed: {exc}"
        rows = [{"path": str(batch["path"][i]), "size": int(batch["size"][i]), "mtime_ns": int(batch["mtime_ns"][i]),
                 "status": status[i], "message": messages[i], "model_id": self.captioner.model_id,
                 **fields[i], "alternatives": [{"caption": t, "score": s} for t, s in fields[i]["alternatives"]]}
                for i in range(count)]
        return pa.Table.from_pylist(rows, schema=results.SCHEMA)


def caption_on_ray(photos: Sequence[Path], out: Path, options: JobOptions = JobOptions(), address: str | None = None,
                   on_part: Callable[[Summary], None] = lambda summary: None) -> Summary:
    """Caption ``photos`` into the results folder ``out``, skipping those it holds already; with no ``address``
    on a Ray started here for the run (and stopped after), else on the running cluster at ``address``."""
    import ray
    import ray.data

    out.mkdir(parents=True, exist_ok=True)
    results.remove_temp_files(out)
    results.drop_superseded(out)
    found = [results.stat_photo(p) for p in photos]
    done = results.done_photos(out, options.retry_failed)
    todo = [p for p in found if p not in done]
    summary = Summary(len(found), len(found) - len(todo))
    if not todo:
        return summary
    bundle = load_bundle(options.model or DEFAULT_BUNDLE)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    start = time.perf_counter()
    writer = results.PartWriter(out, options.rows_per_part)
    try:
        resources = ray.cluster_resources()
        plan = summary.plan = plan_pool(resources.get("CPU", 0), resources.get("GPU", 0), options)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = sys.stderr.isatty()
        context.print_on_execution_start = False
        rows = [{"path": p.path, "size": p.size, "mtime_ns": p.mtime_ns} for p in todo]
        dataset = (ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows) / options.batch_size)))
                   .map_batches(decode_photos, fn_kwargs={"spec": bundle.manifest.preprocessing},
                                batch_size=options.batch_size, batch_format="numpy", num_cpus=plan.decode_cpus,
                                # the most one photo may take while decoded; a reservation the actors do not
                                # have, so Ray Data keeps decoding in its own tasks rather than in the actors
                                memory=DECODE_BUDGET)
                   .map_batches(CaptionActor, batch_size=options.batch_size, batch_format="numpy",
                                fn_constructor_kwargs={
                                    "model": options.model or DEFAULT_BUNDLE, "provider": options.provider,
                                    "threads": options.threads or max(1, int(plan.actor_cpus // 2)),
                                    "decode": options.decode, "model_id": bundle.model_id},
                                compute=ray.data.ActorPoolStrategy(size=plan.actors, max_concurrent_calls_per_actor=2,
                                                                   enable_true_multi_threading=True),
                                num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus))
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            failed = table.column("status").to_pylist().count(results.FAILED)
            summary.failed += failed
            summary.captioned += table.num_rows - failed
            before = writer.number
            writer.add([table])
            if writer.number != before:
                summary.seconds = time.perf_counter() - start
                on_part(summary)
    finally:
        writer.flush()  # rows that arrived are whole: keep them even when the run is stopped
        summary.seconds = time.perf_counter() - start
        if started_here:
            ray.shutdown()
    results.drop_superseded(out)
    return summary
