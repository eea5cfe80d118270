"""Photo file -> RGB image -> normalised pixel tensor, exactly as the bundle's manifest says.

Training caches its features through ``to_pixels`` too, so train and app
preprocess identically. HEIC/HEIF open through pillow-heif (AVIF through
Pillow itself); camera RAW files through the JPEG preview the camera embedded,
read by rawpy (LibRaw): a caption needs a 224-pixel view, not a demosaiced raw.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from desktop_app.bundle.format import Preprocessing
from desktop_app.photos.formats import HEIF, HEIF_EXTENSIONS, RAW_EXTENSIONS, RefusedFormat, open_image

MAX_PIXELS = 150_000_000  # larger photos are refused: a decompression bomb or a scan we cannot hold
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow raises DecompressionBombError above twice this
# Memory one photo may take on its way to 8-bit RGB (decoded pixels plus to_rgb's copies): a pixel count
# alone lets a 280 KB 16-bit 12000x12000 PNG take 2.7 GB. Bytes per pixel along that way, by decoded mode:
DECODE_BUDGET = 512 * 2**20
_DECODE_COST = {"RGB": 4, "1": 5, "L": 5, "P": 17, "I;16": 20, "I;16B": 20, "I;16L": 20, "I;16N": 20,
                "I": 26, "F": 26, "RGBA": 16, "RGBa": 16, "LA": 20, "La": 20, "PA": 20}  # others: 4 + RGB 4

# LibRaw's "flip" -> the transpose that makes the preview upright
_RAW_FLIP = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


class PhotoError(Exception):
    """A photo could not be read; the message says why in words a person understands."""


def load_rgb(path: Path, target_size: tuple[int, int] | None = None) -> Image.Image:
    """Open a photo as upright 8-bit RGB.

    With ``target_size`` (width, height), JPEGs are decoded in draft mode at the
    smallest DCT scale still at least that large, which is ~10x faster on big photos.
    """
    path = Path(path)
    if path.suffix.lower() in RAW_EXTENSIONS:
        return load_raw_preview(path)
    return _decode(path, target_size, heif_name=path.suffix.lower() in HEIF_EXTENSIONS)


def read_rgb(handle: BinaryIO, name: str, target_size: tuple[int, int] | None = None) -> Image.Image:
    """An open photo file as upright 8-bit RGB, read as ``load_rgb`` reads it by path (``name`` says its type)."""
    suffix = Path(name).suffix.lower()
    if suffix in RAW_EXTENSIONS:
        return load_raw_preview(handle)
    return _decode(handle, target_size, heif_name=suffix in HEIF_EXTENSIONS)


def decode_rgb(data: bytes, target_size: tuple[int, int] | None = None) -> Image.Image:
    """Photo bytes (an upload) as upright 8-bit RGB: read as ``load_rgb`` reads a file whose name says
    nothing of its type, without the bytes ever touching the disk."""
    return _decode(io.BytesIO(data), target_size, heif_name=False)


def _decode(source: Path | BinaryIO, target_size: tuple[int, int] | None, heif_name: bool) -> Image.Image:
    try:
        image = open_image(source)
    except FileNotFoundError:
        raise PhotoError("file not found") from None
    except RefusedFormat as exc:
        raise PhotoError(str(exc)) from None
    except UnidentifiedImageError:
        if heif_name and not HEIF:
            raise PhotoError("HEIC/HEIF needs the pillow-heif package, which is not installed") from None
        raise PhotoError("not a photo this app can open (unknown format or damaged file)") from None
    except Image.DecompressionBombError as exc:
        raise PhotoError(f"refused: too many pixels ({exc})") from None
    except OSError as exc:
        raise PhotoError(f"cannot open: {exc}") from None
    try:
        with image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoError(f"refused: {width}x{height} is over {MAX_PIXELS // 1_000_000} megapixels")
            if target_size and image.format == "JPEG":
                orientation = image.getexif().get(0x0112, 1)
                # Orientations 5-8 swap width and height after transposing.
                w, h = target_size if orientation < 5 else target_size[::-1]
                image.draft("RGB", (w, h))
            _check_budget(image)
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except PhotoError:
        raise
    except Image.DecompressionBombError as exc:
        raise PhotoError(f"refused: too many pixels ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise PhotoError(f"corrupt or truncated image data ({exc})") from None


def _check_budget(image: Image.Image) -> None:
    """Refuse, before decoding, a photo whose way to RGB would take more than DECODE_BUDGET bytes."""
    width, height = image.size  # after draft(): the size a JPEG will really be decoded at
    cost = width * height * _DECODE_COST.get(image.mode, 8)
    if cost > DECODE_BUDGET:
        raise PhotoError(f"refused: reading this {width}x{height} image ({image.mode}) would take about "
                         f"{cost / 2**20:,.0f} MiB of memory, over the {DECODE_BUDGET / 2**20:.0f} MiB one photo may take")


def load_raw_preview(source: Path | BinaryIO) -> Image.Image:
    """A camera RAW file's embedded preview (JPEG or bitmap) as upright RGB; ``source``: its path or open file."""
    try:
        import rawpy
    except ImportError:
        raise PhotoError("camera RAW needs the rawpy package, which is not installed") from None
    if isinstance(source, Path) and not source.is_file():
        raise PhotoError("file not found")
    try:
        with rawpy.imread(str(source) if isinstance(source, Path) else source) as raw:
            flip = raw.sizes.flip
            thumb = raw.extract_thumb()
    except rawpy.LibRawNoThumbnailError:
        raise PhotoError("this camera RAW file has no embedded preview to caption from") from None
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise PhotoError("not a camera RAW file this app can read (damaged, or from a camera it does not know)") from None  # LibRaw's own words ("b'Input/output error'") say nothing to a person
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            image = open_image(io.BytesIO(thumb.data))
            image.load()
            image = ImageOps.exif_transpose(image)  # a preview that carries its own orientation
        else:
            image = Image.fromarray(thumb.data)
            if flip in _RAW_FLIP:
                image = image.transpose(_RAW_FLIP[flip])
    except (OSError, ValueError, SyntaxError) as exc:
        raise PhotoError(f"the RAW file's embedded preview is damaged ({exc})") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode (L, P, RGBA, CMYK, 16-bit, float) as 8-bit RGB; transparency goes onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def to_pixels(image: Image.Image, spec: Preprocessing) -> np.ndarray:
    """RGB image -> float32 [3, H, W], squashed to the input size and normalised."""
    size = (spec.input_width, spec.input_height)
    if image.size != size:
        image = image.resize(size, _RESAMPLE[spec.resample])
    array = np.asarray(image, dtype=np.float32) * np.float32(spec.scale)
    array = (array - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def load_pixels(path: Path, spec: Preprocessing) -> np.ndarray:
    """Photo file -> encoder input [3, H, W]."""
    return to_pixels(load_rgb(path, (spec.input_width, spec.input_height)), spec)


def read_pixels(handle: BinaryIO, name: str, spec: Preprocessing) -> np.ndarray:
    """An open photo file -> encoder input [3, H, W], as ``load_pixels`` reads it by path."""
    return to_pixels(read_rgb(handle, name, (spec.input_width, spec.input_height)), spec)


def decode_pixels(data: bytes, spec: Preprocessing) -> np.ndarray:
    """Photo bytes -> encoder input [3, H, W], as ``load_pixels`` reads them from a file."""
    return to_pixels(decode_rgb(data, (spec.input_width, spec.input_height)), spec)
