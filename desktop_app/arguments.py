"""Command-line argument checks shared by ``photocaption`` and ``photocaption serve``.

Every bad argument is refused in words, with exit status 2, before a model is loaded:
argparse does it for values (``type=`` below), :class:`UsageError` for paths that the
command checks itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from desktop_app.captioning.options import LIMITS, DecodeOptions


class UsageError(Exception):
    """A bad argument found after parsing (a path that is missing, a folder where a photo is needed)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: X)' only where there is a default to tell: not for None, off-flags or empty lists."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        quiet = action.default is None or action.default is False or action.default == [] \
            or action.default == argparse.SUPPRESS
        if quiet or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def whole_number(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: an int in [least, most], refused in words otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least or (most is not None and value > most):
            span = f"from {least} to {most}" if most is not None else f"{least} or more"
            raise argparse.ArgumentTypeError(f"must be {span}, not {value}")
        return value

    return parse


def number(above: float | None = None, least: float | None = None) -> Callable[[str], float]:
    """An argparse type: a float above ``above`` (or at least ``least``), refused in words otherwise."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if (above is not None and not value > above) or (least is not None and not value >= least):
            bound = f"above {above:g}" if above is not None else f"{least:g} or more"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {text}")
        return value

    return parse


def existing(paths: list[Path]) -> None:
    """Every path must exist (all missing ones are named at once)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError("no such file or folder: " + ", ".join(missing))


def photos_only(paths: list[Path], command: str, instead: str) -> None:
    """Every path must exist and be a photo: ``command`` does not take folders; ``instead`` says what does."""
    existing(paths)
    named_folders = [str(p) for p in paths if p.is_dir()]
    if named_folders:
        raise UsageError(f"{command} takes photos, not folders ({', '.join(named_folders)}); {instead}")


def folders(paths: list[Path]) -> None:
    existing(paths)
    files = [str(p) for p in paths if not p.is_dir()]
    if files:
        raise UsageError("not a folder: " + ", ".join(files))


def writable_file(path: Path | None, what: str) -> None:
    """A file we will create or append to: its folder must exist and it must not be a folder itself."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {what} {path}: the folder {path.parent} does not exist")


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    """--beam, --max-length, --no-repeat-ngram with the app's defaults and limits (``captioning/options.py``),
    so ``caption`` and ``cluster caption`` cannot drift from the GUI and serve."""
    defaults = DecodeOptions()
    parser.add_argument("--beam", type=whole_number(*LIMITS["beam_size"]), default=defaults.beam_size,
                        help="beam width (1 = greedy)")
    parser.add_argument("--max-length", type=whole_number(*LIMITS["max_length"]), default=defaults.max_length,
                        help="longest caption in words")
    parser.add_argument("--no-repeat-ngram", type=whole_number(*LIMITS["no_repeat_ngram"]),
                        default=defaults.no_repeat_ngram, help="forbid repeating n-grams of this size (0 = off)")


def decode_options(args: argparse.Namespace) -> DecodeOptions:
    """The options :func:`add_decode_arguments` parsed."""
    return DecodeOptions(beam_size=args.beam, max_length=args.max_length, no_repeat_ngram=args.no_repeat_ngram)
