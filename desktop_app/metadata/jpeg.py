"""JPEG segment surgery: swap APP1 (EXIF, XMP) segments, copy every other byte verbatim.

The entropy-coded image data (from the SOS marker to the end of the file) is
never decoded or re-encoded; it is copied as bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SOI, SOS, EOI, APP0, APP1 = 0xD8, 0xDA, 0xD9, 0xE0, 0xE1
EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
MAX_PAYLOAD = 65533  # segment length field counts itself: 65535 - 2


class JpegError(ValueError):
    """Not a JPEG we can edit safely."""


@dataclass
class JpegFile:
    segments: list[tuple[int, bytes]]  # (marker, payload) before the image data
    image_data: bytes  # SOS marker onwards, untouched

    @classmethod
    def parse(cls, data: bytes) -> "JpegFile":
        if data[:2] != b"\xff\xd8":
            raise JpegError("not a JPEG file (no start-of-image marker)")
        pos, segments = 2, []
        while True:
            if pos >= len(data) or data[pos] != 0xFF:
                raise JpegError(f"corrupt JPEG: expected a marker at byte {pos}")
            while pos < len(data) and data[pos] == 0xFF:  # fill bytes
                pos += 1
            if pos >= len(data):
                raise JpegError("corrupt JPEG: ends inside a marker")
            marker = data[pos]
            if marker == SOS:
                return cls(segments, data[pos - 1:])
            if marker == EOI:
                raise JpegError("corrupt JPEG: no image data before end-of-image")
            if marker == 0x01 or 0xD0 <= marker <= 0xD7:
                segments.append((marker, b""))
                pos += 1
                continue
            if pos + 3 > len(data):
                raise JpegError("corrupt JPEG: truncated segment header")
            (length,) = struct.unpack(">H", data[pos + 1:pos + 3])
            end = pos + 1 + length
            if length < 2 or end > len(data):
                raise JpegError(f"corrupt JPEG: segment at byte {pos - 1} runs past the end of the file")
            segments.append((marker, data[pos + 3:end]))
            pos = end

    def to_bytes(self) -> bytes:
        out = [b"\xff\xd8"]
        for marker, payload in self.segments:
            if marker == 0x01 or 0xD0 <= marker <= 0xD7:
                out.append(bytes((0xFF, marker)))
            else:
                out.append(bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload)
        out.append(self.image_data)
        return b"".join(out)

    def _index(self, header: bytes) -> int | None:
        for i, (marker, payload) in enumerate(self.segments):
            if marker == APP1 and payload.startswith(header):
                return i
        return None

    def app1(self, header: bytes) -> bytes | None:
        """Payload after the header of the first APP1 segment with that header."""
        i = self._index(header)
        return None if i is None else self.segments[i][1][len(header):]

    def set_app1(self, header: bytes, body: bytes) -> None:
        """Replace that APP1 segment in place, or insert it after APP0/EXIF as the standards order them."""
        payload = header + body
        if len(payload) > MAX_PAYLOAD:
            raise JpegError(f"metadata block too large for one JPEG segment ({len(payload)} bytes)")
        i = self._index(header)
        if i is not None:
            self.segments[i] = (APP1, payload)
            return
        position = 0
        while position < len(self.segments) and self.segments[position][0] == APP0:
            position += 1
        exif = self._index(EXIF_HEADER)
        if header != EXIF_HEADER and exif is not None:
            position = exif + 1
        self.segments.insert(position, (APP1, payload))
