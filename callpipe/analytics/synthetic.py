"""Generated call documents for tests and benchmarks of the analytics tables (no model, no audio).

:func:`generated_calls` makes ``RecordingMetadata`` documents that look like processed, pending
and failed calls (turns, sentiment, intents, topics, entities), deterministic for a seed, so the
tables and the API can be filled with any number of calls in seconds.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from callpipe.schema import RecordingMetadata

INTENTS = ("balance_inquiry", "card_issue", "billing_dispute", "cancellation", "transfer", "account_update")
SENTIMENTS = ("positive", "neutral", "negative", "frustrated")
TOPICS = ("cuenta", "tarjeta", "factura", "portabilidad", "baja", "transferencia", "fraude", "tarifa")
_PHRASES = {
    "balance_inquiry": ("Quiero saber el saldo de mi cuenta corriente.", "Su saldo es de mil euros."),
    "card_issue": ("Me han robado la tarjeta, quiero bloquearla.", "La bloqueo ahora mismo."),
    "billing_dispute": ("La factura de este mes está mal, estoy harto.", "Le devolvemos la diferencia."),
    "cancellation": ("Quiero darme de baja y pedir la portabilidad.", "Tramitamos la baja hoy."),
    "transfer": ("Quiero hacer una transferencia de quinientos euros.", "Queda programada para hoy."),
    "account_update": ("Quiero cambiar el correo electrónico de mi cuenta.", "Actualizado, ¿algo más?"),
}


def generated_call(index: int, day: str, rng: random.Random, status: str = "processed") -> RecordingMetadata:
    """One generated call on ``day`` (UTC date) with the given status."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(seconds=8 * 3600 + 37 * index)
    intent = INTENTS[rng.randrange(len(INTENTS))]
    label = SENTIMENTS[rng.randrange(len(SENTIMENTS))]
    customer, agent = _PHRASES[intent]
    turns = []
    clock = 0.0
    for n in range(rng.randint(4, 12)):
        speaker = "agent" if n % 2 == 0 else "customer"
        text = agent if speaker == "agent" else customer
        length = rng.uniform(2.0, 9.0)
        turns.append(
            {"speaker": speaker, "start": round(clock, 2), "end": round(clock + length, 2), "text": text}
        )
        clock += length + rng.uniform(0.2, 1.5)
    return call_document(
        recording_id=f"gen-{day}-{index:06d}",
        conversation_id=f"conv-{index:06d}",
        timestamp=start,
        index=index,
        turns=turns,
        duration=clock,
        rng=rng,
        status=status,
        label=label,
        intent=intent,
    )


def call_document(
    *,
    recording_id: str,
    conversation_id: str,
    timestamp: datetime,
    index: int,
    turns: list[dict[str, Any]],
    duration: float,
    rng: random.Random,
    status: str = "processed",
    label: str = "neutral",
    intent: str = INTENTS[0],
    agents: int = 7,
    redacted: str | None = None,
    keywords: list[str] | None = None,
    entities: dict[str, Any] | None = None,
    run_id: str = "generated",
) -> RecordingMetadata:
    """The document of a generated call whose ``turns`` (speaker, start, end, text) are given.

    ``redacted`` is the stored redacted transcript (default: the transcript itself), ``entities``
    the document's entities (default: one amount and one email)."""
    live = " ".join(t["text"] for t in turns)
    doc: dict[str, Any] = {
        "recording_id": recording_id,
        "conversation_id": conversation_id,
        "timestamp": timestamp,
        "direction": "inbound" if index % 5 else "outbound",
        "audio": {
            "format": "wav",
            "sample_rate": 8000,
            "channels": 2,
            "duration_seconds": round(duration, 2),
            "file_size_bytes": int(duration * 32000),
            "checksum_sha256": f"{index:064x}",
        },
        "transcription": {"text": live, "estimated_wer": round(rng.uniform(0.05, 0.4), 3)},
        "extra": {"agent_id": f"agent-{index % agents:03d}"},
        "processing_metrics": {"online_ms": round(rng.uniform(2, 20), 3)},
    }
    if status == "failed":
        doc["status"] = {"status": "failed", "error": "stt: audio could not be decoded", "attempts": 3}
    if status != "processed":
        return RecordingMetadata.model_validate(doc)
    score = {"positive": 0.6, "neutral": 0.0, "negative": -0.5, "frustrated": -0.8}[label]
    doc |= {
        "processed": True,
        "processing_mode": "offline",
        "status": {"status": "processed"},
        "online_transcription": doc["transcription"],
        "transcription": {
            "text": live,
            "corrected_text": live,
            "redacted_text": live if redacted is None else redacted,
            "estimated_wer": round(rng.uniform(0.02, 0.2), 3),
            "retranscribed": rng.random() < 0.2,
        },
        "turns": turns,
        "sentiment": {
            "label": label,
            "score": score,
            "confidence": 0.8,
            "trend": ("improving", "stable", "worsening")[index % 3],
            "per_turn": [
                {"turn_index": i, "speaker": t["speaker"], "label": label, "score": score}
                for i, t in enumerate(turns)
            ],
        },
        "intent": {"primary_intent": intent, "secondary_intents": [INTENTS[index % 6]], "confidence": 0.7},
        "topics": {"topics": rng.sample(TOPICS, 2), "keywords": keywords or ["cuenta", "euros"]},
        "entities": entities or _ENTITIES,
        "conversation_metrics": {
            "talk_time_seconds": round(duration * 0.8, 2),
            "silence_seconds": round(duration * 0.2, 2),
            "overlap_seconds": 0.5,
            "turn_count": len(turns),
        },
        "processing_metrics": {"online_ms": 5.0, "total_seconds": round(rng.uniform(5, 60), 3)},
        "provenance": {"run_id": run_id, "stage_versions": {"stt": "1"}},
    }
    return RecordingMetadata.model_validate(doc)


_ENTITIES: dict[str, Any] = {
    "amounts": [{"kind": "amount", "text": "quinientos euros", "value": "500.00", "amount": 500.0}],
    "emails": [{"kind": "email", "text": "juan@example.com", "value": "juan@example.com", "valid": True}],
}


def generated_calls(
    day: str, count: int, *, seed: int = 0, failed_every: int = 0, pending_every: int = 0
) -> list[RecordingMetadata]:
    """``count`` generated calls on ``day``: every ``failed_every``-th failed, every
    ``pending_every``-th pending, the others processed."""
    rng = random.Random(f"{seed}:{day}")
    calls = []
    for index in range(count):
        status = "processed"
        if failed_every and index % failed_every == failed_every - 1:
            status = "failed"
        elif pending_every and index % pending_every == pending_every - 1:
            status = "pending"
        calls.append(generated_call(index, day, rng, status))
    return calls
