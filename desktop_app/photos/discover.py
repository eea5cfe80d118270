"""Which files in a folder are photos."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from desktop_app.photos.formats import HEIF_EXTENSIONS, RAW_EXTENSIONS

# Pillow decodes these (HEIC/HEIF through pillow-heif); camera RAW through its embedded preview (rawpy).
# Captions go embedded (JPEG, and MPO: a stereo or multi-shot camera's JPEG with more images after it)
# or into a sidecar named per --sidecar-naming (the rest).
READABLE = {".jpg", ".jpeg", ".jpe", ".mpo", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".avif",
            *HEIF_EXTENSIONS}
PHOTO_EXTENSIONS = READABLE | RAW_EXTENSIONS


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
