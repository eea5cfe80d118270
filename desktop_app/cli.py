"""``photocaption``: caption folders, search captions, show a photo's caption; ``gui`` opens the app."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

# Only light modules here: the model's (numpy, onnxruntime, Pillow) load inside main(), where a
# Ctrl-C during start-up is caught and answered "cancelled" instead of a traceback.
from desktop_app.arguments import (HelpFormatter, UsageError, add_decode_arguments, add_high_contrast_argument,
                                   add_index_arguments, add_write_arguments, decode_options, existing, folders,
                                   photos_only, whole_number, writable_file, write_options)
from desktop_app.cluster.cli import add_cluster_parser
from desktop_app.describe import add_describe_parser
from desktop_app.library import terms
from desktop_app.serve.cli import add_serve_parser

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 2, 130
PROVIDER_HELP = "where the model runs: auto = the GPU (CUDA) when it really works, else the CPU"


class ProgressLine:
    """One self-rewriting line on stderr: bar, done/total, photos captioned per second, ETA (only on a terminal).

    Result lines go through :meth:`above`, which clears the bar first and draws it again after,
    so on a terminal the captions scroll above the bar instead of being hidden."""

    def __init__(self, enabled: bool, captioned: dict[str, int]):
        self.enabled, self.last, self.drawn, self.counts = enabled, 0.0, "", captioned

    def __call__(self, progress) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and progress.done < progress.total):
            return
        self.last = now
        width = 30
        filled = int(width * progress.done / max(progress.total, 1))
        eta = "--:--" if progress.eta == float("inf") else time.strftime("%M:%S", time.gmtime(progress.eta))
        rate = self.counts["captioned"] / progress.elapsed if progress.elapsed > 0 else 0.0
        self.drawn = (f"\r[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total} "
                      f"{rate:5.1f} photos/s  ETA {eta} ")
        sys.stderr.write(self.drawn)
        sys.stderr.flush()

    def above(self, line: str) -> None:
        """Print a result line on stdout above the progress line."""
        if self.enabled and self.drawn:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
        print(line, flush=self.enabled)
        if self.enabled and self.drawn:
            sys.stderr.write(self.drawn)
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled and self.drawn:
            sys.stderr.write("\n")


def open_index(path: Path | None):
    from desktop_app.library.index import LibraryIndex, default_index_path

    index = LibraryIndex(path or default_index_path())
    if index.notice:  # a damaged index was moved aside and a new one made
        print(f"photocaption: {index.notice}", file=sys.stderr)
    return index


def cmd_caption(args: argparse.Namespace) -> int:
    from desktop_app.captioning.captioner import Captioner, result_fields
    from desktop_app.captioning.pipeline import CAPTIONED, FAILED, SKIPPED, PipelineOptions, caption_photos
    from desktop_app.library.keep import index_photo, machine_details, machine_record, sweep_temp_files, write_and_index

    existing(args.paths)
    writable_file(args.jsonl, "--jsonl")
    writable_file(args.index, "--index")
    paths = _photos_to_caption(args.paths, args.recursive)
    captioner = Captioner.open(args.model, provider=args.provider, threads=args.threads)
    write = "none" if args.dry_run else args.write
    if write != "none":
        sweep_temp_files(paths)
    print(f"model {captioner.model_id} on {captioner.provider}; {len(paths)} photos; "
          f"writing: {write if write != 'none' else 'nothing'}", file=sys.stderr)
    options = PipelineOptions(
        decode=decode_options(args),
        batch_size=args.batch_size, decode_workers=args.decode_workers, recaption=args.recaption or args.dry_run,
        protect_person_captions=not args.overwrite, sidecar_naming=args.sidecar_naming)
    writing = write_options(args, write)
    index = None if args.dry_run or args.no_index else open_index(args.index)
    jsonl = open(args.jsonl, "a", encoding="utf-8") if args.jsonl else None
    counts = {CAPTIONED: 0, SKIPPED: 0, FAILED: 0}
    skip_reasons: dict[str, int] = {}
    review = 0
    problems: list[str] = []
    progress = ProgressLine(sys.stderr.isatty() and not args.quiet, counts)

    def on_outcome(outcome) -> None:
        nonlocal review
        status, message, places = outcome.status, outcome.message, []
        if status == CAPTIONED and write != "none":  # written, read back and indexed as the app's writers do
            report = write_and_index(outcome.path, machine_record(outcome.result, captioner.model_id), writing,
                                     index)
            places, message = report.places, report.error or report.skipped or "; ".join(report.warnings)
            status = FAILED if report.error else CAPTIONED if report.places else SKIPPED
        counts[status] += 1
        if status == SKIPPED:
            skip_reasons[message] = skip_reasons.get(message, 0) + 1
        if status == FAILED or (message and not args.quiet):
            problems.append(f"{status}: {outcome.path}: {message}")
        if index is not None and outcome.path.is_file():
            try:
                if not places:  # what the photo holds; a written one was indexed as it was read back
                    index_photo(index, outcome.path, args.sidecar_naming)
                if status == CAPTIONED:  # confidence and needs-review, for the GUI
                    index.save_details({outcome.path: machine_details(outcome.result, captioner.model_id)})
            except Exception as exc:  # the photo stays out of the library; said unless its failure is said above
                if outcome.status != FAILED:
                    problems.append(f"not indexed: {outcome.path}: {exc}")
        if status == CAPTIONED and outcome.result:
            review += outcome.result.needs_review
            if not args.quiet:
                progress.above(f"{outcome.path}\t{outcome.result.text}"
                               + ("\tneeds review" if outcome.result.needs_review else ""))
        if jsonl:
            jsonl.write(json.dumps({"path": str(outcome.path), "status": status, "message": message,
                                    "written_to": places, **result_fields(outcome.result)}) + "\n")

    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    start = time.perf_counter()
    try:
        caption_photos(paths, captioner, options, on_outcome, progress, cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.finish()
        if jsonl:
            jsonl.close()
    seconds = time.perf_counter() - start
    summary = summary_line(counts[CAPTIONED], counts[SKIPPED], counts[FAILED], len(paths), seconds, cancel.is_set())
    for line in [*problems, summary, *_closing_lines(review, counts[CAPTIONED], skip_reasons)]:
        print(line, file=sys.stderr)
    if cancel.is_set():
        return EXIT_CANCELLED
    return EXIT_SOME_FAILED if counts[FAILED] else EXIT_OK


def _photos_to_caption(paths: list[Path], recursive: bool) -> list[Path]:
    """The photos under ``paths``; none is a usage error that says where sub-folders were left out."""
    from desktop_app.photos.discover import find_photos

    photos = list(find_photos(paths, recursive))
    if not photos:
        nested = not recursive and any(p.is_dir() and any(c.is_dir() for c in p.iterdir()) for p in paths)
        raise UsageError("no photos in " + ", ".join(map(str, paths))
                         + (" (its sub-folders are read with -r)" if nested else ""))
    return photos


def _closing_lines(review: int, captioned: int, skip_reasons: dict[str, int]) -> list[str]:
    """What a run says below its summary line: how many captions a person should check, why photos were skipped."""
    lines = []
    if review:
        lines.append(f"needs review: {review} of the {captioned} captions (the model is not sure of them)")
    if skip_reasons:
        lines.append("why skipped: " + "; ".join(f"{n} {reason}" for reason, n in skip_reasons.items()))
    return lines


def summary_line(captioned: int, skipped: int, failed: int, total: int, seconds: float, cancelled: bool) -> str:
    """The run in one line; its rate counts only photos the model captioned (skipping one takes no model time)."""
    rate = f" ({captioned / max(seconds, 1e-9):.1f} photos/s)" if captioned else ""
    return (f"{'cancelled: ' if cancelled else ''}captioned {captioned}, skipped {skipped}, failed {failed} "
            f"of {total} photos in {seconds:.1f}s{rate}")


def cmd_search(args: argparse.Namespace) -> int:
    folders(args.scan or [])
    writable_file(args.index, "--index")
    index = open_index(args.index)
    if args.scan:
        index.scan(args.scan, recursive=True)
    query = " ".join(args.query)
    hits = index.search(query, limit=args.limit)
    asked = terms.parse(query)
    for hit in hits:
        why = terms.matches(asked, hit.caption, hit.keywords)
        print(json.dumps({"path": str(hit.path), "caption": hit.caption, "source": hit.source,
                          "matched": [vars(m) for m in why]})
              if args.json else f"{hit.path}\t{hit.caption}\tmatched: " + "; ".join(map(str, why)))
    if not hits:
        print("no matches", file=sys.stderr)
    return EXIT_OK if hits else EXIT_SOME_FAILED


def cmd_scan(args: argparse.Namespace) -> int:
    folders(args.folders)
    writable_file(args.index, "--index")
    index = open_index(args.index)
    read = index.scan(args.folders, recursive=not args.no_recursive)
    print(f"indexed {read} new or changed photos; {len(index)} in the library ({index.path})")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    photos_only(args.photos, "show",
                "photocaption scan FOLDER indexes a folder's captions and photocaption search finds them")
    from desktop_app.library.index import default_index_path
    from desktop_app.metadata.store import MetadataError, read_caption
    from desktop_app.photos.discover import READABLE, is_photo

    index_path = args.index or default_index_path()
    index = open_index(index_path) if index_path.is_file() else None  # needs-review marks live in the index
    status = EXIT_OK
    for photo in args.photos:
        if not is_photo(photo):
            print(f"{photo}: not a photo (by its name; photocaption reads {', '.join(sorted(READABLE))} and camera RAW)",
                  file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        try:
            record = read_caption(photo, args.sidecar_naming)
        except (MetadataError, OSError) as exc:
            reason = exc.strerror.lower() if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"{photo}: cannot read its caption: {reason}", file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        unreadable = why_unreadable(photo)
        if unreadable:
            print(f"{photo}: cannot read it: {unreadable}", file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        if record is None:
            print(f"{photo}: no caption")
            continue
        who = "person" if record.written_by_person else ("model " + record.model_id if record.model_id else "unknown")
        details = None if record.written_by_person or index is None else index.details_of(photo)
        review = details is not None and details.text == record.text and details.needs_review
        print(f"{photo}\n  caption:  {record.text}\n  written by: {who}\n  stored in: {', '.join(record.places)}"
              + (f"\n  keywords: {', '.join(record.keywords)}" if record.keywords else "")
              + (f"\n  needs review: the model is not sure of it (confidence {details.confidence:.0%})"
                 if review else ""))
    return status


def why_unreadable(photo: Path) -> str | None:
    """Why a photo's pixels cannot be read (None: they can): a caption, or none, says nothing of that.
    Only the header is read (the RAW reader reads its preview), so showing many photos stays quick."""
    from desktop_app.photos.formats import RAW_EXTENSIONS, RefusedFormat, open_image
    from desktop_app.photos.pixels import PhotoError, load_raw_preview

    if photo.stat().st_size == 0:
        return "the file is empty (0 bytes)"
    try:
        if photo.suffix.lower() in RAW_EXTENSIONS:
            load_raw_preview(photo)
        else:
            with open_image(photo):
                pass
    except (PhotoError, RefusedFormat) as exc:
        return str(exc)
    except (OSError, ValueError, SyntaxError):
        return "not an image photocaption can read (unsupported format or corrupt file)"
    return None


def cmd_gui(args: argparse.Namespace) -> int:
    from desktop_app.gui.app import run_app

    existing([args.path] if args.path else [])
    return run_app(args.path, model=args.model, high_contrast=args.high_contrast)


def build_parser() -> argparse.ArgumentParser:
    from desktop_app.captioning.pipeline import PipelineOptions

    parser = argparse.ArgumentParser(prog="photocaption", description="Offline captions for photos, written into "
                                     "their EXIF/XMP metadata, and searchable.",
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("caption", help="caption photos and write the captions into their metadata",
                       formatter_class=HelpFormatter)
    c.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="photos or folders")
    c.add_argument("-r", "--recursive", action="store_true", help="include sub-folders")
    add_write_arguments(c)
    c.add_argument("--recaption", action="store_true", help="caption again photos this model already captioned")
    add_decode_arguments(c)
    c.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto", help=PROVIDER_HELP)
    c.add_argument("--threads", type=whole_number(0), default=0, help="model threads (0 = one per core)")
    c.add_argument("--batch-size", type=whole_number(1), default=PipelineOptions.batch_size,
                   help="photos per model batch")
    c.add_argument("--decode-workers", type=whole_number(1), default=2, help="threads decoding photos")
    c.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    c.add_argument("--jsonl", type=Path, help="also append one JSON line per photo to this file")
    c.add_argument("--dry-run", action="store_true", help="caption and print; write nothing")
    add_index_arguments(c)
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-photo lines")
    c.set_defaults(run=cmd_caption)

    s = sub.add_parser("search", help="find photos by words in their captions", formatter_class=HelpFormatter)
    s.add_argument("query", nargs="+", metavar="WORD")
    s.add_argument("--index", type=Path, help="library index file (default: per-user data folder)")
    s.add_argument("--scan", type=Path, action="append", metavar="FOLDER", help="index this folder first")
    s.add_argument("--limit", type=whole_number(1), default=50, help="most photos listed")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(run=cmd_search)

    i = sub.add_parser("scan", help="index the captions already in a folder's photos", formatter_class=HelpFormatter)
    i.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    i.add_argument("--index", type=Path, help="library index file (default: per-user data folder)")
    i.add_argument("--no-recursive", action="store_true", help="leave sub-folders out")
    i.set_defaults(run=cmd_scan)

    w = sub.add_parser("show", help="a photo's caption and where it is stored", formatter_class=HelpFormatter)
    w.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    w.add_argument("--sidecar-naming", choices=["ext", "stem"], default="ext", help="ext: photo.jpg.xmp; stem: photo.xmp")
    w.add_argument("--index", type=Path, help="library index file, for the model's needs-review marks "
                   "(default: per-user data folder)")
    w.set_defaults(run=cmd_show)

    g = sub.add_parser("gui", help="open the desktop app", formatter_class=HelpFormatter)
    g.add_argument("path", nargs="?", type=Path, metavar="FOLDER", help="folder to open (default: the last one)")
    g.add_argument("--model", type=Path, help="model bundle folder")
    add_high_contrast_argument(g)
    g.set_defaults(run=cmd_gui)

    add_serve_parser(sub)  # photocaption serve: desktop_app/serve/
    add_cluster_parser(sub)  # photocaption cluster: desktop_app/cluster/ (the cluster extra)
    add_describe_parser(sub)  # photocaption describe: desktop_app/describe.py
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A Ctrl-C while it starts (imports, model loading) ends it at once as "cancelled",
    status 130: a KeyboardInterrupt there would land inside an import and print a traceback, or hang."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _cancelled_while_starting) if in_main_thread else None
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("photocaption: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)


def _cancelled_while_starting(*_) -> None:
    """Nothing is written before a command starts its work, so leaving at once loses nothing."""
    os.write(sys.stderr.fileno(), b"photocaption: cancelled\n")
    os._exit(EXIT_CANCELLED)


def _run(argv: list[str] | None) -> int:
    from desktop_app.bundle.format import BundleError
    from desktop_app.captioning.runtime import ProviderError

    args = build_parser().parse_args(argv)
    if args.run is not cmd_caption:  # caption keeps the quick exit through model loading, then stops between batches
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"photocaption {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `photocaption show ... | head`: the reader has gone; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (BundleError, ProviderError) as exc:
        print(f"photocaption {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
