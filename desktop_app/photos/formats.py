"""Which photo formats we decode, and how: Pillow, plus pillow-heif for HEIC/HEIF, plus rawpy for camera RAW.

Pillow is only ever asked to open the formats listed here: by default it would try every plugin it has,
and some hand the file to another program (EPS runs Ghostscript) or read formats no camera writes.
"""

from __future__ import annotations

import ctypes
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2",
                            ".raf", ".pef", ".srw", ".3fr", ".erf", ".kdc", ".mos", ".mrw", ".x3f", ".iiq", ".rwl"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
# Pillow format IDs we open (MPO, a camera's multi-picture JPEG, opens through the JPEG ID); nothing else, ever.
PILLOW_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF", "AVIF", "HEIF")
_PREFIX = 16  # bytes Pillow's format checks look at


class RefusedFormat(UnidentifiedImageError):
    """An image in a format Pillow knows but we do not open (EPS, PSD, ICO...); the message names it."""


def heif_available() -> bool:
    """Register pillow-heif's HEIC/HEIF opener with Pillow (once); False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()  # idempotent
    return True


HEIF = heif_available()


def _quiet_pillow() -> None:
    """Keep Pillow's and libtiff's notes on odd tags off stderr (~280 lines over the metadata corpus).

    A photo they complain about still decodes, or fails and is reported in words; libtiff prints
    straight to stderr from C, so its handlers are switched off where its symbols can be found.
    """
    warnings.filterwarnings("ignore", module=r"PIL\.")
    try:
        from PIL import _imaging

        libtiff = ctypes.CDLL(_imaging.__file__)  # the symbols resolve in the libtiff Pillow is linked with
        for name in ("TIFFSetWarningHandler", "TIFFSetErrorHandler"):
            setter = getattr(libtiff, name)
            setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
            setter(None)
    except (OSError, AttributeError):  # a Pillow without libtiff, or a platform whose loader hides the symbols
        pass


_quiet_pillow()


def open_image(source: Path | IO[bytes]) -> Image.Image:
    """``Image.open`` limited to PILLOW_FORMATS; a file in another format Pillow knows raises RefusedFormat.

    Raises what ``Image.open`` raises otherwise (FileNotFoundError, UnidentifiedImageError, ...).
    """
    try:
        return Image.open(source, formats=PILLOW_FORMATS)
    except UnidentifiedImageError:
        other = _other_format(source)
        if other:
            raise RefusedFormat(f"refused: by its content this is {other}, a format photocaption does not open "
                                f"(it reads {', '.join(PILLOW_FORMATS)})") from None
        raise


def _other_format(source: Path | IO[bytes]) -> str:
    """The Pillow format whose signature the file's first bytes match ('' if none); no plugin is run."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            prefix = handle.read(_PREFIX)
    else:
        source.seek(0)
        prefix = source.read(_PREFIX)
    Image.init()
    return next((name for name, (_, accept) in Image.OPEN.items()
                 if name not in PILLOW_FORMATS and accept is not None and _accepts(accept, prefix)), "")


def _accepts(accept: Callable[[bytes], object], prefix: bytes) -> bool:
    """A plugin's signature check, which (as in ``Image.open``) may fail on a short prefix."""
    try:
        return bool(accept(prefix))
    except (SyntaxError, IndexError, TypeError, struct.error):
        return False
