from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from callpipe.schema import Transcription, WordConfidence
from callpipe.stt.audio_input import decode_channels
from callpipe.stt.errors import InvalidAudioError
from callpipe.stt.transcriber import TranscriberSettings, build_prompt, resolve_compute_type
from callpipe_tests.stt.conftest import CUSTOMER_TEXT, SR, assert_heard


def _check_words(result, duration: float) -> None:
    words = result.word_confidences
    assert words and all(isinstance(w, WordConfidence) for w in words)
    starts = [w.start for w in words]
    assert starts == sorted(starts), "word start times go backwards"
    for w in words:
        assert 0.0 <= w.confidence <= 1.0
        assert 0.0 <= w.start <= w.end <= duration + 0.5
    assert " ".join(w.word.strip() for w in words).split() == result.text.split()


@pytest.mark.slow
def test_greedy_transcribes_spanish_with_word_timestamps(transcriber, clips):
    result = transcriber.transcribe(clips.customer_wav)
    # What the test is for: Spanish speech heard as Spanish words, with timestamps inside the clip.
    assert_heard(result.text, CUSTOMER_TEXT)
    assert result.language == "es" and result.beam_size == 1 and not result.premium
    assert result.duration == pytest.approx(len(clips.customer) / 16000, abs=0.01)
    assert not result.no_speech and result.segments
    _check_words(result, result.duration)
    transcription = result.to_transcription(estimated_wer=0.1)
    assert Transcription.model_validate_json(transcription.model_dump_json()) == transcription
    assert transcription.text == result.text and transcription.confidence == pytest.approx(result.confidence)


@pytest.mark.slow
def test_bytes_and_array_inputs_agree_with_path(transcriber, clips):
    from_path = transcriber.transcribe(clips.customer_wav)
    from_bytes = transcriber.transcribe(clips.customer_wav.read_bytes())
    # The same samples as the file: the synthetic float clip differs from its 16-bit file (sox
    # dithers), and on a borderline word that alone may change greedy decoding.
    samples, rate = sf.read(clips.customer_wav, dtype="float32")
    assert rate == SR
    from_array = transcriber.transcribe(samples)
    # What the test is for: the three inputs decode to the same samples, so the same transcript
    # (decoding is seeded, and the clip is the same in every session).
    decoded = [decode_channels(a) for a in (clips.customer_wav, clips.customer_wav.read_bytes(), samples)]
    assert all(np.array_equal(decoded[0], d) for d in decoded[1:])
    assert from_path.text == from_bytes.text == from_array.text
    assert from_path.word_confidences == from_bytes.word_confidences == from_array.word_confidences


@pytest.mark.slow
def test_premium_uses_beam_vad_and_domain_terms(transcriber, clips):
    result = transcriber.transcribe(
        clips.customer_wav, premium=True, domain_terms=["saldo", "cuenta corriente"]
    )
    assert result.premium and result.beam_size == 5 and result.speech_duration is not None
    assert_heard(result.text, CUSTOMER_TEXT)
    _check_words(result, result.duration)


@pytest.mark.slow
def test_channel_selection(transcriber, clips):
    customer_only = transcriber.transcribe(clips.stereo_wav, channel=1)
    assert_heard(customer_only.text, CUSTOMER_TEXT) and customer_only.channel == 1
    assert all(w.start >= clips.customer_span[0] - 0.7 for w in customer_only.word_confidences)
    with pytest.raises(InvalidAudioError, match="channel 2"):
        transcriber.transcribe(clips.stereo_wav, channel=2)


@pytest.mark.slow
def test_bad_inputs_raise_clear_errors(transcriber, clips):
    cases = [
        (b"", "empty"),
        (clips.empty_wav, "zero length"),
        (b"RIFF\x00\x00garbage" * 50, "cannot decode"),
        (clips.directory / "missing.wav", "not found"),
        (np.zeros(0, dtype=np.float32), "zero length"),
        (np.array([0.0, np.nan], dtype=np.float32), "NaN"),
    ]
    for audio, message in cases:
        with pytest.raises(InvalidAudioError, match=message):
            transcriber.transcribe(audio)


@pytest.mark.slow
def test_silence_gives_empty_flagged_result(transcriber, clips):
    result = transcriber.transcribe(clips.silence_wav)
    assert result.no_speech and result.no_speech_reason == "digital silence"
    assert result.text == "" and result.segments == [] and result.duration == pytest.approx(2.0)


def test_settings_from_env_and_overrides(monkeypatch):
    monkeypatch.setenv("CALLPIPE_WHISPER_BEAM_SIZE", "3")
    monkeypatch.setenv("CALLPIPE_WHISPER_DEVICE", "cpu")
    monkeypatch.setenv("CALLPIPE_WHISPER_LANGUAGE", "auto")
    settings = TranscriberSettings.from_env(cpu_threads=2)
    assert (settings.beam_size, settings.device, settings.language, settings.cpu_threads) == (
        3,
        "cpu",
        None,
        2,
    )
    monkeypatch.setenv("CALLPIPE_WHISPER_BEAM_SIZE", "0")
    with pytest.raises(ValueError, match="CALLPIPE_WHISPER_BEAM_SIZE='0'"):
        TranscriberSettings.from_env()
    assert resolve_compute_type("auto", "cpu") == "int8"


def test_prompt_is_short_and_deduplicated():
    prompt, hotwords = build_prompt(["saldo", "saldo", " IBAN ", ""] + [f"término{i}" for i in range(100)])
    assert hotwords.startswith("saldo, IBAN, término0") and len(hotwords) <= 150
    assert prompt and len(prompt) < 60
    assert build_prompt([]) == (None, None)
