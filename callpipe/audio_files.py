"""Audio probing and decoding from bytes or files.

:func:`probe_audio` reads the facts of an audio file (format, rate, channels,
duration) from the bytes themselves and rejects anything that is not complete,
decodable audio. libsndfile (through ``soundfile``) handles wav/flac/ogg/mp3 and
friends; PyAV (installed with faster-whisper) is the fallback for other
containers such as m4a or webm. :func:`read_audio` decodes to float32 samples.
"""

from __future__ import annotations

import hashlib
import io
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from callpipe.limits import Limits
from callpipe.schema import AudioInfo

__all__ = ["InvalidAudioError", "probe_audio", "read_audio"]

_SF_FORMATS = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3", "AIFF": "aiff"}
_BLOCK_FRAMES = 65536


class InvalidAudioError(ValueError):
    """Bytes that are not complete, decodable audio (empty, truncated, or not audio at all)."""


def probe_audio(data: bytes, format_hint: str | None = None, limits: Limits | None = None) -> AudioInfo:
    """Describe ``data`` as :class:`~callpipe.schema.AudioInfo`, decoding all of it.

    ``format_hint`` (e.g. ``"wav"``) only names the format when the container
    is ambiguous; the bytes decide. Raises :class:`InvalidAudioError` for zero-length,
    truncated, frame-less or undecodable input, and :class:`~callpipe.limits.LimitExceededError`
    for audio past ``limits`` (default: the environment's): sample rate, channels and duration are
    checked from the header before decoding and again from the decoded stream, whose decoding
    stops at the duration limit.
    """
    if not data:
        raise InvalidAudioError("audio is empty (0 bytes)")
    limits = limits or Limits.from_env()
    limits.check_upload_size(len(data))
    try:
        fmt, rate, channels, frames = _probe_soundfile(data, limits)
    except _NotSoundfile as sf_error:
        try:
            fmt, rate, channels, frames = _probe_av(data, format_hint, limits)
        except _NotAv as av_error:
            raise InvalidAudioError(
                f"not decodable audio ({len(data)} bytes): {sf_error}; {av_error}"
            ) from None
    if frames <= 0:
        raise InvalidAudioError(f"{fmt} audio contains no audio frames ({len(data)} bytes)")
    limits.check_format(rate, channels)
    limits.check_duration(frames / rate)
    return AudioInfo(
        format=fmt,
        sample_rate=rate,
        channels=channels,
        duration_seconds=frames / rate,
        file_size_bytes=len(data),
        checksum_sha256=hashlib.sha256(data).hexdigest(),
    )


def read_audio(source: bytes | str | Path) -> tuple[np.ndarray, int]:
    """Decode ``source`` (bytes or a file path) to ``(float32 array [frames, channels], sample_rate)``."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if not data:
        raise InvalidAudioError("audio is empty (0 bytes)")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        return samples, int(rate)
    except sf.LibsndfileError:
        pass
    import av  # heavy import, only for containers libsndfile cannot read

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise InvalidAudioError("no audio stream in the container")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
            chunks = [
                out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)
            ]
            chunks += [out.to_ndarray() for out in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise InvalidAudioError(f"not decodable audio: {exc}") from None
    if not chunks:
        raise InvalidAudioError("audio contains no audio frames")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1).T, dtype=np.float32), int(stream.rate)


class _NotSoundfile(Exception):
    pass


class _NotAv(Exception):
    pass


def _probe_soundfile(data: bytes, limits: Limits) -> tuple[str, int, int, int]:
    """Probe with libsndfile; raises ``_NotSoundfile`` when it does not know the format."""
    try:
        handle = sf.SoundFile(io.BytesIO(data))
    except sf.LibsndfileError as exc:
        raise _NotSoundfile(f"libsndfile: {exc.error_string}") from None
    with handle:
        major = handle.format
        fmt = _SF_FORMATS.get(major, major.lower())
        declared = handle.frames
        limits.check_format(handle.samplerate, handle.channels)  # from the header, before decoding
        limits.check_duration(declared / handle.samplerate, f"{fmt} audio (header)")
        cap = int(limits.max_call_seconds * handle.samplerate) + _BLOCK_FRAMES
        block_frames = max(1, min(_BLOCK_FRAMES, (1 << 22) // max(1, handle.channels)))
        decoded = 0
        try:
            while decoded <= cap:  # header lies: the decoded stream is bounded too
                block = handle.read(block_frames, dtype="int16")
                if not len(block):
                    break
                decoded += len(block)
        except sf.LibsndfileError as exc:
            raise InvalidAudioError(f"{fmt} audio is corrupt or truncated: {exc.error_string}") from None
        rate, channels = handle.samplerate, handle.channels
    if major in ("WAV", "WAVEX"):
        _check_riff(data)
    elif major == "OGG":
        _check_ogg_end(data)
    if decoded + max(2048, declared // 100) < declared:
        raise InvalidAudioError(
            f"{fmt} audio is truncated: header declares {declared} frames, {decoded} present"
        )
    return fmt, rate, channels, decoded


def _check_riff(data: bytes) -> None:
    """libsndfile silently accepts a WAV whose data chunk is cut short; the chunk sizes reveal it."""
    if data[:4] not in (b"RIFF", b"RIFX"):
        return
    order = "<" if data[:4] == b"RIFF" else ">"
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack(order + "I", data[pos + 4 : pos + 8])
        if chunk_id == b"data":
            available = len(data) - pos - 8
            # 0 and 0xFFFFFFFF are placeholders written by streaming recorders.
            if size not in (0, 0xFFFFFFFF) and size > available:
                raise InvalidAudioError(
                    f"wav audio is truncated: data chunk declares {size} bytes, {available} present"
                )
            return
        pos += 8 + size + (size & 1)
    raise InvalidAudioError("wav audio is truncated: no complete data chunk")


def _check_ogg_end(data: bytes) -> None:
    """An Ogg stream ends with a page flagged end-of-stream; a cut file lacks it."""
    last = data.rfind(b"OggS", max(0, len(data) - 65536))
    if last < 0 or last + 5 >= len(data) or not data[last + 5] & 0x04:
        raise InvalidAudioError("ogg audio is truncated: the last page is not flagged end-of-stream")


def _probe_av(data: bytes, format_hint: str | None, limits: Limits) -> tuple[str, int, int, int]:
    """Probe any container FFmpeg knows; raises ``_NotAv`` when it cannot decode the bytes."""
    import av  # heavy import, only for containers libsndfile cannot read

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise _NotAv(f"pyav: no audio stream in {container.format.name} container")
            stream = container.streams.audio[0]
            names = container.format.name.split(",")
            rate = int(stream.rate or 0)
            channels = int(stream.channels or 0)
            if rate and channels:
                limits.check_format(rate, channels)  # from the header, before decoding
            decoded = 0
            for frame in container.decode(stream):
                decoded += frame.samples
                rate = rate or int(frame.sample_rate)
                if decoded > limits.max_call_seconds * rate + 65536:
                    limits.check_duration(decoded / rate, f"{names[0]} audio (decoded)")
            declared = container.duration  # microseconds, when the container says
    except av.error.FFmpegError as exc:
        raise _NotAv(f"pyav: {exc.strerror or exc}") from None
    if rate <= 0 or channels <= 0:
        raise InvalidAudioError("audio stream without sample rate or channel count")
    if format_hint and format_hint.lower() in names:
        fmt = format_hint.lower()
    elif "webm" in names:
        fmt = "webm"
    elif "mp4" in names:
        fmt = "m4a"
    else:
        fmt = names[0]
    if declared and decoded / rate < declared / 1e6 * 0.95 - 0.1:
        raise InvalidAudioError(
            f"{fmt} audio is truncated: container declares {declared / 1e6:.2f} s, "
            f"{decoded / rate:.2f} s decodable"
        )
    return fmt, rate, channels, decoded
