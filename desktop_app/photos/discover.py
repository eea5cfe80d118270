"""Which files in a folder are photos."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

# Pillow decodes these; captions go embedded (JPEG) or into a sidecar (the rest).
READABLE = {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif"}
# Listed so a library scan sees them and a caption run says why it cannot read them.
OTHER_PHOTOS = {".heic", ".heif", ".avif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw"}
PHOTO_EXTENSIONS = READABLE | OTHER_PHOTOS


def is_photo(path: Path) -> bool:
    return path.suffix.lower() in PHOTO_EXTENSIONS and not path.name.startswith(".")


def find_photos(paths: Iterable[Path], recursive: bool = False) -> Iterator[Path]:
    """Photos named directly, and photos inside named folders, in a stable (sorted) order."""
    for path in map(Path, paths):
        if path.is_dir():
            pattern = path.rglob("*") if recursive else path.glob("*")
            yield from sorted(p for p in pattern if p.is_file() and is_photo(p)
                              and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            yield path
