"""One transcript of record: the kept text is corrected, split into turns, and analysed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callpipe.schema import Correction, Turn, WordConfidence
from callpipe.stt.quality import retranscribe_policy, should_retranscribe
from callpipe.stt.record import group_tokens, index_turns, retext_turns, token_times, turns_match_text


def _words(text: str, step: float = 0.5) -> list[WordConfidence]:
    return [
        WordConfidence(word=w, confidence=0.9, start=i * step, end=i * step + 0.4)
        for i, w in enumerate(text.split())
    ]


def test_token_times_align_by_words_when_counts_differ():
    words = _words("hola buenos días")
    spans = token_times("hola , buenos días", words)
    assert spans == [(0.0, 0.4), (None, None), (0.5, 0.9), (1.0, 1.4)]
    assert token_times("uno dos", _words("uno dos")) == [(0.0, 0.4), (0.5, 0.9)]


def test_group_tokens_by_speaker_and_pause():
    text = "hola buenas sí dígame qué tal"
    spans = [(0.0, 0.3), (0.3, 0.6), (0.7, 0.9), (0.9, 1.2), (3.0, 3.2), (3.2, 3.5)]
    stereo = group_tokens(
        text, spans, ["agent", "agent", "customer", "customer", "customer", "agent"], ["agent", "customer"]
    )
    assert [(t.speaker, t.text, t.channel, t.token_start, t.token_end) for t in stereo] == [
        ("agent", "hola buenas", 0, 0, 2),
        ("customer", "sí dígame qué", 1, 2, 5),
        ("agent", "tal", 0, 5, 6),
    ]
    mono = group_tokens(text, spans, ["unknown"] * 6)
    assert [t.text for t in mono] == ["hola buenas sí dígame", "qué tal"]  # split at the 1.8 s pause
    assert (mono[1].start, mono[1].end) == (3.0, 3.5)
    with pytest.raises(ValueError, match="tokens"):
        group_tokens(text, spans[:2], ["unknown"] * 2)


def test_retext_turns_follows_corrections_across_turns():
    turns = index_turns(
        [
            Turn(speaker="agent", start=0, end=1, text="revisar el"),
            Turn(speaker="customer", start=1, end=2, text="salmo de"),
            Turn(speaker="agent", start=2, end=3, text="mi cuenta"),
        ]
    )
    assert [(t.token_start, t.token_end) for t in turns] == [(0, 2), (2, 4), (4, 6)]
    # "salmo" -> "saldo" (one word), then "de mi" -> "demi" replaced by one word from token 3.
    fixed = retext_turns(turns, "revisar el saldo demi cuenta", [0, 1, 2, 3, 5])
    assert [t.text for t in fixed] == ["revisar el", "saldo demi", "cuenta"]
    assert turns_match_text(fixed, "revisar el saldo demi cuenta")
    # A turn whose only words were merged into an earlier turn's correction disappears.
    gone = retext_turns(turns, "revisar el saldo", [0, 1, 2])
    assert [t.speaker for t in gone] == ["agent", "customer"]
    # Turns without token ranges (older versions) are left alone; mismatches are refused.
    old = [Turn(start=0, end=1, text="otra cosa")]
    assert retext_turns(old, "x y", [0, 1]) == old
    with pytest.raises(ValueError):
        retext_turns(turns, "uno dos", [0])
    assert not turns_match_text(old, "otra cosa más") and not turns_match_text([], "")


def test_retranscribe_policy(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CALLPIPE_RETRANSCRIBE_POLICY", "Always")
    assert retranscribe_policy() == "always" and retranscribe_policy("never") == "never"
    monkeypatch.setenv("CALLPIPE_RETRANSCRIBE_POLICY", "sometimes")
    with pytest.raises(ValueError, match="gate, always, never"):
        retranscribe_policy()
    monkeypatch.delenv("CALLPIPE_RETRANSCRIBE_POLICY")
    monkeypatch.delenv("OFFLINE_RETRANSCRIBE_WER_THRESHOLD", raising=False)
    monkeypatch.setenv("CALLPIPE_WHISPER_DEVICE", "cuda")
    assert retranscribe_policy() == "always"
    # A configured threshold means the gate, unless a policy is named.
    assert (
        retranscribe_policy(threshold=1.0) == "gate"
        and retranscribe_policy("always", threshold=1.0) == "always"
    )
    monkeypatch.setenv("OFFLINE_RETRANSCRIBE_WER_THRESHOLD", "0.3")
    assert retranscribe_policy() == "gate"
    monkeypatch.delenv("OFFLINE_RETRANSCRIBE_WER_THRESHOLD")
    monkeypatch.setenv("CALLPIPE_WHISPER_DEVICE", "cpu")
    assert retranscribe_policy() in {"gate", "always", "never"}
    assert should_retranscribe(0.0, "always") and not should_retranscribe(1.0, "never")
    assert should_retranscribe(0.5, "gate", 0.2) and not should_retranscribe(0.1, "gate", 0.2)


class _Spy:
    """Wraps a real classifier and records the (text, turns) the stage gave it."""

    def __init__(self, real: Any, seen: list[tuple[str, list[Turn]]]) -> None:
        self.real, self.seen = real, seen

    def analyze(self, text: str, turns: list[Turn]) -> Any:
        self.seen.append((text, list(turns)))
        return self.real.analyze(text, turns)


@pytest.mark.slow
def test_kept_live_transcript_is_corrected_split_and_analysed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from callpipe.demo_calls import load_demo_calls
    from callpipe.finalizer import process_recording
    from callpipe.recorder import Recorder
    from callpipe.stage_list import StageModels
    from callpipe.storage import LocalStore

    monkeypatch.setenv("CALLPIPE_RETRANSCRIBE_POLICY", "never")
    store = LocalStore(tmp_path / "store")
    call = next(c for c in load_demo_calls() if c.call_id == "saldo")
    Recorder(store).record_sync(
        call.audio,
        call.conversation_id,
        transcription=call.live_text,
        word_confidences=call.live_word_confidences,
        audio_format="flac",
        recording_id="saldo-1",
    )
    services = StageModels()
    seen: list[tuple[str, list[Turn]]] = []
    analyzer = services.analyzer
    analyzer.sentiment, analyzer.intent = _Spy(analyzer.sentiment, seen), _Spy(analyzer.intent, seen)
    meta = process_recording(store, "saldo-1", services)

    transcription = meta.transcription
    assert not transcription.retranscribed and transcription.text == call.live_text
    corrected = transcription.corrected_text
    assert corrected and transcription.corrections_made, "the demo's live transcript has known confusions"
    # The turns are the corrected transcript split by speaker, both parties present (stereo audio).
    assert " ".join(t.text for t in meta.turns).split() == corrected.split()
    assert {t.speaker for t in meta.turns} == {"agent", "customer"}
    assert all(t.channel == (0 if t.speaker == "agent" else 1) for t in meta.turns)
    assert meta.conversation_metrics.turn_count == len(meta.turns)
    # Every corrected word shows in the turn holding its position.
    for fix in transcription.corrections_made:
        turn = next(t for t in meta.turns if t.token_start <= fix.position < t.token_end)
        assert fix.corrected in turn.text
    # Analysis read the corrected text and the corrected turns.
    assert len(seen) == 2
    for text, turns in seen:
        assert text == corrected
        assert [t.text for t in turns] == [t.text for t in meta.turns]
    # Offline counts only its new fixes: the live fixes it found again (method exact) are the recorder's.
    from callpipe.analytics.columns import call_row, new_offline_corrections
    from callpipe.pii import RedactionMode
    from callpipe.service.reads import analyst_view, corrections_of

    live = meta.online_transcription
    assert live is not None
    row = call_row(meta, "2026-12-07", RedactionMode.DROP)
    assert row["offline_corrections"] == len(new_offline_corrections(live, transcription))
    # Had the recorder already made the first fix, finding it again offline is no new fix.
    first = transcription.corrections_made[0]
    live = live.model_copy(update={"corrections_made": [first.model_copy(update={"method": "fast_exact"})]})
    fresh = new_offline_corrections(live, transcription)
    assert len(fresh) == len(transcription.corrections_made) - 1 and first not in fresh
    meta = meta.model_copy(update={"online_transcription": live})
    assert call_row(meta, "2026-12-07", RedactionMode.DROP)["offline_corrections"] == len(fresh)
    # The live transcript is the one displayed: its live fixes are listed on the call page.
    listed = corrections_of(analyst_view(meta))
    assert {f["stage"] for f in listed} >= {"live"}


def test_live_turns_without_timings_and_on_mono(clips):
    from callpipe.stt.turns import transcript_turns

    text = "Buenos días, le atiende Laura"
    turns, metrics = transcript_turns(str(clips.agent_wav), text, [])
    assert [(t.speaker, t.text, t.token_start, t.token_end) for t in turns] == [("unknown", text, 0, 5)]
    assert metrics.turn_count is None and metrics.talk_time_seconds > 0
    words = [
        WordConfidence(word=w, confidence=0.8, start=0.5 + i * 0.3, end=0.7 + i * 0.3)
        for i, w in enumerate(text.split())
    ]
    turns, metrics = transcript_turns(str(clips.stereo_wav), text, words)
    assert {t.speaker for t in turns} <= {"agent", "customer"} and turns_match_text(turns, text)
    assert turns[0].speaker == "agent" and metrics.turn_count == len(turns)
    assert transcript_turns(str(clips.agent_wav), "", [])[0] == []


@pytest.mark.slow
def test_always_policy_keeps_the_retranscription_as_transcript_of_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from callpipe.demo_calls import load_demo_calls
    from callpipe.recorder import Recorder
    from callpipe.stage_list import STAGES, StageModels
    from callpipe.storage import LocalStore

    monkeypatch.setenv("CALLPIPE_RETRANSCRIBE_POLICY", "always")
    store = LocalStore(tmp_path / "store")
    call = next(c for c in load_demo_calls() if c.call_id == "tarjeta")
    confident = [{**w, "confidence": 0.99} for w in call.live_word_confidences]  # the gate would keep it
    Recorder(store).record_sync(
        call.audio,
        call.conversation_id,
        transcription=call.live_text,
        word_confidences=confident,
        audio_format="flac",
        recording_id="t-1",
    )
    services = StageModels()
    meta = store.get_metadata("t-1")
    for stage in ("stt", "correction"):
        meta = meta.model_copy(update=STAGES[stage].run(meta, services, store))
    assert meta.transcription.retranscribed and meta.online_transcription.text == call.live_text
    # The call page displays Whisper's transcript: only its own (offline) fixes are listed, and all
    # of them count as offline corrections.
    from callpipe.analytics.columns import call_row
    from callpipe.pii import RedactionMode
    from callpipe.service.reads import analyst_view, corrections_of

    live_fix = Correction(
        original="Manto", corrected="Banco", method="fast_exact", position=0, confidence=0.9
    )
    live = meta.online_transcription.model_copy(update={"corrections_made": [live_fix]})
    meta = meta.model_copy(update={"online_transcription": live})
    listed = corrections_of(analyst_view(meta))
    assert {f["stage"] for f in listed} <= {"offline"} and all(f["original"] != "Manto" for f in listed)
    kept = meta.model_copy(
        update={"transcription": meta.transcription.model_copy(update={"retranscribed": False})}
    )
    assert any(f["original"] == "Manto" for f in corrections_of(analyst_view(kept))), (
        "live text shown: listed"
    )
    row = call_row(meta, "2026-12-07", RedactionMode.DROP)
    assert row["offline_corrections"] == len(meta.transcription.corrections_made)
    assert " ".join(t.text for t in meta.turns).split() == meta.transcription.corrected_text.split()
    assert {t.speaker for t in meta.turns} == {"agent", "customer"}
