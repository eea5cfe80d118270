"""A loaded model bundle that turns pixels into captions: encoder + decoder graphs + decode loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from desktop_app.bundle import format as bf
from desktop_app.bundle.format import Bundle, load_bundle
from desktop_app.captioning.concepts import ConceptScorer, PhotoConcepts
from desktop_app.captioning.decode import BeamSearch, Caption, DecodeOptions, DecoderState, beam_search
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


def result_fields(result: CaptionResult | None) -> dict:
    """A result as every batch output gives it (the CLI's ``--jsonl`` lines, the cluster's Parquet rows), so
    the two stay comparable field by field; ``None`` (a photo skipped or failed) gives empty fields."""
    r = result
    return {"caption": r.text if r else None, "score": round(r.score, 4) if r else None,
            "alternatives": [[t, round(s, 4)] for t, s in r.alternatives] if r else [],
            "keywords": r.keywords if r else [],
            "confidence": None if r is None or r.confidence is None else round(r.confidence, 3),
            "needs_review": bool(r and r.needs_review)}


@dataclass
class EncodedBatch:
    """Photos through the encoder, ready for the decode loop."""

    features: np.ndarray  # [B, N, C]
    concepts: tuple[np.ndarray, np.ndarray] | None  # word probabilities, whole photo and best region
    bias: np.ndarray | None  # [B, V] added to the decoder's log-probabilities


def run_rows(session, outputs: list[str], rows: dict[str, np.ndarray],
             fixed: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """``session.run`` on inputs whose first axis is the batch (``rows``; ``fixed`` are passed as they are), a
    batch of one run as two rows: onnxruntime multiplies a single row with another kernel, whose last bits
    differ, so a photo alone (the server's batches are often one photo) would otherwise get other scores than
    in any batch."""
    if len(next(iter(rows.values()))) != 1:
        return session.run(outputs, {**rows, **(fixed or {})})
    doubled = {name: np.repeat(value, 2, axis=0) for name, value in rows.items()}
    return [out[:1] for out in session.run(outputs, {**doubled, **(fixed or {})})]


# Words an English caption does not end on: articles, prepositions, conjunctions, auxiliaries, and the words
# captions put before a noun (colours, sizes, numbers); nor does a function word follow an article. (Banning
# function words after a colour too, "a white is", made worse sentences: "a brown and brown and is sitting".)
ARTICLES = frozenset({"a", "an", "the"})
FUNCTION_WORDS = frozenset("""
a an the and or but of in on at to for with by from into onto over under near next through behind beside between
is are was were be being been has have his her its their this that these those
""".split())
MODIFIERS = frozenset("""
some two three four five several
white black brown red yellow blue green orange pink purple grey gray tan small large little big young old tall
""".split())


class OnnxStepModel:
    """The two decoder graphs seen through the decode loop's ``StepModel`` protocol."""

    def __init__(self, init_session, step_session):
        self.init_session, self.step_session = init_session, step_session
        self.vocab_size = int(step_session.get_outputs()[0].shape[1])

    def init(self, features: np.ndarray) -> DecoderState:
        memory, keys, h, c = run_rows(self.init_session, list(bf.INIT_OUTPUTS), {"features": features})
        return DecoderState(memory, keys, h, c)

    def _inputs(self, tokens: np.ndarray, state: DecoderState) -> dict[str, np.ndarray]:
        return {"tokens": tokens, "h": state.h, "c": state.c, "memory": state.memory, "keys": state.keys}

    def step(self, tokens: np.ndarray, state: DecoderState):
        log_probs, h, c, alpha = run_rows(self.step_session, list(bf.STEP_OUTPUTS), self._inputs(tokens, state))
        return log_probs, DecoderState(state.memory, state.keys, h, c), alpha


class RankingOnnxStepModel(OnnxStepModel):
    """A format-3 step graph, which also returns each row's best words (TopK in the graph): the decode
    loop reads K values per row instead of the whole vocabulary."""

    TOP_OUTPUTS = list(bf.STEP_RANKED_OUTPUTS[-2:] + bf.STEP_OUTPUTS[1:])  # top_log_probs, top_ids, h, c, alpha

    def step(self, tokens: np.ndarray, state: DecoderState):
        rows = {**self._inputs(tokens, state), "bias": np.zeros((len(tokens), self.vocab_size), np.float32)}
        log_probs, h, c, alpha = run_rows(self.step_session, list(bf.STEP_OUTPUTS), rows,
                                          {"top_k": np.ones(1, np.int64)})
        return log_probs, DecoderState(state.memory, state.keys, h, c), alpha

    def top(self, tokens: np.ndarray, state: DecoderState, bias: np.ndarray, k: int):
        rows = {**self._inputs(tokens, state), "bias": bias}
        values, ids, h, c, alpha = run_rows(self.step_session, self.TOP_OUTPUTS, rows,
                                            {"top_k": np.array([min(k, self.vocab_size)], np.int64)})
        return values, ids, DecoderState(state.memory, state.keys, h, c), alpha


class BoundRankingStepModel(RankingOnnxStepModel):
    """On CUDA, with I/O binding: a batch's memory and keys (the large inputs) go to the GPU once, not at
    every step; only tokens, h, c and the bias travel, and only the K best words come back."""

    def __init__(self, init_session, step_session, device: str = "cuda"):
        super().__init__(init_session, step_session)
        self.device = device  # "cpu" in the tests, which have no GPU
        self._local = threading.local()  # per thread: the serve module searches on several at once

    def _on_device(self, state: DecoderState) -> tuple:
        bound = getattr(self._local, "bound", None)
        if bound is None or bound[0] is not state.memory or bound[1] is not state.keys:
            bound = (state.memory, state.keys, *(ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a), self.device, 0)
                                                 for a in (state.memory, state.keys)))
            self._local.bound = bound  # holding the arrays keeps ``is`` meaningful
        return bound[2:]

    def top(self, tokens: np.ndarray, state: DecoderState, bias: np.ndarray, k: int):
        memory, keys = self._on_device(state)
        binding = self.step_session.io_binding()
        for name, value in (("tokens", tokens), ("h", state.h), ("c", state.c), ("bias", bias),
                            ("top_k", np.array([min(k, self.vocab_size)], np.int64))):
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        binding.bind_ortvalue_input("memory", memory)
        binding.bind_ortvalue_input("keys", keys)
        for name in self.TOP_OUTPUTS:
            binding.bind_output(name, "cpu")
        self.step_session.run_with_iobinding(binding)
        values, ids, h, c, alpha = binding.copy_outputs_to_cpu()
        return values, ids, DecoderState(state.memory, state.keys, h, c), alpha


class Captioner:
    def __init__(self, bundle: Bundle, runtime: RuntimeOptions = RuntimeOptions()):
        self.bundle = bundle
        self.encoder, self.provider = open_session(bundle.file(bf.ENCODER_FILE), runtime)
        init, _ = open_session(bundle.file(bf.DECODER_INIT_FILE), runtime)
        step, step_provider = open_session(bundle.file(bf.DECODER_STEP_FILE), runtime)
        if bundle.manifest.format_version < bf.RANKING_VERSION:
            self.decoder = OnnxStepModel(init, step)  # format 1-2: the decode loop ranks in NumPy
        else:
            self.decoder = (BoundRankingStepModel if step_provider == "CUDA" else RankingOnnxStepModel)(init, step)
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
        names = (bf.STEP_RANKED_INPUTS, bf.STEP_RANKED_OUTPUTS) if isinstance(self.decoder, RankingOnnxStepModel) \
            else (bf.STEP_INPUTS, bf.STEP_OUTPUTS)
        found = (tuple(i.name for i in self.decoder.step_session.get_inputs()),
                 tuple(o.name for o in self.decoder.step_session.get_outputs()))
        if (set(found[0]), set(found[1])) != (set(names[0]), set(names[1])):
            raise bf.BundleError(f"{bf.DECODER_STEP_FILE} takes {', '.join(found[0])} and returns {', '.join(found[1])}; "
                                 f"a format-{m.format_version} bundle's step graph takes {', '.join(names[0])} and "
                                 f"returns {', '.join(names[1])}")
        vocab = self.decoder.vocab_size
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
        whole, region = run_rows(self.concept_session, list(bf.CONCEPTS_OUTPUTS), {"features": features})
        return whole, region

    def encode_batch(self, pixels: np.ndarray) -> "EncodedBatch":
        """The first half of captioning: the encoder, the concept scores and the word bias they give."""
        features = self.encode(pixels)
        probs = self.concept_probs(features)
        bias = self.scorer.caption_bias(*probs) if probs is not None else None
        return EncodedBatch(features, probs, bias)

    def decode_options(self, options: DecodeOptions) -> DecodeOptions:
        """``options`` as this bundle decodes: no longer than its captions, never its unreadable words, and a
        sentence a person can read (no "is is", no "sitting on a." where the doubt penalty took the noun away)."""
        vocab = self.bundle.vocabulary

        def ids(words: frozenset[str]) -> tuple[int, ...]:
            return tuple(vocab.index[w] for w in sorted(words) if w in vocab.index)

        return replace(options, max_length=min(options.max_length, self.bundle.manifest.max_caption_length),
                       suppress=vocab.never_generated, no_word_twice=True, no_end_after=ids(FUNCTION_WORDS | MODIFIERS),
                       not_after=((ids(ARTICLES), ids(FUNCTION_WORDS)),))

    def search(self, encoded: "EncodedBatch", options: DecodeOptions = DecodeOptions()) -> list[CaptionResult]:
        """The second half: beam search over the encoded photos, one CaptionResult per photo. The pipeline
        runs it on one batch while the encoder works on the next."""
        vocab = self.bundle.vocabulary
        captions = beam_search(self.decoder, encoded.features, vocab.start_id, vocab.end_id,
                               self.decode_options(options), encoded.bias)
        return [self.result(encoded, photo, caption) for photo, caption in enumerate(captions)]

    def running_search(self, options: DecodeOptions = DecodeOptions()) -> BeamSearch:
        """A beam search (beam >= 2) that encoded batches join while it runs (``BeamSearch.add(features, bias)``);
        ``result`` makes each photo's caption what ``search`` would return."""
        vocab = self.bundle.vocabulary
        return BeamSearch(self.decoder, vocab.start_id, vocab.end_id, self.decode_options(options))

    def result(self, encoded: "EncodedBatch", photo: int, caption: Caption) -> CaptionResult:
        """Photo ``photo`` of the encoded batch, its caption ready for people: words, keywords and, with concepts,
        confidence."""
        probs = encoded.concepts
        return self._result(caption, None if probs is None else PhotoConcepts(probs[0][photo], probs[1][photo]))

    def caption_pixels(self, pixels: np.ndarray, options: DecodeOptions = DecodeOptions()) -> list[CaptionResult]:
        """pixels [B,3,H,W] -> one CaptionResult per photo."""
        return self.search(self.encode_batch(pixels), options)

    def _result(self, caption: Caption, concepts: PhotoConcepts | None = None) -> CaptionResult:
        vocab = self.bundle.vocabulary
        alternatives = [(sentence(vocab.decode(t)), s) for t, s in caption.alternatives]
        words = vocab.decode(caption.tokens)
        if concepts is None:
            result = CaptionResult(sentence(words), words, caption.score, alternatives, caption.attention)
            result.keywords = keywords_from_words(words)  # a bundle without concepts: the caption's content words
            return result
        confidence = self.scorer.confidence(self.scorer.confidence_features(
            caption.tokens, caption.score, caption.alternatives, concepts))
        doubted = bool(self.scorer.doubted(caption.tokens, concepts))
        # A broken sentence ("A small brown and white is playing with a small...") or an almost surely wrong one
        # gives way to what the models do see ("Possibly: food, drink, coffee, espresso."), which tells a reader
        # more; the decoder's sentences stay as the alternatives, for a person to choose from.
        falls_back = lost_noun(words) or (doubted and confidence is not None
                                          and confidence < self.concepts.fallback_confidence)
        seen = self.scorer.seen_words(concepts) if falls_back else []
        if seen:
            words = [w for word in seen for w in word.split()]
            result = CaptionResult("Possibly: " + ", ".join(seen) + ".", words, caption.score, alternatives,
                                   np.zeros((len(words), caption.attention.shape[-1]), np.float32))
            tokens = [vocab.index[w] for w in words if w in vocab.index]
        else:
            result = CaptionResult(sentence(words), words, caption.score, alternatives, caption.attention)
            tokens = caption.tokens
        named = self.scorer.seen_in_caption(tokens, concepts)
        result.keywords = named + [w for w in self.scorer.keywords(concepts) if w not in named]
        result.confidence = confidence
        threshold = self.concepts.review_threshold
        unsure = confidence is not None and threshold is not None and confidence < threshold
        result.needs_review = unsure or bool(seen) or doubted
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


def lost_noun(words: list[str]) -> bool:
    """A noun phrase without its noun: an article, then only modifiers ("small", "brown and white"), then a
    function word or the end ("a small brown and white is playing with a small in the water")."""
    modifiers = None  # None: not in a noun phrase; else how many modifiers followed its article
    for word in [*words, None]:
        if word in ARTICLES:
            modifiers = 0
        elif modifiers is not None and (word in MODIFIERS or (word == "and" and modifiers)):
            modifiers += 1
        elif modifiers and (word is None or word in FUNCTION_WORDS):
            return True
        else:
            modifiers = None
    return False


def sentence(words: list[str]) -> str:
    """Words as a caption a person reads: capitalised, with a full stop."""
    if not words:
        return ""
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."
