"""Fuzzing the online stage: ``process_online`` and ``Recorder.record`` with hostile transcripts
and word confidences.

Contract (the invalid shapes, decided here):

- ``transcription`` not a ``str`` -> ``TypeError``;
- ``word_confidences`` not an iterable of items (a number, a string, bytes, a mapping) -> ``TypeError``;
- an item that is neither a number, ``None``, a mapping nor an object with ``confidence`` /
  ``probability``, or a confidence that is not a number in [0, 1] (NaN, inf, negative, > 1, a bool,
  a string) -> ``InvalidConfidenceError`` (a ``ValueError``); so are non-numeric ``start``/``end``
  when ``Recorder.record`` stores the words;
- anything else is corrected: corrections carry confidences in [0, 1] below their threshold, text
  before the first correction is unchanged, no correction means the text is returned as given, and
  unknown confidences (none given, or unalignable) never correct nor flag a word.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from callpipe.recorder import (
    ConfusionDictionary,
    CorrectionConfigError,
    InvalidConfidenceError,
    OnlineCorrectionPipeline,
    Recorder,
    tokenize,
)
from callpipe.schema import Correction, WordConfidence
from callpipe.storage import LocalStore
from callpipe_tests.fuzz.support import COUNTS, fuzz, one_line
from callpipe_tests.fuzz.test_fuzz_storage import WAV

_DICTIONARY = ConfusionDictionary.load_default()
_VOCAB = sorted(
    {w for e in _DICTIONARY.entries for p in (e.wrong, *e.before, *e.after, *e.near) for w in p.split()}
    | set("uno dos tres cuatro cinco seis mil euros tarjeta cuenta dni teléfono las 45 612 ES91".split())  # noqa: SIM905
)

words = st.sampled_from(_VOCAB) | st.text(max_size=8)
transcripts = st.one_of(
    st.lists(words, max_size=25).map(" ".join),
    st.text(max_size=200),
    st.lists(
        st.sampled_from(_VOCAB) | st.sampled_from(["¿", "¡", "?", "...", "\u200b", "\t", "\n"]), max_size=12
    ).map("".join),
)
numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-5, 5)
    | st.sampled_from([0.0, 1.0, 0.1, 0.69, -0.0, 1e-300, np.float32(0.3), np.float64(0.2)])
)
items = st.one_of(
    numbers,
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.fixed_dictionaries(
        {},
        optional={
            "word": words | st.integers() | st.none(),
            "confidence": numbers | st.none() | st.text(max_size=3) | st.booleans(),
            "probability": numbers,
            "start": numbers | st.text(max_size=3) | st.none(),
            "end": numbers | st.none() | st.lists(st.integers(), max_size=2),
        },
    ),
    st.builds(WordConfidence, word=words, confidence=st.floats(0, 1)),
    st.lists(st.floats(0, 1), max_size=2),
)
confidences = st.one_of(
    st.none(),
    st.lists(items, max_size=30),
    st.lists(st.floats(0, 1), max_size=30).map(tuple),
    st.lists(st.floats(0, 1), max_size=30).map(np.array),
    st.sampled_from([5, 0.5, "0.9 0.8", b"\x01", {"word_confidences": [0.5]}, {0.5}]),
)


def _entry_sentence(draw: Any) -> tuple[str, list[Any]]:
    entry = draw(st.sampled_from(_DICTIONARY.entries))
    before = draw(st.sampled_from(entry.before or ("",)))
    after = draw(st.sampled_from(entry.after or ("",)))
    text = " ".join(p for p in (before, entry.wrong, after, draw(st.sampled_from(["", "de 45 euros"]))) if p)
    n = len(text.split())
    conf = draw(st.lists(st.floats(0, 1) | st.none(), min_size=n, max_size=n))
    return text, conf


# Known confusions in their licensing context with one confidence per word: these get corrected.
aligned = st.composite(_entry_sentence)()
cases = st.tuples(transcripts, confidences) | aligned


def _in_bounds(value: Any) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def _wrong_container(conf: Any) -> bool:
    return conf is not None and (
        isinstance(conf, str | bytes | dict | int | float) or not hasattr(conf, "__iter__")
    )


@pytest.fixture(scope="module")
def pipeline() -> OnlineCorrectionPipeline:
    return OnlineCorrectionPipeline(_DICTIONARY, correction_threshold=0.7, clarification_threshold=0.5)


def _check_result(text: str, result: dict[str, Any]) -> None:
    assert set(result) >= {
        "corrected_text",
        "corrections_made",
        "needs_clarification",
        "clarification_reason",
        "processing_mode",
        "processing_time_ms",
        "confidence_alignment",
    }
    assert result["processing_mode"] == "online" and result["processing_time_ms"] >= 0
    assert result["needs_clarification"] is (result["clarification_reason"] is not None)
    alignment = result["confidence_alignment"]
    assert alignment in ("index", "words", "none", "missing")
    corrections = result["corrections_made"]
    if not corrections:
        assert result["corrected_text"] == text
    if alignment in ("none", "missing"):
        assert not corrections and not result["needs_clarification"], "unknown confidence acted on"
    tokens = tokenize(text)
    for fix in corrections:
        Correction.model_validate(fix)  # confidence in [0, 1], position >= 0, known method
        assert _in_bounds(fix["confidence"]) and fix["confidence"] < fix["evidence"]["threshold"]
        assert 0 <= fix["position"] < len(tokens)
    if corrections:
        first = corrections[0]["position"]
        assert result["corrected_text"].split()[:first] == text.split()[:first]


@given(case=cases)
@example(case=("mi salgo disponible", np.array([0.9, 0.3, 0.9])))
@example(case=("mi salgo disponible", 5))
@example(case=("mi salgo disponible", "0.9 0.3 0.9"))
@example(case=("mi salgo disponible", [0.9, float("nan"), 0.9]))
@example(case=("mi salgo disponible", [0.9, float("inf"), 0.9]))
@example(case=("mi salgo disponible", [0.9, -0.1, 0.9]))
@example(case=(" ".join(["mi salgo disponible"] * 7000), [0.9, 0.3, 0.9] * 7000))
@example(case=(None, None))
@example(case=(b"mi salgo", None))
@fuzz(400)
async def test_process_online_contract(pipeline: OnlineCorrectionPipeline, case: tuple[Any, Any]) -> None:
    text, conf = case
    try:
        result = await pipeline.process_online(text, conf, "conv-1")
    except TypeError as exc:
        assert not isinstance(text, str) or _wrong_container(conf), f"TypeError for valid shapes: {exc}"
        one_line(exc)
        COUNTS["process_online TypeError"] += 1
        return
    except InvalidConfidenceError as exc:
        one_line(exc)
        COUNTS["process_online InvalidConfidenceError"] += 1
        return
    assert isinstance(text, str)
    _check_result(text, result)
    COUNTS["process_online corrected" if result["corrections_made"] else "process_online unchanged"] += 1


@given(text=transcripts, conf=confidences)
@example(text="mi salgo disponible", conf=(x for x in [0.9, 0.3, 0.9]))
@example(text="mi salgo disponible", conf=[{"word": "mi", "confidence": 0.9, "start": "abc"}, 0.3, 0.9])
@example(text="mi salgo disponible", conf=np.array([0.9, 0.3, 0.9]))
@fuzz(60)
def test_recorder_stores_what_it_corrected(text: Any, conf: Any) -> None:
    """The online entry point end to end: words stored with confidences in [0, 1], one per token at most."""
    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(LocalStore(Path(tmp)))
        try:
            result = asyncio.run(recorder.record(WAV, "conv-1", text, conf))
        except (TypeError, InvalidConfidenceError) as exc:
            one_line(exc)
            COUNTS[f"Recorder.record {type(exc).__name__}"] += 1
            return
        doc = recorder.store.get_metadata(result.save.recording_id)
    stored = doc.transcription.word_confidences
    assert len(stored) <= len(tokenize(text))
    assert all(_in_bounds(w.confidence) for w in stored)
    mean = doc.transcription.confidence
    assert mean is None or (0.0 <= mean <= 1.0 and math.isfinite(mean))
    assert doc.transcription.corrected_text == result.online["corrected_text"]
    COUNTS["Recorder.record saved"] += 1


@given(value=st.floats(allow_nan=True) | st.text(max_size=6) | st.integers() | st.none() | st.booleans())
@example(value=10**400)  # float() raised OverflowError, not CorrectionConfigError
@example(value="1e400")
@fuzz(100)
def test_thresholds_are_checked(value: Any) -> None:
    try:
        built = OnlineCorrectionPipeline(
            _DICTIONARY, correction_threshold=value, clarification_threshold=value
        )
    except CorrectionConfigError as exc:
        one_line(exc)
        COUNTS["online thresholds CorrectionConfigError"] += 1
        return
    assert value is None or 0.0 <= built.correction_threshold <= 1.0
    COUNTS["online thresholds accepted"] += 1
