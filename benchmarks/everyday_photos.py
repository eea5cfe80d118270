"""Caption quality on everyday photos, through the app's own pipeline.

    python benchmarks/everyday_photos.py [--bundle DIR] [--half a|b] [--flickr8k] [--per-noun]
                                         [--images DIR --references FILE [--list FILE]]

Default: the COCO dev split (``../shared/datasets/coco-val2017-public``: ``dev.txt`` + ``references.json``);
``--half a``/``b`` its even/odd lines (settings are chosen on a, reported on b); ``--flickr8k`` the Flickr8k
test split. Prints, for the captions the app makes:
- pycocoevalcap's BLEU-1..4, METEOR, ROUGE-L and CIDEr-D;
- CHAIR (``model_export/chair.py``): the share of captions naming a COCO object not in the photo (CHAIRs), of
  object mentions (CHAIRi), object coverage, and the objects most often named where absent;
- keywords a photo, and the share of keywords naming a COCO object that name an absent one;
- search as ``photocaption search WORD`` answers it (a real library index holding every caption and its keywords):
  precision/recall per everyday noun (relevant: >= 2 references name it) and per broad word (person, animal,
  vehicle, food, furniture: relevant when the photo holds one of its COCO objects);
- with a confidence, CIDEr-D and CHAIRs of the photos flagged for review and of the others.
Needs the train extra (pycocoevalcap) and Java.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from desktop_app.captioning.captioner import Captioner, CaptionResult  # noqa: E402
from desktop_app.captioning.decode import DecodeOptions  # noqa: E402
from desktop_app.captioning.pipeline import CAPTIONED, PipelineOptions, caption_photos  # noqa: E402
from model_export.chair import SHARED, ObjectTable, chair, ground_truth  # noqa: E402
from desktop_app.bundle.vocabulary import tokenize  # noqa: E402
from model_export.everyday import NOUNS, NounScore, load_references, noun_forms, per_photo_cider  # noqa: E402

COCO = SHARED / "coco-val2017-public"
FLICKR8K = SHARED / "flickr8k"


def caption_folder(captioner: Captioner, paths: list[Path], decode: DecodeOptions) -> dict[str, CaptionResult]:
    options = PipelineOptions(decode=decode, recaption=True, protect_person_captions=False)
    results: dict[str, CaptionResult] = {}
    failed: list[str] = []

    def keep(outcome) -> None:
        if outcome.status == CAPTIONED:
            results[outcome.path.name] = outcome.result
        else:
            failed.append(f"{outcome.path.name}: {outcome.message}")

    caption_photos(paths, captioner, options, keep)
    for line in failed:
        print(f"not captioned: {line}", file=sys.stderr)
    return results


def flickr8k_test() -> tuple[Path, dict[str, list[str]], list[str]]:
    """Flickr8k's test split: its photos, their references, their names."""
    from model_export.data.captions import load_flickr_folder

    data = load_flickr_folder(FLICKR8K)
    names = data.splits["test"]
    return data.image_dir, {n: data.captions[n] for n in names}, names


def report_chair(table: ObjectTable, truth: dict[str, set[str]], hyps: dict[str, str], worst: int = 8) -> dict:
    """Print CHAIRs/CHAIRi/coverage and the objects most often named where they are absent."""
    score = chair(table, truth, hyps)
    print(score.line())
    print("most often named where absent: " + ", ".join(f"{c} {n}" for c, n in score.absent.most_common(worst)))
    return {"chair_s": score.chair_s, "chair_i": score.chair_i, "coverage": score.coverage,
            "absent": dict(score.absent.most_common())}


# Broad words people search for, and the COCO objects each covers (COCO's supercategories; furniture without the
# plant and the toilet, which no one calls furniture). A photo is relevant when its ground truth holds one.
BROAD = {"person": {"person"},
         "animal": {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"},
         "vehicle": {"bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"},
         "food": {"banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"},
         "furniture": {"chair", "couch", "bed", "dining table"}}


def report_search(images: Path, refs: dict[str, list[str]], results: dict[str, CaptionResult],
                  truth: dict[str, set[str]], per_word: bool) -> dict:
    """What ``photocaption search WORD`` returns: every photo recorded in a real library index with its caption and
    keywords, then searched for each everyday noun (relevant: >= 2 references name it) and each broad word."""
    from desktop_app.library.index import LibraryIndex
    from desktop_app.metadata.record import CaptionRecord

    with tempfile.TemporaryDirectory() as work:
        index = LibraryIndex(Path(work) / "library.sqlite")
        for name in refs:
            index.record(images / name, CaptionRecord(results[name].text, keywords=results[name].keywords))
        found = {word: {h.path.name for h in index.search(word, limit=10**6)} for word in (*NOUNS, *BROAD)}
    ref_tokens = {n: [set(tokenize(c)) for c in caps] for n, caps in refs.items()}
    rows = []
    for word, forms in noun_forms().items():
        relevant = {n for n, caps in ref_tokens.items() if sum(bool(forms & c) for c in caps) >= 2}
        if relevant:
            rows.append(NounScore(word, len(relevant), len(found[word]), len(relevant & found[word])))
    broad = [NounScore(word, len(rel), len(found[word]), len(rel & found[word]))
             for word, kinds in BROAD.items() for rel in [{n for n in refs if truth[n] & kinds}]]
    mean = {k: float(np.mean([getattr(s, k) for s in rows])) for k in ("precision", "recall", "f1")}
    print(f"search ({len(rows)} nouns with a relevant photo): mean precision {mean['precision']:.3f}, "
          f"mean recall {mean['recall']:.3f}, mean F1 {mean['f1']:.3f}")
    print("broad words: " + ", ".join(f"{s.noun} P {s.precision:.2f} R {s.recall:.2f}" for s in broad))
    if per_word:
        print(f"{'word':<14}{'relevant':>9}{'found':>7}{'hits':>6}{'P':>7}{'R':>7}{'F1':>7}")
        for s in sorted(rows, key=lambda s: -s.relevant) + broad:
            print(f"{s.noun:<14}{s.relevant:>9}{s.found:>7}{s.hits:>6}{s.precision:>7.2f}{s.recall:>7.2f}{s.f1:>7.2f}")
    return {"mean": mean, "nouns": [vars(s) for s in rows], "broad": [vars(s) for s in broad]}


def report_keywords(table: ObjectTable, truth: dict[str, set[str]], results: dict[str, CaptionResult]) -> dict:
    """Print how many keywords a photo gets and the share of those naming a COCO object that name an absent one."""
    named = [(n, c) for n in truth for k in results[n].keywords for c in table.mentions(k)]
    absent = sum(c not in truth[n] for n, c in named)
    per_photo = sum(len(results[n].keywords) for n in truth) / max(len(truth), 1)
    share = absent / len(named) if named else 0.0
    print(f"keywords: {per_photo:.1f} a photo; {100 * share:.1f}% of the {len(named)} naming a COCO object name an absent one")
    return {"per_photo": per_photo, "object_keywords": len(named), "absent_share": share}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--flickr8k", action="store_true", help="the Flickr8k test split instead of COCO dev")
    parser.add_argument("--images", type=Path, default=COCO / "images")
    parser.add_argument("--references", type=Path, default=COCO / "references.json")
    parser.add_argument("--list", type=Path, default=COCO / "dev.txt",
                        help="photo names to caption, one a line (default: the COCO dev split; '' = all referenced)")
    parser.add_argument("--half", choices=("a", "b"), help="only the even (a) or odd (b) lines of the list: "
                        "settings are chosen on one half of COCO dev and reported on the other")
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos")
    parser.add_argument("--beam", type=int, default=DecodeOptions.beam_size)
    parser.add_argument("--no-repeat-ngram", type=int, default=DecodeOptions.no_repeat_ngram, help="the app's default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-noun", action="store_true", help="print every search word's precision and recall")
    parser.add_argument("--out", type=Path, help="write captions, keywords and scores as JSON here")
    args = parser.parse_args(argv)

    from model_export.metrics import score_captions

    if args.flickr8k:
        images, references, names = flickr8k_test()
        annotated = None
    else:
        images, references = args.images, load_references(args.references)
        names = ([line.strip() for line in args.list.read_text().splitlines() if line.strip()]
                 if args.list and str(args.list) else sorted(references))
        annotated = json.loads((COCO / "person.json").read_text()) if images == COCO / "images" else None
    if args.half:
        names = names[args.half == "b"::2]
    names = [n for n in names if n in references][: args.limit or None]
    captioner = Captioner.open(args.bundle, provider="cpu", threads=args.threads)
    decode = DecodeOptions(beam_size=args.beam, no_repeat_ngram=args.no_repeat_ngram)
    print(f"model {captioner.model_id}; {len(names)} photos from {images}; beam {args.beam}, "
          f"no-repeat {args.no_repeat_ngram}")
    start = time.perf_counter()
    results = caption_folder(captioner, [images / n for n in names], decode)
    seconds = time.perf_counter() - start
    refs = {n: references[n] for n in names if n in results}
    hyps = {n: results[n].text for n in refs}
    scores = score_captions(refs, hyps)
    print(f"captioned {len(results)} photos in {seconds:.1f}s")
    print("  ".join(f"{k} {v:.1f}" for k, v in scores.items()))
    table = ObjectTable.load()
    truth = ground_truth(table, refs, annotated)  # each photo's objects: what CHAIR, keywords and search are judged by
    report = {"scores": scores, "chair": report_chair(table, truth, hyps),
              "keywords": report_keywords(table, truth, results),
              "search": report_search(images, refs, results, truth, args.per_noun)}
    if any(r.confidence is not None for r in results.values()):
        cider = per_photo_cider(refs, hyps)
        flagged = [n for n in refs if results[n].needs_review]
        kept = [n for n in refs if not results[n].needs_review]
        report["review"] = {}
        for label, group in (("needs review", flagged), ("the others", kept)):
            if not group:
                continue
            score = chair(table, truth, {n: hyps[n] for n in group})
            report["review"][label] = {"photos": len(group), "cider": float(np.mean([cider[n] for n in group])),
                                       "chair_s": score.chair_s}
            print(f"{label}: {len(group)} photos, mean CIDEr-D {np.mean([cider[n] for n in group]):.1f}, "
                  f"CHAIRs {100 * score.chair_s:.1f}%")
    if args.out:
        report["photos"] = {n: {"caption": r.text, "keywords": r.keywords, "confidence": r.confidence,
                                "needs_review": r.needs_review} for n, r in results.items()}
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
