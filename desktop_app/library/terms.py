"""Search words as people use them: a broader word finds the narrower ones ("animal" finds the cat), synonyms
each other ("bike", "bicycle"), a two-word name is one term ("hot dog").

The tree is ``resources/search_terms.json`` (from WordNet, written by ``python -m model_export.terms``); plurals
are the index's own business (its FTS5 tokenizer stems: "dogs" matches "dog").
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from desktop_app.bundle.vocabulary import singular
from desktop_app.resources import SEARCH_TERMS

CAPTION, KEYWORDS = "caption", "keywords"
FTS_TOKENIZER = "porter unicode61"  # the index's tokenizer, which ``matches`` must share to say why a photo matched


@dataclass(frozen=True)
class Term:
    """One thing asked for: what was typed, and every word that counts as it (the typed word first)."""

    typed: str
    words: tuple[str, ...]
    prefix: bool = False  # the last word typed: also matches words it begins (search as you type)
    unless: tuple[str, ...] = ()  # two-word names that hold one of the words but are something else ("hot dog")


@dataclass(frozen=True)
class Match:
    """Why a photo matched one term: which word, where, and whether it is a narrower word for what was typed."""

    typed: str
    word: str
    place: str  # CAPTION or KEYWORDS
    narrower: bool

    def __str__(self) -> str:
        where = "caption" if self.place == CAPTION else "keyword"
        return f"{where} '{self.word}'" + (f" (a kind of {self.typed})" if self.narrower else "")


@dataclass(frozen=True)
class Tree:
    """broad word -> the words it covers; ``known``: every word of the tree, two-word names included."""

    covers: dict[str, tuple[str, ...]]
    known: frozenset[str]
    names: tuple[str, ...] = ()  # the two-word names ("hot dog", "teddy bear")


@lru_cache(maxsize=4)
def load_tree(path: Path = SEARCH_TERMS) -> Tree:
    """The shipped tree (empty where the file is missing: search still finds the typed words)."""
    try:
        broader: dict[str, list[str]] = json.loads(Path(path).read_text(encoding="utf-8"))["broader"]
    except (OSError, ValueError, KeyError):
        return Tree({}, frozenset())
    covers: dict[str, list[str]] = {}
    for word, above in broader.items():
        for broad in above:
            covers.setdefault(broad, []).append(word)
    known = frozenset(broader) | frozenset(covers)
    return Tree({broad: tuple(sorted(words)) for broad, words in covers.items()}, known,
                tuple(sorted(w for w in known if " " in w)))


def parse(text: str, tree: Tree | None = None) -> list[Term]:
    """Typed words -> terms, joining a known two-word name ("hot dog", "hot dogs") into one."""
    tree = load_tree() if tree is None else tree
    typed = re.findall(r"\w+", text.lower())
    terms: list[Term] = []
    i = 0
    while i < len(typed):
        pairs = [f"{typed[i]} {typed[i + 1]}", f"{typed[i]} {singular(typed[i + 1])}"] if i + 1 < len(typed) else []
        pair = next((p for p in pairs if p in tree.known), None)
        word, i = (pair, i + 2) if pair else (typed[i], i + 1)
        base = pair or (singular(word) if singular(word) in tree.known else word)
        words = dict.fromkeys((word, base, *tree.covers.get(base, ())))  # in order, once each
        unless = tuple(n for n in tree.names if n not in words and set(n.split()) & set(words))
        terms.append(Term(word, tuple(words), prefix=i >= len(typed) and not pair, unless=unless))
    return terms


def _quoted(word: str) -> str:
    return '"' + word.replace('"', "") + '"'


def _options(term: Term) -> list[tuple[str, str]]:
    """(word, FTS5 query) for each way the term can match: its words, and what was typed as a prefix."""
    return [(w, _quoted(w)) for w in term.words] + ([(term.typed, _quoted(term.typed) + "*")] if term.prefix else [])


def fts_query(terms: list[Term]) -> str:
    """An FTS5 query: every term must match, by any of its words (the last one also as a prefix)."""
    groups = []
    for term in terms:
        group = "(" + " OR ".join(query for _, query in _options(term)) + ")"
        groups.append(f"({group} NOT ({' OR '.join(map(_quoted, term.unless))}))" if term.unless else group)
    return " AND ".join(groups)


def matches(terms: list[Term], caption: str, keywords: list[str]) -> list[Match]:
    """Why a photo with this caption and these keywords matched each term, judged by the index's own FTS5 rules
    (stemming, phrases, the last word a prefix) on a one-row table, so the answer is the search's answer."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE hit USING fts5(caption, keywords, tokenize='{FTS_TOKENIZER}')")
        db.execute("INSERT INTO hit VALUES (?, ?)", (caption or "", " ".join(keywords)))
        found: list[Match] = []
        for term in terms:
            hit = None
            if term.unless and db.execute("SELECT 1 FROM hit WHERE hit MATCH ?",
                                          (" OR ".join(map(_quoted, term.unless)),)).fetchone():
                continue  # "dog" in "hot dog": the search did not count it
            for place in (CAPTION, KEYWORDS):
                for word, query in _options(term):
                    if db.execute("SELECT 1 FROM hit WHERE hit MATCH ?", (f"{place} : {query}",)).fetchone():
                        hit = Match(term.typed, word, place, word not in term.words[:2] and word != term.typed)
                        break
                if hit:
                    break
            if hit:
                found.append(hit)
        return found
    finally:
        db.close()
