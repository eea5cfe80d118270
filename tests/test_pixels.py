"""Photo -> pixels: every mode, orientation, draft decoding, and refusals with reasons."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app.bundle.format import Preprocessing
from desktop_app.photos.pixels import PhotoError, load_pixels, load_rgb, to_pixels, to_rgb

SPEC = Preprocessing()


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16", "I", "F", "LA", "1"])
def test_every_mode_becomes_rgb(mode):
    image = Image.new("RGB", (40, 30), (200, 100, 50)).convert(mode)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (40, 30)


def test_sixteen_bit_keeps_its_range():
    array = np.full((8, 8), 65535 // 2, dtype=np.uint16)
    image = Image.fromarray(array)
    assert image.mode.startswith("I;16")
    rgb = np.asarray(to_rgb(image))
    assert 120 <= rgb.mean() <= 135  # mid-grey, not clipped to white


def test_transparency_goes_onto_white():
    rgb = to_rgb(Image.new("RGBA", (4, 4), (0, 0, 0, 0)))
    assert np.asarray(rgb).min() == 255


def test_normalisation_and_squash():
    pixels = to_pixels(Image.new("RGB", (500, 100), (255, 0, 128)), SPEC)
    assert pixels.shape == (3, 224, 224) and pixels.dtype == np.float32
    assert np.allclose(pixels[0], 1.0) and np.allclose(pixels[1], -1.0)


def test_exif_orientation_is_honoured(tmp_path):
    image = Image.new("RGB", (64, 32), "white")
    image.paste((255, 0, 0), (0, 0, 32, 32))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = load_rgb(tmp_path / "rotated.jpg")
    assert upright.size == (32, 64)
    top = np.asarray(upright)[:8].mean(axis=(0, 1))
    assert top[0] > 200 and top[1] < 80  # red ended up on top


def test_draft_mode_decodes_big_jpegs_small(tmp_path):
    Image.new("RGB", (4000, 3000), (10, 120, 200)).save(tmp_path / "big.jpg", quality=85)
    small = load_rgb(tmp_path / "big.jpg", (224, 224))
    assert 224 <= min(small.size) < 1000
    assert load_pixels(tmp_path / "big.jpg", SPEC).shape == (3, 224, 224)


def test_refusals_name_the_problem(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello, not a photo")
    Image.new("RGB", (300, 300), "blue").save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    for name, reason in [("empty.jpg", "not a photo this app can open"), ("text.jpg", "not a photo this app can open"),
                         ("truncated.jpg", "corrupt or truncated"), ("absent.jpg", "file not found")]:
        with pytest.raises(PhotoError, match=reason):
            load_pixels(tmp_path / name, SPEC)


def test_decompression_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.jpg"
    Image.new("RGB", (16, 16)).save(bomb)
    data = bytearray(bomb.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (30000).to_bytes(2, "big") * 2  # claim 30000 x 30000
    bomb.write_bytes(bytes(data))
    with pytest.raises(PhotoError, match="refused"):
        load_pixels(bomb, SPEC)


# --- HEIC/HEIF/AVIF and camera RAW ------------------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "metadata-corpus" / "images"
HEIF_LIKE = (".heic", ".heif", ".avif")


def test_self_made_heic_is_read_and_captioned_into_a_sidecar(tmp_path):
    from desktop_app.metadata.record import CaptionRecord
    from desktop_app.metadata.store import WriteOptions, read_caption, write_caption
    from desktop_app.photos.discover import find_photos

    heic = tmp_path / "phone.HEIC"
    image = Image.new("RGB", (96, 64), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 48, 64))
    image.save(heic, format="HEIF", quality=90)
    assert list(find_photos([tmp_path])) == [heic]
    rgb = np.asarray(load_rgb(heic))
    assert rgb.shape == (64, 96, 3) and rgb[:, :40, 0].mean() > 200 and rgb[:, 56:, 2].mean() > 200
    assert load_pixels(heic, SPEC).shape == (3, 224, 224)
    before = heic.read_bytes()
    result = write_caption(heic, CaptionRecord("A red and blue square."), WriteOptions(sidecar_naming="stem"))
    assert result.places == ["sidecar phone.xmp"] and heic.read_bytes() == before
    assert read_caption(heic, "stem").text == "A red and blue square."


def test_corpus_heic_heif_avif_decode():
    files = sorted(p for p in CORPUS.glob("*") if p.suffix.lower() in HEIF_LIKE) if CORPUS.is_dir() else []
    if not files:
        pytest.skip(f"no HEIC/HEIF/AVIF files: metadata corpus not found at {CORPUS}")
    for path in files:
        pixels = load_pixels(path, SPEC)
        assert pixels.shape == (3, 224, 224) and np.isfinite(pixels).all(), path.name


def test_corpus_camera_raw_previews():
    from desktop_app.photos.formats import RAW_EXTENSIONS

    files = sorted(p for p in CORPUS.glob("*") if p.suffix.lower() in RAW_EXTENSIONS) if CORPUS.is_dir() else []
    if not files:
        pytest.skip("no camera RAW file in the metadata corpus (it holds JPEG, PNG, TIFF, WebP, GIF, BMP, AVIF, HEIC)")
    for path in files:
        assert load_pixels(path, SPEC).shape == (3, 224, 224), path.name


def test_raw_that_is_not_raw_is_refused_in_words(tmp_path):
    """Issue 25 item 3: LibRaw's own words ("b'Input/output error'") are no sentence for a person; the reading
    layer says it in plain words, for the CLI, the app and serve alike."""
    fake = tmp_path / "IMG_0001.CR2"
    fake.write_bytes(b"II*\x00" + b"\x00" * 100)
    with pytest.raises(PhotoError, match="not a camera RAW file this app can read|no embedded preview") as refused:
        load_rgb(fake)
    assert "LibRaw" not in str(refused.value) and "b'" not in str(refused.value)
    with pytest.raises(PhotoError, match="file not found"):
        load_rgb(tmp_path / "absent.nef")


def test_photo_bytes_decode_as_their_file_does(pristine_samples, tmp_path):
    """Uploads are read in memory (nothing on disk) but exactly as the same file: orientation, draft, pixels."""
    from desktop_app.photos.pixels import decode_pixels

    rotated = tmp_path / "rotated.jpg"
    image = Image.new("RGB", (1200, 600), "white")
    image.paste((255, 0, 0), (0, 0, 600, 600))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(rotated, exif=exif, quality=90)
    for path in [*sorted(pristine_samples.glob("*.jpg")), rotated]:
        assert np.array_equal(decode_pixels(path.read_bytes(), SPEC), load_pixels(path, SPEC)), path.name
    with pytest.raises(PhotoError, match="not a photo this app can open"):
        decode_pixels(b"%PDF-1.4 not a photo", SPEC)
    with pytest.raises(PhotoError, match="corrupt or truncated"):
        decode_pixels(rotated.read_bytes()[:2000], SPEC)


def _png_16bit_grey(width: int, height: int) -> bytes:
    """A valid 16-bit greyscale PNG of zeros: a few hundred KB that decode to width*height*2 bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\x00" * (1 + 2 * width)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_a_small_16bit_png_that_would_take_gigabytes_is_refused_before_decoding(tmp_path):
    """Issue 24 item 12: 280 KB, 12000x12000 16-bit, under the pixel limit: decoding it took 2.7 GB."""
    import subprocess
    import sys

    photo = tmp_path / "huge16.png"
    photo.write_bytes(_png_16bit_grey(12000, 12000))
    assert photo.stat().st_size < 400_000
    code = ("import sys\nfrom desktop_app.bundle.format import Preprocessing\n"
            "from desktop_app.photos.pixels import PhotoError, decode_pixels\n"
            "try:\n    decode_pixels(open(sys.argv[1], 'rb').read(), Preprocessing())\n    print('decoded')\n"
            "except PhotoError as exc:\n    print(exc)\n"
            # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so the child would report the peak of
            # the pytest process that forked it (3.3 GB late in a full run)
            "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')) // 1024)\n")
    run = subprocess.run([sys.executable, "-c", code, str(photo)], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1])
    message, peak_mib = run.stdout.splitlines()
    assert message.startswith("refused: reading this 12000x12000 image (I;16) would take about 2,747 MiB")
    assert int(peak_mib) < 400, f"{peak_mib} MiB used"
