"""Caption nouns: what people name in photos, learned from the training captions.

ImageNet's classes miss much of what a photo search asks for (kites, cakes, surfboards,
kitchens, people) and confuse some of it (a "kite" class is a bird). The training captions
name all of it. For each noun that enough training photos have in their captions, a logistic
regression on the encoder's mean-pooled grid (the same features the ImageNet classifier reads)
predicts the share of a photo's captions that would name it; applied to each 3x3 region too,
as the classifier is. Only nouns ImageNet has no word for are learned: its classifier saw
1.28 M photos, the captions a few dozen cats. The result joins ``concepts.onnx`` (see ``model_export.concepts``), so the
app reads only word probabilities, as before.

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
EPOCHS, BATCH, LEARNING_RATE, WEIGHT_DECAY = 40, 256, 1e-3, 1e-2
# Nouns captions use for where or how many, not for what is there: no one searches photos by them.
CAPTION_FILLER = frozenset("""
front top side back middle edge end bottom corner background foreground distance picture photo image view shot
lot couple group pair bunch number something area way day time air other
while who someone past round upside overall piece set can case hind
play run stand jump walk sit climb ride hold look wear down out off over
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
    and "red" names a colour (judged by WordNet's sense counts, cntlist, and its lexicographer files).
    Base forms such as "train", "bat" and "sink" stay nouns: in a caption they mostly are."""
    def uses(word: str, pos: str) -> int:
        return sum(lemma.count() for synset in wn.synsets(word, pos) for lemma in synset.lemmas()
                   if lemma.name().lower() == word)

    @functools.cache
    def lemma(word: str) -> str | None:
        noun, verb = wn.morphy(word, "n"), wn.morphy(word, "v")
        if noun is not None and verb not in (None, word) and uses(verb, "v") > 4 * uses(noun, "n"):
            return None  # an inflected verb: "standing", "holds"
        if noun is not None and uses(word, "a") + uses(word, "s") > 4 * uses(noun, "n") \
                and wn.synsets(noun, "n")[0].lexname() == "noun.attribute":
            return None  # a colour word, as captions use it: "red", "blue"
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


def pooled_features(captioner, paths: list[Path], batch: int = 32) -> np.ndarray:
    """[N, C] mean of each photo's encoder grid, through the app's own reader and encoder."""
    from desktop_app.photos.pixels import load_pixels

    rows = []
    for start in range(0, len(paths), batch):
        pixels = np.stack([load_pixels(p, captioner.preprocessing) for p in paths[start:start + batch]])
        rows.append(captioner.encode(pixels).mean(axis=1))
    return np.concatenate(rows)


def fit_noun_detector(features: np.ndarray, targets: np.ndarray, weights: np.ndarray, seed: int = 0) -> nn.Linear:
    """Logistic regressions (one per noun, soft targets) on standardised features, folded back into
    one ``nn.Linear`` on the raw features so the exported graph needs no extra step."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = torch.from_numpy(((features - mean) / std).astype(np.float32))
    y, w = torch.from_numpy(targets), torch.from_numpy(weights.astype(np.float32))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    linear = nn.Linear(x.shape[1], y.shape[1])
    optimiser = torch.optim.AdamW(linear.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    for _ in range(EPOCHS):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), BATCH):
            rows = order[start:start + BATCH]
            loss = nn.functional.binary_cross_entropy_with_logits(linear(x[rows]), y[rows], reduction="none")
            loss = (loss.mean(1) * w[rows]).sum() / w[rows].sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    folded = nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        scale = torch.from_numpy((1 / std).astype(np.float32))
        folded.weight.copy_(linear.weight * scale)
        folded.bias.copy_(linear.bias - (linear.weight * scale) @ torch.from_numpy(mean.astype(np.float32)))
    return folded.eval()


def learn_nouns(captioner, flickr8k: Path, coco: Path | None, wn, excluded: frozenset[str]
                ) -> tuple[list[str], nn.Linear, dict]:
    """(nouns, detector on mean-pooled features, a summary for the manifest)."""
    photos = training_photos(flickr8k, coco)
    nouns, targets = caption_targets(photos.captions, noun_lemmas(wn), excluded | CAPTION_FILLER)
    detector = fit_noun_detector(pooled_features(captioner, photos.paths), targets, photos.weights)
    summary = {"nouns": len(nouns), "photos": len(photos.paths), "coco_photos": int((photos.weights > 1).sum()),
               "min_photos": MIN_PHOTOS, "named_share": NAMED_SHARE, "coco_weight": COCO_WEIGHT}
    return nouns, detector, summary
