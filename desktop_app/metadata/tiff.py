"""TIFF container surgery for EXIF blocks and TIFF photos: read the IFD tree, replace IFD0 without moving anything.

An EXIF block is a little TIFF file: a header (byte order, offset of IFD0), then
directories (IFDs) of 12-byte entries whose larger values sit elsewhere in the
block at offsets counted from the header. Maker notes, thumbnails and sub-IFDs
all hang off those offsets, and many maker notes carry offsets of their own
that no general tool can find. So the one edit made here never moves a byte:
a new IFD0 (old entries plus the changed ones, sorted by tag, with the old
next-IFD pointer) and its new values are appended at the end of the block, and
the header is pointed at it. Like exiftool and Exiv2, everything is read and
written in the block's own byte order. A whole TIFF photo is such a block too
(``TiffPhoto``): its XMP (tag 700) is set the same way, so no strip, tile or
IFD offset changes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 1, 2, 3, 4, 5, 7
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}

EXIF_IFD, GPS_IFD, INTEROP_IFD, SUB_IFDS, XMP_TAG = 0x8769, 0x8825, 0xA005, 0x014A, 0x02BC
# (offset tag, length tag) pairs that point at data blocks such as thumbnails
DATA_POINTERS = ((0x0201, 0x0202), (0x0111, 0x0117), (0x0144, 0x0145))
_HEADERS = {b"II*\x00": "<", b"MM\x00*": ">"}
_BIGTIFF = (b"II+\x00", b"MM\x00+")
_NAMES = {0x010E: "ImageDescription", 0x9C9C: "XPComment", 0x927C: "MakerNote", 0x0201: "thumbnail",
          0x0111: "image strip", 0x0144: "image tile", EXIF_IFD: "Exif IFD", GPS_IFD: "GPS IFD",
          INTEROP_IFD: "Interop IFD", SUB_IFDS: "SubIFD"}


def tag_name(tag: int) -> str:
    """How messages name a tag: 'MakerNote (0x927c)', or just the number where we have no name."""
    return f"{_NAMES[tag]} (0x{tag:04x})" if tag in _NAMES else f"tag 0x{tag:04x}"


class TiffError(ValueError):
    """A TIFF block that cannot be read or edited safely; the message says why in plain words."""


@dataclass(frozen=True)
class Entry:
    """One IFD entry as stored: ``field`` is the 4-byte value-or-offset, kept verbatim."""

    tag: int
    type: int
    count: int
    field: bytes

    @property
    def size(self) -> int:
        return TYPE_SIZES.get(self.type, 1) * self.count

    @property
    def inline(self) -> bool:
        return self.size <= 4


@dataclass(frozen=True)
class NewValue:
    """An entry to write whose value is ``data`` (placed inline or appended, as it fits)."""

    tag: int
    type: int
    count: int
    data: bytes


@dataclass(frozen=True)
class Ifd:
    offset: int
    entries: tuple[Entry, ...]
    next_offset: int

    @property
    def end(self) -> int:
        return self.offset + 2 + 12 * len(self.entries) + 4

    def find(self, tag: int) -> Entry | None:
        return next((entry for entry in self.entries if entry.tag == tag), None)


class TiffBlock:
    """A parsed TIFF/EXIF block: its bytes, byte order and the IFD0 the header points to."""

    def __init__(self, data: bytes):
        self.data = bytes(data)
        if len(self.data) < 8:
            raise TiffError("the EXIF block is too short to hold a TIFF header")
        self.order = _HEADERS.get(self.data[:4])
        if self.order is None:
            raise TiffError("the EXIF block does not start with a TIFF header (II or MM)")
        (self.ifd0_offset,) = self._unpack("I", 4)
        self.ifd0 = self.ifd(self.ifd0_offset, "IFD0")

    def _unpack(self, fmt: str, offset: int) -> tuple:
        return struct.unpack_from(self.order + fmt, self.data, offset)

    def ifd(self, offset: int, name: str) -> Ifd:
        """The directory at ``offset``; TiffError if it does not fit inside the block."""
        if offset < 8 or offset + 2 > len(self.data):
            raise TiffError(f"the EXIF {name} directory lies outside the EXIF block")
        (count,) = self._unpack("H", offset)
        if offset + 2 + 12 * count + 4 > len(self.data):
            raise TiffError(f"the EXIF {name} directory runs past the end of the EXIF block")
        entries = []
        for i in range(count):
            at = offset + 2 + 12 * i
            tag, kind, n = self._unpack("HHI", at)
            entries.append(Entry(tag, kind, n, self.data[at + 8:at + 12]))
        (next_offset,) = self._unpack("I", offset + 2 + 12 * count)
        return Ifd(offset, tuple(entries), next_offset)

    def offset_of(self, entry: Entry) -> int:
        """Where an out-of-line value starts (meaningless for inline values)."""
        return struct.unpack(self.order + "I", entry.field)[0]

    def value(self, entry: Entry) -> bytes:
        """The raw bytes of an entry's value; TiffError if they lie outside the block."""
        if entry.inline:
            return entry.field[:entry.size]
        start = self.offset_of(entry)
        if start < 8 or start + entry.size > len(self.data):
            raise TiffError(f"EXIF {tag_name(entry.tag)} points outside the EXIF block")
        return self.data[start:start + entry.size]

    def integers(self, entry: Entry) -> list[int]:
        """An entry's values as numbers (SHORT or LONG)."""
        if entry.type not in (SHORT, LONG):
            raise TiffError(f"EXIF {tag_name(entry.tag)} is not a number")
        fmt = "H" if entry.type == SHORT else "I"
        return list(struct.unpack(f"{self.order}{entry.count}{fmt}", self.value(entry)))

    def directories(self) -> list[Ifd]:
        """Every IFD the standard pointers reach: IFD0 and its chain, Exif, GPS, Interop and SubIFDs.

        Raises TiffError where a pointer leads outside the block. Maker notes are not followed:
        their layout is the camera maker's, which is why nothing is ever moved.
        """
        found: dict[int, Ifd] = {}
        pending = [(self.ifd0_offset, 0)]
        while pending:
            offset, number = pending.pop()
            if offset == 0 or offset in found:
                continue
            directory = self.ifd(offset, f"IFD{number}" if number >= 0 else "sub-IFD")
            found[offset] = directory
            if directory.next_offset and number >= 0:  # like exiftool, follow the chain of IFD0 only
                pending.append((directory.next_offset, number + 1))
            for entry in directory.entries:
                if entry.tag in (EXIF_IFD, GPS_IFD, INTEROP_IFD, SUB_IFDS) and entry.type in (LONG, 13):
                    fmt = f"{self.order}{entry.count}I"
                    pending.extend((pointer, -1) for pointer in struct.unpack(fmt, self.value(entry)))
        return list(found.values())

    def check_nothing_points_past(self, end: int, ignore: int | None = None) -> None:
        """TiffError if any directory, value or data block we can see (but the IFD at ``ignore``) passes ``end``.

        Appending bytes at ``end`` would silently hand such a pointer new, wrong data.
        """
        for directory in self.directories():
            if directory.offset == ignore:
                continue
            if directory.end > end:
                raise TiffError("an EXIF directory runs past the end of the EXIF block")
            for entry in directory.entries:
                if not entry.inline and self.offset_of(entry) + entry.size > end:
                    raise TiffError(f"EXIF {tag_name(entry.tag)} points past the end of the EXIF block")
            for offset_tag, length_tag in DATA_POINTERS:
                offsets, lengths = directory.find(offset_tag), directory.find(length_tag)
                if offsets is None or lengths is None:
                    continue
                for start, length in zip(self.integers(offsets), self.integers(lengths)):
                    if start + length > end:
                        raise TiffError(f"EXIF {tag_name(offset_tag)} data runs past the end of the EXIF block")

    def with_ifd0(self, changes: dict[int, NewValue | None]) -> bytes:
        """The block with IFD0's entries for ``changes`` replaced (or removed where None).

        Every existing byte stays where it is; the new IFD0 and its new values go at the end
        (word-aligned), and only the header's IFD0 offset changes. When the block's tail is an
        IFD0 we appended before (only changed tags' values behind it), that tail is rewritten
        instead, so repeated edits do not grow the block.
        """
        start = self._own_tail_start(changes)
        if start is None:
            self.check_nothing_points_past(len(self.data))
            start = len(self.data) + len(self.data) % 2
        entries = [self._carried(entry, start) for entry in self.ifd0.entries if entry.tag not in changes]
        entries += [value for value in changes.values() if value is not None]
        entries.sort(key=lambda item: item.tag)
        tail = directory_bytes(self.order, entries, start, self.ifd0.next_offset)
        body = self.data[:start].ljust(start, b"\x00")
        return body[:4] + struct.pack(self.order + "I", start) + body[8:] + tail

    def edit_start(self, tags: set[int]) -> int:
        """Where ``with_ifd0`` for these tags starts writing: every byte before it but the header's IFD0 offset stays."""
        start = self._own_tail_start(dict.fromkeys(tags))
        return start if start is not None else len(self.data)

    def _carried(self, entry: Entry, start: int) -> Entry | NewValue:
        """An entry for the new IFD0 at ``start``: as stored, or with its value if that lies in the rewritten tail."""
        if entry.inline or self.offset_of(entry) < start:
            return entry
        return NewValue(entry.tag, entry.type, entry.count, self.value(entry))

    def _own_tail_start(self, changes: dict[int, NewValue | None]) -> int | None:
        """IFD0's offset if the block ends with IFD0 followed only by values of the tags being replaced.

        That tail is what an earlier edit appended; a camera's own IFD0 values are never moved.
        """
        offset = self.ifd0_offset
        if offset % 2:
            return None
        current: list[Entry | NewValue] = []
        try:
            for entry in self.ifd0.entries:
                carried = self._carried(entry, offset)
                if isinstance(carried, NewValue) and entry.tag not in changes:
                    return None
                current.append(carried)
            if self.data[offset:] != directory_bytes(self.order, current, offset, self.ifd0.next_offset):
                return None
            self.check_nothing_points_past(offset, ignore=offset)
        except TiffError:
            return None
        return offset


class TiffPhoto:
    """A classic TIFF photo whose XMP packet (IFD0 tag 700) is set through ``with_ifd0``: nothing else moves."""

    def __init__(self, data: bytes):
        self.block = TiffBlock(data)
        self.block.check_nothing_points_past(len(self.block.data))  # appending must hand no pointer new data
        self.changes: dict[int, NewValue | None] = {}

    @classmethod
    def parse(cls, data: bytes) -> "TiffPhoto":
        if data[:4] in _BIGTIFF:
            raise TiffError("a BigTIFF (64-bit offsets), which this app does not edit")
        try:
            return cls(data)
        except TiffError as exc:
            raise TiffError(str(exc).replace("EXIF block", "file").replace("EXIF ", "")) from None

    @staticmethod
    def is_tiff(head: bytes) -> bool:
        return head[:4] in _HEADERS or head[:4] in _BIGTIFF

    def xmp(self) -> bytes | None:
        entry = self.block.ifd0.find(XMP_TAG)
        return self.block.value(entry) if entry is not None else None

    def set_xmp(self, packet: bytes) -> None:
        self.changes[XMP_TAG] = NewValue(XMP_TAG, BYTE, len(packet), packet)

    def to_bytes(self) -> bytes:
        if all(self.xmp() == value.data for value in self.changes.values() if value is not None):
            return self.block.data  # already holds exactly this packet
        return self.block.with_ifd0(self.changes)


def directory_bytes(order: str, entries: list[Entry | NewValue], start: int, next_offset: int) -> bytes:
    """An IFD placed at ``start`` followed by the values of its NewValue entries, each word-aligned."""
    table = [struct.pack(order + "H", len(entries))]
    values: list[bytes] = []
    cursor = start + 2 + 12 * len(entries) + 4
    for item in entries:
        head = struct.pack(order + "HHI", item.tag, item.type, item.count)
        if isinstance(item, Entry):
            table.append(head + item.field)
        elif len(item.data) <= 4:
            table.append(head + item.data.ljust(4, b"\x00"))
        else:
            table.append(head + struct.pack(order + "I", cursor))
            padded = item.data + b"\x00" * (len(item.data) % 2)
            values.append(padded)
            cursor += len(padded)
    table.append(struct.pack(order + "I", next_offset))
    return b"".join(table + values)


def new_block(order: str, entries: list[NewValue]) -> bytes:
    """A TIFF block holding one IFD0 with these entries (sorted), in byte order '<' or '>'.

    Values come first and IFD0 last, so a later ``with_ifd0`` rewrites that IFD0 in place.
    """
    data = bytearray(b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 0)
    placed: list[Entry | NewValue] = []
    for item in sorted(entries, key=lambda item: item.tag):
        if len(item.data) <= 4:
            placed.append(item)
            continue
        placed.append(Entry(item.tag, item.type, item.count, struct.pack(order + "I", len(data))))
        data += item.data + b"\x00" * (len(item.data) % 2)
    data[4:8] = struct.pack(order + "I", len(data))
    return bytes(data) + directory_bytes(order, placed, len(data), 0)
