"""``recover``: a bundle's decoder graphs -> a training checkpoint, without retraining.

The ONNX exporter keeps most weights under their PyTorch names (``decoder.lstm.weight_ih``)
but folds some ``nn.Linear`` layers into ``MatMul`` + ``Add`` and stores their weight
transposed under a generated name (``val_0``). Such a weight is identified by the named
bias its ``MatMul`` feeds (``decoder.key_proj.bias`` -> ``decoder.key_proj.weight``), so
the mapping follows the graph, not the shapes. The recovered decoder is checked against
the bundle's own graphs (init outputs and per-step log-probs) before it is saved.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from desktop_app.bundle import format as bf
from desktop_app.bundle.format import load_bundle
from desktop_app.captioning.captioner import Captioner
from desktop_app.captioning.decode import DecodeOptions, greedy_search
from model_export.data.captions import DataError
from model_export.decoder import CaptionDecoder, DecoderConfig
from model_export.encoder import ENCODERS
from model_export.evaluate import TorchStepModel

PREFIX = "decoder."
PARITY_TOLERANCE = 1e-4


def graph_weights(path: Path) -> dict[str, np.ndarray]:
    """PyTorch-named decoder weights held by one exported ONNX graph."""
    graph = onnx.load(str(path)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weights = {name[len(PREFIX):]: value for name, value in initializers.items() if name.startswith(PREFIX)}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in initializers or node.input[1].startswith(PREFIX):
            continue
        biases = [n for consumer in consumers.get(node.output[0], []) if consumer.op_type == "Add"
                  for n in consumer.input if n.startswith(PREFIX) and n.endswith(".bias")]
        if len(biases) != 1:
            raise DataError(f"{path}: cannot tell which layer MatMul weight {node.input[1]} belongs to")
        name = biases[0][len(PREFIX):-len("bias")] + "weight"
        weights[name] = initializers[node.input[1]].T  # MatMul(x, W^T) == Linear(x; W)
    return weights


def decoder_from_bundle(bundle_dir: Path, dropout: float = DecoderConfig.dropout) -> tuple[CaptionDecoder, list[str]]:
    """The bundle's decoder as an eval-mode PyTorch module, and its vocabulary words."""
    bundle = load_bundle(bundle_dir)
    weights = {**graph_weights(bundle.file(bf.DECODER_INIT_FILE)), **graph_weights(bundle.file(bf.DECODER_STEP_FILE))}
    try:
        config = DecoderConfig(
            vocab_size=weights["embedding.weight"].shape[0], feature_dim=weights["memory_proj.0.weight"].shape[1],
            memory_dim=weights["memory_proj.0.weight"].shape[0], embed_dim=weights["embedding.weight"].shape[1],
            hidden_dim=weights["lstm.weight_hh"].shape[1], attention_dim=weights["key_proj.weight"].shape[0],
            dropout=dropout)
    except KeyError as exc:
        raise DataError(f"{bundle_dir}: decoder graphs lack weight {exc}") from None
    decoder = CaptionDecoder(config)
    expected = decoder.state_dict()
    if set(weights) != set(expected):
        raise DataError(f"{bundle_dir}: decoder weights do not match the PyTorch decoder "
                        f"(missing {sorted(set(expected) - set(weights))}, extra {sorted(set(weights) - set(expected))})")
    for name, tensor in expected.items():
        if tuple(weights[name].shape) != tuple(tensor.shape):
            raise DataError(f"{bundle_dir}: {name} is {weights[name].shape}, the decoder expects {tuple(tensor.shape)}")
    decoder.load_state_dict({name: torch.from_numpy(np.array(v)) for name, v in weights.items()})
    return decoder.eval(), bundle.vocabulary.words


def decoder_parity(decoder: CaptionDecoder, bundle_dir: Path, features: np.ndarray, start_id: int,
                   end_id: int) -> dict:
    """Max abs differences PyTorch vs the bundle's decoder graphs along the greedy path."""
    onnx_step = Captioner.open(bundle_dir, provider="cpu").decoder
    torch_step = TorchStepModel(decoder)
    options = DecodeOptions(beam_size=1, max_length=30, no_repeat_ngram=0)
    torch_caps = greedy_search(torch_step, features, start_id, end_id, options)
    onnx_caps = greedy_search(onnx_step, features, start_id, end_id, options)
    ts, os_ = torch_step.init(features), onnx_step.init(features)
    worst_init = max(float(np.abs(a - b).max()) for a, b in zip((ts.memory, ts.keys, ts.h, ts.c),
                                                                 (os_.memory, os_.keys, os_.h, os_.c)))
    worst_step = 0.0
    tokens = np.full(len(features), start_id, dtype=np.int64)
    for t in range(max(len(c.tokens) for c in torch_caps) + 1):
        lp_t, ts, _ = torch_step.step(tokens, ts)
        lp_o, os_, _ = onnx_step.step(tokens, os_)
        worst_step = max(worst_step, float(np.abs(lp_t - lp_o).max()))
        tokens = np.array([c.tokens[t] if t < len(c.tokens) else end_id for c in torch_caps], dtype=np.int64)
    return {"photos": len(features), "decoder_init_max_abs_diff": worst_init,
            "step_log_probs_max_abs_diff": worst_step,
            "greedy_captions_identical": sum(a.tokens == b.tokens for a, b in zip(torch_caps, onnx_caps))}


def recover_checkpoint(bundle_dir: Path, out: Path, features: np.ndarray, data_source: str = "",
                       dropout: float = DecoderConfig.dropout) -> dict:
    """Write a checkpoint that ``evaluate``, ``export`` and ``scst`` accept; returns the parity report."""
    bundle = load_bundle(bundle_dir)
    decoder, words = decoder_from_bundle(bundle_dir, dropout)
    vocab = bundle.vocabulary
    parity = decoder_parity(decoder, bundle_dir, np.asarray(features, np.float32), vocab.start_id, vocab.end_id)
    worst = max(parity["decoder_init_max_abs_diff"], parity["step_log_probs_max_abs_diff"])
    if worst > PARITY_TOLERANCE or parity["greedy_captions_identical"] != parity["photos"]:
        raise DataError(f"recovered decoder differs from {bundle_dir}: max abs diff {worst:.2e} "
                        f"(limit {PARITY_TOLERANCE}), {parity['greedy_captions_identical']}/{parity['photos']} "
                        "greedy captions identical")
    manifest = bundle.manifest
    encoder = next((name for name, spec in ENCODERS.items() if spec.timm_name == manifest.encoder_name), None)
    if encoder is None:
        raise DataError(f"{bundle_dir}: unknown encoder {manifest.encoder_name}")
    state = {
        "config": {"recovered_from": str(bundle_dir), "dropout": dropout},
        "decoder_config": decoder.config.to_dict(),
        "decoder": decoder.state_dict(),
        "encoder_name": encoder,
        "encoder": None,
        "vocabulary": words,
        "data_source": data_source or manifest.training_data,
        "epoch": 0,
        "val_scores": manifest.test_scores.get("val_at_checkpoint", {}),
        "recovery_parity": parity,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out)
    return parity

