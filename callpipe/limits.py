"""One set of input limits for the CLI, the API and the pipeline (read from :mod:`callpipe.settings`).

:class:`Limits` holds the bounds an ingest checks before anything is stored: upload size
(``CALLPIPE_MAX_UPLOAD_MB``), call length (``CALLPIPE_MAX_CALL_MINUTES``), channels
(``CALLPIPE_MAX_CHANNELS``), sample rate (``CALLPIPE_MIN_SAMPLE_RATE`` .. ``CALLPIPE_MAX_SAMPLE_RATE``),
transcript words (``CALLPIPE_MAX_TRANSCRIPT_WORDS``) and word-confidence items
(``CALLPIPE_MAX_WORD_CONFIDENCES``). A value past a bound raises :class:`LimitExceededError`
(a ``ValueError``: exit 2 in the CLI, HTTP 413/422 in the API) whose message names the limit and
its variable, never the content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callpipe.settings import Settings

LIMIT_VARIABLES = (
    "CALLPIPE_MAX_UPLOAD_MB",
    "CALLPIPE_MAX_CALL_MINUTES",
    "CALLPIPE_MAX_CHANNELS",
    "CALLPIPE_MIN_SAMPLE_RATE",
    "CALLPIPE_MAX_SAMPLE_RATE",
    "CALLPIPE_MAX_TRANSCRIPT_WORDS",
    "CALLPIPE_MAX_WORD_CONFIDENCES",
)


class LimitExceededError(ValueError):
    """Input past one of the configured limits (the message names the limit's variable)."""


@dataclass(frozen=True)
class Limits:
    """The ingest bounds; :meth:`from_env` reads them (``SettingsError`` on a bad value)."""

    max_upload_bytes: int = 100 * 1024 * 1024
    max_call_seconds: float = 180 * 60.0
    max_channels: int = 8
    min_sample_rate: int = 4000
    max_sample_rate: int = 192000
    max_transcript_words: int = 60000
    max_word_confidences: int = 60000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The limits of ``environ``'s settings (default ``os.environ``)."""
        s = Settings.from_env(environ, only=LIMIT_VARIABLES)
        return cls(
            max_upload_bytes=s.callpipe_max_upload_mb * 1024 * 1024,
            max_call_seconds=s.callpipe_max_call_minutes * 60.0,
            max_channels=s.callpipe_max_channels,
            min_sample_rate=s.callpipe_min_sample_rate,
            max_sample_rate=s.callpipe_max_sample_rate,
            max_transcript_words=s.callpipe_max_transcript_words,
            max_word_confidences=s.callpipe_max_word_confidences,
        )

    def check_upload_size(self, size: int) -> None:
        """Refuse audio of more than ``CALLPIPE_MAX_UPLOAD_MB``."""
        if size > self.max_upload_bytes:
            raise LimitExceededError(
                f"audio is {size / 1048576:.1f} MB, over the {self.max_upload_bytes // 1048576} MB limit "
                "(CALLPIPE_MAX_UPLOAD_MB)"
            )

    def check_format(self, sample_rate: int, channels: int) -> None:
        """Refuse a sample rate outside the range or a channel count of 0 or above the maximum."""
        if not self.min_sample_rate <= sample_rate <= self.max_sample_rate:
            raise LimitExceededError(
                f"audio sample rate {sample_rate} Hz is outside "
                f"{self.min_sample_rate}..{self.max_sample_rate} Hz "
                "(CALLPIPE_MIN_SAMPLE_RATE, CALLPIPE_MAX_SAMPLE_RATE)"
            )
        if not 1 <= channels <= self.max_channels:
            raise LimitExceededError(
                f"audio has {channels} channels; 1..{self.max_channels} are accepted (CALLPIPE_MAX_CHANNELS)"
            )

    def check_duration(self, seconds: float, what: str = "audio") -> None:
        """Refuse a call longer than ``CALLPIPE_MAX_CALL_MINUTES``."""
        if seconds > self.max_call_seconds:
            raise LimitExceededError(
                f"{what} lasts {seconds / 60:.1f} min, over the {self.max_call_seconds / 60:g} min limit "
                "(CALLPIPE_MAX_CALL_MINUTES)"
            )

    def check_text(self, words: int, items: int) -> None:
        """Refuse a transcript of too many words or too many word-confidence items."""
        if words > self.max_transcript_words:
            raise LimitExceededError(
                f"transcript has {words} words, over the {self.max_transcript_words} limit "
                "(CALLPIPE_MAX_TRANSCRIPT_WORDS)"
            )
        if items > self.max_word_confidences:
            raise LimitExceededError(
                f"{items} word confidences, over the {self.max_word_confidences} limit "
                "(CALLPIPE_MAX_WORD_CONFIDENCES)"
            )
