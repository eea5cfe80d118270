"""Are two versions of the captioner the same? Caption a split, write every detail, compare two such files.

    python benchmarks/caption_identity.py --split flickr8k-test --out new.jsonl [--bundle DIR] [--beam 3]
    python benchmarks/caption_identity.py --compare old.jsonl new.jsonl [--score flickr8k-test]

The first form captions the split through the app's pipeline (as ``photocaption caption`` does,
beam 3 and no-repeat 3 by default) and writes one JSON line per photo: caption, score, n-best,
keywords, confidence and a hash of the attention maps. Run it once with the old code (a copy of
the tree) and once with the new to check a speed change did not change a single caption; the
second form counts identical and different photos and, with ``--score``, prints both files'
CIDEr-D and BLEU-4 (pycocoevalcap, needs the train extra and Java). Datasets are only read.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from desktop_app.captioning.captioner import Captioner  # noqa: E402
from desktop_app.captioning.decode import DecodeOptions  # noqa: E402
from desktop_app.captioning.pipeline import CAPTIONED, PipelineOptions, caption_photos  # noqa: E402

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"  # beside the repo, as everyday_photos.py reads it
FIELDS = ("text", "score", "alternatives", "keywords", "confidence", "needs_review", "attention")


def split_photos(split: str, datasets: Path = DATASETS) -> tuple[list[Path], dict[str, list[str]]]:
    """Photo paths of a split and their reference captions (file name -> captions)."""
    if split == "flickr8k-test":
        root = datasets / "flickr8k"
        names = [n.strip() for n in (root / "Flickr_8k.testImages.txt").read_text().splitlines() if n.strip()]
        references: dict[str, list[str]] = {}
        with open(root / "captions.txt", encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                references.setdefault(row["image"], []).append(row["caption"])
        return [root / "Images" / n for n in names], references
    if split == "coco-dev":
        root = datasets / "coco-val2017-public"
        names = [n.strip() for n in (root / "dev.txt").read_text().splitlines() if n.strip()]
        return [root / "images" / n for n in names], json.loads((root / "references.json").read_text(encoding="utf-8"))
    raise SystemExit(f"unknown split {split!r} (flickr8k-test or coco-dev)")


def caption_split(args: argparse.Namespace) -> None:
    paths, _ = split_photos(args.split, args.datasets)
    captioner = Captioner.open(args.bundle, provider="cpu", threads=args.threads)
    decode = DecodeOptions(beam_size=args.beam, no_repeat_ngram=args.no_repeat_ngram)
    rows: dict[str, dict] = {}

    def keep(outcome) -> None:
        assert outcome.status == CAPTIONED, (outcome.path, outcome.message)
        r = outcome.result
        rows[outcome.path.name] = {
            "photo": outcome.path.name, "text": r.text, "score": float(r.score),
            "alternatives": [[t, float(s)] for t, s in r.alternatives], "keywords": r.keywords,
            "confidence": r.confidence, "needs_review": r.needs_review,
            "attention": hashlib.sha256(r.attention.astype("<f4").tobytes()).hexdigest()[:16]}

    caption_photos(paths, captioner, PipelineOptions(decode=decode, recaption=True), on_outcome=keep)
    with open(args.out, "w", encoding="utf-8") as handle:
        for path in paths:
            handle.write(json.dumps(rows[path.name]) + "\n")
    print(f"{len(rows)} captions of {args.split} ({captioner.model_id}) written to {args.out}")


def read_rows(path: Path) -> dict[str, dict]:
    return {row["photo"]: row for row in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def compare(args: argparse.Namespace) -> None:
    old, new = (read_rows(p) for p in args.compare)
    if set(old) != set(new):
        raise SystemExit("the two files caption different photos")
    differing = {name: [f for f in FIELDS if old[name][f] != new[name][f]] for name in old}
    differing = {name: fields for name, fields in differing.items() if fields}
    texts = sum("text" in fields for fields in differing.values())
    print(f"{len(old)} photos: {len(old) - len(differing)} identical in every field, {len(differing)} differ "
          f"({texts} in the caption text)")
    for name, fields in list(differing.items())[:10]:
        print(f"  {name}: {', '.join(fields)}: {old[name]['text']!r} -> {new[name]['text']!r}")
    if args.score:
        from model_export.metrics import score_captions

        _, references = split_photos(args.score, args.datasets)
        names = sorted(old)
        refs = {i: references[n] for i, n in enumerate(names)}
        for label, rows in zip(args.compare, (old, new)):
            scores = score_captions(refs, {i: rows[n]["text"] for i, n in enumerate(names)}, ("bleu", "cider"))
            print(f"  {label}: CIDEr-D {scores['CIDEr-D']:.2f}, BLEU-4 {scores['BLEU-4']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="flickr8k-test", help="flickr8k-test or coco-dev")
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--out", type=Path, help="JSON lines file to write")
    parser.add_argument("--beam", type=int, default=DecodeOptions.beam_size)  # the app's defaults
    parser.add_argument("--no-repeat-ngram", type=int, default=DecodeOptions.no_repeat_ngram)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="folder holding flickr8k/ and coco-val2017-public/")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("OLD", "NEW"), help="compare two written files")
    parser.add_argument("--score", help="with --compare: score both files on this split")
    args = parser.parse_args()
    if args.compare:
        compare(args)
    elif args.out:
        caption_split(args)
    else:
        parser.error("give --out (caption a split) or --compare OLD NEW")


if __name__ == "__main__":
    main()
