"""Where a photo's caption lives, and the rules for changing it.

JPEG: embedded EXIF + XMP (unless sidecars are chosen). Every other format
(PNG, TIFF, WebP, HEIC, camera RAW): an XMP sidecar beside the photo, merged
with one that exists. A caption a person wrote is never replaced unless the
caller says ``overwrite``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from desktop_app.metadata.atomic import replace_atomically
from desktop_app.metadata.exif import ExifError, read_exif_caption, with_caption
from desktop_app.metadata.jpeg import EXIF_HEADER, XMP_HEADER, JpegError, JpegFile
from desktop_app.metadata.record import PERSON, CaptionRecord, meaningful
from desktop_app.metadata.xmp import XmpError, merge_caption, read_xmp

EMBED, SIDECAR = "embed", "sidecar"
SIDECAR_NAMINGS = ("ext", "stem")  # photo.jpg.xmp (darktable, digiKam default) or photo.xmp (Lightroom)


class MetadataError(Exception):
    """A caption could not be written; the photo is unchanged."""


@dataclass(frozen=True)
class WriteOptions:
    mode: str = EMBED  # EMBED (JPEG only; others fall back to a sidecar) or SIDECAR
    sidecar_naming: str = "ext"
    overwrite: bool = False  # replace a caption a person wrote
    keep_mtime: bool = True
    write_exif: bool = True
    write_keywords: bool = True


@dataclass
class WriteResult:
    path: Path
    places: list[str] = field(default_factory=list)  # e.g. ["EXIF", "XMP"] or ["sidecar photo.png.xmp"]
    skipped: str = ""  # why nothing was written
    warnings: list[str] = field(default_factory=list)


def sidecar_path(photo: Path, naming: str = "ext") -> Path:
    if naming not in SIDECAR_NAMINGS:
        raise ValueError(f"sidecar naming must be one of {SIDECAR_NAMINGS}")
    return photo.with_name(photo.name + ".xmp") if naming == "ext" else photo.with_suffix(".xmp")


def is_jpeg(photo: Path) -> bool:
    with open(photo, "rb") as handle:
        return handle.read(3) == b"\xff\xd8\xff"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise MetadataError(f"cannot read {path.name}: permission denied") from None
    except OSError as exc:
        raise MetadataError(f"cannot read {path.name}: {exc.strerror}") from None


def read_caption(photo: Path, sidecar_naming: str = "ext") -> CaptionRecord | None:
    """The caption a photo already has, from wherever it is: sidecar XMP, embedded XMP, then EXIF."""
    photo = Path(photo)
    for naming in dict.fromkeys((sidecar_naming, *SIDECAR_NAMINGS)):
        sidecar = sidecar_path(photo, naming)
        if sidecar.is_file():
            try:
                record = read_xmp(_read_bytes(sidecar))
            except XmpError:
                record = None
            if record:
                record.places = [f"sidecar {sidecar.name}"]
                return record
    embedded_xmp, description = _embedded(photo)
    record = None
    if embedded_xmp:
        try:
            record = read_xmp(embedded_xmp)
        except XmpError:
            record = None
    if record:
        if description and description.strip() == record.text.strip():
            record.places.append("EXIF")
        return record
    if meaningful(description):
        return CaptionRecord(text=description, source="", places=["EXIF"])
    return None


def _embedded(photo: Path) -> tuple[bytes | None, str]:
    """(XMP packet, EXIF ImageDescription) inside the photo file itself."""
    if is_jpeg(photo):
        try:
            jpeg = JpegFile.parse(_read_bytes(photo))
        except JpegError:
            return None, ""
        exif = jpeg.app1(EXIF_HEADER)
        description, comment = read_exif_caption(exif) if exif else ("", "")
        return jpeg.app1(XMP_HEADER), description or comment
    try:
        with Image.open(photo) as image:
            xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
            description = image.getexif().get(0x010E, "")
    except Exception:  # not an image Pillow reads (RAW, HEIC without plugin): sidecar only
        return None, ""
    xmp = xmp.encode("utf-8") if isinstance(xmp, str) else xmp
    return xmp, description.decode("utf-8", "replace") if isinstance(description, bytes) else str(description)


def _read_only(path: Path) -> bool:
    """No write permission, or every write bit cleared: a person's "do not touch", honoured even for root."""
    return not os.access(path, os.W_OK) or not (path.stat().st_mode & 0o222)


def _check_writable(photo: Path, target: Path) -> None:
    if _read_only(target.parent):
        raise MetadataError(f"folder {target.parent} is read-only")
    if target.exists() and _read_only(target):
        raise MetadataError(f"{target.name} is read-only")


def write_caption(photo: Path, record: CaptionRecord, options: WriteOptions = WriteOptions()) -> WriteResult:
    """Write a caption into a photo's metadata, following the rules above.

    Raises MetadataError when nothing could be written; the photo is untouched then.
    """
    photo = Path(photo)
    if not photo.is_file():
        raise MetadataError(f"{photo.name}: file not found")
    existing = read_caption(photo, options.sidecar_naming)
    if existing and existing.written_by_person and not options.overwrite and record.source != PERSON:
        return WriteResult(photo, skipped=f"kept the caption a person wrote ({existing.text[:60]!r}); use overwrite to replace it")
    if options.mode == EMBED and is_jpeg(photo):
        return _write_jpeg(photo, record, options)
    return _write_sidecar(photo, record, options)


def _write_jpeg(photo: Path, record: CaptionRecord, options: WriteOptions) -> WriteResult:
    _check_writable(photo, photo)
    try:
        jpeg = JpegFile.parse(_read_bytes(photo))
    except JpegError as exc:
        raise MetadataError(f"{photo.name}: {exc}") from None
    result = WriteResult(photo)
    try:
        xmp = merge_caption(jpeg.app1(XMP_HEADER), record, options.write_keywords)
        jpeg.set_app1(XMP_HEADER, xmp)
        result.places.append("XMP")
    except (XmpError, JpegError) as exc:
        raise MetadataError(f"{photo.name}: existing XMP cannot be merged safely ({exc}); nothing written") from None
    if options.write_exif:
        try:
            jpeg.set_app1(EXIF_HEADER, with_caption(jpeg.app1(EXIF_HEADER), record.text))
            result.places.append("EXIF")
        except (ExifError, JpegError) as exc:
            result.warnings.append(str(exc))
    try:
        replace_atomically(photo, jpeg.to_bytes(), options.keep_mtime)
    except OSError as exc:
        raise MetadataError(f"{photo.name}: could not write ({exc.strerror or exc})") from None
    return result


def _write_sidecar(photo: Path, record: CaptionRecord, options: WriteOptions) -> WriteResult:
    sidecar = sidecar_path(photo, options.sidecar_naming)
    _check_writable(photo, sidecar)
    existing = _read_bytes(sidecar) if sidecar.exists() else None
    try:
        packet = merge_caption(existing, record, options.write_keywords)
    except XmpError as exc:
        raise MetadataError(f"{sidecar.name}: existing sidecar cannot be merged safely ({exc}); nothing written") from None
    try:
        replace_atomically(sidecar, packet, keep_mtime=False)
    except OSError as exc:
        raise MetadataError(f"{sidecar.name}: could not write ({exc.strerror or exc})") from None
    return WriteResult(photo, places=[f"sidecar {sidecar.name}"])
