"""Caption quality on everyday photos, through the app's own pipeline.

    python benchmarks/everyday_photos.py [--bundle DIR] [--images DIR --references FILE [--list FILE]]

Default: the COCO dev split (``../shared/datasets/coco-val2017-public``: ``dev.txt`` +
``references.json``). ``--references`` also takes a COCO caption file
(``{"images": [...], "annotations": [...]}``). Prints pycocoevalcap's BLEU-1..4, METEOR,
ROUGE-L and CIDEr-D, and the noun-search measure: for each everyday noun below, a photo is
*relevant* when at least two of its references use the noun (singular or plural) and
*found* when its caption or keywords do, which is what ``photocaption search NOUN`` would
return. Per-noun precision and recall, their means over the nouns with a relevant photo, and
mean F1. With a confidence in the results it also prints mean CIDEr-D of the photos flagged
for review and of the others. Needs the train extra (pycocoevalcap) and Java.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from desktop_app.captioning.captioner import Captioner, CaptionResult  # noqa: E402
from desktop_app.captioning.decode import DecodeOptions  # noqa: E402
from desktop_app.captioning.pipeline import CAPTIONED, PipelineOptions, caption_photos  # noqa: E402
from model_export.chair import SHARED, ObjectTable, chair, ground_truth  # noqa: E402
from model_export.everyday import load_references, noun_search, per_photo_cider  # noqa: E402

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


def report_chair(refs: dict[str, list[str]], hyps: dict[str, str], annotated: dict | None, worst: int = 8) -> dict:
    """Print CHAIRs/CHAIRi/coverage and the objects most often named where they are absent."""
    table = ObjectTable.load()
    score = chair(table, ground_truth(table, refs, annotated), hyps)
    print(score.line())
    print("most often named where absent: " + ", ".join(f"{c} {n}" for c, n in score.absent.most_common(worst)))
    return {"chair_s": score.chair_s, "chair_i": score.chair_i, "coverage": score.coverage,
            "absent": dict(score.absent.most_common())}


def report_keywords(refs: dict[str, list[str]], results: dict[str, CaptionResult], annotated: dict | None) -> dict:
    """Print how many keywords a photo gets and the share of those naming a COCO object that name an absent one."""
    table = ObjectTable.load()
    truth = ground_truth(table, refs, annotated)
    named = [(n, c) for n in refs for k in results[n].keywords for c in table.mentions(k)]
    absent = sum(c not in truth[n] for n, c in named)
    per_photo = sum(len(results[n].keywords) for n in refs) / max(len(refs), 1)
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
    parser.add_argument("--no-repeat-ngram", type=int, default=3, help="the app's default")
    parser.add_argument("--object-penalty", type=float, help="override the bundle's penalty on doubtful object words")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-noun", action="store_true", help="print every noun's precision and recall")
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
    if args.object_penalty is not None:
        captioner.scorer.object_penalty = args.object_penalty
    decode = DecodeOptions(beam_size=args.beam, no_repeat_ngram=args.no_repeat_ngram)
    print(f"model {captioner.model_id}; {len(names)} photos from {images}; beam {args.beam}, "
          f"no-repeat {args.no_repeat_ngram}")
    start = time.perf_counter()
    results = caption_folder(captioner, [images / n for n in names], decode)
    seconds = time.perf_counter() - start
    refs = {n: references[n] for n in names if n in results}
    hyps = {n: results[n].text for n in refs}
    scores = score_captions(refs, hyps)
    nouns = noun_search(refs, results)
    mean_p = float(np.mean([s.precision for s in nouns]))
    mean_r = float(np.mean([s.recall for s in nouns]))
    mean_f1 = float(np.mean([s.f1 for s in nouns]))
    print(f"captioned {len(results)} photos in {seconds:.1f}s")
    print("  ".join(f"{k} {v:.1f}" for k, v in scores.items()))
    report = {"scores": scores, "chair": report_chair(refs, hyps, annotated),
              "keywords": report_keywords(refs, results, annotated)}
    print(f"noun search ({len(nouns)} nouns with a relevant photo): mean precision {mean_p:.3f}, "
          f"mean recall {mean_r:.3f}, mean F1 {mean_f1:.3f}")
    if args.per_noun:
        print(f"{'noun':<14}{'relevant':>9}{'found':>7}{'hits':>6}{'P':>7}{'R':>7}{'F1':>7}")
        for s in sorted(nouns, key=lambda s: -s.relevant):
            print(f"{s.noun:<14}{s.relevant:>9}{s.found:>7}{s.hits:>6}{s.precision:>7.2f}{s.recall:>7.2f}{s.f1:>7.2f}")
    report["noun_search"] = {"mean_precision": mean_p, "mean_recall": mean_r, "mean_f1": mean_f1,
                             "nouns": [vars(s) for s in nouns]}
    if any(r.confidence is not None for r in results.values()):
        cider = per_photo_cider(refs, hyps)
        table = ObjectTable.load()
        truth = ground_truth(table, refs, annotated)
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
