"""Captions embedded in PNG (iTXt XMP), WebP (RIFF XMP chunk) and TIFF (tag 700): read by exiftool and exiv2,
nothing else changes.

The files are made here by Pillow (a few hundred bytes each); the chunks are walked by the
test itself, not by the code under test, and every other chunk must stay byte-identical.
A TIFF gets a new IFD0 appended: every byte it had stays where it was but the header's IFD0 offset.
"""

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageSequence, PngImagePlugin

from conftest import exiftool
from desktop_app.library.undo import WriteJournal
from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import WriteOptions, read_caption, sidecar_path, write_caption

CAPTION = CaptionRecord("A red kite over a green hill.", model_id="embed-test@1", keywords=["kite", "hill"])
XMP_KEYWORD = b"XML:com.adobe.xmp\x00"


def png_chunks(data: bytes) -> list[tuple[bytes, bytes, bool]]:
    """(type, data, CRC right) for each chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        chunks.append((kind, body, crc == zlib.crc32(kind + body) & 0xFFFFFFFF))
        pos += 12 + length
    return chunks


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8, "RIFF size"
    pos, chunks = 12, []
    while pos < len(data):
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        chunks.append((data[pos:pos + 4], data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def frames(path: Path) -> list[bytes]:
    with Image.open(path) as image:
        return [frame.convert("RGBA").tobytes() for frame in ImageSequence.Iterator(image)]


def validate(path: Path) -> list[str]:
    """exiftool's -validate warnings for the file (none when it is clean)."""
    tags = exiftool("-validate", "-warning", "-a", path)
    warnings = tags.get("ExifTool:Warning", [])
    return warnings if isinstance(warnings, list) else [warnings]


def exiv2_description(path: Path) -> str:
    out = subprocess.run(["exiv2", "-pa", "-K", "Xmp.dc.description", str(path)], capture_output=True, text=True).stdout
    return out.split('lang="x-default" ', 1)[-1].strip()


@pytest.fixture
def png(tmp_path):
    """A PNG with text before and after the image data, a private chunk and a physical size."""
    path = tmp_path / "drawing.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "a paint program")
    info.add(b"prIv", b"private bytes")
    info.add_text("Comment", "written after the image data", zip=True)
    info.chunks[-1] = (*info.chunks[-1][:2], True)  # after IDAT
    Image.new("RGB", (24, 16), "orange").save(path, pnginfo=info, dpi=(300, 300))
    return path


@pytest.mark.skipif(shutil.which("exiv2") is None, reason="exiv2 is not installed")
def test_png_gets_an_itxt_xmp_chunk_before_the_image_data_and_keeps_every_other_chunk(png):
    before, pixels = png_chunks(png.read_bytes()), frames(png)
    result = write_caption(png, CAPTION)
    assert result.places == ["XMP"] and result.changed and not sidecar_path(png).exists()
    after = png_chunks(png.read_bytes())
    assert all(crc_right for _, _, crc_right in after)
    xmp = [i for i, (kind, body, _) in enumerate(after) if body.startswith(XMP_KEYWORD)]
    assert len(xmp) == 1 and after[xmp[0]][0] == b"iTXt"
    assert after[xmp[0]][1][len(XMP_KEYWORD):len(XMP_KEYWORD) + 2] == b"\x00\x00"  # uncompressed
    assert xmp[0] < [kind for kind, _, _ in after].index(b"IDAT")
    assert [c for i, c in enumerate(after) if i not in xmp] == before
    assert frames(png) == pixels
    tags = exiftool(png)
    assert tags["XMP-dc:Description"] == CAPTION.text and tags["XMP-dc:Subject"] == ["kite", "hill"]
    assert validate(png) == []
    assert exiv2_description(png) == CAPTION.text
    # a new caption replaces ours in the same chunk: still one XMP chunk, nothing else moves
    write_caption(png, CaptionRecord("A kite on a string.", model_id="embed-test@2"))
    again = png_chunks(png.read_bytes())
    assert [i for i, (_, body, _) in enumerate(again) if body.startswith(XMP_KEYWORD)] == xmp
    assert [c for i, c in enumerate(again) if i not in xmp] == before
    assert read_caption(png).text == "A kite on a string."


def test_png_xmp_of_another_tool_is_merged_and_a_persons_caption_is_kept(png):
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Creator=Ada", "-XMP-xmp:Rating=4", str(png)],
                   check=True)
    write_caption(png, CAPTION)
    tags = exiftool(png)
    assert tags["XMP-dc:Creator"] == ["Ada"] and tags["XMP-xmp:Rating"] == 4
    assert tags["XMP-dc:Description"] == CAPTION.text
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Description=Our kite, 2019", str(png)],
                   check=True)
    before = png.read_bytes()
    result = write_caption(png, CaptionRecord("A kite.", model_id="embed-test@2"))
    assert "kept the caption a person wrote" in result.skipped and png.read_bytes() == before


def make_webp(path: Path, kind: str) -> Path:
    image = Image.new("RGBA", (33, 17), (200, 40, 40, 128))  # odd sizes: canvas width-1/height-1 are checked
    if kind == "lossless with alpha":
        image.save(path, lossless=True)
    elif kind == "lossy":
        image.convert("RGB").save(path, quality=80)
    else:  # extended already: an EXIF chunk (and so a VP8X) from the camera app
        exif = Image.Exif()
        exif[0x010F] = "Phone Maker"
        image.convert("RGB").save(path, quality=80, exif=exif.tobytes())
    return path


@pytest.mark.skipif(shutil.which("exiv2") is None, reason="exiv2 is not installed")
@pytest.mark.parametrize("kind", ["lossy", "lossless with alpha", "extended with EXIF"])
def test_webp_gets_an_xmp_chunk_and_a_vp8x_chunk_saying_so(tmp_path, kind):
    photo = make_webp(tmp_path / "photo.webp", kind)
    before, pixels = webp_chunks(photo.read_bytes()), frames(photo)
    assert (before[0][0] == b"VP8X") == (kind == "extended with EXIF")
    result = write_caption(photo, CAPTION)
    assert result.places == ["XMP"] and not sidecar_path(photo).exists()
    after = webp_chunks(photo.read_bytes())
    assert after[0][0] == b"VP8X" and [k for k, _ in after].count(b"XMP ") == 1
    flags, width, height = after[0][1][0], *(int.from_bytes(after[0][1][i:i + 3], "little") + 1 for i in (4, 7))
    assert (width, height) == (33, 17)
    assert flags & 0x04  # XMP
    assert bool(flags & 0x10) == (kind == "lossless with alpha")  # alpha, as the VP8L header says
    assert bool(flags & 0x08) == (kind == "extended with EXIF")
    assert [c for c in after if c[0] not in (b"VP8X", b"XMP ")] == [c for c in before if c[0] != b"VP8X"]
    assert frames(photo) == pixels
    tags = exiftool(photo)
    assert tags["XMP-dc:Description"] == CAPTION.text
    if kind == "extended with EXIF":
        assert tags["IFD0:Make"] == "Phone Maker"
    assert validate(photo) == []
    assert exiv2_description(photo) == CAPTION.text
    write_caption(photo, CaptionRecord("A kite on a string.", model_id="embed-test@2"))
    assert [k for k, _ in webp_chunks(photo.read_bytes())] == [k for k, _ in after]


def test_sidecars_stay_on_request_and_for_a_png_too_damaged_to_edit(png, tmp_path):
    before = png.read_bytes()
    result = write_caption(png, CAPTION, WriteOptions(mode="sidecar"))
    assert result.places == ["sidecar drawing.png.xmp"] and png.read_bytes() == before
    broken = tmp_path / "cut.png"
    broken.write_bytes(before[:-30])  # cut off inside the image data: no IEND
    result = write_caption(broken, CAPTION)
    assert result.places == ["sidecar cut.png.xmp"] and broken.read_bytes() == before[:-30]
    assert len(result.warnings) == 1 and result.warnings[0].startswith("XMP not embedded: PNG: damaged PNG: ")
    assert result.warnings[0].endswith("; caption written to the sidecar")


def test_a_caption_sidecar_of_an_earlier_run_is_kept_in_step(png):
    """Before issue 28 PNGs got sidecars; a sidecar left with an old caption would be shown before the embedded one."""
    write_caption(png, CAPTION, WriteOptions(mode="sidecar"))
    newer = CaptionRecord("A kite on a string.", model_id="embed-test@2")
    result = write_caption(png, newer)
    assert result.places == ["XMP", "sidecar drawing.png.xmp"]
    assert exiftool(sidecar_path(png))["XMP-dc:Description"] == newer.text == read_caption(png).text


def make_tiff(path: Path, description: str | None = None) -> Path:
    """Two pages, the way scanners and Pillow write them."""
    pages = [Image.new("RGB", (20, 12), "teal"), Image.new("L", (8, 8), 200)]
    extra = {"description": description} if description else {}
    pages[0].save(path, save_all=True, append_images=pages[1:], dpi=(300, 300), **extra)
    return path


@pytest.mark.skipif(shutil.which("exiv2") is None, reason="exiv2 is not installed")
def test_tiff_gets_xmp_in_tag_700_and_no_byte_it_had_moves(tmp_path):
    photo = make_tiff(tmp_path / "scan.tif")
    before, pixels, warnings = photo.read_bytes(), frames(photo), validate(photo)
    result = write_caption(photo, CAPTION)
    assert result.places == ["XMP"] and not sidecar_path(photo).exists()
    after = photo.read_bytes()
    assert after[:4] == before[:4] and after[8:len(before)] == before[8:]  # only IFD0's offset changed
    assert int.from_bytes(after[4:8], "little") == len(before) + len(before) % 2  # the new IFD0, appended
    assert frames(photo) == pixels and validate(photo) == warnings
    tags = exiftool(photo)
    assert tags["XMP-dc:Description"] == CAPTION.text and tags["IFD0:XResolution"] == 300
    assert exiv2_description(photo) == CAPTION.text
    write_caption(photo, CaptionRecord("A kite on a string.", model_id="embed-test@2"))  # our tail is rewritten
    again = photo.read_bytes()
    assert again[8:len(before)] == before[8:] and again[4:8] == after[4:8] and len(again) < len(after) + 40
    assert read_caption(photo).text == "A kite on a string." and frames(photo) == pixels


def test_a_tiff_with_text_in_its_image_description_keeps_a_sidecar(tmp_path):
    """ImageJ, OME and tifffile keep their data in ImageDescription, and MWG readers would show it over XMP."""
    photo = make_tiff(tmp_path / "stack.tif", "ImageJ=1.54f\nimages=2\n")
    before = photo.read_bytes()
    result = write_caption(photo, CAPTION)
    assert result.places == ["sidecar stack.tif.xmp"] and photo.read_bytes() == before
    assert "its ImageDescription holds text" in result.warnings[0]


@pytest.mark.parametrize("kind", ["png", "lossy webp", "tiff"])
def test_undo_puts_an_embedded_png_webp_or_tiff_back_byte_for_byte(png, tmp_path, kind):
    photo = {"png": lambda: png, "lossy webp": lambda: make_webp(tmp_path / "photo.webp", "lossy"),
             "tiff": lambda: make_tiff(tmp_path / "scan.tif")}[kind]()
    before = photo.read_bytes()
    journal = WriteJournal("test", tmp_path / "undo")
    journal.remember(photo)
    write_caption(photo, CAPTION)
    journal.written(photo)
    assert photo.read_bytes() != before
    assert journal.stored_bytes() < 100  # the caption chunks' old state, not the photo
    report = journal.undo()
    assert report.restored == [photo] and report.refused == []
    assert photo.read_bytes() == before
