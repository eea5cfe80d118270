"""Write a caption into every file of the real-camera metadata corpus and check, with exiftool, that nothing else changed.

For each file (copied to a scratch folder): ``write_caption`` with a machine caption, then
- JPEG entropy data and everything after it (trailers, MPF images) byte-identical; PNG and
  WebP with embedded XMP: every other chunk byte-identical and the pixels (decoded by Pillow,
  every frame) identical; TIFF with embedded XMP: every original byte in place but the header's
  IFD0 offset (a new IFD0 is appended) and the pixels identical; other formats: the photo
  itself byte-identical (the caption goes to a sidecar);
- every tag ``exiftool -j -G1 -a -s -n`` reported before is there with the same value,
  except the caption tags we mean to write; no new tags inside EXIF or maker notes;
- ``exiftool -validate -warning -a``: no warning that was not there before;
- ``exiftool -use MWG -Description`` shows our caption (from the sidecar for sidecar writes);
- ``exiftool -use MWG -Keywords -City -Creator``: every keyword shown before is still shown, City
  and Creator unchanged (a person's IPTC data never hidden behind ours);
- a second write changes no byte; a refused file is byte-identical and says why in words.

exiftool runs once per check over the whole folder, so the sweep takes seconds.
Prints the counts that go in the closing note of issue 9:

    nice -n 10 python benchmarks/metadata_corpus.py [--corpus DIR] [--crafted DIR] [--list]

``--crafted`` adds the small hostile and odd files kept in tests/data (default: that folder).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageSequence  # noqa: E402

from desktop_app.metadata.record import CaptionRecord  # noqa: E402
from desktop_app.metadata.store import MetadataError, write_caption  # noqa: E402
from desktop_app.photos.discover import is_photo  # noqa: E402

EMBEDDED = (".png", ".webp", ".tif", ".tiff")  # formats that get XMP inside besides JPEG (issue 28)
CORPUS = ROOT.parent / "shared" / "datasets" / "metadata-corpus" / "images"
CRAFTED = ROOT / "tests" / "data"
MWG_KEPT = ("Keywords", "City", "Creator")  # what MWG readers show that a caption write must not hide
CAPTION = CaptionRecord("A dog runs across a grassy field.", model_id="corpus-check@1", keywords=["dog", "field"])

# Tags a caption write is meant to set or update, by the place it reports writing (XMP-pcap is our namespace).
WRITTEN = {"EXIF": ("IFD0:ImageDescription", "IFD0:XPComment"),
           "IPTC": ("IPTC:Caption-Abstract", "IPTC:Keywords", "IPTC:CodedCharacterSet",
                    "IPTC:ApplicationRecordVersion", "Photoshop:IPTCDigest", "File:CurrentIPTCDigest"),
           "XMP": ("XMP-dc:Description", "XMP-dc:Subject", "XMP-iptcCore:AltTextAccessibility", "XMP-x:XMPToolkit",
                   "XMP-pcap:", "RIFF:WebP_Flags")}  # a WebP's VP8X flags say it holds XMP
# A simple WebP that gets XMP becomes an extended one: exiftool then names its type so and reports the
# canvas size (VP8X) beside the bitstream's; vp8x_kept checks that the two agree.
EXTENDED_WEBP = {"File:FileType": (["WEBP"], ["Extended WEBP"])}
CANVAS = ("RIFF:ImageWidth", "RIFF:ImageHeight")
# Embedded images exiftool reports by file offset: when metadata before them grows the offset
# changes, and what must stay is the data it points at.
OFFSET_PAIRS = {"ThumbnailOffset": "ThumbnailLength", "PreviewImageStart": "PreviewImageLength",
                "MPImageStart": "MPImageLength", "JpgFromRawStart": "JpgFromRawLength",
                "OtherImageStart": "OtherImageLength", "StripOffsets": "StripByteCounts"}
# New EXIF we create holds these (EXIF 2.32 requires them in a JPEG's IFD0).
NEW_EXIF = {"IFD0:XResolution", "IFD0:YResolution", "IFD0:ResolutionUnit", "IFD0:YCbCrPositioning",
            "File:ExifByteOrder"}
# Groups where a tag that was not there before means we damaged something (EXIF IFDs, maker notes, ...).
FREE_GROUPS = ("XMP", "IPTC", "Photoshop", "Composite", "File", "System", "ExifTool")
IGNORED_GROUPS = ("System:", "ExifTool:", "SourceFile")
COPY = re.compile(r":Copy\d+:")
PYTHON_INTERNALS = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception)\b|struct\.|line \d+, column \d+")


@dataclass
class FileCheck:
    """What happened to one corpus file and what, if anything, got damaged."""

    name: str
    outcome: str = ""  # "written", "refused" (MetadataError) or "kept" (caption a person wrote kept)
    reason: str = ""  # why it was refused or kept
    places: list[str] = field(default_factory=list)
    write_warnings: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    new_warnings: list[str] = field(default_factory=list)
    mwg_description: str | None = None
    expected_description: str | None = None

    @property
    def mwg_ok(self) -> bool:
        return self.expected_description is None or self.mwg_description == self.expected_description


def corpus_files(corpus: Path = CORPUS) -> list[Path]:
    return sorted(path for path in corpus.iterdir() if path.is_file()) if corpus.is_dir() else []


def crafted_files(folder: Path = CRAFTED) -> list[Path]:
    """The crafted test photos (deep XMP, odd EXIF headers, IPTC keywords, stale digests...), not their sidecars."""
    return [path for path in corpus_files(folder) if is_photo(path)]


class Exiftool:
    """One exiftool run over a folder, started now and read later (runs overlap on two cores)."""

    def __init__(self, folder: Path, *args: str):
        self.process = subprocess.Popen(["exiftool", "-j", *args, str(folder)], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)

    def result(self) -> dict[str, dict[str, list]]:
        """File name -> {group:tag -> every value, duplicates kept}."""
        out, _ = self.process.communicate()
        return parse_json(out)


def tag_dump(folder: Path) -> Exiftool:
    """Every tag (``-G1 -a -s -n``) and every warning ``-validate`` finds, per file, in one run."""
    return Exiftool(folder, "-G1:4", "-a", "-s", "-n", "-api", "validate")


def parse_json(out: str) -> dict[str, dict[str, list]]:
    def pairs(items: list[tuple[str, object]]) -> dict[str, list]:
        merged: dict[str, list] = {}
        for key, value in items:  # with -G1:4, a second IFD1:XResolution is IFD1:Copy1:XResolution
            merged.setdefault(COPY.sub(":", key), []).append(value)
        return merged

    return {Path(entry["SourceFile"][0]).name: entry for entry in json.loads(out or "[]", object_pairs_hook=pairs)}



def entropy_and_trailer(data: bytes) -> bytes:
    """A JPEG's bytes from its first SOS marker on, found by walking segment lengths (not our parser).

    An AFCP trailer's absolute file offsets are given relative to that point, so that moved image
    data compares equal exactly when its offsets moved with it (exiftool -validate checks them too).
    """
    pos = 2
    while data[pos + 1] != 0xDA:
        while data[pos + 1] == 0xFF:
            pos += 1
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    tail = bytearray(data[pos:])
    if tail[-12:-9] == b"AXS" and tail[-9:-8] in (b"!", b"*"):
        order = "big" if tail[-9:-8] == b"!" else "little"
        header = int.from_bytes(tail[-8:-4], order) - pos
        if 0 <= header < len(tail) - 12 and tail[header:header + 4] == tail[-12:-8]:
            tail[-8:-4] = header.to_bytes(4, order)
            for n in range(int.from_bytes(tail[header + 6:header + 8], order)):
                at = header + 12 + 12 * n + 8
                tail[at:at + 4] = (int.from_bytes(tail[at:at + 4], order) - pos).to_bytes(4, order)
    return bytes(tail)


def other_chunks(data: bytes) -> list[bytes] | None:
    """A PNG's or WebP's chunks but its XMP (and WebP's VP8X), walked here rather than by our parser.

    VP8X is compared apart (``vp8x_kept``): adding XMP sets its flag, or adds it to a simple file.
    None for other formats.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        pos, chunks = 8, []
        while pos + 12 <= len(data):
            end = pos + 12 + int.from_bytes(data[pos:pos + 4], "big")
            if not data[pos + 8:end].startswith(b"XML:com.adobe.xmp\x00"):
                chunks.append(data[pos:end])
            pos = end
        return chunks + [data[pos:]]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        pos, chunks = 12, []
        while pos + 8 <= len(data):
            size = int.from_bytes(data[pos + 4:pos + 8], "little")
            end = pos + 8 + size + (size & 1)
            if data[pos:pos + 4] not in (b"XMP ", b"VP8X"):
                chunks.append(data[pos:end])
            pos = end
        return chunks
    return None


def tiff_kept(old: bytes, new: bytes) -> bool:
    """A TIFF edited by appending: the original bytes in place but the IFD0 offset in the header (and the old
    IFD0 itself where it was the file's last part, rewritten there), the new IFD0 after them."""
    if old[:4] != new[:4] or old[:4] not in (b"II*\x00", b"MM\x00*"):
        return False
    ifd0 = int.from_bytes(old[4:8], "little" if old[:2] == b"II" else "big")
    kept = len(old) if new[8:len(old)] == old[8:] else ifd0
    return new[8:kept] == old[8:kept]


def vp8x_kept(old: bytes, new: bytes) -> bool:
    """A WebP's VP8X flags (but XMP's) and canvas size unchanged, or a new VP8X only saying XMP (and alpha/EXIF)."""
    def vp8x(data: bytes) -> bytes | None:
        return data[20:30] if data[12:16] == b"VP8X" else None

    was, now = vp8x(old), vp8x(new)
    if now is None or not now[0] & 0x04:
        return False
    return bytes([was[0] | 0x04]) + was[1:] == now if was is not None else now[0] & ~0x1C == 0


def pixels(data: bytes) -> list[bytes]:
    """Every frame decoded by Pillow, with its mode and size."""
    with Image.open(io.BytesIO(data)) as image:
        return [f"{frame.mode} {frame.size}".encode() + frame.tobytes() for frame in ImageSequence.Iterator(image)]


def sidecars(photo: Path) -> list[Path]:
    return [path for path in (photo.with_name(photo.name + ".xmp"), photo.with_suffix(".xmp")) if path.is_file()]


def snapshot(photo: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (photo, *sidecars(photo))}


def write(photo: Path, check: FileCheck) -> None:
    try:
        result = write_caption(photo, CAPTION)
    except MetadataError as exc:
        check.outcome, check.reason = "refused", str(exc)
        return
    except Exception as exc:  # a crash is damage to the batch: record it, go on
        check.outcome, check.reason = "refused", f"crashed: {type(exc).__name__}: {exc}"
        check.damage.append(check.reason)
        return
    if result.skipped:
        check.outcome, check.reason = "kept", result.skipped
    else:
        check.outcome, check.places, check.write_warnings = "written", list(result.places), list(result.warnings)


def compare_tags(before: dict[str, list], after: dict[str, list], old: bytes, new: bytes, check: FileCheck) -> None:
    before_warnings = Counter(map(str, before.get("ExifTool:Warning", [])))
    after_warnings = Counter(map(str, after.get("ExifTool:Warning", [])))
    check.new_warnings = sorted((after_warnings - before_warnings).elements())
    written = tuple(key for place in check.places for key in WRITTEN.get(place, ()))
    for key, values in before.items():
        if key.startswith(IGNORED_GROUPS + written):
            continue
        if key not in after:
            check.damage.append(f"{key} lost (was {_short(values)})")
        elif after[key] != values and not _same_data_moved(key, before, after, old, new) \
                and not _webp_made_extended(key, values, after[key]):
            check.damage.append(f"{key} changed: {_short(values)} -> {_short(after[key])}")
    for key, values in after.items():
        if key in before or key.startswith(written + FREE_GROUPS) or key in NEW_EXIF:
            continue
        check.damage.append(f"{key} appeared: {_short(values)}")


def _webp_made_extended(key: str, was: list, now: list) -> bool:
    """A tag that changes only because a simple WebP got a VP8X chunk (see EXTENDED_WEBP)."""
    return EXTENDED_WEBP.get(key) == (was, now) or (key in CANVAS and len(was) == 1 and now == was * 2)


def _same_data_moved(key: str, before: dict[str, list], after: dict[str, list], old: bytes, new: bytes) -> bool:
    """An embedded image's file offset (as exiftool reports it) that changed only because bytes before it grew."""
    group, _, name = key.partition(":")
    length_key = f"{group}:{OFFSET_PAIRS.get(name, '')}"
    if name not in OFFSET_PAIRS or before.get(length_key) != after.get(length_key) or length_key not in before:
        return False
    for was, now, length in zip(before[key], after[key], before[length_key]):
        if not all(isinstance(v, int) for v in (was, now, length)) or old[was:was + length] != new[now:now + length]:
            return False
    return True


def _short(values: list) -> str:
    text = json.dumps(values[0] if len(values) == 1 else values, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def mwg_dump(folder: Path) -> Exiftool:
    return Exiftool(folder, "-use", "MWG", "-Description", *(f"-{tag}" for tag in MWG_KEPT))


def mwg_hidden(before: dict[str, list], after: dict[str, list]) -> list[str]:
    """What MWG readers showed before and no longer show: keywords gone, City or Creator changed."""
    def values(entry: dict[str, list], tag: str) -> list[str]:
        found = entry.get(tag, [])
        return [str(v) for item in found for v in (item if isinstance(item, list) else [item]) if str(v).strip()]

    hidden = [f"MWG Keywords lost: {k}" for k in values(before, "Keywords") if k not in values(after, "Keywords")]
    return hidden + [f"MWG {tag} changed: {values(before, tag)} -> {values(after, tag)}" for tag in MWG_KEPT[1:]
                     if values(before, tag) != values(after, tag)]


def sweep(corpus: Path, work: Path, extra: list[Path] | None = None) -> list[FileCheck]:
    """Copy the corpus (and ``extra`` files) to ``work``, caption every file twice, and check each one."""
    photos_dir = work / "photos"
    photos_dir.mkdir(parents=True)
    photos = [Path(shutil.copy2(path, photos_dir / path.name)) for path in [*corpus_files(corpus), *(extra or [])]]
    for photo in photos:
        photo.chmod(0o644)  # the corpus is read-only; its copies are the user's own photos
    before_run, mwg_before_run = tag_dump(photos_dir), mwg_dump(photos_dir)
    before, mwg_before = before_run.result(), mwg_before_run.result()
    originals = {photo.name: photo.read_bytes() for photo in photos}
    checks = {photo.name: FileCheck(photo.name) for photo in photos}
    for photo in photos:
        write(photo, checks[photo.name])
    after_run, mwg_run = tag_dump(photos_dir), mwg_dump(photos_dir)
    after, mwg = after_run.result(), mwg_run.result()
    for photo in photos:
        checks[photo.name].damage += mwg_hidden(mwg_before.get(photo.name, {}), mwg.get(photo.name, {}))
    for photo in photos:
        check, data = checks[photo.name], photo.read_bytes()
        if check.outcome != "written":
            if data != originals[photo.name]:
                check.damage.append(f"{check.outcome} but the file changed")
            if not check.reason or PYTHON_INTERNALS.search(check.reason):
                check.damage.append(f"reason not in plain words: {check.reason!r}")
            continue
        embedded = not any(p.startswith("sidecar") for p in check.places)
        if originals[photo.name][:3] == b"\xff\xd8\xff" and embedded:
            if entropy_and_trailer(data) != entropy_and_trailer(originals[photo.name]):
                check.damage.append("JPEG image data or trailer changed")
        elif originals[photo.name][:4] in (b"II*\x00", b"MM\x00*") and embedded:
            if not tiff_kept(originals[photo.name], data):
                check.damage.append("TIFF bytes other than the header's IFD0 offset changed")
            if pixels(data) != pixels(originals[photo.name]):
                check.damage.append("pixels changed")
        elif other_chunks(data) is not None and embedded:
            if other_chunks(data) != other_chunks(originals[photo.name]):
                check.damage.append("a chunk other than the XMP changed, moved or was lost")
            if data[:4] == b"RIFF" and not vp8x_kept(originals[photo.name], data):
                check.damage.append("WebP VP8X chunk changed beyond its XMP flag")
            if pixels(data) != pixels(originals[photo.name]):
                check.damage.append("pixels changed")
        elif data != originals[photo.name]:
            check.damage.append("photo changed although the caption went to a sidecar")
        compare_tags(before.get(photo.name, {}), after.get(photo.name, {}), originals[photo.name], data, check)
        check.expected_description = CAPTION.text
        found = sidecars(photo)
        entry = mwg.get(found[0].name if found and data == originals[photo.name] else photo.name, {})
        check.mwg_description = str(entry["Description"][0]) if "Description" in entry else None
    for photo in photos:
        first = snapshot(photo)
        check = checks[photo.name]
        write(photo, FileCheck(photo.name))
        if snapshot(photo) != first:
            check.damage.append("a second write changed the file again")
    return [checks[photo.name] for photo in photos]


def summary(checks: list[FileCheck]) -> str:
    """The counts for the closing note."""
    outcomes = Counter(check.outcome for check in checks)
    damaged = [check for check in checks if check.damage]
    warned = [check for check in checks if check.new_warnings]
    written = [check for check in checks if check.outcome == "written"]
    exif_left = [check for check in written if any("EXIF" in warning for warning in check.write_warnings)]
    mwg_ok = sum(check.mwg_ok for check in written)
    embedded = [check for check in written if check.name.lower().endswith(EMBEDDED) and "XMP" in check.places]
    in_sidecar = [check for check in written if any(place.startswith("sidecar") for place in check.places)]
    lines = [f"files: {len(checks)}",
             f"written: {outcomes['written']} (EXIF left unchanged, XMP/IPTC written: {len(exif_left)})",
             f"kept a person's caption: {outcomes['kept']}",
             f"refused: {outcomes['refused']}",
             f"damaged (any check failing): {len(damaged)}",
             f"files with new validate warnings: {len(warned)}",
             f"MWG Description shows our caption: {mwg_ok} of {len(written)} written",
             f"PNG/WebP/TIFF with the caption embedded: {len(embedded)}; captions in a sidecar: {len(in_sidecar)}"]
    reasons = Counter(_reason_kind(check.reason) for check in checks if check.outcome == "refused")
    reasons += Counter("EXIF left unchanged: " + _reason_kind(warning.split("EXIF left unchanged: ")[-1])
                       for check in exif_left for warning in check.write_warnings if "EXIF" in warning)
    if reasons:
        lines.append("reasons:")
        lines += [f"  {count:3d}  {reason}" for reason, count in reasons.most_common()]
    return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    """A reason without the file name in front, so that like reasons group."""
    return reason.split(": ", 1)[1] if re.match(r"^[^ ]+\.\w+: ", reason) else reason


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--crafted", type=Path, default=CRAFTED, help="folder of crafted files to add ('' for none)")
    parser.add_argument("--list", action="store_true", help="list every file with a problem")
    args = parser.parse_args()
    if not corpus_files(args.corpus):
        print(f"no corpus at {args.corpus}")
        return 2
    warnings.filterwarnings("ignore", module="PIL")  # Pillow's notes on the corpus's broken TIFFs
    with tempfile.TemporaryDirectory() as work:
        checks = sweep(args.corpus, Path(work), crafted_files(args.crafted) if str(args.crafted) else [])
    print(summary(checks))
    if args.list:
        for check in checks:
            problems = check.damage + [f"new warning: {w}" for w in check.new_warnings]
            if not check.mwg_ok:
                problems.append(f"MWG Description is {check.mwg_description!r}")
            if problems or check.outcome != "written" or check.write_warnings:
                print(f"{check.name}: {check.outcome}", check.reason, *check.write_warnings)
                print("".join(f"    {problem}\n" for problem in problems), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
