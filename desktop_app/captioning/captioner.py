"""A loaded model bundle that turns pixels into captions: encoder + decoder graphs + decode loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from desktop_app.bundle import format as bf
from desktop_app.bundle.format import Bundle, load_bundle
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

    @property
    def preprocessing(self) -> bf.Preprocessing:
        return self.bundle.manifest.preprocessing

    @property
    def model_id(self) -> str:
        return self.bundle.model_id

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        return self.encoder.run(None, {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})[0]

    def caption_pixels(self, pixels: np.ndarray, options: DecodeOptions = DecodeOptions()) -> list[CaptionResult]:
        """pixels [B,3,H,W] -> one CaptionResult per photo."""
        vocab = self.bundle.vocabulary
        options = replace(options, max_length=min(options.max_length, self.bundle.manifest.max_caption_length),
                          suppress=vocab.never_generated)
        captions = beam_search(self.decoder, self.encode(pixels), vocab.start_id, vocab.end_id, options)
        return [self._result(c) for c in captions]

    def _result(self, caption: Caption) -> CaptionResult:
        vocab = self.bundle.vocabulary
        words = vocab.decode(caption.tokens)
        alternatives = [(sentence(vocab.decode(t)), s) for t, s in caption.alternatives]
        return CaptionResult(sentence(words), words, caption.score, alternatives, caption.attention,
                             keywords_from_words(words))

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
