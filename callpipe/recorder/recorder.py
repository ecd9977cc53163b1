"""The online entry point: correct the live transcript, then save audio and metadata."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from callpipe.limits import Limits
from callpipe.pii import RedactionMode, apply_redaction, caller_info, map_strings, redact
from callpipe.recorder.dictionary import Token, tokenize
from callpipe.recorder.online import (
    Alignment,
    InvalidConfidenceError,
    align,
    confidence_items,
    get_correction_pipeline,
)
from callpipe.schema import (
    Correction,
    Direction,
    Outcome,
    ProcessingMode,
    RecordingMetadata,
    Transcription,
    WordConfidence,
)
from callpipe.storage import RecordingStore, SaveResult, get_audio_storage, new_recording_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordResult:
    """What :meth:`Recorder.record` did: where the call was stored and the online correction."""

    save: SaveResult
    online: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``callpipe record`` prints); every text of the online result (corrected
        text, corrections, reasons) is redacted unless ``PII_REDACTION=off``, since printed output
        tends to end up in logs."""
        save = self.save
        online = dict(self.online)
        if RedactionMode.from_env() is not RedactionMode.OFF:  # every string: text, corrections, reasons
            online = map_strings(online, redact)
        return {
            "recording_id": save.recording_id,
            "local_path": str(save.local_path) if save.local_path else None,
            "s3_path": save.s3_path,
            "metadata_path": save.metadata_path,
            "size_bytes": save.size_bytes,
            "checksum": save.checksum,
            "pending_sync": save.pending_sync,
            "online": online,
        }


class Recorder:
    """Saves a finished call during the online stage.

    The live transcript is corrected with the exact, context-aware dictionary first (well
    under a millisecond), then audio and metadata (``processed=false``) go to the store,
    redacted as ``redaction`` (default: ``PII_REDACTION`` at each call) says.
    """

    def __init__(self, store: RecordingStore | None = None, redaction: RedactionMode | None = None) -> None:
        self.store = store if store is not None else get_audio_storage()
        self.pipeline = get_correction_pipeline()
        self.redaction = redaction

    async def record(
        self,
        audio_data: bytes,
        conversation_id: str,
        transcription: str = "",
        word_confidences: list[dict[str, Any]] | list[WordConfidence] | None = None,
        **kwargs: Any,
    ) -> RecordResult:
        """Correct ``transcription`` online and save the call; returns both results.

        All of the work (alignment, correction, redaction, disk and network I/O) runs in a worker
        thread: a long transcript or a slow store never stalls the event loop of a live voice bot or
        of the API. Keyword arguments as :meth:`record_sync`.
        """
        items = confidence_items(word_confidences)  # here: a generator is read once, in this thread
        return await asyncio.to_thread(
            self.record_sync, audio_data, conversation_id, transcription, items, **kwargs
        )

    def record_sync(
        self,
        audio_data: bytes,
        conversation_id: str,
        transcription: str = "",
        word_confidences: list[dict[str, Any]] | list[WordConfidence] | None = None,
        *,
        direction: Direction | str = Direction.INBOUND,
        outcome: Outcome | str = Outcome.UNKNOWN,
        timestamp: datetime | None = None,
        audio_format: str = "wav",
        extra: dict[str, Any] | None = None,
        recording_id: str | None = None,
        caller_phone: str | None = None,
    ) -> RecordResult:
        """Blocking form of :meth:`record` (scripts, the CLI, worker threads).

        ``recording_id`` defaults to a new time-sortable id. ``caller_phone`` (any written form;
        Spanish numbers without +34 too) is stored masked and as a keyed hash (raw only with
        ``PII_REDACTION=off``). Raises ValueError for a phone that is no valid number,
        :class:`~callpipe.limits.LimitExceededError` for a transcript or confidences past the
        limits, and the store's errors for unsafe ids or bytes that are not audio (nothing is
        written then). The confidences are aligned to the words once, in linear time.
        """
        if not isinstance(transcription, str):
            raise TypeError(f"transcription must be a str, got {type(transcription).__name__}")
        mode = self.redaction or RedactionMode.from_env()
        caller = caller_info(caller_phone, mode)
        items = confidence_items(word_confidences)
        tokens = tokenize(transcription)
        Limits.from_env().check_text(len(tokens), len(items or []))
        alignment = align(tokens, items)
        online = self.pipeline.correct(transcription, items, conversation_id, alignment=alignment)
        words = _words(tokens, items, alignment)
        warning = _mismatch(len(tokens), len(items or []), alignment.mode, len(words))
        if warning is not None:
            online["confidence_warning"] = warning
            log.warning("conversation %s: %s", conversation_id, warning)
        timestamp = timestamp or datetime.now(UTC)
        metadata = RecordingMetadata(
            recording_id=recording_id or new_recording_id(timestamp),
            conversation_id=conversation_id,
            timestamp=timestamp,
            direction=Direction(direction),
            outcome=Outcome(outcome),
            transcription=Transcription(
                text=transcription,
                corrected_text=online["corrected_text"],
                word_confidences=words,
                corrections_made=[Correction.model_validate(c) for c in online["corrections_made"]],
                correction_method=ProcessingMode.ONLINE,
                confidence=_mean_confidence(words),
                needs_clarification=online["needs_clarification"],
                clarification_reason=online["clarification_reason"],
            ),
            processed=False,
            processing_mode=ProcessingMode.ONLINE,
            caller=caller,
            extra=dict(extra or {}),
        )
        metadata.processing_metrics.online_ms = online["processing_time_ms"]
        save = self._save(audio_data, conversation_id, metadata, audio_format, mode)
        return RecordResult(save=save, online=online)

    def _save(
        self,
        audio: bytes,
        conversation_id: str,
        metadata: RecordingMetadata,
        audio_format: str,
        mode: RedactionMode,
    ) -> SaveResult:
        apply_redaction(metadata, mode)
        rid = metadata.recording_id
        return self.store.save_recording(audio, conversation_id, metadata, audio_format, rid)


def confidence_mismatch(transcription: str, items: Sequence[Any] | None, kept: int) -> str | None:
    """Why given word confidences were not used, or ``None`` when they line up with the words.

    The recorder never refuses a call for its confidences (the audio matters more): items that
    cannot be placed (bare numbers of another count than the words) or are left over (more items
    than words) are stored as unknown and reported here, in the result's
    ``online["confidence_warning"]`` and in the log.
    """
    tokens = tokenize(transcription)
    given = len(items or [])
    if given == 0 or given == len(tokens):
        return None
    return _mismatch(len(tokens), given, align(tokens, list(items or [])).mode, kept)


def _mismatch(words: int, given: int, mode: str, kept: int) -> str | None:
    if given == 0 or given == words:
        return None
    if mode == "none":
        return (
            f"{given} word confidences for {words} words: items without their word only "
            "match by position, so none was used"
        )
    if given > words:
        return f"{given} word confidences for {words} words: {given - kept} were not used"
    return None


def _words(
    tokens: Sequence[Token], items: Sequence[Any] | None, alignment: Alignment
) -> list[WordConfidence]:
    """The live words with their confidences, aligned to the transcript's tokens as the online
    correction aligned them (timings kept when the items carry them)."""
    items = list(items or [])
    words = []
    for i, (token, value, k) in enumerate(zip(tokens, alignment.values, alignment.item_of, strict=True)):
        if value is None:
            continue
        item = items[k] if k is not None else None
        start = item.get("start") if isinstance(item, dict) else getattr(item, "start", None)
        end = item.get("end") if isinstance(item, dict) else getattr(item, "end", None)
        try:
            words.append(WordConfidence(word=token.text, confidence=value, start=start, end=end))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidConfidenceError(f"word confidence item {i}: {where}: {first['msg']}") from None
    return words


def _mean_confidence(words: list[WordConfidence]) -> float | None:
    if not words:
        return None
    return round(sum(w.confidence for w in words) / len(words), 4)
