"""Bundle format 3: the step graph ranks the words; captions are those of the format-2 graph, bit for bit."""

import json
import shutil

import numpy as np
import pytest

from bundle_versions import as_format_2
from desktop_app.bundle import format as bf
from desktop_app.captioning.captioner import BoundRankingStepModel, Captioner, OnnxStepModel, RankingOnnxStepModel
from desktop_app.captioning.decode import DecodeOptions, top_k
from desktop_app.captioning.pipeline import PipelineOptions, caption_photos
from model_export.ranking import upgrade_bundle


@pytest.fixture
def format_2(tiny_bundle, tmp_path):
    folder = tmp_path / "format2"
    shutil.copytree(tiny_bundle[0], folder)
    as_format_2(folder)
    return folder


def _same(a, b):
    return (a.text == b.text and a.score == b.score and a.alternatives == b.alternatives
            and np.array_equal(a.attention, b.attention))


def test_new_bundles_rank_in_the_graph(tiny_bundle):
    captioner = Captioner.open(tiny_bundle[0], provider="cpu")
    assert captioner.bundle.manifest.format_version == bf.FORMAT_VERSION == bf.RANKING_VERSION
    assert isinstance(captioner.decoder, RankingOnnxStepModel)


def test_graph_ranks_as_numpy_does(tiny_bundle):
    """top_log_probs/top_ids are the best K of log_probs + bias, and log_probs stays unbiased."""
    captioner = Captioner.open(tiny_bundle[0], provider="cpu")
    size = captioner.preprocessing
    encoded = captioner.encode_batch(np.random.default_rng(1).normal(size=(2, 3, size.input_height, size.input_width))
                                     .astype(np.float32))
    model = captioner.decoder
    state = model.init(encoded.features)
    tokens = np.full(2, captioner.bundle.vocabulary.start_id, np.int64)
    bias = np.random.default_rng(0).normal(size=(2, model.vocab_size)).astype(np.float32)
    bias[:, 3] = -np.inf
    log_probs, _, _ = model.step(tokens, state)
    values, ids, _, _ = model.top(tokens, state, bias, 5)
    expected_values, expected_ids = top_k(log_probs + bias, 5)
    assert np.array_equal(ids, expected_ids) and np.array_equal(values, expected_values)
    assert 3 not in ids


@pytest.mark.parametrize("decode", [DecodeOptions(), DecodeOptions(beam_size=1, no_repeat_ngram=0),
                                    DecodeOptions(beam_size=5, no_repeat_ngram=2, max_length=8)])
def test_format_2_bundles_still_run_and_caption_the_same(tiny_bundle, format_2, samples, decode):
    old, new = Captioner.open(format_2, provider="cpu"), Captioner.open(tiny_bundle[0], provider="cpu")
    assert type(old.decoder) is OnnxStepModel  # ranks in NumPy
    paths = sorted(samples.glob("*.jpg"))
    for a, b in zip(old.caption_paths(paths, decode), new.caption_paths(paths, decode)):
        assert _same(a, b)


def test_upgrade_keeps_the_model_id_and_the_captions(format_2, samples, tmp_path):
    upgraded = tmp_path / "upgraded"
    shutil.copytree(format_2, upgraded)
    upgrade_bundle(upgraded)
    old, new = Captioner.open(format_2, provider="cpu"), Captioner.open(upgraded, provider="cpu")
    assert new.bundle.manifest.format_version == 3 and isinstance(new.decoder, RankingOnnxStepModel)
    assert new.model_id == old.model_id  # photos the old bundle captioned are not captioned again
    paths = sorted(samples.glob("*.jpg"))
    got: dict = {}
    caption_photos(paths, new, PipelineOptions(batch_size=2, recaption=True),
                   on_outcome=lambda o: got.setdefault(o.path, o.result))
    for path, expected in zip(paths, old.caption_paths(paths)):
        assert _same(got[path], expected)


def test_format_3_manifest_with_a_format_2_graph_is_refused(format_2):
    data = json.loads((format_2 / bf.MANIFEST_FILE).read_text())
    data["format_version"] = 3
    bf.write_manifest(format_2, bf.Manifest.from_dict(data))
    with pytest.raises(bf.BundleError, match="decoder_step.onnx takes .* format-3 bundle's step graph takes"):
        Captioner.open(format_2, provider="cpu")


def test_a_format_3_bundle_is_not_upgraded_again(tiny_bundle):
    from model_export.data.captions import DataError

    with pytest.raises(DataError, match="already format 3"):
        upgrade_bundle(tiny_bundle[0])


def test_io_binding_path_captions_the_same(tiny_bundle, samples):
    """The CUDA path (memory and keys bound once per batch), run here with the binding on the CPU."""
    captioner = Captioner.open(tiny_bundle[0], provider="cpu")
    paths = sorted(samples.glob("*.jpg"))
    plain = captioner.caption_paths(paths, DecodeOptions(beam_size=3, no_repeat_ngram=3), batch_size=3)
    captioner.decoder = BoundRankingStepModel(captioner.decoder.init_session, captioner.decoder.step_session, "cpu")
    bound = captioner.caption_paths(paths, DecodeOptions(beam_size=3, no_repeat_ngram=3), batch_size=3)
    assert all(_same(a, b) for a, b in zip(plain, bound))
