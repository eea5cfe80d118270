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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from desktop_app.bundle.vocabulary import tokenize  # noqa: E402
from desktop_app.captioning.captioner import Captioner, CaptionResult  # noqa: E402
from desktop_app.captioning.decode import DecodeOptions  # noqa: E402
from desktop_app.captioning.pipeline import CAPTIONED, PipelineOptions, caption_photos  # noqa: E402

COCO = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco-val2017-public"

# Everyday things people search their photos for (COCO's objects and scenes), singular -> plural.
_IRREGULAR = {"man": "men", "woman": "women", "child": "children", "person": "people", "knife": "knives",
              "mouse": "mice", "sheep": "sheep", "bus": "buses", "glass": "glasses", "sandwich": "sandwiches",
              "bench": "benches", "couch": "couches", "dish": "dishes", "box": "boxes", "tomato": "tomatoes",
              "ski": "skis", "beach": "beaches", "pastry": "pastries", "cherry": "cherries", "sky": "skies"}
NOUNS = tuple("""
cat dog horse sheep cow elephant bear zebra giraffe bird
pizza cake sandwich banana apple orange broccoli carrot donut food fruit vegetable
bottle cup bowl plate fork knife spoon wine
laptop computer phone keyboard mouse television remote
chair couch bed table toilet sink refrigerator oven microwave clock vase book umbrella bag suitcase
kite skateboard surfboard frisbee ball bat racket ski snowboard
bicycle car motorcycle airplane bus train truck boat
bench beach kitchen bathroom
""".split())


def plural(noun: str) -> str:
    return _IRREGULAR.get(noun, noun + "s")


def noun_forms() -> dict[str, set[str]]:
    return {noun: {noun, plural(noun)} for noun in NOUNS}


def load_references(path: Path) -> dict[str, list[str]]:
    """{file name: [captions]} from our plain format or a COCO caption json."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "annotations" in data:
        names = {image["id"]: image["file_name"] for image in data["images"]}
        refs: dict[str, list[str]] = {}
        for ann in data["annotations"]:
            refs.setdefault(names[ann["image_id"]], []).append(ann["caption"])
        return refs
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return {str(k): [str(c) for c in v] for k, v in data.items()}
    raise SystemExit(f"{path}: expected {{file: [captions]}} or a COCO caption file (images + annotations)")


@dataclass
class NounScore:
    noun: str
    relevant: int
    found: int
    hits: int

    @property
    def precision(self) -> float:
        return self.hits / self.found if self.found else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.relevant if self.relevant else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def noun_search(references: Mapping[str, Sequence[str]], results: Mapping[str, CaptionResult],
                min_references: int = 2) -> list[NounScore]:
    """Per-noun search precision/recall over the photos (nouns with no relevant photo are left out)."""
    forms = noun_forms()
    ref_tokens = {name: [set(tokenize(c)) for c in caps] for name, caps in references.items()}
    found_tokens = {name: set(tokenize(r.text)) | {w for k in r.keywords for w in tokenize(k)}
                    for name, r in results.items()}
    scores = []
    for noun, words in forms.items():
        relevant = {n for n, caps in ref_tokens.items() if sum(bool(words & c) for c in caps) >= min_references}
        found = {n for n, toks in found_tokens.items() if words & toks}
        if relevant:
            scores.append(NounScore(noun, len(relevant), len(found), len(relevant & found)))
    return scores


def per_photo_cider(references: Mapping[str, Sequence[str]], hypotheses: Mapping[str, str]) -> dict[str, float]:
    """CIDEr-D of each photo (x100; document frequencies from the whole set, as the corpus score)."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    refs = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in references.items()})
    hyps = tokenizer.tokenize({k: [{"caption": h or "a"}] for k, h in hypotheses.items()})
    names = list(refs)
    _, values = Cider().compute_score({k: refs[k] for k in names}, {k: hyps[k] for k in names})
    return {k: float(v) * 100 for k, v in zip(names, values)}


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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--images", type=Path, default=COCO / "images")
    parser.add_argument("--references", type=Path, default=COCO / "references.json")
    parser.add_argument("--list", type=Path, default=COCO / "dev.txt",
                        help="photo names to caption, one a line (default: the COCO dev split; '' = all referenced)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos")
    parser.add_argument("--beam", type=int, default=3)
    parser.add_argument("--no-repeat-ngram", type=int, default=3, help="the app's default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-noun", action="store_true", help="print every noun's precision and recall")
    parser.add_argument("--out", type=Path, help="write captions, keywords and scores as JSON here")
    args = parser.parse_args(argv)

    from model_export.metrics import score_captions

    references = load_references(args.references)
    names = ([line.strip() for line in args.list.read_text().splitlines() if line.strip()]
             if args.list and str(args.list) else sorted(references))
    names = [n for n in names if n in references][: args.limit or None]
    captioner = Captioner.open(args.bundle, provider="cpu", threads=args.threads)
    decode = DecodeOptions(beam_size=args.beam, no_repeat_ngram=args.no_repeat_ngram)
    print(f"model {captioner.model_id}; {len(names)} photos from {args.images}; beam {args.beam}, "
          f"no-repeat {args.no_repeat_ngram}")
    start = time.perf_counter()
    results = caption_folder(captioner, [args.images / n for n in names], decode)
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
    print(f"noun search ({len(nouns)} nouns with a relevant photo): mean precision {mean_p:.3f}, "
          f"mean recall {mean_r:.3f}, mean F1 {mean_f1:.3f}")
    if args.per_noun:
        print(f"{'noun':<14}{'relevant':>9}{'found':>7}{'hits':>6}{'P':>7}{'R':>7}{'F1':>7}")
        for s in sorted(nouns, key=lambda s: -s.relevant):
            print(f"{s.noun:<14}{s.relevant:>9}{s.found:>7}{s.hits:>6}{s.precision:>7.2f}{s.recall:>7.2f}{s.f1:>7.2f}")
    report = {"scores": scores, "noun_search": {"mean_precision": mean_p, "mean_recall": mean_r, "mean_f1": mean_f1,
                                                 "nouns": [vars(s) for s in nouns]}}
    if any(r.confidence is not None for r in results.values()):
        cider = per_photo_cider(refs, hyps)
        flagged = [cider[n] for n in refs if results[n].needs_review]
        kept = [cider[n] for n in refs if not results[n].needs_review]
        report["review"] = {"flagged": len(flagged), "flagged_cider": float(np.mean(flagged)) if flagged else None,
                            "unflagged": len(kept), "unflagged_cider": float(np.mean(kept)) if kept else None}
        print(f"needs review: {len(flagged)} photos, mean CIDEr-D {np.mean(flagged) if flagged else float('nan'):.1f}; "
              f"the other {len(kept)}: {np.mean(kept) if kept else float('nan'):.1f}")
    if args.out:
        report["photos"] = {n: {"caption": r.text, "keywords": r.keywords, "confidence": r.confidence,
                                "needs_review": r.needs_review} for n, r in results.items()}
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
