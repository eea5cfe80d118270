"""CHAIR: how often captions name an object that is not in the photo.

Rohrbach, Hendricks, Burns, Darrell, Saenko, "Object Hallucination in Image Captioning", EMNLP 2018.
A caption's objects are the COCO categories its words name, read with the paper's synonym table
(``../shared/datasets/chair/synonyms.txt``) and rules: lower-case, tokenise, singularise, join the
two-word names ("hot dog", "baby elephant" -> elephant, "passenger train" -> train), and drop "seat"
next to "toilet". A photo's ground truth is the union of the categories its reference captions name
and its object annotations (here: the person annotation of COCO, where there is one).

- CHAIRs: share of captions naming at least one category not in the ground truth.
- CHAIRi: share of all category mentions that are not in the ground truth.
- Coverage: share of the ground-truth categories the captions name (over all photos).

Used by ``benchmarks/everyday_photos.py`` and by the calibration that picks the decode penalty.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.bundle.vocabulary import singular

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SYNONYMS = SHARED / "chair" / "synonyms.txt"

# The paper's two-word names (chair.py of LisaAnne/Hallucination), read after singularising.
_DOUBLE_WORDS = ("motor bike", "motor cycle", "air plane", "traffic light", "street light", "traffic signal",
                 "stop light", "fire hydrant", "stop sign", "parking meter", "suit case", "sports ball",
                 "baseball bat", "baseball glove", "tennis racket", "wine glass", "hot dog", "cell phone",
                 "mobile phone", "teddy bear", "hair drier", "potted plant", "bow tie", "laptop computer",
                 "stove top oven", "home plate", "train track")
_ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "animal", "cub")


def words_of(caption: str) -> list[str]:
    """A caption's words as CHAIR reads them: letters only ("dog's" is "dog" and "s")."""
    return re.findall(r"[a-z]+", caption.lower())


@dataclass
class ObjectTable:
    """The synonym table: every caption word that names a COCO category -> the category."""

    category: dict[str, str]
    double: dict[str, str]

    @classmethod
    def load(cls, path: Path = SYNONYMS) -> "ObjectTable":
        category: dict[str, str] = {}
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            names = [w.strip() for w in line.split(",") if w.strip()]
            for name in names:
                category.setdefault(name, names[0])
        double = {w: w for w in _DOUBLE_WORDS}
        for animal in _ANIMALS:
            double[f"baby {animal}"] = double[f"adult {animal}"] = animal
        double.update({"passenger jet": "jet", "passenger train": "train", "bow tie": "tie", "toilet seat": "toilet"})
        return cls(category, double)

    def mentions(self, caption: str) -> list[str]:
        """The categories a caption names, in order, one per mention."""
        tokens = [singular(w) for w in words_of(caption)]
        joined, i = [], 0
        while i < len(tokens):
            pair = " ".join(tokens[i:i + 2])
            if i + 1 < len(tokens) and pair in self.double:
                joined.append(self.double[pair])
                i += 2
            else:
                joined.append(tokens[i])
                i += 1
        if "toilet" in joined:
            joined = [w for w in joined if w != "seat"]
        return [self.category[w] for w in joined if w in self.category]

    def objects(self, captions: Iterable[str]) -> set[str]:
        return {c for caption in captions for c in self.mentions(caption)}


@dataclass
class ChairScore:
    captions: int = 0
    hallucinating: int = 0  # captions naming at least one absent category
    mentions: int = 0
    absent_mentions: int = 0
    truth: int = 0  # ground-truth categories, summed over photos
    covered: int = 0  # ... of them named by the caption
    absent: Counter = field(default_factory=Counter)  # category -> captions naming it where it is absent

    @property
    def chair_s(self) -> float:
        return self.hallucinating / self.captions if self.captions else 0.0

    @property
    def chair_i(self) -> float:
        return self.absent_mentions / self.mentions if self.mentions else 0.0

    @property
    def coverage(self) -> float:
        return self.covered / self.truth if self.truth else 0.0

    def line(self) -> str:
        return (f"CHAIRs {100 * self.chair_s:.1f}%  CHAIRi {100 * self.chair_i:.1f}%  coverage {100 * self.coverage:.1f}% "
                f"({self.captions} captions, {self.mentions} object mentions)")


def ground_truth(table: ObjectTable, references: Mapping[str, Sequence[str]],
                 annotated: Mapping[str, Sequence[str]] | None = None) -> dict[str, set[str]]:
    """Each photo's objects: what its references name, plus its annotations (``person.json``)."""
    return {name: table.objects(refs) | set((annotated or {}).get(name, ())) for name, refs in references.items()}


def chair(table: ObjectTable, truth: Mapping[str, set[str]], captions: Mapping[str, str]) -> ChairScore:
    score = ChairScore()
    for name, caption in captions.items():
        named = table.mentions(caption)
        absent = [c for c in named if c not in truth[name]]
        score.captions += 1
        score.mentions += len(named)
        score.absent_mentions += len(absent)
        score.hallucinating += bool(absent)
        score.absent.update(set(absent))
        score.truth += len(truth[name])
        score.covered += len(truth[name] & set(named))
    return score
