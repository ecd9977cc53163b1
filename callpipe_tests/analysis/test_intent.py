"""Intent: default taxonomy, keyword cues, 'other', turns, long calls and custom taxonomies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callpipe import schema
from callpipe.analysis.analyzer import Analyzer, get_analyzer
from callpipe.analysis.intent import (
    TAXONOMY_ENV,
    IntentModel,
    TaxonomyError,
    load_taxonomy,
)

DEFAULT_LABELS = {
    "balance_inquiry",
    "billing_inquiry",
    "payment",
    "card_issue",
    "cancellation",
    "technical_support",
    "account_change",
    "transfer",
    "complaint",
    "information_request",
    "fraud_report",
    "other",
}


@pytest.fixture(scope="module")
def model() -> IntentModel:
    return get_analyzer().intent


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("me puede decir qué saldo tengo en la cuenta nómina", "balance_inquiry"),
        ("no entiendo por qué la factura del gas viene tan alta este mes", "billing_inquiry"),
        ("quiero pagar ahora el recibo que tengo pendiente", "payment"),
        ("se me ha bloqueado la tarjeta en el cajero", "card_issue"),
        ("quiero darme de baja de la fibra", "cancellation"),
        ("el router no tiene luz y no tengo internet", "technical_support"),
        ("necesito cambiar el número de teléfono de mi ficha", "account_change"),
        ("quiero enviar una transferencia a la cuenta de mi hermana", "transfer"),
        ("quiero poner una reclamación por cómo me trataron", "complaint"),
        ("qué requisitos piden para la cuenta joven", "information_request"),
        ("hay un cargo en mi cuenta que no reconozco", "fraud_report"),
        ("hola buenas tardes", "other"),
    ],
)
def test_typical_utterance_per_intent(model: IntentModel, text: str, intent: str) -> None:
    result = model.analyze(text)
    assert result.primary_intent == intent, (text, result)
    assert result.confidence > 0.3
    assert set(result.scores) == DEFAULT_LABELS
    assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("oiga quiero bloquear la tarjeta", "card_issue"),
        ("quiero darme de baja", "cancellation"),
        ("no reconozco un cargo", "fraud_report"),
    ],
)
def test_keyword_cues_boost_strong_phrases(model: IntentModel, text: str, intent: str) -> None:
    boosted = model.probs([text])[0]
    plain = IntentModel(model.embedder, model.taxonomy, cue_boost=0.0).probs([text])[0]
    index = model.labels.index(intent)
    assert boosted[index] > plain[index]
    assert model.analyze(text).primary_intent == intent


def test_secondary_intents(model: IntentModel) -> None:
    result = model.analyze("me han robado la tarjeta y además quiero darme de baja de la cuenta de ahorro")
    assert {result.primary_intent, *result.secondary_intents} >= {"card_issue", "cancellation"}
    assert result.primary_intent not in result.secondary_intents


def test_empty_text_is_other_with_zero_confidence(model: IntentModel) -> None:
    for text in ("", "  "):
        result = model.analyze(text)
        assert result.primary_intent == "other"
        assert result.confidence == 0.0
        assert result.secondary_intents == []


def _turns(*pairs: tuple[str, str]) -> list[schema.Turn]:
    return [schema.Turn(speaker=s, start=float(i), end=i + 0.5, text=t) for i, (s, t) in enumerate(pairs)]


def test_customer_turns_decide_the_intent(model: IntentModel) -> None:
    turns = _turns(
        ("agent", "le recuerdo que puede hacer transferencias y bizum desde la aplicación"),
        ("customer", "ya pero lo que quiero es bloquear la tarjeta que la he perdido"),
        ("agent", "de acuerdo"),
    )
    assert model.analyze("", turns).primary_intent == "card_issue"


def test_long_call_finds_the_reason_among_small_talk(model: IntentModel) -> None:
    chat = "sí sí claro un momento que estoy buscando las gafas porque no veo nada vale ya está aquí "
    text = chat * 20 + "quiero darme de baja del seguro del coche " + chat * 20
    result = model.analyze(text)
    assert result.primary_intent == "cancellation"


def _write_taxonomy(path: Path, **extra: object) -> Path:
    doc = {
        "other_label": "otros",
        "intents": {
            "pedido_pizza": {
                "description": "el cliente quiere pedir una pizza a domicilio",
                "examples": [
                    "quiero una pizza margarita",
                    "me trae dos pizzas familiares",
                    "quería pedir una pizza",
                ],
                "cues": ["\\bpizzas?\\b"],
            },
            "estado_envio": {
                "description": "el cliente pregunta dónde está su pedido o cuándo llega",
                "examples": [
                    "dónde está mi pedido",
                    "cuánto tarda en llegar el repartidor",
                    "mi pedido no llega",
                ],
            },
            "otros": {"description": "saludos y frases sin petición", "examples": ["hola", "adiós"]},
        },
        **extra,
    }
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_custom_taxonomy_file(tmp_path: Path, model: IntentModel) -> None:
    taxonomy = load_taxonomy(_write_taxonomy(tmp_path / "pizza.json"))
    custom = IntentModel(model.embedder, taxonomy)
    result = custom.analyze("buenas noches quería encargar una pizza de jamón")
    assert result.primary_intent == "pedido_pizza"
    assert set(result.scores) == {"pedido_pizza", "estado_envio", "otros"}
    assert (
        custom.analyze("el repartidor lleva una hora y no ha llegado mi pedido").primary_intent
        == "estado_envio"
    )
    assert custom.analyze("").primary_intent == "otros"


def test_custom_taxonomy_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_taxonomy(tmp_path / "pizza.json")
    monkeypatch.setenv(TAXONOMY_ENV, str(path))
    assert load_taxonomy().source == str(path)
    analyzer = Analyzer(embedder=get_analyzer().embedder)
    assert analyzer.analyze("quiero pedir dos pizzas").intent.primary_intent == "pedido_pizza"
    assert str(path) in analyzer.models["intent"]


def test_default_taxonomy_has_the_contract_labels() -> None:
    taxonomy = load_taxonomy()
    assert set(taxonomy.labels) == DEFAULT_LABELS
    assert all(len(taxonomy.examples[label]) >= 12 for label in DEFAULT_LABELS)


def test_taxonomy_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid JSON"):
        load_taxonomy(path)
    path.write_text(json.dumps({"intents": {"solo": {"description": "una"}}}), encoding="utf-8")
    with pytest.raises(TaxonomyError, match="at least two intents"):
        load_taxonomy(path)
    path.write_text(
        json.dumps({"intents": {"a": {"description": "x", "cues": ["("]}, "b": {"description": "y"}}}),
        encoding="utf-8",
    )
    with pytest.raises(TaxonomyError, match="bad cue pattern"):
        load_taxonomy(path)
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "hola", "intent": "desconocida"}\n', encoding="utf-8")
    _write_taxonomy(path, train_file="train.jsonl")
    with pytest.raises(TaxonomyError, match="not in the taxonomy"):
        load_taxonomy(path)
    with pytest.raises(TaxonomyError, match="cannot read"):
        load_taxonomy(tmp_path / "missing.json")
