"""Topics, keywords and coherence on hand-written calls."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callpipe.analysis.analyzer import get_analyzer
from callpipe.analysis.text import fold
from callpipe.analysis.topics import (
    TopicListError,
    TopicModel,
    _count,
    load_stopwords,
    load_topics,
    merge_short,
)
from callpipe_tests.analysis.sample_calls import CALLS, shuffled_mixture, text, turns


@pytest.fixture(scope="module")
def model() -> TopicModel:
    return get_analyzer().topics


@pytest.mark.parametrize(
    ("call", "topic"),
    [
        ("card_block", "cards"),
        ("internet_outage", "internet"),
        ("billing", "billing"),
        ("mortgage", "loans_mortgages"),
    ],
)
def test_main_topic_of_each_call(model: TopicModel, call: str, topic: str) -> None:
    found = model.topics(text(CALLS[call]))
    assert found and found[0] == topic
    assert len(found) <= model.max_topics


def test_multi_label_topics(model: TopicModel) -> None:
    found = model.topics(
        "me han cobrado la factura dos veces y además el router no tiene conexión a internet"
    )
    assert {"billing", "internet"} <= set(found)
    assert model.topics("") == []
    assert model.topics("hola buenas sí dígame") == []


def test_keywords_are_content_words_not_stopwords(model: TopicModel) -> None:
    stopwords = load_stopwords()
    for call in CALLS.values():
        keywords = model.keywords(text(call))
        assert 0 < len(keywords) <= model.max_keywords
        assert not [k for k in keywords if fold(k) in stopwords]
        assert all(len(k) >= 3 for k in keywords)
    assert "tarjeta" in model.keywords(text(CALLS["card_block"]))[:3]
    assert "hipoteca" in model.keywords(text(CALLS["mortgage"]))[:3]


def test_keywords_rank_rare_terms_over_common_ones_and_merge_plurals(model: TopicModel) -> None:
    keywords = model.keywords("la hipoteca la hipoteca las hipotecas y la casa la casa la casa tiene cosas")
    assert keywords[0] == "hipoteca"
    assert "hipotecas" not in keywords
    assert model.keywords("") == []
    assert model.keywords("y de que la el no sí vale pues bueno") == []


def test_on_topic_calls_are_more_coherent_than_a_shuffled_mixture(model: TopicModel) -> None:
    mixture = shuffled_mixture(list(CALLS.values()))
    mixed_score = model.analyze("", turns(mixture)).coherence_score
    for name, call in CALLS.items():
        score = model.analyze("", turns(call)).coherence_score
        assert 0.0 <= score <= 1.0
        assert score > mixed_score + 0.1, (name, score, mixed_score)
    # the same holds for a random shuffle of all turns
    pooled = [t for call in CALLS.values() for t in call]
    random.Random(7).shuffle(pooled)
    shuffled_score = model.analyze("", turns(pooled)).coherence_score
    assert shuffled_score < min(model.analyze("", turns(c)).coherence_score for c in CALLS.values())


def test_coherence_without_turns_uses_word_windows(model: TopicModel) -> None:
    on_topic = model.analyze(text(CALLS["internet_outage"])).coherence_score
    mixed = model.analyze(text(shuffled_mixture(list(CALLS.values())))).coherence_score
    assert on_topic > mixed


def test_coherence_edge_cases(model: TopicModel) -> None:
    assert model.coherence([]) == 0.0
    assert model.coherence(["", "  "]) == 0.0
    assert model.coherence(["quiero bloquear la tarjeta"]) == 1.0
    assert model.analyze("").coherence_score == 0.0


def test_merge_short_joins_backchannels() -> None:
    merged = merge_short(
        ["sí", "vale", "quiero bloquear la tarjeta que he perdido esta mañana en el metro", "ok"]
    )
    assert merged == ["sí vale quiero bloquear la tarjeta que he perdido esta mañana en el metro ok"]
    assert merge_short([]) == []
    assert merge_short(["hola"]) == ["hola"]


def test_bad_topic_files(tmp_path: Path) -> None:
    bad = tmp_path / "topics.json"
    bad.write_text('{"temas": {}}', encoding="utf-8")
    with pytest.raises(TopicListError, match="must be JSON"):
        load_topics(bad)
    with pytest.raises(TopicListError, match="cannot read"):
        load_topics(tmp_path / "missing.json")
    with pytest.raises(TopicListError, match="cannot read"):
        load_stopwords(tmp_path / "missing.txt")


def _count_by_scanning(toks: list[str], pattern: tuple[str, ...]) -> int:
    """The plain definition: try the pattern at every start position."""
    return sum(
        all(
            tok.startswith(p[:-1]) if p.endswith("*") else tok == p
            for p, tok in zip(pattern, toks[i : i + len(pattern)], strict=True)
        )
        for i in range(len(toks) - len(pattern) + 1)
    )


@given(
    toks=st.lists(
        st.sampled_from(["la", "las", "luz", "factura", "fac", "de", "tarjeta", "tar"]), max_size=30
    ),
    pattern=st.lists(st.sampled_from(["la", "la*", "luz", "fac*", "factura", "de", "tar*", "*"]), max_size=4),
)
def test_keyword_count_matches_a_scan_of_every_position(toks: list[str], pattern: list[str]) -> None:
    assert _count(toks, tuple(pattern)) == _count_by_scanning(toks, tuple(pattern))


def test_keyword_count_on_the_packaged_topics() -> None:
    topics = load_topics()
    for call in CALLS.values():
        toks = fold(text(call)).split()
        for patterns in topics.values():
            for pattern in patterns:
                assert _count(toks, pattern) == _count_by_scanning(toks, pattern)
