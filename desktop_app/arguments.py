"""Command-line argument checks shared by ``photocaption`` and ``photocaption serve``.

Every bad argument is refused in words, with exit status 2, before a model is loaded:
argparse does it for values (``type=`` below), :class:`UsageError` for paths that the
command checks itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.captioning.options import LIMITS, DecodeOptions

if TYPE_CHECKING:
    from desktop_app.metadata.store import WriteOptions


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


def add_write_arguments(parser: argparse.ArgumentParser) -> None:
    """How captions are written into photos (--write, --overwrite, --touch, ...), so ``caption`` and
    ``cluster write`` write by the same flags and safety rules."""
    parser.add_argument("--write", choices=["embed", "sidecar", "none"], default="embed",
                        help="embed: XMP inside JPEG, PNG, WebP and TIFF, plus EXIF in JPEGs (HEIC, RAW get a "
                             "sidecar); sidecar: .xmp files only")
    parser.add_argument("--sidecar-naming", choices=["ext", "stem"], default="ext",
                        help="ext: photo.jpg.xmp; stem: photo.xmp")
    parser.add_argument("--overwrite", action="store_true", help="replace captions a person wrote")
    parser.add_argument("--touch", action="store_true", help="let the photo's modification time change")
    parser.add_argument("--no-exif", action="store_true", help="write XMP only, leave EXIF alone")
    parser.add_argument("--no-keywords", action="store_true", help="do not add dc:subject keywords")
    parser.add_argument("--keyword-hierarchy", choices=["auto", "always", "never"], default="auto",
                        help="also list machine keywords as lr:hierarchicalSubject photocaption|word (read by Immich, "
                             "Lightroom, digiKam); auto: only where the photo has no keywords a person chose")
    parser.add_argument("--no-xattrs", action="store_true",
                        help="do not set user.xdg.comment / user.xdg.tags (the attributes desktop search reads)")


def write_options(args: argparse.Namespace, write: str) -> WriteOptions:
    """The options :func:`add_write_arguments` parsed (``write``: embed or sidecar)."""
    from desktop_app.metadata.store import EMBED, SIDECAR, WriteOptions

    return WriteOptions(mode=EMBED if write == "embed" else SIDECAR, sidecar_naming=args.sidecar_naming,
                        overwrite=args.overwrite, keep_mtime=not args.touch, write_exif=not args.no_exif,
                        write_keywords=not args.no_keywords, write_xattrs=not args.no_xattrs,
                        keyword_hierarchy=args.keyword_hierarchy)


def add_high_contrast_argument(parser: argparse.ArgumentParser) -> None:
    """``--high-contrast`` / ``--no-high-contrast`` for a window; unset, the desktop decides."""
    parser.add_argument("--high-contrast", action=argparse.BooleanOptionalAction, default=None,
                        help="black, white and yellow, text at 7:1 or more (default: as PHOTOCAPTION_HIGH_CONTRAST, "
                             "GTK_THEME or the desktop's contrast setting asks)")


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """--index and --no-index, for commands that keep the library index up to date as they write."""
    parser.add_argument("--index", type=Path, help="library index file (default: per-user data folder)")
    parser.add_argument("--no-index", action="store_true", help="do not update the library index")
