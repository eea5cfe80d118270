"""Greedy and beam search on a toy model whose probabilities we choose."""

import itertools
from dataclasses import replace

import numpy as np

from desktop_app.captioning.decode import (BeamSearch, DecodeOptions, DecoderState, RankingStepModel, beam_search,
                                          greedy_search, top_k)

START, END = 1, 2


def loop(**changes) -> DecodeOptions:
    """The bare loop: no n-gram ban unless a test asks for one (the app's default bans repeated 3-grams)."""
    return DecodeOptions(**{"no_repeat_ngram": 0, **changes})

V = 6  # 0 pad, 1 start, 2 end, 3..5 words


class TableModel:
    """Next-token distribution depends only on the previous token (a Markov chain).

    Greedy takes token 3 first (0.5) but every continuation of 3 is flat;
    token 4 (0.4) is followed by END with 0.9: beam search must find "4".
    """

    vocab_size = V
    table = {START: [0, 0, 0.0, 0.5, 0.4, 0.1], 3: [0, 0, 0.3, 0.2, 0.25, 0.25], 4: [0, 0, 0.9, 0.05, 0.0, 0.05],
             5: [0, 0, 0.5, 0.5, 0.0, 0.0]}

    def init(self, features):
        rows = len(features)
        return DecoderState(features[:, :, :1].copy(), features[:, :, :1].copy(), np.zeros((rows, 1), np.float32),
                            np.zeros((rows, 1), np.float32))

    def step(self, tokens, state):
        with np.errstate(divide="ignore"):
            # Padding rows of a beam with too few live candidates feed END; their scores are never read.
            log_probs = np.log(np.array([self.table.get(int(t), self.table[START]) for t in tokens]))
        alpha = np.full((len(tokens), state.memory.shape[1]), 1.0 / state.memory.shape[1])
        return log_probs, state, alpha


def _logp(tokens):
    prev, total = START, 0.0
    with np.errstate(divide="ignore"):
        for t in [*tokens, END]:
            total += np.log(TableModel.table[prev][t])
            prev = t
    return total


def test_greedy_takes_the_locally_best_word():
    caps = greedy_search(TableModel(), np.zeros((1, 4, 2), np.float32), START, END, loop(beam_size=1, max_length=3))
    assert caps[0].tokens[0] == 3


def test_beam_finds_the_most_probable_caption():
    options = loop(beam_size=3, max_length=4, length_penalty=0.0)
    cap = beam_search(TableModel(), np.zeros((1, 4, 2), np.float32), START, END, options)[0]
    best = max((seq for n in range(1, 5) for seq in itertools.product([3, 4, 5], repeat=n)), key=_logp)
    assert cap.tokens == list(best) == [4]
    assert np.isclose(cap.score, _logp([4]))
    assert cap.attention.shape == (1, 4)
    assert cap.alternatives[0][0] == [4] and len(cap.alternatives) == 3
    assert all(a[1] >= b[1] for a, b in zip(cap.alternatives, cap.alternatives[1:]))


def test_batched_beam_equals_one_photo_at_a_time():
    options = loop(beam_size=2, max_length=5)
    batch = beam_search(TableModel(), np.zeros((3, 4, 2), np.float32), START, END, options)
    single = beam_search(TableModel(), np.zeros((1, 4, 2), np.float32), START, END, options)[0]
    assert all(c.tokens == single.tokens and np.isclose(c.score, single.score) for c in batch)


def test_no_repeat_ngram_blocks_repeats():
    class Repeater(TableModel):
        table = {START: [0, 0, 0, 0.9, 0.05, 0.05], 3: [0, 0, 0.01, 0.9, 0.05, 0.04], 4: [0, 0, 0.01, 0.9, 0.05, 0.04],
                 5: [0, 0, 0.01, 0.9, 0.05, 0.04]}

    plain = greedy_search(Repeater(), np.zeros((1, 2, 2), np.float32), START, END, loop(max_length=5))
    assert plain[0].tokens == [3, 3, 3, 3, 3]
    blocked = greedy_search(Repeater(), np.zeros((1, 2, 2), np.float32), START, END,
                            loop(max_length=5, no_repeat_ngram=1))
    assert len(set(blocked[0].tokens)) == len(blocked[0].tokens)
    beam = beam_search(Repeater(), np.zeros((1, 2, 2), np.float32), START, END,
                       loop(beam_size=2, max_length=6, no_repeat_ngram=2))
    bigrams = list(zip(beam[0].tokens, beam[0].tokens[1:]))
    assert len(bigrams) == len(set(bigrams))


def test_max_length_ends_every_caption():
    caps = beam_search(TableModel(), np.zeros((2, 4, 2), np.float32), START, END, loop(beam_size=3, max_length=2))
    assert all(1 <= len(c.tokens) <= 2 for c in caps)


def test_suppressed_tokens_are_never_emitted():
    """<unk> may be the likeliest next token; a caption a person reads must not contain it."""
    options = loop(beam_size=1, max_length=3, suppress=(3,))
    greedy = greedy_search(TableModel(), np.zeros((1, 4, 2), np.float32), START, END, options)[0]
    assert 3 not in greedy.tokens and greedy.tokens == [4]
    beam = beam_search(TableModel(), np.zeros((1, 4, 2), np.float32), START, END,
                       loop(beam_size=3, max_length=4, suppress=(3,)))[0]
    assert all(3 not in tokens for tokens, _ in beam.alternatives)


def test_bias_moves_the_search_towards_a_word():
    """A per-photo bias (what the encoder's classifier sees) is added at every step, to that photo's rows only."""
    features = np.zeros((2, 4, 2), np.float32)
    bias = np.zeros((2, V), np.float32)
    bias[1, 5] = 3.0  # photo 1: "5" is what the classifier sees
    for options in (loop(beam_size=3, max_length=4, length_penalty=0.0), loop(beam_size=1, max_length=4)):
        plain, biased = (beam_search(TableModel(), features, START, END, options, bias)[i].tokens for i in (0, 1))
        assert 5 not in plain and 5 in biased


class RankingTableModel(TableModel):
    """The same chain, ranking its words itself (as a format-3 step graph does)."""

    def top(self, tokens, state, bias, k):
        log_probs, state, alpha = self.step(tokens, state)
        values, ids = top_k(log_probs + bias, k)
        return values, ids, state, alpha


def test_top_k_sorts_as_onnx_topk():
    """Largest first; among equal values the lower column first (argmax's choice, ONNX TopK's order)."""
    values, ids = top_k(np.array([[0.1, 0.5, 0.5, -np.inf, 0.2]], np.float32), 4)
    assert ids.tolist() == [[1, 2, 4, 0]] and values[0, 0] == 0.5


def test_a_ranking_model_gives_the_same_captions():
    assert isinstance(RankingTableModel(), RankingStepModel) and not isinstance(TableModel(), RankingStepModel)
    features = np.zeros((2, 4, 2), np.float32)
    for options in (loop(beam_size=3, max_length=5, no_repeat_ngram=2), loop(beam_size=1, max_length=5)):
        for a, b in zip(beam_search(TableModel(), features, START, END, options),
                        beam_search(RankingTableModel(), features, START, END, options)):
            assert a.tokens == b.tokens and a.score == b.score and a.alternatives == b.alternatives


def test_photos_that_end_early_leave_the_others_alone():
    """Photos of a batch end at different steps and their rows are dropped: each still gets the caption it
    gets alone, with every hypothesis and score."""
    bias = np.zeros((6, V), np.float32)
    bias[1, 2] = 5.0  # photo 1 ends at once
    bias[2, 3] = 4.0  # photo 2 prefers to ramble
    bias[3:, 5] = [1.0, 2.0, 3.0]
    features = np.zeros((6, 4, 2), np.float32)
    for options in (loop(beam_size=3, max_length=8), loop(beam_size=1, max_length=8)):
        batch = beam_search(TableModel(), features, START, END, options, bias)
        for b in range(6):
            alone = beam_search(TableModel(), features[b:b + 1], START, END, options, bias[b:b + 1])[0]
            assert (batch[b].tokens, batch[b].score, batch[b].alternatives) == (alone.tokens, alone.score, alone.alternatives)
            assert np.array_equal(batch[b].attention, alone.attention)
        assert len({len(c.tokens) for c in batch}) > 1


def test_n_best_lists_distinct_hypotheses_best_first():
    options = loop(beam_size=4, max_length=4, n_best=4, no_repeat_ngram=2)
    cap = beam_search(TableModel(), np.zeros((1, 4, 2), np.float32), START, END, options)[0]
    assert len(cap.alternatives) == 4 and len({tuple(t) for t, _ in cap.alternatives}) == 4
    assert [s for _, s in cap.alternatives] == sorted((s for _, s in cap.alternatives), reverse=True)
    assert (cap.tokens, cap.score) == cap.alternatives[0]


class StatefulModel(TableModel):
    """The chain, moved by each row's memory and state (h carries the words so far): a row fed another row's
    memory, h or bias, or a step's ranking cut short, changes its captions."""

    def init(self, features):
        return DecoderState(features.copy(), features[:, :, :1].copy(), features.mean(axis=1)[:, :1].copy(),
                            np.zeros((len(features), 1)))

    def step(self, tokens, state):
        with np.errstate(divide="ignore"):
            base = np.log(np.array([self.table.get(int(t), self.table[START]) for t in tokens]))
        shift = state.memory.mean(axis=1)[:, :1] * np.arange(V) + np.sin(state.h * np.arange(1, V + 1))
        logits = base + shift
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        h = 0.5 * state.h + 0.1 * tokens[:, None]
        weights = np.exp(state.memory[:, :, 0] * (1 + state.h))
        alpha = weights / weights.sum(axis=1, keepdims=True)
        return log_probs, DecoderState(state.memory, state.keys, h, state.c), alpha


def test_photos_joining_a_running_search_get_the_captions_they_get_alone():
    """Continuous batching: batches join a running BeamSearch at different steps, share its steps, each photo
    is handed back as soon as it ends, and each gets exactly what beam_search gives its batch alone: words,
    scores, every alternative, attention."""
    rng = np.random.default_rng(7)
    joins = {0: 3, 1: 2, 2: 1, 3: 4, 4: 2}  # step -> photos in the batch that joins before it
    batches = {}
    for step, n in joins.items():
        bias = rng.normal(scale=2.0, size=(n, V)).astype(np.float32)
        bias[:, END] = rng.uniform(-6, 0, size=n)  # some captions run to max_length
        batches[step] = rng.normal(size=(n, 4, 2)), bias
    for options in (loop(beam_size=3, max_length=7, no_repeat_ngram=2, n_best=3),
                    loop(beam_size=2, max_length=5, n_best=2, suppress=(5,), length_penalty=0.5)):
        search, got, shared, early = BeamSearch(StatefulModel(), START, END, options), {}, 0, 0
        step = 0
        while step <= max(joins) or len(search):
            if step in joins:
                shared += len(search) > 0
                search.add(*batches[step], tag=step)
            for tag, photo, caption in search.step():
                got.setdefault(tag, {})[photo] = caption
            early += any(len(got[tag]) < len(batches[tag][0]) for tag in got)  # a batch partly handed back
            step += 1
        assert shared == len(joins) - 1 and early  # later batches joined while others searched; no photo waited
        ended = []
        for start, (features, bias) in batches.items():
            alone = beam_search(StatefulModel(), features, START, END, options, bias)
            for a, b in zip([got[start][n] for n in range(len(features))], alone, strict=True):
                assert (a.tokens, a.score, a.alternatives) == (b.tokens, b.score, b.alternatives), (start, options)
                assert np.array_equal(a.attention, b.attention)
                assert all(5 not in words for words, _ in a.alternatives) or not options.suppress
            ended += [len(c.tokens) for c in alone]
        assert options.max_length in ended and min(ended) < options.max_length  # some ran to the limit, some not


def test_sentence_guards_keep_a_caption_readable():
    """Where the likeliest path is "3 3 <end>" (a word twice, as in "is is") or ends right after 4 (as in
    "sitting on a."), or puts 5 after the article 4 ("on a in"), the search takes the readable path instead,
    greedy and beam alike."""
    class Stutter(TableModel):
        table = {START: [0, 0, 0, 0.6, 0.3, 0.1], 3: [0, 0, 0.1, 0.6, 0.2, 0.1], 4: [0, 0, 0.5, 0.1, 0.0, 0.4],
                 5: [0, 0, 0.9, 0.05, 0.05, 0.0]}

    features = np.zeros((1, 2, 2), np.float32)
    plain = greedy_search(Stutter(), features, START, END, loop(beam_size=1, max_length=4))[0]
    assert plain.tokens[:2] == [3, 3]
    guarded = loop(beam_size=1, max_length=4, no_word_twice=True, no_end_after=(4,), not_after=(((4,), (5,)),))
    for options in (guarded, replace(guarded, beam_size=3)):
        search = greedy_search if options.beam_size == 1 else beam_search
        for tokens, _ in search(Stutter(), features, START, END, options)[0].alternatives:
            assert all(a != b for a, b in zip(tokens, tokens[1:])), tokens  # no word twice in a row
            assert not tokens or tokens[-1] != 4 or len(tokens) == options.max_length, tokens  # no end after 4
            assert all((a, b) != (4, 5) for a, b in zip(tokens, tokens[1:])), tokens  # no 5 after 4
