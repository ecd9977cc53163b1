"""Sentiment: lexicon rules, the fused lexicon + embedding model, per-turn sentiment and trend."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from callpipe import schema
from callpipe.analysis.analyzer import get_analyzer
from callpipe.analysis.embeddings import ModelBackendError, load_text_classifier
from callpipe.analysis.polarity_lexicon import Lexicon, LexiconError
from callpipe.analysis.sentiment import SentimentModel, map_backend_label, trend


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return get_analyzer().sentiment


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load()


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("muchísimas gracias por todo la chica ha sido encantadora", "positive"),
        ("genial ya me va el internet perfectamente", "positive"),
        ("quería saber a qué hora abre la oficina del centro", "neutral"),
        ("sí le doy el número de contrato un momento", "neutral"),
        ("el servicio es malísimo y la factura está mal", "negative"),
        ("no estoy nada contento con la reparación", "negative"),
        ("estoy harto ya es la tercera vez que llamo y nadie me soluciona nada", "frustrated"),
        ("llevo dos semanas esperando al técnico esto es una vergüenza", "frustrated"),
    ],
)
def test_clear_examples(model: SentimentModel, text: str, label: str) -> None:
    result = model.analyze(text)
    assert result.label == label, (text, result)
    assert -1.0 <= result.score <= 1.0
    assert 0.0 < result.confidence <= 1.0
    if label == "positive":
        assert result.score > 0.3
    if label in ("negative", "frustrated"):
        assert result.score < -0.3


def test_negation_flips_polarity(model: SentimentModel) -> None:
    assert model.analyze("no estoy nada contento").label == "negative"
    assert model.analyze("estoy muy contento").label == "positive"
    assert model.analyze("no tengo ningún problema, todo perfecto").label == "positive"


def test_lexicon_negation_intensifier_and_fixed_phrases(lexicon: Lexicon) -> None:
    assert lexicon.score("contento").total == pytest.approx(2.0)
    assert lexicon.score("muy contento").total == pytest.approx(3.0)
    assert lexicon.score("no estoy contento").total < 0
    assert lexicon.score("no estoy nada contento").total < 0
    assert lexicon.score("no es malo").total > 0  # negated negative: mildly positive
    # "ningún problema" carries its own negation: the "no" before it must not flip it back
    assert lexicon.score("no tengo ningún problema").total > 0
    # a negator is not carried across "pero"
    assert lexicon.score("no lo sabía pero estoy contento").total > 0
    # fillers that contain negators or polar words are neutral
    assert lexicon.score("pues nada encantado").total > 0
    assert lexicon.score("no gracias").total == 0


def test_lexicon_frustration_cues(lexicon: Lexicon) -> None:
    for text in (
        "llevo tres semanas esperando",
        "ya es la tercera vez que llamo",
        "otra vez lo mismo",
        "estoy harto",
        "no no no",
        "me están tomando el pelo",
    ):
        found = lexicon.score(text)
        assert found.frustration > 0 and found.total < 0, text
    # overlapping cues count once
    assert lexicon.score("llevo tres semanas esperando").frustration == pytest.approx(2.0)
    # a long relationship is not a wait
    assert lexicon.score("llevo veinte años con el banco").frustration == 0
    assert lexicon.score("quería saber mi saldo").probs(2.5) is None


def test_accents_and_case_do_not_matter(lexicon: Lexicon) -> None:
    assert lexicon.score("VERGÜENZA").total == lexicon.score("verguenza").total < 0


def test_emotional_tone(model: SentimentModel) -> None:
    assert model.analyze("muchas gracias de verdad se lo agradezco").emotional_tone == "grateful"
    assert model.analyze("esto es una estafa estoy harto").emotional_tone == "angry"
    assert model.analyze("estoy muy preocupada porque no encuentro la tarjeta").emotional_tone == "worried"
    assert model.analyze("quería saber el horario").emotional_tone == "calm"


def _turns(*pairs: tuple[str, str]) -> list[schema.Turn]:
    return [
        schema.Turn(speaker=s, start=i * 4.0, end=i * 4.0 + 3.0, text=t) for i, (s, t) in enumerate(pairs)
    ]


def test_per_turn_and_improving_trend(model: SentimentModel) -> None:
    turns = _turns(
        ("agent", "buenos días en qué puedo ayudarle"),
        ("customer", "estoy harto llevo una semana sin internet y nadie me da una solución"),
        ("agent", "lo siento mucho ahora mismo reviso su línea"),
        ("customer", "es la tercera vez que llamo por lo mismo"),
        ("agent", "ya he reiniciado el puerto pruebe ahora"),
        ("customer", "ah pues sí ya funciona perfecto muchas gracias"),
    )
    result = model.analyze(" ".join(t.text for t in turns), turns)
    assert [p.turn_index for p in result.per_turn] == list(range(6))
    assert [p.speaker for p in result.per_turn] == [t.speaker for t in turns]
    assert result.per_turn[1].label == "frustrated"
    assert result.per_turn[5].label == "positive"
    assert result.trend == "improving"


def test_worsening_trend_and_customer_drives_overall(model: SentimentModel) -> None:
    turns = _turns(
        ("agent", "muchas gracias por llamar es un placer atenderle"),
        ("customer", "hola quería consultar una cosa de la factura"),
        ("agent", "perfecto encantada de ayudarle"),
        ("customer", "me han cobrado de más otra vez"),
        ("agent", "muchas gracias por su paciencia"),
        ("customer", "esto es una vergüenza estoy harto de ustedes"),
    )
    result = model.analyze("", turns)
    assert result.trend == "worsening"
    assert result.label in ("negative", "frustrated")  # agent politeness does not mask the caller


def test_trend_rules() -> None:
    assert trend([]) is None
    assert trend([0.2]) == "stable"
    assert trend([-0.8, -0.1, 0.7]) == "improving"
    assert trend([0.5, 0.4, -0.6]) == "worsening"
    assert trend([0.1, -0.1, 0.05, 0.0]) == "stable"


def test_empty_and_blank_text(model: SentimentModel) -> None:
    for text in ("", "   \n"):
        result = model.analyze(text)
        assert result.label == "neutral"
        assert result.confidence == 0.0
        assert result.per_turn == [] and result.trend is None
    assert model.analyze("", []).label == "neutral"


def test_long_text_is_windowed(model: SentimentModel) -> None:
    angry = "estoy harto de esperar es una vergüenza llevo semanas sin servicio "
    text = (angry * 400).strip()  # 4,400 words
    result = model.analyze(text)  # benchmarks/timing_bounds.py prints how long it takes
    assert result.label == "frustrated"


def test_lexicon_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "lex.tsv"
    bad.write_text("contento\tmucho\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="not a number"):
        Lexicon.load(bad)
    bad.write_text("contento\t2\ncontento\t1\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="duplicate"):
        Lexicon.load(bad)
    bad.write_text("contento\t2\traro\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="unknown tags"):
        Lexicon.load(bad)
    with pytest.raises(LexiconError, match="cannot read"):
        Lexicon.load(tmp_path / "missing.tsv")


def test_backend_labels_map_to_schema_labels() -> None:
    assert map_backend_label("POSITIVE") == "positive"
    assert map_backend_label("neu") == "neutral"
    assert map_backend_label("1 star") == "negative"
    assert map_backend_label("5 stars") == "positive"
    with pytest.raises(ValueError, match="maps to none"):
        map_backend_label("LABEL_0")


def test_external_classifier_is_fused_with_the_lexicon(model: SentimentModel) -> None:
    # A plain function standing in for a transformers pipeline: always "NEG".
    def always_negative(texts: list[str]) -> list[dict[str, float]]:
        return [{"NEG": 0.9, "NEU": 0.05, "POS": 0.05} for _ in texts]

    external = SentimentModel(model.embedder, model.lexicon, backend=always_negative)
    assert external.classifier is None
    assert external.analyze("quería saber el saldo").label == "negative"
    # frustration cues in the lexicon still split negative into frustrated
    probs = external.score("estoy harto ya es la tercera vez").probs
    assert probs[3] > probs[2]
    assert np.isclose(probs.sum(), 1.0)


def test_missing_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelBackendError, match=r"no transformers model \(config.json\)"):
        load_text_classifier(tmp_path / "nowhere")


@pytest.mark.skipif(importlib.util.find_spec("transformers") is not None, reason="transformers is installed")
def test_model_dir_without_transformers_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ModelBackendError, match="not installed"):
        load_text_classifier(tmp_path)
