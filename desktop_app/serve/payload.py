"""Request options in and caption JSON out: the words of the API, checked and bounded."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from desktop_app.captioning.captioner import CaptionResult, result_fields
from desktop_app.captioning.options import LIMITS, DecodeOptions

MAX_UPLOAD_MB = 16  # a 50 MP camera JPEG is ~25 MB: those are better captioned by path
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class BadRequest(Exception):
    """A request option is unknown or out of range; the message names it."""


@dataclass(frozen=True)
class RequestOptions:
    decode: DecodeOptions
    n_best: int = 1  # captions to return; the decoder always ranks at least the CLI's n-best
    keywords: bool = True
    attention: bool = False


@dataclass(frozen=True)
class Option:
    """One request option, as parsed here and described in the OpenAPI document."""

    name: str
    default: int | bool
    help: str
    low: int = 0
    high: int = 0


# The decode defaults and limits are the app's (captioning/options.py), so a photo gets the same caption either way.
_DEFAULT, _BEAM = DecodeOptions(), LIMITS["beam_size"]
OPTIONS = (
    Option("beam", _DEFAULT.beam_size, f"beam width, 1 (greedy) to {_BEAM.high}", *_BEAM),
    Option("n_best", 1, "how many captions to return, best first (at most beam)", 1, _BEAM.high),
    Option("max_length", _DEFAULT.max_length, "longest caption in words (the model's own limit applies too)",
           *LIMITS["max_length"]),
    Option("no_repeat_ngram", _DEFAULT.no_repeat_ngram, "forbid repeating word sequences of this length (0 = off)",
           *LIMITS["no_repeat_ngram"]),
    Option("keywords", True, "add keywords picked from the caption"),
    Option("attention", False, "add where the model looked for each word (grid weights)"),
)
_INTS = {o.name: o for o in OPTIONS if not isinstance(o.default, bool)}
_BOOLS = {o.name: o for o in OPTIONS if isinstance(o.default, bool)}
OPTION_NAMES = tuple(o.name for o in OPTIONS)


def _int(name: str, value: Any) -> int:
    low, high = _INTS[name].low, _INTS[name].high
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {value!r}") from None
    if not low <= number <= high:
        raise BadRequest(f"{name} must be from {low} to {high}, not {number}")
    return number


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in TRUE + FALSE:
        return value.lower() in TRUE
    raise BadRequest(f"{name} must be true or false, not {value!r}")


def parse_options(values: Mapping[str, Any], ignore: tuple[str, ...] = ()) -> RequestOptions:
    """Options from a query string, form fields or a JSON object; unknown names are refused, not ignored."""
    unknown = sorted(set(values) - set(OPTION_NAMES) - set(ignore))
    if unknown:
        raise BadRequest(f"unknown option {', '.join(unknown)}; options are: {', '.join(OPTION_NAMES)}")
    ints = {name: _int(name, values[name]) if name in values else o.default for name, o in _INTS.items()}
    flags = {name: _bool(name, values[name]) if name in values else o.default for name, o in _BOOLS.items()}
    if ints["n_best"] > ints["beam"]:
        raise BadRequest(f"n_best ({ints['n_best']}) cannot be more than beam ({ints['beam']})")
    # The decoder ranks as many captions as the CLI does (or more): the model's confidence reads the
    # runners-up, so a photo gets the CLI's confidence whatever n_best asks to see.
    decode = DecodeOptions(beam_size=ints["beam"], max_length=ints["max_length"],
                           no_repeat_ngram=ints["no_repeat_ngram"], n_best=max(ints["n_best"], DecodeOptions.n_best))
    return RequestOptions(decode, ints["n_best"], **flags)


def attention_grid(grid_size: int) -> list[int]:
    """[rows, columns] of the encoder's attention locations (square grids, as the bundle's encoders make)."""
    side = math.isqrt(grid_size)
    return [side, side] if side * side == grid_size else [1, grid_size]


def caption_json(result: CaptionResult, options: RequestOptions, model_id: str, grid_size: int) -> dict[str, Any]:
    """The answer's JSON, from the fields the CLI's --jsonl writes (same rounding), shaped as the API says."""
    fields = result_fields(result)
    body: dict[str, Any] = {"caption": fields["caption"], "score": fields["score"], "model": model_id,
                            "confidence": fields["confidence"], "needs_review": fields["needs_review"]}
    if options.n_best > 1:
        body["alternatives"] = [{"caption": text, "score": score}
                                for text, score in fields["alternatives"][:options.n_best]]
    if options.keywords:
        body["keywords"] = list(fields["keywords"])
    if options.attention:
        body["attention"] = {"grid": attention_grid(grid_size), "words": list(result.words),
                             "weights": [[round(float(w), 5) for w in row] for row in result.attention]}
    return body
