"""CIDEr-D as coco-caption computes it, vectorised over many captions at once.

pycocoevalcap's ``Cider`` recomputes document frequencies from whatever it is
given and loops over n-grams in Python: right for scoring a split once, too
slow (and the wrong frequencies) for a reward on every training batch. Here the
document frequencies come once from a fixed reference corpus (the training
captions, as self-critical training does), reference tf-idf vectors are cached
as a sparse matrix, and a batch of hypotheses is scored with a few sparse
operations. Given the same corpus, the numbers equal pycocoevalcap's
(n = 4, sigma = 6, clipped tf-idf, Gaussian length penalty, x10).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse


def ngram_counts(words: Sequence[str], n: int = 4) -> Counter:
    return Counter(tuple(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


class CiderD:
    """CIDEr-D of hypotheses against the references of a fixed corpus of images."""

    def __init__(self, references: Sequence[Sequence[Sequence[str]]], n: int = 4, sigma: float = 6.0):
        """``references[i]`` are image i's reference captions, each a list of words.

        These references set the document frequencies (in how many images an
        n-gram occurs) and are what ``score`` compares against.
        """
        self.n, self.sigma = n, sigma
        ref_counts = [[ngram_counts(ref, n) for ref in refs] for refs in references]
        document_frequency: Counter = Counter()
        for refs in ref_counts:
            document_frequency.update({g for counts in refs for g in counts})
        self.column = {g: j for j, g in enumerate(document_frequency)}
        self.order = np.array([len(g) - 1 for g in document_frequency], dtype=np.int64)
        self.log_images = np.log(float(len(references)))
        self.idf = self.log_images - np.log(np.maximum(1.0, np.array(list(document_frequency.values()), float)))
        flat = [counts for refs in ref_counts for counts in refs]
        self.ref_vectors, self.ref_norms, self.ref_lengths = self._vectors(flat)
        self.ref_start = np.concatenate([[0], np.cumsum([len(refs) for refs in references])])

    def _vectors(self, counts: Sequence[Counter]) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        """tf-idf rows (known n-grams only), per-order norms (all n-grams) and lengths as coco-caption counts them."""
        rows, cols, values = [], [], []
        norms = np.zeros((len(counts), self.n))
        lengths = np.zeros(len(counts))
        for r, grams in enumerate(counts):
            for gram, tf in grams.items():
                j = self.column.get(gram)
                weight = tf * (self.idf[j] if j is not None else self.log_images)  # unseen n-gram: df 0 -> log(1)
                norms[r, len(gram) - 1] += weight * weight
                if j is not None:
                    rows.append(r)
                    cols.append(j)
                    values.append(weight)
                if len(gram) == 2:  # coco-caption's "length" counts bigrams (n == 1 in its 0-based order)
                    lengths[r] += tf
        matrix = sparse.csr_matrix((values, (rows, cols)), shape=(len(counts), len(self.column)))
        return matrix, np.sqrt(norms), lengths

    def score(self, hypotheses: Sequence[Sequence[str]], images: Sequence[int]) -> np.ndarray:
        """CIDEr-D of each hypothesis (a list of words) against the references of ``images[k]``."""
        images = np.asarray(images, dtype=np.int64)
        hyp, hyp_norms, hyp_lengths = self._vectors([ngram_counts(h, self.n) for h in hypotheses])
        per_hyp = self.ref_start[images + 1] - self.ref_start[images]
        pair_hyp = np.repeat(np.arange(len(hypotheses)), per_hyp)
        pair_ref = np.concatenate([np.arange(self.ref_start[i], self.ref_start[i + 1]) for i in images]) \
            if len(images) else np.zeros(0, np.int64)
        ref = self.ref_vectors[pair_ref]
        overlap = hyp[pair_hyp].minimum(ref).multiply(ref).tocoo()
        dots = np.bincount(overlap.row * self.n + self.order[overlap.col], weights=overlap.data,
                           minlength=len(pair_hyp) * self.n).reshape(len(pair_hyp), self.n)
        denominator = hyp_norms[pair_hyp] * self.ref_norms[pair_ref]
        cosine = np.divide(dots, denominator, out=dots.copy(), where=denominator != 0)
        delta = hyp_lengths[pair_hyp] - self.ref_lengths[pair_ref]
        pair_score = cosine.mean(axis=1) * np.exp(-(delta ** 2) / (2 * self.sigma ** 2))
        return 10.0 * np.bincount(pair_hyp, weights=pair_score, minlength=len(hypotheses)) / np.maximum(per_hyp, 1)
