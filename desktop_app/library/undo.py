"""Undo for caption writes, keeping only what a write can change.

A caption write changes a JPEG's metadata segments (everything before the image
data) or an XMP sidecar; the image data itself is copied byte for byte. So a
journal entry keeps a JPEG's header bytes (tens of KB), not the whole photo,
plus a hash of the whole original to prove the restore exact. A PNG or WebP
changes only in its XMP chunk (and WebP's VP8X), so only those are kept, with
the order of the others; a TIFF only in its header's IFD0 offset and at its end
(a new IFD0 appended), so the header and the tail from there are kept. Other formats get sidecars (``store.write_caption``), so
of their photo file only a hash is kept: if it ever changed, undo says so rather
than guess.
Everything kept lives in a folder beside the library index (not /tmp, which is
often RAM-backed) and is deleted when the entry is dropped.

Undo restores a file only when it is still as our write left it (same inode,
size and change time, and for a sidecar the same content): a photo or sidecar
another program changed since (darktable rewriting ``photo.jpg.xmp``) is left
alone and named, and a sidecar another program made after our write is not ours
to delete. A photo's files are all checked before any is put back. The photo's
freedesktop attributes (``user.xdg.comment``/``tags``, set with the caption) are
put back too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from desktop_app.metadata import xdg
from desktop_app.metadata.atomic import replace_atomically
from desktop_app.metadata.jpeg import JpegError, JpegFile
from desktop_app.metadata.png import PngError, PngFile, is_png
from desktop_app.metadata.store import SIDECAR_NAMINGS, TIFF_SUFFIXES, sidecar_path
from desktop_app.metadata.tiff import XMP_TAG, TiffError, TiffPhoto
from desktop_app.metadata.webp import WebpError, WebpFile, is_webp


@dataclass
class _Kept:
    path: Path
    kind: str  # "absent", "jpeg-head" (header bytes kept), "chunks" (a PNG's/WebP's caption chunks kept),
    # "tiff-tail" (a TIFF's header and the tail an edit rewrites), "copy" (a sidecar, kept whole) or "hash"
    blob: Path | None = None
    sha256: str = ""
    times: tuple[int, int] = (0, 0)  # atime_ns, mtime_ns before the write
    after: tuple[int, int, int] | None = None  # inode, size, ctime_ns right after our write (None: no file then)
    after_sha256: str = ""  # a sidecar's content right after our write
    attributes: dict[str, str] | None = None  # a photo's freedesktop xattrs before the write (None: none possible)


JOURNAL_FILE = "journal.json"


@dataclass
class UndoReport:
    restored: list[Path]  # photos put back as they were
    refused: list[tuple[Path, str]]  # (photo, why it was left as it is)


def clean_stale(folder: Path, max_age_s: float = 7 * 86400) -> int:
    """Remove undo folders a crashed session left behind (older than a week); returns how many."""
    removed = 0
    for stale in Path(folder).glob("undo-*") if Path(folder).is_dir() else []:
        try:
            if time.time() - stale.stat().st_mtime > max_age_s:
                shutil.rmtree(stale, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _chunked(data: bytes) -> PngFile | WebpFile | None:
    """A PNG or WebP whose caption chunks can be kept apart from its image chunks; None for anything else."""
    for matches, kind, error in ((is_png, PngFile, PngError), (is_webp, WebpFile, WebpError)):
        if matches(data[:16]):
            try:
                return kind.parse(data)
            except error:
                return None
    return None


def _caption_layout(container: PngFile | WebpFile) -> bytes:
    """The chunk order, with the chunks a caption write may change kept whole and every other one as a mark."""
    out = bytearray()
    for chunk in container.chunks:
        if container.written_by_caption(chunk):
            out += b"\x01" + chunk.kind + struct.pack(">I", len(chunk.raw)) + chunk.raw
        else:
            out += b"\x00"
    return bytes(out)


def _with_layout(container: PngFile | WebpFile, layout: bytes) -> bytes | None:
    """Today's file with the kept caption chunks back in their old places; None if its other chunks do not fit."""
    others = iter([chunk for chunk in container.chunks if not container.written_by_caption(chunk)])
    chunk_type = type(container.chunks[0])
    chunks, pos = [], 0
    while pos < len(layout):
        if layout[pos]:
            (size,) = struct.unpack(">I", layout[pos + 5:pos + 9])
            chunks.append(chunk_type(layout[pos + 1:pos + 5], layout[pos + 9:pos + 9 + size]))
            pos += 9 + size
        else:
            chunks.append(next(others, None))
            pos += 1
    if None in chunks or next(others, None) is not None:
        return None
    container.chunks = chunks
    return container.to_bytes()


def _tiff_tail(path: Path, data: bytes) -> bytes | None:
    """A TIFF's header and the bytes from where a caption edit starts writing (offset first); None if not a TIFF."""
    if path.suffix.lower() not in TIFF_SUFFIXES or not TiffPhoto.is_tiff(data):
        return None
    try:
        start = TiffPhoto.parse(data).block.edit_start({XMP_TAG})
    except TiffError:
        return None
    return struct.pack(">Q", start) + data[:8] + data[start:]


def _with_tiff_tail(data: bytes, kept: bytes) -> bytes:
    """Today's TIFF with the kept header and tail put back; the bytes between were never written."""
    (start,) = struct.unpack(">Q", kept[:8])
    return kept[8:16] + data[8:start] + kept[16:]


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_ctime_ns


class WriteJournal:
    """What one write batch changed, enough to put it back."""

    def __init__(self, label: str = "", folder: Path | None = None):
        self.label = label
        parent = Path(folder) if folder is not None else None
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        self._folder = Path(tempfile.mkdtemp(prefix="undo-", dir=parent))
        self._kept: dict[Path, _Kept] = {}
        self._photos: list[Path] = []

    def __len__(self) -> int:
        return len(self._photos)

    @property
    def photos(self) -> list[Path]:
        return list(self._photos)

    def stored_bytes(self) -> int:
        return sum(k.blob.stat().st_size for k in self._kept.values() if k.blob is not None and k.blob.exists())

    @property
    def folder(self) -> Path:
        return self._folder

    def save(self) -> None:
        """Write down what the journal holds, in its folder, so that another process can undo it (``load``):
        for a write that ends with its process (``photocaption cluster write``)."""
        kept = [{**asdict(k), "path": str(k.path), "blob": k.blob.name if k.blob else None}
                for k in self._kept.values()]
        temp = self._folder / f".{JOURNAL_FILE}.tmp"
        temp.write_text(json.dumps({"label": self.label, "photos": [str(p) for p in self._photos], "kept": kept}))
        os.replace(temp, self._folder / JOURNAL_FILE)

    @classmethod
    def load(cls, folder: Path) -> WriteJournal:
        """The journal ``save`` wrote in ``folder``; raises OSError or ValueError when there is none."""
        folder = Path(folder)
        state = json.loads((folder / JOURNAL_FILE).read_text())
        journal = cls.__new__(cls)
        journal.label, journal._folder = state["label"], folder
        journal._photos = [Path(p) for p in state["photos"]]
        journal._kept = {Path(k["path"]): _Kept(
            Path(k["path"]), k["kind"], folder / k["blob"] if k["blob"] else None, k["sha256"], tuple(k["times"]),
            tuple(k["after"]) if k["after"] is not None else None, k["after_sha256"], k["attributes"])
            for k in state["kept"]}
        return journal

    def remember(self, photo: Path) -> None:
        """Call before writing a photo's caption: keeps its metadata and its possible sidecars."""
        photo = Path(photo)
        if photo in self._photos:
            return
        self._photos.append(photo)
        self._keep(photo, is_photo=True)
        for naming in SIDECAR_NAMINGS:
            self._keep(sidecar_path(photo, naming), is_photo=False)

    def written(self, photo: Path) -> None:
        """Call after the write: what the files look like now, to recognise them at undo time."""
        photo = Path(photo)
        for path in (photo, *(sidecar_path(photo, n) for n in SIDECAR_NAMINGS)):
            kept = self._kept.get(path)
            if kept is not None:
                kept.after = _identity(path)
                if path != photo and kept.after is not None:
                    kept.after_sha256 = _sha256(path)

    def forget(self, photo: Path) -> None:
        """The write did not happen (skipped or failed): nothing of this photo to undo."""
        photo = Path(photo)
        if photo in self._photos:
            self._photos.remove(photo)
            for path in (photo, *(sidecar_path(photo, n) for n in SIDECAR_NAMINGS)):
                kept = self._kept.pop(path, None)
                if kept is not None and kept.blob is not None:
                    kept.blob.unlink(missing_ok=True)

    def _keep(self, path: Path, is_photo: bool) -> None:
        if path in self._kept:
            return
        if not path.exists():
            self._kept[path] = _Kept(path, "absent")
            return
        data = path.read_bytes()
        st = path.stat()
        blob = self._folder / f"{len(self._kept)}.bin"
        kind, kept = "copy", data
        if is_photo:
            try:
                image = JpegFile.parse(data).image_data
                kind, kept = "jpeg-head", data[: len(data) - len(image)]
            except JpegError:
                container, tail = _chunked(data), _tiff_tail(path, data)
                if container is not None:
                    kind, kept = "chunks", _caption_layout(container)
                elif tail is not None:
                    kind, kept = "tiff-tail", tail
                else:  # captions go to its sidecar, the photo is only checked
                    kind, kept = "hash", None
        if kept is not None:
            blob.write_bytes(kept)
        self._kept[path] = _Kept(path, kind, blob if kept is not None else None, hashlib.sha256(data).hexdigest(),
                                 (st.st_atime_ns, st.st_mtime_ns), attributes=xdg.read(path) if is_photo else None)

    def undo(self) -> UndoReport:
        """Put every remembered file back as it was; then forget the batch."""
        report = UndoReport([], [])
        for photo in self._photos:
            files = [self._kept[p] for p in (photo, *(sidecar_path(photo, n) for n in SIDECAR_NAMINGS)) if p in self._kept]
            problem = next((why for why in map(self._changed_since, files) if why), "")
            for kept in files if not problem else []:
                problem = problem or self._restore(kept)
            if problem:
                report.refused.append((photo, problem))
            else:
                report.restored.append(photo)
        self.discard()
        return report

    @staticmethod
    def _changed_since(kept: _Kept) -> str:
        """Why a file must be left as it is (another program changed it after our write), or ""."""
        path = kept.path
        if kept.after is None:  # our write left no file here: one there now is another program's
            return ""
        now = _identity(path)
        if now is None and kept.kind == "absent":
            return ""  # the sidecar we made is gone already
        if now != kept.after or (kept.after_sha256 and _sha256(path) != kept.after_sha256):
            if kept.kind == "absent":
                return f"{path.name}, made by this write, was changed by another program since; kept, not deleted"
            return f"{path.name} was changed by another program since the write; left as it is"
        return ""

    def _restore(self, kept: _Kept) -> str:
        """Restore one file checked by ``_changed_since``; returns why not, or ""."""
        path = kept.path
        if kept.kind == "absent":
            if kept.after is not None:
                path.unlink(missing_ok=True)
            return ""
        if kept.kind == "jpeg-head":
            try:  # the kept header before today's image data, through to_bytes: trailer offsets follow the header
                now = JpegFile.parse(path.read_bytes())
                now.segments = JpegFile.parse(kept.blob.read_bytes() + now.image_data).segments
                data = now.to_bytes()
            except (JpegError, OSError) as exc:
                return f"{path.name} cannot be read back ({exc}); left as it is"
        elif kept.kind == "chunks":
            container = _chunked(path.read_bytes()) if path.exists() else None
            data = _with_layout(container, kept.blob.read_bytes()) if container is not None else None
            if data is None:
                return f"{path.name} cannot be read back; left as it is"
        elif kept.kind == "tiff-tail":
            data = _with_tiff_tail(path.read_bytes(), kept.blob.read_bytes())
        elif kept.kind == "hash":
            if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != kept.sha256:
                return f"{path.name} itself was changed by the write and cannot be put back"
            data = None
        else:
            data = kept.blob.read_bytes()
        if data is not None and hashlib.sha256(data).hexdigest() != kept.sha256:
            return f"{path.name}: the image data changed since the write; left as it is"
        if data is not None and not (path.exists() and path.read_bytes() == data):
            replace_atomically(path, data, keep_mtime=False)
            os.utime(path, ns=kept.times)
        if kept.attributes is not None:
            xdg.write(path, {name: kept.attributes.get(name) for name in xdg.NAMES})
        return ""

    def discard(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)
        self._kept.clear()
        self._photos.clear()
