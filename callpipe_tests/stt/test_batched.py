"""Premium decoding through faster-whisper's BatchedInferencePipeline (CALLPIPE_WHISPER_BATCH_SIZE)."""

from __future__ import annotations

import pytest

from callpipe.stt.transcriber import Transcriber, TranscriberSettings
from callpipe.stt.wer import word_error_rate

from .conftest import AGENT_TEXT

pytestmark = pytest.mark.slow


def test_batched_premium_transcribes_with_word_timings(clips, transcriber, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CALLPIPE_WHISPER_BATCH_SIZE", "4")
    assert TranscriberSettings.from_env().premium_batch_size == 4
    batched = Transcriber(transcriber.settings, premium_batch_size=4)
    result = batched.transcribe(str(clips.agent_wav), premium=True)
    assert result.premium and result.beam_size == 5 and result.speech_duration is not None
    assert result.words and all(w.end >= w.start for w in result.words)  # word timings kept
    # Robotic espeak audio: most words right is what Whisper base gives here (0.44 measured).
    assert word_error_rate(AGENT_TEXT, result.text) <= 0.6
    # Normal mode and VAD-less premium stay sequential.
    assert batched.transcribe(str(clips.agent_wav)).text == transcriber.transcribe(str(clips.agent_wav)).text
