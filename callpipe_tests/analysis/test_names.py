"""Names (persons, organisations, places) are stored only when likely right; precision on the demo calls.

The demo calls (``callpipe/data/demo_calls/*.json``) carry the reference turns (what was said) and
the live Whisper transcript (what the recorder heard). ``REFERENCE`` lists the names said in each
call; every name extracted from either text must be one of them (precision), and the reference
text must give most of them back (recall, with spaCy installed).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from callpipe.analysis.entities import extract_entities, spacy_model
from callpipe.analysis.text import fold
from callpipe.schema import Entities

DEMO = Path(__file__).resolve().parents[2] / "callpipe" / "data" / "demo_calls"
REF = date(2025, 3, 10)
# Names said in each demo call: (field, folded value). Juan Pérez in "correo" is part of an email.
REFERENCE: dict[str, set[tuple[str, str]]] = {
    "baja": {("persons", "marta"), ("organizations", "energia clara")},
    "cobertura": {("persons", "elena"), ("organizations", "telefonia norte")},
    "correo": {("persons", "ana")},
    "domicilio": {
        ("persons", "lucia"),
        ("organizations", "seguros faro"),
        ("locations", "valencia"),
        ("locations", "calle mayor"),
    },
    "factura": {("organizations", "telefonia norte")},
    "saldo": {("persons", "laura"), ("organizations", "banco sol")},
    "siniestro": {("persons", "andres"), ("organizations", "seguros faro")},
    "tarjeta": {("persons", "carlos"), ("organizations", "banco sol")},
    "transferencia": {("persons", "pablo"), ("organizations", "banco sol")},
}
FIELDS = ("persons", "organizations", "locations")


def names(found: Entities) -> set[tuple[str, str]]:
    return {(field, fold(e.value)) for field in FIELDS for e in getattr(found, field)}


def demo_texts() -> list[tuple[str, str, str]]:
    """(call id, which text, text) for the reference and live transcript of every demo call."""
    out = []
    for path in sorted(DEMO.glob("*.json")):
        call = json.loads(path.read_text(encoding="utf-8"))
        out.append((call["call_id"], "reference", " ".join(t["text"] for t in call["turns"])))
        live = call["live_transcript"]["text"]
        out += [(call["call_id"], "live", live), (call["call_id"], "live lower-case", live.lower())]
    return out


def test_reference_lists_cover_every_demo_call() -> None:
    assert sorted(REFERENCE) == sorted(p.stem for p in DEMO.glob("*.json"))


def test_names_on_demo_calls_are_precise() -> None:
    found_total = right = 0
    wrong = []
    recalled: dict[str, set[tuple[str, str]]] = {}
    for call_id, which, text in demo_texts():
        found = names(extract_entities(text, REF))
        found_total += len(found)
        right += len(found & REFERENCE[call_id])
        wrong += [(call_id, which, name) for name in found - REFERENCE[call_id]]
        if which == "reference":
            recalled[call_id] = found & REFERENCE[call_id]
    print(f"names on demo calls: precision {right}/{found_total}")
    assert not wrong, f"names stored that were never said: {wrong}"
    assert right >= 6  # the agents' names survive even in the live transcripts
    if spacy_model() is not None:
        total = sum(len(v) for v in REFERENCE.values())
        got = sum(len(v) for v in recalled.values())
        print(f"names on demo reference texts: recall {got}/{total}")
        assert got >= 0.8 * total


@pytest.mark.parametrize(
    "text",
    [
        "Claro, me indica su documento ney mentirán, por favor.",
        "Bueno, Erición, el servicio de Atención al cliente, le atiende a...",
        "Mánco sol, sígame. La transferencia que la forma para hoy, General, muchas gracias.",
        "su nocumen tome y mentirán si es nueve cuatro cinco",
    ],
)
def test_asr_noise_gives_no_names(text: str) -> None:
    assert names(extract_entities(text, REF)) == set()


def test_real_names_stay() -> None:
    found = names(extract_entities("hola me llamo maria garcia y le atiende Laura Gómez", REF))
    assert {("persons", "maria garcia"), ("persons", "laura gomez")} <= found
    found = names(extract_entities("Llamo a Energía Clara desde Zaragoza, soy Ramón.", REF))
    if spacy_model() is not None:
        assert ("organizations", "energia clara") in found
        assert ("locations", "zaragoza") in found


def test_uncommon_name_after_a_self_introduction_is_kept() -> None:
    # Not in the given-name list, but a real word: kept after "me llamo" (retention scrubs it later),
    # while a garbled word after the agent's "le atiende" is not.
    assert names(extract_entities("hola me llamo xiomara y llamo por la factura", REF)) == {
        ("persons", "xiomara")
    }
    assert names(extract_entities("le atiende erición buenas tardes", REF)) == set()


def test_same_name_is_stored_once() -> None:
    found = extract_entities("le atiende Carlos perdone me dijo Carlos", REF)
    assert [fold(e.value) for e in found.persons] == ["carlos"]
