"""``evaluate``: caption a split, score it with pycocoevalcap, show samples and attention maps.

Both a training checkpoint and an exported bundle are decoded by the app's own
NumPy loop (``desktop_app.captioning.decode``), so the numbers describe the
decode the app runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from desktop_app.bundle.vocabulary import Vocabulary
from desktop_app.captioning.decode import Caption, DecodeOptions, DecoderState, beam_search
from model_export.checkpoint import load_trained
from model_export.data.prepare import PreparedData
from model_export.decoder import CaptionDecoder
from model_export.metrics import ALL_METRICS, score_captions


class TorchStepModel:
    """A PyTorch decoder seen through the decode loop's ``StepModel`` protocol."""

    def __init__(self, decoder: CaptionDecoder, device: str | torch.device = "cpu"):
        self.decoder, self.device = decoder, torch.device(device)
        self.vocab_size = decoder.config.vocab_size

    def _t(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    @torch.inference_mode()
    def init(self, features: np.ndarray) -> DecoderState:
        outputs = self.decoder.init_state(self._t(features.astype(np.float32)))
        return DecoderState(*(o.float().cpu().numpy() for o in outputs))

    @torch.inference_mode()
    def step(self, tokens: np.ndarray, state: DecoderState):
        logits, h, c, alpha = self.decoder.step(self._t(tokens), self._t(state.h), self._t(state.c),
                                                self._t(state.memory), self._t(state.keys))
        log_probs = torch.log_softmax(logits.float(), dim=1).cpu().numpy()
        return log_probs, DecoderState(state.memory, state.keys, h.float().cpu().numpy(),
                                       c.float().cpu().numpy()), alpha.float().cpu().numpy()


def caption_features(model, features: np.ndarray, vocabulary, options: DecodeOptions,
                     batch_size: int = 50, progress: str | None = None) -> list[Caption]:
    """Decode captions for rows of cached features (any StepModel), in batches."""
    options = replace(options, suppress=vocabulary.never_generated)
    captions: list[Caption] = []
    with tqdm(total=len(features), desc=progress, unit="photo", disable=progress is None) as bar:
        for start in range(0, len(features), batch_size):
            chunk = np.asarray(features[start:start + batch_size], dtype=np.float32)
            captions += beam_search(model, chunk, vocabulary.start_id, vocabulary.end_id, options)
            bar.update(len(chunk))
    return captions


def score_split(model, data: PreparedData, split: str, options: DecodeOptions,
                metrics=ALL_METRICS, limit: int = 0, features: np.ndarray | None = None,
                progress: str | None = None,
                vocabulary: Vocabulary | None = None) -> tuple[dict[str, float], dict[int, str], list[Caption]]:
    """Caption a split from the feature cache and score it. ``vocabulary``: the model's, when it is not the
    data's (a checkpoint trained on Flickr8k scored on COCO photos prepared with their own vocabulary)."""
    vocabulary = vocabulary or data.vocabulary
    indices = data.splits[split][: limit or None]
    feats = data.features() if features is None else features
    captions = caption_features(model, feats[indices], vocabulary, options, progress=progress)
    hypotheses = {i: " ".join(vocabulary.decode(c.tokens)) for i, c in zip(indices, captions)}
    references = {i: data.captions[data.images[i]] for i in indices}
    return score_captions(references, hypotheses, metrics), hypotheses, captions


def _write_report(out: Path, report: dict, data: PreparedData, hypotheses: dict[int, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report["samples"] = [
        {"image": data.images[i], "caption": hypotheses[i], "references": data.captions[data.images[i]]}
        for i in list(hypotheses)[:10]
    ]
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report["scores"], indent=2))
    for sample in report["samples"][:5]:
        print(f"  {sample['image']}: {sample['caption']}")
    print(f"report written to {out / 'report.json'}")


def evaluate_checkpoint(checkpoint: Path, data_dir: Path, split: str, beam: int, out: Path,
                        limit: int = 0, attention_figure: bool = True, no_repeat_ngram: int = 0) -> dict:
    model = load_trained(checkpoint)
    data = PreparedData.load(data_dir)
    options = DecodeOptions(beam_size=beam, no_repeat_ngram=no_repeat_ngram)
    start = time.perf_counter()
    scores, hypotheses, captions = score_split(TorchStepModel(model.decoder), data, split, options,
                                               limit=limit, progress=f"captioning {split}",
                                               vocabulary=model.vocabulary)
    report = {"checkpoint": str(checkpoint), "split": split, "beam": beam, "no_repeat_ngram": no_repeat_ngram,
              "photos": len(hypotheses),
              "seconds": round(time.perf_counter() - start, 1), "scores": scores, "checkpoint_meta": {
                  k: v for k, v in model.meta.items() if k != "config"}}
    _write_report(out, report, data, hypotheses)
    if attention_figure:
        from model_export.figures import attention_figure as draw

        first = data.splits[split][0]
        path = draw(data.image_dir / data.images[first], model.vocabulary.decode(captions[0].tokens),
                    captions[0].attention, out / "attention.png")
        print(f"attention map: {path}")
    return report


def evaluate_bundle(bundle_dir: Path, data_dir: Path, split: str, beam: int, out: Path, limit: int = 0,
                    record: bool = False, no_repeat_ngram: int = 0) -> dict:
    """Score an exported bundle end to end: photos -> onnxruntime encoder -> NumPy decode loop.

    ``record`` stores the scores in the bundle's manifest, so the shipped artefact
    carries the numbers measured on it (model files and their hashes are untouched).
    """
    from desktop_app.captioning.captioner import Captioner

    captioner = Captioner.open(bundle_dir, provider="cpu")
    data = PreparedData.load(data_dir)
    indices = data.splits[split][: limit or None]
    options = DecodeOptions(beam_size=beam, no_repeat_ngram=no_repeat_ngram)
    start = time.perf_counter()
    with tqdm(total=len(indices), desc=f"captioning {split} (bundle)", unit="photo") as bar:
        results = captioner.caption_paths([data.image_dir / data.images[i] for i in indices], options,
                                          on_batch=bar.update)
    hypotheses = {i: r.text for i, r in zip(indices, results)}
    references = {i: data.captions[data.images[i]] for i in indices}
    scores = score_captions(references, hypotheses)
    report = {"bundle": str(bundle_dir), "split": split, "beam": beam, "no_repeat_ngram": no_repeat_ngram,
              "photos": len(indices),
              "seconds": round(time.perf_counter() - start, 1), "scores": scores}
    _write_report(out, report, data, hypotheses)
    if record:
        from desktop_app.bundle.format import load_bundle, write_manifest
        from model_export.model_card import write_model_card

        manifest = load_bundle(bundle_dir).manifest
        key = (f"{split}_beam{beam}" + (f"_norepeat{no_repeat_ngram}" if no_repeat_ngram else "")
               + (f"_first{limit}" if limit else ""))
        manifest.test_scores[key] = {"photos": len(indices), **scores}
        write_manifest(bundle_dir, manifest)
        write_model_card(bundle_dir)
        print(f"scores recorded in {bundle_dir / 'manifest.json'} as test_scores.{key} and in the model card")
    return report
