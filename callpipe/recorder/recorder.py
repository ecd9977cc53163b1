"""The online entry point: correct the live transcript, then save audio and metadata."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callpipe.recorder.dictionary import tokenize
from callpipe.recorder.online import align_confidences, get_correction_pipeline
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


@dataclass(frozen=True)
class RecordResult:
    """What :meth:`Recorder.record` did: where the call was stored and the online correction."""

    save: SaveResult
    online: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``callpipe record`` prints)."""
        save = self.save
        return {
            "recording_id": save.recording_id,
            "local_path": str(save.local_path) if save.local_path else None,
            "s3_path": save.s3_path,
            "metadata_path": save.metadata_path,
            "size_bytes": save.size_bytes,
            "checksum": save.checksum,
            "pending_sync": save.pending_sync,
            "online": self.online,
        }


class Recorder:
    """Saves a finished call during the online stage.

    The live transcript is corrected with the exact, context-aware dictionary first (well
    under a millisecond), then audio and metadata (``processed=false``) go to the store.
    """

    def __init__(self, store: RecordingStore | None = None) -> None:
        self.store = store if store is not None else get_audio_storage()
        self.pipeline = get_correction_pipeline()

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
    ) -> RecordResult:
        """Correct ``transcription`` online and save the call; returns both results.

        ``recording_id`` defaults to a new time-sortable id. Raises the store's errors for
        unsafe ids or bytes that are not audio (nothing is written then).
        """
        online = await self.pipeline.process_online(transcription, word_confidences, conversation_id)
        words = _words(transcription, word_confidences)
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
            extra=dict(extra or {}),
        )
        metadata.processing_metrics.online_ms = online["processing_time_ms"]
        # Disk and network I/O must not stall the event loop of a live voice bot.
        save = await asyncio.to_thread(
            self.store.save_recording,
            audio_data,
            conversation_id,
            metadata,
            audio_format,
            metadata.recording_id,
        )
        return RecordResult(save=save, online=online)

    def record_sync(self, audio_data: bytes, conversation_id: str, **kwargs: Any) -> RecordResult:
        """Blocking form of :meth:`record` for scripts and the CLI."""
        return asyncio.run(self.record(audio_data, conversation_id, **kwargs))


def _words(transcription: str, word_confidences: Sequence[Any] | None) -> list[WordConfidence]:
    """The live words with their confidences, aligned to the transcript's tokens as the online
    correction aligned them (timings kept when the items carry them)."""
    tokens = tokenize(transcription)
    values, mode = align_confidences(tokens, word_confidences)
    items = list(word_confidences or [])
    words = []
    for i, (token, value) in enumerate(zip(tokens, values, strict=True)):
        if value is None:
            continue
        item = items[i] if mode == "index" else None
        start = item.get("start") if isinstance(item, dict) else getattr(item, "start", None)
        end = item.get("end") if isinstance(item, dict) else getattr(item, "end", None)
        words.append(WordConfidence(word=token.text, confidence=value, start=start, end=end))
    return words


def _mean_confidence(words: list[WordConfidence]) -> float | None:
    if not words:
        return None
    return round(sum(w.confidence for w in words) / len(words), 4)
