"""Older bundles made from a new one: the same model with a format-2 step graph (no TopK)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from desktop_app.bundle import format as bf


def plain_step_graph(source: Path, out: Path) -> None:
    """``source``'s format-3 step graph without its ranking nodes, inputs and outputs (a format-2 graph)."""
    model = onnx.load(str(source))
    graph = model.graph
    ranking = [n for n in graph.node if n.op_type == "TopK" or "bias" in n.input]
    for node in ranking:
        graph.node.remove(node)
    for item, names in ((graph.input, bf.STEP_INPUTS), (graph.output, bf.STEP_OUTPUTS)):
        for value in [v for v in item if v.name not in names]:
            item.remove(value)
    onnx.save(model, str(out))


def as_format_2(folder: Path) -> None:
    """Rewrite the bundle in ``folder`` (a real copy, not links) as format 2, hashes and all."""
    step = folder / bf.DECODER_STEP_FILE
    plain_step_graph(step, step)
    data = json.loads((folder / bf.MANIFEST_FILE).read_text())
    data["format_version"] = 2
    data.pop("model_hash", None)
    bf.write_manifest(folder, bf.Manifest.from_dict(data))
