"""Concept keywords (bundle format 2 and later): the shipped bundle on real photos, older and newer bundles, the rules."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from desktop_app.bundle import format as bf
from desktop_app.bundle.vocabulary import Vocabulary
from desktop_app.captioning.captioner import Captioner, lost_noun
from desktop_app.captioning.concepts import ConceptScorer, PhotoConcepts
from desktop_app.resources import DEFAULT_BUNDLE
from bundle_versions import plain_step_graph



def _linked_bundle(tmp_path: Path, edit) -> Path:
    """The shipped bundle's files, linked (not copied), under a manifest changed by ``edit``."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    for path in DEFAULT_BUNDLE.iterdir():
        if path.name != bf.MANIFEST_FILE:
            (folder / path.name).symlink_to(path)
    data = json.loads((DEFAULT_BUNDLE / bf.MANIFEST_FILE).read_text())
    edit(data)
    (folder / bf.MANIFEST_FILE).write_text(json.dumps(data))
    return folder


@pytest.fixture(scope="module")
def shipped():
    return Captioner.open(provider="cpu", threads=2)


def test_shipped_bundle_names_what_sample_photos_show(shipped, pristine_samples):
    """Real photos the decoder gets wrong (Flickr8k has few cats and no espresso): the keywords get them."""
    assert shipped.bundle.manifest.format_version == bf.FORMAT_VERSION and shipped.concepts is not None
    cat, coffee = shipped.caption_paths([pristine_samples / "chelsea.jpg", pristine_samples / "coffee.jpg"])
    assert "cat" in cat.keywords and "animal" in cat.keywords
    assert "coffee" in coffee.keywords
    for result in (cat, coffee):
        assert 0.0 <= result.confidence <= 1.0
        assert result.needs_review == (result.confidence < shipped.concepts.review_threshold)


@pytest.mark.parametrize("beam", [3, 1])
def test_a_photo_alone_gets_exactly_what_it_gets_in_a_batch(shipped, pristine_samples, beam):
    """The server often encodes one photo at a time; onnxruntime's single-row kernel would give it other last
    bits (scores, confidence) than the same photo batched with others, as the CLI batches it."""
    from desktop_app.captioning.decode import DecodeOptions
    from desktop_app.photos.pixels import load_pixels

    photos = sorted(pristine_samples.glob("*.jpg"))
    pixels = np.stack([load_pixels(p, shipped.preprocessing) for p in photos])
    options = DecodeOptions(beam_size=beam, no_repeat_ngram=3)
    batched = shipped.caption_pixels(pixels, options)
    for n, together in enumerate(batched):
        alone = shipped.caption_pixels(pixels[n:n + 1], options)[0]
        assert (alone.text, alone.score, alone.alternatives, alone.keywords, alone.confidence) == \
            (together.text, together.score, together.alternatives, together.keywords, together.confidence)
        np.testing.assert_array_equal(alone.attention, together.attention)


def test_format_1_bundle_still_runs_without_concepts(tmp_path, pristine_samples):
    def as_format_1(data):
        data["format_version"] = 1
        data.pop("concepts")
        for name in bf.CONCEPT_FILES:
            data["files"].pop(name)

    folder = _linked_bundle(tmp_path, as_format_1)
    (folder / bf.DECODER_STEP_FILE).unlink()  # a format-1 step graph does not rank
    plain_step_graph(DEFAULT_BUNDLE / bf.DECODER_STEP_FILE, folder / bf.DECODER_STEP_FILE)
    bf.write_manifest(folder, bf.Manifest.from_dict(json.loads((folder / bf.MANIFEST_FILE).read_text())))
    captioner = Captioner.open(folder, provider="cpu", threads=2)
    assert captioner.concepts is None
    result = captioner.caption_paths([pristine_samples / "chelsea.jpg"])[0]
    assert result.text and result.confidence is None and not result.needs_review
    assert set(result.keywords) <= set(result.words)  # only the caption's own words


def test_newer_bundle_is_refused_in_words(tmp_path):
    folder = _linked_bundle(tmp_path, lambda data: data.update(format_version=bf.FORMAT_VERSION + 1))
    with pytest.raises(bf.BundleError, match="needs a newer photocaption"):
        bf.load_bundle(folder)


def test_concept_files_are_part_of_the_bundle(tmp_path):
    folder = _linked_bundle(tmp_path, lambda data: None)
    (folder / bf.CONCEPTS_WORDS_FILE).unlink()
    with pytest.raises(bf.BundleError, match="concepts.json: missing from the bundle"):
        bf.load_bundle(folder)
    shutil.copyfile(DEFAULT_BUNDLE / bf.CONCEPTS_WORDS_FILE, folder / bf.CONCEPTS_WORDS_FILE)
    with open(folder / bf.CONCEPTS_WORDS_FILE, "a") as handle:
        handle.write(" ")
    with pytest.raises(bf.BundleError, match="sha256 does not match"):
        bf.load_bundle(folder)


def _scorer(**fields):
    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "dogs", "cat", "runs"])
    return ConceptScorer(bf.Concepts(words=["animal", "cat", "dog"], **fields), vocab)


def test_keywords_follow_the_thresholds_surest_first():
    scorer = _scorer(keyword_threshold=0.3, region_threshold=0.8, max_keywords=2)
    photo = PhotoConcepts(whole=np.array([0.9, 0.1, 0.4]), region=np.array([0.9, 0.85, 0.5]))
    assert scorer.keywords(photo) == ["animal", "cat"]  # cat by its region (0.85); dog cut by max_keywords
    assert _scorer(keyword_threshold=0.95, region_threshold=0.95).keywords(photo) == []


def test_a_broken_sentence_falls_back_to_what_the_models_see_objects_at_their_own_floor():
    """The espresso's "a small brown and white is playing with a small" lost its nouns: the words seen instead,
    surest first; an object word ("dog") only where the doubt penalty would let a caption name it."""
    scorer = _scorer(fallback_floor=0.3, fallback_words=2, object_groups=[["dog", "dog"]], object_floor=0.6)
    photo = PhotoConcepts(whole=np.array([0.35, 0.9, 0.5]), region=np.zeros(3))
    assert scorer.seen_words(photo) == ["cat", "animal"]  # dog (0.5) is under the object floor; at most 2 words
    assert _scorer(fallback_floor=0.0).seen_words(photo) == []  # off
    assert lost_noun("a small brown and white is playing with a small in the water".split())
    assert lost_noun("a man holding a red".split())
    for fine in ("a small brown and white dog runs", "two men are playing in a red game", "a dog and a cat"):
        assert not lost_noun(fine.split()), fine


def test_an_almost_surely_wrong_sentence_naming_a_doubted_object_falls_back(pristine_samples):
    """The rocket launch: the decoder's best sentence puts a man before a fire, where the models see a person with
    p 0.1 (doubted) and the confidence is 1%. What the models see is said instead; the sentence stays an alternative."""
    captioner = Captioner.open(provider="cpu", threads=2)
    assert captioner.concepts.fallback_confidence > 0
    rocket = captioner.caption_paths([pristine_samples / "rocket.jpg"])[0]
    people = {"man", "men", "woman", "women", "person", "people", "boy", "girl", "child", "player"}
    assert rocket.text.startswith("Possibly: ") and not people & set(rocket.text.lower().rstrip(".").split())
    assert rocket.needs_review and "man" in rocket.alternatives[0][0].lower().split()
    cat = captioner.caption_paths([pristine_samples / "chelsea.jpg"])[0]  # a sentence the models agree with stays
    assert cat.text == cat.alternatives[0][0] and "cat" in cat.text

    captioner.concepts.fallback_confidence = 0.0  # off: the decoder's sentence, flagged
    rocket = captioner.caption_paths([pristine_samples / "rocket.jpg"])[0]
    assert rocket.text == rocket.alternatives[0][0] and rocket.needs_review


def test_caption_bias_reaches_plurals_and_only_concept_words():
    scorer = _scorer(caption_bias=2.0, caption_region_weight=0.5)
    bias = scorer.caption_bias(np.array([[0.0, 0.2, 0.6]]), np.array([[0.0, 0.8, 0.0]]))
    expected = np.zeros((1, 9), np.float32)
    expected[0, [5, 6]] = 1.2  # dog, dogs: 2 x 0.6
    expected[0, 7] = 0.8  # cat: 2 x max(0.2, 0.5 x 0.8)
    np.testing.assert_allclose(bias, expected, rtol=1e-6)
    assert _scorer(caption_bias=0.0).caption_bias(np.zeros((1, 3)), np.zeros((1, 3))) is None


def test_learned_nouns_before_caption_bias_from_leave_captions_alone():
    """Words before caption_bias_from (the learned caption nouns) give keywords and confidence, no bias."""
    scorer = _scorer(caption_bias=2.0, caption_region_weight=0.5, caption_bias_from=2)  # animal, cat: no bias
    bias = scorer.caption_bias(np.array([[0.0, 0.2, 0.6]]), np.array([[0.0, 0.8, 0.0]]))
    expected = np.zeros((1, 9), np.float32)
    expected[0, [5, 6]] = 1.2  # dog, dogs still
    np.testing.assert_allclose(bias, expected, rtol=1e-6)
    features = scorer.confidence_features([7], -1.0, [([7], -1.0)], PhotoConcepts(np.array([0.0, 0.9, 0.1]),
                                                                                  np.zeros(3)))
    assert features["named_concepts"] == 1.0 and features["agreement"] == pytest.approx(0.9)  # "cat" still counts


def test_wordnet_gives_plain_search_words():
    pytest.importorskip("nltk")
    concepts = pytest.importorskip("model_export.concepts")
    if not (concepts.WORDNET_DIR / "data.noun").is_file():
        pytest.skip(f"WordNet 3.0 not installed in {concepts.WORDNET_DIR} (apt-get install wordnet-base)")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        wn = concepts.open_wordnet(Path(tmp))
        words = {wnid: concepts.class_words(wn, wnid) for wnid in
                 ("n02123045", "n07873807", "n03642806", "n07697537", "n02085620")}
    assert {"tabby", "cat", "animal"} <= set(words["n02123045"])  # tabby cat
    assert {"pizza", "food"} <= set(words["n07873807"])
    assert {"laptop", "computer"} <= set(words["n03642806"])
    assert "dog" not in words["n07697537"]  # a hot dog is food, not a dog
    assert {"chihuahua", "dog", "animal"} <= set(words["n02085620"])
