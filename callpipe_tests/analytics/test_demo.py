"""The demo's live transcripts show live correction and re-transcription (no model needed)."""

from __future__ import annotations

from callpipe.demo import LIVE_CONFUSIONS, load_demo_calls
from callpipe.recorder.online import OnlineCorrectionPipeline
from callpipe.schema import WordConfidence
from callpipe.stt import estimate_wer, needs_retranscription


def test_scripted_live_transcripts_are_corrected_live_and_kept() -> None:
    pipeline = OnlineCorrectionPipeline()
    calls = load_demo_calls()
    scripted = [c for c in calls if c.demo_live is not None]
    assert {c.call_id for c in scripted} == set(LIVE_CONFUSIONS)
    for call in scripted:
        live = call.demo_live
        assert live is not None
        result = pipeline.correct(live["text"], live["word_confidences"])
        fixed = {(c["original"].lower(), c["corrected"].lower()) for c in result["corrections_made"]}
        assert fixed == {(heard, right) for _, right, heard in LIVE_CONFUSIONS[call.call_id]}, call.call_id
        wer = estimate_wer([WordConfidence(**w) for w in live["word_confidences"]])
        assert not needs_retranscription(wer), call.call_id  # kept: the offline stage keeps it
        # the live words are the words said, but for the confusions
        assert len(live["word_confidences"]) == len(call.reference_text.split())


def test_the_other_demo_calls_get_re_transcribed() -> None:
    others = [c for c in load_demo_calls() if c.demo_live is None]
    assert others
    for call in others:
        wer = estimate_wer([WordConfidence(**w) for w in call.live_word_confidences])
        assert needs_retranscription(wer), call.call_id
