"""XMP packets: read the caption fields out, merge ours in, keep everything else.

Fields written (the ones photo managers and OS search read):
  dc:description (x-default)              the caption
  Iptc4xmpCore:AltTextAccessibility       the same text, as alt text for screen readers
  dc:subject                              keywords (merged with existing ones)
  pcap:Source, Model, Caption, Score      our own namespace: machine-made or person, by which model

Parsing goes through defusedxml: no DTDs, no entity expansion.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as SafeET

from desktop_app.metadata.record import MACHINE, CaptionRecord

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "pcap": "http://ns.photocaption.org/xmp/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PACKET_HEADER = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
PACKET_TRAILER = '\n<?xpacket end="w"?>'


class XmpError(ValueError):
    """An XMP packet that cannot be parsed safely."""


def q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

DESCRIPTION, ALT_TEXT, SUBJECT = q("dc", "description"), q("Iptc4xmpCore", "AltTextAccessibility"), q("dc", "subject")
OURS = {name: q("pcap", name) for name in ("Source", "Model", "Caption", "Score")}


def _parse(packet: bytes) -> ET.Element:
    try:
        for _event, (prefix, uri) in SafeET.iterparse(io.BytesIO(packet), events=("start-ns",)):
            if prefix and uri not in NS.values() and not prefix.startswith("ns"):
                try:
                    ET.register_namespace(prefix, uri)  # keep other tools' prefixes readable
                except ValueError:
                    pass
        return SafeET.fromstring(packet)
    except Exception as exc:  # defusedxml raises ParseError or its own EntitiesForbidden etc.
        raise XmpError(f"unreadable XMP ({type(exc).__name__}: {exc})") from None


def _rdf(root: ET.Element) -> ET.Element:
    if root.tag == q("rdf", "RDF"):
        return root
    rdf = root.find(q("rdf", "RDF"))
    if rdf is None:
        raise XmpError("XMP without rdf:RDF")
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


def read_xmp(packet: bytes) -> CaptionRecord | None:
    """The caption fields of a packet, or None when it has no description."""
    descriptions = _rdf(_parse(packet)).findall(q("rdf", "Description"))

    def text_of(tag: str, lang_alt: bool = False) -> str:
        element, attr = _find(descriptions, tag)
        if element is not None:
            return _lang_alt_value(element) if lang_alt else (element.text or "")
        return attr or ""

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


def _merge_bag(descriptions: list[ET.Element], target: ET.Element, tag: str, words: list[str]) -> None:
    element = _remove_everywhere(descriptions, tag)
    if element is None:
        element = ET.SubElement(target, tag)
    bag = element.find(q("rdf", "Bag"))
    if bag is None:
        bag = ET.SubElement(element, q("rdf", "Bag"))
    present = {li.text for li in bag.findall(q("rdf", "li"))}
    for word in words:
        if word not in present:
            ET.SubElement(bag, q("rdf", "li")).text = word


def _set_simple(descriptions: list[ET.Element], target: ET.Element, tag: str, value: str) -> None:
    element = _remove_everywhere(descriptions, tag)
    if element is None:
        element = ET.SubElement(target, tag)
    element.text = value


def empty_packet() -> bytes:
    return (f'<x:xmpmeta xmlns:x="{NS["x"]}"><rdf:RDF xmlns:rdf="{NS["rdf"]}">'
            f'<rdf:Description rdf:about=""/></rdf:RDF></x:xmpmeta>').encode()


def merge_caption(packet: bytes | None, record: CaptionRecord, write_keywords: bool = True) -> bytes:
    """Our caption merged into an existing packet (or a new one); every other property is kept."""
    root = _parse(packet if packet and packet.strip() else empty_packet())
    rdf = _rdf(root)
    descriptions = rdf.findall(q("rdf", "Description"))
    if not descriptions:
        descriptions = [ET.SubElement(rdf, q("rdf", "Description"), {q("rdf", "about"): ""})]
    target = descriptions[0]
    _set_lang_alt(descriptions, target, DESCRIPTION, record.text)
    _set_lang_alt(descriptions, target, ALT_TEXT, record.text)
    if write_keywords and record.keywords:
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
    body = ET.tostring(root, encoding="unicode")
    return (PACKET_HEADER + body + PACKET_TRAILER).encode("utf-8")
