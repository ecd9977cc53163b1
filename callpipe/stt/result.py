"""Typed transcription results (plain pydantic; importing this loads no model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from callpipe.schema import Transcription, WordConfidence


class TranscriptWord(BaseModel):
    """One word with its timing (seconds from the start of the audio) and probability."""

    model_config = ConfigDict(frozen=True)

    word: str
    start: float
    end: float
    probability: float = Field(ge=0.0, le=1.0)


class TranscriptSegment(BaseModel):
    """One decoded segment with Whisper's decoder statistics."""

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    compression_ratio: float = 1.0
    no_speech_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    words: list[TranscriptWord] = Field(default_factory=list)


class DroppedSegment(BaseModel):
    """A segment removed as a likely hallucination, with every reason that matched."""

    segment: TranscriptSegment
    reasons: list[str]


class TranscriptResult(BaseModel):
    """What :meth:`callpipe.stt.Transcriber.transcribe` returns.

    ``no_speech`` is True when the audio held no speech (digital silence, nothing found by the
    VAD, or every segment dropped as a hallucination); ``segments`` is then empty and
    ``no_speech_reason`` says why. Dropped segments are kept in ``dropped``, never lost.
    """

    segments: list[TranscriptSegment] = Field(default_factory=list)
    dropped: list[DroppedSegment] = Field(default_factory=list)
    language: str
    language_probability: float = Field(ge=0.0, le=1.0)
    duration: float = Field(ge=0.0)
    speech_duration: float | None = None
    no_speech: bool = False
    no_speech_reason: str | None = None
    premium: bool = False
    beam_size: int = 1
    channel: int | None = None
    model: str = ""
    elapsed_seconds: float = 0.0

    @property
    def text(self) -> str:
        """The kept segments' text joined with single spaces."""
        return " ".join(seg.text.strip() for seg in self.segments if seg.text.strip())

    @property
    def words(self) -> list[TranscriptWord]:
        return [word for seg in self.segments for word in seg.words]

    @property
    def word_confidences(self) -> list[WordConfidence]:
        """Kept words as the metadata contract's :class:`~callpipe.schema.WordConfidence`."""
        return [
            WordConfidence(word=w.word.strip(), confidence=w.probability, start=w.start, end=w.end)
            for w in self.words
            if w.word.strip()
        ]

    @property
    def confidence(self) -> float | None:
        """Mean word probability, None without words."""
        words = self.words
        return sum(w.probability for w in words) / len(words) if words else None

    def to_transcription(self, *, estimated_wer: float | None = None) -> Transcription:
        """The metadata contract's :class:`~callpipe.schema.Transcription` for this result."""
        return Transcription(
            text=self.text,
            language=self.language,
            confidence=self.confidence,
            word_confidences=self.word_confidences,
            estimated_wer=estimated_wer,
        )
