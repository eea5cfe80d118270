"""Everyday search words and what they cover, from WordNet 3.0: ``resources/search_terms.json``.

``photocaption search animal`` should find the cat and the dog, ``person`` the man, the woman and the child,
``bike`` the bicycle, ``food`` the pizza. The app has no WordNet (a training dependency), so the tree is
written here once, for the words captions and keywords use, and the app reads it
(``desktop_app/library/terms.py``).

    python -m model_export.terms [--bundle resources/models/default] [--out resources/search_terms.json]

A word's *broader* words are the words of its WordNet hypernyms (its first two noun senses: "bike" is a
motorcycle first and a bicycle second), among the words we know, leaving out those too abstract to search for.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from desktop_app.bundle import format as bf
from desktop_app.bundle.vocabulary import SPECIAL_TOKENS, singular
from desktop_app.resources import DEFAULT_BUNDLE, SEARCH_TERMS
from model_export.chair import SYNONYMS, ObjectTable
from model_export.concepts import ABSTRACT, open_wordnet

SENSES = 2  # a word's meanings that count: its first two noun senses (WordNet orders them by frequency)
# Broad words WordNet puts elsewhere than people mean them: "people" is a group, not a person; a bus or a train
# is "public transport", which people call a vehicle.
ALSO = {"people": "person", "public transport": "vehicle"}
EVERYDAY = frozenset({"noun.food", "noun.plant", "noun.animal", "noun.artifact"})
SENSE = {"hot dog": "hotdog.n.02"}  # WordNet's first "hot dog" is a show-off; in a photo it is the food
VAGUE = frozenset("someone somebody individual mortal soul young youth group bar block string series piece".split())


def known_words(bundle_dir: Path) -> list[str]:
    """The words a caption or keyword can hold: the bundle's decoder and concept words, COCO's object names."""
    bundle = bf.load_bundle(bundle_dir)
    words = set(bundle.vocabulary.words[len(SPECIAL_TOKENS):])
    if bundle.concepts is not None:
        words |= set(bundle.concepts.words)
    if SYNONYMS.is_file():
        words |= set(ObjectTable.load().category)
    return sorted(w for w in words if w.replace(" ", "").isalpha())


def _senses(wn, word: str) -> list:
    """The word's first noun sense, and its second where that is a thing one photographs and the first is not a
    person (``bike``: motorcycle and bicycle; ``broccoli``: the plant and the food; ``adult`` stays a person)."""
    if word in SENSE:
        return [wn.synset(SENSE[word])]
    senses = wn.synsets(singular(word).replace(" ", "_"), pos="n")[:SENSES]  # "men": the man, not the work force
    return senses[:1] + [s for s in senses[1:] if s.lexname() in EVERYDAY and senses[0].lexname() != "noun.person"]


def _mostly_noun(wn, word: str) -> bool:
    """Whether people use the word as a noun more than as an adjective or a verb (WordNet's SemCor counts)."""
    name = singular(word).replace(" ", "_")

    def used(pos: str) -> int:
        return sum(lemma.count() for lemma in wn.lemmas(name, pos=pos))

    return used("n") >= max(used("a") + used("s"), used("v"))


def _lemma_words(synset) -> set[str]:
    return {name.replace("_", " ").lower() for name in synset.lemma_names()}


def broader_words(wn, words: list[str]) -> dict[str, list[str]]:
    """word -> the known words of its senses' synonyms and hypernyms (closest first), for words that have any."""
    known = set(words)
    out: dict[str, list[str]] = {}
    for word in words:
        if not _mostly_noun(wn, word):
            continue  # "white" is a person in WordNet, but in a caption it is a colour
        found: list[str] = []
        for sense in _senses(wn, word):
            chain = [sense] + list(sense.closure(lambda s: s.hypernyms() + s.instance_hypernyms()))
            for synset in chain:
                for lemma in sorted(_lemma_words(synset)):
                    lemma = ALSO.get(lemma, lemma)
                    if lemma != word and lemma in known and lemma not in ABSTRACT | VAGUE and lemma not in found:
                        found.append(lemma)
        if word in ALSO and ALSO[word] not in found:
            found.insert(0, ALSO[word])
        if found:
            out[word] = found
    return _unambiguous(wn, out, words)


def _unambiguous(wn, broader: dict[str, list[str]], words: list[str]) -> dict[str, list[str]]:
    """The index stems words (SQLite FTS5 'porter', Porter's original algorithm): "bicycler" is stored as "bicycl",
    like "bicycle", so a search for "person" through "bicycler" would find bikes. Of words that share a stem, the
    commonest (WordNet's counts) keeps its broader words; the others keep only those it has too."""
    from nltk.stem.porter import PorterStemmer

    stem = PorterStemmer(PorterStemmer.ORIGINAL_ALGORITHM).stem
    by_stem: dict[str, list[str]] = {}
    for word in words:
        by_stem.setdefault(" ".join(stem(w) for w in word.split()), []).append(word)

    def count(word: str) -> int:
        return sum(lemma.count() for lemma in wn.lemmas(singular(word).replace(" ", "_"), pos="n"))

    out = dict(broader)
    for group in by_stem.values():
        if len(group) < 2:
            continue
        head = max(group, key=lambda w: (count(w), -len(w)))
        allowed = set(broader.get(head, ())) | {singular(head), head}
        for word in group:
            if word != head and word in out:
                out[word] = [b for b in out[word] if b in allowed]
                if not out[word]:
                    del out[word]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model_export.terms", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--out", type=Path, default=SEARCH_TERMS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        wn = open_wordnet(Path(work))
        words = known_words(args.bundle)
        broader = broader_words(wn, words)
    args.out.write_text(json.dumps({"source": "WordNet 3.0 hypernyms and synonyms (python -m model_export.terms)",
                                    "broader": broader}, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(broader)} of {len(words)} words have broader words; written to {args.out}")


if __name__ == "__main__":
    main()
