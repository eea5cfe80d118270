"""XMP packets: read the caption fields out, merge ours in, keep everything else.

Fields written (the ones photo managers and OS search read):
  dc:description (x-default)              the caption
  Iptc4xmpCore:AltTextAccessibility       the same text, as alt text for screen readers (a person's own kept)
  Iptc4xmpCore:ExtDescrAccessibility      for a machine caption that needs review: that it is machine-written
                                          and unsure, and what the models saw (a person's own kept)
  dc:subject                              keywords (merged with existing ones)
  lr:hierarchicalSubject                  machine keywords as photocaption|word (what Immich, Lightroom and
                                          digiKam take tags from), only where no person chose keywords
  pcap:Source, Model, Caption, Score      our own namespace: machine-made or person, by which model

Parsing goes through defusedxml: no DTDs, no entity expansion. Packets may be
padded (spaces, NULs), start with a BOM, use any prefixes, or continue in
extended XMP (XMP part 3: the main packet names a GUID; the rest sits in
APP1 'http://ns.adobe.com/xmp/extension/' chunks, read by ``jpeg``/``store``).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET

from desktop_app.metadata.policy import may_add_keyword_hierarchy, may_replace_alt_text, normalise
from desktop_app.metadata.record import MACHINE, CaptionRecord

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "pcap": "http://ns.photocaption.org/xmp/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PACKET_HEADER = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
PACKET_TRAILER = '\n<?xpacket end="w"?>'


class XmpError(ValueError):
    """An XMP packet that cannot be parsed safely."""


def q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


DESCRIPTION, ALT_TEXT, SUBJECT = q("dc", "description"), q("Iptc4xmpCore", "AltTextAccessibility"), q("dc", "subject")
EXT_DESCR = q("Iptc4xmpCore", "ExtDescrAccessibility")
UNSURE = "Machine-written alt text, not checked by a person"  # how our ExtDescrAccessibility starts: ours to update
OURS = {name: q("pcap", name) for name in ("Source", "Model", "Caption", "Score")}
HIERARCHY = q("lr", "hierarchicalSubject")
HIERARCHY_ROOT = "photocaption"  # machine keywords sit under one root a person can hide or delete at once
HIERARCHY_MODES = ("auto", "always", "never")  # auto: only where no person chose keywords
HAS_EXTENDED = "{http://ns.adobe.com/xmp/note/}HasExtendedXMP"
XML_NS = "http://www.w3.org/XML/1998/namespace"

DAMAGED = "the photo's XMP metadata is damaged (not valid XML)"
# Real packets nest about 10 elements deep (structs in arrays in properties); a packet far deeper is
# hostile or broken, and would exhaust Python's recursion wherever a tree is walked.
MAX_DEPTH = 100
TOO_DEEP = f"the photo's XMP metadata is nested more than {MAX_DEPTH} levels deep, which no real photo needs"


def _clean(packet: bytes) -> bytes:
    """The packet without what XML parsers reject but XMP writers leave: a BOM, NUL or space padding."""
    packet = packet.strip(b"\x00 \t\r\n")
    if packet.startswith(b"\xef\xbb\xbf"):
        packet = packet[3:].lstrip()
    return packet


def _parse(packet: bytes) -> tuple[ET.Element, dict[str, str]]:
    """The root element and the packet's own prefixes (namespace URI -> prefix), for writing it back alike.

    Packets nested deeper than MAX_DEPTH are refused here, before any tree walk can recurse that deep.
    """
    packet = _clean(packet)
    prefixes: dict[str, str] = {}
    depth = 0
    try:
        for event, item in SafeET.iterparse(io.BytesIO(packet), events=("start-ns", "start", "end")):
            if event == "start":
                depth += 1
                if depth > MAX_DEPTH:
                    raise XmpError(TOO_DEEP)
            elif event == "end":
                depth -= 1
            else:  # start-ns
                prefix, uri = item
                if prefix and uri not in prefixes and prefix not in prefixes.values():
                    prefixes[uri] = prefix
        return SafeET.fromstring(packet), prefixes
    except ET.ParseError:
        raise XmpError(DAMAGED) from None
    except XmpError:
        raise
    except Exception:  # defusedxml's EntitiesForbidden, DTDForbidden...
        raise XmpError("the photo's XMP metadata declares entities or a DTD, which are refused for safety") from None


def _rdf(root: ET.Element, create: bool = False) -> ET.Element | None:
    """The rdf:RDF element (the root itself in bare packets); an x:xmpmeta without one gets one if asked."""
    if root.tag == q("rdf", "RDF"):
        return root
    rdf = root.find(q("rdf", "RDF"))
    if rdf is None and create:
        if root.tag != q("x", "xmpmeta"):
            raise XmpError("the photo's XMP metadata is not an XMP packet (no x:xmpmeta or rdf:RDF)")
        rdf = ET.SubElement(root, q("rdf", "RDF"))
    return rdf


def _lang_alt_value(element: ET.Element) -> str:
    items = element.findall(f"{q('rdf', 'Alt')}/{q('rdf', 'li')}")
    for li in items:
        if li.get(XML_LANG) == "x-default":
            return li.text or ""
    return (items[0].text or "") if items else (element.text or "").strip()


def _find(descriptions: list[ET.Element], tag: str) -> tuple[ET.Element | None, str | None]:
    """A property as element or as attribute shorthand, from any rdf:Description."""
    for desc in descriptions:
        element = desc.find(tag)
        if element is not None:
            return element, None
        if tag in desc.attrib:
            return None, desc.attrib[tag]
    return None, None


def _value(descriptions: list[ET.Element], tag: str, lang_alt: bool = False) -> str:
    element, attr = _find(descriptions, tag)
    if element is not None:
        return _lang_alt_value(element) if lang_alt else (element.text or "")
    return attr or ""


def extended_guid(packet: bytes) -> str:
    """The xmpNote:HasExtendedXMP GUID of a main packet ('' when it has none): where the rest of it is."""
    rdf = _rdf(_parse(packet)[0])
    element, attr = _find(rdf.findall(q("rdf", "Description")) if rdf is not None else [], HAS_EXTENDED)
    return ((element.text if element is not None else attr) or "").strip()


def holds_caption_fields(packet: bytes) -> bool:
    """Whether a packet (e.g. extended XMP) has any property ``merge_caption`` writes."""
    rdf = _rdf(_parse(packet)[0])
    descriptions = rdf.findall(q("rdf", "Description")) if rdf is not None else []
    return any(_find(descriptions, tag) != (None, None) for tag in (DESCRIPTION, ALT_TEXT, SUBJECT, *OURS.values()))


def read_xmp(packet: bytes, extended: bytes | None = None) -> CaptionRecord | None:
    """The caption fields of a packet (and of its extended part, XMP part 3), or None when it has no description."""
    descriptions = []
    for part in (packet, extended):
        rdf = _rdf(_parse(part)[0]) if part else None
        if rdf is not None:
            descriptions += rdf.findall(q("rdf", "Description"))

    def text_of(tag: str, lang_alt: bool = False) -> str:
        return _value(descriptions, tag, lang_alt)

    description = text_of(DESCRIPTION, lang_alt=True) or text_of(ALT_TEXT, lang_alt=True)
    if not description.strip():
        return None
    subject, _ = _find(descriptions, SUBJECT)
    keywords = [li.text or "" for li in subject.iter(q("rdf", "li"))] if subject is not None else []
    score = text_of(OURS["Score"])
    return CaptionRecord(text=description, source=text_of(OURS["Source"]) or "", model_id=text_of(OURS["Model"]),
                         keywords=[k for k in keywords if k], machine_text=text_of(OURS["Caption"]),
                         score=float(score) if _is_number(score) else None, places=["XMP"])


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _remove_everywhere(descriptions: list[ET.Element], tag: str) -> ET.Element | None:
    """Drop a property from all descriptions; return the first element form (to update in place)."""
    kept = None
    for desc in descriptions:
        desc.attrib.pop(tag, None)
        for element in desc.findall(tag):
            if kept is None:
                kept = element
            else:
                desc.remove(element)
    return kept


def _set_lang_alt(descriptions: list[ET.Element], target: ET.Element, tag: str, text: str) -> None:
    """Set the x-default entry; other languages stay."""
    element = _remove_everywhere(descriptions, tag)
    if element is None:
        element = ET.SubElement(target, tag)
    alt = element.find(q("rdf", "Alt"))
    if alt is None:
        element.text = None
        alt = ET.SubElement(element, q("rdf", "Alt"))
    for li in alt.findall(q("rdf", "li")):
        if li.get(XML_LANG, "x-default") == "x-default":
            alt.remove(li)
    li = ET.Element(q("rdf", "li"), {XML_LANG: "x-default"})
    li.text = text
    alt.insert(0, li)


def _merge_bag(descriptions: list[ET.Element], target: ET.Element, tag: str, words: list[str],
               replace: bool = False) -> None:
    """Add ``words`` missing from the bag; with ``replace``, the bag holds only ``words``."""
    element = _remove_everywhere(descriptions, tag)
    if element is None:
        element = ET.SubElement(target, tag)
    bag = element.find(q("rdf", "Bag"))
    if bag is None:
        bag = ET.SubElement(element, q("rdf", "Bag"))
    if replace:
        for li in bag.findall(q("rdf", "li")):
            bag.remove(li)
    present = {li.text for li in bag.findall(q("rdf", "li"))}
    for word in words:
        if word not in present:
            ET.SubElement(bag, q("rdf", "li")).text = word


def _drop(descriptions: list[ET.Element], tag: str) -> None:
    for desc in descriptions:
        desc.attrib.pop(tag, None)
        for element in desc.findall(tag):
            desc.remove(element)


def unsure_note(record: CaptionRecord) -> str:
    """ExtDescrAccessibility for a machine caption that needs review: what a reader weighs the alt text by."""
    confidence = f" (confidence {record.confidence:.0%})" if record.confidence is not None else ""
    saw = f" What the models saw: {', '.join(record.keywords)}." if record.keywords else ""
    model = f", model {record.model_id}" if record.model_id else ""
    return f"{UNSURE}: the model that wrote it is not sure of it{confidence}.{saw} Written by photocaption{model}."


def _set_simple(descriptions: list[ET.Element], target: ET.Element, tag: str, value: str) -> None:
    element = _remove_everywhere(descriptions, tag)
    if element is None:
        element = ET.SubElement(target, tag)
    element.text = value


def empty_packet() -> bytes:
    return (f'<x:xmpmeta xmlns:x="{NS["x"]}"><rdf:RDF xmlns:rdf="{NS["rdf"]}">'
            f'<rdf:Description rdf:about=""/></rdf:RDF></x:xmpmeta>').encode()


def read_subject(packet: bytes | None) -> list[str] | None:
    """The packet's dc:subject keywords; None when it has no dc:subject (or no packet)."""
    if not packet or not _clean(packet):
        return None
    rdf = _rdf(_parse(packet)[0])
    subject, _ = _find(rdf.findall(q("rdf", "Description")) if rdf is not None else [], SUBJECT)
    return None if subject is None else [li.text for li in subject.iter(q("rdf", "li")) if li.text]


def _bag(descriptions: list[ET.Element], tag: str) -> list[str]:
    element, attr = _find(descriptions, tag)
    if element is not None:
        return [li.text for li in element.iter(q("rdf", "li")) if li.text]
    return [attr] if attr else []


def merge_caption(packet: bytes | None, record: CaptionRecord, write_keywords: bool = True,
                  base_keywords: list[str] | None = None, hierarchy: str = "auto") -> bytes:
    """Our caption merged into an existing packet (or a new one); every other property is kept.

    Keywords: the packet's dc:subject plus the record's; with ``base_keywords``, those plus the
    record's instead (the caller's reconciled list, e.g. IPTC's where that is the current one).
    A main packet that points at extended XMP keeps its xmpNote:HasExtendedXMP
    GUID: the extension is not touched, so the GUID (its MD5) stays right.
    A machine record's keywords also go to lr:hierarchicalSubject as ``photocaption|word``:
    with ``hierarchy`` "auto" only where no person chose keywords (``policy``), "always", or "never".
    """
    root, prefixes = _parse(packet if packet and _clean(packet) else empty_packet())
    rdf = _rdf(root, create=True)
    descriptions = rdf.findall(q("rdf", "Description"))
    if not descriptions:
        descriptions = [ET.SubElement(rdf, q("rdf", "Description"), {q("rdf", "about"): ""})]
    target = descriptions[0]
    earlier = base_keywords if base_keywords is not None else _bag(descriptions, SUBJECT)
    machine = [" ".join(word.replace("|", " ").split()) for word in record.keywords]
    if write_keywords and record.source == MACHINE and machine and hierarchy != "never" and (
            hierarchy == "always" or may_add_keyword_hierarchy(earlier, _bag(descriptions, HIERARCHY), machine,
                                                                HIERARCHY_ROOT)):
        _merge_bag(descriptions, target, HIERARCHY, [f"{HIERARCHY_ROOT}|{word}" for word in machine if word])
    held = [_value(descriptions, DESCRIPTION, lang_alt=True), _value(descriptions, OURS["Caption"])]
    _set_lang_alt(descriptions, target, DESCRIPTION, record.text)
    alt_text_ours = may_replace_alt_text(_value(descriptions, ALT_TEXT, lang_alt=True), held)
    if alt_text_ours:
        _set_lang_alt(descriptions, target, ALT_TEXT, record.text)
    note = _value(descriptions, EXT_DESCR, lang_alt=True)
    if not normalise(note) or note.startswith(UNSURE):  # a person's extended description is theirs
        if alt_text_ours and record.source == MACHINE and record.needs_review:
            _set_lang_alt(descriptions, target, EXT_DESCR, unsure_note(record))
        else:
            _drop(descriptions, EXT_DESCR)
    if write_keywords and base_keywords is not None:
        _merge_bag(descriptions, target, SUBJECT, list(dict.fromkeys([*base_keywords, *record.keywords])), replace=True)
    elif write_keywords and record.keywords:
        _merge_bag(descriptions, target, SUBJECT, record.keywords)
    _set_simple(descriptions, target, OURS["Source"], record.source)
    if record.model_id:
        _set_simple(descriptions, target, OURS["Model"], record.model_id)
    if record.source == MACHINE:
        _set_simple(descriptions, target, OURS["Caption"], record.text)
        if record.score is not None:
            _set_simple(descriptions, target, OURS["Score"], f"{record.score:.4f}")
    if root.tag == q("rdf", "RDF"):  # bare rdf:RDF packets get the standard wrapper
        wrapper = ET.Element(q("x", "xmpmeta"))
        wrapper.append(root)
        root = wrapper
    return (PACKET_HEADER + serialize(root, prefixes) + PACKET_TRAILER).encode("utf-8")


def serialize(root: ET.Element, prefixes: dict[str, str] | None = None) -> str:
    """XML text for an element tree, every namespace declared once on the root.

    Prefixes come from the packet itself, then from NS, then ns1, ns2...:
    no process-wide registry, so one odd packet cannot change how the next is written.
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    wanted = {**{uri: p for p, uri in NS.items()}, **(prefixes or {})}

    def prefix(uri: str) -> str:
        if uri not in names:
            name = wanted.get(uri, "")
            n = 0
            while not name or name in taken or name in ("xml", "xmlns"):
                n += 1
                name = f"ns{n}"
            names[uri] = name
            taken.add(name)
        return names[uri]

    def qname(tag: str) -> str:
        if not tag.startswith("{"):
            return tag
        uri, local = tag[1:].split("}", 1)
        return f"xml:{local}" if uri == XML_NS else f"{prefix(uri)}:{local}"

    def write(element: ET.Element, out: list[str]) -> None:
        attrs = "".join(f" {qname(k)}={quoteattr(v)}" for k, v in element.attrib.items())
        tag = qname(element.tag)
        out.append(f"<{tag}{attrs}")
        if element.text is None and not len(element):
            out.append("/>")
        else:
            out.append(">" + escape(element.text or ""))
            for child in element:
                write(child, out)
                out.append(escape(child.tail or ""))
            out.append(f"</{tag}>")

    body: list[str] = []
    write(root, body)
    declarations = "".join(f" xmlns:{p}={quoteattr(uri)}" for uri, p in names.items())
    body[0] += declarations  # the root's opening "<tag attrs"
    return "".join(body)
