"""int8 graphs: static QDQ for the encoder (calibrated on photos), dynamic for the decoder step.

The step graph's dense layers are exported as ``Gemm``, which onnxruntime's dynamic
quantiser skips; they are first rewritten as ``MatMul`` + ``Add`` (the same function), so
the LSTM, attention-query, gate and output weights are stored and multiplied as int8 while
each step's activations are scaled on the fly (no calibration set needed).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from desktop_app.bundle import format as bf
from desktop_app.photos.pixels import load_pixels


def gemm_as_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every ``Gemm(x, W, b)`` with constant W (alpha = beta = 1, no transposed x) -> ``MatMul`` + ``Add``."""
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in weights or attrs.get("transA", 0)
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        name = node.input[1] + "_matmul"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w.T if attrs.get("transB", 0) else w), name))
        if len(node.input) > 2 and node.input[2]:
            product = node.output[0] + "_product"
            nodes += [helper.make_node("MatMul", [node.input[0], name], [product], name=node.name + "_matmul"),
                      helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=node.name + "_bias")]
        else:
            nodes.append(helper.make_node("MatMul", [node.input[0], name], [node.output[0]], name=node.name + "_matmul"))
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def quantize_decoder_step(bundle_dir: Path) -> None:
    """Dynamic int8 (per-channel int8 weights) ``decoder_step.onnx``, in place; the graph contract is unchanged."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(bundle_dir) / bf.DECODER_STEP_FILE
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "step.matmul.onnx"
        onnx.save(gemm_as_matmul(onnx.load(str(path))), str(plain))
        quantize_dynamic(str(plain), str(path), op_types_to_quantize=["MatMul"], per_channel=True,
                         weight_type=QuantType.QInt8)


def int8_decoder_bundle(source: Path, out: Path) -> None:
    """A copy of the bundle at ``source`` in ``out`` whose step graph is int8: a different model to
    photo metadata (its captions may differ), so its id is its own step graph's hash."""
    from desktop_app.bundle.format import load_bundle, write_manifest
    from model_export.model_card import write_model_card

    if Path(out).exists():
        raise FileExistsError(f"{out} exists")
    shutil.copytree(source, out)
    quantize_decoder_step(out)
    manifest = load_bundle(out, verify_hashes=False).manifest
    manifest.decoder_precision, manifest.model_hash = "int8", ""
    write_manifest(out, manifest)
    write_model_card(out)


def quantize_encoder(bundle_dir: Path, calibration: list[Path], preprocessing: bf.Preprocessing) -> None:
    """Static int8 (QDQ, per-channel weights) encoder, calibrated on real photos."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.paths = iter(calibration)

        def get_next(self):
            path = next(self.paths, None)
            return None if path is None else {"pixels": load_pixels(path, preprocessing)[None]}

    source = Path(bundle_dir) / bf.ENCODER_FILE
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "encoder.pre.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(source), Photos(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
