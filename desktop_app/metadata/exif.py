"""EXIF caption tags: ImageDescription (0x010E) and Windows XPComment (0x9C9C) in IFD0.

Reading decodes them the way Windows and the MWG guidelines expect (ImageDescription as
UTF-8, else Latin-1; XPComment as UTF-16LE). Writing is a minimal edit through
``tiff.TiffBlock.with_ifd0``: no existing byte moves, so maker notes, sub-IFDs and
thumbnails stay valid. Where that cannot be done safely we raise ExifError and the
caller leaves EXIF alone; there is no fallback that rewrites the whole block.
"""

from __future__ import annotations

import struct

from desktop_app.metadata.jpeg import EXIF_HEADER, MAX_PAYLOAD
from desktop_app.metadata.tiff import ASCII, BYTE, RATIONAL, SHORT, NewValue, TiffBlock, TiffError, new_block

IMAGE_DESCRIPTION, XP_COMMENT = 0x010E, 0x9C9C


class ExifError(ValueError):
    """EXIF we cannot read or edit without risk; the message says why in plain words."""


def parse_exif_caption(exif: bytes) -> tuple[str, str]:
    """(ImageDescription, XPComment) from a raw EXIF block (TIFF header first).

    Raises ExifError when the block cannot be read, so that unreadable EXIF is never
    mistaken for EXIF without a caption.
    """
    try:
        block = TiffBlock(exif)
        description = block.ifd0.find(IMAGE_DESCRIPTION)
        comment = block.ifd0.find(XP_COMMENT)
        description_bytes = block.value(description) if description else b""
        comment_bytes = block.value(comment) if comment else b""
    except TiffError as exc:
        raise ExifError(f"the photo's EXIF cannot be read: {exc}") from None
    return _decode_text(description_bytes), _decode_utf16(comment_bytes)


def with_caption(exif: bytes | None, text: str, density: tuple[int, int, int] | None = None) -> bytes:
    """The EXIF block (without the 'Exif\\0\\0' header) with the caption set, every other byte kept.

    With no EXIF yet, a new minimal block that ``exiftool -validate`` accepts; its resolution is
    ``density`` (x, y, JFIF unit: 1 per inch, 2 per cm), the photo's own JFIF density, so it never
    contradicts what the photo says. Raises ExifError when the edit cannot be made without risk;
    the caller then leaves EXIF as it is.
    """
    if not exif:
        return _new_exif(text, density)
    try:
        block = TiffBlock(exif)
        if _stored_as_we_write(block, text):
            return bytes(exif)
        edited = block.with_ifd0(_caption_values(text))
    except TiffError as exc:
        raise ExifError(f"EXIF left unchanged: {exc}") from None
    if len(EXIF_HEADER) + len(edited) > MAX_PAYLOAD:
        raise ExifError("EXIF left unchanged: with the caption it would exceed the 64 KB a JPEG EXIF segment can hold")
    return edited


def _caption_values(text: str) -> dict[int, NewValue | None]:
    text = text.replace("\x00", "")  # a NUL would end the text for every reader
    if not text:
        return {IMAGE_DESCRIPTION: None, XP_COMMENT: None}
    description = text.encode("utf-8") + b"\x00"
    comment = text.encode("utf-16-le") + b"\x00\x00"
    return {IMAGE_DESCRIPTION: NewValue(IMAGE_DESCRIPTION, ASCII, len(description), description),
            XP_COMMENT: NewValue(XP_COMMENT, BYTE, len(comment), comment)}


def _stored_as_we_write(block: TiffBlock, text: str) -> bool:
    """True when both caption tags already hold exactly the bytes we would write."""
    wanted = _caption_values(text)
    for tag, value in wanted.items():
        entry = block.ifd0.find(tag)
        if value is None:
            if entry is not None:
                return False
        elif entry is None or (entry.type, entry.count, block.value(entry)) != (value.type, value.count, value.data):
            return False
    return True


def _new_exif(text: str, density: tuple[int, int, int] | None) -> bytes:
    """IFD0 with the caption and the tags a JPEG's IFD0 must have: the JFIF density where the photo states one,
    else EXIF 2.32's defaults (72 dpi, which readers assume when the tags are missing); centred chroma."""
    x, y, unit = density or (72, 72, 1)
    required = [NewValue(0x011A, RATIONAL, 1, struct.pack("<II", x, 1)),  # XResolution
                NewValue(0x011B, RATIONAL, 1, struct.pack("<II", y, 1)),  # YResolution
                NewValue(0x0128, SHORT, 1, struct.pack("<H", 2 if unit == 1 else 3)),  # ResolutionUnit: inch, cm
                NewValue(0x0213, SHORT, 1, struct.pack("<H", 1))]  # YCbCrPositioning: centred
    captions = [value for value in _caption_values(text).values() if value is not None]
    return new_block("<", required + captions)


def _decode_text(raw: bytes) -> str:
    """An EXIF ASCII value: up to its first NUL (if any), UTF-8 where valid, else Latin-1."""
    raw = raw.split(b"\x00", 1)[0]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.strip()


def _decode_utf16(raw: bytes) -> str:
    """A Windows XP tag: UTF-16LE up to its first NUL character."""
    text = raw[:len(raw) - len(raw) % 2].decode("utf-16-le", "replace")
    return text.split("\x00", 1)[0].strip()
