"""The EXIF caption edit moves no byte: maker notes, thumbnails and odd text stay as cameras wrote them.

The blocks here are laid out like a camera's (IFD0 first, Canon-style maker note whose
offsets count from the TIFF header, IFD1 JPEG thumbnail), in both byte orders, and
exiftool, not our reader, says what survived.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.metadata.exif import ExifError, parse_exif_caption, with_caption
from desktop_app.metadata.tiff import ASCII, LONG, RATIONAL, SHORT, UNDEFINED, TiffBlock

CAPTION = "A dog runs across a grassy field."
ORDERS = {"<": "Little-endian (Intel, II)", ">": "Big-endian (Motorola, MM)"}


class Layout:
    """Writes a TIFF block front to back, the way cameras do; values may depend on their own offset."""

    def __init__(self, order: str):
        self.order = order
        self.data = bytearray((b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8))

    def pack(self, fmt: str, *values: int) -> bytes:
        return struct.pack(self.order + fmt, *values)

    def ifd(self, entries: list[tuple], next_offset: int = 0) -> tuple[int, dict[int, int]]:
        """Place an IFD and its values here; returns its offset and where each entry's value field is."""
        start = len(self.data)
        values_at = start + 2 + 12 * len(entries) + 4
        table, values, fields = [self.pack("H", len(entries))], b"", {}
        for tag, kind, count, value in entries:
            offset = values_at + len(values)
            data = value(offset) if callable(value) else value
            fields[tag] = start + 2 + 12 * len(fields) + 8
            if len(data) <= 4:
                table.append(self.pack("HHI", tag, kind, count) + data.ljust(4, b"\x00"))
            else:
                table.append(self.pack("HHII", tag, kind, count, offset))
                values += data + b"\x00" * (len(data) % 2)
        self.data += b"".join(table) + self.pack("I", next_offset) + values
        return start, fields

    def patch(self, position: int, value: int) -> None:
        self.data[position:position + 4] = self.pack("I", value)


def canon_maker_note(order: str, base: int) -> bytes:
    """A Canon maker note placed at ``base``: an IFD whose string offset counts from the TIFF header."""
    image_type = b"Canon EOS 40D JPEG\x00"
    pack = lambda fmt, *v: struct.pack(order + fmt, *v)  # noqa: E731
    values_at = base + 2 + 12 * 2 + 4
    return (pack("H", 2) + pack("HHI", 0x0002, SHORT, 4) + pack("I", values_at)  # FocalLength: 4 shorts
            + pack("HHII", 0x0006, ASCII, len(image_type), values_at + 8) + pack("I", 0)
            + pack("4H", 0, 213, 32, 24) + image_type + b"\x00")


def camera_block(order: str, description: bytes | None = None, padding: int = 0) -> bytes:
    """IFD0 (Make, Model, optional ImageDescription) -> ExifIFD (dates without NUL, maker note), IFD1 thumbnail."""
    layout = Layout(order)
    ifd0_entries = [(0x010F, ASCII, 6, b"Canon\x00"), (0x0110, ASCII, 14, b"Canon EOS 40D\x00"),
                    (0x0112, SHORT, 1, layout.pack("H", 1)),
                    (0x011A, RATIONAL, 1, layout.pack("II", 72, 1)), (0x011B, RATIONAL, 1, layout.pack("II", 72, 1)),
                    (0x0128, SHORT, 1, layout.pack("H", 2)), (0x0213, SHORT, 1, layout.pack("H", 2)),
                    (0x8769, LONG, 1, b"\x00" * 4)]
    if description is not None:
        ifd0_entries.insert(0, (0x010E, ASCII, len(description), description))
    _, ifd0 = layout.ifd(ifd0_entries)
    exif_entries = [(0x9000, UNDEFINED, 4, b"0230"),
                    (0x9003, ASCII, 19, b"2005:08:13 09:47:23"),  # no NUL, as Kodak writes it
                    (0x9101, UNDEFINED, 4, b"\x01\x02\x03\x00"),
                    (0x927C, UNDEFINED, 42 + 19 + 1, lambda at: canon_maker_note(order, at)),
                    (0xA000, UNDEFINED, 4, b"0100"), (0xA001, SHORT, 1, layout.pack("H", 1)),
                    (0xA002, LONG, 1, layout.pack("I", 640)), (0xA003, LONG, 1, layout.pack("I", 480))]
    if padding:
        exif_entries.insert(0, (0x8298, ASCII, padding, b"(c)".ljust(padding - 1) + b"\x00"))  # Copyright
    exif_ifd, _ = layout.ifd(exif_entries)
    layout.patch(ifd0[0x8769], exif_ifd)
    thumbnail = io.BytesIO()
    Image.new("RGB", (16, 12), "green").save(thumbnail, "JPEG")
    ifd1, ifd1_fields = layout.ifd([(0x0103, SHORT, 1, layout.pack("H", 6)),
                                    (0x011A, RATIONAL, 1, layout.pack("II", 72, 1)),
                                    (0x011B, RATIONAL, 1, layout.pack("II", 72, 1)),
                                    (0x0128, SHORT, 1, layout.pack("H", 2)), (0x0201, LONG, 1, b"\x00" * 4),
                                    (0x0202, LONG, 1, layout.pack("I", len(thumbnail.getvalue())))])
    layout.patch(8 + 2 + 12 * len(ifd0_entries), ifd1)  # IFD0's next-IFD pointer
    layout.patch(ifd1_fields[0x0201], len(layout.data))
    layout.data += thumbnail.getvalue()
    return bytes(layout.data)


def jpeg_with(exif: bytes | None) -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(image, "JPEG")
    data = image.getvalue()
    if exif is None:
        return data
    payload = b"Exif\x00\x00" + exif
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def exiftool_many(paths: list[Path], *args: str) -> list[dict]:
    """One exiftool run over several files (JSON, in the order given)."""
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", "-s", "-n", *args, *map(str, paths)],
                         capture_output=True, text=True, check=True).stdout
    by_name = {Path(entry["SourceFile"]).name: entry for entry in json.loads(out)}
    return [by_name[path.name] for path in paths]


def without_file_tags(tags: dict) -> dict:
    return {key: value for key, value in tags.items() if not key.startswith(("System:", "SourceFile", "ExifTool:"))}


@pytest.mark.parametrize("order", ORDERS)
def test_caption_edit_keeps_every_byte_and_tag_in_both_byte_orders(order, tmp_path):
    block = camera_block(order)
    edited = with_caption(block, CAPTION)
    assert edited[:4] == block[:4] and edited[8:len(block)] == block[8:]  # only the IFD0 offset changed
    assert TiffBlock(edited).ifd0_offset % 2 == 0
    before, after = tmp_path / "before.jpg", tmp_path / "after.jpg"
    before.write_bytes(jpeg_with(block))
    after.write_bytes(jpeg_with(edited))
    old, new = exiftool_many([before, after], "-api", "validate", "-b")
    assert new.pop("IFD0:ImageDescription") == CAPTION and new.pop("IFD0:XPComment") == CAPTION
    assert new["File:ExifByteOrder"] == ("II" if order == "<" else "MM")
    assert without_file_tags(new) == without_file_tags(old)  # maker note, dates, thumbnail (as -b) included
    assert old["Canon:FocalLength"] == 213 and old["Canon:CanonImageType"] == "Canon EOS 40D JPEG"
    assert "IFD1:ThumbnailImage" in old and "ExifTool:Warning" not in new


def test_maker_note_and_thumbnail_stay_where_they_were():
    block = camera_block("<")
    original = TiffBlock(block)
    edited = TiffBlock(with_caption(block, CAPTION))
    exif_ifd = original.ifd(original.integers(original.ifd0.find(0x8769))[0], "Exif")
    maker_note = exif_ifd.find(0x927C)
    ifd1 = original.ifd(original.ifd0.next_offset, "IFD1")
    thumbnail_at = original.integers(ifd1.find(0x0201))[0]
    assert edited.ifd0.next_offset == original.ifd0.next_offset
    assert edited.ifd0.find(0x8769) == original.ifd0.find(0x8769)
    assert edited.offset_of(maker_note) == original.offset_of(maker_note)
    assert edited.value(maker_note) == original.value(maker_note)
    assert edited.data[thumbnail_at:thumbnail_at + 4] == b"\xff\xd8\xff\xe0"


def test_entries_are_sorted_and_values_word_aligned():
    edited = TiffBlock(with_caption(camera_block(">", description=b"OLYMPUS DIGITAL CAMERA\x00", padding=7), CAPTION))
    tags = [entry.tag for entry in edited.ifd0.entries]
    assert tags == sorted(tags) and tags.count(0x010E) == 1
    assert all(edited.offset_of(entry) % 2 == 0 for entry in edited.ifd0.entries if not entry.inline)


def test_text_without_nul_keeps_its_last_character():
    block = camera_block("<", description=b"Grandma's garden")  # count 16, no terminating NUL
    assert parse_exif_caption(block) == ("Grandma's garden", "")


def test_description_decoding_utf8_then_latin1():
    assert parse_exif_caption(camera_block("<", description="Straße am Fluss".encode() + b"\x00"))[0] == "Straße am Fluss"
    assert parse_exif_caption(camera_block("<", description="Café au lait".encode("latin-1")))[0] == "Café au lait"


def test_camera_placeholder_is_replaced(tmp_path):
    block = camera_block(">", description=b"OLYMPUS DIGITAL CAMERA         \x00")
    assert parse_exif_caption(block) == ("OLYMPUS DIGITAL CAMERA", "")
    edited = with_caption(block, "Ein Hund läuft über die Wiese 🐕")
    assert parse_exif_caption(edited) == ("Ein Hund läuft über die Wiese 🐕",) * 2
    photo = tmp_path / "olympus.jpg"
    photo.write_bytes(jpeg_with(edited))
    (tags,) = exiftool_many([photo], "-use", "MWG", "-Description")
    assert tags["MWG:Description"] == "Ein Hund läuft über die Wiese 🐕"


def test_writing_again_changes_nothing_and_recaptioning_does_not_grow():
    block = camera_block("<")
    once = with_caption(block, CAPTION)
    assert with_caption(once, CAPTION) == once
    other = with_caption(once, "A cat on a sofa.")
    assert parse_exif_caption(other) == ("A cat on a sofa.", "A cat on a sofa.")
    assert len(other) == len(with_caption(block, "A cat on a sofa."))
    assert other[:len(block)][8:] == block[8:]


def test_camera_values_behind_ifd0_are_never_moved():
    """IFD0 written last, its Make string and a PrintIM blob behind it: the edit appends, moving nothing."""
    layout = Layout("<")
    exif_ifd, _ = layout.ifd([(0x9000, UNDEFINED, 4, b"0230")])
    ifd0, _ = layout.ifd([(0x010F, ASCII, 6, b"Canon\x00"), (0x8769, LONG, 1, layout.pack("I", exif_ifd)),
                          (0xC4A5, UNDEFINED, 12, b"PrintIM\x000300")])
    layout.data[4:8] = layout.pack("I", ifd0)
    block = bytes(layout.data)
    edited = with_caption(block, CAPTION)
    assert edited[8:len(block)] == block[8:] and TiffBlock(edited).ifd0_offset >= len(block)
    assert parse_exif_caption(edited) == (CAPTION, CAPTION)


def test_new_block_is_rewritten_in_place_when_recaptioned():
    sizes = []
    block = with_caption(None, "first caption")
    for text in ("second caption", "third caption", "fourth caption"):
        block = with_caption(block, text)
        sizes.append(len(block))
        assert parse_exif_caption(block) == (text, text)
    assert sizes[1] <= sizes[0] and sizes[2] == sizes[0]


def test_too_big_for_one_segment_is_refused_in_words():
    block = camera_block("<", padding=65533 - 6 - len(camera_block("<")) - 14)  # just fits today
    assert len(block) + 6 <= 65533
    with pytest.raises(ExifError, match="64 KB"):
        with_caption(block, CAPTION)


@pytest.mark.parametrize("damage, words", [
    (lambda b: b"JUNK" + b[4:], "TIFF header"),
    (lambda b: b[:40], "past the end"),
    (lambda b: b[:4] + struct.pack("<I", 90000) + b[8:], "outside"),
])
def test_unreadable_exif_is_refused_not_rewritten(damage, words):
    broken = damage(camera_block("<"))
    with pytest.raises(ExifError, match=words):
        with_caption(broken, CAPTION)
    with pytest.raises(ExifError, match="cannot be read"):
        parse_exif_caption(broken)


def test_value_pointing_past_the_end_is_refused():
    """Appending would hand that pointer our bytes: refuse instead of changing what it reads."""
    block = camera_block("<")
    cut = block[:block.index(b"\xff\xd8\xff\xe0")]  # thumbnail cut off: IFD1 points past the end
    with pytest.raises(ExifError, match=r"thumbnail \(0x0201\) data runs past the end"):
        with_caption(cut, CAPTION)


def test_new_exif_block_passes_exiftool_validate(tmp_path):
    new, recaptioned = tmp_path / "new.jpg", tmp_path / "recaptioned.jpg"
    new.write_bytes(jpeg_with(with_caption(None, "A cat.")))
    recaptioned.write_bytes(jpeg_with(with_caption(with_caption(None, "A cat."), CAPTION)))
    for tags in exiftool_many([new, recaptioned], "-api", "validate"):
        assert "ExifTool:Warning" not in tags  # -api validate adds every -validate warning
        assert tags["IFD0:XResolution"] == 72 and tags["IFD0:ResolutionUnit"] == 2
    assert tags["IFD0:ImageDescription"] == CAPTION and tags["IFD0:XPComment"] == CAPTION


def test_exif_with_header_variant_ff_is_the_photos_exif(tmp_path):
    """Issue 24 item 5: 'Exif\\0\\xff' (which exiftool reads) is read and edited in place, written back with the
    standard header (so exiv2 reads it too); before, a second EXIF block went in front and hid the person's text."""
    from desktop_app.metadata.jpeg import APP1, EXIF_SIGNATURE, JpegFile
    from desktop_app.metadata.record import PERSON, CaptionRecord
    from desktop_app.metadata.store import WriteOptions, read_caption, write_caption

    photo = tmp_path / "birthday.jpg"
    photo.write_bytes((Path(__file__).parent / "data" / "exif_header_ff.jpg").read_bytes())
    assert read_caption(photo).text == "Grandma's 80th birthday"
    assert write_caption(photo, CaptionRecord(CAPTION, keywords=["dog"])).skipped  # a person's caption is kept
    write_caption(photo, CaptionRecord("Grandma at 80", PERSON), WriteOptions(overwrite=True))
    segments = [p for m, p in JpegFile.parse(photo.read_bytes()).segments if m == APP1 and p.startswith(EXIF_SIGNATURE)]
    assert len(segments) == 1 and segments[0].startswith(b"Exif\x00\x00")
    tags = json.loads(subprocess.run(["exiftool", "-j", "-a", "-G1", "-IFD0:all", str(photo)], capture_output=True,
                                     text=True, check=True).stdout)[0]
    assert tags["IFD0:ImageDescription"] == "Grandma at 80" and tags["IFD0:Make"] == "Canon"
    exiv2 = subprocess.run(["exiv2", "-pa", "-K", "Exif.Image.ImageDescription", str(photo)], capture_output=True,
                           text=True).stdout
    assert "Grandma at 80" in exiv2


@pytest.mark.parametrize("units, density, unit_name", [(1, (300, 300), "inches"), (1, (180, 144), "inches"),
                                                        (2, (118, 118), "cm")])
def test_new_exif_block_states_the_jfif_density_not_72_dpi(units, density, unit_name, tmp_path):
    """Issue 24 item 7: a JPEG without EXIF gets an EXIF block whose resolution is its own JFIF density."""
    from desktop_app.metadata.record import CaptionRecord
    from desktop_app.metadata.store import write_caption

    photo = tmp_path / "scan.jpg"
    Image.new("RGB", (32, 24), "white").save(photo, "JPEG", dpi=density)
    data = bytearray(photo.read_bytes())
    data[data.index(b"JFIF\x00") + 7] = units  # Pillow writes dots per inch; make it per cm where asked
    photo.write_bytes(bytes(data))
    write_caption(photo, CaptionRecord(CAPTION))
    tags = json.loads(subprocess.run(["exiftool", "-j", "-n", "-G1", "-JFIF:all", "-IFD0:all", "-api", "validate",
                                      "-ExifTool:Warning", str(photo)], capture_output=True, text=True).stdout)[0]
    assert (tags["IFD0:XResolution"], tags["IFD0:YResolution"]) == density == (tags["JFIF:XResolution"],
                                                                               tags["JFIF:YResolution"])
    assert tags["IFD0:ResolutionUnit"] == {"inches": 2, "cm": 3}[unit_name] and tags["JFIF:ResolutionUnit"] == units
    assert "ExifTool:Warning" not in tags
