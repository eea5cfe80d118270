"""What the encoder's ImageNet classifier sees, used three ways: keywords, caption bias, confidence.

``concepts.onnx`` (format-2 bundles) gives each concept word a probability for the whole
photo and for its best region. From those this module picks the photo's keywords, biases the
decoder towards words the classifier is sure of, and rates how far a caption can be trusted;
every threshold and weight comes from the bundle's ``concepts.json`` (chosen at export time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from desktop_app.bundle.format import Concepts
from desktop_app.bundle.vocabulary import Vocabulary


@dataclass
class PhotoConcepts:
    """One photo's concept word probabilities: whole photo and best region, [W] each."""

    whole: np.ndarray
    region: np.ndarray


class ConceptScorer:
    def __init__(self, concepts: Concepts, vocabulary: Vocabulary):
        self.concepts = concepts
        index = {w: i for i, w in enumerate(concepts.words)}
        tokens, words = [], []
        for token, word in enumerate(vocabulary.words):
            # the decoder's "dogs" is the concept "dog"
            concept = index.get(word, index.get(word[:-1]) if word.endswith("s") else None)
            if concept is not None:
                tokens.append(token)
                words.append(concept)
        self.token_concept = dict(zip(tokens, words))  # every decoder token that names a concept (confidence)
        biased = [i for i, w in enumerate(words) if w >= concepts.caption_bias_from]
        self.tokens = np.array([tokens[i] for i in biased], dtype=np.int64)  # decoder tokens the bias reaches
        self.token_words = np.array([words[i] for i in biased], dtype=np.int64)  # ... and their concept's index
        self.vocab_size = len(vocabulary)

    def caption_bias(self, whole: np.ndarray, region: np.ndarray) -> np.ndarray | None:
        """[B, V] added to the decoder's log-probabilities: more likely to name what the classifier sees."""
        c = self.concepts
        if not c.caption_bias or not len(self.tokens):
            return None
        bias = np.zeros((len(whole), self.vocab_size), np.float32)
        seen = np.maximum(whole[:, self.token_words], c.caption_region_weight * region[:, self.token_words])
        bias[:, self.tokens] = c.caption_bias * seen
        return bias

    def keywords(self, photo: PhotoConcepts) -> list[str]:
        """Concept words over the thresholds, surest first."""
        c = self.concepts
        score = np.where(photo.whole >= c.keyword_threshold, photo.whole, 0.0)
        score = np.maximum(score, np.where(photo.region >= c.region_threshold, photo.region, 0.0))
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
