"""EXIF caption tags through piexif: ImageDescription (0x010E) and Windows XPComment (0x9C9C)."""

from __future__ import annotations

import piexif

from desktop_app.metadata.jpeg import EXIF_HEADER


class ExifError(ValueError):
    """EXIF that piexif cannot round-trip; we leave it alone rather than damage it."""


def read_exif_caption(exif: bytes) -> tuple[str, str]:
    """(ImageDescription, XPComment) from a raw EXIF block."""
    try:
        ifd = piexif.load(EXIF_HEADER + exif)["0th"]
    except Exception:  # piexif raises many kinds on odd EXIF
        return "", ""
    description = ifd.get(piexif.ImageIFD.ImageDescription, b"")
    comment = ifd.get(piexif.ImageIFD.XPComment, b"")
    description = description.decode("utf-8", "replace") if isinstance(description, bytes) else str(description)
    comment = bytes(comment).decode("utf-16-le", "replace") if comment else ""
    return description.strip("\x00 "), comment.strip("\x00 ")


def with_caption(exif: bytes | None, text: str) -> bytes:
    """A new EXIF block (without the 'Exif\\0\\0' header) with the caption set; all other tags kept."""
    try:
        data = piexif.load(EXIF_HEADER + exif) if exif else {"0th": {}, "Exif": {}, "GPS": {}, "1st": {}, "thumbnail": None}
        data["0th"][piexif.ImageIFD.ImageDescription] = text.encode("utf-8")
        data["0th"][piexif.ImageIFD.XPComment] = tuple(text.encode("utf-16-le") + b"\x00\x00")
        block = piexif.dump(data)
    except Exception as exc:  # piexif raises ValueError, KeyError, struct.error...
        raise ExifError(f"EXIF left unchanged: piexif cannot rewrite it ({type(exc).__name__}: {exc})") from None
    return block[len(EXIF_HEADER):] if block.startswith(EXIF_HEADER) else block
