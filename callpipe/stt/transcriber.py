"""faster-whisper wrapper: load the model once, transcribe paths, bytes or arrays.

Normal mode is greedy decoding (beam 1) without VAD, for re-transcribing many calls fast.
Premium mode uses beam 5, the Silero VAD filter and, when a domain lexicon is given, its terms
as hotwords plus a short initial prompt (none by default: on real telephone speech the shipped
lexicon as hotwords or prompt raised WER, see ``benchmarks/real_speech.py``); with
``CALLPIPE_WHISPER_BATCH_SIZE`` > 0 it decodes through faster-whisper's
``BatchedInferencePipeline``. Both keep Whisper's temperature fallback. Every call
returns word timestamps and probabilities, and likely hallucinations are moved to
``TranscriptResult.dropped`` (see :mod:`callpipe.stt.quality`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

import ctranslate2
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from pydantic import BaseModel, ConfigDict, Field

from callpipe.settings import Settings
from callpipe.stt.audio_input import (
    SAMPLE_RATE,
    AudioSource,
    decode_channels,
    is_digital_silence,
    select_channel,
)
from callpipe.stt.errors import InvalidAudioError, TranscriptionError
from callpipe.stt.models import locate_model, model_manifest
from callpipe.stt.quality import drop_hallucinations
from callpipe.stt.result import TranscriptResult, TranscriptSegment, TranscriptWord

PREMIUM_BEAM_SIZE = 5
DEFAULT_PROMPT = "Llamada de atención al cliente."
MAX_HOTWORDS_CHARS = 150  # hotwords take prompt tokens from every 30 s window: keep them short
_ENV = {
    "model": "CALLPIPE_WHISPER_MODEL",
    "device": "CALLPIPE_WHISPER_DEVICE",
    "compute_type": "CALLPIPE_WHISPER_COMPUTE_TYPE",
    "beam_size": "CALLPIPE_WHISPER_BEAM_SIZE",
    "cpu_threads": "CALLPIPE_WHISPER_THREADS",
    "language": "CALLPIPE_WHISPER_LANGUAGE",
    "premium_batch_size": "CALLPIPE_WHISPER_BATCH_SIZE",
}
_log = logging.getLogger(__name__)


class TranscriberSettings(BaseModel):
    """How the transcriber loads and runs the model; :meth:`from_env` reads ``CALLPIPE_WHISPER_*``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(default=None, description="model directory or size name; None = bundled base")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = Field(default="auto", description="auto = float16 on CUDA, int8 on CPU")
    beam_size: int = Field(default=1, ge=1, description="normal mode; 1 = greedy")
    premium_beam_size: int = Field(default=PREMIUM_BEAM_SIZE, ge=1)
    premium_batch_size: int = Field(
        default=0, ge=0, description="premium with VAD through BatchedInferencePipeline; 0 = sequential"
    )
    cpu_threads: int = Field(default=0, ge=0, description="0 = CTranslate2 default")
    language: str | None = Field(default="es", description="None = detect")
    domain_terms: tuple[str, ...] = ()
    filter_hallucinations: bool = True

    @classmethod
    def from_env(cls, **overrides: Any) -> TranscriberSettings:
        """Settings from the environment, with explicit non-None ``overrides`` taking precedence."""
        settings = Settings.from_env(only=_ENV.values())
        values: dict[str, Any] = {field: getattr(settings, name.lower()) for field, name in _ENV.items()}
        if values["language"].lower() in {"auto", "detect"}:
            values["language"] = None
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when CTranslate2 sees a CUDA device, else "cpu"."""
    if device != "auto":
        return device
    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    """ "auto" -> float16 on CUDA, int8 on CPU (falling back to what the device supports)."""
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type != "auto":
        if compute_type not in supported:
            raise TranscriptionError(
                f"compute type {compute_type!r} is not supported on {device} (supported: {sorted(supported)})"
            )
        return compute_type
    preferred = (
        ("float16", "int8_float16", "float32") if device == "cuda" else ("int8", "int8_float32", "float32")
    )
    return next(choice for choice in preferred if choice in supported)


def build_prompt(domain_terms: Sequence[str]) -> tuple[str | None, str | None]:
    """Initial prompt and hotwords for premium mode from a domain lexicon; (None, None) without terms.

    Hotwords are the de-duplicated terms, cut to :data:`MAX_HOTWORDS_CHARS`: they are fed to
    every 30 s window. The initial prompt stays a short fixed sentence; on the synthetic calls
    here, listing the terms in the prompt as well made Whisper read the list back as speech.
    """
    terms = list(dict.fromkeys(t.strip() for t in domain_terms if t and t.strip()))
    hotwords = _join_limited(terms, MAX_HOTWORDS_CHARS)
    if not hotwords:
        return None, None
    return DEFAULT_PROMPT, hotwords


def _join_limited(terms: Sequence[str], limit: int) -> str:
    chosen: list[str] = []
    for term in terms:
        if len(", ".join([*chosen, term])) > limit:
            break
        chosen.append(term)
    return ", ".join(chosen)


class Transcriber:
    """A loaded Whisper model. Create once per process; :meth:`transcribe` is reentrant."""

    def __init__(self, settings: TranscriberSettings | None = None, **overrides: Any) -> None:
        """Load the model; ``settings`` default to :meth:`TranscriberSettings.from_env` with ``overrides``."""
        if settings is None:
            settings = TranscriberSettings.from_env(**overrides)
        elif overrides:
            settings = TranscriberSettings(**{**settings.model_dump(), **overrides})
        self.settings = settings
        self.model_path = locate_model(settings.model)
        self.device = resolve_device(settings.device)
        self.compute_type = resolve_compute_type(settings.compute_type, self.device)
        digest = model_manifest(self.model_path).get("model.bin", {})
        sha = digest.get("sha256", "") if isinstance(digest, dict) else ""
        self.model_id = f"{self.model_path.name}@sha256:{sha[:12]}" if sha else str(self.model_path)
        started = time.perf_counter()
        try:
            self._model = WhisperModel(
                str(self.model_path),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise TranscriptionError(f"cannot load Whisper model from {self.model_path}: {exc}") from exc
        self._batched = BatchedInferencePipeline(model=self._model)
        self.load_seconds = time.perf_counter() - started
        _log.info(
            "loaded %s on %s/%s in %.2fs", self.model_id, self.device, self.compute_type, self.load_seconds
        )

    def transcribe(
        self,
        audio: AudioSource,
        *,
        premium: bool = False,
        hotwords: str | None = None,
        initial_prompt: str | None = None,
        channel: int | None = None,
        domain_terms: Sequence[str] | None = None,
        vad_filter: bool | None = None,
    ) -> TranscriptResult:
        """Transcribe ``audio`` (path, encoded bytes, or 16 kHz float array).

        ``channel`` picks one channel of a multi-channel recording (None = mono downmix).
        Premium: beam 5 + VAD filter; its prompt and hotwords come from ``domain_terms`` (or the
        settings' lexicon) unless given explicitly. ``vad_filter`` overrides the mode's VAD
        choice (stereo channels, mostly the other party's silence, use it always). Raises
        :class:`~callpipe.stt.errors.InvalidAudioError` for empty/unreadable audio and
        :class:`~callpipe.stt.errors.TranscriptionError` if decoding fails; digital silence gives
        an empty result with ``no_speech=True``.
        """
        samples = select_channel(decode_channels(audio), channel)
        return self.transcribe_samples(
            samples,
            premium=premium,
            hotwords=hotwords,
            initial_prompt=initial_prompt,
            channel=channel,
            domain_terms=domain_terms,
            vad_filter=vad_filter,
        )

    def transcribe_samples(
        self,
        samples: np.ndarray,
        *,
        premium: bool = False,
        hotwords: str | None = None,
        initial_prompt: str | None = None,
        channel: int | None = None,
        domain_terms: Sequence[str] | None = None,
        vad_filter: bool | None = None,
    ) -> TranscriptResult:
        """Like :meth:`transcribe` for one already decoded 16 kHz mono channel (1-D float array)."""
        started = time.perf_counter()
        if samples.ndim != 1 or samples.size == 0:
            raise InvalidAudioError(f"expected a non-empty 1-D 16 kHz channel, got shape {samples.shape}")
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        duration = len(samples) / SAMPLE_RATE
        beam = self.settings.premium_beam_size if premium else self.settings.beam_size
        use_vad = premium if vad_filter is None else vad_filter
        base = {
            "language": self.settings.language or "unknown",
            "language_probability": 0.0,
            "duration": duration,
            "premium": premium,
            "beam_size": beam,
            "channel": channel,
            "model": self.model_id,
        }
        if is_digital_silence(samples):
            return TranscriptResult(
                **base, speech_duration=0.0, no_speech=True, no_speech_reason="digital silence"
            )
        if premium:
            terms = domain_terms if domain_terms is not None else self.settings.domain_terms
            default_prompt, default_hotwords = build_prompt(terms)
            initial_prompt = initial_prompt if initial_prompt is not None else default_prompt
            hotwords = hotwords if hotwords is not None else default_hotwords
        # Whisper's temperature fallback samples: seed it so that the same audio gives the same
        # transcript (the generator is global to CTranslate2: calls made at once still interleave).
        ctranslate2.set_random_seed(0)
        options: dict[str, Any] = {
            "language": self.settings.language,
            "beam_size": beam,
            "best_of": max(beam, 1),
            "vad_filter": use_vad,
            "word_timestamps": True,
            "initial_prompt": initial_prompt,
            "hotwords": hotwords,
        }
        batch = self.settings.premium_batch_size if premium and use_vad else 0
        try:
            if batch:  # VAD chunks decoded side by side (faster on GPU; see benchmarks/real_speech.py)
                raw_segments, info = self._batched.transcribe(samples, batch_size=batch, **options)
            else:
                raw_segments, info = self._model.transcribe(samples, **options)
            segments = [_segment(raw) for raw in raw_segments]
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(f"Whisper decoding failed: {exc}") from exc
        dropped = []
        if self.settings.filter_hallucinations:
            prompt_text = " ".join(p for p in (initial_prompt, hotwords) if p)
            segments, dropped = drop_hallucinations(segments, prompt=prompt_text or None)
        reason = None
        if not segments:
            reason = "every segment dropped as hallucination" if dropped else "no speech found"
        return TranscriptResult(
            **{
                **base,
                "language": info.language,
                "language_probability": min(1.0, info.language_probability),
            },
            segments=segments,
            dropped=dropped,
            speech_duration=info.duration_after_vad if use_vad else None,
            no_speech=not segments,
            no_speech_reason=reason,
            elapsed_seconds=time.perf_counter() - started,
        )


def _segment(raw: Any) -> TranscriptSegment:
    words = [
        TranscriptWord(
            word=w.word,
            start=float(w.start),
            end=float(max(w.end, w.start)),
            probability=min(1.0, max(0.0, float(w.probability))),
        )
        for w in raw.words or []
    ]
    return TranscriptSegment(
        start=float(raw.start),
        end=float(raw.end),
        text=raw.text,
        avg_logprob=float(raw.avg_logprob),
        compression_ratio=float(raw.compression_ratio),
        no_speech_prob=min(1.0, max(0.0, float(raw.no_speech_prob))),
        words=words,
    )
