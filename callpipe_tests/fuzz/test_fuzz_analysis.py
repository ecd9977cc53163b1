"""Fuzzing ``analyze`` (the analysis entry point) with the real models: any text, any turns.

Contract: a ``str`` text (empty, digits only, any unicode, very long) always gives an
``Analysis`` that survives a JSON round trip (so it can be stored in the metadata), with finite
scores and entity offsets inside the analysed text; a text that is no ``str`` or malformed turns
raise ``InvalidInputError`` with a one-line message. The models are real, so examples are few.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from callpipe.analysis.analyzer import Analysis, Analyzer, InvalidInputError, get_analyzer
from callpipe_tests.analysis.sample_calls import CALLS
from callpipe_tests.fuzz.support import COUNTS, fuzz, one_line

_WORDS = sorted({w for call in CALLS.values() for _, line in call for w in line.split()})
_EXTRA = ("euros € 45,50 612 345 678 ES91 dni 12345678Z arroba punto com mañana lunes mil millones").split()  # noqa: SIM905

texts = st.one_of(
    st.lists(st.sampled_from(_WORDS + _EXTRA), max_size=60).map(" ".join),
    st.text(max_size=300),
    st.from_regex(r"[0-9 .,]{0,300}", fullmatch=True),
    st.sampled_from(["", " ", "\n\t", "\u200b", "¿?", "😀" * 50]),
)
turn_items = st.one_of(
    st.fixed_dictionaries(
        {
            "speaker": st.sampled_from(["agent", "customer", "unknown"]),
            "start": st.floats(0, 100),
            "end": st.floats(0, 100),
            "text": texts,
        }
    ),
    st.dictionaries(
        st.sampled_from(["speaker", "start", "end", "text", "channel"]),
        st.none() | st.integers() | st.floats() | st.text(max_size=5),
        max_size=5,
    ),
    st.integers(),
)
turns_values = st.none() | st.lists(turn_items, max_size=4) | st.sampled_from(["hola", 5, b"x"])


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _check(text: str, turns: Any, result: Analysis) -> None:
    again = Analysis.model_validate_json(result.model_dump_json())
    assert again == result, "analysis changes through JSON (a stored document would differ)"
    assert _finite(result.model_dump()), "NaN or infinite score"
    analysed = text
    if turns and not text.strip():
        analysed = " ".join(t["text"] for t in turns)
    for field in type(result.entities).model_fields:
        for entity in getattr(result.entities, field):
            assert entity.start is not None and entity.end is not None
            assert 0 <= entity.start <= entity.end <= len(analysed), (field, entity)
            if entity.kind != "card":  # cards hold the masked number, never the digits
                assert analysed[entity.start : entity.end] == entity.text, (field, entity)


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return get_analyzer()


@given(text=texts, turns=turns_values)
@example(text="", turns=None)
@example(text="9" * 50_000, turns=None)  # int() of > 4300 digits raised ValueError
@example(text="9" * 400 + " euros", turns=None)  # amount inf, stored as null: unreadable document
@example(text="x" * 20_000, turns=None)  # one 20,000-character "word" took 10 s to embed
@example(text=" ".join(_WORDS * 20), turns=None)
@example(text="", turns=[{"speaker": "agent", "start": 0, "end": 1, "text": "mi dni es 12345678Z"}])
@example(text=b"hola", turns=None)
@fuzz(20)
def test_analyze_contract(analyzer: Analyzer, text: Any, turns: Any) -> None:
    try:
        result = analyzer.analyze(text, turns, reference_date=date(2025, 3, 12))
    except InvalidInputError as exc:
        one_line(exc)
        assert not isinstance(text, str) or turns is not None, f"valid input rejected: {exc}"
        COUNTS[f"analyze {type(exc).__name__}"] += 1
        return
    assert isinstance(text, str)
    _check(text, turns, result)
    COUNTS["analyze ok"] += 1
