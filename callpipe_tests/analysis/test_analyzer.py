"""The analyze() entry point: the whole analysis of real transcripts with the real models."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from callpipe import schema
from callpipe.analysis import analyzer as analyzer_module
from callpipe.analysis.analyzer import (
    INTENT_MODEL_ENV,
    SENTIMENT_MODEL_ENV,
    Analysis,
    Analyzer,
    InvalidInputError,
    analyze,
    get_analyzer,
)
from callpipe.analysis.embeddings import ModelBackendError
from callpipe_tests.analysis.sample_calls import CALLS, text, turns


def test_analyze_a_whole_call_with_turns() -> None:
    result = analyze("", turns(CALLS["internet_outage"]), reference_date=date(2025, 3, 12))
    assert isinstance(result, Analysis)
    assert result.intent.primary_intent == "technical_support"
    assert result.sentiment.label in ("negative", "frustrated")
    assert len(result.sentiment.per_turn) == len(CALLS["internet_outage"])
    assert result.sentiment.trend in ("improving", "stable", "worsening")
    assert "internet" in result.topics.topics
    assert 0.0 < result.topics.coherence_score <= 1.0
    assert isinstance(result.entities, schema.Entities)


def test_results_fit_the_metadata_contract() -> None:
    result = analyze(text(CALLS["billing"]))
    meta = schema.RecordingMetadata(
        recording_id="r1",
        conversation_id="c1",
        sentiment=result.sentiment,
        intent=result.intent,
        entities=result.entities,
        topics=result.topics,
    )
    again = schema.RecordingMetadata.model_validate_json(meta.model_dump_json())
    assert again.intent == result.intent and again.sentiment == result.sentiment
    assert Analysis.model_validate_json(result.model_dump_json()) == result
    assert result.sentiment.per_turn == [] and result.sentiment.trend is None  # no turns given


def test_entities_come_from_the_entity_extractor() -> None:
    result = analyze("mi teléfono es el 612 345 678 y quiero pagar 45 euros de la factura")
    assert [e.value for e in result.entities.phone_numbers] == ["+34612345678"]
    assert [a.amount for a in result.entities.amounts] == [45.0]


def test_empty_input_is_neutral_and_other_with_low_confidence() -> None:
    for text_in in ("", "   "):
        result = analyze(text_in)
        assert result.sentiment.label == "neutral" and result.sentiment.confidence == 0.0
        assert result.intent.primary_intent == "other" and result.intent.confidence == 0.0
        assert result.topics == schema.Topics()
    assert analyze("", []).intent.primary_intent == "other"


def test_turns_as_plain_dicts_and_text_from_turns() -> None:
    raw = [
        {"speaker": s, "start": i, "end": i + 1, "text": t} for i, (s, t) in enumerate(CALLS["card_block"])
    ]
    result = analyze("", raw)
    assert result.intent.primary_intent == "card_issue"
    assert result.sentiment.per_turn[1].speaker == "customer"


def test_bad_input_raises_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="text must be a str"):
        analyze(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="turns must be a list"):
        analyze("hola", "no es una lista")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="turn 0 is not a valid Turn"):
        analyze("hola", [{"speaker": "robot", "start": 0, "end": 1, "text": "hola"}])


def test_default_analyzer_is_built_once() -> None:
    assert get_analyzer() is get_analyzer()
    assert analyzer_module._default is get_analyzer()


def test_concurrent_calls_agree_with_sequential_ones() -> None:
    texts = [text(call) for call in CALLS.values()] * 2
    sequential = [analyze(t) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(analyze, texts))
    assert parallel == sequential


@pytest.mark.slow
def test_very_long_transcript() -> None:
    call_text = " ".join(text(call) for call in CALLS.values())
    long_text = " ".join([call_text] * 6)  # about 3,300 words, a 20-minute call
    result = analyze(long_text)  # benchmarks/timing_bounds.py prints how long it takes
    assert result.intent.primary_intent != "other"
    assert len(result.topics.topics) >= 3
    assert result.sentiment.label in ("positive", "neutral", "negative", "frustrated")


def test_sentiment_model_dir_without_a_model_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SENTIMENT_MODEL_ENV, str(tmp_path / "absent"))
    with pytest.raises(ModelBackendError, match=r"config\.json"):
        Analyzer(embedder=get_analyzer().embedder)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is not None, reason="transformers is installed")
def test_intent_model_dir_needs_transformers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.setenv(INTENT_MODEL_ENV, str(tmp_path))
    with pytest.raises(ModelBackendError, match=r"transformers/torch are not installed"):
        Analyzer(embedder=get_analyzer().embedder)


def test_default_path_needs_no_torch() -> None:
    # spaCy (thinc) imports torch by itself whenever it is installed, so block torch and
    # transformers in a fresh interpreter and check that the default analysis runs without them.
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from callpipe.analysis.analyzer import Analyzer\n"
        "print(Analyzer().analyze('quiero bloquear la tarjeta').intent.primary_intent)"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "card_issue"
