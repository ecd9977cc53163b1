"""The metadata contract: JSON round trips, UTC timestamps, older documents still load."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from callpipe.schema import (
    SCHEMA_VERSION,
    AudioInfo,
    Correction,
    ProcessingStatus,
    RecordingMetadata,
    Transcription,
    WordConfidence,
)


def _full() -> RecordingMetadata:
    return RecordingMetadata(
        recording_id="20261127T061500Z-0a1b2c3d4e5f",
        conversation_id="conv-1",
        timestamp=datetime(2026, 11, 27, 7, 15, tzinfo=timezone(timedelta(hours=1))),
        audio=AudioInfo(
            format="wav",
            sample_rate=8000,
            channels=2,
            duration_seconds=12.5,
            file_size_bytes=400_044,
            checksum_sha256="a" * 64,
        ),
        transcription=Transcription(
            text="revisar el salgo",
            corrected_text="revisar el saldo",
            word_confidences=[WordConfidence(word="salgo", confidence=0.3, start=1.0, end=1.4)],
            corrections_made=[
                Correction(
                    original="salgo",
                    corrected="saldo",
                    method="fast_exact",
                    position=2,
                    confidence=0.3,
                    evidence={"rule": "salgo -> saldo"},
                )
            ],
        ),
        extra={"agent_id": "a-7", "caller_phone": "+34612345678"},
    )


def test_round_trip_is_lossless() -> None:
    meta = _full()
    again = RecordingMetadata.model_validate_json(meta.model_dump_json())
    assert again == meta
    assert again.schema_version == SCHEMA_VERSION


def test_timestamps_are_stored_in_utc() -> None:
    meta = _full()
    assert meta.timestamp.utcoffset() == timedelta(0)
    assert meta.timestamp.hour == 6 and meta.call_date == "2026-11-27"
    with pytest.raises(ValidationError):
        RecordingMetadata(recording_id="r", conversation_id="c", timestamp=datetime(2026, 11, 27, 7, 15))


def test_a_seed_version_1_document_still_loads() -> None:
    seed = {
        "recording_id": "rec-1",
        "conversation_id": "conv-9",
        "timestamp": "2025-06-01T10:00:00+00:00",
        "transcription": "necesito revisar el salgo de mi cuesta",
        "corrected_text": "necesito revisar el saldo de mi cuenta",
        "word_confidences": [{"word": "salgo", "confidence": 0.31}],
        "corrections_made": [
            {
                "original": "salgo",
                "corrected": "saldo",
                "method": "fast_exact",
                "position": 3,
                "confidence": 0.31,
            }
        ],
        "checksum": "b" * 64,
        "duration": 4.2,
        "sample_rate": 16000,
        "format": "wav",
        "sentiment": "negative",
        "processed": True,
    }
    meta = RecordingMetadata.model_validate_json(json.dumps(seed))
    assert meta.schema_version == SCHEMA_VERSION
    assert meta.transcription.text.startswith("necesito")
    assert meta.transcription.corrected_text.endswith("cuenta")
    assert meta.transcription.corrections_made[0].corrected == "saldo"
    assert meta.audio is not None and meta.audio.duration_seconds == 4.2
    assert meta.sentiment is not None and meta.sentiment.label == "negative"
    assert meta.status.status == ProcessingStatus.PROCESSED


@pytest.mark.parametrize(
    "change",
    [
        {"direction": "sideways"},
        {"outcome": "maybe"},
        {
            "audio": {
                "format": "wav",
                "sample_rate": 0,
                "channels": 1,
                "duration_seconds": 1,
                "file_size_bytes": 1,
                "checksum_sha256": "a" * 64,
            }
        },
        {"transcription": {"word_confidences": [{"word": "x", "confidence": 1.5}]}},
    ],
)
def test_invalid_values_are_rejected(change: dict[str, object]) -> None:
    data = json.loads(_full().model_dump_json()) | change
    with pytest.raises(ValidationError):
        RecordingMetadata.model_validate(data)
