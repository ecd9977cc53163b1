"""The online entry point: correct the live transcript, then save audio and metadata."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import SequenceMatcher
from typing import Any

from pydantic import ValidationError

from callpipe.pii import RedactionMode, apply_redaction, caller_info, redact
from callpipe.recorder.dictionary import make_token, tokenize
from callpipe.recorder.online import (
    InvalidConfidenceError,
    align_confidences,
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
        """JSON-ready form (what ``callpipe record`` prints); the corrected text is redacted unless
        ``PII_REDACTION=off``, since printed output tends to end up in logs."""
        save = self.save
        online = dict(self.online)
        if RedactionMode.from_env() is not RedactionMode.OFF and online.get("corrected_text"):
            online["corrected_text"] = redact(online["corrected_text"])
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
        *,
        direction: Direction | str = Direction.INBOUND,
        outcome: Outcome | str = Outcome.UNKNOWN,
        timestamp: datetime | None = None,
        audio_format: str = "wav",
        extra: dict[str, Any] | None = None,
        recording_id: str | None = None,
        caller_phone: str | None = None,
    ) -> RecordResult:
        """Correct ``transcription`` online and save the call; returns both results.

        ``recording_id`` defaults to a new time-sortable id. ``caller_phone`` (any written form;
        Spanish numbers without +34 too) is stored masked and as a keyed hash (raw only with
        ``PII_REDACTION=off``). Raises ValueError for a phone that is no valid number and the
        store's errors for unsafe ids or bytes that are not audio (nothing is written then).
        """
        mode = self.redaction or RedactionMode.from_env()
        caller = caller_info(caller_phone, mode)
        word_confidences = confidence_items(word_confidences)  # once: a generator is read only once
        online = await self.pipeline.process_online(transcription, word_confidences, conversation_id)
        words = _words(transcription, word_confidences)
        warning = confidence_mismatch(transcription, word_confidences, len(words))
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
        # Redaction (CPU) and disk and network I/O must not stall the event loop of a live voice bot.
        save = await asyncio.to_thread(self._save, audio_data, conversation_id, metadata, audio_format, mode)
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

    def record_sync(self, audio_data: bytes, conversation_id: str, **kwargs: Any) -> RecordResult:
        """Blocking form of :meth:`record` for scripts and the CLI."""
        return asyncio.run(self.record(audio_data, conversation_id, **kwargs))


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
    _, mode = align_confidences(tokens, items)
    if mode == "none":
        return (
            f"{given} word confidences for {len(tokens)} words: items without their word only "
            "match by position, so none was used"
        )
    if given > len(tokens):
        return f"{given} word confidences for {len(tokens)} words: {given - kept} were not used"
    return None


def _words(transcription: str, word_confidences: Sequence[Any] | None) -> list[WordConfidence]:
    """The live words with their confidences, aligned to the transcript's tokens as the online
    correction aligned them (timings kept when the items carry them)."""
    tokens = tokenize(transcription)
    values, mode = align_confidences(tokens, word_confidences)
    items = list(word_confidences or [])
    matched = _matched_items(tokens, items) if mode == "words" else {}
    words = []
    for i, (token, value) in enumerate(zip(tokens, values, strict=True)):
        if value is None:
            continue
        item = items[i] if mode == "index" else matched.get(i)
        start = item.get("start") if isinstance(item, dict) else getattr(item, "start", None)
        end = item.get("end") if isinstance(item, dict) else getattr(item, "end", None)
        try:
            words.append(WordConfidence(word=token.text, confidence=value, start=start, end=end))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidConfidenceError(f"word confidence item {i}: {where}: {first['msg']}") from None
    return words


def _matched_items(tokens: Sequence[Any], items: Sequence[Any]) -> dict[int, Any]:
    """Token index -> the word item matched to it, as ``align_confidences`` matches in "words" mode
    (so that the items' timings survive when the live engine split words differently)."""
    folds = [make_token(str(_item_word(item) or "").strip()).fold for item in items]
    matcher = SequenceMatcher(None, [t.fold for t in tokens], folds, autojunk=False)
    return {
        block.a + k: items[block.b + k] for block in matcher.get_matching_blocks() for k in range(block.size)
    }


def _item_word(item: Any) -> Any:
    return item.get("word") if isinstance(item, dict) else getattr(item, "word", None)


def _mean_confidence(words: list[WordConfidence]) -> float | None:
    if not words:
        return None
    return round(sum(w.confidence for w in words) / len(words), 4)
