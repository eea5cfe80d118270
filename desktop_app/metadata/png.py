"""PNG chunk surgery: put one XMP packet in an ``iTXt`` chunk, copy every other byte verbatim.

A PNG is an 8-byte signature and chunks (length, type, data, CRC). The XMP
packet goes in an uncompressed ``iTXt`` chunk with the keyword
``XML:com.adobe.xmp`` (XMP part 3), before the first ``IDAT`` so readers that
stop at the image data still see it. Every other chunk, bad CRCs and bytes
after ``IEND`` included, is copied as it was: the pixels are never decoded.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_KEYWORD = b"XML:com.adobe.xmp"
TEXT_CHUNKS = (b"iTXt", b"tEXt", b"zTXt")
MAX_CHUNK = 2 ** 31 - 1  # the PNG spec's limit on a chunk's length
MAX_XMP = 16 * 2 ** 20  # a compressed XMP chunk inflating past this is a zip bomb, not metadata


class PngError(ValueError):
    """Not a PNG we can edit safely."""


@dataclass
class Chunk:
    kind: bytes
    raw: bytes  # the whole chunk as read (length, type, data, CRC), written back unchanged

    @property
    def data(self) -> bytes:
        return self.raw[8:-4]


def make_chunk(kind: bytes, data: bytes) -> Chunk:
    """A chunk with its length and CRC (over type and data) computed."""
    if len(data) > MAX_CHUNK:
        raise PngError("the metadata is too large for a PNG chunk")
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return Chunk(kind, struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc))


def is_png(head: bytes) -> bool:
    return head.startswith(SIGNATURE)


def _is_xmp(chunk: Chunk) -> bool:
    return chunk.kind in TEXT_CHUNKS and chunk.data.split(b"\x00", 1)[0] == XMP_KEYWORD


@dataclass
class PngFile:
    chunks: list[Chunk]
    trailer: bytes  # whatever follows IEND, kept as it was

    @classmethod
    def parse(cls, data: bytes) -> "PngFile":
        """Split into chunks; refuses a file whose chunks run past its end or that has no IHDR/IDAT/IEND."""
        if not is_png(data):
            raise PngError("not a PNG file (no PNG signature)")
        pos, chunks = len(SIGNATURE), []
        while True:
            if pos + 12 > len(data):
                raise PngError("damaged PNG: it ends before its IEND chunk")
            (length,) = struct.unpack(">I", data[pos:pos + 4])
            end = pos + 12 + length
            if length > MAX_CHUNK or end > len(data):
                raise PngError(f"damaged PNG: a chunk at byte {pos} runs past the end of the file")
            chunk = Chunk(data[pos + 4:pos + 8], data[pos:end])
            if not chunk.kind.isalpha():
                raise PngError(f"damaged PNG: no chunk type at byte {pos}")
            chunks.append(chunk)
            pos = end
            if chunk.kind == b"IEND":
                break
        if chunks[0].kind != b"IHDR" or not any(c.kind == b"IDAT" for c in chunks):
            raise PngError("damaged PNG: no IHDR chunk first, or no image data")
        return cls(chunks, data[pos:])

    @staticmethod
    def written_by_caption(chunk: Chunk) -> bool:
        """Whether a caption write may change, add or drop this chunk (undo keeps just these)."""
        return _is_xmp(chunk)

    def _xmp_indexes(self) -> list[int]:
        return [i for i, chunk in enumerate(self.chunks) if _is_xmp(chunk)]

    def xmp(self) -> bytes | None:
        """The XMP packet (UTF-8 bytes) of the one XMP chunk, or None when there is none."""
        found = self._xmp_indexes()
        if len(found) > 1:
            raise PngError("the PNG holds more than one XMP packet")
        return _packet(self.chunks[found[0]]) if found else None

    def set_xmp(self, packet: bytes) -> None:
        """Replace the XMP chunk (where it is, if before the image data) or add one right after IHDR."""
        new = make_chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet)
        found = self._xmp_indexes()
        first_idat = next(i for i, chunk in enumerate(self.chunks) if chunk.kind == b"IDAT")
        if found and found[0] < first_idat:
            self.chunks[found[0]] = new
            return
        if found:
            del self.chunks[found[0]]
        self.chunks.insert(1, new)

    def to_bytes(self) -> bytes:
        return SIGNATURE + b"".join(chunk.raw for chunk in self.chunks) + self.trailer


def _packet(chunk: Chunk) -> bytes:
    """The text of an XMP text chunk, inflated where compressed."""
    data = chunk.data[len(XMP_KEYWORD) + 1:]
    try:
        if chunk.kind == b"tEXt":
            return data
        if chunk.kind == b"zTXt":
            return _inflate(data[1:])
        compressed = data[0]
        text = data[2:].split(b"\x00", 2)[2]  # after the language tag and the translated keyword
        return _inflate(text) if compressed else text
    except (IndexError, zlib.error):
        raise PngError("the PNG's XMP chunk is damaged") from None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, MAX_XMP)
    if inflater.unconsumed_tail:
        raise PngError(f"the PNG's compressed XMP chunk inflates past {MAX_XMP // 2 ** 20} MiB")
    return text
