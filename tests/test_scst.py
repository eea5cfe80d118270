"""Self-critical training raises the CIDEr-D reward, resumes exactly, and its CIDEr-D is coco-caption's."""

import csv
import json
import random

import numpy as np
import pytest
import torch

from desktop_app.bundle.vocabulary import Vocabulary
from model_export.checkpoint import load_trained
from model_export.cider import CiderD
from model_export.data.prepare import PREPARED_FILE, VOCAB_FILE, features_file
from model_export.decoder import CaptionDecoder, DecoderConfig
from model_export.scst import ScstConfig, sample_captions, scst, self_critical_loss

CLASSES = {  # each "photo" class has its own features and its own five captions
    "red": ["a red ball on the grass", "a red ball lies on green grass", "red ball on grass",
            "a small red ball on the grass", "the red ball is on the grass"],
    "dog": ["a dog runs on the beach", "a brown dog runs along the beach", "dog running on a beach",
            "a dog is running on the sand", "the dog runs by the water"],
    "man": ["a man rides a bike", "a man is riding a bicycle", "man on a bike in the street",
            "a man rides his bike down the road", "a person rides a bike"],
    "kids": ["two children play in the snow", "two kids are playing in snow", "children playing in the snow",
             "two small children play outside in the snow", "kids play in white snow"],
}


def _corpus(rng, count):
    words = "a the dog man runs on grass in red shirt ball water beach plays with two".split()
    return [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(count)]


def test_vectorised_cider_d_equals_pycocoevalcap():
    from pycocoevalcap.cider.cider import Cider

    rng = random.Random(0)
    refs = {i: _corpus(rng, 5) for i in range(60)}
    refs[7] = refs[7][:3]  # images with fewer references
    hyps = {i: _corpus(rng, 1) for i in range(60)}
    hyps[3], hyps[5], hyps[9] = ["zebra"], [""], [refs[9][0]]  # unseen word, empty caption, exact reference
    expected_mean, expected = Cider().compute_score(refs, hyps)
    ours = CiderD([[r.split() for r in refs[i]] for i in range(60)]).score([hyps[i][0].split() for i in range(60)],
                                                                          list(range(60)))
    assert np.abs(ours - expected).max() < 1e-12
    assert ours.mean() == pytest.approx(expected_mean, abs=1e-12)


def test_cider_scores_many_hypotheses_per_image_against_fixed_document_frequencies():
    refs = [["a dog runs".split(), "a dog is running".split()], ["a man rides a bike".split()]]
    cider = CiderD(refs)
    scores = cider.score(["a dog runs".split(), "a man rides a bike".split(), "a dog runs".split()], [0, 1, 1])
    assert scores[0] > 0 and scores[1] > scores[2] == 0.0  # the same caption scores only against its own photo


def test_baseline_is_the_mean_of_the_other_samples():
    rewards = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    log_probs = torch.zeros(6, 2, requires_grad=True)
    loss = self_critical_loss(log_probs, torch.ones(6, 2, dtype=torch.bool), rewards, samples=3)
    loss.backward()
    # advantage = r - mean(others): -1.5, 0, 1.5 for the first photo; 0 for equal rewards
    expected = -torch.tensor([-1.5, 0.0, 1.5, 0.0, 0.0, 0.0]) / 12
    assert torch.allclose(log_probs.grad[:, 0], expected)


def test_sampled_captions_end_with_padding_of_zero_log_probability():
    torch.manual_seed(0)
    decoder = CaptionDecoder(DecoderConfig(vocab_size=6, feature_dim=8, memory_dim=8, embed_dim=4, hidden_dim=8,
                                           attention_dim=4, dropout=0.0)).eval()
    with torch.no_grad():
        decoder.output.bias[2] = 3.0  # <end> likely at every step, so captions end at different lengths
    tokens, log_probs, mask = sample_captions(decoder, torch.randn(4, 3, 8), 5, 10, 1, 2, (0, 1, 3),
                                              torch.Generator().manual_seed(0))
    lengths = mask.sum(dim=1)
    assert tokens.shape[0] == 20 and lengths.min() < lengths.max()
    for row, n in zip(tokens, lengths):
        assert (row[: n - 1] > 3).all() and row[n - 1] in (2, *range(4, 6))  # words, then <end> (or the cap)
        assert (row[n:] == 0).all()
    assert torch.isfinite(log_probs).all() and (log_probs[~mask] == 0).all() and (log_probs[mask] < 0).all()


@pytest.fixture
def tiny(tmp_path):
    """A prepared set without photos (features drawn per class) and an untrained decoder checkpoint."""
    rng = np.random.default_rng(0)
    names = list(CLASSES)
    prototypes = rng.standard_normal((len(names), 4, 16))
    images, captions, labels = [], {}, []
    for n in range(48):
        label = n % len(names)
        images.append(f"{n}.jpg")
        captions[f"{n}.jpg"] = CLASSES[names[label]]
        labels.append(label)
    features = prototypes[labels] + 0.1 * rng.standard_normal((48, 4, 16))
    root = tmp_path / "prepared"
    root.mkdir()
    splits = {"train": list(range(32)), "val": list(range(32, 40)), "test": list(range(40, 48))}
    vocab = Vocabulary.build([c for i in splits["train"] for c in captions[images[i]]], min_count=1)
    vocab.save(root / VOCAB_FILE)
    (root / PREPARED_FILE).write_text(json.dumps({
        "image_dir": str(tmp_path), "images": images, "splits": splits, "captions": captions, "encoder": "lite0",
        "source": "test classes", "min_count": 1}))
    np.save(root / features_file("lite0"), features.astype(np.float16))
    torch.manual_seed(0)
    config = DecoderConfig(vocab_size=len(vocab), feature_dim=16, memory_dim=32, embed_dim=16, hidden_dim=32,
                           attention_dim=16, dropout=0.0)
    checkpoint = tmp_path / "start.pt"
    torch.save({"decoder_config": config.to_dict(), "decoder": CaptionDecoder(config).state_dict(),
                "encoder_name": "lite0", "encoder": None, "vocabulary": vocab.words, "data_source": "test"},
               checkpoint)
    return root, checkpoint


SETTINGS = dict(samples=4, batch_size=8, lr=1e-2, max_length=8, checkpoint_every=10, eval_every=30, threads=1,
                quiet=True, patience=99)


def test_self_critical_training_raises_the_reward(tiny, tmp_path):
    data, start = tiny
    summary = scst(ScstConfig(checkpoint=start, data=data, out=tmp_path / "run", max_steps=60, **SETTINGS))
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    rewards = [float(r["reward"]) for r in rows if r["reward"]]
    # From an untrained decoder: mean sampled CIDEr-D (x1) measured 0.31, 0.43, 0.53, 0.59, 0.67, 0.71.
    assert rewards[-1] > 1.8 * rewards[0] and rewards[-1] == max(rewards), rewards
    assert all(np.isfinite(float(r["loss"])) for r in rows if r["loss"])
    assert [r["step"] for r in rows] == ["0", "10", "20", "30", "40", "50", "60"]
    assert summary["best_val_CIDEr-D"] > float(rows[0]["val_CIDEr-D"])
    best = load_trained(tmp_path / "run" / "best.pt")  # what evaluate and export read
    assert best.meta["val_scores"]["val_CIDEr-D"] == pytest.approx(summary["best_val_CIDEr-D"])
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000


def test_resume_continues_exactly(tiny, tmp_path):
    data, start = tiny
    scst(ScstConfig(checkpoint=start, data=data, out=tmp_path / "straight", max_steps=20, **SETTINGS))
    scst(ScstConfig(checkpoint=start, data=data, out=tmp_path / "resumed", max_steps=10, **SETTINGS))
    torch.manual_seed(123), np.random.seed(123)  # disturb global RNGs between runs
    scst(ScstConfig(checkpoint=start, data=data, out=tmp_path / "resumed", max_steps=20, resume=True, **SETTINGS))
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    assert a["scst"]["step"] == b["scst"]["step"] == 20
    assert all(torch.equal(a["decoder"][k], b["decoder"][k]) for k in a["decoder"])
    log = list(csv.DictReader(open(tmp_path / "resumed" / "log.csv")))
    assert [r["step"] for r in log] == ["0", "10", "20"]


def test_extra_data_joins_training_with_its_train_split_only(tiny, tmp_path):
    from model_export.scst import ScstTrainer

    data, start = tiny
    extra = tmp_path / "extra"
    extra.mkdir()
    meta = json.loads((data / PREPARED_FILE).read_text())
    meta["splits"] = {"train": list(range(0, 12)), "test": list(range(12, 48))}  # test: never trained on
    (extra / PREPARED_FILE).write_text(json.dumps(meta))
    (extra / VOCAB_FILE).write_text((data / VOCAB_FILE).read_text())
    np.save(extra / features_file("lite0"), np.load(data / features_file("lite0")))
    settings = {**SETTINGS, "batch_size": 4}
    trainer = ScstTrainer(ScstConfig(checkpoint=start, data=data, out=tmp_path / "run", extra_data=extra,
                                     extra_repeat=2, max_steps=2, **settings))
    per_epoch = len(trainer.pool) // 4
    drawn = np.concatenate([trainer.batch_of(step) for step in range(per_epoch)])
    sources, index = trainer.photo_source[drawn], trainer.photo_index[drawn]
    assert len(drawn) == 32 + 2 * 12
    assert sorted(index[sources == 0]) == list(range(32))  # the main train split once
    assert sorted(index[sources == 1]) == sorted(list(range(12)) * 2)  # the extra train split twice, no test photo
    assert trainer.cider.log_images == pytest.approx(np.log(32 + 12))  # document frequencies over both, each photo once
    assert trainer.data_source() == f"test classes + test classes: train split only, x2; self-critical fine-tuning (CIDEr-D) of {start}"
    assert trainer.run()["step"] == 2


def test_extra_data_from_another_encoder_is_refused(tiny, tmp_path):
    from model_export.data.captions import DataError

    data, start = tiny
    extra = tmp_path / "extra"
    extra.mkdir()
    meta = {**json.loads((data / PREPARED_FILE).read_text()), "encoder": "lite2"}
    (extra / PREPARED_FILE).write_text(json.dumps(meta))
    (extra / VOCAB_FILE).write_text((data / VOCAB_FILE).read_text())
    with pytest.raises(DataError, match="lite2"):
        scst(ScstConfig(checkpoint=start, data=data, out=tmp_path / "run", extra_data=extra, max_steps=1, **SETTINGS))


def test_a_checkpoint_is_scored_with_its_own_vocabulary_on_data_prepared_with_another(tiny, tmp_path):
    """COCO photos prepared on their own have their own vocabulary; the Flickr8k model's token ids are its own."""
    from model_export.evaluate import evaluate_checkpoint

    data, start = tiny
    scst(ScstConfig(checkpoint=start, data=data, out=tmp_path / "run", max_steps=10, **SETTINGS))
    other = tmp_path / "other"
    other.mkdir()
    (other / PREPARED_FILE).write_text((data / PREPARED_FILE).read_text())
    np.save(other / features_file("lite0"), np.load(data / features_file("lite0")))
    words = Vocabulary.load(data / VOCAB_FILE).words
    Vocabulary(words[:4] + words[4:][::-1]).save(other / VOCAB_FILE)  # same words, other ids
    same = evaluate_checkpoint(tmp_path / "run" / "best.pt", data, "test", 2, tmp_path / "a", attention_figure=False)
    moved = evaluate_checkpoint(tmp_path / "run" / "best.pt", other, "test", 2, tmp_path / "b", attention_figure=False)
    assert [s["caption"] for s in moved["samples"]] == [s["caption"] for s in same["samples"]]
    assert moved["scores"] == same["scores"] and same["scores"]["CIDEr-D"] > 0


def test_learning_rate_decays_with_the_step_and_resume_follows_it(tiny, tmp_path):
    data, start = tiny
    settings = {**SETTINGS, "lr_decay": 0.5, "lr_decay_every": 10}
    scst(ScstConfig(checkpoint=start, data=data, out=tmp_path / "run", max_steps=20, **settings))
    scst(ScstConfig(checkpoint=start, data=data, out=tmp_path / "run", max_steps=30, resume=True, **settings))
    log = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [(r["step"], float(r["lr"])) for r in log] == [("0", 1e-2), ("10", 1e-2), ("20", 5e-3), ("30", 2.5e-3)]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["optimizer"]["param_groups"][0]["lr"] == 2.5e-3
