"""The test audio is the same in every session: two renderings of each clip are byte-identical."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from callpipe_tests.audio import espeak_wav, speak_wav
from callpipe_tests.storage.conftest import SPEECH_TEXT
from callpipe_tests.stt.conftest import AGENT_TEXT, CUSTOMER_TEXT, SR, make_clips


def _wav_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.wav"))}


def test_stt_clips_are_byte_identical_across_renderings(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    clips_a, clips_b = make_clips(first), make_clips(second)
    files_a, files_b = _wav_files(first), _wav_files(second)
    assert {"agent.wav", "customer.wav", "call.wav", "silence.wav", "empty.wav"} <= set(files_a)
    assert files_a == files_b
    for field in fields(clips_a):
        value = getattr(clips_a, field.name)
        if isinstance(value, tuple):
            assert value == getattr(clips_b, field.name)
    assert (clips_a.agent == clips_b.agent).all() and (clips_a.customer == clips_b.customer).all()


def test_resampled_speech_has_no_random_dither(tmp_path: Path) -> None:
    # Without -D/-R, sox dithers the 16-bit output with a fresh seed and these would differ.
    for text, voice in ((AGENT_TEXT, "es"), (CUSTOMER_TEXT, "es-419")):
        a = speak_wav(text, voice, tmp_path / "one.wav", rate=SR).read_bytes()
        b = speak_wav(text, voice, tmp_path / "two.wav", rate=SR).read_bytes()
        assert a == b
        telephone_a = speak_wav(text, voice, tmp_path / "t1.wav", rate=8000).read_bytes()
        telephone_b = speak_wav(text, voice, tmp_path / "t2.wav", rate=8000).read_bytes()
        assert telephone_a == telephone_b


def test_storage_speech_is_byte_identical(tmp_path: Path) -> None:
    a = espeak_wav(SPEECH_TEXT, "es", tmp_path / "a.wav").read_bytes()
    b = espeak_wav(SPEECH_TEXT, "es", tmp_path / "b.wav").read_bytes()
    assert a == b and len(a) > 10_000
