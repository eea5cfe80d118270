"""What the encoder's ImageNet classifier sees, used three ways: keywords, caption bias, confidence.

``concepts.onnx`` (format-2 bundles) gives each concept word a probability for the whole
photo and for its best region. From those this module picks the photo's keywords, steers the
decoder away from naming things the models do not see (and, optionally, towards words the
classifier is sure of), and rates how far a caption can be trusted;
every threshold and weight comes from the bundle's ``concepts.json`` (chosen at export time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from desktop_app.bundle.format import Concepts
from desktop_app.bundle.vocabulary import Vocabulary, singular


@dataclass
class PhotoConcepts:
    """One photo's concept word probabilities: whole photo and best region, [W] each."""

    whole: np.ndarray
    region: np.ndarray


@dataclass
class _PenaltyPlan:
    """The decoder tokens the doubt penalty reaches, [T] each (``columns`` [T, K]: the concept columns whose best
    probability is the token's evidence; ``grouped``: an object word, judged by its kind)."""

    tokens: np.ndarray
    columns: np.ndarray
    penalty: np.ndarray
    floor: np.ndarray
    grouped: np.ndarray


class ConceptScorer:
    def __init__(self, concepts: Concepts, vocabulary: Vocabulary):
        self.concepts = concepts
        index = {w: i for i, w in enumerate(concepts.words)}
        tokens, words = [], []
        for token, word in enumerate(vocabulary.words):
            concept = index.get(word, index.get(singular(word)))  # the decoder's "dogs" is the concept "dog"
            if concept is not None:
                tokens.append(token)
                words.append(concept)
        self.token_concept = dict(zip(tokens, words))  # every decoder token that names a concept (confidence)
        biased = [i for i, w in enumerate(words) if w >= concepts.caption_bias_from]
        self.tokens = np.array([tokens[i] for i in biased], dtype=np.int64)  # decoder tokens the bias reaches
        self.token_words = np.array([words[i] for i in biased], dtype=np.int64)  # ... and their concept's index
        self.vocab_size = len(vocabulary)
        self._penalised = self._penalty_plan(concepts, index, tokens, words)
        self._object_word = np.zeros(len(concepts.words), bool)  # [W]: a word for one of the COCO object kinds
        self._object_word[[index[w] for group in concepts.object_groups for w in group if w in index]] = True

    @staticmethod
    def _penalty_plan(concepts: Concepts, index: dict[str, int], tokens: list[int],
                      words: list[int]) -> "_PenaltyPlan | None":
        """Which decoder tokens the doubt penalty reaches, with each one's evidence columns, penalty and floor."""
        if not (concepts.object_penalty or concepts.word_penalty) or not tokens:
            return None
        group_of: dict[int, list[int]] = {}
        kind_floor: dict[int, float] = {}
        for group in concepts.object_groups:
            members = sorted({index[w] for w in group if w in index})
            for m in members:
                group_of[m] = members
                kind_floor[m] = concepts.kind_floors.get(group[0], concepts.object_floor)
        evidence = [group_of.get(w, [w]) for w in words]  # concept columns whose best p is the token's
        width = max(len(e) for e in evidence)
        columns = np.array([e + [e[0]] * (width - len(e)) for e in evidence], dtype=np.int64)  # [T, width]
        grouped = np.array([w in group_of for w in words])
        penalty = np.where(grouped, concepts.object_penalty, concepts.word_penalty).astype(np.float32)
        floor = np.array([kind_floor.get(w, concepts.word_floor) for w in words], np.float32)
        keep = penalty > 0
        return _PenaltyPlan(np.array(tokens)[keep], columns[keep], penalty[keep], floor[keep], grouped[keep])

    def _seen(self, columns: np.ndarray, whole: np.ndarray, region: np.ndarray) -> np.ndarray:
        """The best probability among each token's evidence columns: [..., T]."""
        weight = self.concepts.penalty_region_weight
        return np.maximum(whole[..., columns], weight * region[..., columns]).max(axis=-1)

    def caption_bias(self, whole: np.ndarray, region: np.ndarray) -> np.ndarray | None:
        """[B, V] added to the decoder's log-probabilities: more likely to name what the classifier sees, and
        unlikely to name what the models do not see (``Concepts.object_penalty``); None when neither applies."""
        c = self.concepts
        boost = bool(c.caption_bias and len(self.tokens))
        if not boost and self._penalised is None:
            return None
        bias = np.zeros((len(whole), self.vocab_size), np.float32)
        if boost:
            seen = np.maximum(whole[:, self.token_words], c.caption_region_weight * region[:, self.token_words])
            bias[:, self.tokens] = c.caption_bias * seen
        plan = self._penalised
        if plan is not None:
            seen = self._seen(plan.columns, whole, region)  # [B, T]
            bias[:, plan.tokens] += plan.penalty * np.log(np.maximum(np.minimum(seen, plan.floor) / plan.floor, 1e-6))
        return bias

    def doubted(self, tokens: list[int], photo: PhotoConcepts) -> list[int]:
        """The caption's object words whose kind the models see with less than ``review_floor``: words the doubt
        penalty weighed against and the caption named all the same (a risk of naming what is not there)."""
        plan = self._penalised
        if plan is None or not self.concepts.review_floor:
            return []
        seen = self._seen(plan.columns, photo.whole, photo.region)  # [T]
        doubtful = {int(t) for t in plan.tokens[plan.grouped & (seen < self.concepts.review_floor)]}
        return [t for t in tokens if t in doubtful]

    def seen_words(self, photo: PhotoConcepts) -> list[str]:
        """What the models see in the whole photo with p >= ``fallback_floor``, surest first (``fallback_words`` at
        most): the words a caption falls back to when no sentence can be trusted; [] when off or nothing is."""
        c = self.concepts
        if not c.fallback_floor:
            return []
        # an object word ("car", "dog") needs what the doubt penalty asks of a caption naming it
        floor = np.where(self._object_word, max(c.fallback_floor, c.object_floor), c.fallback_floor)
        order = [i for i in np.argsort(-photo.whole, kind="stable") if photo.whole[i] >= floor[i]]
        return [c.words[i] for i in order[: c.fallback_words]]

    def seen_in_caption(self, tokens: list[int], photo: PhotoConcepts) -> list[str]:
        """The concept words a caption names that the models also see (keyword thresholds), in caption order:
        the caption's keywords, so a word is a keyword only when the concept models agree ("dog" named for a
        cat, "small" or "playing" never)."""
        score = self._keyword_scores(photo)
        out: list[str] = []
        for t in tokens:
            i = self.token_concept.get(t)
            if i is not None and score[i] > 0 and self.concepts.words[i] not in out:
                out.append(self.concepts.words[i])
        return out

    def _keyword_scores(self, photo: PhotoConcepts) -> np.ndarray:
        """[W]: each concept word's probability where it is over a keyword threshold (whole photo or a region), else 0."""
        c = self.concepts
        score = np.where(photo.whole >= c.keyword_threshold, photo.whole, 0.0)
        return np.maximum(score, np.where(photo.region >= c.region_threshold, photo.region, 0.0))

    def keywords(self, photo: PhotoConcepts) -> list[str]:
        """Concept words over the thresholds, surest first."""
        c = self.concepts
        score = self._keyword_scores(photo)
        chosen = [i for i in np.argsort(-score, kind="stable")[: c.max_keywords] if score[i] > 0]
        return [c.words[i] for i in chosen]

    def confidence_features(self, tokens: list[int], score: float, alternatives: list[tuple[list[int], float]],
                            photo: PhotoConcepts) -> dict[str, float]:
        """What the confidence is computed from (names match ``Concepts.confidence``'s weights)."""
        named = [self.token_concept[t] for t in tokens if t in self.token_concept]
        agreement = max((float(max(photo.whole[i], photo.region[i])) for i in named), default=0.0)
        margin = score - alternatives[1][1] if len(alternatives) > 1 else 1.0
        return {"score": float(score), "margin": float(margin), "concept_max": float(photo.whole.max()),
                "named_concepts": float(len(named) > 0), "agreement": agreement, "length": float(len(tokens))}

    def confidence(self, features: dict[str, float]) -> float | None:
        """Probability that the caption is acceptable (logistic over the features), or None uncalibrated."""
        weights = self.concepts.confidence
        if not weights:
            return None
        z = weights.get("bias", 0.0) + sum(w * features[name] for name, w in weights.items() if name != "bias")
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
