"""A small neural classifier head over sentence embeddings, trained with torch, run with numpy.

:class:`MLPClassifier` has the interface of :class:`~callpipe.analysis.embeddings.SoftmaxClassifier`
(``fit``, ``logits``, ``predict_proba``, ``state``/``set_state``): one hidden layer (GELU), dropout
and weight decay, trained full-batch with AdamW and label smoothing. Training needs torch (the
``torch`` extra: ``pip install callpipe[torch]``); it is seeded and single-threaded with
deterministic algorithms, so the same data gives the same weights, which the analysis cache
(:mod:`callpipe.analysis.model_cache`) stores. Inference is plain numpy: a process that loads cached
weights does not import torch. :func:`torch_available` tells callers whether they can fit one;
without torch they fall back to the softmax classifier.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence

import numpy as np


def torch_available() -> bool:
    """True when torch can be imported (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


class MLPClassifier:
    """Embedding -> hidden (GELU) -> labels; see the module docstring."""

    kind = "mlp"

    def __init__(
        self,
        labels: Sequence[str],
        hidden: int = 128,
        epochs: int = 300,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-2,
        dropout: float = 0.3,
        smoothing: float = 0.1,
        seed: int = 0,
    ) -> None:
        if len(set(labels)) != len(labels) or len(labels) < 2:
            raise ValueError("a classifier needs at least two distinct labels")
        self.labels = list(labels)
        self.hidden = hidden
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.smoothing = smoothing
        self.seed = seed
        self._arrays: dict[str, np.ndarray] = {}

    def settings(self) -> list[object]:
        """What, besides the data, decides the fitted weights (part of the cache key)."""
        return [self.kind, self.hidden, self.epochs, self.learning_rate, self.weight_decay,
                self.dropout, self.smoothing, self.seed]

    def state_spec(self, dim: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Names, shapes and dtypes of :meth:`state` for ``dim``-dimensional features."""
        f64, n = np.dtype(np.float64), len(self.labels)
        return {"mean": ((dim,), f64), "scale": ((dim,), f64), "w1": ((dim, self.hidden), f64),
                "b1": ((self.hidden,), f64), "w2": ((self.hidden, n), f64), "b2": ((n,), f64)}

    def fit(self, features: np.ndarray, targets: Sequence[str]) -> MLPClassifier:
        """Train on rows of ``features`` labelled ``targets`` (needs torch)."""
        import torch

        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted({t for t in targets if t not in index})
        if unknown:
            raise ValueError(f"training labels not in the label set: {unknown}")
        x = np.asarray(features, dtype=np.float64)
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            generator = torch.Generator().manual_seed(self.seed)
            xt = torch.tensor((x - mean) / scale, dtype=torch.float32)
            yt = torch.tensor([index[t] for t in targets], dtype=torch.long)
            d, n = xt.shape[1], len(self.labels)
            w1 = torch.nn.Parameter(torch.randn(d, self.hidden, generator=generator) * (2.0 / d) ** 0.5)
            b1 = torch.nn.Parameter(torch.zeros(self.hidden))
            w2 = torch.nn.Parameter(torch.randn(self.hidden, n, generator=generator) / self.hidden**0.5)
            b2 = torch.nn.Parameter(torch.zeros(n))
            params = [w1, b1, w2, b2]
            optimiser = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=self.weight_decay)
            loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=self.smoothing)
            for _ in range(self.epochs):
                keep = (torch.rand(xt.shape, generator=generator) >= self.dropout).float()
                keep /= 1 - self.dropout
                hidden = torch.nn.functional.gelu((xt * keep) @ w1 + b1)
                loss = loss_fn(hidden @ w2 + b2, yt)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            names = ("w1", "b1", "w2", "b2")
            arrays = {name: p.detach().double().numpy().copy() for name, p in zip(names, params, strict=True)}
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
        self._arrays = {"mean": mean, "scale": scale, **arrays}
        return self

    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays, for :meth:`set_state` and the analysis cache."""
        return dict(self._arrays)

    def set_state(self, state: Mapping[str, np.ndarray]) -> MLPClassifier:
        """Restore arrays from :meth:`state` (``ValueError`` when they do not fit the label set)."""
        dim = np.asarray(state["mean"]).shape[0]
        spec = self.state_spec(dim)
        arrays = {name: np.asarray(state[name]) for name in spec}
        if any(arrays[name].shape != shape for name, (shape, _) in spec.items()):
            raise ValueError("classifier state does not match the label set or feature size")
        self._arrays = arrays
        return self

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Unnormalised class scores, shape (rows, labels)."""
        a = self._arrays
        x = (np.asarray(features, dtype=np.float64) - a["mean"]) / a["scale"]
        h = x @ a["w1"] + a["b1"]
        h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))  # exact GELU, as torch's default
        return h @ a["w2"] + a["b2"]

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (rows, labels), in the order of ``labels``."""
        z = self.logits(features)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)


def _erf(x: np.ndarray) -> np.ndarray:
    from math import erf

    return np.vectorize(erf, otypes=[np.float64])(x)


HEADS = ("auto", "mlp", "softmax")
"""``mlp``: :class:`MLPClassifier` (needs torch to fit); ``softmax``: the numpy logistic regression;
``auto``: ``softmax`` (5-fold cross-validation on the training sets did not show the MLP ahead once
fused with the lexicon and cues; see ``benchmarks/analysis_eval.py --cv 5 --head mlp``)."""


def make_head(labels: Sequence[str], head: str = "auto"):  # -> MLPClassifier | SoftmaxClassifier
    """A fresh classifier head of kind ``head`` (see :data:`HEADS`) over ``labels``."""
    from callpipe.analysis.embeddings import SoftmaxClassifier

    if head not in HEADS:
        raise ValueError(f"unknown classifier head {head!r}; expected one of {HEADS}")
    if head == "mlp":
        if not torch_available():
            raise ValueError("classifier head 'mlp' needs torch: pip install 'callpipe[torch]'")
        return MLPClassifier(labels)
    return SoftmaxClassifier(labels)
