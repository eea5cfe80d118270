"""``prepare``: captions + splits + vocabulary, and every photo's encoder grid cached once.

The encoder is frozen by default, so its features are computed once (fp16,
memory-mapped) and training runs on the cache: minutes per epoch on a CPU
instead of hours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from desktop_app.bundle.format import Preprocessing
from desktop_app.bundle.vocabulary import Vocabulary
from desktop_app.photos.pixels import PhotoError, load_pixels
from model_export.data.captions import CaptionSet, DataError
from model_export.encoder import ENCODERS, GridEncoder

PREPARED_FILE = "prepared.json"
VOCAB_FILE = "vocab.json"


def features_file(encoder: str) -> str:
    return f"features-{encoder}.npy"


@dataclass
class PreparedData:
    """A prepared dataset folder: what ``train`` and ``evaluate`` read."""

    root: Path
    image_dir: Path
    images: list[str]
    splits: dict[str, list[int]]  # split -> indices into images
    captions: dict[str, list[str]]
    vocabulary: Vocabulary
    encoder: str
    source: str

    def features(self) -> np.ndarray:
        path = self.root / features_file(self.encoder)
        if not path.is_file():
            raise DataError(f"{path}: feature cache missing; run 'python -m model_export prepare' first")
        return np.load(path, mmap_mode="r")

    def references(self, split: str) -> dict[int, list[str]]:
        return {i: self.captions[self.images[i]] for i in self.splits[split]}

    @classmethod
    def load(cls, root: Path) -> "PreparedData":
        root = Path(root)
        try:
            meta = json.loads((root / PREPARED_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{root / PREPARED_FILE}: not found; run 'python -m model_export prepare --out {root}'") from None
        return cls(root, Path(meta["image_dir"]), meta["images"], meta["splits"], meta["captions"],
                   Vocabulary.load(root / VOCAB_FILE), meta["encoder"], meta["source"])


def write_prepared(caption_set: CaptionSet, out: Path, encoder: str, min_count: int, source: str) -> PreparedData:
    """Save splits, captions and the train-split vocabulary (no features yet)."""
    out.mkdir(parents=True, exist_ok=True)
    images = [name for split in caption_set.splits.values() for name in split]
    images = list(dict.fromkeys(images))
    position = {name: i for i, name in enumerate(images)}
    splits = {split: [position[n] for n in names] for split, names in caption_set.splits.items()}
    captions = {name: caption_set.captions[name] for name in images}
    vocabulary = Vocabulary.build(caption_set.split_captions("train"), min_count=min_count)
    vocabulary.save(out / VOCAB_FILE)
    meta = {"image_dir": str(caption_set.image_dir.resolve()), "images": images, "splits": splits,
            "captions": captions, "encoder": encoder, "source": source, "min_count": min_count}
    (out / PREPARED_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return PreparedData(out, caption_set.image_dir, images, splits, captions, vocabulary, encoder, source)


class _PhotoPixels(Dataset):
    def __init__(self, paths: list[Path], spec: Preprocessing):
        self.paths, self.spec = paths, spec

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            return torch.from_numpy(load_pixels(self.paths[i], self.spec)), ""
        except PhotoError as exc:
            shape = (3, self.spec.input_height, self.spec.input_width)
            return torch.zeros(shape), f"{self.paths[i]}: {exc}"


def cache_features(data: PreparedData, batch_size: int = 32, workers: int = 1, device: str = "cpu") -> Path:
    """Run the frozen encoder over every photo once; fp16 grid features in a memory-mapped .npy."""
    encoder = GridEncoder(data.encoder).eval().to(device)
    spec = ENCODERS[data.encoder].preprocessing
    path = data.root / features_file(data.encoder)
    partial = path.with_suffix(".partial.npy")
    grid = encoder.grid_side ** 2
    store = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16,
                                      shape=(len(data.images), grid, encoder.feature_dim))
    loader = DataLoader(_PhotoPixels([data.image_dir / n for n in data.images], spec),
                        batch_size=batch_size, num_workers=workers)
    problems = []
    with torch.inference_mode(), tqdm(total=len(data.images), desc="encoding photos", unit="photo") as bar:
        start = 0
        for pixels, errors in loader:
            problems += [e for e in errors if e]
            features = encoder(pixels.to(device)).float().cpu().numpy()
            store[start:start + len(features)] = features.astype(np.float16)
            start += len(features)
            bar.update(len(features))
    store.flush()
    del store
    if problems:
        partial.unlink()
        raise DataError("unreadable photos:\n  " + "\n  ".join(problems[:20]))
    partial.replace(path)
    return path
