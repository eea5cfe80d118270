"""CHAIR (object hallucination) on made-up captions with known answers, and the doubt penalty that cuts it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop_app.bundle.format import Concepts
from desktop_app.bundle.vocabulary import SPECIAL_TOKENS, Vocabulary, singular
from desktop_app.captioning.concepts import ConceptScorer
from model_export.chair import SYNONYMS, ObjectTable, chair, ground_truth

needs_table = pytest.mark.skipif(not SYNONYMS.is_file(), reason=f"the CHAIR synonym table is not at {SYNONYMS}")


def test_singular_reads_plural_caption_words():
    assert [singular(w) for w in ("dogs", "women", "puppies", "buses", "glasses", "boxes", "grass", "people")] == \
        ["dog", "woman", "puppy", "bus", "glass", "box", "grass", "people"]


@needs_table
def test_mentions_follow_the_papers_rules():
    table = ObjectTable.load()
    assert table.mentions("Two puppies chase a kitten.") == ["dog", "cat"]
    assert table.mentions("A man eats a hot dog near a fire hydrant.") == ["person", "hot dog", "fire hydrant"]
    assert table.mentions("A baby elephant and a passenger train.") == ["elephant", "train"]
    assert table.mentions("A toilet seat in a bathroom.") == ["toilet"]
    assert table.mentions("An empty room with a window.") == []


@needs_table
def test_chair_counts_captions_and_mentions_of_absent_objects():
    table = ObjectTable.load()
    references = {"a.jpg": ["A cat sleeps on a couch.", "A kitten on a sofa."],
                  "b.jpg": ["An empty kitchen with an oven."],
                  "c.jpg": ["A bus on a street."]}
    truth = ground_truth(table, references, {"b.jpg": ["person"]})  # an annotated person the references miss
    assert truth == {"a.jpg": {"cat", "couch"}, "b.jpg": {"oven", "person"}, "c.jpg": {"bus"}}
    score = chair(table, truth, {"a.jpg": "A brown dog on a couch.",  # dog absent, couch there
                                 "b.jpg": "A woman in a kitchen.",  # the annotated person: not a hallucination
                                 "c.jpg": "A man and a dog near a bus."})  # man and dog absent
    assert (score.captions, score.hallucinating) == (3, 2)
    assert (score.mentions, score.absent_mentions) == (6, 3)
    assert score.chair_s == pytest.approx(2 / 3) and score.chair_i == pytest.approx(0.5)
    assert (score.truth, score.covered) == (5, 3)  # couch, person, bus of cat, couch, oven, person, bus
    assert score.absent == {"dog": 2, "person": 1}


def _scorer(**penalties) -> tuple[ConceptScorer, Vocabulary]:
    vocabulary = Vocabulary([*SPECIAL_TOKENS, "a", "dog", "dogs", "puppy", "man", "grass", "sitting"])
    concepts = Concepts(words=["dog", "puppy", "man", "grass"], object_groups=[["dog", "puppy"], ["person", "man"]],
                        **penalties)
    return ConceptScorer(concepts, vocabulary), vocabulary


def test_penalty_falls_on_words_the_models_do_not_see():
    scorer, vocab = _scorer(object_penalty=3.0, object_floor=0.5, word_penalty=1.0, word_floor=0.3,
                            penalty_region_weight=0.0)
    #                  dog  puppy man  grass
    whole = np.array([[0.05, 0.9, 0.1, 0.6]], np.float32)
    bias = scorer.caption_bias(whole, np.zeros_like(whole))[0]
    ids = vocab.index
    assert bias[ids["dog"]] == bias[ids["dogs"]] == bias[ids["puppy"]] == 0.0  # its group is seen (puppy 0.9)
    assert bias[ids["man"]] == pytest.approx(3.0 * np.log(0.1 / 0.5))
    assert bias[ids["grass"]] == 0.0  # over its floor
    assert bias[ids["a"]] == bias[ids["sitting"]] == 0.0  # not concept words


def test_no_penalty_no_bias():
    scorer, _ = _scorer()
    whole = np.full((2, 4), 0.01, np.float32)
    assert scorer.caption_bias(whole, whole) is None


def test_a_caption_naming_a_doubted_object_is_flagged():
    scorer, vocab = _scorer(object_penalty=3.0, object_floor=0.5, word_penalty=1.0, word_floor=0.3,
                            penalty_region_weight=0.0, review_floor=0.2)
    from desktop_app.captioning.concepts import PhotoConcepts

    photo = PhotoConcepts(np.array([0.05, 0.9, 0.1, 0.01], np.float32), np.zeros(4, np.float32))
    ids = vocab.index
    assert scorer.doubted([ids["a"], ids["man"], ids["sitting"]], photo) == [ids["man"]]
    assert scorer.doubted([ids["a"], ids["dogs"]], photo) == []  # seen as a puppy
    assert scorer.doubted([ids["grass"]], photo) == []  # not an object word: penalised, never flagged


def test_a_kind_can_have_its_own_floor():
    scorer, vocab = _scorer(object_penalty=3.0, object_floor=0.5, kind_floors={"person": 0.2},
                            penalty_region_weight=0.0)
    whole = np.array([[0.3, 0.3, 0.15, 0.6]], np.float32)
    bias = scorer.caption_bias(whole, np.zeros_like(whole))[0]
    assert bias[vocab.index["dog"]] == pytest.approx(3.0 * np.log(0.3 / 0.5))
    assert bias[vocab.index["man"]] == pytest.approx(3.0 * np.log(0.15 / 0.2))


@needs_table
def test_object_kinds_leave_out_words_whose_imagenet_class_is_another_thing():
    """A jug (ImageNet's "pitcher") is no person, a bird of prey no kite, an archer's bow no tie: counted as
    evidence of the kind, the espresso's jug let lite2's caption name a person beside it."""
    from model_export.concepts import object_groups

    groups = {group[0]: set(group) for group in object_groups(["man", "pitcher", "player", "kite", "bow", "tie", "dog"])}
    assert groups == {"person": {"person", "man", "player"}, "tie": {"tie"}, "dog": {"dog"}}
