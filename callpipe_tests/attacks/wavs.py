"""Real, hand-built WAV files for the attack tests (struct-written RIFF, bounded sizes)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def pcm_wav(rate: int, channels: int, frames: int, *, fill: int = 0) -> bytes:
    """A complete 16-bit PCM WAV whose header and data agree: ``frames`` frames of ``channels``."""
    data = np.full(frames * channels, fill, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return _riff(fmt, data)


def tone_wav(rate: int, seconds: float) -> bytes:
    """A mono 16-bit PCM WAV of a 440 Hz tone."""
    t = np.arange(int(rate * seconds)) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    data = samples.tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return _riff(fmt, data)


def one_hertz_wav(path: Path) -> Path:
    """The audio bomb of issue 17: 1 Hz, 2,000,000 frames (4 MB), i.e. 2,000,000 s declared."""
    path.write_bytes(pcm_wav(1, 1, 2_000_000, fill=1000))
    return path


def _riff(fmt: bytes, data: bytes) -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body
