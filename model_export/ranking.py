"""The word ranking of the decode loop, inside ``decoder_step.onnx`` (bundle format 3).

Appends ``Add(log_probs, bias)`` and ``TopK(top_k)`` to a step graph, so onnxruntime returns
each row's K best words instead of the whole vocabulary, which NumPy then had to add to,
sort and copy at every step. The step's own nodes are left as they are: ``log_probs``,
``h_out``, ``c_out`` and ``alpha`` come out bit for bit as before, and so do the captions.
``export`` ranks every new bundle; ``upgrade_bundle`` ranks an existing one in place.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from desktop_app.bundle import format as bf
from desktop_app.bundle.format import load_bundle, write_manifest
from model_export.data.captions import DataError
from model_export.model_card import write_model_card


def add_ranking(path: Path) -> None:
    """Rewrite the step graph at ``path`` with the format-3 inputs and outputs (``bf.STEP_RANKED_*``)."""
    model = onnx.load(str(path))
    graph = model.graph
    names_in, names_out = [i.name for i in graph.input], [o.name for o in graph.output]
    if tuple(names_in) != bf.STEP_INPUTS or tuple(names_out) != bf.STEP_OUTPUTS:
        raise DataError(f"{path}: not a format-2 step graph (inputs {names_in}, outputs {names_out})")
    log_probs = graph.output[0]
    batch, vocab = (d for d in log_probs.type.tensor_type.shape.dim)
    graph.input.extend([
        helper.make_tensor_value_info("bias", TensorProto.FLOAT, [batch.dim_param or batch.dim_value, vocab.dim_value]),
        helper.make_tensor_value_info("top_k", TensorProto.INT64, [1])])
    graph.node.extend([
        helper.make_node("Add", ["log_probs", "bias"], ["ranked_log_probs"], name="rank_bias"),
        helper.make_node("TopK", ["ranked_log_probs", "top_k"], ["top_log_probs", "top_ids"], name="rank_top_k",
                         axis=-1, largest=1, sorted=1)])
    graph.output.extend([
        helper.make_tensor_value_info("top_log_probs", TensorProto.FLOAT, [batch.dim_param or batch.dim_value, "k"]),
        helper.make_tensor_value_info("top_ids", TensorProto.INT64, [batch.dim_param or batch.dim_value, "k"])])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def check_unchanged(before: Path, after: Path, init: Path, manifest: bf.Manifest) -> None:
    """The ranked graph at ``after`` computes what ``before`` did, bit for bit, and ranks like ``top_k``."""
    import onnxruntime as ort

    from desktop_app.captioning.decode import top_k

    rng = np.random.default_rng(0)
    features = rng.normal(size=(4, manifest.grid_size, manifest.feature_dim)).astype(np.float32)
    memory, keys, h, c = ort.InferenceSession(str(init)).run(list(bf.INIT_OUTPUTS), {"features": features})
    inputs = {"tokens": rng.integers(0, manifest.vocab_size, 4), "h": h, "c": c, "memory": memory, "keys": keys}
    old = ort.InferenceSession(str(before)).run(list(bf.STEP_OUTPUTS), inputs)
    bias = rng.normal(size=(4, manifest.vocab_size)).astype(np.float32)
    new = ort.InferenceSession(str(after)).run(list(bf.STEP_RANKED_OUTPUTS), {
        **inputs, "bias": bias, "top_k": np.array([8], np.int64)})
    values, ids = top_k(old[0] + bias, 8)
    if not all(np.array_equal(a, b) for a, b in zip(old + [values, ids], new)):
        raise DataError(f"{after}: the ranked step graph does not compute what {before} did")


def upgrade_bundle(bundle_dir: Path) -> None:
    """A format-1/2 bundle -> format 3, in place: the step graph ranks, the manifest says so.

    The model is the same, caption for caption, so photo metadata keeps naming it as before
    (``model_hash``: the old step graph's hash): photos it captioned are not captioned again."""
    bundle = load_bundle(bundle_dir)
    manifest = bundle.manifest
    if manifest.format_version >= bf.RANKING_VERSION:
        raise DataError(f"{bundle_dir}: already format {manifest.format_version}")
    manifest.model_hash = bundle.model_id.rpartition("@")[2]
    step = bundle.file(bf.DECODER_STEP_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / bf.DECODER_STEP_FILE
        shutil.copy2(step, before)
        add_ranking(step)
        try:
            check_unchanged(before, step, bundle.file(bf.DECODER_INIT_FILE), manifest)
        except DataError:
            shutil.copy2(before, step)  # leave the bundle as it was
            raise
    manifest.format_version = bf.FORMAT_VERSION
    write_manifest(bundle_dir, manifest)
    write_model_card(bundle_dir)
