"""``photocaption cluster caption`` and ``cluster write``: their arguments, and each run with its summary in words."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from desktop_app.arguments import (HelpFormatter, UsageError, add_decode_arguments, add_index_arguments,
                                   add_write_arguments, decode_options, existing, whole_number, writable_file,
                                   write_options)

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 2, 130  # as desktop_app.cli's
INSTALL_HINT = 'install the cluster extra: pip install -e ".[cluster]"'


def add_cluster_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``cluster caption`` and ``cluster write`` on photocaption's subcommands."""
    cluster = sub.add_parser("cluster", help="caption many photos on a Ray cluster (or a local Ray) into Parquet",
                             formatter_class=HelpFormatter)
    jobs = cluster.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    c = jobs.add_parser("caption", help="caption photos into Parquet parts under --out; a rerun resumes",
                        formatter_class=HelpFormatter)
    c.add_argument("paths", nargs="+", metavar="SOURCE",
                   help="photos or folders, on storage every node reads, or URIs pyarrow reads (s3://bucket/folder, "
                   "gs://..., file://...; all on one file system)")
    c.add_argument("--out", required=True,
                   help="results folder (Parquet parts), a local path or a URI; the same folder resumes")
    c.add_argument("--address", help="a running Ray cluster (ray://HOST:10001, HOST:6379 or auto); "
                   "default: start a local Ray for this run")
    c.add_argument("-r", "--recursive", action="store_true", help="include sub-folders")
    c.add_argument("--retry-failed", action="store_true", help="caption again the photos that failed before")
    add_decode_arguments(c)
    c.add_argument("--batch-size", type=whole_number(1), default=32, help="photos per model batch")
    c.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto",
                   help="where the model runs: auto = the GPU (CUDA) when it really works, else the CPU")
    c.add_argument("--threads", type=whole_number(0), default=0,
                   help="model threads per batch in an actor (0 = half its CPUs: it runs two batches at once)")
    c.add_argument("--actors", type=whole_number(0), default=0,
                   help="caption actors (0 = one per GPU, else from the CPUs left after reading)")
    c.add_argument("--read-cpus", type=whole_number(0), default=0,
                   help="CPUs kept for reading and decoding photos (0 = a quarter of the cluster's, at least 1)")
    c.add_argument("--model", type=Path,
                   help="model bundle folder, at this path on every node (default: the bundled model)")
    c.add_argument("--rows-per-part", type=whole_number(1), default=1000,
                   help="photos per Parquet part (a part is also written every 30 s); a killed run loses at most one")
    c.set_defaults(run=cmd_cluster_caption)
    w = jobs.add_parser("write", help="write a results folder's captions into the photos and the library index "
                        "(here, in one process)", formatter_class=HelpFormatter)
    w.add_argument("results", type=Path, metavar="RESULTS_DIR", help="the --out folder of cluster caption")
    add_write_arguments(w)
    add_index_arguments(w)
    w.add_argument("--no-undo", action="store_true",
                   help="keep no undo journal (it keeps what a write changes: a JPEG's header, tens of KB a photo)")
    w.set_defaults(run=cmd_cluster_write)
    u = jobs.add_parser("undo", help="put the photos of the last cluster write of a results folder back as they were",
                        formatter_class=HelpFormatter)
    u.add_argument("results", type=Path, metavar="RESULTS_DIR", help="the folder cluster write wrote from")
    u.add_argument("--sidecar-naming", choices=["ext", "stem"], default="ext",
                   help="how the write named sidecars (to read the photos' captions back for the index)")
    add_index_arguments(u)
    u.set_defaults(run=cmd_cluster_undo)


def cmd_cluster_caption(args: argparse.Namespace) -> int:
    try:
        import pyarrow  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"photocaption cluster needs {(exc.name or 'ray').split('.')[0]}: {INSTALL_HINT}") from None
    from ray.exceptions import RayError

    from pyarrow.fs import FileType

    from desktop_app.cluster.job import JobOptions, PoolError, caption_on_ray
    from desktop_app.cluster.storage import kind_of, locate, same_file_system

    try:
        sources, out = [locate(p) for p in args.paths], locate(args.out)
        for text, place in zip(args.paths, sources):
            if kind_of(place) == FileType.NotFound:
                raise UsageError(f"{text} does not exist")
        if kind_of(out) == FileType.File:
            raise UsageError(f"--out {args.out} is not a folder")
    except (ValueError, OSError) as exc:  # an unknown scheme, storage that cannot be reached, no credentials
        raise UsageError(str(exc).strip().splitlines()[-1]) from None
    if not same_file_system(sources):
        raise UsageError("the SOURCEs of one run must be on one file system (local, or one URI scheme)")
    options = JobOptions(model=args.model, provider=args.provider, threads=args.threads,
                         decode=decode_options(args),
                         batch_size=args.batch_size, read_cpus=args.read_cpus, actors=args.actors,
                         retry_failed=args.retry_failed, rows_per_part=args.rows_per_part, recursive=args.recursive)

    def progress(summary) -> None:
        done = summary.captioned + summary.failed
        print(f"{done} photos ({summary.photos} found so far, {summary.already_done} done before), "
              f"{done / max(summary.seconds, 1e-9):.1f} photos/s", file=sys.stderr, flush=True)

    try:
        summary = caption_on_ray(sources, out, options, args.address, progress)
    except PoolError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP: Ray stopped, the parts written kept
        print(f"photocaption cluster: {exc or 'cancelled'}; the parts written are kept in {args.out}, "
              "the same command resumes", file=sys.stderr)
        return EXIT_CANCELLED
    except ConnectionError as exc:
        print(f"photocaption cluster: error: cannot reach the Ray cluster at {args.address}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except RayError as exc:  # e.g. an actor that could not load the model: the traceback's last line says why
        print(f"photocaption cluster: error: {why(exc)}", file=sys.stderr)
        return EXIT_ERROR
    if not summary.photos:
        raise UsageError("no photos in " + ", ".join(args.paths))
    plan = summary.plan
    if plan:
        print(f"{plan.actors} caption actors ({plan.actor_cpus:g} CPU, {plan.actor_gpus:g} GPU each), "
              f"decode tasks {plan.decode_cpus:g} CPU each", file=sys.stderr)
    ran = summary.captioned + summary.failed
    rate = f" in {summary.seconds:.1f} s, {ran / summary.seconds:.1f} photos/s" if ran and summary.seconds else ""
    print(f"captioned {summary.captioned}, failed {summary.failed}, already done {summary.already_done} "
          f"of {summary.photos} photos{rate}; results in {args.out}", file=sys.stderr)
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def why(exc: Exception) -> str:
    """A Ray error's reason: its traceback's last line that is not Ray Data's advice on retries."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith(("To change retry attempts", "Failed to apply UDF"))]
    return (reasons or lines or [type(exc).__name__])[-1]


def cmd_cluster_write(args: argparse.Namespace) -> int:
    """Write back locally: no Ray needed, only pyarrow to read the parts."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UsageError(f"photocaption cluster needs pyarrow: {INSTALL_HINT}") from None
    from desktop_app.cli import open_index
    from desktop_app.cluster.results import parts
    from desktop_app.cluster.write import write_back

    existing([args.results])
    writable_file(args.index, "--index")
    if not args.results.is_dir() or not parts(args.results):
        raise UsageError(f"{args.results} holds no results of cluster caption (part-*.parquet)")
    index = None if args.no_index else open_index(args.index)
    summary = write_back(args.results, write_options(args, args.write), index, write=args.write != "none",
                         undo=not args.no_undo)
    lines = [*(f"failed: {line}" for line in summary.failed), *(f"kept: {line}" for line in summary.kept_person),
             *(f"warning: {line}" for line in summary.warnings),
             f"written {summary.written}, kept a person's caption {len(summary.kept_person)}, "
             f"skipped {sum(summary.skipped.values())}, failed {len(summary.failed)} of {summary.rows} photos "
             f"in {args.results}"]
    if summary.needs_review:
        lines.append(f"needs review: {summary.needs_review} of the {summary.written} captions "
                     "(the model is not sure of them)")
    if summary.skipped:
        lines.append("why skipped: " + "; ".join(f"{n} {reason}" for reason, n in summary.skipped.items()))
    if summary.written and not args.no_undo:
        lines.append(f"to undo: photocaption cluster undo {args.results}")
    print("\n".join(lines), file=sys.stderr)
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def cmd_cluster_undo(args: argparse.Namespace) -> int:
    """Undo the last ``cluster write`` of a results folder, through the app's undo journal."""
    from desktop_app.cli import open_index
    from desktop_app.cluster.write import undo_write_back

    existing([args.results])
    writable_file(args.index, "--index")
    index = None if args.no_index else open_index(args.index)
    report = undo_write_back(args.results, index, args.sidecar_naming)
    if report is None:
        raise UsageError(f"{args.results} holds no cluster write to undo")
    lines = [*(f"left as it is: {path}: {why}" for path, why in report.refused),
             *(f"warning: {line}" for line in report.warnings),
             f"put back {len(report.restored)} photos, left {len(report.refused)} as they are "
             f"({report.name} undone)"]
    print("\n".join(lines), file=sys.stderr)
    return EXIT_SOME_FAILED if report.refused else EXIT_OK
