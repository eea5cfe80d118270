"""Caption nouns learned from training captions (model_export.nouns) and their place in concepts.onnx."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_export.concepts import WORDNET_DIR, ConceptHead, _fit_logistic, open_wordnet, split_learned  # noqa: E402
from model_export.nouns import (MIN_PHOTOS, caption_targets, detector_inputs, fit_noun_detector,  # noqa: E402
                                noun_lemmas, training_photos)


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


def test_detector_is_fitted_to_its_optimum():
    """The L-BFGS fit reaches the penalised logistic regression's optimum, as Newton's method finds it
    (the AdamW fit used before stopped early: its noun ranking on COCO dev was far below the optimum's)."""
    rng = np.random.default_rng(1)
    features = rng.normal(3.0, 2.0, (400, 5)).astype(np.float32)
    present = (features @ rng.normal(size=5) + rng.normal(size=400) > 3.0).astype(np.float32)
    weights = np.ones(400)
    detector = fit_noun_detector(features, present[:, None], weights, l2=1e-2)
    standard = (features - features.mean(0)) / (features.std(0) + 1e-6)
    newton = _fit_logistic(standard, present, l2=2 * 1e-2 * len(features))  # its loss is a sum, ours a mean
    expected = 1 / (1 + np.exp(-(newton[0] + standard @ newton[1:])))
    with torch.no_grad():
        ours = torch.sigmoid(detector(torch.from_numpy(features)))[:, 0].numpy()
    np.testing.assert_allclose(ours, expected, atol=2e-3)


def test_concept_head_puts_nouns_first_and_feeds_them_the_classifier():
    channels, classes = 4, 3
    classifier = torch.nn.Linear(channels, classes)
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.copy_(torch.tensor([10.0, 0.0, 0.0]))  # the classifier is sure of class 0
    nouns = torch.nn.Linear(channels + classes, 2)  # reads the features and the classifier's log-probabilities
    with torch.no_grad():
        nouns.weight.zero_()
        nouns.bias.copy_(torch.tensor([-10.0, 10.0]))  # learned: "kitchen" unlikely, "kite" likely ...
        nouns.weight[0, channels + 1] = -5.0  # ... and "kitchen" likely where class 1 is unlikely (log-prob about -10)
    class_to_word = np.array([[1, 0], [0, 1], [0, 0]])  # ImageNet words: "cat" (class 0), "bird" (class 1)
    head = ConceptHead(classifier, class_to_word, grid_side=7, nouns=nouns).eval()
    with torch.no_grad():
        whole, region = head(torch.zeros(1, 49, channels))
    assert whole.shape == region.shape == (1, 4)  # kitchen, kite, cat, bird
    np.testing.assert_allclose(whole[0].numpy(), [1.0, 1.0, 1.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(region[0].numpy(), whole[0].numpy(), atol=1e-3)  # every region alike here
    expected = detector_inputs(np.zeros((1, channels), np.float32), classifier)
    with torch.no_grad():
        np.testing.assert_allclose(torch.sigmoid(nouns(torch.from_numpy(expected))).numpy()[0], whole[0, :2].numpy(), atol=1e-6)


def test_a_word_both_name_is_scored_once_at_the_larger_probability():
    classes = np.array([[1, 1, 0], [1, 0, 1]])  # class 0: "animal", "cat"; class 1: "animal", "tabby"
    words, matrix, noun_classes = split_learned(["animal", "cat", "tabby"], classes, ["kite", "cat"])
    assert words == ["animal", "tabby"]
    np.testing.assert_array_equal(matrix, classes[:, [0, 2]])
    np.testing.assert_array_equal(noun_classes, [[0, 1], [0, 0]])  # "kite": no ImageNet word; "cat": class 0
    classifier = torch.nn.Linear(4, 2)
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.copy_(torch.tensor([10.0, 0.0]))  # sure of class 0
    nouns = torch.nn.Linear(4 + 2, 2)
    with torch.no_grad():
        nouns.weight.zero_()
        nouns.bias.copy_(torch.tensor([0.0, -10.0]))  # the learned "cat" is unsure
    head = ConceptHead(classifier, matrix, grid_side=7, nouns=nouns, noun_classes=noun_classes).eval()
    with torch.no_grad():
        whole, _ = head(torch.zeros(1, 49, 4))
    np.testing.assert_allclose(whole[0].numpy(), [0.5, 1.0, 1.0, 0.0], atol=1e-3)  # kite, cat (ImageNet's), animal, tabby


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
