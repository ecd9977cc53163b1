"""Metadata contract of callpipe: one JSON document per recording.

Every stage reads and writes these pydantic models; this module imports nothing
else from callpipe. Documents round-trip with ``model_dump_json`` /
``model_validate_json``. ``SCHEMA_VERSION`` is bumped when the layout changes and
:func:`_upgrade` lifts older documents, so files written by an older version still
load.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

SCHEMA_VERSION = 2
"""Current metadata layout. Version 1 was the seed's flat layout (see ``_upgrade``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True, use_enum_values=False)


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    ABANDONED = "abandoned"
    TRANSFERRED = "transferred"
    UNKNOWN = "unknown"


class ProcessingStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"


class ProcessingMode(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


CorrectionMethodName = Literal["fast_exact", "exact", "phonetic", "vector"]
Speaker = Literal["agent", "customer", "unknown"]


class AudioInfo(_Model):
    """Facts read from the audio bytes themselves, never from the caller."""

    format: str
    sample_rate: int = Field(gt=0)
    channels: int = Field(gt=0)
    duration_seconds: float = Field(ge=0)
    file_size_bytes: int = Field(ge=0)
    checksum_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class WordConfidence(_Model):
    """One recognised word with its ASR confidence and, when known, its timing."""

    word: str
    confidence: float = Field(ge=0.0, le=1.0)
    start: float | None = None
    end: float | None = None


class Correction(_Model):
    """One word replaced by a correction stage; ``position`` is the word index."""

    original: str
    corrected: str
    method: CorrectionMethodName
    position: int = Field(ge=0)
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: dict[str, Any] = Field(default_factory=dict)


class Transcription(_Model):
    text: str = ""
    corrected_text: str | None = None
    language: str = "es"
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    word_confidences: list[WordConfidence] = Field(default_factory=list)
    corrections_made: list[Correction] = Field(default_factory=list)
    correction_method: ProcessingMode | None = None
    estimated_wer: float | None = Field(default=None, ge=0.0)
    retranscribed: bool = False
    needs_clarification: bool = False
    clarification_reason: str | None = None
    redacted_text: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _expand_copies(cls, data: Any) -> Any:
        """Restore the fields a compact document lists in ``same_as_text`` (older files have none)."""
        if isinstance(data, dict) and "same_as_text" in data:
            data = dict(data)
            same = data.pop("same_as_text")
            for name in same if isinstance(same, list) else []:
                if name in TEXT_COPIES and data.get(name) is None:
                    data[name] = data.get("text", "")
        return data

    @model_serializer(mode="wrap")
    def _compact_copies(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """With the serialization context ``{"compact": True}`` (the stores' documents), a corrected
        or redacted text equal to ``text`` is written once: named in ``same_as_text`` instead."""
        data = handler(self)
        context = info.context
        if isinstance(data, dict) and isinstance(context, dict) and context.get("compact"):
            same = [n for n in TEXT_COPIES if data.get(n) is not None and data[n] == data.get("text")]
            for name in same:
                del data[name]
            if same:
                data["same_as_text"] = same
        return data


TEXT_COPIES = ("corrected_text", "redacted_text")
"""Fields of :class:`Transcription` that often repeat ``text`` word for word."""


class TurnSentiment(_Model):
    turn_index: int = Field(ge=0)
    speaker: Speaker = "unknown"
    label: str
    score: float = Field(ge=-1.0, le=1.0)


class Sentiment(_Model):
    label: Literal["positive", "neutral", "negative", "frustrated"]
    score: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    emotional_tone: str | None = None
    per_turn: list[TurnSentiment] = Field(default_factory=list)
    trend: Literal["improving", "stable", "worsening"] | None = None


class Intent(_Model):
    primary_intent: str
    secondary_intents: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    scores: dict[str, float] = Field(default_factory=dict)


class CallOutcome(_Model):
    """How the call ended, with where the label comes from.

    ``source`` is ``recorder`` when the recorder was told the outcome (kept as given, confidence
    1.0) and ``inferred`` when the analysis stage read it from the conversation
    (:mod:`callpipe.analysis.outcome`); ``cues`` names the cues that decided it.
    """

    label: Outcome = Outcome.UNKNOWN
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    source: Literal["recorder", "inferred"] = "inferred"
    cues: list[str] = Field(default_factory=list)


class Entity(_Model):
    """A value found in the transcript. ``value`` is normalised (compact IBAN, E.164, ISO date)."""

    kind: str
    text: str
    value: str
    start: int | None = None
    end: int | None = None
    valid: bool | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class Amount(Entity):
    kind: str = "amount"
    amount: float
    currency: str = "EUR"


class Entities(_Model):
    account_numbers: list[Entity] = Field(default_factory=list)
    amounts: list[Amount] = Field(default_factory=list)
    emails: list[Entity] = Field(default_factory=list)
    phone_numbers: list[Entity] = Field(default_factory=list)
    national_ids: list[Entity] = Field(default_factory=list)
    dates: list[Entity] = Field(default_factory=list)
    persons: list[Entity] = Field(default_factory=list)
    organizations: list[Entity] = Field(default_factory=list)
    locations: list[Entity] = Field(default_factory=list)


class Topics(_Model):
    topics: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    coherence_score: float = Field(default=0.0, ge=0.0, le=1.0)


class Turn(_Model):
    """One speaker turn of the transcript of record (``transcription``).

    ``text`` holds the corrected words once the correction stage ran. ``token_start``/``token_end``
    give the turn's whitespace tokens in ``transcription.text`` (before correction), so that the
    correction stage can re-text the turns from the corrected words; None on turns written
    before they existed.
    """

    speaker: Speaker = "unknown"
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    channel: int | None = None
    token_start: int | None = Field(default=None, ge=0)
    token_end: int | None = Field(default=None, ge=0)
    speaker_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    """How sure the speaker attribution is (mono calls, diarized by voice); None for stereo."""


class TurnRedaction(_Model):
    """The turns' redacted text, made once when the document is finalized (``PII_REDACTION=mask``).

    ``fingerprint`` is :func:`callpipe.pii.turns_fingerprint` of the turn texts it was made from
    (and of the redaction rules' version); ``changed`` maps the index of each turn that held
    personal data to its redacted text, the other turns need none. A fingerprint that no longer
    matches the turns (edited since, older rules) means nothing here is trusted.
    """

    fingerprint: str
    changed: dict[int, str] = Field(default_factory=dict)


class ConversationMetrics(_Model):
    talk_time_agent_seconds: float | None = None
    talk_time_customer_seconds: float | None = None
    talk_time_seconds: float | None = None
    silence_seconds: float | None = None
    overlap_seconds: float | None = None
    interruptions: int | None = None
    turn_count: int | None = None
    words_per_minute: float | None = None


class ProcessingMetrics(_Model):
    online_ms: float | None = None
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    total_seconds: float | None = None


class ProcessingState(_Model):
    """Where the recording is in the offline lifecycle.

    ``lease_until`` lets a crashed worker's claim expire; ``reprocess_stages`` is set
    by ``callpipe reprocess`` (empty list with ``reprocess_requested`` means all).
    """

    status: ProcessingStatus = ProcessingStatus.PENDING
    error: str | None = None
    attempts: int = Field(default=0, ge=0)
    lease_owner: str | None = None
    lease_until: AwareDatetime | None = None
    reprocess_requested: bool = False
    reprocess_stages: list[str] = Field(default_factory=list)
    updated_at: AwareDatetime | None = None


class Provenance(_Model):
    pipeline_version: str | None = None
    stage_versions: dict[str, str] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
    stage_inputs: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = None
    processed_at: AwareDatetime | None = None


class StorageInfo(_Model):
    """Where the store put the bytes. Filled by the store, not by callers."""

    backend: Literal["local", "s3", "both"] | None = None
    audio_path: str | None = None
    s3_audio_key: str | None = None
    s3_metadata_key: str | None = None
    pending_sync: bool = False
    sync_error: str | None = None


class CallerInfo(_Model):
    """Who called, as far as the metadata may say (see :mod:`callpipe.pii`).

    ``phone`` is the raw E.164 number and is kept only with ``PII_REDACTION=off``;
    ``phone_masked`` is for display ("+34 6** ** ** 78"); ``phone_key`` is the HMAC-SHA256
    (hex) of the E.164 number under the deployment's PII key, for lookup and erasure.
    """

    phone: str | None = None
    phone_masked: str | None = None
    phone_key: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class RetentionInfo(_Model):
    """Set when the retention policy removed the audio and de-identified the document
    (:mod:`callpipe.retention`): analytics stay, nothing that links back to the caller does."""

    audio_deleted_at: AwareDatetime
    retention_days: int = Field(ge=0)
    entity_counts: dict[str, int] = Field(default_factory=dict)


class RecordingMetadata(_Model):
    """The whole record of one call recording."""

    schema_version: int = SCHEMA_VERSION
    recording_id: str
    conversation_id: str
    timestamp: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    direction: Direction = Direction.INBOUND
    outcome: Outcome = Outcome.UNKNOWN
    outcome_detail: CallOutcome | None = Field(
        default=None, description="Confidence and provenance (recorder or inferred) of ``outcome``."
    )
    caller: CallerInfo = Field(default_factory=CallerInfo)
    audio: AudioInfo | None = None
    transcription: Transcription = Field(default_factory=Transcription)
    online_transcription: Transcription | None = Field(
        default=None,
        description="The live transcript as the online stage left it, kept when offline work replaces it.",
    )
    sentiment: Sentiment | None = None
    intent: Intent | None = None
    entities: Entities | None = None
    topics: Topics | None = None
    turns: list[Turn] = Field(default_factory=list)
    turn_redaction: TurnRedaction | None = Field(
        default=None, description="The turns' redacted text (mask mode), so tables need not redact again."
    )
    conversation_metrics: ConversationMetrics = Field(default_factory=ConversationMetrics)
    processing_metrics: ProcessingMetrics = Field(default_factory=ProcessingMetrics)
    processed: bool = False
    processing_mode: ProcessingMode = ProcessingMode.ONLINE
    status: ProcessingState = Field(default_factory=ProcessingState)
    provenance: Provenance = Field(default_factory=Provenance)
    storage: StorageInfo = Field(default_factory=StorageInfo)
    retention: RetentionInfo | None = None
    revision: int = Field(default=0, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before datetime.min in UTC
            raise ValueError(f"timestamp {value.isoformat()} is out of range in UTC") from None

    @model_validator(mode="before")
    @classmethod
    def _upgrade_old_versions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return _upgrade(data)
        return data

    @property
    def call_date(self) -> str:
        """ISO date (UTC) of the call; stores and partitions group by it."""
        return self.timestamp.date().isoformat()


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Lift a document written by an older schema version to the current layout.

    Version 1 (the seed) kept ``transcription`` as a plain string with
    ``corrected_text``, ``word_confidences``, ``corrections_made`` and
    ``checksum``/``duration`` at the top level, and a bare ``sentiment`` label.
    """
    version = _schema_version(data.get("schema_version", 1))
    if version >= SCHEMA_VERSION:
        return data
    data = dict(data)
    if version == 1:
        text = data.get("transcription")
        if text is None or isinstance(text, str):
            data["transcription"] = {
                "text": text or "",
                "corrected_text": data.pop("corrected_text", None),
                "word_confidences": data.pop("word_confidences", None) or [],
                "corrections_made": data.pop("corrections_made", []) or [],
                "confidence": data.pop("confidence", None),
            }
        if data.get("audio") is None and "checksum" in data:
            data["audio"] = {
                "format": data.pop("format", "wav"),
                "sample_rate": data.pop("sample_rate", 16000),
                "channels": data.pop("channels", 1),
                "duration_seconds": data.pop("duration", 0.0),
                "file_size_bytes": data.pop("size_bytes", 0),
                "checksum_sha256": data.pop("checksum"),
            }
        sentiment = data.get("sentiment")
        if isinstance(sentiment, str):
            data["sentiment"] = {"label": sentiment, "score": 0.0, "confidence": 0.0}
        if "status" not in data or isinstance(data.get("status"), str):
            processed = bool(data.get("processed", False))
            data["status"] = {"status": data.get("status") or ("processed" if processed else "pending")}
    data["schema_version"] = SCHEMA_VERSION
    return data


def _schema_version(value: Any) -> int:
    """``schema_version`` as an int; ValueError (reported by pydantic) for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str | float):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if number.is_integer():
            return int(number)
    raise ValueError(f"schema_version must be a whole number, got {value!r:.40}")
