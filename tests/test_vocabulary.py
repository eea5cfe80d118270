import pytest

from desktop_app.bundle.vocabulary import SPECIAL_TOKENS, Vocabulary, tokenize


def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("A Dog's ball, on the GRASS!  ") == ["a", "dog's", "ball", "on", "the", "grass"]
    assert tokenize("...") == []
    assert tokenize("two-year-old 3 dogs") == ["two", "year", "old", "3", "dogs"]


def test_build_keeps_frequent_words_in_frequency_order():
    vocab = Vocabulary.build(["a dog runs", "a dog sits", "a cat"], min_count=2)
    assert vocab.words == [*SPECIAL_TOKENS, "a", "dog"]


def test_encode_decode_round_trip_with_unknown_words():
    vocab = Vocabulary.build(["a dog runs"] * 5, min_count=1)
    ids = vocab.encode("A dog flies")
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id
    assert vocab.decode(ids) == ["a", "dog", "<unk>"]
    assert vocab.decode([vocab.index["dog"], vocab.end_id, vocab.index["a"]]) == ["dog"]


def test_empty_caption_encodes_to_start_end():
    vocab = Vocabulary.build(["x"], min_count=1)
    assert vocab.encode("!!!") == [vocab.start_id, vocab.end_id]


def test_invalid_vocabularies_are_refused(tmp_path):
    with pytest.raises(ValueError, match="must start with"):
        Vocabulary(["dog", "cat"])
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary([*SPECIAL_TOKENS, "dog", "dog"])
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build([], min_count=0)
    bad = tmp_path / "vocab.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a vocabulary file"):
        Vocabulary.load(bad)


def test_save_load(tmp_path):
    vocab = Vocabulary.build(["a red circle", "a blue square"], min_count=1)
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").words == vocab.words
