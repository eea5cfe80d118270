"""Caption rules: which text is a caption at all, and which one a person wrote.

Kept apart from the containers (EXIF, IPTC, XMP, sidecar) so there is one rule
for every place a caption can sit. A place holds a person's caption when it has
meaningful text that we did not write; "we wrote it" is known only from our own
XMP mark (pcap:Source = machine and pcap:Caption = the exact text).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

MACHINE, PERSON = "machine", "person"

# Caption places, in the order a caption is shown when several hold a person's text.
SIDECAR_PLACE, XMP_PLACE, EXIF_PLACE, IPTC_PLACE, XPCOMMENT_PLACE = "sidecar", "XMP", "EXIF", "IPTC", "XPComment"
PLACE_ORDER = (SIDECAR_PLACE, XMP_PLACE, EXIF_PLACE, IPTC_PLACE, XPCOMMENT_PLACE)

# Strings cameras and software put into ImageDescription / Caption-Abstract / XPComment by themselves.
# Collected from the metadata corpus (`exiftool -j -ImageDescription -Caption-Abstract -XPComment`)
# and from the camera strings photo managers are known to hide.
PLACEHOLDERS = frozenset({
    "olympus digital camera", "sanyo digital camera", "konica minolta digital camera", "minolta digital camera",
    "samsung digital camera", "kodak digital camera", "nikon digital camera", "sony digital camera",
    "digital camera", "sony dsc", "dcf 1.0", "samsung csc", "samsung", "exif_jpeg_picture", "exif jpeg",
    "dcim", "default", "image", "untitled", "picasa", "wwl", "software: microsoft office",
    "created with the gimp", "created with gimp", "lead technologies inc. v1.01",
})
PLACEHOLDER_PATTERNS = tuple(re.compile(p) for p in (
    r"^file written by adobe photoshop\W*\s*[\d.]*$",  # Photoshop 4 (also 'Photoshop. 4.0', 'Photoshop? 4.0')
    r"^[a-z0-9 .-]+ digital (still )?camera$",        # '<MAKE> DIGITAL CAMERA', all capitals (checked below)
    r"^[\\/]?dcim[\\/]",                              # GoPro and others: 'DCIM\100GOPRO\GOPR0001.JPG'
    r"^<[^<>]*(digimax|samsung)[^<>]*>$",             # '<Digimax i50 MP3, Samsung #1 MP3>'
    r"^\{\"shape\": ?\[",                             # tifffile's own JSON in TIFF ImageDescription
    r"^imagej=\d",                                     # ImageJ's TIFF ImageDescription
    r"^<\?xml",                                        # OME-XML and other XML dumped into ImageDescription
    r"^gran turismo( \d+| sport)?$",                  # the PlayStation game's photo mode
    r"^(img|dsc|dscn|dscf|p|pict|cimg|gopr|gp)[_-]?\d+(\.jpe?g)?$",  # a bare file name
))


def normalise(text: str | None) -> str:
    """Text as compared: NULs and surrounding spaces gone, runs of white space as one space, NFC."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text.replace("\x00", " "))
    return " ".join(text.split())


def is_placeholder(text: str | None) -> bool:
    """Blank text, or a string a camera or program wrote by itself: no one's caption."""
    clean = normalise(text)
    if not clean:
        return True
    low = clean.lower()
    if low in PLACEHOLDERS:
        return True
    for pattern in PLACEHOLDER_PATTERNS:
        if pattern.match(low):
            # '<MAKE> DIGITAL CAMERA' only in capitals: 'my first digital camera' is a caption.
            return "digital" not in pattern.pattern or clean.isupper()
    return False


def meaningful(text: str | None) -> bool:
    return not is_placeholder(text)


def same_text(a: str | None, b: str | None) -> bool:
    """Equal once normalised; a copy cut short by a length limit (IPTC's 2000 bytes) counts as the same."""
    a, b = normalise(a), normalise(b)
    if a == b:
        return True
    return bool(a) and bool(b) and len(a) >= 64 and b.startswith(a)


def our_texts(marks: Iterable[tuple[str, str]]) -> list[str]:
    """The texts our marks (source, machine text) say a model wrote; a mark saying person vouches for nothing."""
    return [text for source, text in marks if source == MACHINE and meaningful(text)]


def persons_places(found: dict[str, str], ours: Iterable[str]) -> list[str]:
    """The places whose text a person (or another program) wrote, in PLACE_ORDER.

    ``found`` maps each caption place to the text in it; ``ours`` are the
    texts our own XMP marks say a model wrote (``our_texts``). Any other
    meaningful text is a person's, whichever place it sits in.
    """
    ours = list(ours)
    return [place for place in sorted(found, key=place_rank)
            if meaningful(found[place]) and not any(same_text(found[place], text) for text in ours)]


def place_rank(place: str) -> int:
    kind = place.split(" ", 1)[0]
    return PLACE_ORDER.index(kind) if kind in PLACE_ORDER else len(PLACE_ORDER)


def iptc_keywords_current(xmp_has_keywords: bool, digest_in_sync: bool | None) -> bool:
    """Whether MWG readers take a JPEG's keywords from IPTC-IIM rather than XMP dc:subject.

    The MWG guidelines (and ``exiftool -use MWG``): XMP wins when it has keywords and the IPTC digest
    is missing or matches; IPTC wins when XMP has none, or the digest shows IPTC was changed after
    (a tool that knows only IPTC). A writer adding keywords must start from the current list.
    """
    return not xmp_has_keywords or digest_in_sync is False


def may_add_keyword_hierarchy(earlier: Iterable[str], hierarchy: Iterable[str], machine: Iterable[str],
                              root: str) -> bool:
    """Whether machine keywords may also go to ``lr:hierarchicalSubject`` (under ``root|``) without being asked.

    Readers such as Immich take a photo's tags from the hierarchy when there is one and then ignore
    dc:subject, so a hierarchy of machine words alone would hide keywords a person chose. Only
    where the photo has none of those: every earlier keyword is a machine one now or under our root.
    """
    hierarchy = list(hierarchy)
    ours = {entry.split("|", 1)[1] for entry in hierarchy if entry.startswith(root + "|")}
    if any(not entry.startswith(root + "|") for entry in hierarchy):
        return False
    return all(word in ours or word in machine for word in earlier)


def may_replace_comment(current: str | None, earlier: Iterable[str], overwrite: bool = False) -> bool:
    """Whether a desktop-search comment (``user.xdg.comment``) may be replaced by the caption.

    Yes when there is none (or blank), when it repeats a caption the photo held (kept in step,
    by us or another tool), or with ``overwrite``; any other text a person typed in a file manager.
    """
    return current is None or overwrite or not normalise(current) or any(same_text(current, t) for t in earlier)


def may_replace_alt_text(current: str | None, earlier: Iterable[str]) -> bool:
    """Whether Iptc4xmpCore:AltTextAccessibility may take the caption: when there is none, or it repeats a
    caption the photo held (kept in step with it). Alt text a person wrote for readers is theirs: never
    replaced, not even with overwrite (which replaces captions, not what a screen reader reads)."""
    return not normalise(current) or any(same_text(current, t) for t in earlier)


def may_replace_tags(current: list[str] | None, earlier: Iterable[str], overwrite: bool = False) -> bool:
    """Whether desktop-search tags (``user.xdg.tags``) may be replaced by the photo's keywords.

    Yes when there are none, when each is a keyword the photo held or gets now (kept in step),
    or with ``overwrite``; a tag of a person's own is never dropped.
    """
    earlier = {normalise(word).lower() for word in earlier}
    return not current or overwrite or all(normalise(tag).lower() in earlier for tag in current)
