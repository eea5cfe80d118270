"""A caption write keeps what file it is: links, owner, mode, xattrs; MPF images and trailers stay where they point."""

import fcntl
import io
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import image_data
from desktop_app.metadata import atomic
from desktop_app.metadata.atomic import current_umask, remove_stale_temp_files
from desktop_app.metadata.jpeg import APP1, XMP_HEADER, JpegFile
from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import MetadataError, WriteOptions, read_caption, sidecar_path, write_caption

ROOT = Path(__file__).resolve().parents[1]
CAPTION = CaptionRecord("A cat lying on a wooden floor.", model_id="sat-test@abc", keywords=["cat"])


@pytest.fixture
def photo(tmp_path, pristine_samples):
    path = tmp_path / "photo.jpg"
    Image.open(pristine_samples / "chelsea.jpg").save(path, quality=90)
    return path


def test_symlink_is_written_through_and_stays_a_link(photo, tmp_path):
    link = tmp_path / "album" / "link.jpg"
    link.parent.mkdir()
    link.symlink_to(photo)
    result = write_caption(link, CAPTION)
    assert result.changed and link.is_symlink() and os.readlink(link) == str(photo)
    assert read_caption(photo).text == CAPTION.text


def test_symlink_into_a_read_only_folder_is_refused(photo, tmp_path):
    locked = photo.parent / "locked"
    locked.mkdir()
    target = locked / "real.jpg"
    photo.rename(target)
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    before = target.read_bytes()
    locked.chmod(0o555)
    try:
        with pytest.raises(MetadataError, match="read-only"):
            write_caption(link, CAPTION)
    finally:
        locked.chmod(0o755)
    assert target.read_bytes() == before and link.is_symlink()


def test_owner_group_mode_and_xattrs_are_kept(photo):
    photo.chmod(0o640)
    try:
        os.setxattr(photo, "user.origin", b"camera roll")
    except OSError:
        pytest.skip("this file system has no user extended attributes")
    if os.geteuid() == 0:
        os.chown(photo, 1234, 2345)
    info = photo.stat()
    write_caption(photo, CAPTION)
    after = photo.stat()
    assert after.st_ino != info.st_ino  # replaced, atomically
    assert (after.st_uid, after.st_gid, after.st_mode) == (info.st_uid, info.st_gid, info.st_mode)
    assert os.getxattr(photo, "user.origin") == b"camera roll"
    assert after.st_mtime_ns == info.st_mtime_ns


def test_hard_links_are_not_split(photo):
    other = photo.with_name("other-name.jpg")
    os.link(photo, other)
    before = photo.read_bytes()
    with pytest.raises(MetadataError, match="hard links") as refused:
        write_caption(photo, CAPTION)
    assert "Errno" not in str(refused.value)  # words, not "[Errno 31]"
    assert photo.read_bytes() == before and os.path.samefile(photo, other)
    # the sidecar route still works and leaves the shared file alone
    write_caption(photo, CAPTION, WriteOptions(mode="sidecar"))
    assert photo.read_bytes() == before and sidecar_path(photo).is_file()


def test_new_sidecars_get_the_usual_permissions(tmp_path):
    gif = tmp_path / "scan.gif"
    Image.new("RGB", (8, 8)).save(gif)
    write_caption(gif, CAPTION)
    mode = sidecar_path(gif).stat().st_mode & 0o777
    assert mode == 0o666 & ~current_umask()
    assert mode & 0o044  # readable by others under the usual umask (not a temp file's 0600)


def test_stale_temp_files_of_a_killed_run_are_removed_but_live_ones_kept(photo):
    dead = photo.parent / ".photo.jpg.k3j4h5.photocaption-tmp"
    dead.write_bytes(b"half a photo")
    live = photo.parent / ".photo.jpg.a1b2c3.photocaption-tmp"
    live.write_bytes(b"being written")
    stranger = photo.parent / ".notes.txt.swp"
    stranger.write_bytes(b"someone else's")
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # as a running write holds its temp file
    try:
        write_caption(photo, CAPTION)
        assert not dead.exists() and live.exists() and stranger.exists()
    finally:
        os.close(holder)
    assert remove_stale_temp_files(photo.parent, force=True) == [live]


def test_an_empty_temp_file_of_a_run_killed_before_locking_is_removed_by_the_next_run(photo):
    empty = photo.parent / ".photo.jpg.q7w8e9.photocaption-tmp"
    empty.write_bytes(b"")  # killed a moment ago, between creating its temp file and locking it
    write_caption(photo, CAPTION)
    assert not list(photo.parent.glob(".*.photocaption-tmp"))


def test_a_writer_whose_fresh_temp_file_is_swept_before_it_locks_makes_another(photo, monkeypatch):
    made = []
    mkstemp = atomic.tempfile.mkstemp

    def mkstemp_then_swept(*args, **kwargs):
        fd, name = mkstemp(*args, **kwargs)
        made.append(name)
        if len(made) == 1:  # another process's sweep gets in before this writer locks its new file
            remove_stale_temp_files(photo.parent, force=True)
        return fd, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp_then_swept)
    assert write_caption(photo, CAPTION).changed
    assert len(made) == 2 and not os.path.exists(made[0])
    assert read_caption(photo).text == CAPTION.text
    assert not list(photo.parent.glob(".*.photocaption-tmp"))


# --- MPF secondary images and trailers --------------------------------------------------------------------------

def _mpo(path: Path, source: Path) -> None:
    first = Image.open(source).convert("RGB")
    second = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((200, 150))
    first.save(path, "MPO", save_all=True, append_images=[second], quality=90)


def _second_frame(path: Path) -> bytes:
    with Image.open(path) as image:
        image.seek(1)
        out = io.BytesIO()
        image.save(out, "PNG")
    return out.getvalue()


def test_growing_xmp_after_the_mpf_index_keeps_the_second_image(tmp_path, pristine_samples):
    path = tmp_path / "stereo.mpo"
    _mpo(path, pristine_samples / "chelsea.jpg")
    jpeg = JpegFile.parse(path.read_bytes())
    mpf = next(i for i, (m, p) in enumerate(jpeg.segments) if m == 0xE2 and p.startswith(b"MPF\x00"))
    jpeg.segments.insert(mpf + 1, (APP1, XMP_HEADER + b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'))  # XMP after MPF
    path.write_bytes(jpeg.to_bytes())
    frame, tail = _second_frame(path), JpegFile.parse(path.read_bytes()).image_data
    write_caption(path, CaptionRecord("A cat " + "and a long caption " * 200))
    assert _second_frame(path) == frame and JpegFile.parse(path.read_bytes()).image_data == tail
    warnings = subprocess.run(["exiftool", "-validate", "-warning", "-a", "-s3", str(path)],
                              capture_output=True, text=True).stdout
    assert "MPF" not in warnings and "MPImage" not in warnings


def test_trailer_after_end_of_image_is_byte_identical(photo):
    trailer = b"\xff\xd9" + b"AFCP-like trailer with its own offsets" * 10
    photo.write_bytes(photo.read_bytes() + trailer)
    pixels = image_data(photo)
    write_caption(photo, CAPTION)
    assert photo.read_bytes().endswith(trailer) and image_data(photo) == pixels
