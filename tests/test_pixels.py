"""Photo -> pixels: every mode, orientation, draft decoding, and refusals with reasons."""

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
    for name, reason in [("empty.jpg", "not an image"), ("text.jpg", "not an image"),
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
