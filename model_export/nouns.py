"""Caption nouns: what people name in photos, learned from the training captions.

ImageNet's classes miss much of what a photo search asks for (kites, cakes, surfboards,
kitchens, people) and see some of it differently from the people who caption photos (a
"kite" class is a bird; a cat beside a person is often "a dog" to it). The training captions
name all of it. For each noun that enough training photos have in their captions, a logistic
regression predicts the share of a photo's captions that would name it, from the encoder's
mean-pooled grid and the ImageNet classifier's log-probabilities on it (so "cat" can lean on
the tabby, tiger-cat and Egyptian-cat classes); applied to each 3x3 region too, as the
classifier is. Every such noun is learned, ImageNet's own words included: on the COCO dev
split the learned noun ranked photos better than ImageNet's word for most of them (mean
average precision over the everyday benchmark's nouns 0.46 vs 0.36), though not for all
(``concepts.split_learned`` keeps the larger of the two). The result joins
``concepts.onnx`` (see ``model_export.concepts``), so the app reads only word probabilities.

Training photos: Flickr8k train and val, and COCO ``extra.txt`` (weighted up: the everyday world
is what Flickr8k lacks). Never COCO ``dev.txt``: that split only measures and sets thresholds.
"""

from __future__ import annotations

import collections
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_export.data.captions import load_flickr_folder, load_reference_folder

MIN_PHOTOS = 5  # photos whose captions mostly name a noun before it is learned
NAMED_SHARE = 0.4  # "mostly": at least 2 of 5 captions, as the everyday benchmark counts relevance
COCO_WEIGHT = 6.0  # a COCO photo counts this many Flickr8k photos in the loss
# L2 penalty per noun on the standardised inputs, solved to convergence (L-BFGS). Chosen on COCO dev mean average
# precision over the benchmark's nouns: 1e-3 0.449, 1e-2 0.464, 1e-1 0.432 (features only, without the log-probs: 0.456 at
# 1e-2). The AdamW fit used before (40 epochs, lr 1e-3) stopped far short of the optimum: 0.257.
L2, MAX_ITERATIONS = 1e-2, 150
# Nouns captions use for where or how many, not for what is there: no one searches photos by them.
CAPTION_FILLER = frozenset("""
front top side back middle edge end bottom corner background foreground distance picture photo image view shot
lot couple group pair bunch number something area way day time air other
while who someone past round upside overall piece set can case hind
play run stand jump walk sit climb ride hold look wear down out off over
take talk turn serve gather pose fetch wrestle swim
""".split())
_WORD = re.compile(r"[a-z]+")


@dataclass
class TrainingPhotos:
    paths: list[Path]
    captions: list[list[str]]
    weights: np.ndarray  # [N] loss weight per photo


def training_photos(flickr8k: Path, coco: Path | None) -> TrainingPhotos:
    """Flickr8k train + val photos, and COCO ``extra.txt`` (the reference folder's train split) if a
    COCO folder is given; read by the same loaders as ``prepare``."""
    flickr = load_flickr_folder(flickr8k)
    names = flickr.splits["train"] + flickr.splits["val"]
    photos = TrainingPhotos([flickr.image_dir / n for n in names], [flickr.captions[n] for n in names],
                            np.ones(len(names)))
    if coco is not None:
        everyday = load_reference_folder(coco)  # train: extra.txt, test: dev.txt
        extra = everyday.splits["train"]
        if set(extra) & set(everyday.splits["test"]):
            raise ValueError(f"{coco}: extra.txt shares photos with dev.txt, which must never be trained on")
        photos.paths += [everyday.image_dir / n for n in extra]
        photos.captions += [everyday.captions[n] for n in extra]
        photos.weights = np.r_[photos.weights, np.full(len(extra), COCO_WEIGHT)]
    return photos


def noun_lemmas(wn) -> Callable[[str], str | None]:
    """word -> its WordNet noun lemma ("dogs" -> "dog", "men" -> "man"), None where captions use the
    word as a verb or a colour: "standing" and "holding" are verb forms far more often than nouns,
    and "red", "small", "two" or "inside" mostly describe (judged by WordNet's sense counts, cntlist).
    Base forms such as "train", "bat" and "sink" stay nouns: in a caption they mostly are."""
    def uses(word: str, pos: str) -> int:
        return sum(lemma.count() for synset in wn.synsets(word, pos) for lemma in synset.lemmas()
                   if lemma.name().lower() == word)

    @functools.cache
    def lemma(word: str) -> str | None:
        noun, verb = wn.morphy(word, "n"), wn.morphy(word, "v")
        if noun is not None and verb not in (None, word) and uses(verb, "v") > 4 * uses(noun, "n"):
            return None  # an inflected verb: "standing", "holds"
        if noun is not None and uses(word, "a") + uses(word, "s") + uses(word, "r") > 4 * uses(noun, "n"):
            return None  # an adjective or adverb, as captions use it: "red", "small", "two", "inside"
        return noun

    return lemma


def caption_targets(captions: list[list[str]], lemma: Callable[[str], str | None], excluded: frozenset[str]
                    ) -> tuple[list[str], np.ndarray]:
    """(nouns, [N, W] share of each photo's captions naming each noun) over the nouns worth learning."""
    shares = []
    for photo in captions:
        counts: collections.Counter = collections.Counter()
        for caption in photo:
            counts.update({n for n in map(lemma, _WORD.findall(caption.lower())) if n})
        shares.append({noun: count / len(photo) for noun, count in counts.items()})
    support = collections.Counter(n for photo in shares for n, s in photo.items() if s >= NAMED_SHARE)
    nouns = sorted(n for n, count in support.items() if count >= MIN_PHOTOS and len(n) > 2 and n not in excluded)
    index = {n: i for i, n in enumerate(nouns)}
    targets = np.zeros((len(captions), len(nouns)), np.float32)
    for row, photo in enumerate(shares):
        for noun, share in photo.items():
            if noun in index:
                targets[row, index[noun]] = share
    return nouns, targets


def detector_inputs(features: np.ndarray, classifier: nn.Module) -> np.ndarray:
    """[..., C] pooled features -> [..., C + classes]: the features and the ImageNet classifier's log-probabilities
    on them, what the noun detector reads (``ConceptHead`` computes the same in the graph)."""
    with torch.no_grad():
        log_probs = torch.log_softmax(classifier(torch.from_numpy(features)), dim=-1).numpy()
    return np.concatenate([features, log_probs], axis=-1)


def pooled_features(captioner, paths: list[Path], batch: int = 32) -> np.ndarray:
    """[N, C] mean of each photo's encoder grid, through the app's own reader and encoder."""
    from desktop_app.photos.pixels import load_pixels

    rows = []
    for start in range(0, len(paths), batch):
        pixels = np.stack([load_pixels(p, captioner.preprocessing) for p in paths[start:start + batch]])
        rows.append(captioner.encode(pixels).mean(axis=1))
    return np.concatenate(rows)


def fit_noun_detector(features: np.ndarray, targets: np.ndarray, weights: np.ndarray, l2: float = L2) -> nn.Linear:
    """Logistic regressions (one per noun, soft targets, L2 on standardised features, to convergence),
    folded back into one ``nn.Linear`` on the raw features so the exported graph needs no extra step."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = torch.from_numpy(((features - mean) / std).astype(np.float32))
    y = torch.from_numpy(targets.astype(np.float32))
    w = torch.from_numpy((weights / weights.mean()).astype(np.float32))
    weight = torch.zeros(x.shape[1], y.shape[1], requires_grad=True)
    bias = torch.zeros(y.shape[1], requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], lr=1, max_iter=MAX_ITERATIONS, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        bce = nn.functional.binary_cross_entropy_with_logits(x @ weight + bias, y, reduction="none").mean(1)
        value = (bce * w).mean() + l2 * (weight ** 2).sum() / y.shape[1]
        value.backward()
        return value

    optimiser.step(loss)
    folded = nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        scale = torch.from_numpy((1 / std).astype(np.float32))
        folded.weight.copy_(weight.T * scale)
        folded.bias.copy_(bias - (weight.T * scale) @ torch.from_numpy(mean.astype(np.float32)))
    return folded.eval()


def learn_nouns(captioner, classifier: nn.Module, flickr8k: Path, coco: Path | None, wn, excluded: frozenset[str]
                ) -> tuple[list[str], nn.Linear, dict]:
    """(nouns, detector on ``detector_inputs`` of mean-pooled features, a summary for the manifest)."""
    photos = training_photos(flickr8k, coco)
    nouns, targets = caption_targets(photos.captions, noun_lemmas(wn), excluded | CAPTION_FILLER)
    inputs = detector_inputs(pooled_features(captioner, photos.paths), classifier)
    detector = fit_noun_detector(inputs, targets, photos.weights)
    summary = {"nouns": len(nouns), "photos": len(photos.paths), "coco_photos": int((photos.weights > 1).sum()),
               "min_photos": MIN_PHOTOS, "named_share": NAMED_SHARE, "coco_weight": COCO_WEIGHT, "l2": L2,
               "inputs": "mean-pooled features and the ImageNet classifier's log-probabilities"}
    return nouns, detector, summary
