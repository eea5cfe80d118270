"""Read caption annotations (Flickr8k, COCO-style, Karpathy json) into one shape.

Every problem in a file is a DataError that names the file and line, because a
person fixing a 40,000-line caption file needs to know where to look.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")
FLICKR_SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt", "test": "Flickr_8k.testImages.txt"}
IMAGE_FOLDERS = ("Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "images")


class DataError(Exception):
    """A dataset file is missing or malformed; the message says what and where."""


@dataclass
class CaptionSet:
    """Images with their reference captions, and which split each belongs to."""

    image_dir: Path
    captions: dict[str, list[str]]  # image file name -> captions
    splits: dict[str, list[str]]  # split -> image file names
    warnings: list[str] = field(default_factory=list)

    def split_captions(self, split: str) -> list[str]:
        return [c for name in self.splits[split] for c in self.captions[name]]


def _read_lines(path: Path) -> list[str]:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    lines = raw.split(b"\n")
    out = []
    for number, line in enumerate(lines, 1):
        try:
            out.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid UTF-8 text (byte {exc.start + 1} of the line)") from None
    return out


def _add_caption(captions: dict[str, list[str]], where: str, image: str, caption: str) -> None:
    image, caption = image.strip(), caption.strip()
    if not image:
        raise DataError(f"{where}: no image name")
    if not caption:
        raise DataError(f"{where}: empty caption for {image}")
    captions[image].append(caption)


def read_flickr_csv(path: Path) -> dict[str, list[str]]:
    """``captions.txt``: CSV with header ``image,caption``."""
    lines = _read_lines(path)
    captions: dict[str, list[str]] = defaultdict(list)
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = next(reader, None)
    if not header or [h.strip().lower() for h in header[:2]] != ["image", "caption"]:
        raise DataError(f"{path}:1: expected the header 'image,caption', found {','.join(header or [])!r}")
    for row in reader:
        number = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise DataError(f"{path}:{number}: expected 'image,caption', found {','.join(row)!r}")
        _add_caption(captions, f"{path}:{number}", row[0], ",".join(row[1:]))
    return dict(captions)


def read_flickr_tokens(path: Path) -> dict[str, list[str]]:
    """``Flickr8k.token.txt``: ``NAME.jpg#K<TAB>caption`` lines."""
    captions: dict[str, list[str]] = defaultdict(list)
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        if not tab:
            raise DataError(f"{path}:{number}: expected 'NAME.jpg#K<TAB>caption', found no tab")
        _add_caption(captions, f"{path}:{number}", key.split("#")[0], caption)
    return dict(captions)


def read_split_file(path: Path) -> list[str]:
    return [line.strip() for line in _read_lines(path) if line.strip()]


def read_karpathy_json(path: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Karpathy ``dataset_*.json``: images with ``filename``, ``split`` and ``sentences``."""
    data = _read_json(path)
    captions: dict[str, list[str]] = defaultdict(list)
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    try:
        images = data["images"]
        for i, entry in enumerate(images):
            name = entry["filename"]
            split = {"restval": "train"}.get(entry["split"], entry["split"])
            if split not in splits:
                raise DataError(f"{path}: images[{i}] ({name}) has unknown split {entry['split']!r}")
            splits[split].append(name)
            for j, sentence in enumerate(entry["sentences"]):
                text = sentence.get("raw") or " ".join(sentence.get("tokens", []))
                _add_caption(captions, f"{path}: images[{i}].sentences[{j}]", name, text)
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a Karpathy dataset json (missing {exc})") from None
    return dict(captions), splits


def read_coco_json(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """COCO-style captions json: ``images`` (id, file_name) and ``annotations`` (image_id, caption)."""
    data = _read_json(path)
    captions: dict[str, list[str]] = defaultdict(list)
    try:
        names = {image["id"]: image["file_name"] for image in data["images"]}
        for i, annotation in enumerate(data["annotations"]):
            image_id = annotation["image_id"]
            if image_id not in names:
                raise DataError(f"{path}: annotations[{i}] names image_id {image_id}, which is not in 'images'")
            _add_caption(captions, f"{path}: annotations[{i}]", names[image_id], annotation["caption"])
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a COCO captions json (missing {exc})") from None
    return dict(captions), list(names.values())


def read_references_json(path: Path) -> dict[str, list[str]]:
    """``references.json``: ``{"<file name>": [caption, ...]}``."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected an object of file name -> list of captions")
    captions: dict[str, list[str]] = defaultdict(list)
    for name, texts in data.items():
        if not isinstance(texts, list):
            raise DataError(f"{path}: {name}: expected a list of captions")
        for j, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"{path}: {name}[{j}]: expected a caption string")
            _add_caption(captions, f"{path}: {name}[{j}]", name, text)
    return dict(captions)


def load_reference_folder(root: Path) -> CaptionSet:
    """A folder like coco-val2017-public: ``references.json``, ``dev.txt``, ``extra.txt``, ``images/``.

    ``dev.txt`` becomes the test split (measured, never trained on) and ``extra.txt``
    the train split (photos that may be added to training); there is no val split.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    captions = read_references_json(root / "references.json")
    sources = {"train": root / "extra.txt", "test": root / "dev.txt"}
    splits = {split: read_split_file(path) for split, path in sources.items()}
    splits["val"] = []
    return assemble(find_image_dir(root), captions, splits, sources)


def _read_json(path: Path):
    text = "\n".join(_read_lines(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def find_image_dir(root: Path) -> Path:
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root}: no image folder (looked for {', '.join(IMAGE_FOLDERS)})")


def load_flickr_folder(root: Path) -> CaptionSet:
    """A Flickr8k folder: ``captions.txt`` (or ``Flickr8k.token.txt``), the three split files, the photos."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    if (root / "captions.txt").is_file():
        captions = read_flickr_csv(root / "captions.txt")
    elif (root / "Flickr8k.token.txt").is_file():
        captions = read_flickr_tokens(root / "Flickr8k.token.txt")
    else:
        raise DataError(f"{root}: no captions.txt or Flickr8k.token.txt")
    splits = {split: read_split_file(root / name) for split, name in FLICKR_SPLIT_FILES.items()}
    return assemble(find_image_dir(root), captions, splits, {s: root / n for s, n in FLICKR_SPLIT_FILES.items()})


def assemble(image_dir: Path, captions: dict[str, list[str]], splits: dict[str, list[str]],
             split_sources: dict[str, Path] | None = None) -> CaptionSet:
    """Check that splits name captioned images that exist; photos missing on disk are skipped with a warning."""
    warnings = []
    for split, names in splits.items():
        source = (split_sources or {}).get(split, split)
        for number, name in enumerate(names, 1):
            if name not in captions:
                raise DataError(f"{source}:{number}: {name} has no captions in the caption file")
    kept: dict[str, list[str]] = {}
    for split, names in splits.items():
        present = [n for n in names if (image_dir / n).is_file()]
        for name in sorted(set(names) - set(present)):
            warnings.append(f"{split}: {name} is listed but {image_dir / name} does not exist; skipped")
        kept[split] = present
    if not kept.get("train"):
        raise DataError("the train split has no images")
    return CaptionSet(image_dir, captions, kept, warnings)
