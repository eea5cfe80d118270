"""Undo for metadata writes: the files as they were before the last write, kept on disk."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from desktop_app.metadata.atomic import replace_atomically
from desktop_app.metadata.store import SIDECAR_NAMINGS, sidecar_path


class WriteJournal:
    """Remembers the photos (and sidecars) one write batch changed, so the batch can be undone.

    Copies go to a private temp folder, not memory: a batch may touch thousands of photos.
    """

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="photocaption-undo-"))
        self._saved: dict[Path, Path | None] = {}  # file -> its copy, or None if it did not exist

    def remember(self, photo: Path) -> None:
        """Call before writing a photo's caption: keeps the photo and its possible sidecars."""
        for path in (Path(photo), *(sidecar_path(Path(photo), n) for n in SIDECAR_NAMINGS)):
            if path in self._saved:
                continue
            if path.exists():
                copy = self._folder / f"{len(self._saved)}{path.suffix}"
                shutil.copy2(path, copy)
                self._saved[path] = copy
            else:
                self._saved[path] = None

    def __len__(self) -> int:
        return sum(1 for p in self._saved if p.suffix.lower() != ".xmp")

    def undo(self) -> list[Path]:
        """Put every remembered file back as it was; returns the photos restored."""
        restored = []
        for path, copy in self._saved.items():
            if copy is None:
                if path.exists():
                    path.unlink()
            else:
                if not path.exists() or path.read_bytes() != copy.read_bytes():
                    replace_atomically(path, copy.read_bytes(), keep_mtime=False)
                    shutil.copystat(copy, path)
                if path.suffix.lower() != ".xmp":
                    restored.append(path)
        self.discard()
        return restored

    def discard(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)
        self._saved.clear()
