"""A day of short calls that the offline stages process in milliseconds (a plain module: child
processes of the fault tests import it too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callpipe.recorder import Recorder
from callpipe.storage import RecordingStore
from callpipe_tests.storage.conftest import make_wav

LIVE_TEXT = "hola buenos días quiero consultar el saldo de mi cuenta por favor"
"""Live transcript of every seeded call; its high word confidences keep the estimated WER low,
so STT keeps it (no Whisper) and the stages take milliseconds."""


def seed_day(
    store: RecordingStore, day: str, count: int, prefix: str = "rec", confidence: float = 0.97
) -> list[str]:
    """``count`` half-second calls on ``day`` (09:00 UTC on), ids ``{prefix}-00``...; a low live
    ``confidence`` makes STT re-transcribe them with Whisper."""
    recorder = Recorder(store)
    words = [{"word": w, "confidence": confidence} for w in LIVE_TEXT.split()]
    start = datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)
    ids = []
    for i in range(count):
        rid = f"{prefix}-{i:02d}"
        recorder.record_sync(
            make_wav(seconds=0.5, seed=i),
            f"conv-{prefix}-{i:02d}",
            transcription=LIVE_TEXT,
            word_confidences=words,
            timestamp=start + timedelta(minutes=i),
            recording_id=rid,
        )
        ids.append(rid)
    return ids
