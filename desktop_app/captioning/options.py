"""The app's decode defaults and limits, in one place.

``DecodeOptions()`` is what ``photocaption caption``, the desktop app, ``photocaption serve`` and
``photocaption cluster caption`` decode with unless a person asks otherwise, and ``LIMITS`` is the
range each of them accepts, so a photo gets the same caption whichever front end made it. This
module imports nothing heavy: the CLI builds its parser from it before numpy loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class DecodeOptions:
    """How the decode loop searches; the defaults are the app's (beam 3, 20 words, no repeated 3-grams)."""

    beam_size: int = 3
    max_length: int = 20  # words; the model's own limit applies too
    length_penalty: float = 1.0  # score = logp / len**length_penalty
    no_repeat_ngram: int = 3  # forbid repeating any n-gram of this size (0 = off)
    n_best: int = 3  # captions ranked; the model's confidence reads the runners-up
    suppress: tuple[int, ...] = ()  # token ids never emitted (<unk>, <pad>, <start>: not words a person reads)
    # A sentence a person reads: no word twice in a row ("is is"), no ending on these token ids ("on a.", "a red.").
    no_word_twice: bool = False
    no_end_after: tuple[int, ...] = ()
    # (previous words, words that may not follow them): no "on a in a park", no "a white is"
    not_after: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()


class Limit(NamedTuple):
    """The smallest and largest value a front end accepts for one option."""

    low: int
    high: int


# Wider beams cost linearly more and stop improving captions well before 10; the model's own
# caption length (its manifest) caps max_length below 100 anyway.
LIMITS: dict[str, Limit] = {
    "beam_size": Limit(1, 10),
    "max_length": Limit(1, 100),
    "no_repeat_ngram": Limit(0, 10),
}
