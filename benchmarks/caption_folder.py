"""Captioning throughput on this machine: the app's pipeline vs its floor vs a plain PyTorch loop.

    python benchmarks/caption_folder.py [--bundle DIR] [--runs 5] [--checkpoint runs/lite0/best.pt] [--threads 2]

Prints photos/s for (1) the full pipeline (decode photos on threads, ONNX
encoder, beam-3 NumPy decode loop), (2) its floor: photo decoding + encoder
only, measured right after it in the same run, and their ratio; (3) greedy and
beam-5 pipelines on the ~500 px folder; (4) the same model as a naive PyTorch
eager loop (one photo at a time, full-size decode, beam 3), when a checkpoint
is given; on ~500 px and 12 MP JPEGs. Each run prints its rows, then the
ranges over the runs. A CUDA row runs when a GPU is usable and says why not otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.photo_folders import make_folder  # noqa: E402
from desktop_app.captioning.captioner import Captioner  # noqa: E402
from desktop_app.captioning.decode import DecodeOptions  # noqa: E402
from desktop_app.captioning.pipeline import PipelineOptions, caption_photos  # noqa: E402
from desktop_app.captioning.runtime import ProviderError  # noqa: E402
from desktop_app.photos.pixels import load_pixels  # noqa: E402

BEAM = DecodeOptions()  # the app's defaults
GREEDY = replace(BEAM, beam_size=1)
BEAM5 = replace(BEAM, beam_size=5)
BATCH = PipelineOptions().batch_size  # the app's default


class Clock:
    """Photos/s and this process's CPU time per photo (all threads): on a shared machine the CPU a
    photo costs moves far less than the wall clock, so both are printed."""

    def __init__(self, photos: int):
        self.photos = photos

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), os.times()
        return self

    def __exit__(self, *exc) -> None:
        now = os.times()
        self.rate = self.photos / (time.perf_counter() - self.wall)
        self.cpu_ms = (now.user + now.system - self.cpu.user - self.cpu.system) * 1000 / self.photos


def pipeline_rate(captioner: Captioner, paths: list[Path], decode: DecodeOptions = BEAM) -> Clock:
    options = PipelineOptions(decode=decode, batch_size=BATCH, decode_workers=2, recaption=True)
    caption_photos(paths[:BATCH], captioner, options)  # warm-up
    with Clock(len(paths)) as clock:
        counts = caption_photos(paths, captioner, options)
    assert counts["captioned"] == len(paths), counts
    return clock


def floor_rate(captioner: Captioner, paths: list[Path]) -> Clock:
    """Photo decoding (2 threads) + encoder on the same batches: what the pipeline cannot beat."""
    with Clock(len(paths)) as clock:
        _encode_all(captioner, paths)
    return clock


def _encode_all(captioner: Captioner, paths: list[Path]) -> None:
    with ThreadPoolExecutor(2) as pool:
        pixels = pool.map(lambda p: load_pixels(p, captioner.preprocessing), paths)
        batch = []
        for item in pixels:
            batch.append(item)
            if len(batch) == BATCH:
                captioner.encode(np.stack(batch))
                batch = []
        if batch:
            captioner.encode(np.stack(batch))


def eager_rate(checkpoint: Path, paths: list[Path], threads: int) -> float:
    """A plain PyTorch loop: full decode, resize, encoder and beam search, one photo at a time."""
    import torch
    from PIL import Image

    from desktop_app.captioning.decode import beam_search
    from desktop_app.photos.pixels import to_pixels
    from model_export.checkpoint import load_trained
    from model_export.encoder import ENCODERS
    from model_export.evaluate import TorchStepModel

    torch.set_num_threads(threads)
    model = load_trained(checkpoint)
    spec = ENCODERS[model.encoder.name].preprocessing
    step = TorchStepModel(model.decoder)
    vocab = model.vocabulary
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            pixels = to_pixels(image.convert("RGB"), spec)
        with torch.inference_mode():
            features = model.encoder(torch.from_numpy(pixels)[None]).numpy()
        beam_search(step, features, vocab.start_id, vocab.end_id, BEAM)
    return len(paths) / (time.perf_counter() - start)


def cuda_captioner(bundle: Path | None, threads: int) -> tuple[Captioner | None, str]:
    """The bundle on CUDA (I/O binding in the step loop), or None and why not."""
    try:
        return Captioner.open(bundle, provider="cuda", threads=threads), ""
    except ProviderError as exc:
        return None, str(exc)


def span(values: list[float], unit: str = "/s") -> str:
    digits = 1 if unit else 2
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}{unit}" if len(values) > 1 else f"{values[0]:.{digits}f}{unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/lite0/best.pt"),
                        help="the same model as a PyTorch checkpoint, for the eager comparison")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5, help="runs; each measures every row, floors next to pipelines")
    parser.add_argument("--photos", type=int, default=300, help="photos per folder (12 MP uses a third)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "photocaption-bench")
    args = parser.parse_args()

    captioner = Captioner.open(args.bundle, provider="cpu", threads=args.threads)
    manifest = captioner.bundle.manifest
    print(f"model {captioner.model_id} (bundle format {manifest.format_version}, {manifest.encoder_precision} encoder, "
          f"{manifest.decoder_precision} decoder) on {captioner.provider}, {args.threads} threads, batch {BATCH}")
    folders = {"500x375": make_folder(args.work / "500px", args.photos, (500, 375)),
               "12 MP (4000x3000)": make_folder(args.work / "12mp", max(args.photos // 3, 32), (4000, 3000))}
    small = folders["500x375"]
    cuda, why_not = cuda_captioner(args.bundle, args.threads)
    rows: dict[str, list[tuple[Clock, Clock | None]]] = {}  # row -> (pipeline, its floor) per run

    def measure(row: str, pipeline: Clock, floor: Clock | None = None) -> None:
        rows.setdefault(row, []).append((pipeline, floor))
        line = f"  {row:<30}{pipeline.rate:>7.1f}/s, {pipeline.cpu_ms:5.1f} ms CPU/photo"
        if floor:
            line += (f"; floor {floor.rate:.1f}/s, {floor.cpu_ms:.1f} ms: {pipeline.rate / floor.rate:.2f} of its rate, "
                     f"{floor.cpu_ms / pipeline.cpu_ms:.2f} of its CPU per photo")
        print(line, flush=True)

    for run in range(1, args.runs + 1):
        print(f"run {run}:")
        for name, paths in folders.items():
            pipeline = pipeline_rate(captioner, paths)
            measure(f"{name}, beam 3", pipeline, floor_rate(captioner, paths))
        measure("500x375, greedy", pipeline_rate(captioner, small, GREEDY))
        measure("500x375, beam 5", pipeline_rate(captioner, small, BEAM5))
        if cuda is not None:
            pipeline = pipeline_rate(cuda, small)
            measure("500x375, beam 3, CUDA", pipeline, floor_rate(cuda, small))
    if cuda is None:
        print(f"  CUDA row skipped: {why_not}")
    if args.checkpoint.is_file():
        for name, paths in folders.items():
            print(f"  {name}, PyTorch eager loop: {eager_rate(args.checkpoint, paths[:40], args.threads):.1f}/s")

    print(f"\nranges over {args.runs} runs: pipeline photos/s, floor photos/s, pipeline/floor (same run), "
          "pipeline CPU ms/photo, floor CPU/pipeline CPU")
    for row, values in rows.items():
        pairs = [(p, f) for p, f in values if f]
        cells = [span([p.rate for p, _ in values])]
        if pairs:
            cells += [span([f.rate for _, f in pairs]), span([p.rate / f.rate for p, f in pairs], "")]
        cells.append(span([p.cpu_ms for p, _ in values], " ms"))
        if pairs:
            cells.append(span([f.cpu_ms / p.cpu_ms for p, f in pairs], ""))
        print(f"  {row:<30}" + "   ".join(cells))


if __name__ == "__main__":
    main()
