from __future__ import annotations

import numpy as np
import pytest

from callpipe.schema import Turn
from callpipe.stt.audio_input import duplicated_channels
from callpipe.stt.turns import (
    conversation_metrics,
    merge_turns,
    speech_intervals,
    transcribe_conversation,
    vad_metrics,
)
from callpipe_tests.stt.conftest import AGENT_TEXT, CUSTOMER_TEXT, assert_heard, content_stems


def test_metrics_from_crafted_intervals():
    turns = [
        Turn(speaker="agent", start=0.0, end=4.0, text="uno dos tres cuatro cinco seis", channel=0),
        Turn(speaker="customer", start=3.0, end=6.0, text="siete ocho nueve diez", channel=1),
    ]
    speech = {"agent": [(0.0, 4.0)], "customer": [(3.0, 6.0), (8.0, 9.0)]}
    metrics = conversation_metrics(turns, 10.0, vad_speech=speech)
    assert metrics.talk_time_agent_seconds == pytest.approx(4.0)
    assert metrics.talk_time_customer_seconds == pytest.approx(4.0)
    assert metrics.talk_time_seconds == pytest.approx(7.0)
    assert metrics.silence_seconds == pytest.approx(3.0)
    assert metrics.overlap_seconds == pytest.approx(1.0)
    assert metrics.interruptions == 1  # customer starts at 3.0, agent goes on 1.0 s > 0.5 s
    assert metrics.turn_count == 2
    assert metrics.words_per_minute == pytest.approx(10 / (7.0 / 60))


def test_short_overlap_is_not_an_interruption_and_mono_has_no_parties():
    speech = {"agent": [(0.0, 4.0)], "customer": [(3.7, 6.0)]}
    metrics = conversation_metrics([], 6.0, vad_speech=speech)
    assert metrics.interruptions == 0 and metrics.overlap_seconds == pytest.approx(0.3)
    mono = conversation_metrics([Turn(start=0.0, end=2.0, text="hola que tal")], 5.0)
    assert mono.talk_time_agent_seconds is None and mono.overlap_seconds is None
    assert mono.talk_time_seconds == pytest.approx(2.0) and mono.silence_seconds == pytest.approx(3.0)


def test_merge_turns_orders_and_joins_same_speaker():
    segments = [
        Turn(speaker="customer", start=5.0, end=6.0, text="c1", channel=1),
        Turn(speaker="agent", start=0.0, end=2.0, text="a1", channel=0),
        Turn(speaker="agent", start=2.5, end=4.0, text="a2", channel=0),
        Turn(speaker="agent", start=7.0, end=8.0, text="a3", channel=0),
    ]
    merged = merge_turns(segments)
    assert [(t.speaker, t.text, t.start, t.end) for t in merged] == [
        ("agent", "a1 a2", 0.0, 4.0),
        ("customer", "c1", 5.0, 6.0),
        ("agent", "a3", 7.0, 8.0),
    ]


def test_vad_finds_real_interruption(clips):
    # The customer starts 1.5 s before the agent finishes: one interruption, ~1.5 s overlap.
    sr = 16000
    agent, customer = clips.agent, clips.customer
    start = len(agent) - int(1.5 * sr)
    audio = np.zeros((2, start + len(customer)), dtype=np.float32)
    audio[0, : len(agent)] = agent
    audio[1, start:] = customer
    speech = {"agent": speech_intervals(audio[0]), "customer": speech_intervals(audio[1])}
    assert speech["agent"] and speech["customer"]
    metrics = conversation_metrics([], audio.shape[1] / sr, vad_speech=speech)
    assert metrics.interruptions == 1
    assert 0.8 < metrics.overlap_seconds < 1.8
    assert metrics.talk_time_seconds <= audio.shape[1] / sr
    assert speech_intervals(np.zeros(2 * sr, dtype=np.float32)) == []


def test_vad_metrics_without_transcription(clips):
    metrics = vad_metrics(clips.stereo_wav)
    agent_seconds = clips.agent_span[1] - clips.agent_span[0]
    assert metrics.talk_time_agent_seconds == pytest.approx(agent_seconds, abs=0.6)
    assert metrics.interruptions == 0 and metrics.overlap_seconds == pytest.approx(0.0, abs=0.05)
    assert metrics.turn_count is None and metrics.words_per_minute is None
    swapped = vad_metrics(clips.stereo_wav, agent_channel=1)
    assert swapped.talk_time_customer_seconds == metrics.talk_time_agent_seconds
    mono = vad_metrics(clips.customer_wav)
    assert mono.talk_time_agent_seconds is None and 0 < mono.talk_time_seconds < len(clips.customer) / 16000
    with pytest.raises(ValueError, match="agent_channel"):
        vad_metrics(clips.stereo_wav, agent_channel=2)


def test_duplicated_channels_detected(clips):
    both = np.stack([clips.agent, clips.agent])
    assert duplicated_channels(both)
    assert not duplicated_channels(np.stack([clips.agent, np.zeros_like(clips.agent)]))


@pytest.mark.slow
def test_stereo_call_gives_agent_then_customer(transcriber, clips):
    conv = transcribe_conversation(transcriber, clips.stereo_wav)
    assert conv.stereo and [t.speaker for t in conv.turns] == ["agent", "customer"]
    agent, customer = conv.turns
    assert agent.channel == 0 and customer.channel == 1 and agent.start < customer.start
    assert_heard(customer.text, CUSTOMER_TEXT)
    assert not content_stems(agent.text) & (content_stems(CUSTOMER_TEXT) - content_stems(AGENT_TEXT))
    m = conv.metrics
    assert m.turn_count == 2 and m.interruptions == 0
    assert m.overlap_seconds == pytest.approx(0.0, abs=0.05)
    assert m.talk_time_seconds <= conv.duration
    assert m.talk_time_agent_seconds == pytest.approx(clips.agent_span[1] - clips.agent_span[0], abs=0.6)
    assert m.talk_time_customer_seconds == pytest.approx(
        clips.customer_span[1] - clips.customer_span[0], abs=0.6
    )
    assert m.silence_seconds == pytest.approx(conv.duration - m.talk_time_seconds)
    assert 60 < m.words_per_minute < 300
    words = conv.word_confidences
    assert [w.start for w in words] == sorted(w.start for w in words)

    swapped = transcribe_conversation(transcriber, clips.stereo_wav, agent_channel=1)
    assert [t.speaker for t in swapped.turns] == ["customer", "agent"]


@pytest.mark.slow
def test_mono_call_has_unknown_speakers(transcriber, clips):
    conv = transcribe_conversation(transcriber, clips.customer_wav)
    assert not conv.stereo and conv.turns and {t.speaker for t in conv.turns} == {"unknown"}
    assert conv.metrics.talk_time_agent_seconds is None and conv.metrics.overlap_seconds is None
    assert 0 < conv.metrics.talk_time_seconds <= conv.duration
