"""Exceptions of the speech-to-text stage."""

from __future__ import annotations

from callpipe import audio_files


class TranscriptionError(RuntimeError):
    """The speech-to-text stage could not produce a transcript (model or decoder failure)."""


class InvalidAudioError(TranscriptionError, audio_files.InvalidAudioError):
    """The audio given to the speech-to-text stage is empty, unreadable or malformed.

    A :class:`callpipe.audio_files.InvalidAudioError` (so one ``except`` covers both stages) and a
    :class:`TranscriptionError`.
    """
