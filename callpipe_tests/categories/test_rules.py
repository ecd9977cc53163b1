"""Category rules: accents, proximity, negation, speaker, time windows, conditions, YAML errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callpipe.categories import CategoryError, CategoryRule, apply_rules, load_rules, match
from callpipe.schema import Entities, Entity, Intent, Outcome, RecordingMetadata, Sentiment, Turn

DATA = Path(__file__).resolve().parents[2] / "callpipe" / "data"


def _meta(
    turns: list[tuple[str, str]], rid: str = "r1", step: float = 10.0, **kw: object
) -> RecordingMetadata:
    return RecordingMetadata(
        recording_id=rid, conversation_id="c1",
        turns=[Turn(speaker=s, start=i * step, end=(i + 1) * step, text=t) for i, (s, t) in enumerate(turns)],
        **kw,
    )


CALL = _meta([
    ("agent", "Buenas tardes, le atiende Marta."),
    ("customer", "Quiero CANCELAR la línea de teléfono ya."),
    ("agent", "Lo siento, ¿puedo ofrecerle un descuento?"),
    ("customer", "No, gracias, adiós."),
])


def test_accent_and_case_insensitive() -> None:
    found = match(CategoryRule(name="c", phrases=["cancelar la linea"]), CALL)
    assert found is not None and found.turn_index == 1 and found.matched == ["cancelar", "la", "linea"]
    assert match(CategoryRule(name="c", phrases=["Cancélar LÍNEA"]), CALL) is None  # not adjacent
    assert match(CategoryRule(name="c", phrases=["line"]), CALL) is None  # whole words only


def test_near_proximity() -> None:
    assert match(CategoryRule(name="c", phrases=["cancelar teléfono"], near=5), CALL) is not None
    assert match(CategoryRule(name="c", phrases=["cancelar teléfono"], near=4), CALL) is None
    found = match(CategoryRule(name="c", phrases=["línea cancelar"], near=3), CALL)
    assert found is not None and found.matched == ["cancelar", "linea"]


def test_negation() -> None:
    assert match(CategoryRule(name="c", phrases=["cancelar"]), CALL) is not None
    assert match(CategoryRule(name="c", phrases=["cancelar"], **{"not": ["descuento"]}), CALL) is None
    assert match(CategoryRule(name="c", phrases=["cancelar"], **{"not": ["oferta"]}), CALL) is not None


def test_speaker() -> None:
    assert match(CategoryRule(name="c", phrases=["gracias"], speaker="agent"), CALL) is None
    found = match(CategoryRule(name="c", phrases=["gracias"], speaker="customer"), CALL)
    assert found is not None and found.turn_index == 3


def test_first_and_last_seconds() -> None:
    assert match(CategoryRule(name="c", phrases=["buenas tardes"], first_seconds=10), CALL) is not None
    assert match(CategoryRule(name="c", phrases=["adiós"], first_seconds=30), CALL) is None
    assert match(CategoryRule(name="c", phrases=["adiós"], last_seconds=5), CALL) is not None
    assert match(CategoryRule(name="c", phrases=["buenas tardes"], last_seconds=30), CALL) is None


def test_conditions() -> None:
    meta = _meta(
        [("customer", "quiero cancelar")],
        intent=Intent(primary_intent="baja", confidence=0.9),
        sentiment=Sentiment(label="negative", score=-0.5, confidence=0.8),
        outcome=Outcome.ESCALATED,
        entities=Entities(phone_numbers=[Entity(kind="phone", text="x", value="x")]),
    )
    base = {"name": "c", "phrases": ["cancelar"]}
    assert match(CategoryRule(**base, intents=["baja"], sentiments=["negative"], outcomes=["escalated"],
                              entity_kinds=["phone"]), meta) is not None
    assert match(CategoryRule(**base, intents=["saldo"]), meta) is None
    assert match(CategoryRule(**base, sentiments=["positive"]), meta) is None
    assert match(CategoryRule(**base, outcomes=["resolved"]), meta) is None
    assert match(CategoryRule(**base, entity_kinds=["email"]), meta) is None
    assert match(CategoryRule(**base, intents=["baja"]), CALL) is None  # no intent computed


def test_version_changes_with_rule() -> None:
    a = CategoryRule(name="c", phrases=["cancelar"])
    assert a.version == CategoryRule(name="c", phrases=["cancelar"]).version
    assert a.version != CategoryRule(name="c", phrases=["cancelar"], near=3).version


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("- name: x\n  phrases: [a]\n  speaker: robot\n", "speaker"),
        ("- name: x\n", "phrases"),
        ("- name: x\n  phrases: [a]\n  nearr: 3\n", "nearr"),
        ("- name: x\n  phrases: [a]\n  first_seconds: 5\n  last_seconds: 5\n", "not both"),
        ("- name: x\n  phrases: ['!!']\n", "phrase"),
        ("name: [unclosed\n", "not valid YAML"),
        ("just text\n", "expected a list"),
        ("- name: x\n  phrases: [a]\n- name: x\n  phrases: [b]\n", "duplicate"),
    ],
)
def test_yaml_errors(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CategoryError, match=reason):
        load_rules(path)


def test_demo_rules_match_some_demo_calls() -> None:
    rules = load_rules(DATA / "categories_demo.yaml")
    docs = []
    for path in sorted((DATA / "demo_calls").glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        docs.append(_meta([(t["speaker"], t["text"]) for t in raw["turns"]], rid=raw["call_id"]))
    rows = apply_rules(rules, docs)
    by_cat = {r["category"] for r in rows}
    baja = {r["recording_id"] for r in rows if r["category"] == "baja_contrato"}
    assert by_cat == {"baja_contrato", "cortesia_agente"}
    assert baja == {"baja"}
    assert 1 <= len({r["recording_id"] for r in rows}) < len(docs)
    assert all(r["version"] == next(x.version for x in rules if x.name == r["category"]) for r in rows)


def test_silence_and_talk_bounds() -> None:
    from callpipe.schema import ConversationMetrics

    quiet = _meta([("customer", "hola")], conversation_metrics=ConversationMetrics(silence_seconds=40.0,
                                                                                 talk_time_seconds=20.0))
    assert match(CategoryRule(name="c", phrases=["hola"], min_silence_seconds=30), quiet) is not None
    assert match(CategoryRule(name="c", phrases=["hola"], max_silence_seconds=30), quiet) is None
    assert match(CategoryRule(name="c", phrases=["hola"], min_talk_seconds=25), quiet) is None
    assert match(CategoryRule(name="c", phrases=["hola"], max_talk_seconds=25), quiet) is not None
    assert match(CategoryRule(name="c", phrases=["hola"], min_silence_seconds=1), CALL) is None  # unknown
    plain = CategoryRule(name="c", phrases=["hola"])
    assert plain.version == CategoryRule(name="c", phrases=["hola"], max_talk_seconds=None).version
