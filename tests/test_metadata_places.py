"""One rule for "a person wrote this" over every caption place (EXIF, XPComment, IPTC, XMP, sidecar),
IPTC-IIM kept in step by the MWG rules, and XMP packets as other tools write them.

exiftool, and with it `-use MWG`, is the reader no one here wrote.
"""

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import exiftool, image_data
from desktop_app.metadata import iptc
from desktop_app.metadata.jpeg import APP1, XMP_EXTENSION_HEADER, XMP_HEADER, JpegFile
from desktop_app.metadata.policy import is_placeholder
from desktop_app.metadata.record import PERSON, CaptionRecord
from desktop_app.metadata.store import MetadataError, WriteOptions, read_caption, sidecar_path, write_caption
from desktop_app.metadata.xmp import XmpError, merge_caption, read_xmp

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "datasets" / "metadata-corpus" / "images"
DATA = Path(__file__).parent / "data"
CAPTION = CaptionRecord("A cat lying on a wooden floor.", model_id="sat-test@abc", keywords=["cat", "floor"], score=-0.4)
NEW_MODEL = CaptionRecord("A cat sleeping on the floor.", model_id="sat-test@def", keywords=["cat"], score=-0.3)


def run_exiftool(*args) -> None:
    subprocess.run(["exiftool", "-q", "-q", "-overwrite_original", *map(str, args)], check=True)


def mwg_description(path: Path) -> str:
    out = subprocess.run(["exiftool", "-j", "-use", "MWG", "-Description", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[0].get("Description", "")


def corpus_file(name: str, tmp_path: Path) -> Path:
    source = CORPUS / name
    if not source.is_file():
        pytest.skip(f"metadata corpus not found at {CORPUS} (shared/datasets is not here)")
    target = tmp_path / name
    shutil.copyfile(source, target)
    return target


@pytest.fixture
def photo(tmp_path, pristine_samples):
    path = tmp_path / "photo.jpg"
    Image.open(pristine_samples / "chelsea.jpg").save(path, quality=90)
    return path


# --- which text is a caption ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "OLYMPUS DIGITAL CAMERA         ", "SANYO DIGITAL CAMERA", "KONICA MINOLTA DIGITAL CAMERA", "DCF 1.0",
    "SAMSUNG CSC", "File written by Adobe Photoshop 4.0", "File written by Adobe Photoshop? 4.0",
    "DCIM\\100GOPRO\\GOPR0042.JPG", "DCIM/100GOPRO", "<Digimax i50 MP3, Samsung #1 MP3>", " " * 31, "\x00\x00",
    "", "SONY DSC", '{"shape": [32, 32, 3]}', "IMG_1234.JPG", "Gran Turismo 5"])
def test_camera_and_software_strings_are_not_captions(text):
    assert is_placeholder(text)


@pytest.mark.parametrize("text", ["Grandma's cat Mimi", "my first digital camera", "Der Goalie bin ig", "Olympus"])
def test_real_captions_are_captions(text):
    assert not is_placeholder(text)


def test_camera_placeholder_in_exif_and_iptc_gets_replaced(photo):
    run_exiftool("-EXIF:ImageDescription=OLYMPUS DIGITAL CAMERA         ", "-IPTC:Caption-Abstract=" + " " * 31,
                 "-IPTC:City=Bern", photo)
    assert read_caption(photo) is None
    result = write_caption(photo, CAPTION)
    assert result.places == ["XMP", "EXIF", "IPTC"] and not result.warnings
    tags = exiftool(photo)
    assert tags["IFD0:ImageDescription"] == tags["IPTC:Caption-Abstract"] == CAPTION.text
    assert tags["IPTC:City"] == "Bern"
    assert mwg_description(photo) == CAPTION.text


# --- a person's text, wherever it sits ------------------------------------------------------------------------

def test_an_exif_only_edit_is_a_persons_and_survives_recaption(photo):
    write_caption(photo, CAPTION)
    run_exiftool("-EXIF:ImageDescription=Mimi on the sofa", photo)
    found = read_caption(photo)
    assert found.written_by_person and found.text == "Mimi on the sofa"
    assert found.person_places == ["EXIF"] and {"XMP", "EXIF", "IPTC"} & set(found.places) >= {"XMP", "EXIF"}
    before = photo.read_bytes()
    result = write_caption(photo, NEW_MODEL)  # what --recaption with a new model asks for
    assert "kept the caption a person wrote" in result.skipped and "EXIF" in result.skipped
    assert photo.read_bytes() == before
    assert write_caption(photo, NEW_MODEL, WriteOptions(overwrite=True)).places[:2] == ["XMP", "EXIF"]
    assert exiftool(photo)["IFD0:ImageDescription"] == NEW_MODEL.text


def test_an_xpcomment_from_windows_is_a_persons(photo):
    run_exiftool("-EXIF:XPComment=Holiday in Bern", photo)
    assert read_caption(photo).person_places == ["XPComment"]
    assert write_caption(photo, CAPTION).skipped


def test_our_own_caption_is_not_a_persons_and_a_new_model_may_replace_it(photo):
    write_caption(photo, CAPTION)
    found = read_caption(photo)
    assert not found.written_by_person and found.model_id == "sat-test@abc"
    assert set(found.found) >= {"XMP", "EXIF", "XPComment"}
    assert write_caption(photo, NEW_MODEL).places[:2] == ["XMP", "EXIF"]


def test_a_persons_iptc_caption_is_kept_and_shown_by_mwg_readers(photo):
    run_exiftool("-IPTC:Caption-Abstract=Archive: the cat Mimi, 1998", "-IPTC:Keywords=archive", photo)
    before = photo.read_bytes()
    found = read_caption(photo)
    assert found.text == "Archive: the cat Mimi, 1998" and found.person_places == ["IPTC"]
    assert found.keywords == ["archive"]
    assert "kept the caption a person wrote" in write_caption(photo, CAPTION).skipped
    assert photo.read_bytes() == before and mwg_description(photo) == "Archive: the cat Mimi, 1998"


def test_a_persons_iptc_caption_in_a_tiff_is_kept(tmp_path, pristine_samples):
    scan = tmp_path / "scan.tif"
    Image.open(pristine_samples / "chelsea.jpg").save(scan)
    run_exiftool("-IPTC:Caption-Abstract=Grandma's farm, 1962", "-IPTC:Keywords=farm", scan)  # as Photoshop: LONGs
    found = read_caption(scan)
    assert found.text == "Grandma's farm, 1962" and found.person_places == ["IPTC"] and found.keywords == ["farm"]
    assert "kept the caption a person wrote" in write_caption(scan, CAPTION).skipped
    assert not sidecar_path(scan).exists()


def test_iptc_is_updated_with_its_digest_and_every_other_dataset_kept(photo):
    run_exiftool("-IPTC:Caption-Abstract=old text", "-IPTC:By-line=Ada", "-IPTC:Keywords=archive",
                 "-IPTC:City=Bern", "-Photoshop:URL=https://example.org", photo)
    irb_before = JpegFile.parse(photo.read_bytes()).photoshop_irb()
    write_caption(photo, CAPTION, WriteOptions(overwrite=True))
    tags = exiftool(photo)
    assert tags["IPTC:Caption-Abstract"] == CAPTION.text
    assert tags["IPTC:Keywords"] == ["archive", "cat", "floor"]
    assert tags["IPTC:By-line"] == "Ada" and tags["IPTC:City"] == "Bern" and tags["Photoshop:URL"] == "https://example.org"
    assert tags["File:CurrentIPTCDigest"] == tags["Photoshop:IPTCDigest"]
    assert mwg_description(photo) == CAPTION.text
    # every resource but IPTC and its digest byte-identical; every dataset but caption/keywords too
    old, new = (iptc.ResourceBlock.parse(b) for b in (irb_before, JpegFile.parse(photo.read_bytes()).photoshop_irb()))
    keep = lambda block: [i if isinstance(i, bytes) else i.to_bytes() for i in block.items  # noqa: E731
                          if isinstance(i, bytes) or i.ident not in (iptc.IPTC_RESOURCE, iptc.DIGEST_RESOURCE)]
    assert keep(old) == keep(new)
    datasets = lambda block: [d.raw for d in iptc.IimBlock.parse(block.find(iptc.IPTC_RESOURCE).data).datasets  # noqa: E731
                              if (d.record, d.number) not in (iptc.CAPTION, iptc.KEYWORDS)]
    assert datasets(old) == datasets(new)
    # a second run changes nothing
    data = photo.read_bytes()
    assert not write_caption(photo, CAPTION, WriteOptions(overwrite=True)).changed
    assert photo.read_bytes() == data


def test_iptc_character_sets(photo, tmp_path, pristine_samples):
    """UTF-8 is marked with 1:90; a Latin-1 block stays Latin-1 so its other fields still read right."""
    run_exiftool("-IPTC:City=Bern", photo)
    write_caption(photo, CaptionRecord("Ein Hund läuft über die Wiese"), WriteOptions(overwrite=True))
    tags = exiftool(photo)
    assert tags["IPTC:Caption-Abstract"] == "Ein Hund läuft über die Wiese" and tags["IPTC:CodedCharacterSet"] == "UTF8"
    latin = tmp_path / "latin.jpg"
    shutil.copyfile(pristine_samples / "chelsea.jpg", latin)
    run_exiftool("-charset", "iptc=Latin", "-IPTC:City=Zürich", latin)
    write_caption(latin, CaptionRecord("Café au lait"), WriteOptions(overwrite=True))
    tags = exiftool(latin)
    assert tags["IPTC:City"] == "Zürich" and tags["IPTC:Caption-Abstract"] == "Café au lait"
    assert "IPTC:CodedCharacterSet" not in tags
    assert read_caption(latin).found["IPTC"] == "Café au lait"


def test_no_iptc_is_created_where_there_was_none(photo):
    write_caption(photo, CAPTION)
    assert JpegFile.parse(photo.read_bytes()).photoshop_irb() is None


def test_corpus_iptc_keywords_are_read_and_kept(tmp_path):
    path = corpus_file("pil__iptc.jpg", tmp_path)
    pixels = image_data(path)
    assert read_caption(path) is None  # keywords alone are no caption
    write_caption(path, CAPTION)
    tags = exiftool(path)
    assert tags["IPTC:Keywords"][:7] == ["HvK", 2006, "summer", "July", "holiday", "Hungary", "Budapest"]
    assert tags["IPTC:Caption-Abstract"] == CAPTION.text and mwg_description(path) == CAPTION.text
    assert tags["File:CurrentIPTCDigest"] == tags["Photoshop:IPTCDigest"] and image_data(path) == pixels


def test_corpus_caption_in_every_place_is_a_persons(tmp_path):
    path = corpus_file("es__jpg_xmp_no_exif.jpg", tmp_path)
    found = read_caption(path)
    assert found.text == "Der Goalie bin ig" and set(found.person_places) >= {"XMP", "EXIF", "IPTC", "XPComment"}
    assert write_caption(path, CAPTION).skipped


# --- XMP as other tools write it ------------------------------------------------------------------------------

def packet(body: str, head: str = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>',
           tail: str = '<?xpacket end="w"?>') -> bytes:
    return (head + body + tail).encode("utf-8")


DESC = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:d="http://purl.org/dc/elements/1.1/" xmlns:foo="urn:other">'
        '<d:description><rdf:Alt><rdf:li xml:lang="x-default">Snow on the hills</rdf:li></rdf:Alt></d:description>'
        '<foo:thing>kept</foo:thing></rdf:Description></rdf:RDF></x:xmpmeta>')


@pytest.mark.parametrize("raw", [
    packet(DESC, tail='<?xpacket end="w"?>' + " " * 2000 + "\x00\x00"),  # padded, NUL-terminated
    b"\xef\xbb\xbf\n  " + DESC.encode(),  # BOM and white space before the packet
    packet(DESC.replace("x:xmpmeta", "meta:xmpmeta").replace("xmlns:x=", "xmlns:meta=")),  # another prefix
])
def test_padded_and_odd_packets_are_read_and_merged(raw):
    assert read_xmp(raw).text == "Snow on the hills"
    merged = merge_caption(raw, CAPTION)
    assert read_xmp(merged).text == CAPTION.text
    assert b"urn:other" in merged and b">kept<" in merged


def test_corpus_padded_and_prefixless_xmp(tmp_path):
    for name in ("pil__xmp_padded.jpg", "pil__xmp_no_prefix.jpg", "es__jpg_tests_67-0_length_string.jpg"):
        path = corpus_file(name, tmp_path)
        result = write_caption(path, CAPTION)
        assert "XMP" in result.places, (name, result)
        assert exiftool(path)["XMP-dc:Description"] == CAPTION.text and mwg_description(path) == CAPTION.text


def test_damaged_xmp_is_refused_in_words():
    with pytest.raises(XmpError) as info:
        read_xmp(b'<x:xmpmeta xmlns:x="adobe:ns:meta/">\n<rdf:RDF>\n  <a b=c></x:xmpmeta>')
    assert str(info.value) == "the photo's XMP metadata is damaged (not valid XML)"
    assert "line" not in str(info.value) and "ParseError" not in str(info.value)


def _with_extended_xmp(path: Path, description: bool) -> tuple[bytes, list[bytes]]:
    """Give a JPEG a main packet that names extended XMP, split over two chunks, per XMP part 3."""
    import hashlib

    extended = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
                'xmlns:big="urn:big">'
                + ('<dc:description><rdf:Alt><rdf:li xml:lang="x-default">From the extension</rdf:li></rdf:Alt>'
                   '</dc:description>' if description else '') + '<big:data>' + "z" * 70000 + '</big:data>'
                '</rdf:Description></rdf:RDF></x:xmpmeta>').encode()
    guid = hashlib.md5(extended).hexdigest().upper()
    main = packet('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  f'<rdf:Description rdf:about="" xmlns:xmpNote="http://ns.adobe.com/xmp/note/" '
                  f'xmpNote:HasExtendedXMP="{guid}"/></rdf:RDF></x:xmpmeta>')
    jpeg = JpegFile.parse(path.read_bytes())
    jpeg.set_app1(XMP_HEADER, main)
    chunks = []
    for offset in range(0, len(extended), 60000):
        chunk = XMP_EXTENSION_HEADER + guid.encode() + struct.pack(">II", len(extended), offset) \
            + extended[offset:offset + 60000]
        chunks.append(chunk)
        at = jpeg.find(APP1, XMP_HEADER)[0] + 1 + len(chunks) - 1
        jpeg.segments.insert(at, (APP1, chunk))
    path.write_bytes(jpeg.to_bytes())
    return guid.encode(), chunks


def test_extended_xmp_is_kept_untouched_and_consistent(photo):
    guid, chunks = _with_extended_xmp(photo, description=False)
    write_caption(photo, CAPTION)
    jpeg = JpegFile.parse(photo.read_bytes())
    assert [jpeg.segments[i][1] for i in jpeg.find(APP1, XMP_EXTENSION_HEADER)] == chunks  # untouched
    assert guid in jpeg.app1(XMP_HEADER)  # the main packet still names them
    tags = exiftool(photo)
    assert tags["XMP-dc:Description"] == CAPTION.text and "70000 bytes" in tags["XMP-big:Data"]
    assert mwg_description(photo) == CAPTION.text


def test_a_caption_in_extended_xmp_is_read_and_refused_clearly(photo):
    _with_extended_xmp(photo, description=True)
    assert exiftool(photo)["XMP-dc:Description"] == "From the extension"  # exiftool agrees it is valid
    found = read_caption(photo)
    assert found.text == "From the extension" and found.written_by_person
    before = photo.read_bytes()
    with pytest.raises(MetadataError, match="sit in extended XMP"):
        write_caption(photo, CAPTION, WriteOptions(overwrite=True))
    assert photo.read_bytes() == before


def test_unreadable_exif_is_not_empty(photo):
    """EXIF we cannot parse is left alone and said so; it is never taken for EXIF without a caption."""
    jpeg = JpegFile.parse(photo.read_bytes())
    jpeg.set_app1(b"Exif\x00\x00", b"MM\x00\x2a\x00\x00\xff\xff")  # IFD0 offset past the end
    photo.write_bytes(jpeg.to_bytes())
    result = write_caption(photo, CAPTION)
    assert result.places == ["XMP"] and "EXIF" in result.left_alone
    assert any(w.startswith("EXIF left unchanged") and "caption written to XMP" in w for w in result.warnings)
    assert JpegFile.parse(photo.read_bytes()).app1(b"Exif\x00\x00") == b"MM\x00\x2a\x00\x00\xff\xff"


def test_person_edit_through_the_app_replaces_everywhere(photo):
    run_exiftool("-IPTC:Caption-Abstract=old", photo)
    write_caption(photo, CaptionRecord("Mimi, 2024", source=PERSON))
    tags = exiftool(photo)
    assert tags["IPTC:Caption-Abstract"] == tags["IFD0:ImageDescription"] == tags["XMP-dc:Description"] == "Mimi, 2024"
    assert read_caption(photo).written_by_person


def test_refusal_leaves_bytes_and_says_why(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM")  # truncated
    with pytest.raises(MetadataError, match="damaged JPEG"):
        write_caption(path, CAPTION)


def test_exif_split_over_two_segments_is_read_as_one_and_kept(tmp_path):
    """Pillow's multiple_exif.jpg: ImageDescription spans two APP1 EXIF segments, read joined as exiftool does."""
    path = corpus_file("pil__multiple_exif.jpg", tmp_path)
    found = read_caption(path)
    assert found.text == "firstsecond" and found.person_places == ["EXIF"]
    assert write_caption(path, CAPTION).skipped
    result = write_caption(path, CAPTION, WriteOptions(overwrite=True))
    assert result.places == ["XMP"] and "split over 2 JPEG segments" in result.warnings[0]
    jpeg = JpegFile.parse(path.read_bytes())
    exif = jpeg.find(APP1, b"Exif\x00\x00")
    assert len(exif) == 2 and jpeg.find(APP1, XMP_HEADER) == [exif[-1] + 1]  # new XMP not between them
    assert exiftool(path)["IFD0:ImageDescription"] == "firstsecond"  # still read, as before


def mwg(path: Path, *tags: str) -> dict:
    """What a reader following the MWG rules shows (exiftool -use MWG)."""
    out = subprocess.run(["exiftool", "-j", "-use", "MWG", *(f"-{t}" for t in tags), str(path)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)[0]


def test_a_persons_iptc_keywords_stay_visible_to_mwg_readers(tmp_path):
    """Issue 24 item 4: IPTC keywords and no XMP: our new XMP keyword list held only our words, and MWG readers
    (exiftool -use MWG, Lightroom) take XMP's list, so the person's keywords disappeared."""
    path = tmp_path / "budapest.jpg"
    shutil.copyfile(DATA / "iptc_keywords.jpg", path)
    write_caption(path, CAPTION)
    assert mwg(path, "Keywords")["Keywords"] == ["HvK", 2006, "summer", "Budapest", "cat", "floor"]
    tags = exiftool(path)
    assert tags["IPTC:Keywords"] == tags["XMP-dc:Subject"] and tags["File:CurrentIPTCDigest"] == tags["Photoshop:IPTCDigest"]


def test_a_stale_iptc_digest_is_not_marked_in_sync(tmp_path):
    """IPTC changed after XMP by a tool that knows only IPTC (digest stale): MWG readers show IPTC's newer City,
    Creator and keywords; after our write they still do, with our caption and keywords added."""
    path = tmp_path / "stale.jpg"
    shutil.copyfile(DATA / "iptc_stale_digest.jpg", path)
    assert mwg(path, "City", "Creator")["City"] == "NewCity"
    write_caption(path, CAPTION)
    shown = mwg(path, "Keywords", "City", "Creator", "Description")
    assert shown["Keywords"] == ["old1", "new1", "cat", "floor"]
    assert (shown["City"], shown["Creator"], shown["Description"]) == ("NewCity", "NewCreator", CAPTION.text)
    tags = exiftool(path)
    assert tags["File:CurrentIPTCDigest"] != tags["Photoshop:IPTCDigest"]


def test_an_afcp_trailers_offsets_follow_the_grown_metadata_and_undo_puts_them_back(tmp_path):
    """Issue 24 item 6: AFCP (IrfanView's trailer) holds absolute offsets; after a write exiftool warned
    'Adjusted AFCP offsets by 975' (they pointed 975 bytes too early)."""
    from desktop_app.library.undo import WriteJournal

    path = tmp_path / "irfanview.jpg"
    shutil.copyfile(DATA / "afcp_trailer.jpg", path)
    original = path.read_bytes()
    journal = WriteJournal("test", tmp_path / "undo")
    journal.remember(path)
    write_caption(path, CAPTION)
    journal.written(path)
    tags = exiftool(path, "-validate", "-warning", "-AFCP:all", "-IPTC:all")
    assert "AFCP offsets" not in json.dumps(tags.get("ExifTool:Warning", "")), tags
    assert tags["AFCP:Text"] == "Some AFCP text" and tags["IPTC2:Keywords"] == "afcp-word"
    assert journal.undo().restored == [path] and path.read_bytes() == original
