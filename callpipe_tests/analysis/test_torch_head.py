"""The torch-trained MLP head: deterministic, cached, numpy inference equal to torch's, clean fallback."""

from __future__ import annotations

import numpy as np
import pytest

from callpipe.analysis.embeddings import SoftmaxClassifier
from callpipe.analysis.torch_head import MLPClassifier, make_head, torch_available

needs_torch = pytest.mark.skipif(not torch_available(), reason="torch extra not installed")


def blobs(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Three well separated clusters (fixed centres), 30 points each, noise drawn with ``seed``."""
    centres = np.random.default_rng(0).normal(size=(3, 16)) * 3
    rng = np.random.default_rng(seed + 1)
    x = np.concatenate([c + rng.normal(size=(30, 16)) for c in centres])
    return x, [label for label in "abc" for _ in range(30)]


@needs_torch
def test_mlp_learns_and_is_deterministic() -> None:
    x, y = blobs()
    first = MLPClassifier(list("abc"), hidden=16, epochs=120).fit(x, y)
    second = MLPClassifier(list("abc"), hidden=16, epochs=120).fit(x, y)
    for name, array in first.state().items():
        np.testing.assert_array_equal(array, second.state()[name])
    test_x, test_y = blobs(seed=1)
    pred = ["abc"[i] for i in first.predict_proba(test_x).argmax(axis=1)]
    assert np.mean([p == g for p, g in zip(pred, test_y, strict=True)]) > 0.9


@needs_torch
def test_numpy_inference_matches_torch() -> None:
    import torch

    x, y = blobs()
    head = MLPClassifier(list("abc"), hidden=8, epochs=20).fit(x, y)
    a = {k: torch.tensor(v) for k, v in head.state().items()}
    xt = (torch.tensor(x) - a["mean"]) / a["scale"]
    expected = torch.nn.functional.gelu(xt @ a["w1"] + a["b1"]) @ a["w2"] + a["b2"]
    np.testing.assert_allclose(head.logits(x), expected.numpy(), rtol=1e-9, atol=1e-9)


def test_state_round_trip_needs_no_torch() -> None:
    rng = np.random.default_rng(0)
    head = MLPClassifier(list("ab"), hidden=4)
    state = {name: rng.normal(size=shape) for name, (shape, _) in head.state_spec(6).items()}
    state["scale"] = np.abs(state["scale"]) + 0.1
    restored = MLPClassifier(list("ab"), hidden=4).set_state(state)
    assert restored.predict_proba(rng.normal(size=(3, 6))).shape == (3, 2)
    with pytest.raises(ValueError, match="does not match"):
        MLPClassifier(list("abc"), hidden=4).set_state(state)


def test_head_choice() -> None:
    assert isinstance(make_head(["a", "b"]), SoftmaxClassifier)
    assert isinstance(make_head(["a", "b"], "softmax"), SoftmaxClassifier)
    with pytest.raises(ValueError, match="unknown classifier head"):
        make_head(["a", "b"], "forest")
    if torch_available():
        assert isinstance(make_head(["a", "b"], "mlp"), MLPClassifier)
    else:
        with pytest.raises(ValueError, match="needs torch"):
            make_head(["a", "b"], "mlp")
