"""The WER check's per-call signal: a correction that changes more words than were wrong."""

from __future__ import annotations

from datetime import UTC, datetime

from callpipe.defs.checks import correction_drift
from callpipe.schema import RecordingMetadata, WordConfidence

SOURCE = "quiero consultar el salvo de mi cuenta corriente por favor"


def _meta(
    corrected: str | None, estimated_wer: float | None = 0.1, processed: bool = True
) -> RecordingMetadata:
    words = [
        WordConfidence(word=w, confidence=0.95, start=i, end=i + 0.5) for i, w in enumerate(SOURCE.split())
    ]
    return RecordingMetadata.model_validate(
        {
            "recording_id": "r1",
            "conversation_id": "c1",
            "timestamp": datetime(2026, 11, 20, 9, tzinfo=UTC),
            "processed": processed,
            "transcription": {
                "text": SOURCE,
                "corrected_text": corrected,
                "word_confidences": [w.model_dump() for w in words],
                "estimated_wer": estimated_wer,
            },
        }
    )


def test_a_correction_within_the_estimated_errors_passes() -> None:
    signals = correction_drift(_meta("quiero consultar el saldo de mi cuenta corriente por favor"))
    assert signals == {
        "words": 10,
        "changed": 1,
        "estimated_wrong": 1.0,
        "new_errors_at_least": 0.0,
        "worse": False,
    }


def test_a_correction_that_rewrites_right_words_is_worse() -> None:
    signals = correction_drift(_meta("quiero contratar la tarifa de mi línea fija para casa"))
    assert signals is not None and signals["changed"] >= 6 and signals["worse"]


def test_uncertain_sources_allow_more_changes() -> None:
    rewritten = "quiero contratar la tarifa de su cuenta corriente por favor"  # 4 words changed
    assert correction_drift(_meta(rewritten, estimated_wer=0.1))["worse"]
    assert not correction_drift(_meta(rewritten, estimated_wer=0.4))["worse"]


def test_nothing_to_measure() -> None:
    assert correction_drift(_meta(None)) is None
    assert correction_drift(_meta(SOURCE, processed=False)) is None
    estimated_from_words = correction_drift(_meta(SOURCE, estimated_wer=None))
    assert estimated_from_words is not None and estimated_from_words["changed"] == 0
