"""Captions written into photos are read back by exiftool; nothing else in the photo changes."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import piexif
import pytest
from PIL import Image

from conftest import exiftool, image_data
from desktop_app.metadata.record import PERSON, CaptionRecord
from desktop_app.metadata.store import MetadataError, WriteOptions, read_caption, sidecar_path, write_caption
from desktop_app.metadata.xmp import XmpError, merge_caption, read_xmp

CAPTION = CaptionRecord("A cat lying on a wooden floor.", model_id="sat-test@abc", keywords=["cat", "floor"], score=-0.42)


@pytest.fixture
def camera_jpeg(tmp_path, pristine_samples):
    """A JPEG as a camera leaves it: make, model, GPS, exposure and a thumbnail."""
    path = tmp_path / "camera.jpg"
    thumb = tmp_path / "thumb.jpg"
    Image.new("RGB", (80, 60), "green").save(thumb)
    exif = {"0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"EOS 5D Mark IV"},
            "Exif": {piexif.ExifIFD.ISOSpeedRatings: 400, piexif.ExifIFD.DateTimeOriginal: b"2024:05:01 10:00:00"},
            "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((51, 1), (30, 1), (1234, 100))},
            "1st": {}, "thumbnail": thumb.read_bytes()}
    Image.open(pristine_samples / "chelsea.jpg").save(path, exif=piexif.dump(exif), quality=90)
    return path


def test_exiftool_reads_every_caption_field(camera_jpeg):
    pixels_before = image_data(camera_jpeg)
    mtime = camera_jpeg.stat().st_mtime_ns
    result = write_caption(camera_jpeg, CAPTION)
    assert result.places == ["XMP", "EXIF"] and not result.warnings
    tags = exiftool(camera_jpeg)
    assert tags["XMP-dc:Description"] == CAPTION.text
    assert tags["XMP-iptcCore:AltTextAccessibility"] == CAPTION.text
    assert tags["IFD0:ImageDescription"] == CAPTION.text
    assert tags["IFD0:XPComment"] == CAPTION.text
    assert tags["XMP-dc:Subject"] == ["cat", "floor"]
    assert tags["XMP-pcap:Source"] == "machine" and tags["XMP-pcap:Model"] == "sat-test@abc"
    # everything else survives, byte for byte where it matters
    assert image_data(camera_jpeg) == pixels_before
    assert tags["IFD0:Make"] == "Canon" and tags["IFD0:Model"] == "EOS 5D Mark IV"
    assert tags["ExifIFD:ISO"] == 400 and tags["GPS:GPSLatitudeRef"] == "North"
    assert "Binary data" in str(tags["IFD1:ThumbnailImage"])
    assert camera_jpeg.stat().st_mtime_ns == mtime


def test_existing_xmp_from_another_tool_is_merged(camera_jpeg):
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Creator=Ada", "-XMP-dc:Subject=holiday",
                    "-XMP-xmp:Rating=4", str(camera_jpeg)], check=True)
    write_caption(camera_jpeg, CAPTION)
    tags = exiftool(camera_jpeg)
    assert tags["XMP-dc:Creator"] == ["Ada"] and tags["XMP-xmp:Rating"] == 4
    assert tags["XMP-dc:Subject"] == ["holiday", "cat", "floor"]
    assert tags["XMP-dc:Description"] == CAPTION.text


def test_descriptions_in_other_languages_are_kept(camera_jpeg):
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Description-de=Eine Katze", str(camera_jpeg)],
                   check=True)
    assert write_caption(camera_jpeg, CAPTION).skipped  # a person's German caption is a person's caption
    write_caption(camera_jpeg, CAPTION, WriteOptions(overwrite=True))
    tags = exiftool(camera_jpeg)
    assert tags["XMP-dc:Description"] == CAPTION.text and tags["XMP-dc:Description-de"] == "Eine Katze"


def test_a_persons_caption_is_never_overwritten_unless_asked(camera_jpeg):
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Description=Grandma's cat Mimi", str(camera_jpeg)],
                   check=True)
    before = camera_jpeg.read_bytes()
    result = write_caption(camera_jpeg, CAPTION)
    assert "kept the caption a person wrote" in result.skipped
    assert camera_jpeg.read_bytes() == before
    write_caption(camera_jpeg, CAPTION, WriteOptions(overwrite=True))
    assert exiftool(camera_jpeg)["XMP-dc:Description"] == CAPTION.text


def test_machine_caption_edited_elsewhere_counts_as_a_persons(camera_jpeg):
    write_caption(camera_jpeg, CAPTION)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-XMP-dc:Description=Mimi asleep", str(camera_jpeg)], check=True)
    assert read_caption(camera_jpeg).written_by_person
    assert write_caption(camera_jpeg, CAPTION).skipped


def test_person_edit_replaces_a_machine_caption_and_is_marked(camera_jpeg):
    write_caption(camera_jpeg, CAPTION)
    write_caption(camera_jpeg, CaptionRecord("Mimi on the floor.", source=PERSON))
    found = read_caption(camera_jpeg)
    assert found.text == "Mimi on the floor." and found.written_by_person
    assert exiftool(camera_jpeg)["XMP-pcap:Source"] == "person"


def test_other_formats_get_a_merged_sidecar(tmp_path):
    gif = tmp_path / "scan.gif"
    Image.new("RGB", (50, 50), "red").save(gif)
    gif_bytes = gif.read_bytes()
    sidecar = sidecar_path(gif)
    assert sidecar.name == "scan.gif.xmp"
    sidecar.write_text('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                       '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5"/>'
                       '</rdf:RDF></x:xmpmeta>')
    result = write_caption(gif, CAPTION)
    assert result.places == ["sidecar scan.gif.xmp"] and gif.read_bytes() == gif_bytes
    tags = exiftool(sidecar)
    assert tags["XMP-dc:Description"] == CAPTION.text and tags["XMP-xmp:Rating"] == 5
    write_caption(gif, CAPTION, WriteOptions(sidecar_naming="stem"))
    assert (tmp_path / "scan.xmp").is_file()


def test_jpeg_sidecar_mode_leaves_the_photo_alone(camera_jpeg):
    before = camera_jpeg.read_bytes()
    write_caption(camera_jpeg, CAPTION, WriteOptions(mode="sidecar"))
    assert camera_jpeg.read_bytes() == before
    assert read_caption(camera_jpeg).places == ["sidecar camera.jpg.xmp"]


def test_read_only_photo_and_folder_are_reported(camera_jpeg):
    """Cleared write bits protect a photo even from root (CI runs as root)."""
    before = camera_jpeg.read_bytes()
    camera_jpeg.chmod(0o444)
    try:
        with pytest.raises(MetadataError, match="read-only"):
            write_caption(camera_jpeg, CAPTION)
        assert camera_jpeg.read_bytes() == before
    finally:
        camera_jpeg.chmod(0o644)
    folder = camera_jpeg.parent / "locked"
    folder.mkdir()
    png = folder / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    folder.chmod(0o555)
    try:
        with pytest.raises(MetadataError, match="read-only"):
            write_caption(png, CAPTION)
    finally:
        folder.chmod(0o755)


def test_xmp_entity_expansion_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>')
    with pytest.raises(XmpError):
        read_xmp(bomb)
    with pytest.raises(XmpError):
        merge_caption(bomb, CAPTION)


def test_unmergeable_xmp_leaves_the_photo_untouched(camera_jpeg):
    from desktop_app.metadata.jpeg import XMP_HEADER, JpegFile

    jpeg = JpegFile.parse(camera_jpeg.read_bytes())
    jpeg.set_app1(XMP_HEADER, b"<x:xmpmeta this is not xml")
    camera_jpeg.write_bytes(jpeg.to_bytes())
    before = camera_jpeg.read_bytes()
    with pytest.raises(MetadataError, match=r"XMP metadata is damaged \(not valid XML\), so it was left unchanged"):
        write_caption(camera_jpeg, CAPTION)
    assert camera_jpeg.read_bytes() == before


WRITER = """
import sys
from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import WriteOptions, write_caption
n = 0
while True:
    n += 1
    write_caption(sys.argv[1], CaptionRecord("caption number %d " % n + "x" * (n % 500)), WriteOptions(overwrite=True))
    if n == 1:
        print("first write done", flush=True)
"""


def test_killed_mid_write_leaves_the_photo_intact(camera_jpeg):
    """SIGKILL a process that rewrites the photo's metadata in a loop: the photo always stays whole."""
    big = camera_jpeg.parent / "big.jpg"
    Image.open(camera_jpeg).resize((3000, 2000)).save(big, quality=95)
    pixels = image_data(big)
    root = Path(__file__).resolve().parents[1]
    for delay in (0.0, 0.05, 0.13, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(big)], cwd=root, stdout=subprocess.PIPE)
        proc.stdout.readline()  # started writing (imports take a while on a busy machine)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert image_data(big) == pixels
        with Image.open(big) as image:
            image.load()
        assert read_caption(big).text.startswith("caption number")
    write_caption(big, CAPTION, WriteOptions(overwrite=True))  # the next write sweeps the dead runs' temp files
    assert not list(big.parent.glob(".*.photocaption-tmp"))


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_a_new_sidecar_gets_the_photos_permissions(tmp_path, mode):
    """Issue 24 item 8: a sidecar beside a private (0600) photo was created 0644, readable by everyone."""
    from desktop_app.metadata.store import SIDECAR

    photo = tmp_path / "private.jpg"
    Image.new("RGB", (16, 16), "red").save(photo)
    photo.chmod(mode)
    write_caption(photo, CAPTION, WriteOptions(mode=SIDECAR))  # sidecars asked for: whatever format embeds
    sidecar = sidecar_path(photo)
    assert sidecar.stat().st_mode & 0o777 == mode
    assert (sidecar.stat().st_uid, sidecar.stat().st_gid) == (photo.stat().st_uid, photo.stat().st_gid)


def test_a_photo_of_another_user_is_not_taken_over(camera_jpeg, monkeypatch):
    """Issue 24 item 8: a non-root run in a shared writable folder replaced a photo and so became its owner."""
    import os

    before = camera_jpeg.read_bytes()
    monkeypatch.setattr(os, "geteuid", lambda: camera_jpeg.stat().st_uid + 4242)  # we are someone else
    with pytest.raises(MetadataError, match="belongs to another user; replacing it would make it yours"):
        write_caption(camera_jpeg, CAPTION)
    assert camera_jpeg.read_bytes() == before
