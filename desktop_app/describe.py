"""``photocaption describe``: one photo's alt text, for a person who just wants it described.

Opened from a file manager (the "Describe with photocaption" desktop entry runs ``--window``) or typed:
a person's caption already in the photo is what the photo says and is shown as it is; otherwise the model
captions the photo now. Nothing is written unless asked (the window's "Write into the photo").
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.arguments import HelpFormatter, UsageError, add_high_contrast_argument, photos_only

if TYPE_CHECKING:
    from desktop_app.captioning.captioner import Captioner, CaptionResult

EXIT_OK, EXIT_SOME_FAILED = 0, 1  # desktop_app.cli's codes; bad arguments (UsageError) are its 2
# speech-dispatcher (the desktop's service, which the screen reader shares), else espeak-ng. spd-say hands the text
# to the daemon and returns (with --wait it hangs where there is no audio device); espeak-ng speaks, then returns.
SPEECH_COMMANDS = ("spd-say", "espeak-ng")
NO_SPEECH = ("cannot speak: no speech service found (neither spd-say nor espeak-ng); "
             "install one: sudo apt install speech-dispatcher")


class ModelOnce:
    """The model, opened the first time a photo needs it: a person's caption is shown without loading it,
    and several photos (or the window's worker threads) share one copy."""

    def __init__(self, model: Path | None = None, provider: str = "auto"):
        self.model, self.provider = model, provider
        self._lock = threading.Lock()
        self._captioner: Captioner | None = None

    def __call__(self) -> Captioner:
        with self._lock:
            if self._captioner is None:
                from desktop_app.captioning.captioner import Captioner

                self._captioner = Captioner.open(self.model, provider=self.provider)
            return self._captioner


@dataclass
class Description:
    """What describe says of one photo. ``result`` is the model's when it captioned the photo now
    (the same result ``photocaption caption`` writes); a person's caption has none."""

    photo: Path
    caption: str = ""
    by_person: bool = False
    model_id: str = ""
    keywords: list[str] = field(default_factory=list)
    result: CaptionResult | None = None
    stored_in: list[str] = field(default_factory=list)  # the places already holding this very caption
    held: str = ""  # a different machine caption the photo holds (an earlier run's), shown, not lost
    problem: str = ""  # why the photo could not be described

    @property
    def written_by(self) -> str:
        return "a person" if self.by_person else f"the model {self.model_id}".strip()

    @property
    def confidence(self) -> str:
        """How sure the caption is, in words a listener can weigh."""
        if self.by_person:
            return "a person wrote it"
        r = self.result
        percent = "" if r is None or r.confidence is None else \
            f" (confidence {r.confidence:.0%})" if r.confidence >= 0.005 else " (confidence under 1%)"
        if r is not None and r.needs_review:
            return f"the model is not sure of it{percent}; a person should check it"
        return f"the model is fairly sure of it{percent}" if percent else "the model cannot say how sure it is"

    @property
    def stored(self) -> str:
        if self.stored_in:
            return ", ".join(self.stored_in)
        return "not in the photo yet" + (f" (it holds an earlier machine caption: {self.held!r})" if self.held else "")

    def as_text(self) -> str:
        if self.problem:
            return f"{self.photo}: {self.problem}"
        return (f"{self.photo}\n  caption:    {self.caption}\n  written by: {self.written_by}\n"
                f"  keywords:   {', '.join(self.keywords) or 'none'}\n  confidence: {self.confidence}\n"
                f"  stored in:  {self.stored}")

    def spoken(self) -> str:
        """Shorter than :meth:`as_text`: what a listener needs, in the order they need it."""
        if self.problem:
            return f"{self.photo.name}: {self.problem}."
        keywords = f" Keywords: {', '.join(self.keywords)}." if self.keywords else ""
        return f"{self.photo.name}: {self.caption} Written by {self.written_by}; {self.confidence}.{keywords}"

    def as_json(self) -> dict:
        """The ``--jsonl`` line's shape (``result_fields``), plus who wrote it and where it is stored."""
        from desktop_app.captioning.captioner import result_fields

        fields = result_fields(self.result)
        if self.by_person:
            fields.update(caption=self.caption, keywords=self.keywords)
        return {"path": str(self.photo), "status": "failed" if self.problem else "described", "message": self.problem,
                "written_by": "" if self.problem else "person" if self.by_person else "model", "model": self.model_id,
                "stored_in": self.stored_in, "confidence_words": "" if self.problem else self.confidence, **fields}


def describe_photo(photo: Path, model: ModelOnce, sidecar_naming: str = "ext") -> Description:
    """One photo, read the way ``photocaption show`` reads it; the model runs only when no person's caption is there.
    Never raises for a bad photo: the reason is in ``problem``."""
    from desktop_app.captioning.decode import DecodeOptions
    from desktop_app.cli import why_unreadable
    from desktop_app.metadata.policy import same_text
    from desktop_app.metadata.store import MetadataError, read_caption
    from desktop_app.photos.discover import READABLE, is_photo
    from desktop_app.photos.pixels import PhotoError

    photo = Path(photo)
    if not is_photo(photo):
        return Description(photo, problem="not a photo (by its name; photocaption reads "
                                          f"{', '.join(sorted(READABLE))} and camera RAW)")
    try:
        record = read_caption(photo, sidecar_naming)
        unreadable = why_unreadable(photo)
    except (MetadataError, OSError) as exc:
        reason = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Description(photo, problem=f"cannot read its caption: {reason}")
    if unreadable:
        return Description(photo, problem=f"cannot read it: {unreadable}")
    if record is not None and record.written_by_person:
        return Description(photo, record.text, True, keywords=list(record.keywords), stored_in=record.person_places)
    captioner = model()
    try:  # photocaption caption's decode settings, so both give a photo the same caption
        result = captioner.caption_paths([photo], DecodeOptions())[0]
    except (PhotoError, OSError, ValueError) as exc:
        return Description(photo, problem=f"cannot read it: {exc}")
    held = record is not None and same_text(record.text, result.text)
    return Description(photo, result.text, False, captioner.model_id, list(result.keywords), result,
                       stored_in=record.places if held else [], held=record.text if record and not held else "")


def speak(text: str) -> str:
    """Say ``text`` through the desktop's speech service; the reason in words when it cannot, else ""."""
    for name in SPEECH_COMMANDS:
        program = shutil.which(name)
        if program:
            try:
                run = subprocess.run([program, "--", text], capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"cannot speak: {name} failed ({exc})"
            return "" if run.returncode == 0 else f"cannot speak: {name} failed ({run.stderr.strip() or run.returncode})"
    return NO_SPEECH


def cmd_describe(args: argparse.Namespace) -> int:
    photos_only(args.photos, "describe", "photocaption caption FOLDER captions a folder")
    if args.window and (args.json or args.speak):
        raise UsageError("--window shows the photos in a window; --json and --speak are for the terminal")
    if args.high_contrast is not None and not args.window:
        raise UsageError("--high-contrast is for --window (the terminal keeps its own colours)")
    model = ModelOnce(args.model, args.provider)
    if args.window:
        from desktop_app.gui.describe_window import run_window

        return run_window(args.photos, model, args.sidecar_naming, high_contrast=args.high_contrast)
    described = []
    for photo in args.photos:
        d = describe_photo(photo, model, args.sidecar_naming)
        described.append(d)
        if args.json:
            print(json.dumps(d.as_json()), flush=True)
        else:
            print(d.as_text(), file=sys.stderr if d.problem else sys.stdout, flush=True)
    status = EXIT_SOME_FAILED if any(d.problem for d in described) else EXIT_OK
    if args.speak:
        problem = speak(" ".join(d.spoken() for d in described))
        if problem:
            print(problem, file=sys.stderr)
            status = EXIT_SOME_FAILED
    return status


def add_describe_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("describe", help="say what a photo shows (its caption, or the model's), for alt text",
                       description="Print each photo's caption, who wrote it, its keywords, how sure it is and "
                                   "where it is stored. A person's caption is shown as it is; otherwise the model "
                                   "captions the photo now. Nothing is written. Exit status: 0 all described, "
                                   "1 some photos could not be read (or not spoken), 2 bad arguments.",
                       formatter_class=HelpFormatter)
    d.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    d.add_argument("--speak", action="store_true",
                   help="also say it through the desktop's speech service (spd-say, else espeak-ng)")
    d.add_argument("--json", action="store_true", help="one JSON object per photo (the caption --jsonl fields)")
    d.add_argument("--window", action="store_true",
                   help="show it in a small accessible window: copy it, write it into the photo, edit it in the app")
    add_high_contrast_argument(d)
    d.add_argument("--sidecar-naming", choices=["ext", "stem"], default="ext", help="ext: photo.jpg.xmp; stem: photo.xmp")
    d.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    d.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto",
                   help="where the model runs: auto = the GPU (CUDA) when it really works, else the CPU")
    d.set_defaults(run=cmd_describe)
