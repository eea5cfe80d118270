"""Benchmark photo folders: Flickr8k-size (~500x375) and 12 MP JPEGs, made once and reused."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FLICKR = ROOT.parent / "shared" / "datasets" / "flickr8k" / "Images"
SAMPLES = ROOT / "resources" / "samples"


def source_photos() -> list[Path]:
    """Real photos to scale: Flickr8k's when it is beside the checkout, else the bundled samples."""
    if FLICKR.is_dir():
        return sorted(FLICKR.glob("*.jpg"))[:1000]
    return sorted(SAMPLES.glob("*.jpg"))


def make_folder(folder: Path, count: int, size: tuple[int, int], quality: int = 90) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = source_photos()
    paths = []
    for n in range(count):
        path = folder / f"photo_{n:05d}.jpg"
        if not path.exists():
            with Image.open(sources[n % len(sources)]) as image:
                image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(path, quality=quality)
        paths.append(path)
    return paths
