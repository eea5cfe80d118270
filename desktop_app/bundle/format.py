"""Model bundle format: the files, the manifest and its checks.

A bundle is a folder that training writes (``python -m model_export export``)
and the app reads. This module is the single definition of it; both sides
import it, and ``resources/models/README.md`` documents it for people.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from desktop_app.bundle.vocabulary import PAD, START, END, UNK, Vocabulary

# 1: encoder + decoder graphs. 2: adds optional concept keywords (concepts.onnx + concepts.json);
# a version-2 app runs version-1 bundles, without keywords from concepts. 3: decoder_step also ranks
# (inputs bias, top_k; outputs top_log_probs, top_ids); the app ranks older bundles' log-probs itself.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
RANKING_VERSION = 3
MANIFEST_FILE = "manifest.json"
ENCODER_FILE = "encoder.onnx"
DECODER_INIT_FILE = "decoder_init.onnx"
DECODER_STEP_FILE = "decoder_step.onnx"
VOCAB_FILE = "vocab.json"
MODEL_FILES = (ENCODER_FILE, DECODER_INIT_FILE, DECODER_STEP_FILE, VOCAB_FILE)
CONCEPTS_FILE = "concepts.onnx"
CONCEPTS_WORDS_FILE = "concepts.json"
CONCEPT_FILES = (CONCEPTS_FILE, CONCEPTS_WORDS_FILE)

# Tensor names of the three graphs. The decode loop lives outside the graphs
# (as in Hugging Face optimum's encoder/decoder split), so these names are the
# whole contract between the exporter and the app's decode loop.
ENCODER_INPUTS = ("pixels",)  # [B,3,H,W] float32, normalised
ENCODER_OUTPUTS = ("features",)  # [B,N,C] grid features
INIT_INPUTS = ("features",)
INIT_OUTPUTS = ("memory", "keys", "h", "c")  # memory [B,N,D], keys [B,N,A], h/c [B,H]
STEP_INPUTS = ("tokens", "h", "c", "memory", "keys")  # tokens [B] int64
STEP_OUTPUTS = ("log_probs", "h_out", "c_out", "alpha")  # [B,V], [B,H], [B,H], [B,N]
# Format 3: bias [B,V] float32 is added to log_probs (the decode loop's word bias; -inf never emits a word)
# and top_k [1] int64 = K; top_log_probs [B,K] and top_ids [B,K] int64 are the K largest of
# log_probs + bias, largest first (ONNX TopK). log_probs itself stays unbiased, for parity checks.
STEP_RANKED_INPUTS = STEP_INPUTS + ("bias", "top_k")
STEP_RANKED_OUTPUTS = STEP_OUTPUTS + ("top_log_probs", "top_ids")
CONCEPTS_INPUTS = ("features",)  # the encoder's grid [B,N,C]
CONCEPTS_OUTPUTS = ("word_probs", "region_word_probs")  # [B,W] whole photo, [B,W] best region


class BundleError(ValueError):
    """A model bundle is missing, malformed or does not match itself."""


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes the encoder's input tensor.

    ``resize="squash"`` resizes both sides to the input size without keeping
    the aspect ratio and without cropping, which is how the training photos
    were made; any other rule would show the model shapes it never saw.
    """

    input_height: int = 224
    input_width: int = 224
    resize: str = "squash"
    resample: str = "bilinear"
    colour_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.resize != "squash":
            raise BundleError(f"unsupported resize rule {self.resize!r} (only 'squash')")
        if self.colour_order != "RGB":
            raise BundleError(f"unsupported colour order {self.colour_order!r} (only 'RGB')")
        if self.resample not in ("bilinear", "bicubic"):
            raise BundleError(f"unsupported resample filter {self.resample!r}")
        if self.input_height < 16 or self.input_width < 16:
            raise BundleError("input size must be at least 16x16")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise BundleError("mean and std must be three numbers, std > 0")


@dataclass
class Concepts:
    """``concepts.json``: the words ``concepts.onnx`` scores, and how the app uses the scores.

    Thresholds were chosen on a dev split at export time (``python -m model_export.concepts``);
    the app only reads them."""

    words: list[str]
    keyword_threshold: float = 0.5  # a word is a keyword when its whole-photo probability reaches this
    region_threshold: float = 0.9  # ... or its probability in one region reaches this
    max_keywords: int = 6
    caption_bias: float = 0.0  # added per unit of word probability to the decoder's log-prob of that word
    caption_region_weight: float = 0.5  # a word's best-region probability counts this much towards the bias
    caption_bias_from: int = 0  # words before this index (learned caption nouns) do not bias captions
    review_threshold: float | None = None  # confidence below this: the caption needs review (None: never flag)
    # Captions name only what the models see: a word's log-probability gets penalty * log(p / floor) while its
    # probability p (whole photo, or weighted best region) is under floor. Object words (``object_groups``: the
    # words for one kind of thing, "dog", "puppy"...) count their group's best p, so "a boy" is not doubted
    # when the models see "a child"; other concept words their own.
    object_groups: list[list[str]] = field(default_factory=list)
    object_penalty: float = 0.0
    object_floor: float = 0.5
    kind_floors: dict[str, float] = field(default_factory=dict)  # a kind's own floor, by its first word ("person")
    word_penalty: float = 0.0
    word_floor: float = 0.3
    penalty_region_weight: float = 0.2
    review_floor: float = 0.0  # an object word named while its kind's p is under this: the caption needs review
    # A broken sentence (a noun phrase that lost its noun: "a small brown and white is") gives way to what the
    # models do see: "Possibly: food, drink, coffee." (up to ``fallback_words`` words whose whole-photo p reaches
    # ``fallback_floor``, an object word also ``object_floor``; 0 turns it off).
    fallback_floor: float = 0.0
    fallback_words: int = 4
    # ... as does a sentence naming an object the models doubt (``review_floor``) whose confidence is under this:
    # one the calibration says is almost surely wrong ("A man is standing in front of a fire." for a rocket launch).
    fallback_confidence: float = 0.0
    confidence: dict[str, float] = field(default_factory=dict)  # logistic calibration: feature name -> weight

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Concepts":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            concepts = cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise BundleError(f"{path}: not a concept word list ({exc})") from exc
        if not concepts.words or not all(isinstance(w, str) and w for w in concepts.words):
            raise BundleError(f"{path}: the word list is empty or has a non-word")
        return concepts


@dataclass
class Manifest:
    """Everything the app must know to run a bundle, and where it came from."""

    model_name: str
    encoder_name: str
    preprocessing: Preprocessing
    vocab_size: int
    grid_size: int  # N, number of attention locations
    feature_dim: int  # C, encoder channels
    max_caption_length: int
    special_tokens: dict[str, int]
    training_data: str = ""
    test_scores: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256
    created: str = ""
    format_version: int = FORMAT_VERSION
    encoder_precision: str = "fp32"
    decoder_precision: str = "fp32"  # of decoder_step.onnx: fp32 or int8 (dynamic, int8 weights)
    concepts: dict[str, Any] = field(default_factory=dict)  # empty: no concept keywords (format 1 bundles)
    model_hash: str = ""  # names the model in photo metadata; empty: decoder_step.onnx's sha256 (see model_id)

    @property
    def files_expected(self) -> tuple[str, ...]:
        return MODEL_FILES + (CONCEPT_FILES if self.concepts else ())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = MANIFEST_FILE) -> "Manifest":
        if not isinstance(data, dict):
            raise BundleError(f"{source}: expected a JSON object")
        version = data.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise BundleError(f"{source}: this model needs a newer photocaption (bundle format {version}; this app "
                              f"reads formats {READABLE_VERSIONS[0]} to {FORMAT_VERSION})")
        if version not in READABLE_VERSIONS:
            raise BundleError(f"{source}: format_version {version!r} is not a bundle format this app knows "
                              f"({', '.join(map(str, READABLE_VERSIONS))})")
        try:
            fields = dict(data)
            fields["preprocessing"] = Preprocessing(**{
                k: tuple(v) if isinstance(v, list) else v for k, v in fields["preprocessing"].items()
            })
            return cls(**fields)
        except BundleError as exc:
            raise BundleError(f"{source}: {exc}") from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"{source}: missing or unexpected field ({exc})") from exc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(bundle_dir: Path, manifest: Manifest) -> Manifest:
    """Fill in file hashes and, for a new bundle, its creation time; then write ``manifest.json``.

    Rewriting an existing manifest (``evaluate --record``) keeps the time the model was made."""
    bundle_dir = Path(bundle_dir)
    manifest.files = {name: sha256_of(bundle_dir / name) for name in manifest.files_expected}
    manifest.created = manifest.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
    (bundle_dir / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")
    return manifest


@dataclass
class Bundle:
    """A verified bundle on disk."""

    path: Path
    manifest: Manifest
    vocabulary: Vocabulary
    concepts: Concepts | None = None

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def model_id(self) -> str:
        """Short, stable id of this exact model (name + hash prefix), recorded in photo metadata.

        A bundle rewritten without changing a caption (format 2 -> 3) keeps its old hash in
        ``model_hash``, so photos captioned before are not captioned again."""
        return f"{self.manifest.model_name}@{self.manifest.model_hash or self.manifest.files[DECODER_STEP_FILE][:12]}"


def load_bundle(bundle_dir: Path, verify_hashes: bool = True) -> Bundle:
    """Read and verify a bundle; every problem is a BundleError that names it."""
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(f"model bundle folder not found: {bundle_dir}")
    manifest_path = bundle_dir / MANIFEST_FILE
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{manifest_path}: missing (is {bundle_dir} a model bundle?)") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from exc
    manifest = Manifest.from_dict(data, str(manifest_path))

    for name in manifest.files_expected:
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle")
        if name not in manifest.files:
            raise BundleError(f"{manifest_path}: no sha256 recorded for {name}")
        if verify_hashes and sha256_of(path) != manifest.files[name]:
            raise BundleError(f"{path}: sha256 does not match the manifest (file changed or corrupt)")

    try:
        vocabulary = Vocabulary.load(bundle_dir / VOCAB_FILE)
    except ValueError as exc:
        raise BundleError(str(exc)) from exc
    if len(vocabulary) != manifest.vocab_size:
        raise BundleError(
            f"{bundle_dir / VOCAB_FILE}: has {len(vocabulary)} words but the manifest says vocab_size {manifest.vocab_size}"
        )
    expected = {PAD: vocabulary.pad_id, START: vocabulary.start_id, END: vocabulary.end_id, UNK: vocabulary.unk_id}
    if manifest.special_tokens != expected:
        raise BundleError(f"{manifest_path}: special_tokens {manifest.special_tokens} do not match the vocabulary {expected}")
    concepts = Concepts.load(bundle_dir / CONCEPTS_WORDS_FILE) if manifest.concepts else None
    return Bundle(bundle_dir, manifest, vocabulary, concepts)
