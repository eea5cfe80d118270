"""Greedy and beam search over a single-step decoder, in NumPy.

The loop lives outside the ONNX graphs (as in Hugging Face optimum's
encoder/decoder split), so one implementation serves the app (onnxruntime)
and training's evaluation (PyTorch): both only supply a ``StepModel``.

Each step works on every row at once: the model returns only each row's best
few words (``RankingStepModel``: a TopK inside the step graph; otherwise
``top_k`` here), and the beam bookkeeping is array arithmetic over photos, so
the Python cost of a step does not grow with the batch. Photos whose search
has ended are dropped from the rows the model is fed.

A ``BeamSearch`` also takes new photos while it runs (continuous batching, for
the serve module): each batch that joins is a cohort with its own step number
and bookkeeping, all cohorts share one step call, and each photo is handed
back as soon as it ends. ``beam_search`` is one cohort stepped to its end, so
a photo's caption does not depend on when it joined or who shared its steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from desktop_app.captioning.options import DecodeOptions


COMPACT_AT = 0.75  # drop ended photos' rows once the rows still searching are this share or fewer


@dataclass
class DecoderState:
    """Per-row decoder state; rows are photos (greedy) or photo x beam (beam search)."""

    memory: np.ndarray  # [R, N, D] projected grid features
    keys: np.ndarray  # [R, N, A] attention keys
    h: np.ndarray  # [R, H]
    c: np.ndarray  # [R, H]

    def select(self, rows: np.ndarray) -> "DecoderState":
        return DecoderState(self.memory[rows], self.keys[rows], self.h[rows], self.c[rows])


class StepModel(Protocol):
    """What a decode loop needs from a model."""

    vocab_size: int

    def init(self, features: np.ndarray) -> DecoderState: ...

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState, np.ndarray]:
        """tokens [R] -> (log_probs [R, V], next state, attention [R, N])."""
        ...


@runtime_checkable
class RankingStepModel(Protocol):
    """A step model that also ranks the words itself (format-3 bundles: TopK in the step graph)."""

    def top(self, tokens: np.ndarray, state: DecoderState, bias: np.ndarray,
            k: int) -> tuple[np.ndarray, np.ndarray, DecoderState, np.ndarray]:
        """-> (values [R, k], ids [R, k]: the k largest of log_probs + bias per row, largest first and
        lower id first among equals, as ONNX TopK sorts; next state; attention [R, N])."""
        ...


@dataclass
class Caption:
    """One photo's decoded caption."""

    tokens: list[int]  # without <start>/<end>
    score: float  # length-normalised log-probability
    attention: np.ndarray  # [len(tokens), N]: where the model looked for each word
    alternatives: list[tuple[list[int], float]] = field(default_factory=list)  # n-best, best first, incl. this one


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest values and their columns, sorted as ONNX TopK sorts them (for step models
    whose graph does not rank; a partial sort, since a full one over the vocabulary costs more than a step)."""
    k = min(k, values.shape[1])
    part = np.argpartition(-values, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(values, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)
    return np.take_along_axis(picked, order, axis=1), np.take_along_axis(part, order, axis=1)


def _ranked_step(model: StepModel, tokens: np.ndarray, state: DecoderState, bias: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray, DecoderState, np.ndarray]:
    """The ``k`` best next words of each row under ``bias``: from the graph when it ranks, else in NumPy."""
    if isinstance(model, RankingStepModel):
        return model.top(tokens, state, bias, k)
    log_probs, state, alpha = model.step(tokens, state)
    values, ids = top_k(log_probs + bias, k)
    return values, ids, state, alpha


def _word_bias(model: StepModel, photos: int, options: DecodeOptions, bias: np.ndarray | None) -> np.ndarray:
    """[B, V] added to every step's log-probabilities: the caller's bias, and -inf for suppressed words."""
    out = np.zeros((photos, model.vocab_size), np.float32) if bias is None else np.array(bias, np.float32)
    if options.suppress:
        out[:, list(options.suppress)] = -np.inf
    return out


def _normalised(logp: np.ndarray, length: np.ndarray, penalty: float) -> np.ndarray:
    """logp / len**penalty, the power taken by Python (NumPy's vectorised pow may round differently)."""
    length = np.asarray(length)
    return logp / np.array([max(n, 1) ** penalty for n in range(int(length.max(initial=0)) + 1)])[length]


def _ban_repeats(history: np.ndarray, n: int, ids: np.ndarray, values: np.ndarray) -> None:
    """Set to -inf the candidates ``ids`` [R, K] that would repeat an n-gram already in ``history`` [R, t].
    (Shifted slices, not ``sliding_window_view``: the view's Python set-up cost more than the comparisons
    on the few rows of a served photo's search.)"""
    t = history.shape[1]
    if n <= 0 or t < n:
        return
    windows = t - n + 1
    repeats = np.ones((len(history), windows), dtype=bool)  # [R, W]: window i starts like the last n-1 words
    for j in range(n - 1):
        repeats &= history[:, j:j + windows] == history[:, t - n + 1 + j, None]
    banned = ((ids[:, :, None] == history[:, None, n - 1:]) & repeats[:, None, :]).any(axis=2)
    values[banned] = -np.inf


def _ban_unreadable(options: DecodeOptions, previous: np.ndarray, end_id: int, ids: np.ndarray,
                    values: np.ndarray) -> None:
    """Set to -inf the candidates ``ids`` [R, K] that would break the sentence after each row's ``previous`` word:
    the same word again, the end after a word a sentence cannot end on, a word ``not_after`` bans after it."""
    if options.no_word_twice:
        values[ids == previous[:, None]] = -np.inf
    if options.no_end_after:
        values[(ids == end_id) & np.isin(previous, options.no_end_after)[:, None]] = -np.inf
    for before, banned in options.not_after:
        values[np.isin(ids, banned) & np.isin(previous, before)[:, None]] = -np.inf


def _candidates(options: DecodeOptions, width: int, step: int) -> int:
    """Words to ask per row: ``width`` after every ban a history of ``step`` words can make."""
    n = options.no_repeat_ngram
    return width + (max(step - n + 1, 0) if n > 0 else 0) + options.no_word_twice + bool(options.no_end_after) + \
        max((len(banned) for _, banned in options.not_after), default=0)


def _empty_grid(grid: int) -> np.ndarray:
    """The attention of a caption without words: no rows over ``grid`` places."""
    return np.zeros((0, grid), np.float32)


def greedy_search(model: StepModel, features: np.ndarray, start_id: int, end_id: int,
                  options: DecodeOptions = DecodeOptions(), bias: np.ndarray | None = None) -> list[Caption]:
    """Most likely word at each step, for a batch of photos at once (``bias`` [B, V] is added to every step's
    log-probabilities: what the encoder's classifier sees, see ``Captioner``)."""
    photos, steps = len(features), options.max_length
    row_bias = _word_bias(model, photos, options, bias)
    state = model.init(features)
    live = np.arange(photos)  # the photos still being fed to the model, in row order
    tokens = np.full(photos, start_id, dtype=np.int64)
    history = np.zeros((photos, steps), np.int64)
    attention: np.ndarray | None = None
    length = np.zeros(photos, np.int64)
    logp = np.zeros(photos)
    done = np.zeros(photos, dtype=bool)
    for step in range(steps):
        values, ids, state, alpha = _ranked_step(model, tokens, state, row_bias, _candidates(options, 1, step))
        if attention is None:
            attention = np.zeros((photos, steps, alpha.shape[1]), np.float32)
        _ban_repeats(history[live, :step], options.no_repeat_ngram, ids, values)
        _ban_unreadable(options, tokens, end_id, ids, values)
        best = values.argmax(axis=1)  # first of equals: the lower id, as argmax over the vocabulary
        rows = np.arange(len(live))
        tokens = ids[rows, best].astype(np.int64)
        going = ~done[live]
        logp[live[going]] += values[rows, best][going]
        words = going & (tokens != end_id)
        history[live[words], step] = tokens[words]
        attention[live[words], step] = alpha[words]
        length[live[words]] += 1
        done[live[going & (tokens == end_id)]] = True
        if done.all():
            break
        keep = ~done[live]
        # Finished photos cost a row each: drop them now and then, but never down to one row (the ONNX step
        # model would run it as two anyway, see ``captioner.run_rows``: its single-row kernel rounds differently).
        if 2 <= keep.sum() <= COMPACT_AT * len(live):
            live, tokens, state, row_bias = live[keep], tokens[keep], state.select(keep), row_bias[keep]
    captions, grid = [], features.shape[1]
    for r in range(photos):
        words = history[r, :length[r]].tolist()
        score = float(logp[r]) / (len(words) + 1) ** options.length_penalty
        maps = attention[r, :length[r]].copy() if attention is not None and length[r] else _empty_grid(grid)
        captions.append(Caption(words, score, maps, [(words, score)]))
    return captions


@dataclass
class _Finished:
    """Hypotheses that ended at one step: photo, normalised score, order of finding, words and maps."""

    photo: np.ndarray  # [F]
    score: np.ndarray  # [F]
    order: np.ndarray  # [F]: step * 2k + rank among the photo's candidates (ties keep this order)
    length: np.ndarray  # [F] words
    tokens: np.ndarray  # [F, t+1]
    attention: np.ndarray  # [F, t+1, N]


class _Cohort:
    """Photos that joined a beam search at the same step, with the search's bookkeeping for them (their own step
    number, so max_length, the n-gram ban and the order of finding do not depend on when they joined).
    Rows are photo-major: photo ``live[p]`` owns rows p*k .. p*k+k-1."""

    def __init__(self, model: StepModel, features: np.ndarray, start_id: int, end_id: int, options: DecodeOptions,
                 bias: np.ndarray | None, tag: object):
        k, photos = options.beam_size, len(features)
        self.options, self.end_id, self.vocab_size, self.tag = options, end_id, model.vocab_size, tag
        self.grid = features.shape[1]
        self.bias = np.repeat(_word_bias(model, photos, options, bias), k, axis=0)
        self.state = model.init(features).select(np.repeat(np.arange(photos), k))
        self.live = np.arange(photos)  # the photos still fed to the model
        self.tokens = np.full(photos * k, start_id, dtype=np.int64)
        self.scores = np.full((photos, k), -np.inf)
        self.scores[:, 0] = 0.0  # all beams start identical: expand only the first
        self.history = np.zeros((photos * k, 0), np.int64)
        self.attention: np.ndarray | None = None
        self.finished: list[_Finished] = []
        self.count = np.zeros(photos, np.int64)  # finished hypotheses per photo
        self.active = np.ones(photos, dtype=bool)
        self.answered = np.zeros(photos, dtype=bool)  # photos whose captions ``ended`` has handed back
        self.step = 0

    @property
    def width(self) -> int:
        """Words this step needs per row."""
        return _candidates(self.options, 2 * self.options.beam_size, self.step)

    def advance(self, values: np.ndarray, ids: np.ndarray, h: np.ndarray, c: np.ndarray, alpha: np.ndarray) -> None:
        """Take this cohort's rows of one ranked step (its ``width`` best words per row). Each photo takes its
        candidates in order of score among its 2k best; an ``<end>`` (or any word at the last step) finishes a
        hypothesis, the others fill the k beams; the photo stops when k hypotheses have finished or no beam
        could be filled."""
        k, step, end_id, options = self.options.beam_size, self.step, self.end_id, self.options
        live, active = self.live, self.active
        if self.attention is None:
            self.attention = np.zeros((len(self.tokens), 0, alpha.shape[1]), np.float32)
        _ban_repeats(self.history, options.no_repeat_ngram, ids, values)
        _ban_unreadable(options, self.tokens, end_id, ids, values)
        n, width = len(live), values.shape[1]
        total = (self.scores.reshape(-1, 1) + values).reshape(n, k * width)  # float64, as the scores
        origin = np.repeat(np.arange(k), width)[None, :] + np.arange(n)[:, None] * k  # row of each candidate
        token = ids.reshape(n, k * width)
        # Best first; among equal scores the lower (beam, word), as a stable sort over beam x vocabulary.
        order = np.lexsort(((origin % k) * self.vocab_size + token, -total), axis=1)[:, :2 * k]
        total, origin, token = (np.take_along_axis(a, order, axis=1) for a in (total, origin, token))

        ends = (token == end_id) | (step >= options.max_length - 1)
        seen = np.cumprod(np.isfinite(total), axis=1).astype(bool) & active[live][:, None]
        fills_before = np.cumsum(seen & ~ends, axis=1) - (seen & ~ends)
        taken = seen & (fills_before < k)  # a photo looks no further once its k beams are filled
        fill, finish = taken & ~ends, taken & ends

        if finish.any():
            p, j = np.nonzero(finish)
            rows, word = origin[p, j], token[p, j] != end_id
            words = np.concatenate([self.history[rows], np.where(word, token[p, j], end_id)[:, None]], axis=1)
            maps = np.concatenate([self.attention[rows], alpha[rows][:, None]], axis=1)
            length = step + word
            self.finished.append(_Finished(live[p], _normalised(total[p, j], length + 1, options.length_penalty),
                                           step * 2 * k + j, length, words, maps))
            np.add.at(self.count, live[p], 1)

        p, j = np.nonzero(fill)
        slot = p * k + fills_before[p, j]
        rows = np.repeat(np.arange(n) * k, k)  # rows of unfilled beams, never read (score -inf)
        rows[slot] = origin[p, j]
        tokens = np.full(n * k, end_id, dtype=np.int64)
        tokens[slot] = token[p, j]
        scores = np.full(n * k, -np.inf)
        scores[slot] = total[p, j]
        active[live] &= (self.count[live] < k) & fill.any(axis=1)
        self.step += 1
        if not active.any():
            return
        self.scores = np.where(np.repeat(active[live], k), scores, -np.inf).reshape(n, k)
        self.tokens = tokens
        self.history = np.concatenate([self.history[rows], tokens[:, None]], axis=1)
        self.attention = np.concatenate([self.attention[rows], alpha[rows][:, None]], axis=1)
        # Rows never leave their photo's block, so memory and keys stay put: only h, c move.
        self.state = DecoderState(self.state.memory, self.state.keys, h[rows], c[rows])

    @property
    def searching(self) -> int:
        """Photos fed to the model and not ended."""
        return int(self.active[self.live].sum())

    def compact(self) -> None:
        """Drop the rows of photos that have ended (k >= 2 rows per photo: never one row, see greedy_search)."""
        keep = self.active[self.live]
        if keep.all():
            return
        kept = np.repeat(keep, self.options.beam_size)
        self.live, self.scores, self.tokens = self.live[keep], self.scores[keep], self.tokens[kept]
        self.history, self.attention = self.history[kept], self.attention[kept]
        self.state, self.bias = self.state.select(kept), self.bias[kept]

    def ended(self) -> list[tuple[int, Caption]]:
        """(photo, caption) for each photo that has ended since the last call: its hypotheses are all found."""
        photos = np.flatnonzero(~self.active & ~self.answered)
        self.answered[photos] = True
        if not len(photos):
            return []
        return list(zip(photos.tolist(), _best_of(self.finished, photos, max(self.options.n_best, 1), self.grid)))


class BeamSearch:
    """A running beam search that batches of photos join between steps ("continuous batching").

    Each step feeds every cohort's rows to ONE ranked step call, so the step graph runs on every photo in
    flight rather than on one batch that empties as its photos end; each cohort then does its own bookkeeping
    on its rows. Rows are independent in the step graph (never one row: k >= 2), so a photo's caption does
    not depend on which others share its steps. Memory, keys and the word bias (the large per-row inputs) are
    joined only when cohorts join, leave or drop ended photos, not at every step."""

    def __init__(self, model: StepModel, start_id: int, end_id: int, options: DecodeOptions = DecodeOptions()):
        if options.beam_size < 2:
            raise ValueError("BeamSearch needs beam_size >= 2; greedy_search decodes beam 1")
        self.model, self.start_id, self.end_id, self.options = model, start_id, end_id, options
        self._cohorts: list[_Cohort] = []
        self._joined: tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, features: np.ndarray, bias: np.ndarray | None = None, tag: object = None) -> None:
        """Photos [B, N, C] (``bias`` [B, V] as in ``beam_search``) that join at the next step; ``step`` hands
        back each one's caption with ``tag`` and its place in ``features`` as soon as it has ended."""
        self._cohorts.append(_Cohort(self.model, features, self.start_id, self.end_id, self.options, bias, tag))

    def __len__(self) -> int:
        """Cohorts still searching."""
        return len(self._cohorts)

    @property
    def pending(self) -> list[tuple[object, list[int]]]:
        """Each cohort's tag and its photos not handed back yet (what a failed step leaves unanswered)."""
        return [(cohort.tag, np.flatnonzero(~cohort.answered).tolist()) for cohort in self._cohorts]

    @property
    def photos(self) -> int:
        """Photos whose rows the next step feeds (ended ones included until they are dropped)."""
        return sum(len(cohort.live) for cohort in self._cohorts)

    def _inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every cohort's memory, keys and bias, in cohort order: joined again only when a cohort's changed."""
        cohorts = self._cohorts
        if len(cohorts) == 1:
            self._joined = None  # nothing to join: let the last joined arrays go
            return cohorts[0].state.memory, cohorts[0].state.keys, cohorts[0].bias
        parts = [cohort.state.memory for cohort in cohorts]
        if self._joined is None or len(parts) != len(self._joined[0]) or \
                any(a is not b for a, b in zip(parts, self._joined[0])):
            self._joined = (parts, np.concatenate(parts), np.concatenate([cohort.state.keys for cohort in cohorts]),
                            np.concatenate([cohort.bias for cohort in cohorts]))
        return self._joined[1:]

    def step(self) -> list[tuple[object, int, Caption]]:
        """One step for every photo in flight; (tag, photo, caption) of each photo that ended at it."""
        cohorts = self._cohorts
        memory, keys, bias = self._inputs()
        join = (lambda arrays: arrays[0]) if len(cohorts) == 1 else np.concatenate
        state = DecoderState(memory, keys, join([c.state.h for c in cohorts]), join([c.state.c for c in cohorts]))
        tokens = join([cohort.tokens for cohort in cohorts])
        values, ids, state, alpha = _ranked_step(self.model, tokens, state, bias, max(c.width for c in cohorts))
        ended, start = [], 0
        for cohort in cohorts:
            rows = slice(start, start + len(cohort.tokens))
            start = rows.stop
            width = cohort.width  # the first ``width`` of a longer ranking: TopK sorts, lower id first among equals
            cohort.advance(values[rows, :width], ids[rows, :width], state.h[rows], state.c[rows], alpha[rows])
            ended += [(cohort.tag, photo, caption) for photo, caption in cohort.ended()]
        self._cohorts = [cohort for cohort in cohorts if cohort.searching]
        # Ended photos cost k rows each: drop them once those still searching are COMPACT_AT of the fed or fewer.
        if sum(c.searching for c in self._cohorts) <= COMPACT_AT * self.photos:
            for cohort in self._cohorts:
                cohort.compact()
        return ended


def beam_search(model: StepModel, features: np.ndarray, start_id: int, end_id: int,
                options: DecodeOptions = DecodeOptions(), bias: np.ndarray | None = None) -> list[Caption]:
    """Beam search for a batch of photos: one cohort of a ``BeamSearch``, stepped until it ends (see
    ``_Cohort.advance``). ``bias`` [B, V], when given, is added to each step's log-probabilities of photo
    b's rows; beam 1 is ``greedy_search``."""
    if options.beam_size <= 1:
        return greedy_search(model, features, start_id, end_id, options, bias)
    search = BeamSearch(model, start_id, end_id, options)
    search.add(features, bias)
    ended: dict[int, Caption] = {}
    while len(search):
        ended.update((photo, caption) for _, photo, caption in search.step())
    return [ended[photo] for photo in range(len(features))]


def _best_of(finished: list[_Finished], photos: np.ndarray, n_best: int, grid: int) -> list[Caption]:
    """The n best finished hypotheses of each of ``photos``, best first (equal scores: found first)."""
    photo = np.concatenate([f.photo for f in finished])
    score = np.concatenate([f.score for f in finished])
    ranked = np.lexsort((np.concatenate([f.order for f in finished]), -score, photo))
    starts = np.cumsum([0] + [len(f.photo) for f in finished])  # entry i is finished[s][i - starts[s]]
    first = np.searchsorted(photo[ranked], photos)
    captions = []
    for b, top in zip(photos, first):
        chosen = [(finished[s], i - starts[s]) for i in ranked[top:top + n_best] if photo[i] == b
                  for s in [np.searchsorted(starts, i, side="right") - 1]]
        alternatives = [(f.tokens[i, :f.length[i]].tolist(), float(f.score[i])) for f, i in chosen]
        f, i = chosen[0]
        maps = f.attention[i, :f.length[i]].copy() if f.length[i] else _empty_grid(grid)
        captions.append(Caption(alternatives[0][0], alternatives[0][1], maps, alternatives))
    return captions
