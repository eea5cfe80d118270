"""``python -m model_export``: prepare data, train, evaluate, export a bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_export.data.captions import DataError

DEFAULT_FLICKR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "flickr8k"


def _prepare(args: argparse.Namespace) -> None:
    from model_export.data import captions as c
    from model_export.data.prepare import cache_features, write_prepared

    if args.karpathy:
        caps, splits = c.read_karpathy_json(args.karpathy)
        caption_set = c.assemble(args.images or c.find_image_dir(args.karpathy.parent), caps, splits)
        source = str(args.karpathy)
    elif args.coco:
        caps, splits = {}, {}
        for item in args.coco:
            split, _, path = item.partition("=")
            if split not in c.SPLITS or not path:
                raise DataError(f"--coco {item!r}: expected SPLIT=FILE with SPLIT one of {', '.join(c.SPLITS)}")
            split_caps, names = c.read_coco_json(Path(path))
            caps.update(split_caps)
            splits[split] = names
        if not args.images:
            raise DataError("--coco needs --images DIR")
        caption_set = c.assemble(args.images, caps, splits)
        source = ", ".join(args.coco)
    elif args.reference_folder:
        caption_set = c.load_reference_folder(args.reference_folder)
        source = f"{args.reference_folder.name} (train = extra.txt, test = dev.txt)"
    else:
        caption_set = c.load_flickr_folder(args.data)
        source = f"Flickr8k ({args.data.name})"
    for warning in caption_set.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    data = write_prepared(caption_set, args.out, args.encoder, args.min_count, source)
    sizes = ", ".join(f"{s} {len(v)}" for s, v in data.splits.items())
    print(f"{len(data.images)} photos ({sizes}); vocabulary {len(data.vocabulary)} words (min count {args.min_count})")
    if not args.no_features:
        path = cache_features(data, batch_size=args.batch_size, workers=args.workers, device=args.device)
        print(f"features cached in {path}")


def _train(args: argparse.Namespace) -> None:
    from model_export.train import TrainConfig, train

    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__})
    train(config)


def _scst(args: argparse.Namespace) -> None:
    from model_export.scst import ScstConfig, scst

    scst(ScstConfig(**{k: v for k, v in vars(args).items() if k in ScstConfig.__dataclass_fields__}))


def _evaluate(args: argparse.Namespace) -> None:
    from model_export.evaluate import evaluate_bundle, evaluate_checkpoint

    if bool(args.checkpoint) == bool(args.bundle):
        raise DataError("give exactly one of --checkpoint or --bundle")
    if args.checkpoint:
        evaluate_checkpoint(args.checkpoint, args.data, args.split, args.beam, args.out, args.limit,
                            attention_figure=not args.no_figure, no_repeat_ngram=args.no_repeat_ngram)
    else:
        evaluate_bundle(args.bundle, args.data, args.split, args.beam, args.out, args.limit, record=args.record,
                        no_repeat_ngram=args.no_repeat_ngram)


def _export(args: argparse.Namespace) -> None:
    from model_export.export import export_bundle

    export_bundle(args.checkpoint, args.out, data_dir=args.data, int8=args.int8,
                  calibration_photos=args.calibration_photos, int8_decoder=args.int8_decoder)


def _recover(args: argparse.Namespace) -> None:
    import json

    import numpy as np

    from model_export.recover import recover_checkpoint

    if args.data:  # the cached features of the first test photos
        from model_export.data.prepare import PreparedData

        data = PreparedData.load(args.data)
        features = np.asarray(data.features()[data.splits["test"][: args.photos]], np.float32)
    else:  # the bundle's own encoder on the sample photos
        from desktop_app.captioning.captioner import Captioner
        from desktop_app.photos.pixels import load_pixels
        from desktop_app.resources import DEFAULT_BUNDLE

        captioner = Captioner.open(args.bundle, provider="cpu")
        photos = sorted(p for p in (DEFAULT_BUNDLE.parents[1] / "samples").iterdir() if p.suffix in (".jpg", ".png"))
        features = captioner.encode(np.stack([load_pixels(p, captioner.preprocessing) for p in photos]))
    parity = recover_checkpoint(args.bundle, args.out, features, dropout=args.dropout)
    print(json.dumps({"parity": parity}, indent=2))
    print(f"checkpoint written to {args.out}")


def _upgrade(args: argparse.Namespace) -> None:
    from model_export.ranking import upgrade_bundle

    upgrade_bundle(args.bundle)
    print(f"{args.bundle}: now bundle format 3 (the step graph ranks the words; same captions, same model id)")


def _int8_decoder(args: argparse.Namespace) -> None:
    from model_export.quantize import int8_decoder_bundle

    int8_decoder_bundle(args.bundle, args.out)
    print(f"bundle with an int8 decoder step written to {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m model_export",
        description="Train a Show-Attend-Tell captioner and export it as a photocaption model bundle.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="read captions and splits, build the vocabulary, cache encoder features",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_FLICKR, help="Flickr8k folder (captions.txt or Flickr8k.token.txt, split files, Images/)")
    p.add_argument("--karpathy", type=Path, help="Karpathy dataset_*.json instead of a Flickr8k folder")
    p.add_argument("--coco", action="append", metavar="SPLIT=FILE", help="COCO-style caption json for a split (repeat for train, val, test)")
    p.add_argument("--reference-folder", type=Path,
                   help="a folder with references.json, dev.txt (-> test split), extra.txt (-> train split), images/ "
                        "(e.g. ../shared/datasets/coco-val2017-public)")
    p.add_argument("--images", type=Path, help="photo folder for --karpathy/--coco")
    p.add_argument("--out", type=Path, required=True, help="folder for the prepared data and feature cache")
    p.add_argument("--encoder", choices=["lite0", "lite1", "lite2"], default="lite0")
    p.add_argument("--min-count", type=int, default=5, help="keep words seen at least this often in train captions")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="photo-decoding worker processes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-features", action="store_true", help="skip the feature cache (for fine-tuning the encoder)")
    p.set_defaults(run=_prepare)

    t = sub.add_parser("train", help="train the decoder on a prepared dataset (torchrun for several GPUs)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--data", type=Path, required=True, help="folder written by 'prepare'")
    t.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, log.csv, curves.png")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=20, help="photos per batch (each with all its captions)")
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--embed-dim", type=int, default=256)
    t.add_argument("--hidden-dim", type=int, default=512)
    t.add_argument("--attention-dim", type=int, default=256)
    t.add_argument("--memory-dim", type=int, default=512)
    t.add_argument("--dropout", type=float, default=0.5)
    t.add_argument("--alpha-c", type=float, default=1.0, help="doubly stochastic attention regularisation weight")
    t.add_argument("--grad-clip", type=float, default=5.0)
    t.add_argument("--patience", type=int, default=4, help="stop after this many epochs without a better val CIDEr-D")
    t.add_argument("--fine-tune-blocks", type=int, default=0, help="train the encoder's last N stages on raw photos (slow on CPU)")
    t.add_argument("--encoder-lr", type=float, default=1e-4)
    t.add_argument("--val-limit", type=int, default=0, help="score only this many val photos per epoch (0 = all)")
    t.add_argument("--max-length", type=int, default=30)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.set_defaults(run=_train)

    s = sub.add_parser("scst", help="self-critical training: fine-tune a checkpoint for CIDEr-D on cached features",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--checkpoint", type=Path, required=True, help="the cross-entropy checkpoint to start from")
    s.add_argument("--data", type=Path, required=True, help="folder written by 'prepare' (same vocabulary)")
    s.add_argument("--out", type=Path, required=True, help="run folder: last.pt, best.pt, log.csv, curves.png")
    s.add_argument("--samples", type=int, default=5, help="captions sampled per photo (baseline: mean of the others)")
    s.add_argument("--batch-size", type=int, default=10, help="photos per step")
    s.add_argument("--lr", type=float, default=5e-5)
    s.add_argument("--lr-decay", type=float, default=1.0, help="multiply the learning rate by this every --lr-decay-every steps")
    s.add_argument("--lr-decay-every", type=int, default=0, help="steps between learning-rate decays (0 = constant)")
    s.add_argument("--max-length", type=int, default=16, help="words per sampled caption")
    s.add_argument("--grad-clip", type=float, default=1.0)
    s.add_argument("--max-steps", type=int, default=6000)
    s.add_argument("--checkpoint-every", type=int, default=50, help="steps between last.pt writes and log rows")
    s.add_argument("--eval-every", type=int, default=200, help="steps between val checks (a multiple of --checkpoint-every)")
    s.add_argument("--val-limit", type=int, default=0, help="score only this many val photos per check (0 = all)")
    s.add_argument("--val-beam", type=int, default=1, help="beam width of the val check (1 = greedy)")
    s.add_argument("--patience", type=int, default=4, help="stop after this many checks without a better val CIDEr-D")
    s.add_argument("--extra-data", type=Path,
                   help="another prepared folder (same encoder) whose train split joins the training photos, e.g. "
                        "COCO extra.txt from 'prepare --reference-folder'; its test split is never read")
    s.add_argument("--extra-repeat", type=int, default=1, help="times each --extra-data photo comes up per epoch")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (0 = torch default); on a shared CPU 1 thread ran 10x faster than 2")
    s.add_argument("--resume", action="store_true", help="continue exactly from OUT/last.pt")
    s.set_defaults(run=_scst)

    e = sub.add_parser("evaluate", help="caption a split with greedy/beam search and score it with pycocoevalcap",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("--checkpoint", type=Path, help="a training checkpoint (best.pt)")
    e.add_argument("--bundle", type=Path, help="an exported model bundle, run through the app's NumPy decode loop")
    e.add_argument("--data", type=Path, required=True, help="folder written by 'prepare'")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--beam", type=int, default=3, help="beam width (1 = greedy)")
    e.add_argument("--no-repeat-ngram", type=int, default=0,
                   help="forbid repeating n-grams of this size, as the app does with 3 (0 = plain beam search)")
    e.add_argument("--limit", type=int, default=0, help="only the first N photos (0 = all)")
    e.add_argument("--record", action="store_true",
                   help="with --bundle: write the scores into the bundle's manifest (test_scores)")
    e.add_argument("--no-figure", action="store_true", help="skip the attention-map figure")
    e.add_argument("--out", type=Path, required=True, help="report.json, samples and attention figure go here")
    e.set_defaults(run=_evaluate)

    x = sub.add_parser("export", help="export a checkpoint as an ONNX model bundle and check parity",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    x.add_argument("--checkpoint", type=Path, required=True)
    x.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    x.add_argument("--data", type=Path, help="prepared data: real photos for parity and int8 calibration")
    x.add_argument("--int8", action="store_true", help="static QDQ per-channel int8 encoder")
    x.add_argument("--calibration-photos", type=int, default=200)
    x.add_argument("--int8-decoder", action="store_true", help="dynamic int8 decoder step (int8 weights)")
    x.set_defaults(run=_export)

    r = sub.add_parser("recover", help="rebuild a training checkpoint from a bundle's decoder graphs (no retraining)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--bundle", type=Path, required=True, help="an exported model bundle")
    r.add_argument("--out", type=Path, required=True, help="checkpoint to write (e.g. runs/xe/best.pt)")
    r.add_argument("--data", type=Path, help="prepared data: check parity on cached test features (else sample photos)")
    r.add_argument("--photos", type=int, default=16, help="photos for the parity check")
    r.add_argument("--dropout", type=float, default=0.5, help="dropout to train with after recovery (not in the graphs)")
    r.set_defaults(run=_recover)

    u = sub.add_parser("upgrade", help="rewrite a format-1/2 bundle as format 3 in place (TopK in the step graph)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    u.add_argument("--bundle", type=Path, required=True, help="the bundle folder to rewrite")
    u.set_defaults(run=_upgrade)

    q = sub.add_parser("int8-decoder", help="copy a bundle with a dynamic int8 decoder step (to measure or ship)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("--bundle", type=Path, required=True, help="the fp32 bundle")
    q.add_argument("--out", type=Path, required=True, help="bundle folder to write (must not exist)")
    q.set_defaults(run=_int8_decoder)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
