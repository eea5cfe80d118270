"""WebP chunk surgery: put one XMP packet in the RIFF ``XMP `` chunk, copy every other chunk verbatim.

XMP is allowed only in the extended format: a ``VP8X`` chunk first, whose
flags say which optional chunks follow. A simple file (one ``VP8 `` or
``VP8L`` chunk) gets a ``VP8X`` chunk in front, its canvas size read from the
bitstream header (and, for ``VP8L``, its alpha bit), as libwebp's muxer does.
The RIFF size is rewritten; the image chunks are never decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

XMP_FLAG, EXIF_FLAG, ALPHA_FLAG = 0x04, 0x08, 0x10
IMAGE_CHUNKS = (b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF")


class WebpError(ValueError):
    """Not a WebP we can edit safely."""


@dataclass
class Chunk:
    kind: bytes
    raw: bytes  # the whole chunk as read (type, size, data, pad byte), written back unchanged

    @property
    def data(self) -> bytes:
        (size,) = struct.unpack("<I", self.raw[4:8])
        return self.raw[8:8 + size]


def make_chunk(kind: bytes, data: bytes) -> Chunk:
    return Chunk(kind, kind + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) & 1))


def is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


@dataclass
class WebpFile:
    chunks: list[Chunk]
    trailer: bytes  # bytes after the RIFF's declared end, kept as they were

    @classmethod
    def parse(cls, data: bytes) -> "WebpFile":
        """Split into chunks; refuses a file whose RIFF size or chunks run past its end."""
        if not is_webp(data):
            raise WebpError("not a WebP file (no RIFF WEBP header)")
        (riff_size,) = struct.unpack("<I", data[4:8])
        end = 8 + riff_size
        if end > len(data) or riff_size & 1:
            raise WebpError("damaged WebP: its RIFF size does not match the file")
        pos, chunks = 12, []
        while pos < end:
            if pos + 8 > end:
                raise WebpError(f"damaged WebP: a chunk header at byte {pos} is cut short")
            (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
            stop = pos + 8 + size + (size & 1)
            if stop > end:
                raise WebpError(f"damaged WebP: a chunk at byte {pos} runs past the end of the file")
            chunks.append(Chunk(data[pos:pos + 4], data[pos:stop]))
            pos = stop
        if not chunks or chunks[0].kind not in (b"VP8 ", b"VP8L", b"VP8X"):
            raise WebpError("damaged WebP: no image chunk first")
        return cls(chunks, data[end:])

    @staticmethod
    def written_by_caption(chunk: Chunk) -> bool:
        """Whether a caption write may change, add or drop this chunk (undo keeps just these)."""
        return chunk.kind in (b"VP8X", b"XMP ")

    def _find(self, kind: bytes) -> list[int]:
        return [i for i, chunk in enumerate(self.chunks) if chunk.kind == kind]

    def xmp(self) -> bytes | None:
        found = self._find(b"XMP ")
        if len(found) > 1:
            raise WebpError("the WebP holds more than one XMP packet")
        return self.chunks[found[0]].data if found else None

    def set_xmp(self, packet: bytes) -> None:
        """Replace the XMP chunk in place, or add one after the image and EXIF chunks; set VP8X's XMP flag."""
        if self.chunks[0].kind != b"VP8X":
            self.chunks.insert(0, _vp8x_for(self.chunks))
        vp8x = bytearray(self.chunks[0].data)
        if len(vp8x) < 10:
            raise WebpError("damaged WebP: its VP8X chunk is too short")
        vp8x[0] |= XMP_FLAG
        self.chunks[0] = make_chunk(b"VP8X", bytes(vp8x)) if bytes(vp8x) != self.chunks[0].data else self.chunks[0]
        new = make_chunk(b"XMP ", packet)
        found = self._find(b"XMP ")
        if found:
            self.chunks[found[0]] = new
            return
        after = [i for i, chunk in enumerate(self.chunks) if chunk.kind in (*IMAGE_CHUNKS, b"EXIF")]
        self.chunks.insert(after[-1] + 1 if after else len(self.chunks), new)

    def to_bytes(self) -> bytes:
        body = b"WEBP" + b"".join(chunk.raw for chunk in self.chunks)
        if len(body) > 0xFFFFFFFF:
            raise WebpError("the WebP would be larger than RIFF allows")
        return b"RIFF" + struct.pack("<I", len(body)) + body + self.trailer


def _vp8x_for(chunks: list[Chunk]) -> Chunk:
    """The VP8X chunk a simple file needs before it may carry metadata: canvas size (and alpha) from the bitstream.

    An EXIF chunk a writer left in a simple file (after the image, where the extended format
    has it) gets its flag too, so readers of the extended format see it.
    """
    image, data = chunks[0], chunks[0].data
    flags = EXIF_FLAG if any(chunk.kind == b"EXIF" for chunk in chunks) else 0
    if image.kind == b"VP8 ":
        if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a" or data[0] & 1:
            raise WebpError("damaged WebP: its VP8 bitstream has no key frame header")
        width, height = (struct.unpack("<H", data[6:8])[0] & 0x3FFF, struct.unpack("<H", data[8:10])[0] & 0x3FFF)
    else:
        if len(data) < 5 or data[0] != 0x2F:
            raise WebpError("damaged WebP: its VP8L bitstream has no header")
        (bits,) = struct.unpack("<I", data[1:5])
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        flags |= ALPHA_FLAG if bits >> 28 & 1 else 0
    if not width or not height:
        raise WebpError("damaged WebP: its bitstream gives no canvas size")
    return make_chunk(b"VP8X", bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little")
                      + (height - 1).to_bytes(3, "little"))
