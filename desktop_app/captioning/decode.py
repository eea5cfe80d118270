"""Greedy and beam search over a single-step decoder, in NumPy.

The loop lives outside the ONNX graphs (as in Hugging Face optimum's
encoder/decoder split), so one implementation serves the app (onnxruntime)
and training's evaluation (PyTorch): both only supply a ``StepModel``.

Each step works on every row at once: the model returns only each row's best
few words (``RankingStepModel``: a TopK inside the step graph; otherwise
``top_k`` here), and the beam bookkeeping is array arithmetic over photos, so
the Python cost of a step does not grow with the batch. Photos whose search
has ended are dropped from the rows the model is fed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


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


@dataclass(frozen=True)
class DecodeOptions:
    beam_size: int = 3
    max_length: int = 20
    length_penalty: float = 1.0  # score = logp / len**length_penalty
    no_repeat_ngram: int = 0  # forbid repeating any n-gram of this size (0 = off)
    n_best: int = 3
    suppress: tuple[int, ...] = ()  # token ids never emitted (<unk>, <pad>, <start>: not words a person reads)


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
    """Set to -inf the candidates ``ids`` [R, K] that would repeat an n-gram already in ``history`` [R, t]."""
    if n <= 0 or history.shape[1] < n:
        return
    windows = sliding_window_view(history, n, axis=1)  # [R, t-n+1, n]
    prefix = history[:, history.shape[1] - n + 1:]  # the last n-1 words
    repeats = (windows[:, :, :n - 1] == prefix[:, None, :]).all(axis=2)  # [R, W]: window i starts like the end
    banned = ((ids[:, :, None] == windows[:, None, :, n - 1]) & repeats[:, None, :]).any(axis=2)
    values[banned] = -np.inf


def _candidates(options: DecodeOptions, width: int, step: int) -> int:
    """Words to ask per row: ``width`` after every n-gram ban a history of ``step`` words can make."""
    n = options.no_repeat_ngram
    return width + (max(step - n + 1, 0) if n > 0 else 0)


def _empty_grid(features: np.ndarray) -> np.ndarray:
    return np.zeros((0, features.shape[1]), np.float32)


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
        # Finished photos cost a row each: drop them now and then, but never down to one row (onnxruntime
        # multiplies a single row with another kernel, whose last bits differ: the scores would too).
        if 2 <= keep.sum() <= COMPACT_AT * len(live):
            live, tokens, state, row_bias = live[keep], tokens[keep], state.select(keep), row_bias[keep]
    captions = []
    for r in range(photos):
        words = history[r, :length[r]].tolist()
        score = float(logp[r]) / (len(words) + 1) ** options.length_penalty
        grid = attention[r, :length[r]].copy() if attention is not None and length[r] else _empty_grid(features)
        captions.append(Caption(words, score, grid, [(words, score)]))
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


def beam_search(model: StepModel, features: np.ndarray, start_id: int, end_id: int,
                options: DecodeOptions = DecodeOptions(), bias: np.ndarray | None = None) -> list[Caption]:
    """Beam search for a batch of photos; rows are photo-major (photo b owns rows b*k .. b*k+k-1).

    ``bias`` [B, V], when given, is added to each step's log-probabilities of photo b's rows.
    Each photo takes its candidates in order of score among its 2k best; an ``<end>`` (or any word at
    the last step) finishes a hypothesis, the others fill the k beams; the photo stops when k
    hypotheses have finished or no beam could be filled."""
    k = options.beam_size
    if k <= 1:
        return greedy_search(model, features, start_id, end_id, options, bias)
    photos = len(features)
    row_bias = np.repeat(_word_bias(model, photos, options, bias), k, axis=0)
    state = model.init(features).select(np.repeat(np.arange(photos), k))
    live = np.arange(photos)  # photos still fed to the model; live[p] owns rows p*k .. p*k+k-1
    tokens = np.full(photos * k, start_id, dtype=np.int64)
    scores = np.full((photos, k), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    history = np.zeros((photos * k, 0), np.int64)
    attention: np.ndarray | None = None
    finished: list[_Finished] = []
    count = np.zeros(photos, np.int64)  # finished hypotheses per photo
    active = np.ones(photos, dtype=bool)

    for step in range(options.max_length):
        width = _candidates(options, 2 * k, step)
        values, ids, state, alpha = _ranked_step(model, tokens, state, row_bias, width)
        if attention is None:
            attention = np.zeros((photos * k, 0, alpha.shape[1]), np.float32)
        _ban_repeats(history, options.no_repeat_ngram, ids, values)
        n, width = len(live), values.shape[1]
        total = (scores.reshape(-1, 1) + values).reshape(n, k * width)  # float64, as the scores
        origin = np.repeat(np.arange(k), width)[None, :] + np.arange(n)[:, None] * k  # row of each candidate
        token = ids.reshape(n, k * width)
        # Best first; among equal scores the lower (beam, word), as a stable sort over beam x vocabulary.
        order = np.lexsort(((origin % k) * model.vocab_size + token, -total), axis=1)[:, :2 * k]
        total, origin, token = (np.take_along_axis(a, order, axis=1) for a in (total, origin, token))

        ends = (token == end_id) | (step == options.max_length - 1)
        seen = np.cumprod(np.isfinite(total), axis=1).astype(bool) & active[live][:, None]
        fills_before = np.cumsum(seen & ~ends, axis=1) - (seen & ~ends)
        taken = seen & (fills_before < k)  # a photo looks no further once its k beams are filled
        fill, finish = taken & ~ends, taken & ends

        if finish.any():
            p, j = np.nonzero(finish)
            rows, word = origin[p, j], token[p, j] != end_id
            words = np.concatenate([history[rows], np.where(word, token[p, j], end_id)[:, None]], axis=1)
            maps = np.concatenate([attention[rows], alpha[rows][:, None]], axis=1)
            length = step + word
            finished.append(_Finished(live[p], _normalised(total[p, j], length + 1, options.length_penalty),
                                      step * 2 * k + j, length, words, maps))
            np.add.at(count, live[p], 1)

        p, j = np.nonzero(fill)
        slot = p * k + fills_before[p, j]
        rows = np.repeat(np.arange(n) * k, k)  # rows of unfilled beams, never read (score -inf)
        rows[slot] = origin[p, j]
        tokens = np.full(n * k, end_id, dtype=np.int64)
        tokens[slot] = token[p, j]
        scores = np.full(n * k, -np.inf)
        scores[slot] = total[p, j]
        active[live] &= (count[live] < k) & fill.any(axis=1)
        scores = np.where(np.repeat(active[live], k), scores, -np.inf).reshape(n, k)
        if not active.any():
            break
        history = np.concatenate([history[rows], tokens[:, None]], axis=1)
        attention = np.concatenate([attention[rows], alpha[rows][:, None]], axis=1)
        # Rows never leave their photo's block, so memory and keys stay put: only h, c move.
        state = DecoderState(state.memory, state.keys, state.h[rows], state.c[rows])
        keep = active[live]
        if keep.sum() <= COMPACT_AT * n:  # ended photos cost k rows each (k >= 2: never one row, see greedy_search)
            kept = np.repeat(keep, k)
            live, scores, tokens, history, attention = live[keep], scores[keep], tokens[kept], history[kept], attention[kept]
            state, row_bias = state.select(kept), row_bias[kept]
    return _best_of(finished, photos, max(options.n_best, 1), features)


def _best_of(finished: list[_Finished], photos: int, n_best: int, features: np.ndarray) -> list[Caption]:
    """Each photo's n best finished hypotheses, best first (equal scores: found first)."""
    photo = np.concatenate([f.photo for f in finished])
    score = np.concatenate([f.score for f in finished])
    ranked = np.lexsort((np.concatenate([f.order for f in finished]), -score, photo))
    starts = np.cumsum([0] + [len(f.photo) for f in finished])  # entry i is finished[s][i - starts[s]]
    first = np.searchsorted(photo[ranked], np.arange(photos))
    captions = []
    for b in range(photos):
        chosen = [(finished[s], i - starts[s]) for i in ranked[first[b]:first[b] + n_best] if photo[i] == b
                  for s in [np.searchsorted(starts, i, side="right") - 1]]
        alternatives = [(f.tokens[i, :f.length[i]].tolist(), float(f.score[i])) for f, i in chosen]
        f, i = chosen[0]
        grid = f.attention[i, :f.length[i]].copy() if f.length[i] else _empty_grid(features)
        captions.append(Caption(alternatives[0][0], alternatives[0][1], grid, alternatives))
    return captions
