"""The online entry point: correct the live transcript, then save audio and metadata."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callpipe.recorder.online import get_correction_pipeline
from callpipe.schema import (
    Correction,
    Direction,
    Outcome,
    ProcessingMode,
    RecordingMetadata,
    Transcription,
    WordConfidence,
)
from callpipe.storage import RecordingStore, SaveResult, get_audio_storage


@dataclass(frozen=True)
class RecordResult:
    """What :meth:`Recorder.record` did: where the call was stored and the online correction."""

    save: SaveResult
    online: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"save": self.save.model_dump(mode="json"), "online": self.online}


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
    ) -> RecordResult:
        """Correct ``transcription`` online and save the call; returns both results."""
        online = await self.pipeline.process_online(transcription, word_confidences, conversation_id)
        words = [
            w if isinstance(w, WordConfidence) else WordConfidence.model_validate(w)
            for w in (word_confidences or [])
            if isinstance(w, WordConfidence | dict)
        ]
        metadata = RecordingMetadata(
            recording_id="pending",
            conversation_id=conversation_id,
            timestamp=timestamp or datetime.now(UTC),
            direction=Direction(direction),
            outcome=Outcome(outcome),
            transcription=Transcription(
                text=transcription,
                corrected_text=online["corrected_text"],
                word_confidences=words,
                corrections_made=[Correction.model_validate(c) for c in online["corrections_made"]],
                correction_method=ProcessingMode.ONLINE,
                confidence=_mean_confidence(words),
            ),
            processed=False,
            processing_mode=ProcessingMode.ONLINE,
            extra=dict(extra or {}),
        )
        metadata.processing_metrics.online_ms = online["processing_time_ms"]
        if online["needs_clarification"]:
            metadata.extra["clarification_reason"] = online["clarification_reason"]
        # Disk and network I/O must not stall the event loop of a live voice bot.
        save = await asyncio.to_thread(
            self.store.save_recording, audio_data, conversation_id, metadata, format=audio_format
        )
        return RecordResult(save=save, online=online)

    def record_sync(self, audio_data: bytes, conversation_id: str, **kwargs: Any) -> RecordResult:
        """Blocking form of :meth:`record` for scripts and the CLI."""
        return asyncio.run(self.record(audio_data, conversation_id, **kwargs))


def _mean_confidence(words: list[WordConfidence]) -> float | None:
    if not words:
        return None
    return round(sum(w.confidence for w in words) / len(words), 4)
