"""The analytics tables' columns, in one place, and :func:`rows_for_day`: metadata documents -> rows.

Each column is ``(name, sql_type, description)`` with a portable type (``TEXT``, ``DOUBLE``,
``BIGINT``, ``BOOLEAN``, ``TIMESTAMPTZ``, ``DATE``, ``TEXT[]``, ``JSON``) that each backend maps
to its own; the same lists give the tables, Dagster's column schema and the README.

Text follows the PII policy (:mod:`callpipe.pii`): with ``PII_REDACTION=mask`` or ``drop`` the
tables hold redacted transcripts and turns and masked entity values; with ``off`` the raw text.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from callpipe.pii import RedactionMode, mask_value, redact, redacted_turn_texts
from callpipe.schema import Correction, Entities, ProcessingStatus, RecordingMetadata, Transcription

Column = tuple[str, str, str]

ENTITY_KINDS = tuple(Entities.model_fields)
"""Entity groups of the metadata (``account_numbers``, ``amounts``, ...): one count column each."""

CALLS_COLUMNS: list[Column] = [
    ("recording_id", "TEXT", "Recording id (primary key)"),
    ("conversation_id", "TEXT", "Conversation id given by the telephony platform"),
    ("call_start_utc", "TIMESTAMPTZ", "Call start (UTC)"),
    ("call_date", "DATE", "Call date in CALLPIPE_TIMEZONE (the Dagster partition)"),
    ("agent_id", "TEXT", "Agent who took the call (extra.agent_id)"),
    ("direction", "TEXT", "inbound or outbound"),
    ("outcome", "TEXT", "resolved, escalated, abandoned, transferred or unknown"),
    ("duration_seconds", "DOUBLE", "Audio duration"),
    ("talk_seconds", "DOUBLE", "Time someone speaks"),
    ("agent_talk_seconds", "DOUBLE", "Agent talk time"),
    ("customer_talk_seconds", "DOUBLE", "Customer talk time"),
    ("silence_seconds", "DOUBLE", "Time nobody speaks"),
    ("overlap_seconds", "DOUBLE", "Time both speak"),
    ("interruptions", "BIGINT", "Turns started while the other party spoke"),
    ("turn_count", "BIGINT", "Number of turns"),
    ("sentiment_label", "TEXT", "positive, neutral, negative or frustrated"),
    ("sentiment_score", "DOUBLE", "Call sentiment score, -1..1"),
    ("customer_sentiment_trend", "TEXT", "improving, stable or worsening"),
    ("primary_intent", "TEXT", "Primary intent"),
    ("primary_intent_confidence", "DOUBLE", "Confidence of the primary intent, 0..1"),
    ("secondary_intent", "TEXT", "First secondary intent"),
    ("topics", "TEXT[]", "Topics"),
    ("keywords", "TEXT[]", "Keywords"),
    *[(f"entities_{kind}", "BIGINT", f"Number of {kind.replace('_', ' ')} found") for kind in ENTITY_KINDS],
    ("live_wer_estimate", "DOUBLE", "Estimated WER of the live (online) transcript"),
    ("offline_wer_estimate", "DOUBLE", "Estimated WER of the transcript of record"),
    ("live_wer_measured", "DOUBLE", "WER of the live transcript against a reference (demo calls only)"),
    ("offline_wer_measured", "DOUBLE", "WER of the final transcript against a reference (demo calls only)"),
    ("online_corrections", "BIGINT", "Words corrected live by the recorder"),
    ("offline_corrections", "BIGINT", "Words corrected by the offline hybrid correction"),
    ("retranscribed", "BOOLEAN", "Whether Whisper re-transcribed the call"),
    ("needs_clarification", "BOOLEAN", "Live transcript flagged as needing clarification"),
    ("status", "TEXT", "processed, pending or failed"),
    ("error", "TEXT", "Last error (redacted), failed calls only"),
    ("stage_versions", "JSON", "Stage versions that made the results"),
    ("run_id", "TEXT", "Dagster run that processed the call"),
    ("processed_at", "TIMESTAMPTZ", "When the call was processed (UTC)"),
    ("processing_seconds", "DOUBLE", "Offline processing time, all stages"),
    ("online_ms", "DOUBLE", "Online (live correction) time in milliseconds"),
    ("audio_deleted", "BOOLEAN", "Audio removed by the retention policy"),
    ("redacted_text", "TEXT", "Transcript as the PII policy allows it (redacted unless PII_REDACTION=off)"),
    ("search_text", "TEXT", "The words of redacted_text, each once, lower case, no accents, for search"),
]

TURNS_COLUMNS: list[Column] = [
    ("recording_id", "TEXT", "Recording id (primary key with turn_index)"),
    ("call_date", "DATE", "Call date (partition)"),
    ("turn_index", "BIGINT", "Position of the turn in the call, from 0"),
    ("speaker", "TEXT", "agent, customer or unknown"),
    ("start_seconds", "DOUBLE", "Turn start, seconds from the call start"),
    ("end_seconds", "DOUBLE", "Turn end, seconds from the call start"),
    ("text", "TEXT", "Corrected turn text, redacted per the PII policy"),
    ("sentiment_label", "TEXT", "Turn sentiment label"),
    ("sentiment_score", "DOUBLE", "Turn sentiment score, -1..1"),
]

ENTITIES_COLUMNS: list[Column] = [
    ("recording_id", "TEXT", "Recording id (primary key with entity_index)"),
    ("call_date", "DATE", "Call date (partition)"),
    ("entity_index", "BIGINT", "Position of the entity in the call, from 0 (key with recording_id)"),
    ("category", "TEXT", "Entity group (account_numbers, amounts, emails, ...)"),
    ("kind", "TEXT", "Entity kind (iban, email, phone, amount, dni, ...)"),
    ("value_masked", "TEXT", "Normalised value, masked for personal data"),
    (
        "text_said",
        "TEXT",
        "The words as said, for values that are not personal data (amounts, dates, "
        "organisations, places); empty for masked kinds",
    ),
    ("turn_index", "BIGINT", "Turn where the entity was said, when found"),
    ("valid", "BOOLEAN", "Check digits / format valid, when checkable"),
    ("confidence", "DOUBLE", "Extraction confidence, 0..1"),
]

TABLES: dict[str, list[Column]] = {
    "calls": CALLS_COLUMNS,
    "turns": TURNS_COLUMNS,
    "entities": ENTITIES_COLUMNS,
}

LIST_COLUMNS = [name for name, _, _ in CALLS_COLUMNS if name not in ("redacted_text", "search_text")]
"""The ``calls`` columns a call list returns (no transcript)."""

_MASKED_GROUPS = ("emails", "phone_numbers", "account_numbers", "national_ids")
_SAID_HIDDEN = (*_MASKED_GROUPS, "persons")  # never their words in a table, whatever the policy
_WORD = re.compile(r"[^\W_]+")


@cache
def _combining_marks() -> dict[int, None]:
    """A :meth:`str.translate` table deleting every combining character (built once, ~50 ms)."""
    return {i: None for i in range(sys.maxunicode + 1) if unicodedata.combining(chr(i))}


def normalize_text(text: str | None) -> str:
    """Lower case, accents removed (``ñ`` -> ``n``), words separated by one space."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = folded if folded.isascii() else folded.translate(_combining_marks())
    return " ".join(_WORD.findall(plain))


def search_words(text: str | None) -> str:
    """The distinct words of ``text``, normalised (:func:`normalize_text`), in order of first use:
    what a call's text search scans (repeats make it longer, not more findable)."""
    return " ".join(dict.fromkeys(normalize_text(text).split()))


def _status(meta: RecordingMetadata) -> str:
    if meta.processed:
        return "processed"
    if meta.status.status is ProcessingStatus.FAILED:
        return "failed"
    return "pending"


def _policy_text(text: str | None, mode: RedactionMode, already: str | None = None) -> str:
    """``text`` as the PII policy allows it in a table (``already`` redacted text wins)."""
    if mode is RedactionMode.OFF:
        return text or ""
    if already is not None:
        return already
    return redact(text or "")


def _measured(meta: RecordingMetadata) -> tuple[float | None, float | None]:
    reference = meta.extra.get("reference_text")
    if not reference or not isinstance(reference, str):
        return None, None
    from callpipe.stt.wer import word_error_rate

    live = meta.online_transcription or meta.transcription
    final = meta.transcription.corrected_text or meta.transcription.text
    return (
        round(word_error_rate(reference, live.text), 4),
        round(word_error_rate(reference, final), 4) if meta.processed else None,
    )


def _entity_counts(meta: RecordingMetadata) -> dict[str, int]:
    if meta.entities is not None:
        return {kind: len(getattr(meta.entities, kind)) for kind in ENTITY_KINDS}
    counts = meta.retention.entity_counts if meta.retention else {}
    return {kind: int(counts.get(kind, 0)) for kind in ENTITY_KINDS}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def call_row(meta: RecordingMetadata, call_date: str, mode: RedactionMode) -> dict[str, Any]:
    """The ``calls`` row of one recording."""
    t, online = meta.transcription, meta.online_transcription
    live = online or t
    cm, sentiment, intent, topics = meta.conversation_metrics, meta.sentiment, meta.intent, meta.topics
    final_text = t.corrected_text or t.text
    text = _policy_text(final_text, mode, t.redacted_text)
    counts = _entity_counts(meta)
    live_measured, offline_measured = _measured(meta)
    row: dict[str, Any] = {
        "recording_id": meta.recording_id,
        "conversation_id": meta.conversation_id,
        "call_start_utc": meta.timestamp,
        "call_date": call_date,
        "agent_id": _text_or_none(meta.extra.get("agent_id")),
        "direction": meta.direction.value,
        "outcome": meta.outcome.value,
        "duration_seconds": _round(meta.audio.duration_seconds) if meta.audio else None,
        "talk_seconds": _round(cm.talk_time_seconds),
        "agent_talk_seconds": _round(cm.talk_time_agent_seconds),
        "customer_talk_seconds": _round(cm.talk_time_customer_seconds),
        "silence_seconds": _round(cm.silence_seconds),
        "overlap_seconds": _round(cm.overlap_seconds),
        "interruptions": cm.interruptions,
        "turn_count": cm.turn_count if cm.turn_count is not None else (len(meta.turns) or None),
        "sentiment_label": sentiment.label if sentiment else None,
        "sentiment_score": _round(sentiment.score) if sentiment else None,
        "customer_sentiment_trend": sentiment.trend if sentiment else None,
        "primary_intent": intent.primary_intent if intent else None,
        "primary_intent_confidence": _round(intent.confidence) if intent else None,
        "secondary_intent": intent.secondary_intents[0] if intent and intent.secondary_intents else None,
        "topics": list(topics.topics) if topics else [],
        "keywords": list(topics.keywords) if topics else [],
        **{f"entities_{kind}": counts[kind] for kind in ENTITY_KINDS},
        "live_wer_estimate": _round(live.estimated_wer),
        "offline_wer_estimate": _round(t.estimated_wer) if meta.processed else None,
        "live_wer_measured": live_measured,
        "offline_wer_measured": offline_measured,
        "online_corrections": len(live.corrections_made),
        "offline_corrections": len(new_offline_corrections(live, t)) if online is not None else 0,
        "retranscribed": bool(t.retranscribed),
        "needs_clarification": bool(live.needs_clarification),
        "status": _status(meta),
        "error": meta.status.error if _status(meta) == "failed" else None,
        "stage_versions": json.dumps(meta.provenance.stage_versions, sort_keys=True),
        "run_id": meta.provenance.run_id,
        "processed_at": meta.provenance.processed_at,
        "processing_seconds": _round(meta.processing_metrics.total_seconds),
        "online_ms": _round(meta.processing_metrics.online_ms, 3),
        "audio_deleted": meta.retention is not None,
        "redacted_text": text,
        "search_text": search_words(text),
    }
    return row


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def turn_rows(meta: RecordingMetadata, call_date: str, mode: RedactionMode) -> list[dict[str, Any]]:
    """The ``turns`` rows of one recording, with each turn's sentiment when known."""
    per_turn = {s.turn_index: s for s in meta.sentiment.per_turn} if meta.sentiment else {}
    # drop: the document's turns are redacted already; mask: redacted once when it was finalized
    texts = redacted_turn_texts(meta) if mode is RedactionMode.MASK else [t.text for t in meta.turns]
    rows = []
    for index, (turn, text) in enumerate(zip(meta.turns, texts, strict=True)):
        sentiment = per_turn.get(index)
        rows.append(
            {
                "recording_id": meta.recording_id,
                "call_date": call_date,
                "turn_index": index,
                "speaker": turn.speaker,
                "start_seconds": _round(turn.start, 3),
                "end_seconds": _round(turn.end, 3),
                "text": text,
                "sentiment_label": sentiment.label if sentiment else None,
                "sentiment_score": _round(sentiment.score) if sentiment else None,
            }
        )
    return rows


def _turn_of(text: str, turns: list[str]) -> int | None:
    needle = normalize_text(text)
    if not needle:
        return None
    for index, turn in enumerate(turns):
        if needle in turn:
            return index
    return None


def entity_rows(meta: RecordingMetadata, call_date: str) -> list[dict[str, Any]]:
    """The ``entities`` rows of one recording; personal values masked whatever the policy."""
    if meta.entities is None:
        return []
    turns = [normalize_text(turn.text) for turn in meta.turns]
    rows = []
    for category in ENTITY_KINDS:
        for entity in getattr(meta.entities, category):
            value = entity.value
            if category in _MASKED_GROUPS and "*" not in value and not value.startswith("["):
                value = mask_value(entity.kind, value)
            rows.append(
                {
                    "recording_id": meta.recording_id,
                    "call_date": call_date,
                    "entity_index": len(rows),
                    "category": category,
                    "kind": entity.kind,
                    "value_masked": value,
                    "text_said": None if category in _SAID_HIDDEN else entity.text,
                    "turn_index": _turn_of(entity.text, turns),
                    "valid": entity.valid,
                    "confidence": _round(entity.confidence),
                }
            )
    return rows


def local_date(timestamp: datetime, timezone: str) -> str:
    """The call date of ``timestamp`` in ``timezone`` (ISO)."""
    return timestamp.astimezone(ZoneInfo(timezone)).date().isoformat()


def rows_for_day(
    documents: Iterable[RecordingMetadata],
    *,
    timezone: str = "UTC",
    mode: RedactionMode | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """``(calls, turns, entities)`` rows of ``documents`` (pure; ``mode`` defaults to ``PII_REDACTION``).

    Every recording gets a ``calls`` row whatever its status, so a call list shows pending and
    failed calls too; turns and entities come from processed documents.
    """
    mode = mode or RedactionMode.from_env()
    calls: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    entities: list[dict[str, Any]] = []
    for meta in documents:
        day = local_date(meta.timestamp, timezone)
        calls.append(call_row(meta, day, mode))
        if meta.processed:
            turns.extend(turn_rows(meta, day, mode))
            entities.extend(entity_rows(meta, day))
    return calls, turns, entities


def new_offline_corrections(live: Transcription, offline: Transcription) -> list[Correction]:
    """The offline corrections that are new: all of them on a re-transcription (the live text was
    discarded); on a kept live transcript, those the recorder had not already made (same word at
    the same position changed the same way, whatever the method that found it again)."""
    if offline.retranscribed:
        return list(offline.corrections_made)
    made = {(c.position, c.original.lower(), c.corrected.lower()) for c in live.corrections_made}
    return [
        c
        for c in offline.corrections_made
        if (c.position, c.original.lower(), c.corrected.lower()) not in made
    ]
