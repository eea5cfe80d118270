"""The exported bundle matches PyTorch, and a damaged bundle says exactly what is wrong."""

import json

import pytest

from desktop_app.bundle.format import BundleError, load_bundle, write_manifest, Manifest
from desktop_app.captioning.captioner import Captioner


def test_export_parity_within_tolerance(tiny_bundle):
    _, scores = tiny_bundle
    parity = scores["parity_fp32"]
    assert parity["photos"] == 8
    assert parity["features_max_abs_diff"] < 1e-3
    assert parity["step_log_probs_max_abs_diff"] < 1e-3
    assert parity["greedy_captions_identical"] == 8


def test_bundle_loads_and_captions(tiny_bundle, samples):
    captioner = Captioner.open(tiny_bundle[0], provider="cpu")
    assert captioner.provider == "CPU"
    results = captioner.caption_paths(sorted(samples.glob("*.jpg")))
    assert all(r.text and r.text.endswith(".") and len(r.attention) == len(r.words) for r in results)
    assert captioner.bundle.manifest.preprocessing.resize == "squash"


def _manifest(bundle):
    return json.loads((bundle / "manifest.json").read_text())


def test_malformed_manifest(bundle_copy):
    (bundle_copy / "manifest.json").write_text("{oops")
    with pytest.raises(BundleError, match="manifest.json: not valid JSON"):
        load_bundle(bundle_copy)


def test_manifest_missing_field(bundle_copy):
    data = _manifest(bundle_copy)
    del data["vocab_size"]
    (bundle_copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="missing or unexpected field"):
        load_bundle(bundle_copy)


def test_wrong_format_version(bundle_copy):
    data = _manifest(bundle_copy)
    data["format_version"] = 99
    (bundle_copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="needs a newer photocaption"):
        load_bundle(bundle_copy)


def test_missing_file(bundle_copy):
    (bundle_copy / "decoder_step.onnx").unlink()
    with pytest.raises(BundleError, match="decoder_step.onnx: missing from the bundle"):
        load_bundle(bundle_copy)


def test_wrong_sha256(bundle_copy):
    with open(bundle_copy / "encoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="encoder.onnx: sha256 does not match"):
        load_bundle(bundle_copy)


def test_vocab_size_mismatch(bundle_copy):
    vocab = json.loads((bundle_copy / "vocab.json").read_text())
    vocab["words"].append("zebra")
    (bundle_copy / "vocab.json").write_text(json.dumps(vocab))
    manifest = Manifest.from_dict(_manifest(bundle_copy))
    write_manifest(bundle_copy, manifest)  # hashes fine, sizes disagree
    with pytest.raises(BundleError, match="has .* words but the manifest says vocab_size"):
        load_bundle(bundle_copy)


def test_graph_that_does_not_fit_the_manifest(bundle_copy):
    manifest = Manifest.from_dict(_manifest(bundle_copy))
    manifest.preprocessing = type(manifest.preprocessing)(input_height=240, input_width=240)
    write_manifest(bundle_copy, manifest)
    with pytest.raises(BundleError, match="encoder.onnx takes"):
        Captioner.open(bundle_copy, provider="cpu")


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="model bundle folder not found"):
        load_bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="manifest.json: missing"):
        load_bundle(tmp_path)
