"""Turn what callers hand the STT stage (path, bytes, array) into 16 kHz float32 channels."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import av
import numpy as np

from callpipe.limits import LimitExceededError, Limits
from callpipe.stt.errors import InvalidAudioError

SAMPLE_RATE = 16000
"""Whisper and the Silero VAD work at 16 kHz; every array in this package is at this rate."""

AudioSource = str | Path | bytes | bytearray | np.ndarray
_SILENCE_PEAK = 1e-4  # about -80 dBFS: below any real recording's noise floor
_log = logging.getLogger(__name__)


def decode_channels(source: AudioSource) -> np.ndarray:
    """Decode ``source`` to a float32 array of shape (channels, samples) at 16 kHz.

    Paths and bytes are decoded with PyAV (any container/codec FFmpeg reads). Arrays are taken
    to be 16 kHz already: 1-D is mono; 2-D is (samples, channels) as soundfile returns it or
    (channels, samples), the shorter axis being the channels. Integer arrays are scaled.
    Raises :class:`InvalidAudioError` for empty, unreadable, or non-finite audio.
    """
    if isinstance(source, np.ndarray):
        channels = _from_array(source)
    elif isinstance(source, bytes | bytearray):
        if len(source) == 0:
            raise InvalidAudioError("audio is empty (0 bytes)")
        channels = _decode(io.BytesIO(bytes(source)), "audio bytes")
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InvalidAudioError(f"audio file not found: {path}")
        if path.stat().st_size == 0:
            raise InvalidAudioError(f"audio file is empty (0 bytes): {path}")
        channels = _decode(str(path), str(path))
    else:
        raise InvalidAudioError(f"unsupported audio input type {type(source).__name__}")
    if channels.shape[1] == 0:
        raise InvalidAudioError("audio has no samples (zero length)")
    if not np.isfinite(channels).all():
        raise InvalidAudioError("audio contains NaN or infinite samples")
    return channels


def select_channel(channels: np.ndarray, channel: int | None) -> np.ndarray:
    """One channel of a (channels, samples) array, or the mono downmix when ``channel`` is None."""
    if channel is None:
        return channels[0] if channels.shape[0] == 1 else channels.mean(axis=0, dtype=np.float32)
    if not 0 <= channel < channels.shape[0]:
        raise InvalidAudioError(
            f"channel {channel} requested but the audio has {channels.shape[0]} channel(s)"
        )
    return np.ascontiguousarray(channels[channel])


def is_digital_silence(samples: np.ndarray) -> bool:
    """True when no sample rises above about -80 dBFS (a muted or zero-filled recording)."""
    return samples.size == 0 or float(np.max(np.abs(samples))) < _SILENCE_PEAK


def duplicated_channels(channels: np.ndarray, tolerance: float = 1e-3) -> bool:
    """True when a multi-channel array carries the same signal on every channel (mono saved as stereo)."""
    if channels.shape[0] < 2:
        return False
    reference = channels[0]
    scale = max(float(np.max(np.abs(reference))), 1e-9)
    return all(float(np.max(np.abs(other - reference))) <= tolerance * scale for other in channels[1:])


def _from_array(array: np.ndarray) -> np.ndarray:
    if array.ndim == 1:
        array = array[np.newaxis, :]
    elif array.ndim == 2:
        if array.shape[0] > array.shape[1]:
            array = array.T
    else:
        raise InvalidAudioError(f"audio array must be 1-D or 2-D, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        array = array.astype(np.float32) / float(max(abs(info.min), info.max))
    elif not np.issubdtype(array.dtype, np.floating):
        raise InvalidAudioError(f"audio array must hold numbers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _decode(source: str | io.BytesIO, label: str) -> np.ndarray:
    """Decode and resample frame by frame (FFmpeg's resampler, a frame at a time), bounded by the
    ingest limits: a stream whose header or decoded length is past them is refused before or while
    it is decoded, so that a lying header cannot make the resampled array grow without end."""
    limits = Limits.from_env()
    cap = int(limits.max_call_seconds * SAMPLE_RATE) + SAMPLE_RATE
    pieces: list[np.ndarray] = []
    produced = 0
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InvalidAudioError(f"no audio stream in {label}")
            stream = container.streams.audio[0]
            count = stream.codec_context.channels or 1
            try:
                limits.check_format(int(stream.codec_context.sample_rate or stream.rate or 0), count)
            except LimitExceededError as exc:
                raise InvalidAudioError(f"{label}: {exc}") from None
            layout = {1: "mono", 2: "stereo"}.get(count, stream.codec_context.layout.name)
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
            try:
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        pieces.append(out.to_ndarray())
                        produced += pieces[-1].shape[1]
                    if produced > cap:
                        raise InvalidAudioError(
                            f"{label} decodes to more than {limits.max_call_seconds / 60:g} min of audio "
                            "(CALLPIPE_MAX_CALL_MINUTES)"
                        )
            except av.error.FFmpegError as exc:
                if not pieces:
                    raise
                # A truncated tail: keep what decoded, as players do, but say so.
                _log.warning("audio %s is damaged after %d frames: %s", label, len(pieces), exc)
            pieces.extend(out.to_ndarray() for out in resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise InvalidAudioError(f"cannot decode {label}: {exc.strerror or exc}") from exc
    if not pieces:
        return np.zeros((1, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(pieces, axis=1), dtype=np.float32)
