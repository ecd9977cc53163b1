"""Speakers of mono calls, on real generated audio, the real Whisper model and the real encoder."""

from __future__ import annotations

import pytest

from callpipe.demo_calls import MONO_CALLS, load_demo_calls
from callpipe.schema import WordConfidence
from callpipe.speakers.diarize import LONG_UNIT_SECONDS, word_units
from callpipe.speakers.roles import assign_roles
from callpipe.stt.turns import transcribe_conversation, transcript_turns
from callpipe_tests.diarization_calls import DEV_VOICES, make_call, one_voice_call, true_speaker


def _attribution(call, conversation) -> float:
    speakers = [t.speaker for t in conversation.turns for _ in t.text.split()]
    right = total = 0.0
    for word, said in zip(conversation.word_confidences, speakers, strict=True):
        truth = true_speaker(call.segments, word.start, word.end)
        if truth != "none":
            total += word.end - word.start
            right += (word.end - word.start) * (said == truth)
    return right / total


def test_word_units_split_at_pauses_and_long_runs() -> None:
    spans = [(0.0, 0.4), (0.45, 0.9), (1.5, 1.9), (1.95, 2.6), (2.65, 3.3), (3.35, 4.1), (4.15, 4.6)]
    units = word_units(spans)
    assert units[0] == [0, 1]  # the 0.6 s pause ends the first unit
    assert [i for u in units for i in u] == list(range(7))
    assert all(spans[u[-1]][1] - spans[u[0]][0] <= 2.0 + 0.7 for u in units)
    assert len(units) >= 3  # the 3.1 s run is cut


def test_long_units_cut_the_same_runs_at_six_seconds() -> None:
    spans = [(0.1 + 0.5 * i, 0.5 + 0.5 * i) for i in range(20)] + [(11.0, 11.6), (11.65, 12.3)]
    short, long_ = word_units(spans), word_units(spans, LONG_UNIT_SECONDS)
    assert [i for u in long_ for i in u] == list(range(22))
    assert all(spans[u[-1]][1] - spans[u[0]][0] <= LONG_UNIT_SECONDS for u in long_)
    assert len(long_) == 3 and len(short) > len(long_)  # the 10 s run: two long units, five short
    assert long_[-1][0] == 20  # the pause before 11.0 s starts a new unit


def test_roles_from_what_each_voice_says_and_who_speaks_first() -> None:
    tokens = [
        "Hola",
        "quiero",
        "cambiar",
        "mi",
        "tarjeta",
        "Buenos",
        "días",
        "le",
        "atiende",
        "Ana",
        "¿me",
        "indica",
        "su",
        "documento?",
    ]
    labels = [1] * 5 + [0] * 9
    roles, confidence = assign_roles(tokens, labels, "inbound")
    assert roles == {0: "agent", 1: "customer"}  # the cues outweigh who spoke first
    assert confidence > 0.5
    roles, _ = assign_roles(["sí", "vale"], [0, 1], "inbound")
    assert roles[0] == "agent"  # no cues: the first voice answers an inbound call
    roles, _ = assign_roles(["sí", "vale"], [0, 1], "outbound")
    assert roles[0] == "customer"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [103, 104])  # dev calls: a human voice, then two espeak voices
def test_two_voice_mono_call_gets_agent_and_customer(transcriber, seed: int) -> None:
    call = make_call(seed, DEV_VOICES)
    conversation = transcribe_conversation(transcriber, call.wav, premium=True, direction=call.direction)
    assert not conversation.stereo
    assert _attribution(call, conversation) >= 0.9
    assert conversation.turns[0].speaker == "agent"
    assert {t.speaker for t in conversation.turns} == {"agent", "customer"}
    assert all(0.0 < t.speaker_confidence <= 1.0 for t in conversation.turns)
    metrics = conversation.metrics  # per-party metrics now exist, as for stereo
    assert metrics.talk_time_agent_seconds > 1.0 and metrics.talk_time_customer_seconds > 1.0
    assert metrics.interruptions is not None


@pytest.mark.slow
def test_close_voices_separate_on_long_units(transcriber) -> None:
    """Dev call 102 (outbound; es-419+m1 and es+m4, 0.12 apart on 2 s units: it stayed unknown)
    separates when the long units are clustered, and the customer answers the agent's call."""
    call = make_call(102, DEV_VOICES)
    conversation = transcribe_conversation(transcriber, call.wav, premium=True, direction=call.direction)
    assert _attribution(call, conversation) >= 0.9
    assert conversation.turns[0].speaker == "customer"
    assert {t.speaker for t in conversation.turns} == {"agent", "customer"}


@pytest.mark.slow
def test_one_voice_mono_call_stays_unknown(transcriber) -> None:
    call = one_voice_call(901, ("es-419", 40, 160))
    conversation = transcribe_conversation(transcriber, call.wav, premium=True)
    assert {t.speaker for t in conversation.turns} == {"unknown"}
    assert conversation.metrics.talk_time_agent_seconds is None


@pytest.mark.slow
def test_kept_live_transcript_of_the_mono_demo_call_gets_speakers() -> None:
    (call,) = [c for c in load_demo_calls() if c.call_id in MONO_CALLS]
    words = [WordConfidence(**w) for w in call.live_word_confidences]
    turns, metrics = transcript_turns(call.audio, call.live_text, words, direction=call.direction)
    assert [t.speaker for t in turns[:4]] == ["agent", "customer", "agent", "customer"]
    assert " ".join(t.text for t in turns) == call.live_text  # still the transcript of record
    assert metrics.talk_time_agent_seconds and metrics.talk_time_customer_seconds


def test_stereo_calls_keep_channel_attribution() -> None:
    call = next(c for c in load_demo_calls() if c.call_id == "saldo")
    words = [WordConfidence(**w) for w in call.live_word_confidences]
    turns, _ = transcript_turns(call.audio, call.live_text, words)
    assert turns[0].speaker == "agent" and turns[0].channel == 0
    assert {t.speaker for t in turns} == {"agent", "customer"}
    assert all(t.speaker_confidence is None for t in turns)  # no diarization on stereo
