"""``export``: a checkpoint -> an ONNX model bundle (encoder + decoder_init + decoder_step, format 3).

Exported with the dynamo exporter (opset 18, dynamic batch), then checked
against PyTorch on real photos: the export fails if features or any decode
step's log-probabilities differ by more than 1e-3, or a greedy caption differs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from desktop_app.bundle import format as bf
from desktop_app.captioning.captioner import Captioner
from desktop_app.captioning.decode import DecodeOptions, greedy_search
from desktop_app.photos.pixels import load_pixels
from model_export.checkpoint import TrainedModel, load_trained
from model_export.data.captions import DataError
from model_export.data.prepare import PreparedData
from model_export.decoder import DecoderInit, DecoderStep
from model_export.encoder import ENCODERS
from model_export.evaluate import TorchStepModel
from model_export.model_card import write_model_card
from model_export.quantize import quantize_decoder_step, quantize_encoder
from model_export.ranking import add_ranking

PARITY_TOLERANCE = 1e-3
MAX_CAPTION_LENGTH = 30


def _export(module: torch.nn.Module, args: tuple, names_in: tuple, names_out: tuple, path: Path) -> None:
    module.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = {name: {0: batch} for name in module.forward.__code__.co_varnames[1:len(args) + 1]}
    program = torch.onnx.export(module, args, dynamo=True, opset_version=18, input_names=list(names_in),
                                output_names=list(names_out), dynamic_shapes=shapes, external_data=False,
                                verbose=False)
    program.optimize()
    program.save(str(path), external_data=False)


def export_graphs(model: TrainedModel, out: Path) -> None:
    """Write the three ONNX graphs (the step graph with its TopK, see ``ranking``) and the vocabulary into ``out``."""
    spec = ENCODERS[model.encoder.name]
    pixels = torch.randn(2, 3, spec.input_size, spec.input_size)
    with torch.no_grad():
        features = model.encoder(pixels)
        memory, keys, h, c = model.decoder.init_state(features)
    tokens = torch.tensor([model.vocabulary.start_id] * 2)
    _export(model.encoder, (pixels,), bf.ENCODER_INPUTS, bf.ENCODER_OUTPUTS, out / bf.ENCODER_FILE)
    _export(DecoderInit(model.decoder), (features,), bf.INIT_INPUTS, bf.INIT_OUTPUTS, out / bf.DECODER_INIT_FILE)
    _export(DecoderStep(model.decoder), (tokens, h, c, memory, keys), bf.STEP_INPUTS, bf.STEP_OUTPUTS,
            out / bf.DECODER_STEP_FILE)
    add_ranking(out / bf.DECODER_STEP_FILE)
    model.vocabulary.save(out / bf.VOCAB_FILE)


def manifest_for(model: TrainedModel) -> bf.Manifest:
    spec = ENCODERS[model.encoder.name]
    vocab = model.vocabulary
    return bf.Manifest(
        model_name=f"sat-efficientnet-{model.encoder.name}",
        encoder_name=spec.timm_name,
        preprocessing=spec.preprocessing,
        vocab_size=len(vocab),
        grid_size=model.encoder.grid_side ** 2,
        feature_dim=model.encoder.feature_dim,
        max_caption_length=MAX_CAPTION_LENGTH,
        special_tokens={"<pad>": vocab.pad_id, "<start>": vocab.start_id, "<end>": vocab.end_id, "<unk>": vocab.unk_id},
        training_data=str(model.meta.get("data_source", "")),
        test_scores={"val_at_checkpoint": model.meta.get("val_scores", {})},
    )


def parity_photos(data_dir: Path | None, count: int, split: str = "test") -> list[Path]:
    if data_dir is None:
        return []
    data = PreparedData.load(data_dir)
    return [data.image_dir / data.images[i] for i in data.splits[split][:count]]


def check_parity(model: TrainedModel, bundle_dir: Path, pixels: np.ndarray) -> dict:
    """Max abs differences ONNX Runtime vs PyTorch, and whether greedy captions agree."""
    captioner = Captioner.open(bundle_dir, provider="cpu")
    with torch.no_grad():
        torch_features = model.encoder(torch.from_numpy(pixels)).numpy()
    onnx_features = captioner.encode(pixels)
    vocab = model.vocabulary
    options = DecodeOptions(beam_size=1, max_length=MAX_CAPTION_LENGTH, no_repeat_ngram=0)
    torch_step, onnx_step = TorchStepModel(model.decoder), captioner.decoder
    torch_caps = greedy_search(torch_step, torch_features, vocab.start_id, vocab.end_id, options)
    onnx_caps = greedy_search(onnx_step, torch_features, vocab.start_id, vocab.end_id, options)
    # Per-step log-probs along the PyTorch greedy path, both models fed the same tokens.
    worst_step = 0.0
    ts, os_ = torch_step.init(torch_features), onnx_step.init(torch_features)
    worst_init = max(float(np.abs(a - b).max()) for a, b in zip(
        (ts.memory, ts.keys, ts.h, ts.c), (os_.memory, os_.keys, os_.h, os_.c)))
    tokens = np.full(len(pixels), vocab.start_id, dtype=np.int64)
    for t in range(max(len(c.tokens) for c in torch_caps) + 1):
        lp_t, ts, _ = torch_step.step(tokens, ts)
        lp_o, os_, _ = onnx_step.step(tokens, os_)
        worst_step = max(worst_step, float(np.abs(lp_t - lp_o).max()))
        tokens = np.array([c.tokens[t] if t < len(c.tokens) else vocab.end_id for c in torch_caps], dtype=np.int64)
    return {
        "photos": len(pixels),
        "features_max_abs_diff": float(np.abs(torch_features - onnx_features).max()),
        "decoder_init_max_abs_diff": worst_init,
        "step_log_probs_max_abs_diff": worst_step,
        "greedy_captions_identical": sum(a.tokens == b.tokens for a, b in zip(torch_caps, onnx_caps)),
    }


def export_bundle(checkpoint: Path, out: Path, data_dir: Path | None = None, int8: bool = False,
                  calibration_photos: int = 200, parity_count: int = 16, int8_decoder: bool = False) -> dict:
    model = load_trained(checkpoint)
    manifest = manifest_for(model)
    photos = parity_photos(data_dir, parity_count)
    if photos:
        pixels = np.stack([load_pixels(p, manifest.preprocessing) for p in photos])
    else:  # no data given: random pixels still prove the graphs compute the same function
        pixels = np.random.default_rng(0).standard_normal((4, 3, manifest.preprocessing.input_height,
                                                           manifest.preprocessing.input_width)).astype(np.float32)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=Path(out).parent if Path(out).parent.exists() else None))
    try:
        export_graphs(model, staging)
        bf.write_manifest(staging, manifest)
        parity = check_parity(model, staging, pixels)
        print(json.dumps({"parity": parity}, indent=2))
        worst = max(parity["features_max_abs_diff"], parity["decoder_init_max_abs_diff"],
                    parity["step_log_probs_max_abs_diff"])
        if worst > PARITY_TOLERANCE or parity["greedy_captions_identical"] != parity["photos"]:
            raise DataError(f"parity check failed: max abs diff {worst:.2e} (limit {PARITY_TOLERANCE}), "
                            f"{parity['greedy_captions_identical']}/{parity['photos']} greedy captions identical")
        manifest.test_scores["parity_fp32"] = parity
        if int8:
            if data_dir is None:
                raise DataError("--int8 needs --data: the encoder is calibrated on real training photos")
            calibration = parity_photos(data_dir, calibration_photos, split="train")
            quantize_encoder(staging, calibration, manifest.preprocessing)
            manifest.encoder_precision = "int8"
            bf.write_manifest(staging, manifest)
            captioner = Captioner.open(staging, provider="cpu")
            with torch.no_grad():
                reference = model.encoder(torch.from_numpy(pixels)).numpy()
            quantized = captioner.encode(pixels)
            cosine = float(np.mean(np.sum(reference * quantized, -1) /
                                   (np.linalg.norm(reference, axis=-1) * np.linalg.norm(quantized, axis=-1) + 1e-9)))
            manifest.test_scores["int8_encoder"] = {"calibration_photos": len(calibration),
                                                    "features_mean_cosine_vs_fp32": cosine}
            print(json.dumps({"int8_encoder": manifest.test_scores["int8_encoder"]}, indent=2))
        if int8_decoder:
            quantize_decoder_step(staging)
            manifest.decoder_precision = "int8"
        bf.write_manifest(staging, manifest)
        write_model_card(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.chmod(0o755)
        staging.replace(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(f"bundle written to {out}")
    return manifest.test_scores
