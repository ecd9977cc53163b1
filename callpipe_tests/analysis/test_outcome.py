"""Call outcome inference (callpipe.analysis.outcome) on calls written for these tests."""

from __future__ import annotations

import pytest

from callpipe import schema
from callpipe.analysis.outcome import call_outcome, infer_outcome

Out = schema.Outcome


def _turns(*pairs: tuple[str, str]) -> list[schema.Turn]:
    return [
        schema.Turn(speaker=speaker, start=float(i), end=float(i) + 1.0, text=text)  # type: ignore[arg-type]
        for i, (speaker, text) in enumerate(pairs)
    ]


CALLS = {
    Out.RESOLVED: _turns(
        ("agent", "Aguas del Sur, buenas tardes, soy Rocío."),
        ("customer", "Hola, no me deja entrar en la web para ver el recibo."),
        ("agent", "Le he restablecido la contraseña, pruebe ahora con la que le llega por SMS."),
        ("customer", "A ver... sí, ya me deja entrar, ya lo veo."),
        ("agent", "Estupendo. ¿Puedo ayudarle en algo más?"),
        ("customer", "No, era eso, mil gracias."),
    ),
    Out.ESCALATED: _turns(
        ("agent", "Fibra Total, le atiende Sergio."),
        ("customer", "Llevo dos días sin internet en casa, el router parpadea en rojo."),
        ("agent", "He hecho una prueba de línea y el fallo está fuera de su domicilio."),
        ("customer", "¿Y entonces qué hago?"),
        ("agent", "Le abro una incidencia y un técnico pasará por su casa el jueves por la mañana."),
        ("customer", "Vale, espero que esta vez sí vengan."),
    ),
    Out.TRANSFERRED: _turns(
        ("agent", "Seguros Alba, buenos días, ¿en qué le ayudo?"),
        ("customer", "Quería preguntar por un siniestro del coche que di de parte la semana pasada."),
        ("agent", "Eso lo lleva el área de siniestros de automóvil."),
        ("customer", "¿Me puede pasar con ellos?"),
        ("agent", "Claro, le paso ahora con un compañero del departamento de siniestros, no cuelgue."),
        ("customer", "Gracias, espero."),
    ),
    Out.ABANDONED: _turns(
        ("agent", "Banco Oeste, buenas noches, le atiende Diego."),
        ("customer", "Hola, llamo por un cargo que no reconozco en la..."),
        ("agent", "Perdone, ¿me escucha? Se entrecorta mucho."),
        ("customer", "...que le digo que el cargo..."),
        ("agent", "¿Hola? ¿Sigue ahí? Creo que se ha cortado la llamada."),
    ),
}


@pytest.mark.parametrize("label", list(CALLS))
def test_each_outcome_is_inferred_from_its_call(label: schema.Outcome) -> None:
    result = infer_outcome("", CALLS[label])
    assert result.label == label
    assert result.source == "inferred"
    assert 0.3 < result.confidence <= 1.0
    assert result.cues


def test_last_turns_outweigh_earlier_ones() -> None:
    # Escalation talked about early, then fixed on the call: resolved.
    turns = _turns(
        ("customer", "La otra vez me abrieron una incidencia y un técnico nunca vino."),
        ("agent", "Lo siento. Voy a reiniciar su equipo desde aquí, espere un momento."),
        ("customer", "Vale."),
        ("agent", "Ya está reiniciado, ¿le funciona ahora?"),
        ("customer", "Sí, ahora sí ya funciona, perfecto, mil gracias."),
    )
    assert infer_outcome("", turns).label == Out.RESOLVED


def test_customer_hanging_up_and_latin_american_forms() -> None:
    turns = _turns(
        ("agent", "Telecable, buenas, te atiende Camila."),
        ("customer", "Che, hace veinte minutos que espero para que me atiendan."),
        ("agent", "Disculpá la demora, ¿me pasás tu número de cliente?"),
        ("customer", "No, mirá, ahora no puedo, ya llamo más tarde. Chau."),
    )
    assert infer_outcome("", turns).label == Out.ABANDONED


def test_plain_text_without_turns_is_cut_into_segments() -> None:
    text = (
        "buenos días le atiende marta en qué puedo ayudarle quería saber por qué me han cobrado dos veces "
        "la cuota del gimnasio este mes vale lo estoy viendo efectivamente hay un cargo duplicado eso "
        "no lo puedo resolver desde aquí lo revisará el departamento de cobros y le llamarán en un plazo "
        "de cuarenta y ocho horas con el número de reclamación que le envío por correo de acuerdo gracias"
    )
    result = infer_outcome(text)
    assert result.label == Out.ESCALATED


def test_still_broken_is_not_resolved() -> None:
    turns = _turns(
        ("agent", "Ya le he cambiado la configuración, pruebe ahora."),
        ("customer", "Sigue sin funcionar, no me llega la señal."),
        ("agent", "Entonces le paso con soporte técnico de segundo nivel, no se retire."),
    )
    assert infer_outcome("", turns).label == Out.TRANSFERRED


def test_nothing_to_go_on_is_unknown() -> None:
    assert infer_outcome("").label == Out.UNKNOWN
    assert infer_outcome("").confidence == 0.0
    long_neutral = " ".join(["el contrato tiene cláusulas sobre la tarifa y la potencia"] * 6)
    assert infer_outcome(long_neutral).label == Out.UNKNOWN


def test_recorder_value_is_kept_and_inference_is_redone() -> None:
    turns = CALLS[Out.ESCALATED]
    kept = call_outcome(Out.TRANSFERRED, None, "", turns)
    assert (kept.label, kept.source, kept.confidence) == (Out.TRANSFERRED, "recorder", 1.0)
    kept_again = call_outcome(Out.TRANSFERRED, kept, "", turns)
    assert kept_again.source == "recorder"
    # An earlier inference wrote `outcome`: it is inferred again, not taken for the recorder's.
    earlier = schema.CallOutcome(label=Out.RESOLVED, confidence=0.4, source="inferred")
    redone = call_outcome(Out.RESOLVED, earlier, "", turns)
    assert (redone.label, redone.source) == (Out.ESCALATED, "inferred")
    assert call_outcome(Out.UNKNOWN, None, "", turns).label == Out.ESCALATED


def test_the_demo_has_a_call_of_each_outcome() -> None:
    from callpipe.demo_calls import load_demo_calls

    found = {}
    for call in load_demo_calls():
        turns = _turns(*call.turns)
        found.setdefault(infer_outcome("", turns).label, call.call_id)
        # What the online recogniser heard (no speakers) gives the same outcome for the new calls.
        if call.call_id in ("siniestro", "cobertura"):
            assert infer_outcome(call.live_text).label == infer_outcome("", turns).label
    assert {Out.RESOLVED, Out.ESCALATED, Out.ABANDONED, Out.TRANSFERRED} <= set(found)


def test_the_intent_stage_stores_the_outcome_and_keeps_the_recorders() -> None:
    from callpipe.stage_list import STAGES, StageModels
    from callpipe.stage_runner import fingerprint

    turns = CALLS[Out.TRANSFERRED]
    meta = schema.RecordingMetadata(
        recording_id="r-outcome",
        conversation_id="c-outcome",
        transcription=schema.Transcription(text=" ".join(t.text for t in turns)),
        turns=turns,
    )
    before = fingerprint("intent", meta)
    patch = STAGES["intent"].run(meta, StageModels(), None)  # type: ignore[arg-type]
    assert patch["outcome"] == Out.TRANSFERRED
    assert patch["outcome_detail"].source == "inferred"
    assert patch["intent"].primary_intent
    done = meta.model_copy(update={k: patch[k] for k in ("outcome", "outcome_detail")})
    assert fingerprint("intent", done) == before  # its own inference does not make it stale
    given = meta.model_copy(update={"outcome": Out.ESCALATED})
    kept = STAGES["intent"].run(given, StageModels(), None)  # type: ignore[arg-type]
    assert (kept["outcome"], kept["outcome_detail"].source) == (Out.ESCALATED, "recorder")


def test_the_dev_set_calls_get_their_outcome() -> None:
    """A regression guard on the development set the cues were tuned on (``outcome_dev.jsonl``,
    written before tuning; not a report set: the reported number is the frozen fresh set's)."""
    import json
    from collections import Counter
    from importlib import resources

    lines = resources.files("callpipe").joinpath("data/outcome_dev.jsonl").read_text(encoding="utf-8")
    calls = [json.loads(line) for line in lines.splitlines() if line.strip()]
    assert Counter(c["outcome"] for c in calls) == dict.fromkeys(
        ("resolved", "escalated", "abandoned", "transferred"), 10
    )
    wrong = [
        c["id"]
        for c in calls
        if infer_outcome("", _turns(*((t["speaker"], t["text"]) for t in c["turns"]))).label.value
        != c["outcome"]
    ]
    assert len(wrong) <= 2, wrong
