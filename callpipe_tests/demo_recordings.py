"""The packaged demo calls recorded through the online recorder, for tests and benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callpipe.demo_calls import load_demo_calls
from callpipe.recorder import Recorder
from callpipe.storage import RecordingStore


def record_demo_calls(
    store: RecordingStore,
    day: str,
    call_ids: list[str],
    *,
    confident: bool = False,
    suffix: str = "",
    first_minute: int = 0,
) -> list[str]:
    """Record demo calls through the online recorder on ``day`` (from 09:00 UTC); their ids
    (``{day}-{call_id}{suffix}``). ``confident`` gives every live word confidence 0.99, so the
    live transcript's estimated WER is low and the STT stage keeps it instead of running Whisper."""
    calls = {c.call_id: c for c in load_demo_calls()}
    recorder = Recorder(store)
    start = datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)
    ids = []
    for n, call_id in enumerate(call_ids, start=first_minute):
        call = calls[call_id]
        recording_id = f"{day}-{call_id}{suffix}"
        words = call.live_word_confidences
        recorder.record_sync(
            call.audio,
            call.conversation_id,
            transcription=call.live_text,
            word_confidences=[{**w, "confidence": 0.99} for w in words] if confident else words,
            timestamp=start + timedelta(minutes=n),
            audio_format="flac",
            recording_id=recording_id,
            extra={"reference_text": call.reference_text},
        )
        ids.append(recording_id)
    return ids
