"""IPTC-IIM inside Photoshop image resources (JPEG APP13): read and set Caption-Abstract and Keywords.

Two containers, nested: the Photoshop IRB stream ('8BIM' resources; IPTC-IIM
is resource 0x0404, its MD5 digest 0x0425) and the IIM datasets inside it
(0x1C, record, dataset, length, data). Only the datasets we mean to change
are rebuilt; every other resource and dataset is copied byte for byte.

The digest follows the Metadata Working Group guidelines: 0x0425 holds the MD5
of the IIM block when IPTC and XMP agree. Whether we may say so after a change is
the caller's decision (``with_caption(refresh_digest=...)``); otherwise it is left as it was.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from desktop_app.metadata.tiff import TiffBlock, TiffError

IPTC_RESOURCE, DIGEST_RESOURCE = 0x0404, 0x0425
RESOURCE_SIGNATURES = (b"8BIM", b"PHUT", b"AgHg", b"DCSR", b"MeSa")
CHARSET = (1, 90)  # CodedCharacterSet
RECORD_VERSION = (2, 0)
KEYWORDS = (2, 25)
CAPTION = (2, 120)  # Caption-Abstract
UTF8_MARK = b"\x1b%G"
CAPTION_LIMIT, KEYWORD_LIMIT = 2000, 64  # bytes, from the IIM specification
TIFF_IPTC_NAA, TIFF_PHOTOSHOP = 0x83BB, 0x8649  # where a TIFF's IFD0 holds IIM datasets, or Photoshop resources


class IptcError(ValueError):
    """IPTC data we cannot edit without risking the rest of it."""


# --- Photoshop image resources -------------------------------------------------------------------------------


@dataclass
class Resource:
    signature: bytes
    ident: int
    name: bytes  # the Pascal string as stored, padding included
    data: bytes

    def to_bytes(self) -> bytes:
        return (self.signature + struct.pack(">H", self.ident) + self.name + struct.pack(">I", len(self.data))
                + self.data + (b"\x00" if len(self.data) % 2 else b""))


@dataclass
class ResourceBlock:
    """A Photoshop IRB stream: resources kept as parsed, plus any bytes after the last one we could read."""

    items: list[Resource | bytes] = field(default_factory=list)  # raw bytes: an original resource kept verbatim
    tail: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> "ResourceBlock":
        block, pos = cls(), 0
        while pos + 12 <= len(data) and data[pos:pos + 4] in RESOURCE_SIGNATURES:
            ident = struct.unpack_from(">H", data, pos + 4)[0]
            name_length = 1 + data[pos + 6]
            name_length += name_length % 2
            size_at = pos + 6 + name_length
            if size_at + 4 > len(data):
                break
            (size,) = struct.unpack_from(">I", data, size_at)
            start = size_at + 4
            end = start + size + size % 2
            if start + size > len(data):
                break
            resource = Resource(data[pos:pos + 4], ident, data[pos + 6:size_at], data[start:start + size])
            raw = data[pos:min(end, len(data))]
            block.items.append(resource if resource.to_bytes() == raw else raw)
            pos = min(end, len(data))
        block.tail = data[pos:]
        return block

    def find(self, ident: int) -> Resource | None:
        for item in self.items:
            if isinstance(item, Resource) and item.ident == ident:
                return item
        return None

    def set(self, ident: int, data: bytes) -> None:
        """Replace the first resource with this id (keeping its name), or append a new one."""
        for i, item in enumerate(self.items):
            if isinstance(item, Resource) and item.ident == ident:
                self.items[i] = Resource(item.signature, ident, item.name, data)
                return
        self.items.append(Resource(b"8BIM", ident, b"\x00\x00", data))

    def to_bytes(self) -> bytes:
        return b"".join(i.to_bytes() if isinstance(i, Resource) else i for i in self.items) + self.tail


# --- IPTC-IIM datasets ---------------------------------------------------------------------------------------


@dataclass
class Dataset:
    record: int
    number: int
    data: bytes
    raw: bytes = b""  # as found in the file (an extended length stays as it was)

    def to_bytes(self) -> bytes:
        if self.raw:
            return self.raw
        if len(self.data) > 0x7FFF:
            return bytes((0x1C, self.record, self.number)) + struct.pack(">HI", 0x8004, len(self.data)) + self.data
        return bytes((0x1C, self.record, self.number)) + struct.pack(">H", len(self.data)) + self.data


@dataclass
class IimBlock:
    datasets: list[Dataset] = field(default_factory=list)
    tail: bytes = b""  # padding or bytes that are not datasets, kept as they were

    @classmethod
    def parse(cls, data: bytes) -> "IimBlock":
        block, pos = cls(), 0
        while pos + 5 <= len(data) and data[pos] == 0x1C:
            record, number = data[pos + 1], data[pos + 2]
            (length,) = struct.unpack_from(">H", data, pos + 3)
            start = pos + 5
            if length & 0x8000:  # extended dataset: the low bits give how many bytes hold the length
                width = length & 0x7FFF
                if width > 8 or start + width > len(data):
                    raise IptcError("the IPTC data is damaged (a dataset length cannot be read)")
                length = int.from_bytes(data[start:start + width], "big")
                start += width
            if start + length > len(data):
                raise IptcError("the IPTC data is damaged (a dataset runs past its end)")
            block.datasets.append(Dataset(record, number, data[start:start + length], data[pos:start + length]))
            pos = start + length
        block.tail = data[pos:]
        return block

    def to_bytes(self) -> bytes:
        return b"".join(d.to_bytes() for d in self.datasets) + self.tail

    def values(self, key: tuple[int, int]) -> list[bytes]:
        return [d.data for d in self.datasets if (d.record, d.number) == key]

    @property
    def utf8(self) -> bool:
        return UTF8_MARK in self.values(CHARSET)[:1]

    def decode(self, value: bytes) -> str:
        """UTF-8 when 1:90 says so or the bytes are valid UTF-8; else Windows Latin-1 as exiftool reads it."""
        if self.utf8:
            return value.decode("utf-8", "replace")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("cp1252", "replace")

    def _insert_position(self, record: int, number: int) -> int:
        """After the last dataset that sorts at or before (record, number)."""
        position = 0
        for i, d in enumerate(self.datasets):
            if (d.record, d.number) <= (record, number):
                position = i + 1
        return position

    def _insert(self, record: int, number: int, data: bytes) -> None:
        self.datasets.insert(self._insert_position(record, number), Dataset(record, number, data))


@dataclass
class IptcCaption:
    caption: str | None  # None when there is no Caption-Abstract
    keywords: list[str]


def read_iptc(irb: bytes) -> IptcCaption | None:
    """Caption-Abstract and Keywords from a Photoshop IRB stream, or None when it holds no IPTC-IIM."""
    resource = ResourceBlock.parse(irb).find(IPTC_RESOURCE)
    return None if resource is None else read_iim(resource.data)


def read_tiff_iptc(data: bytes) -> IptcCaption | None:
    """Caption-Abstract and Keywords of a TIFF file: IFD0's IPTC-NAA tag, else its Photoshop resources.

    For protection only (TIFF captions go to a sidecar). None when it has neither.
    """
    try:
        block = TiffBlock(data)
        naa, photoshop = block.ifd0.find(TIFF_IPTC_NAA), block.ifd0.find(TIFF_PHOTOSHOP)
        if naa is not None:  # stored as UNDEFINED, or (Photoshop) as LONGs: the bytes are the IIM datasets either way
            return read_iim(block.value(naa))
        return read_iptc(block.value(photoshop)) if photoshop is not None else None
    except TiffError as exc:
        raise IptcError(f"the IPTC data cannot be read: {exc}") from None


def read_iim(data: bytes) -> IptcCaption:
    """Caption-Abstract and Keywords from IPTC-IIM datasets."""
    iim = IimBlock.parse(data)
    captions = iim.values(CAPTION)
    return IptcCaption(iim.decode(captions[0]) if captions else None,
                       [iim.decode(k) for k in iim.values(KEYWORDS)])


def _clip(text: str, encoding: str, limit: int) -> bytes:
    """Encoded text cut to the IIM byte limit without splitting a character."""
    data = text.encode(encoding)
    if len(data) <= limit:
        return data
    return data[:limit].decode(encoding, "ignore").encode(encoding)


def _encoding_for(iim: IimBlock, texts: list[str]) -> tuple[str, bool]:
    """(encoding, add the UTF-8 mark) for writing ``texts`` without changing how the other datasets read."""
    if iim.utf8 or all(t.isascii() for t in texts):
        return ("utf-8" if iim.utf8 else "ascii"), False
    if not iim.values(CHARSET) and all(d.data.isascii() for d in iim.datasets if d.record == 2):
        return "utf-8", True
    try:
        for text in texts:
            text.encode("cp1252")
    except UnicodeEncodeError:
        raise IptcError("the IPTC data uses a legacy character set that cannot hold this caption") from None
    return "cp1252", False


def with_caption(irb: bytes, caption: str, keywords: list[str], refresh_digest: bool = True) -> bytes:
    """The IRB stream with Caption-Abstract set, keywords added and (if asked) the IPTC digest updated.

    Only changes IPTC that is already there (the MWG guidelines: IPTC-IIM is a
    legacy form that a writer keeps in step but does not create). Raises
    IptcError when there is none, or when it cannot be edited safely.
    """
    block = ResourceBlock.parse(irb)
    resource = block.find(IPTC_RESOURCE)
    if resource is None:
        raise IptcError("the photo has no IPTC data")
    iim = IimBlock.parse(resource.data)
    present = {iim.decode(k) for k in iim.values(KEYWORDS)}
    new_keywords = [k for k in dict.fromkeys(keywords) if k and k not in present]
    encoding, mark = _encoding_for(iim, [caption, *new_keywords])
    if mark:
        iim._insert(*CHARSET, UTF8_MARK)
    if not any(d.record == 2 for d in iim.datasets):
        iim._insert(*RECORD_VERSION, struct.pack(">H", 4))
    value = _clip(caption, encoding, CAPTION_LIMIT)
    kept = []
    for d in iim.datasets:
        if (d.record, d.number) == CAPTION:
            if any((k.record, k.number) == CAPTION for k in kept):
                continue  # a second Caption-Abstract (the field is not repeatable) goes
            d = Dataset(*CAPTION, value)
        kept.append(d)
    iim.datasets = kept
    if not iim.values(CAPTION):
        iim._insert(*CAPTION, value)
    for word in new_keywords:
        iim._insert(*KEYWORDS, _clip(word, encoding, KEYWORD_LIMIT))
    data = iim.to_bytes()
    block.set(IPTC_RESOURCE, data)
    if refresh_digest:
        block.set(DIGEST_RESOURCE, hashlib.md5(data).digest())
    return block.to_bytes()


def digest_matches(irb: bytes) -> bool | None:
    """Whether the stored IPTC digest matches the IPTC data (None when either is missing)."""
    block = ResourceBlock.parse(irb)
    iptc, digest = block.find(IPTC_RESOURCE), block.find(DIGEST_RESOURCE)
    if iptc is None or digest is None:
        return None
    return hashlib.md5(iptc.data).digest() == digest.data
