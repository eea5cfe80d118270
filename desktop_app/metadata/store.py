"""Where a photo's caption lives: read every place, merge ours in, replace the file.

JPEG: embedded XMP + EXIF, and IPTC-IIM where the photo already has it; PNG,
WebP and TIFF: embedded XMP (``png``, ``webp``: chunk surgery; ``tiff``: tag 700 in
a new IFD0 appended, no offset moves; pixels never decoded), unless sidecars are
chosen. Every other format (HEIC, camera RAW), a file too damaged to edit safely
and a TIFF whose ImageDescription or IPTC holds text (MWG readers would show that
over XMP; ImageJ and OME keep their data there): an XMP sidecar beside the photo,
merged with one that exists. Who wrote what, and so whether we may replace it, is decided by ``policy``.
With every write the photo also gets the freedesktop attributes desktop search reads
(``xdg``: caption and keywords), where the file system has them and no person set them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from desktop_app.metadata import iptc, xdg
from desktop_app.metadata.atomic import AtomicWriteError, replace_atomically
from desktop_app.metadata.exif import ExifError, parse_exif_caption, with_caption
from desktop_app.metadata.jpeg import EXIF_HEADER, XMP_HEADER, JpegError, JpegFile
from desktop_app.metadata.png import PngError, PngFile, is_png
from desktop_app.metadata.tiff import TiffError, TiffPhoto
from desktop_app.metadata.webp import WebpError, WebpFile, is_webp
from desktop_app.metadata.policy import (EXIF_PLACE, IPTC_PLACE, PLACE_ORDER, XMP_PLACE, XPCOMMENT_PLACE,
                                         iptc_keywords_current, may_replace_comment, may_replace_tags, meaningful,
                                         normalise, our_texts, persons_places, place_rank)
from desktop_app.metadata.record import PERSON, CaptionRecord
from desktop_app.photos.formats import open_image  # HEIC/HEIF captions read through Pillow too
from desktop_app.metadata.xmp import (XmpError, extended_guid, holds_caption_fields, merge_caption, read_subject,
                                     read_xmp)

EMBED, SIDECAR = "embed", "sidecar"
SIDECAR_NAMINGS = ("ext", "stem")  # photo.jpg.xmp (darktable, digiKam default) or photo.xmp (Lightroom)


class MetadataError(Exception):
    """A caption could not be written; the photo is unchanged."""


@dataclass(frozen=True)
class WriteOptions:
    mode: str = EMBED  # EMBED (JPEG, PNG, WebP, TIFF; others fall back to a sidecar) or SIDECAR
    sidecar_naming: str = "ext"
    overwrite: bool = False  # replace a caption a person wrote
    keep_mtime: bool = True
    write_exif: bool = True
    write_keywords: bool = True
    write_xattrs: bool = True  # user.xdg.comment / user.xdg.tags, which desktop search reads
    keyword_hierarchy: str = "auto"  # lr:hierarchicalSubject for machine keywords: auto, always or never (xmp)


@dataclass
class WriteResult:
    """What a write did: the places now holding the caption, what was left alone and why."""

    path: Path
    places: list[str] = field(default_factory=list)  # e.g. ["XMP", "EXIF", "IPTC"] or ["sidecar photo.png.xmp"]
    skipped: str = ""  # why nothing was written
    warnings: list[str] = field(default_factory=list)  # in words, e.g. "EXIF left unchanged: ...; caption written to XMP"
    left_alone: dict[str, str] = field(default_factory=dict)  # place -> why it was not written
    changed: bool = False  # False when the file already held exactly this (a second run)
    attributes: list[str] = field(default_factory=list)  # freedesktop xattrs now holding the caption/keywords


def sidecar_path(photo: Path, naming: str = "ext") -> Path:
    if naming not in SIDECAR_NAMINGS:
        raise ValueError(f"sidecar naming must be one of {SIDECAR_NAMINGS}")
    return photo.with_name(photo.name + ".xmp") if naming == "ext" else photo.with_suffix(".xmp")


def is_jpeg(photo: Path) -> bool:
    with open(photo, "rb") as handle:
        return handle.read(3) == b"\xff\xd8\xff"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise MetadataError(f"cannot read {path.name}: permission denied") from None
    except OSError as exc:
        raise MetadataError(f"cannot read {path.name}: {exc.strerror}") from None


@dataclass
class _Found:
    """Everything caption-related read from one photo and its sidecars."""

    texts: dict[str, str] = field(default_factory=dict)  # place -> text
    marks: list[CaptionRecord] = field(default_factory=list)  # XMP records (sidecar first), for our mark
    keywords: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # place -> reason
    jpeg: JpegFile | None = None
    data: bytes = b""
    extended_xmp: bytes | None = None  # XMP part 3: the rest of a main packet too large for one segment
    container: PngFile | WebpFile | TiffPhoto | None = None  # a PNG, WebP or TIFF we can embed XMP in
    container_error: str = ""  # why a PNG, WebP or TIFF cannot be edited (it gets a sidecar then)


def _inspect(photo: Path, sidecar_naming: str, embedded: bool = True) -> _Found:
    found = _Found()
    for naming in dict.fromkeys((sidecar_naming, *SIDECAR_NAMINGS)):
        sidecar = sidecar_path(photo, naming)
        if sidecar.is_file():
            place = f"sidecar {sidecar.name}"
            try:
                record = read_xmp(_read_bytes(sidecar))
            except XmpError as exc:
                found.unreadable[place] = str(exc)
                continue
            if record:
                found.texts[place] = record.text
                found.marks.append(record)
    if embedded:
        if is_jpeg(photo):
            _inspect_jpeg(photo, found)
        else:
            _inspect_other(photo, found)
    for record in found.marks:
        found.keywords += [k for k in record.keywords if k not in found.keywords]
    return found


def _inspect_jpeg(photo: Path, found: _Found) -> None:
    found.data = _read_bytes(photo)
    try:
        jpeg = found.jpeg = JpegFile.parse(found.data)
    except JpegError as exc:
        found.unreadable["JPEG"] = str(exc)
        return
    packet = jpeg.app1(XMP_HEADER)
    if packet is not None:
        try:
            guid = extended_guid(packet)
            extended = found.extended_xmp = jpeg.extended_xmp(guid) if guid else None
            record = read_xmp(packet, extended)
        except XmpError as exc:
            found.unreadable[XMP_PLACE] = str(exc)
            record = None
        if record:
            found.texts[XMP_PLACE] = record.text
            found.marks.append(record)
    exif = jpeg.exif_joined()
    if exif is not None:
        try:
            description, comment = parse_exif_caption(exif)
            found.texts[EXIF_PLACE], found.texts[XPCOMMENT_PLACE] = description, comment
        except ExifError as exc:
            found.unreadable[EXIF_PLACE] = str(exc)
    irb = jpeg.photoshop_irb()
    if irb is not None:
        try:
            caption = iptc.read_iptc(irb)
        except iptc.IptcError as exc:
            found.unreadable[IPTC_PLACE] = str(exc)
            caption = None
        if caption is not None:
            if caption.caption is not None:
                found.texts[IPTC_PLACE] = caption.caption
            found.keywords += [k for k in caption.keywords if k not in found.keywords]


CONTAINERS = ((is_png, PngFile, PngError, "PNG"), (is_webp, WebpFile, WebpError, "WebP"),
              (TiffPhoto.is_tiff, TiffPhoto, TiffError, "TIFF"))
TIFF_SUFFIXES = (".tif", ".tiff")  # camera RAW is often TIFF inside too, and keeps its sidecar


def _inspect_container(photo: Path, found: _Found) -> bytes | None:
    """A PNG's, WebP's or TIFF's own structure, parsed for embedding; its XMP packet (None if none or another format)."""
    with open(photo, "rb") as handle:
        head = handle.read(16)
    for matches, kind, error, name in CONTAINERS:
        if matches(head) and (name != "TIFF" or photo.suffix.lower() in TIFF_SUFFIXES):
            found.data = _read_bytes(photo)
            try:
                container = kind.parse(found.data)
                packet = container.xmp()
            except error as exc:
                found.container_error = f"{name}: {exc}"
                return None
            found.container = container
            return packet
    return None


def _inspect_other(photo: Path, found: _Found) -> None:
    """Captions already inside a PNG, WebP, TIFF, HEIC...: read for protection (PNG and WebP XMP from its chunk)."""
    xmp = _inspect_container(photo, found)
    description, comment, has_iptc = "", b"", False
    try:
        with open_image(photo) as image:  # Pillow's notes on odd tags are kept quiet by photos.formats
            xmp = xmp if found.container else image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
            exif = image.getexif()
            description, comment = exif.get(0x010E, ""), exif.get(0x9C9C, b"")
            tiff_tags = getattr(image, "tag_v2", {})
            has_iptc = any(tag in tiff_tags for tag in (iptc.TIFF_IPTC_NAA, iptc.TIFF_PHOTOSHOP))
    except Exception:  # not an image Pillow reads (camera RAW): its sidecar (or our own chunk parse) is all we read
        pass
    if has_iptc:
        _inspect_tiff_iptc(photo, found)
    if xmp:
        try:
            record = read_xmp(xmp.encode("utf-8") if isinstance(xmp, str) else xmp)
        except XmpError as exc:
            found.unreadable[XMP_PLACE] = str(exc)
            record = None
        if record:
            found.texts[XMP_PLACE] = record.text
            found.marks.append(record)
    if description:
        found.texts[EXIF_PLACE] = description.decode("utf-8", "replace") if isinstance(description, bytes) \
            else str(description)
    if isinstance(comment, (bytes, tuple)) and comment:
        found.texts[XPCOMMENT_PLACE] = bytes(comment).decode("utf-16-le", "replace").strip("\x00")


def _inspect_tiff_iptc(photo: Path, found: _Found) -> None:
    """A TIFF's IPTC Caption-Abstract and Keywords: a person's caption there is protected like one in a JPEG."""
    try:
        caption = iptc.read_tiff_iptc(_read_bytes(photo))
    except iptc.IptcError as exc:
        found.unreadable[IPTC_PLACE] = str(exc)
        return
    if caption is not None:
        if caption.caption is not None:
            found.texts[IPTC_PLACE] = caption.caption
        found.keywords += [k for k in caption.keywords if k not in found.keywords]


def _mark(found: _Found) -> CaptionRecord | None:
    """Our own mark: the first XMP record (sidecar before embedded) that has one."""
    for record in found.marks:
        if record.source:
            return record
    return found.marks[0] if found.marks else None


def _ours(found: _Found) -> list[str]:
    return our_texts((record.source, record.machine_text) for record in found.marks)


def _record(found: _Found) -> CaptionRecord | None:
    places = sorted((p for p, t in found.texts.items() if meaningful(t)), key=place_rank)
    if not places:
        return None
    mark = _mark(found)
    source, machine_text = (mark.source, mark.machine_text) if mark else ("", "")
    person = persons_places(found.texts, _ours(found))
    text = found.texts[person[0]] if person else found.texts[places[0]]
    return CaptionRecord(text=text.strip("\x00 \t\r\n"), source=source,
                         model_id=mark.model_id if mark else "", keywords=list(found.keywords),
                         score=mark.score if mark else None, machine_text=machine_text, places=places,
                         found=dict(found.texts), unreadable=[f"{p}: {r}" for p, r in found.unreadable.items()], ours=_ours(found))


def read_caption(photo: Path, sidecar_naming: str = "ext") -> CaptionRecord | None:
    """The caption a photo already has, with every place it was found (sidecar, XMP, EXIF, IPTC, XPComment).

    ``text`` is a person's text when any place holds one, else ours; None when no place holds a caption.
    """
    return _record(_inspect(Path(photo), sidecar_naming))


def _read_only(path: Path) -> bool:
    """No write permission, or every write bit cleared: a person's "do not touch", honoured even for root."""
    return not os.access(path, os.W_OK) or not (path.stat().st_mode & 0o222)


def _check_writable(target: Path) -> None:
    real = Path(os.path.realpath(target))  # a symlinked photo is written where it really is
    if _read_only(real.parent):
        raise MetadataError(f"folder {real.parent} is read-only")
    if real.exists() and _read_only(real):
        raise MetadataError(f"{target.name} is read-only")


def write_caption(photo: Path, record: CaptionRecord, options: WriteOptions = WriteOptions()) -> WriteResult:
    """Write a caption into a photo's metadata, following ``policy``.

    Raises MetadataError when nothing could be written; the photo is untouched then.
    """
    photo = Path(photo)
    if not photo.is_file():
        raise MetadataError(f"{photo.name}: file not found")
    embed = options.mode == EMBED and is_jpeg(photo)
    found = _inspect(photo, options.sidecar_naming)
    if record.source != PERSON and not options.overwrite:
        person = persons_places(found.texts, _ours(found))
        if person:
            text = normalise(found.texts[person[0]])
            where = ", ".join(p if p != XPCOMMENT_PLACE else "EXIF XPComment" for p in person)
            return WriteResult(photo, skipped=f"kept the caption a person wrote ({text[:60]!r}, in {where}); "
                                              "use overwrite to replace it")
    if embed:
        return _write_jpeg(photo, record, options, found)
    if isinstance(found.container, TiffPhoto):
        _keep_tiff_text(found)
    if options.mode == EMBED and found.container is not None:
        return _write_container(photo, record, options, found)
    result = _write_sidecar(photo, record, options)
    if options.mode == EMBED and found.container_error:
        result.warnings.append(f"XMP not embedded: {found.container_error}; caption written to the sidecar")
    keywords = read_subject(_read_bytes(sidecar_path(photo, options.sidecar_naming))) or []
    _set_xdg(photo, _xdg_updates(photo, record, keywords, found, options, result), result)
    return result


def _write_jpeg(photo: Path, record: CaptionRecord, options: WriteOptions, found: _Found) -> WriteResult:
    _check_writable(photo)
    if found.jpeg is None:
        raise MetadataError(f"{photo.name}: {found.unreadable.get('JPEG', 'not a JPEG')}; nothing written")
    jpeg, result = found.jpeg, WriteResult(photo)
    if XMP_PLACE in found.unreadable:
        raise MetadataError(f"{photo.name}: {found.unreadable[XMP_PLACE]}, so it was left unchanged; nothing written")
    if found.extended_xmp and holds_caption_fields(found.extended_xmp):
        raise MetadataError(f"{photo.name}: its caption fields sit in extended XMP (the overflow part of large XMP), "
                            "which this app does not rewrite; nothing written")
    irb = jpeg.photoshop_irb()
    has_iim = irb is not None and iptc.ResourceBlock.parse(irb).find(iptc.IPTC_RESOURCE) is not None
    in_sync = iptc.digest_matches(irb) if has_iim else None
    try:
        packet = jpeg.app1(XMP_HEADER)
        base = _iptc_keywords(irb, packet, in_sync) if has_iim and options.write_keywords else None
        jpeg.set_app1(XMP_HEADER, merge_caption(packet, record, options.write_keywords, base,
                                                 options.keyword_hierarchy))
        result.places.append(XMP_PLACE)
    except XmpError as exc:
        raise MetadataError(f"{photo.name}: {exc}, so it was left unchanged; nothing written") from None
    except JpegError as exc:
        raise MetadataError(f"{photo.name}: the XMP with the caption would not fit in the photo ({exc}); "
                            "nothing written") from None
    if options.write_exif and len(jpeg.exif_segments()) > 1:
        result.left_alone[EXIF_PLACE] = (f"EXIF left unchanged: it is split over {len(jpeg.exif_segments())} "
                                         "JPEG segments, which this app does not rewrite")
    elif options.write_exif:
        try:
            jpeg.set_app1(EXIF_HEADER, with_caption(jpeg.app1(EXIF_HEADER), record.text, jpeg.jfif_density()))
            result.places.append(EXIF_PLACE)
        except (ExifError, JpegError) as exc:
            result.left_alone[EXIF_PLACE] = str(exc)
    else:
        result.left_alone[EXIF_PLACE] = "not asked to write EXIF"
    if has_iim:
        try:  # IPTC gets XMP's reconciled keyword list; a stale digest stays stale (see _iptc_keywords)
            keywords = (read_subject(jpeg.app1(XMP_HEADER)) or []) if options.write_keywords else []
            jpeg.set_photoshop_irb(iptc.with_caption(irb, record.text, keywords, refresh_digest=in_sync is not False))
            result.places.append(IPTC_PLACE)
        except (iptc.IptcError, JpegError) as exc:
            result.left_alone[IPTC_PLACE] = str(exc)
    _explain(result, found)
    attributes = _xdg_updates(photo, record, read_subject(jpeg.app1(XMP_HEADER)) or [], found, options, result)
    data = jpeg.to_bytes()
    if data == found.data:  # already holds exactly this caption: a second run changes nothing (but missing xattrs)
        _set_xdg(photo, attributes, result)
        return result
    _replace(photo, data, options.keep_mtime, attributes)
    result.changed = True
    return result


def _keep_tiff_text(found: _Found) -> None:
    """A TIFF whose ImageDescription, XPComment or IPTC holds text gets a sidecar instead of embedded XMP.

    MWG readers (Lightroom, ``exiftool -use MWG``) show that text over XMP, and it is often another
    program's data (ImageJ, OME-XML, tifffile), which must not be rewritten.
    """
    other = [place for place in (EXIF_PLACE, XPCOMMENT_PLACE, IPTC_PLACE) if normalise(found.texts.get(place))]
    if other:
        what = "ImageDescription" if other[0] == EXIF_PLACE else other[0]
        found.container, found.container_error = None, (f"TIFF: its {what} holds text that readers following the "
                                                        "MWG rules would show instead (and may be another program's "
                                                        "data)")


def _write_container(photo: Path, record: CaptionRecord, options: WriteOptions, found: _Found) -> WriteResult:
    """XMP into a PNG's iTXt, a WebP's XMP chunk or a TIFF's tag 700; a sidecar of ours beside it is kept in step."""
    _check_writable(photo)
    if found.unreadable:  # its XMP or a sidecar could hold a person's caption: we cannot tell
        place, reason = next(iter(found.unreadable.items()))
        where = photo.name if place == XMP_PLACE else place.split(" ", 1)[-1]
        raise MetadataError(f"{where}: {reason}, so it was left unchanged; nothing written")
    container, result = found.container, WriteResult(photo, places=[XMP_PLACE])
    try:
        packet = merge_caption(container.xmp(), record, options.write_keywords, hierarchy=options.keyword_hierarchy)
        container.set_xmp(packet)
        data = container.to_bytes()
    except XmpError as exc:
        raise MetadataError(f"{photo.name}: {exc}, so it was left unchanged; nothing written") from None
    except (PngError, WebpError, TiffError) as exc:
        raise MetadataError(f"{photo.name}: {exc}; nothing written") from None
    attributes = _xdg_updates(photo, record, read_subject(packet) or [], found, options, result)
    if data != found.data:
        _replace(photo, data, options.keep_mtime, attributes)
        result.changed = True
    else:
        _set_xdg(photo, attributes, result)
    for naming in SIDECAR_NAMINGS:  # captions written before these were embedded: a stale sidecar would win
        place = f"sidecar {sidecar_path(photo, naming).name}"
        if place in found.texts:
            written = _write_sidecar(photo, record, replace(options, sidecar_naming=naming))
            result.places += written.places
            result.changed |= written.changed
    return result


def _replace(photo: Path, data: bytes, keep_mtime: bool, attributes: dict[str, str | None] | None = None) -> None:
    try:
        replace_atomically(photo, data, keep_mtime, xattrs=attributes)
    except AtomicWriteError as exc:  # its words only, not "[Errno 31]"
        raise MetadataError(f"{photo.name}: {exc.strerror or exc}; nothing written") from None
    except OSError as exc:
        raise MetadataError(f"{photo.name}: could not write ({exc.strerror or exc})") from None


def _xdg_updates(photo: Path, record: CaptionRecord, keywords: list[str], found: _Found, options: WriteOptions,
                 result: WriteResult) -> dict[str, str]:
    """The freedesktop attributes this write changes; a person's own comment or tags are kept (see ``policy``).

    ``keywords`` are the photo's keywords after the write (dc:subject), so the tags stay in step with it.
    """
    current = xdg.read(os.path.realpath(photo)) if options.write_xattrs else None
    if current is None:  # not asked, or the file system has no user xattrs
        return {}
    wanted = {}
    if may_replace_comment(current.get(xdg.COMMENT), [*found.texts.values(), *_ours(found)], options.overwrite):
        wanted[xdg.COMMENT] = record.text
    else:
        result.left_alone[xdg.COMMENT] = "kept the desktop-search comment a person set"
    tags = xdg.tags_value(keywords) if options.write_keywords else ""
    current_tags = xdg.tags_of(current[xdg.TAGS]) if xdg.TAGS in current else None
    if tags and may_replace_tags(current_tags, [*found.keywords, *keywords], options.overwrite):
        wanted[xdg.TAGS] = tags
    elif tags:
        result.left_alone[xdg.TAGS] = "kept the desktop-search tags a person set"
    result.attributes = list(wanted)
    return {name: value for name, value in wanted.items() if current.get(name) != value}


def _set_xdg(photo: Path, attributes: dict[str, str], result: WriteResult) -> None:
    """Set attributes on a photo whose bytes this write did not replace (a read-only photo is left alone)."""
    real = Path(os.path.realpath(photo))
    if attributes and (_read_only(real) or not xdg.write(real, attributes)):
        result.attributes = []


def _iptc_keywords(irb: bytes, packet: bytes | None, in_sync: bool | None) -> list[str] | None:
    """IPTC's keywords when MWG readers take the keyword list from IPTC (so XMP must start from them), else None.

    The digest is then refreshed as exiftool's MWG module does: where it matched or was missing (MWG
    readers take each field from XMP, else IPTC, either way), never where it was stale: only caption
    and keywords are reconciled here, and MWG readers must go on taking City, Creator... from the newer IPTC.
    """
    try:
        if not iptc_keywords_current(read_subject(packet) is not None, in_sync):
            return None
        caption = iptc.read_iptc(irb)
    except (iptc.IptcError, XmpError):
        return None
    return caption.keywords if caption is not None else None


def _explain(result: WriteResult, found: _Found) -> None:
    """Warnings in words for each place left alone, and what MWG readers (Lightroom, Bridge) will show."""
    written = ", ".join(p for p in PLACE_ORDER if p in result.places)
    for place, reason in result.left_alone.items():
        if place == EXIF_PLACE and reason.startswith("not asked"):
            if meaningful(found.texts.get(EXIF_PLACE)):
                result.warnings.append(f"EXIF left unchanged as asked; readers that follow the MWG rules will go on "
                                       f"showing its description ({normalise(found.texts[EXIF_PLACE])[:60]!r})")
            continue
        prefix = f"{place} left unchanged: "
        warning = f"{'' if reason.startswith(prefix) else prefix}{reason}; caption written to {written}"
        if place == EXIF_PLACE and EXIF_PLACE in found.unreadable:
            warning += ("; readers that follow the MWG rules (Lightroom, Bridge) may go on showing what that EXIF "
                        "holds, which could not be read here")
        result.warnings.append(warning)


def _write_sidecar(photo: Path, record: CaptionRecord, options: WriteOptions) -> WriteResult:
    sidecar = sidecar_path(photo, options.sidecar_naming)
    _check_writable(sidecar)
    existing = _read_bytes(sidecar) if sidecar.exists() else None
    try:
        packet = merge_caption(existing, record, options.write_keywords, hierarchy=options.keyword_hierarchy)
    except XmpError as exc:
        raise MetadataError(f"{sidecar.name}: {exc.args[0].replace('photo', 'sidecar', 1)}, so it was left unchanged; "
                            "nothing written") from None
    result = WriteResult(photo, places=[f"sidecar {sidecar.name}"])
    if packet == existing:
        return result
    try:
        replace_atomically(sidecar, packet, keep_mtime=False, like=photo)
    except AtomicWriteError as exc:
        raise MetadataError(f"{sidecar.name}: {exc.strerror or exc}; nothing written") from None
    except OSError as exc:
        raise MetadataError(f"{sidecar.name}: could not write ({exc.strerror or exc})") from None
    result.changed = True
    return result
