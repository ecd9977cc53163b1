"""callpipe.audio_files: probing real audio bytes and rejecting everything else."""

from __future__ import annotations

import hashlib
import io
import os

import av
import numpy as np
import pytest
import soundfile as sf

from callpipe.audio_files import InvalidAudioError, probe_audio, read_audio
from callpipe_tests.storage.conftest import make_wav


def _encode_sf(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


def _encode_m4a(seconds: float = 2.0, rate: int = 16000) -> bytes:
    """AAC in MP4 through PyAV: a container libsndfile cannot read."""
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        for chunk in resampler.resample(frame):
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def test_probe_speech_wav(speech_wav: bytes) -> None:
    info = probe_audio(speech_wav, "wav")
    assert (info.format, info.sample_rate, info.channels) == ("wav", 22050, 1)
    assert 2.0 < info.duration_seconds < 6.0
    assert info.file_size_bytes == len(speech_wav)
    assert info.checksum_sha256 == hashlib.sha256(speech_wav).hexdigest()


@pytest.mark.parametrize("fmt", ["FLAC", "OGG", "MP3"])
def test_probe_compressed_formats(speech_wav: bytes, fmt: str) -> None:
    samples, rate = sf.read(io.BytesIO(speech_wav))
    data = _encode_sf(samples, rate, fmt)
    info = probe_audio(data)
    assert info.format == fmt.lower()
    assert info.sample_rate == rate
    assert info.duration_seconds == pytest.approx(len(samples) / rate, abs=0.1)


def test_probe_stereo_wav() -> None:
    info = probe_audio(make_wav(seconds=1.0, rate=16000, channels=2))
    assert (info.channels, info.sample_rate, info.duration_seconds) == (2, 16000, 1.0)


def test_probe_m4a_through_pyav() -> None:
    data = _encode_m4a()
    with pytest.raises(sf.LibsndfileError):
        sf.info(io.BytesIO(data))
    info = probe_audio(data, "m4a")
    assert (info.format, info.sample_rate, info.channels) == ("m4a", 16000, 1)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (os.urandom(4000), "not decodable"),
        (b'{"recording_id": "x"}', "not decodable"),
        (make_wav()[:44], "truncated"),
        (make_wav()[:20], "not decodable"),
    ],
    ids=["zero-length", "random", "json", "header-only", "cut-header"],
)
def test_probe_rejects_non_audio(data: bytes, message: str) -> None:
    with pytest.raises(InvalidAudioError, match=message):
        probe_audio(data, "wav")


def test_probe_rejects_frameless_wav() -> None:
    with pytest.raises(InvalidAudioError, match="no audio frames"):
        probe_audio(_encode_sf(np.zeros((0, 1)), 8000, "WAV"))


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3", "m4a"])
def test_probe_rejects_truncated(speech_wav: bytes, fmt: str) -> None:
    samples, rate = sf.read(io.BytesIO(speech_wav))
    data = _encode_m4a() if fmt == "m4a" else _encode_sf(samples, rate, fmt)
    with pytest.raises(InvalidAudioError):
        probe_audio(data[: len(data) // 2])


def test_read_audio_bytes_and_path(speech_wav: bytes, tmp_path) -> None:
    samples, rate = read_audio(speech_wav)
    assert samples.dtype == np.float32 and samples.ndim == 2 and samples.shape[1] == 1
    assert rate == 22050
    path = tmp_path / "a.wav"
    path.write_bytes(speech_wav)
    again, _ = read_audio(path)
    np.testing.assert_array_equal(samples, again)


def test_read_audio_pyav_fallback() -> None:
    samples, rate = read_audio(_encode_m4a(seconds=1.0))
    assert rate == 16000 and samples.dtype == np.float32 and samples.shape[1] == 1
    assert samples.shape[0] == pytest.approx(16000, rel=0.1)
    assert 0.1 < float(np.abs(samples).max()) < 1.0


def test_read_audio_rejects_garbage() -> None:
    with pytest.raises(InvalidAudioError):
        read_audio(os.urandom(2000))
