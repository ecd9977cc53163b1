"""Deterministic Spanish test speech: espeak-ng, then sox without dither.

espeak-ng renders the same text to the same bytes; sox adds random TPDF dither whenever it
reduces a sample to 16 bits after an effect (here the 22.05 -> 16 kHz resampling), with a new
seed per run, so a clip made in two sessions differed in its low bits and Whisper's greedy
decoding of a borderline word could change with it. ``-D`` turns dither off and ``-R`` makes
sox repeatable (fixed seeds, no timestamp): the same text, voice and speed give the same file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SOX_REPEATABLE = ["sox", "-R", "-D"]


def require_tools(*tools: str) -> None:
    """Fail (not skip) the test when a Debian audio tool is missing."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} required to make the test audio (Debian packages)")


def espeak_wav(text: str, voice: str, path: Path, speed: int | None = None) -> Path:
    """espeak-ng speech as the 22.05 kHz mono WAV ``path`` (deterministic)."""
    require_tools("espeak-ng")
    command = ["espeak-ng", "-v", voice, "-w", str(path)]
    if speed is not None:
        command += ["-s", str(speed)]
    subprocess.run([*command, text], check=True, capture_output=True)
    return path


def speak_wav(text: str, voice: str, path: Path, *, rate: int, speed: int = 150) -> Path:
    """espeak-ng speech resampled by sox to ``rate`` Hz mono 16-bit WAV, without dither."""
    require_tools("espeak-ng", "sox")
    raw = path.with_name(f"{path.stem}.raw.wav")
    espeak_wav(text, voice, raw, speed)
    subprocess.run(
        [*SOX_REPEATABLE, str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(path)],
        check=True,
        capture_output=True,
    )
    raw.unlink()
    return path
