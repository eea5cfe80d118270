"""Caption tokenizer and word vocabulary, shared by training and the app.

Training builds the vocabulary and saves it into the model bundle; the app loads
it to turn token ids back into words. Keeping both in one module means a caption
is tokenized exactly the same way at both ends.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIAL_TOKENS = (PAD, START, END, UNK)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case and split into words, dropping punctuation (keeps "dog's")."""
    return _WORD.findall(text.lower())


_IRREGULAR_PLURALS = {"men": "man", "women": "woman", "children": "child", "feet": "foot", "teeth": "tooth",
                      "mice": "mouse", "geese": "goose", "knives": "knife", "leaves": "leaf", "wolves": "wolf",
                      "shelves": "shelf", "loaves": "loaf", "halves": "half", "skis": "ski", "buses": "bus",
                      "glasses": "glass", "dishes": "dish", "benches": "bench", "couches": "couch",
                      "sandwiches": "sandwich", "boxes": "box", "tomatoes": "tomato", "potatoes": "potato",
                      "ladies": "lady", "babies": "baby", "puppies": "puppy", "policemen": "policeman",
                      "businessmen": "businessman", "firemen": "fireman", "fishermen": "fisherman", "species": "species"}
_UNCHANGED_S = re.compile(r"(ss|us|is|ous|ics)$")


def singular(word: str) -> str:
    """A plural noun's singular ("women" -> "woman", "puppies" -> "puppy", "dogs" -> "dog"); other words as they
    are. Caption words name the same thing in either number, for concepts, keywords and object counts."""
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if len(word) <= 3 or not word.endswith("s") or _UNCHANGED_S.search(word):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(ches|shes|xes|zzes)$", word):
        return word[:-2]
    return word[:-1]


class Vocabulary:
    """Bidirectional word <-> id map with the four special tokens at ids 0..3."""

    def __init__(self, words: Sequence[str]):
        if tuple(words[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS}, got {tuple(words[:4])}")
        if len(set(words)) != len(words):
            dupes = sorted(w for w, n in Counter(words).items() if n > 1)
            raise ValueError(f"vocabulary has duplicate words: {dupes[:5]}")
        self.words: list[str] = list(words)
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.words)}

    pad_id = property(lambda self: self.index[PAD])
    start_id = property(lambda self: self.index[START])
    end_id = property(lambda self: self.index[END])
    unk_id = property(lambda self: self.index[UNK])
    never_generated = property(lambda self: (self.pad_id, self.start_id, self.unk_id))

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 5) -> "Vocabulary":
        """Words seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        if min_count < 1:
            raise ValueError("min_count must be >= 1")
        counts = Counter(word for caption in captions for word in tokenize(caption))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIAL_TOKENS) + [w for w in kept if w not in SPECIAL_TOKENS])

    def encode(self, caption: str) -> list[int]:
        """Token ids of a caption, wrapped in <start> ... <end>; unknown words map to <unk>."""
        ids = [self.index.get(w, self.unk_id) for w in tokenize(caption)]
        return [self.start_id, *ids, self.end_id]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of a generated id sequence, stopping at <end> and skipping <start>/<pad>."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i in (self.start_id, self.pad_id):
                continue
            words.append(self.words[i])
        return words

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"words": self.words}, indent=0), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            words = data["words"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a vocabulary file ({exc})") from exc
        return cls(words)
