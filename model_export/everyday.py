"""Scoring shared by the everyday-photos benchmark and export-time calibration: references, noun search,
per-photo CIDEr-D. Lives here, not in ``benchmarks/``, so training never imports a benchmark."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop_app.bundle.vocabulary import tokenize
from desktop_app.captioning.captioner import CaptionResult

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
