"""Captioning throughput on this machine: the app's pipeline vs its floor vs a plain PyTorch loop.

    python benchmarks/caption_folder.py [--bundle DIR] [--checkpoint runs/lite0/best.pt] [--threads 2]

Prints photos/s for (1) the full pipeline (decode photos on threads, ONNX
encoder, beam-3 NumPy decode loop), (2) its floor: photo decoding + encoder
only, in the same run, and (3) the same model as a naive PyTorch eager loop
(one photo at a time, full-size decode, beam 3), on ~500 px and 12 MP JPEGs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.photo_folders import make_folder  # noqa: E402
from desktop_app.captioning.captioner import Captioner  # noqa: E402
from desktop_app.captioning.decode import DecodeOptions  # noqa: E402
from desktop_app.captioning.pipeline import PipelineOptions, caption_photos  # noqa: E402
from desktop_app.photos.pixels import load_pixels  # noqa: E402

BEAM = DecodeOptions(beam_size=3, max_length=20, no_repeat_ngram=3)
BATCH = PipelineOptions().batch_size  # the app's default


def pipeline_rate(captioner: Captioner, paths: list[Path]) -> float:
    options = PipelineOptions(decode=BEAM, batch_size=BATCH, decode_workers=2, recaption=True)
    caption_photos(paths[:BATCH], captioner, options)  # warm-up
    start = time.perf_counter()
    counts = caption_photos(paths, captioner, options)
    assert counts["captioned"] == len(paths), counts
    return len(paths) / (time.perf_counter() - start)


def floor_rate(captioner: Captioner, paths: list[Path]) -> float:
    """Photo decoding (2 threads) + encoder on the same batches: what the pipeline cannot beat."""
    start = time.perf_counter()
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
    return len(paths) / (time.perf_counter() - start)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/lite0/best.pt"),
                        help="the same model as a PyTorch checkpoint, for the eager comparison")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--photos", type=int, default=300, help="photos per folder (12 MP uses a third)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "photocaption-bench")
    args = parser.parse_args()

    captioner = Captioner.open(args.bundle, provider="cpu", threads=args.threads)
    print(f"model {captioner.model_id} ({captioner.bundle.manifest.encoder_precision} encoder) on "
          f"{captioner.provider}, {args.threads} threads, beam {BEAM.beam_size}")
    folders = {"500x375": make_folder(args.work / "500px", args.photos, (500, 375)),
               "12 MP (4000x3000)": make_folder(args.work / "12mp", max(args.photos // 3, 32), (4000, 3000))}
    print(f"{'photos':<20}{'n':>6}{'pipeline':>12}{'floor':>12}{'eager torch':>14}{'speed-up':>10}")
    for name, paths in folders.items():
        rate = pipeline_rate(captioner, paths)
        floor = floor_rate(captioner, paths)
        eager = eager_rate(args.checkpoint, paths[:40], args.threads) if args.checkpoint.is_file() else float("nan")
        print(f"{name:<20}{len(paths):>6}{rate:>10.1f}/s{floor:>10.1f}/s{eager:>12.1f}/s{rate / eager:>9.1f}x")


if __name__ == "__main__":
    main()
