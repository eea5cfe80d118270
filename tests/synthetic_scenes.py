"""A tiny captioning dataset the tests draw themselves: two coloured shapes, one caption template.

"a red circle left of a blue square": colour, shape and left/right order all
have to be read off the photo, so a model that captions held-out scenes right
has learned to see, not to memorise.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 60, 220), "yellow": (240, 210, 30)}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = ((245, 245, 245), (200, 200, 200), (150, 120, 90))


def _draw(draw: ImageDraw.ImageDraw, shape: str, colour, box) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)


def scene(rng: random.Random, size: int = 224) -> tuple[Image.Image, tuple[str, str, str, str]]:
    """One photo and its (left colour, left shape, right colour, right shape)."""
    c1, c2 = rng.sample(list(COLOURS), 2)
    s1, s2 = rng.choice(SHAPES), rng.choice(SHAPES)
    image = Image.new("RGB", (size, size), rng.choice(BACKGROUNDS))
    draw = ImageDraw.Draw(image)
    for (colour, shape), centre_x in (((c1, s1), rng.uniform(0.22, 0.32)), ((c2, s2), rng.uniform(0.68, 0.78))):
        half = rng.uniform(0.13, 0.18) * size
        cx, cy = centre_x * size, rng.uniform(0.35, 0.65) * size
        _draw(draw, shape, COLOURS[colour], (cx - half, cy - half, cx + half, cy + half))
    return image, (c1, s1, c2, s2)


def caption_variants(slots: tuple[str, str, str, str]) -> list[str]:
    c1, s1, c2, s2 = slots
    return [f"A {c1} {s1} left of a {c2} {s2}.", f"a {c1} {s1} left of a {c2} {s2}",
            f"A {c2} {s2} right of a {c1} {s1}."]


def make_flickr_style(root: Path, train: int = 240, val: int = 40, test: int = 40, seed: int = 0) -> Path:
    """A folder laid out like Flickr8k: Images/, captions.txt, the three split files."""
    rng = random.Random(seed)
    (root / "Images").mkdir(parents=True, exist_ok=True)
    lines = ["image,caption"]
    splits = {"Flickr_8k.trainImages.txt": [], "Flickr_8k.devImages.txt": [], "Flickr_8k.testImages.txt": []}
    for n in range(train + val + test):
        image, slots = scene(rng)
        name = f"scene_{n:04d}.jpg"
        image.save(root / "Images" / name, quality=92)
        lines += [f"{name},{caption}" for caption in caption_variants(slots)[:2]]
        split = list(splits)[0 if n < train else 1 if n < train + val else 2]
        splits[split].append(name)
    (root / "captions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for file, names in splits.items():
        (root / file).write_text("\n".join(names) + "\n", encoding="utf-8")
    return root


def slots_of(caption: str) -> tuple[str, ...]:
    """The four slots a caption claims, read back from "a C1 S1 left of a C2 S2"."""
    words = caption.split()
    return tuple(words[i] if i < len(words) else "" for i in (1, 2, 6, 7))
