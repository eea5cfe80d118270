"""Caption nouns learned from training captions (model_export.nouns) and their place in concepts.onnx."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_export.concepts import WORDNET_DIR, ConceptHead, open_wordnet  # noqa: E402
from model_export.nouns import MIN_PHOTOS, caption_targets, fit_noun_detector, noun_lemmas, training_photos  # noqa: E402


def test_targets_are_the_share_of_captions_naming_a_noun():
    plural = {"kites": "kite", "kite": "kite", "dog": "dog", "cake": "cake", "sky": "sky"}
    photos = [["A kite in the sky.", "Two kites.", "a man", "a man", "a man"]] * MIN_PHOTOS + \
             [["a dog", "a dog", "a dog", "a cake", "a man"]] * (MIN_PHOTOS - 1)
    nouns, targets = caption_targets(photos, plural.get, excluded=frozenset({"sky"}))
    assert nouns == ["kite"]  # dog: one photo short of MIN_PHOTOS; cake: named by too few captions; sky: excluded
    np.testing.assert_allclose(targets[:MIN_PHOTOS, 0], 0.4)
    assert not targets[MIN_PHOTOS:].any()


def test_detector_learns_a_noun_on_raw_features():
    """Standardisation is folded into the one linear layer: it reads raw (unscaled, offset) features."""
    rng = np.random.default_rng(0)
    present = rng.random(3000) < 0.3
    features = rng.normal(50.0, 0.1, (3000, 8)).astype(np.float32)
    features += 0.5 * present[:, None]  # small against the offset, large against the spread
    detector = fit_noun_detector(features, present[:, None].astype(np.float32), np.ones(3000))
    with torch.no_grad():
        p = torch.sigmoid(detector(torch.from_numpy(features)))[:, 0].numpy()
    assert p[present].mean() > 0.8 and p[~present].mean() < 0.2


def test_concept_head_puts_nouns_first():
    channels, classes = 4, 3
    classifier = torch.nn.Linear(channels, classes)
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.copy_(torch.tensor([10.0, 0.0, 0.0]))  # the classifier is sure of class 0
    nouns = torch.nn.Linear(channels, 2)
    with torch.no_grad():
        nouns.weight.zero_()
        nouns.bias.copy_(torch.tensor([-10.0, 10.0]))  # learned: "kitchen" unlikely, "kite" likely
    class_to_word = np.array([[1, 0], [0, 1], [0, 0]])  # ImageNet words: "cat" (class 0), "bird" (class 1)
    head = ConceptHead(classifier, class_to_word, grid_side=7, nouns=nouns).eval()
    with torch.no_grad():
        whole, region = head(torch.zeros(1, 49, channels))
    assert whole.shape == region.shape == (1, 4)  # kitchen, kite, cat, bird
    np.testing.assert_allclose(whole[0].numpy(), [0.0, 1.0, 1.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(region[0].numpy(), whole[0].numpy(), atol=1e-3)  # every region alike here


def test_dev_photos_are_never_training_photos(tmp_path):
    flickr = tmp_path / "flickr8k"
    (flickr / "Images").mkdir(parents=True)
    (flickr / "Images" / "a.jpg").write_bytes(b"")
    (flickr / "Flickr8k.token.txt").write_text("a.jpg#0\ta dog\n")
    (flickr / "Flickr_8k.trainImages.txt").write_text("a.jpg\n")
    (flickr / "Flickr_8k.devImages.txt").write_text("")
    (flickr / "Flickr_8k.testImages.txt").write_text("")
    coco = tmp_path / "coco"
    (coco / "images").mkdir(parents=True)
    for name in ("x.jpg", "y.jpg"):
        (coco / "images" / name).write_bytes(b"")
    (coco / "references.json").write_text('{"x.jpg": ["a cat"], "y.jpg": ["a kite"]}')
    (coco / "extra.txt").write_text("x.jpg\n")
    (coco / "dev.txt").write_text("y.jpg\n")
    photos = training_photos(flickr, coco)
    assert [p.name for p in photos.paths] == ["a.jpg", "x.jpg"] and photos.weights[1] > photos.weights[0]
    (coco / "extra.txt").write_text("x.jpg\ny.jpg\n")
    with pytest.raises(ValueError, match="never be trained on"):
        training_photos(flickr, coco)


def test_caption_words_that_are_mostly_verbs_or_adjectives_are_not_nouns(tmp_path):
    pytest.importorskip("nltk")
    if not (WORDNET_DIR / "data.noun").is_file():
        pytest.skip(f"WordNet 3.0 not installed in {WORDNET_DIR} (apt-get install wordnet-base)")
    lemma = noun_lemmas(open_wordnet(tmp_path))
    assert [lemma(w) for w in ("dogs", "kites", "surfboards", "children", "building", "orange", "bat", "sink")] == \
        ["dog", "kite", "surfboard", "child", "building", "orange", "bat", "sink"]
    assert [lemma(w) for w in ("standing", "holding", "playing", "red", "blue", "holds")] == [None] * 6
