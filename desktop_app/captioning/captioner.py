"""A loaded model bundle that turns pixels into captions: encoder + decoder graphs + decode loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from desktop_app.bundle import format as bf
from desktop_app.bundle.format import Bundle, load_bundle
from desktop_app.captioning.concepts import ConceptScorer, PhotoConcepts
from desktop_app.captioning.decode import Caption, DecodeOptions, DecoderState, beam_search
from desktop_app.captioning.keywords import keywords_from_words
from desktop_app.captioning.runtime import RuntimeOptions, open_session
from desktop_app.photos.pixels import load_pixels
from desktop_app.resources import DEFAULT_BUNDLE



@dataclass
class CaptionResult:
    """A caption ready for people and metadata."""

    text: str
    words: list[str]
    score: float
    alternatives: list[tuple[str, float]]
    attention: np.ndarray  # [len(words), N]
    keywords: list[str] = field(default_factory=list)
    confidence: float | None = None  # 0..1, how likely the caption is right (None: the bundle cannot tell)
    needs_review: bool = False  # confidence below the bundle's calibrated threshold: a person should check it


class OnnxStepModel:
    """The two decoder graphs seen through the decode loop's ``StepModel`` protocol."""

    def __init__(self, init_session, step_session):
        self.init_session, self.step_session = init_session, step_session

    def init(self, features: np.ndarray) -> DecoderState:
        memory, keys, h, c = self.init_session.run(list(bf.INIT_OUTPUTS), {"features": features})
        return DecoderState(memory, keys, h, c)

    def step(self, tokens: np.ndarray, state: DecoderState):
        log_probs, h, c, alpha = self.step_session.run(list(bf.STEP_OUTPUTS), {
            "tokens": tokens, "h": state.h, "c": state.c, "memory": state.memory, "keys": state.keys})
        return log_probs, DecoderState(state.memory, state.keys, h, c), alpha


class Captioner:
    def __init__(self, bundle: Bundle, runtime: RuntimeOptions = RuntimeOptions()):
        self.bundle = bundle
        self.encoder, self.provider = open_session(bundle.file(bf.ENCODER_FILE), runtime)
        init, _ = open_session(bundle.file(bf.DECODER_INIT_FILE), runtime)
        step, _ = open_session(bundle.file(bf.DECODER_STEP_FILE), runtime)
        self.decoder = OnnxStepModel(init, step)
        self.concepts = bundle.concepts  # None for bundles without concept keywords (format 1)
        self.concept_session = (open_session(bundle.file(bf.CONCEPTS_FILE), runtime)[0]
                                if self.concepts is not None else None)
        self.scorer = ConceptScorer(self.concepts, bundle.vocabulary) if self.concepts is not None else None
        self._check_shapes()

    @classmethod
    def open(cls, path: Path | None = None, provider: str = "auto", threads: int = 0) -> "Captioner":
        return cls(load_bundle(path or DEFAULT_BUNDLE), RuntimeOptions(provider, threads))

    def _check_shapes(self) -> None:
        """Fail on open, in words, if the graphs do not fit the manifest (a mixed-up bundle)."""
        m = self.bundle.manifest
        pixels = self.encoder.get_inputs()[0].shape
        if pixels[2:] != [m.preprocessing.input_height, m.preprocessing.input_width]:
            raise bf.BundleError(f"{bf.ENCODER_FILE} takes {pixels[2:]} pixels, the manifest says "
                                 f"{m.preprocessing.input_height}x{m.preprocessing.input_width}")
        vocab = self.decoder.step_session.get_outputs()[0].shape[1]
        if vocab != m.vocab_size:
            raise bf.BundleError(f"{bf.DECODER_STEP_FILE} predicts {vocab} words, the manifest says {m.vocab_size}")
        if self.concept_session is not None:
            words = self.concept_session.get_outputs()[0].shape[1]
            if words != len(self.concepts.words):
                raise bf.BundleError(f"{bf.CONCEPTS_FILE} scores {words} words, {bf.CONCEPTS_WORDS_FILE} lists "
                                     f"{len(self.concepts.words)}")

    @property
    def preprocessing(self) -> bf.Preprocessing:
        return self.bundle.manifest.preprocessing

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        return self.encoder.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})[0]

    def concept_probs(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Word probabilities [B, W] for the whole photo and its best region; None without concepts."""
        if self.concept_session is None:
            return None
        whole, region = self.concept_session.run(list(bf.CONCEPTS_OUTPUTS), {"features": features})
        return whole, region

    def caption_pixels(self, pixels: np.ndarray, options: DecodeOptions = DecodeOptions()) -> list[CaptionResult]:
        """pixels [B,3,H,W] -> one CaptionResult per photo."""
        vocab = self.bundle.vocabulary
        options = replace(options, max_length=min(options.max_length, self.bundle.manifest.max_caption_length),
                          suppress=vocab.never_generated)
        features = self.encode(pixels)
        probs = self.concept_probs(features)
        bias = self.scorer.caption_bias(*probs) if probs is not None else None
        captions = beam_search(self.decoder, features, vocab.start_id, vocab.end_id, options, bias)
        return [self._result(c, None if probs is None else PhotoConcepts(probs[0][i], probs[1][i]))
                for i, c in enumerate(captions)]

    def _result(self, caption: Caption, concepts: PhotoConcepts | None = None) -> CaptionResult:
        vocab = self.bundle.vocabulary
        words = vocab.decode(caption.tokens)
        alternatives = [(sentence(vocab.decode(t)), s) for t, s in caption.alternatives]
        result = CaptionResult(sentence(words), words, caption.score, alternatives, caption.attention,
                               keywords_from_words(words))
        if concepts is not None:
            result.keywords += [w for w in self.scorer.keywords(concepts) if w not in result.keywords]
            result.confidence = self.scorer.confidence(self.scorer.confidence_features(
                caption.tokens, caption.score, caption.alternatives, concepts))
            threshold = self.concepts.review_threshold
            result.needs_review = result.confidence is not None and threshold is not None and result.confidence < threshold
        return result

    def caption_paths(self, paths: Sequence[Path], options: DecodeOptions = DecodeOptions(),
                      batch_size: int = 16, on_batch: Callable[[int], None] | None = None) -> list[CaptionResult]:
        """Caption photo files in order (simple and sequential; folders go through ``pipeline``)."""
        results: list[CaptionResult] = []
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            pixels = np.stack([load_pixels(p, self.preprocessing) for p in chunk])
            results += self.caption_pixels(pixels, options)
            if on_batch:
                on_batch(len(chunk))
        return results


def sentence(words: list[str]) -> str:
    """Words as a caption a person reads: capitalised, with a full stop."""
    if not words:
        return ""
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."
