"""Keywords (dc:subject) from a caption: its content words, minus function words."""

from __future__ import annotations

STOPWORDS = frozenset(
    "a an the and or of in on at to for with by from into onto over under near next is are was were be being been "
    "its it his her their there this that these those some while as up down out off through two three four one "
    "another other each his hers them they he she who what which".split()
)


def keywords_from_words(words: list[str], limit: int = 8) -> list[str]:
    """Distinct content words in caption order (nouns and verbs, mostly)."""
    seen: list[str] = []
    for word in words:
        if word not in STOPWORDS and len(word) > 2 and word not in seen and not word.startswith("<"):
            seen.append(word)
    return seen[:limit]
