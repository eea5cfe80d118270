"""Greedy and beam search over a single-step decoder, in NumPy.

The loop lives outside the ONNX graphs (as in Hugging Face optimum's
encoder/decoder split), so one implementation serves the app (onnxruntime)
and training's evaluation (PyTorch): both only supply a ``StepModel``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


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

    def init(self, features: np.ndarray) -> DecoderState: ...

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState, np.ndarray]:
        """tokens [R] -> (log_probs [R, V], next state, attention [R, N])."""
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


def _normalised(logp: float, length: int, penalty: float) -> float:
    return logp / max(length, 1) ** penalty


def _suppress(log_probs: np.ndarray, options: DecodeOptions, bias: np.ndarray | None = None) -> np.ndarray:
    if bias is not None:
        log_probs += bias
    if options.suppress:
        log_probs[:, list(options.suppress)] = -np.inf
    return log_probs


def _top_sorted(total: np.ndarray, n: int) -> np.ndarray:
    """Column indices of each row's ``n`` largest values, largest first (a partial sort:
    a full argsort over beam x vocabulary candidates was a quarter of the decode time)."""
    part = np.argpartition(-total, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(total, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _banned_tokens(history: list[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram already in ``history``."""
    if n <= 0 or len(history) < n:
        return set()
    prefix = tuple(history[len(history) - n + 1:])
    return {history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i:i + n - 1]) == prefix}


def greedy_search(model: StepModel, features: np.ndarray, start_id: int, end_id: int,
                  options: DecodeOptions = DecodeOptions(), bias: np.ndarray | None = None) -> list[Caption]:
    """Most likely word at each step, for a batch of photos at once (``bias`` [B, V] is added to every step's
    log-probabilities: what the encoder's classifier sees, see ``Captioner``)."""
    state = model.init(features)
    rows = len(features)
    tokens = np.full(rows, start_id, dtype=np.int64)
    history: list[list[int]] = [[] for _ in range(rows)]
    attention: list[list[np.ndarray]] = [[] for _ in range(rows)]
    logp = np.zeros(rows)
    done = np.zeros(rows, dtype=bool)
    for _ in range(options.max_length):
        log_probs, state, alpha = model.step(tokens, state)
        log_probs = _suppress(log_probs, options, bias)
        for r in np.flatnonzero(~done):
            for banned in _banned_tokens(history[r], options.no_repeat_ngram):
                log_probs[r, banned] = -np.inf
        tokens = log_probs.argmax(axis=1).astype(np.int64)
        for r in np.flatnonzero(~done):
            logp[r] += log_probs[r, tokens[r]]
            if tokens[r] == end_id:
                done[r] = True
            else:
                history[r].append(int(tokens[r]))
                attention[r].append(alpha[r])
        if done.all():
            break
    captions = []
    for r in range(rows):
        score = _normalised(float(logp[r]), len(history[r]) + 1, options.length_penalty)
        grid = np.stack(attention[r]) if attention[r] else np.zeros((0, features.shape[1]), np.float32)
        captions.append(Caption(history[r], score, grid, [(history[r], score)]))
    return captions


def beam_search(model: StepModel, features: np.ndarray, start_id: int, end_id: int,
                options: DecodeOptions = DecodeOptions(), bias: np.ndarray | None = None) -> list[Caption]:
    """Beam search for a batch of photos; rows are photo-major (photo b owns rows b*k .. b*k+k-1).

    ``bias`` [B, V], when given, is added to each step's log-probabilities of photo b's rows."""
    k = options.beam_size
    if k <= 1:
        return greedy_search(model, features, start_id, end_id, options, bias)
    row_bias = None if bias is None else np.repeat(bias, k, axis=0)
    photos = len(features)
    state = model.init(features).select(np.repeat(np.arange(photos), k))
    tokens = np.full(photos * k, start_id, dtype=np.int64)
    scores = np.full((photos, k), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    history: list[list[int]] = [[] for _ in range(photos * k)]
    attention: list[list[np.ndarray]] = [[] for _ in range(photos * k)]
    finished: list[list[tuple[float, list[int], list[np.ndarray]]]] = [[] for _ in range(photos)]
    active = np.ones(photos, dtype=bool)

    for step in range(options.max_length):
        log_probs, state, alpha = model.step(tokens, state)
        log_probs = _suppress(log_probs, options, row_bias)
        vocab = log_probs.shape[1]
        if options.no_repeat_ngram:
            for r in range(photos * k):
                for banned in _banned_tokens(history[r], options.no_repeat_ngram):
                    log_probs[r, banned] = -np.inf
        last = step == options.max_length - 1
        total = scores.reshape(-1, 1) + log_probs  # [photos*k, V]
        total = total.reshape(photos, k * vocab)
        top = _top_sorted(total, 2 * k)
        rows = np.empty(photos * k, dtype=np.int64)
        new_tokens = np.full(photos * k, end_id, dtype=np.int64)
        new_scores = np.full((photos, k), -np.inf)
        for b in range(photos):
            filled = 0
            for flat in top[b]:
                score = total[b, flat]
                if not active[b] or not np.isfinite(score):
                    break
                origin, token = b * k + flat // vocab, int(flat % vocab)
                if token == end_id or last:
                    words = history[origin] + ([] if token == end_id else [token])
                    maps = attention[origin] + ([] if token == end_id else [alpha[origin]])
                    finished[b].append((_normalised(score, len(words) + 1, options.length_penalty), words, maps))
                    continue
                rows[b * k + filled] = origin
                new_tokens[b * k + filled] = token
                new_scores[b, filled] = score
                filled += 1
                if filled == k:
                    break
            rows[b * k + filled: b * k + k] = b * k  # padding rows, never read (score -inf)
            if len(finished[b]) >= k or filled == 0:
                active[b] = False
                new_scores[b] = -np.inf
        if not active.any():
            break
        history = [history[o] + [int(t)] for o, t in zip(rows, new_tokens)]
        attention = [attention[o] + [alpha[o]] for o in rows]
        # Rows never leave their photo's block, so memory and keys stay put: only h, c move.
        state = DecoderState(state.memory, state.keys, state.h[rows], state.c[rows])
        tokens, scores = new_tokens, new_scores

    captions = []
    for b in range(photos):
        ranked = sorted(finished[b], key=lambda item: -item[0])[: max(options.n_best, 1)]
        score, words, maps = ranked[0]
        grid = np.stack(maps) if maps else np.zeros((0, features.shape[1]), np.float32)
        captions.append(Caption(words, score, grid, [(w, s) for s, w, _ in ranked]))
    return captions
