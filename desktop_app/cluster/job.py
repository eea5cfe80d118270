"""Caption photos on Ray Data: listing and decode tasks spread over the cluster feed a pool of caption actors.

The driver holds no list of photos: Ray tasks list the sources folder by folder (``storage``), stat the photos
and drop those the results hold already (compared as 64-bit keys against a sorted array that a task built from
the results, ``results.scan``), so the driver's memory does not grow with the number of photos.

Each actor loads the model once and runs two batches at a time (one in the encoder, one in the beam
search), as the CLI's pipeline overlaps them on one machine. The pool is sized from the cluster's
resources minus the CPUs kept for reading and decoding: a pool that takes every CPU leaves the decode
tasks none, and Ray Data then waits forever. Results stream back to this driver, which writes them as
Parquet parts (``results.PartWriter``); Ray retries a task or restarts an actor that dies, and only a
finished batch's rows reach the driver, so a lost worker neither loses nor duplicates a photo.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from desktop_app.bundle.format import BundleError, Preprocessing, load_bundle
from desktop_app.captioning.captioner import Captioner, result_fields
from desktop_app.captioning.decode import DecodeOptions
from desktop_app.cluster import results
from desktop_app.cluster.local import check_stop, ray_for_run
from desktop_app.cluster.storage import (Place, folders_of, is_done, keys_of, locate, read_photo, same_file_system,
                                         stat_files)
from desktop_app.photos.pixels import DECODE_BUDGET, PhotoError, load_pixels, read_pixels
from desktop_app.resources import DEFAULT_BUNDLE

CAPTIONED = "captioned"
LIST_CHUNK = 1000  # photos a listing task hands on at a time
FOLDERS_PER_TASK = 32  # folders (or photos named directly) per listing call: 4 made 1,000 named photos 250 calls


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
    recursive: bool = False  # folders' sub-folders too (not hidden ones)


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
    photos: int  # found in the sources (counted by the listing tasks as they go)
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


def decode_photos(batch: dict[str, np.ndarray], spec: Preprocessing, place: Place) -> dict[str, np.ndarray]:
    """A Ray task: photo files -> the encoder's pixels, or in ``error`` why a photo cannot be read (in words,
    as the CLI says it)."""
    count = len(batch["path"])
    pixels = np.zeros((count, 3, spec.input_height, spec.input_width), np.float32)
    errors = [""] * count
    for i, path in enumerate(batch["path"]):
        try:
            photo = read_photo(place, str(path))
            pixels[i] = load_pixels(photo, spec) if isinstance(photo, Path) else read_pixels(photo[1], photo[0], spec)
        except PhotoError as exc:
            errors[i] = str(exc)
        except Exception as exc:  # one photo must never stop the batch
            errors[i] = f"unexpected error: {type(exc).__name__}: {exc}"
    return {**batch, "pixels": pixels, "error": np.array(errors, dtype=object)}


class Tally:
    """A Ray actor: how many photos the listing found and how many of them were done already, per batch of
    folders (a listing task that is retried records its batch again, not twice)."""

    def __init__(self):
        self.counts: dict[str, tuple[int, int]] = {}

    def record(self, key: str, found: int, done: int) -> None:
        self.counts[key] = (found, done)

    def totals(self) -> tuple[int, int]:
        return sum(f for f, _ in self.counts.values()), sum(d for _, d in self.counts.values())


def list_todo(batch: dict[str, np.ndarray], place: Place, done: list, tally) -> Iterator[dict[str, np.ndarray]]:
    """A Ray task: a few folders (or named files) -> their photos not done yet (name, size, mtime), in chunks of
    at most ``LIST_CHUNK``; ``done`` holds the reference to the sorted keys of the done photos."""
    import ray

    done_keys = ray.get(done[0])
    found = skipped = 0
    names: list[str] = []
    sizes: list[int] = []
    mtimes: list[int] = []

    def todo() -> dict[str, np.ndarray]:
        keep = ~is_done(keys_of(names, sizes, mtimes), done_keys)
        return {"path": np.array(names, dtype=object)[keep], "size": np.array(sizes, np.int64)[keep],
                "mtime_ns": np.array(mtimes, np.int64)[keep]}

    for folder, file in zip(batch["folder"], batch["file"]):
        for name, size, mtime_ns in stat_files(place, str(folder), str(file)):
            names.append(name), sizes.append(size), mtimes.append(mtime_ns)
            if len(names) >= LIST_CHUNK:
                chunk = todo()
                found, skipped = found + len(names), skipped + len(names) - len(chunk["path"])
                names, sizes, mtimes = [], [], []
                if len(chunk["path"]):
                    yield chunk
    if names:
        chunk = todo()
        found, skipped = found + len(names), skipped + len(names) - len(chunk["path"])
        if len(chunk["path"]):
            yield chunk
    ray.get(tally.record.remote(f"{batch['folder'][0]}\0{batch['file'][0]}\0{len(batch['file'])}", found, skipped))


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


def _scan(out: Place, retry_failed: bool) -> tuple[np.ndarray, int]:
    found = results.scan(out, retry_failed)
    return found.done, found.dropped


def caption_on_ray(sources: Sequence[Path | str | Place], out: Path | str | Place, options: JobOptions = JobOptions(),
                   address: str | None = None, on_part: Callable[[Summary], None] = lambda summary: None) -> Summary:
    """Caption the photos of ``sources`` (photos, or folders: with ``options.recursive`` their sub-folders too)
    into the results folder ``out``, skipping those it holds already; with no ``address`` on a Ray started here
    for the run (and stopped after, also on SIGTERM), else on the running cluster at ``address``. Sources and
    ``out`` are local paths, URIs (``storage.locate``) or ``storage.Place``s; the sources on one file system."""
    import ray

    places = list({p.path: p for p in (s if isinstance(s, Place) else locate(s) for s in sources)}.values())
    if not places or not same_file_system(places):
        raise ValueError("the sources of one run must be on one file system")
    out = out if isinstance(out, Place) else locate(out)
    results.make_folder(out)
    bundle = load_bundle(options.model or DEFAULT_BUNDLE)
    started_here = not ray.is_initialized()
    with ray_for_run(address) if started_here else contextlib.nullcontext():
        return _run(places, out, options, bundle, on_part)


def _run(places: list[Place], out: Place, options: JobOptions, bundle, on_part: Callable[[Summary], None]) -> Summary:
    import ray
    import ray.data
    import ray.util.client
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if out.local and ray.util.client.ray.is_connected():  # Ray Client (ray://): --out is on this machine, no node's
        scan = None
        done = ray.put(results.scan(out, options.retry_failed).done)
    else:  # in a task on this node (a local --out is this machine's): the driver holds a reference, never the keys
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        scan = ray.remote(_scan).options(num_cpus=0, num_returns=2,
                                         scheduling_strategy=here if out.local else "DEFAULT")
        done, _ = scan.remote(out, options.retry_failed)
    tally = ray.remote(Tally).options(num_cpus=0).remote()
    summary = Summary(0, 0)
    start = time.perf_counter()
    writer = results.PartWriter(out, options.rows_per_part)

    def count() -> None:
        summary.photos, summary.already_done = ray.get(tally.totals.remote())
        summary.seconds = time.perf_counter() - start

    try:
        resources = ray.cluster_resources()
        plan = summary.plan = plan_pool(resources.get("CPU", 0), resources.get("GPU", 0), options)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = sys.stderr.isatty()
        context.print_on_execution_start = False
        fs = places[0].fs
        reader = Place(fs, "", places[0].prefix)
        # a block per source lists folders in parallel; photos named one by one (the CLI's way) share a few blocks,
        # as a task each cost more than captioning them (1,000 named photos: 26 photos/s, 64 as one folder)
        blocks = min(len(places), max(2, int(2 * resources.get("CPU", 1))))
        dataset = (ray.data.from_items([{"source": p.path} for p in places], override_num_blocks=blocks)
                   .flat_map(folders_of, fn_kwargs={"fs": fs, "recursive": options.recursive},
                             num_cpus=plan.decode_cpus)
                   .map_batches(list_todo, fn_kwargs={"place": reader, "done": [done], "tally": tally},
                                batch_size=FOLDERS_PER_TASK, batch_format="numpy", num_cpus=plan.decode_cpus)
                   .map_batches(decode_photos, fn_kwargs={"spec": bundle.manifest.preprocessing, "place": reader},
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
            check_stop()
            failed = table.column("status").to_pylist().count(results.FAILED)
            summary.failed += failed
            summary.captioned += table.num_rows - failed
            before = writer.number
            writer.add([table])
            if writer.number != before:
                count()
                on_part(summary)
    finally:
        writer.flush()  # rows that arrived are whole: keep them even when the run is stopped
        summary.seconds = time.perf_counter() - start
    count()
    if summary.captioned + summary.failed:  # retried and changed photos: their old rows go
        ray.get(scan.remote(out, False)[1]) if scan is not None else results.scan(out)
    return summary
