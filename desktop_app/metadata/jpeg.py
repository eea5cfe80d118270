"""JPEG segment surgery: swap APPn segments (EXIF, XMP, Photoshop IRB), copy every other byte verbatim.

The entropy-coded image data (from the SOS marker to the end of the file,
including anything after the end-of-image marker: MPF secondary images, AFCP
and other trailers) is never decoded or re-encoded; it is copied as bytes.

An MPF index (APP2 'MPF\\0') points at the secondary images with offsets
counted from its own TIFF header. When a segment after it changes size the
secondary images move relative to that header, so their offsets are moved by
the same amount on output. An AFCP trailer (AXS, written by IrfanView and
others at the end of the file) holds absolute file offsets; when the metadata
before the image data changes size they are moved by the same amount too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SOI, SOS, EOI, APP0, APP1, APP2, APP13 = 0xD8, 0xDA, 0xD9, 0xE0, 0xE1, 0xE2, 0xED
EXIF_HEADER = b"Exif\x00\x00"
# Some writers put \xff as the sixth byte; exiftool still reads such a segment as the photo's EXIF (exiv2 and
# Pillow do not). We read it as the EXIF too, so a second EXIF block never goes in front of it and hides it,
# and an edit writes it back with the standard header, which every reader takes.
EXIF_SIGNATURE = b"Exif\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JFIF_HEADER = b"JFIF\x00"
XMP_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
PHOTOSHOP_HEADER = b"Photoshop 3.0\x00"
MPF_HEADER = b"MPF\x00"
MAX_PAYLOAD = 65533  # segment length field counts itself: 65535 - 2


class JpegError(ValueError):
    """Not a JPEG we can edit safely."""


def _standalone(marker: int) -> bool:
    return marker == 0x01 or 0xD0 <= marker <= 0xD7


def _encoded_size(marker: int, payload: bytes) -> int:
    return 2 if _standalone(marker) else 4 + len(payload)


@dataclass
class JpegFile:
    segments: list[tuple[int, bytes]]  # (marker, payload) before the image data
    image_data: bytes  # SOS marker onwards, untouched
    _original_mpf: tuple[bytes, int] | None = field(default=None, repr=False)  # (MPF payload, bytes after it)
    _original_head: int = field(default=0, repr=False)  # where the image data began in the parsed file

    @classmethod
    def parse(cls, data: bytes) -> "JpegFile":
        if data[:2] != b"\xff\xd8":
            raise JpegError("not a JPEG file (no start-of-image marker)")
        pos, segments = 2, []
        while True:
            if pos >= len(data) or data[pos] != 0xFF:
                raise JpegError(f"damaged JPEG: expected a marker at byte {pos}")
            while pos < len(data) and data[pos] == 0xFF:  # fill bytes
                pos += 1
            if pos >= len(data):
                raise JpegError("damaged JPEG: ends inside a marker")
            marker = data[pos]
            if marker == SOS:
                jpeg = cls(segments, data[pos - 1:])
                jpeg._original_mpf = jpeg._mpf_layout()
                jpeg._original_head = pos - 1
                return jpeg
            if marker == EOI:
                raise JpegError("damaged JPEG: no image data before end-of-image")
            if _standalone(marker):
                segments.append((marker, b""))
                pos += 1
                continue
            if pos + 3 > len(data):
                raise JpegError("damaged JPEG: truncated segment header")
            (length,) = struct.unpack(">H", data[pos + 1:pos + 3])
            end = pos + 1 + length
            if length < 2 or end > len(data):
                raise JpegError(f"damaged JPEG: segment at byte {pos - 1} runs past the end of the file")
            segments.append((marker, data[pos + 3:end]))
            pos = end

    def _mpf_layout(self) -> tuple[bytes, int] | None:
        """The MPF payload and how many bytes lie between its TIFF header and the image data."""
        for i, (marker, payload) in enumerate(self.segments):
            if marker == APP2 and payload.startswith(MPF_HEADER):
                after = len(payload) - len(MPF_HEADER) + sum(_encoded_size(m, p) for m, p in self.segments[i + 1:])
                return payload, after
        return None

    def to_bytes(self) -> bytes:
        self._fix_mpf_offsets()
        out = [b"\xff\xd8"]
        for marker, payload in self.segments:
            if _standalone(marker):
                out.append(bytes((0xFF, marker)))
            else:
                out.append(bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload)
        head = sum(map(len, out))
        out.append(shift_afcp_offsets(self.image_data, self._original_head, head - self._original_head)
                   if self._original_head else self.image_data)
        return b"".join(out)

    def _fix_mpf_offsets(self) -> None:
        now = self._mpf_layout()
        if self._original_mpf is None or now is None or now[0] != self._original_mpf[0]:
            return
        shift = now[1] - self._original_mpf[1]
        if shift == 0:
            return
        for i, (marker, payload) in enumerate(self.segments):
            if marker == APP2 and payload == now[0]:
                fixed = shift_mpf_offsets(payload, shift)
                self.segments[i] = (marker, fixed)
                self._original_mpf = (fixed, now[1])
                return

    def find(self, marker: int, header: bytes) -> list[int]:
        """Indexes of the segments with this marker whose payload starts with ``header`` (EXIF: any sixth byte)."""
        if header == EXIF_HEADER:
            return [i for i, (m, payload) in enumerate(self.segments)
                    if m == marker and payload.startswith(EXIF_SIGNATURE) and len(payload) >= len(header)]
        return [i for i, (m, payload) in enumerate(self.segments) if m == marker and payload.startswith(header)]

    def app(self, marker: int, header: bytes) -> bytes | None:
        """Payload after the header of the first such segment."""
        found = self.find(marker, header)
        return None if not found else self.segments[found[0]][1][len(header):]

    def app1(self, header: bytes) -> bytes | None:
        return self.app(APP1, header)

    def set_app(self, marker: int, header: bytes, body: bytes) -> None:
        """Replace the first such segment in place, or insert it where the standards order it.

        New EXIF goes right after APP0 (JFIF); new XMP after the EXIF segments; a new
        Photoshop APP13 after every APP0-APP2 segment.
        """
        payload = header + body
        if len(payload) > MAX_PAYLOAD:
            raise JpegError(f"metadata block too large for one JPEG segment ({len(payload)} bytes, limit {MAX_PAYLOAD})")
        found = self.find(marker, header)
        if found:
            self.segments[found[0]] = (marker, payload)
            return
        position = 0
        while position < len(self.segments) and self.segments[position][0] == APP0:
            position += 1
        if marker == APP1 and header != EXIF_HEADER:
            exif = self.find(APP1, EXIF_HEADER)
            if exif:  # after the last one: EXIF split over several segments is read as one run of them
                position = exif[-1] + 1
        elif marker == APP13:
            while position < len(self.segments) and self.segments[position][0] in (APP0, APP1, APP2):
                position += 1
        self.segments.insert(position, (marker, payload))

    def set_app1(self, header: bytes, body: bytes) -> None:
        self.set_app(APP1, header, body)

    def jfif_density(self) -> tuple[int, int, int] | None:
        """(x, y, unit) from the JFIF APP0 when it states a physical density (unit 1: dots per inch, 2: per cm)."""
        found = self.find(APP0, JFIF_HEADER)
        payload = self.segments[found[0]][1] if found else b""
        if len(payload) < 12:
            return None
        unit, x, y = struct.unpack(">BHH", payload[7:12])
        return (x, y, unit) if unit in (1, 2) and x and y else None

    def exif_segments(self) -> list[int]:
        """Indexes of the first run of consecutive APP1 EXIF segments (one, or a block split as exiftool joins it)."""
        found = self.find(APP1, EXIF_HEADER)
        run = found[:1]
        for i in found[1:]:
            if i != run[-1] + 1:
                break
            run.append(i)
        return run

    def exif_joined(self) -> bytes | None:
        """The EXIF block (TIFF header on), joined across consecutive segments: for reading only."""
        run = self.exif_segments()
        return b"".join(self.segments[i][1][len(EXIF_HEADER):] for i in run) if run else None

    def extended_xmp(self, guid: str) -> bytes | None:
        """The extended XMP with this GUID, put together from its APP1 chunks (XMP part 3), or None if incomplete.

        Each chunk: 32-byte GUID, 4-byte full length, 4-byte offset, then data.
        """
        whole: bytearray | None = None
        filled = 0
        for i in self.find(APP1, XMP_EXTENSION_HEADER):
            chunk = self.segments[i][1][len(XMP_EXTENSION_HEADER):]
            if len(chunk) < 40 or chunk[:32].decode("latin-1") != guid:
                continue
            length, offset = struct.unpack(">II", chunk[32:40])
            data = chunk[40:]
            if whole is None:
                whole = bytearray(length)
            if len(whole) != length or offset + len(data) > length:
                return None
            whole[offset:offset + len(data)] = data
            filled += len(data)
        return bytes(whole) if whole is not None and filled == len(whole) else None

    def photoshop_irb(self) -> bytes | None:
        """The Photoshop image-resource stream of APP13, joined across segments as Photoshop splits it."""
        found = self.find(APP13, PHOTOSHOP_HEADER)
        return b"".join(self.segments[i][1][len(PHOTOSHOP_HEADER):] for i in found) if found else None

    def set_photoshop_irb(self, stream: bytes) -> None:
        """Put the stream back where the APP13 segments were, split into as many segments as it needs."""
        found = self.find(APP13, PHOTOSHOP_HEADER)
        if not found:
            raise JpegError("the photo has no Photoshop APP13 data to change")
        if found != list(range(found[0], found[0] + len(found))):
            raise JpegError("the Photoshop data is split over segments that are not next to each other")
        chunk = MAX_PAYLOAD - len(PHOTOSHOP_HEADER)
        self.segments[found[0]:found[-1] + 1] = [(APP13, PHOTOSHOP_HEADER + stream[i:i + chunk])
                                                 for i in range(0, max(len(stream), 1), chunk)]


def shift_mpf_offsets(payload: bytes, shift: int) -> bytes:
    """An MPF APP2 payload with every non-zero MP Entry offset moved by ``shift`` bytes.

    Raises JpegError when the index cannot be read, so a caller never writes a
    file whose secondary images it can no longer point at.
    """
    tiff = bytearray(payload[len(MPF_HEADER):])
    order = {b"II": "<", b"MM": ">"}.get(bytes(tiff[:2]))
    try:
        if order is None:
            raise ValueError("byte order")
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for n in range(count):
            tag, _kind, items, value = struct.unpack_from(order + "HHII", tiff, ifd + 2 + 12 * n)
            if tag != 0xB002:  # MPEntry: 16 bytes per image; offset at byte 8, 0 for the first image
                continue
            for k in range(items // 16):
                at = value + 16 * k + 8
                (offset,) = struct.unpack_from(order + "I", tiff, at)
                if offset:
                    struct.pack_into(order + "I", tiff, at, offset + shift)
        return payload[:len(MPF_HEADER)] + bytes(tiff)  # unchanged when it lists no MP entries
    except (struct.error, ValueError):
        pass
    raise JpegError("the multi-picture (MPF) index cannot be read, so growing metadata after it would break "
                    "the second image; nothing written")


def shift_afcp_offsets(image_data: bytes, start: int, shift: int) -> bytes:
    """The image data with an AFCP trailer's absolute offsets moved by ``shift`` (it now begins ``shift`` bytes later).

    ``start``: where the image data began in the original file. The trailer (its last 12 bytes: 'AXS!' or
    'AXS*', the header's offset) is changed only when its header is where it says, as read: one that was
    stale already is left as it was; without a trailer the data comes back unchanged.
    """
    end = image_data[-12:]
    if shift == 0 or len(end) < 12 or end[:3] != b"AXS" or end[3:4] not in (b"!", b"*"):
        return image_data
    order = ">" if end[3:4] == b"!" else "<"
    at = struct.unpack(order + "I", end[4:8])[0] - start  # the header, within image_data
    if not 0 <= at <= len(image_data) - 24 or image_data[at:at + 4] != end[:4]:
        return image_data
    (count,) = struct.unpack_from(order + "H", image_data, at + 6)
    if at + 12 + 12 * count > len(image_data) - 12:
        return image_data
    fixed = bytearray(image_data)
    for n in range(count):
        entry = at + 12 + 12 * n + 8
        struct.pack_into(order + "I", fixed, entry, struct.unpack_from(order + "I", fixed, entry)[0] + shift)
    struct.pack_into(order + "I", fixed, len(fixed) - 8, at + start + shift)
    return bytes(fixed)
