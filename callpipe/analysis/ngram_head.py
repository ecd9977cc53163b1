"""A lexical view beside the embeddings: naive Bayes over word and character n-grams.

Sentence embeddings of a frozen encoder blur the words that decide a call-centre intent
("domiciliación", "transferencia", "no reconozco"): two sentences about the same account read alike
whatever is asked. :class:`NgramNaiveBayes` scores the surface instead: binarised multinomial naive
Bayes with Laplace smoothing over the folded words, word bigrams and character 4-grams of each
word (so "cancelen", "cancelar" and "cancelación" share features, and ASR misspellings keep most
of theirs). Its logits are the mean per-feature log-likelihood (so long texts are not more
confident than short ones), centred per text; callers add ``weight`` x these to the embedding
classifier's logits. Fitting is counting: milliseconds for the packaged training sets, no cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from callpipe.analysis.text import fold


def ngram_features(text: str) -> set[str]:
    """Words, word bigrams and character 4-grams of the words (``_`` marks word edges)."""
    words = fold(text).split()
    out = {f"w:{w}" for w in words}
    out.update(f"b:{a} {b}" for a, b in pairwise(words))
    for w in words:
        padded = f"_{w}_"
        out.update(f"c:{padded[i:i + 4]}" for i in range(max(1, len(padded) - 3)))
    return out


class NgramNaiveBayes:
    """Binarised multinomial naive Bayes over :func:`ngram_features`; see the module docstring."""

    def __init__(self, labels: Sequence[str], alpha: float = 0.5) -> None:
        self.labels = list(labels)
        self.alpha = alpha
        self.vocab: dict[str, int] = {}
        self.log_probs = np.zeros((len(self.labels), 0))

    def fit(self, texts: Sequence[str], targets: Sequence[str]) -> NgramNaiveBayes:
        """Count features per label (labels without examples get the smoothed uniform row)."""
        index = {label: i for i, label in enumerate(self.labels)}
        features = [ngram_features(t) for t in texts]
        self.vocab = {f: k for k, f in enumerate(sorted({f for fs in features for f in fs}))}
        counts = np.zeros((len(self.labels), len(self.vocab)))
        for fs, target in zip(features, targets, strict=True):
            counts[index[target], [self.vocab[f] for f in fs]] += 1
        smoothed = counts + self.alpha
        self.log_probs = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
        return self

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Mean log-likelihood per known feature, centred per text; zeros for texts with none."""
        out = np.zeros((len(texts), len(self.labels)))
        for row, text in enumerate(texts):
            ids = [self.vocab[f] for f in ngram_features(text) if f in self.vocab]
            if ids:
                scores = self.log_probs[:, ids].mean(axis=1)
                out[row] = scores - scores.mean()
        return out
