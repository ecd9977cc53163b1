"""Exceptions of the speech-to-text stage."""

from __future__ import annotations


class TranscriptionError(RuntimeError):
    """The speech-to-text stage could not produce a transcript (model or decoder failure)."""


class InvalidAudioError(TranscriptionError, ValueError):
    """The audio given to the speech-to-text stage is empty, unreadable or malformed."""
