"""kill -9 a caption-writing batch over 12 MP JPEGs, many times, and count the damage.

A child process writes captions into a folder of 12 MP photos in a loop (the
same ``write_caption`` the CLI and the GUI use, a new caption every round).
It is SIGKILLed at a random moment, again and again. After every kill each
photo must still be whole: it parses, decodes, its entropy-coded data is
byte-identical to the original, and the caption in it is one that was
written completely (XMP and EXIF agree). After the last kill, one more write in
the folder (the "next run") must leave no temp file behind.

    nice -n 10 python benchmarks/kill_stress.py [--kills 25] [--photos 12] [--seed 0]

Prints: kills, writes completed, damaged photos, temp files seen after kills, temp files left after the next run.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_app.metadata.exif import parse_exif_caption  # noqa: E402
from desktop_app.metadata.jpeg import EXIF_HEADER, XMP_HEADER, JpegFile  # noqa: E402
from desktop_app.metadata.policy import same_text  # noqa: E402
from desktop_app.metadata.record import CaptionRecord  # noqa: E402
from desktop_app.metadata.store import WriteOptions, write_caption  # noqa: E402
from desktop_app.metadata.xmp import read_xmp  # noqa: E402

COCO = ROOT.parent / "shared" / "datasets" / "coco-val2017-public"
SAMPLE = ROOT / "resources" / "samples" / "chelsea.jpg"

WRITER = """
import sys
from pathlib import Path
from desktop_app.metadata.record import CaptionRecord
from desktop_app.metadata.store import WriteOptions, write_caption
photos = sorted(Path(sys.argv[1]).glob("*.jpg"))
round_ = int(sys.argv[2])
print("ready", flush=True)
n = 0
while True:
    for photo in photos:
        n += 1
        text = f"round {round_} write {n}: a caption " + "long " * (n % 300)
        write_caption(photo, CaptionRecord(text, model_id="kill-stress@1"), WriteOptions(overwrite=True))
        print(n, flush=True)
"""


def source_photo() -> Path:
    found = sorted(COCO.rglob("*.jpg"))[:1] if COCO.is_dir() else []
    return found[0] if found else SAMPLE


def make_photos(folder: Path, count: int) -> dict[Path, bytes]:
    """12 MP JPEGs (4000x3000) upscaled from a real photo; returns each one's entropy-coded data."""
    base = Image.open(source_photo()).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    originals = {}
    for i in range(count):
        path = folder / f"photo_{i:02d}.jpg"
        base.rotate(0 if i % 2 else 180).save(path, quality=88 + i % 5)
        originals[path] = JpegFile.parse(path.read_bytes()).image_data
    return originals


def check(photo: Path, image_data: bytes, seen: dict[Path, bytes]) -> str:
    """'' when the photo is whole, else what is wrong."""
    data = photo.read_bytes()
    if seen.get(photo) == data:
        return ""
    try:
        jpeg = JpegFile.parse(data)
    except ValueError as exc:
        return f"does not parse: {exc}"
    if jpeg.image_data != image_data:
        return "entropy-coded data changed"
    xmp, exif = jpeg.app1(XMP_HEADER), jpeg.app1(EXIF_HEADER)
    if xmp is not None:
        record = read_xmp(xmp)
        description = parse_exif_caption(exif)[0] if exif else ""
        if record is None or not same_text(record.text, description):
            return "caption half-written (XMP and EXIF differ)"
    try:
        with Image.open(photo) as image:
            image.draft("RGB", (1000, 750))  # decodes every block of entropy data, at 1/4 scale
            image.load()
    except Exception as exc:
        return f"does not decode: {exc}"
    seen[photo] = data
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="kill-stress-"))
    try:
        originals = make_photos(folder, args.photos)
        print(f"{args.photos} photos of 4000x3000 from {source_photo().name} in {folder}", file=sys.stderr)
        seen: dict[Path, bytes] = {}
        damaged, temps_seen, writes, mid_write = set(), 0, 0, 0
        for kill in range(args.kills):
            proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(kill)], cwd=ROOT,
                                    stdout=subprocess.PIPE, text=True)
            proc.stdout.readline()  # imports done, about to write
            time.sleep(rng.uniform(0.0, 1.5))
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate()
            writes += len(out.split())
            temps = list(folder.glob(".*.photocaption-tmp"))
            temps_seen += len(temps)
            mid_write += bool(temps)
            for photo, image_data in originals.items():
                problem = check(photo, image_data, seen)
                if problem:
                    damaged.add(photo)
                    print(f"kill {kill + 1}: {photo.name}: {problem}", file=sys.stderr)
        write_caption(next(iter(originals)), CaptionRecord("the next run", model_id="kill-stress@1"),
                      WriteOptions(overwrite=True))
        left = list(folder.glob(".*.photocaption-tmp"))
        print(f"kills: {args.kills}")
        print(f"writes completed before the kills: {writes}")
        print(f"kills that left a temp file (killed mid-write): {mid_write}")
        print(f"damaged photos: {len(damaged)}")
        print(f"temp files seen right after kills: {temps_seen}")
        print(f"temp files left after the next run: {len(left)}")
        return 1 if damaged or left else 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
