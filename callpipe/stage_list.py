"""The offline stages as data: what each reads (its fingerprint input), its version, its run.

A stage function takes a recording's metadata and the loaded :class:`StageModels` and returns a
patch (top-level metadata fields to replace). Bump a stage's ``version`` whenever its output for
the same input can change: recordings processed by an older version become stale and are redone
by the next run, and the Dagster asset's ``code_version`` changes with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callpipe.schema import ProcessingMode, RecordingMetadata, Transcription, Turn
from callpipe.storage import RecordingStore

StageFn = Callable[[RecordingMetadata, "StageModels", RecordingStore], dict[str, Any]]


class StageModels:
    """Models a process loads once, each on first use: transcriber, corrector, analyzer.

    Thread-safe; one instance per process (the Dagster resources hold one). A run whose
    recordings need no re-transcription never loads Whisper.
    """

    def __init__(
        self,
        transcriber_settings: Any = None,
        retranscribe_threshold: float | None = None,
        retranscribe_policy: str | None = None,
    ) -> None:
        """``retranscribe_policy``: gate, always or never; None reads ``CALLPIPE_RETRANSCRIBE_POLICY``
        at each call (:func:`callpipe.stt.quality.retranscribe_policy`)."""
        self._lock = threading.Lock()
        self._transcriber: Any = None
        self._corrector: Any = None
        self._analyzer: Any = None
        self.transcriber_settings = transcriber_settings
        self.retranscribe_threshold = retranscribe_threshold
        self.retranscribe_policy = retranscribe_policy

    def policy(self) -> str:
        """The re-transcription policy in force (see :func:`callpipe.stt.quality.retranscribe_policy`)."""
        from callpipe.stt.quality import retranscribe_policy

        return retranscribe_policy(self.retranscribe_policy, threshold=self.retranscribe_threshold)

    @property
    def transcriber(self) -> Any:
        with self._lock:
            if self._transcriber is None:
                from callpipe.stt import Transcriber

                self._transcriber = Transcriber(self.transcriber_settings)
            return self._transcriber

    @property
    def corrector(self) -> Any:
        with self._lock:
            if self._corrector is None:
                from callpipe.correction import get_default_corrector

                self._corrector = get_default_corrector()
            return self._corrector

    @property
    def analyzer(self) -> Any:
        with self._lock:
            if self._analyzer is None:
                from callpipe.analysis.analyzer import get_analyzer

                self._analyzer = get_analyzer()
            return self._analyzer

    def model_names(self) -> dict[str, str]:
        """Names of the models behind the stages, for provenance (loads nothing new)."""
        from callpipe.stt import TranscriberSettings

        settings = self.transcriber_settings or TranscriberSettings.from_env()
        names = {"stt": self._transcriber.model_id if self._transcriber else str(settings.model or "base")}
        if self._analyzer is not None:
            names.update({f"analysis.{k}": v for k, v in self._analyzer.models.items()})
        return names


def _live(meta: RecordingMetadata) -> Transcription:
    return meta.online_transcription or meta.transcription


def _stt_inputs(meta: RecordingMetadata) -> Any:
    live = _live(meta)
    return [
        meta.audio.checksum_sha256 if meta.audio else None,
        live.text,
        [(w.word, w.confidence, w.start, w.end) for w in live.word_confidences],
    ]


def _stt(meta: RecordingMetadata, services: StageModels, store: RecordingStore) -> dict[str, Any]:
    """Keep the live transcript or re-transcribe (premium), as the re-transcription policy says
    (:func:`callpipe.stt.quality.retranscribe_policy`); with the ``gate`` policy a re-transcription
    is kept only when estimated better. Whichever transcript is kept is the transcript of record:
    the turns are that text split by speaker (:mod:`callpipe.stt.record`)."""
    from callpipe.stt import estimate_wer, transcribe_conversation
    from callpipe.stt.quality import should_retranscribe
    from callpipe.stt.turns import transcript_turns

    live = _live(meta)
    live_wer = round(estimate_wer(live.word_confidences) if live.text.strip() else 1.0, 4)
    live = live.model_copy(update={"estimated_wer": live_wer})
    kept = live.model_copy(
        update={
            "retranscribed": False,
            "corrected_text": None,
            "corrections_made": [],
            "correction_method": None,
        }
    )
    policy = services.policy()
    # S3 audio is staged in a temporary file for this stage only (no copy outlives it).
    with store.audio_file(meta.recording_id) as staged:
        audio_path = str(staged)
        if should_retranscribe(live_wer, policy, services.retranscribe_threshold):
            conversation = transcribe_conversation(
                services.transcriber, audio_path, premium=True, direction=_direction(meta)
            )
            segments = [s for channel in conversation.channels for s in channel.segments]
            new_wer = estimate_wer(conversation.word_confidences, segments)
            better = new_wer <= live_wer or policy == "always"
            if conversation.text.strip() and better:
                words = conversation.word_confidences
                transcription = Transcription(
                    text=conversation.text,
                    language=conversation.channels[0].language if conversation.channels else "es",
                    confidence=round(sum(w.confidence for w in words) / len(words), 4) if words else None,
                    word_confidences=words,
                    estimated_wer=round(new_wer, 4),
                    retranscribed=True,
                )
                return {
                    "online_transcription": live,
                    "transcription": transcription,
                    "turns": conversation.turns,
                    "conversation_metrics": conversation.metrics,
                }
        turns, metrics = transcript_turns(
            audio_path, kept.text, kept.word_confidences, direction=_direction(meta)
        )
    return {
        "online_transcription": live,
        "transcription": kept,
        "turns": turns,
        "conversation_metrics": metrics,
    }


def _direction(meta: RecordingMetadata) -> str:
    return getattr(meta.direction, "value", str(meta.direction))


def _text(meta: RecordingMetadata) -> str:
    return meta.transcription.corrected_text or meta.transcription.text


def _turns(meta: RecordingMetadata) -> list[Turn]:
    """The turns, when they are the transcript of record split by speaker (else none: turns of an
    older version may hold other words than the text, and analysis must read one transcript)."""
    from callpipe.stt.record import turns_match_text

    return list(meta.turns) if turns_match_text(meta.turns, _text(meta)) else []


def _correction_inputs(meta: RecordingMetadata) -> Any:
    return [
        meta.transcription.text,
        [(w.word, w.confidence) for w in meta.transcription.word_confidences],
        [(t.speaker, t.token_start, t.token_end) for t in meta.turns],
    ]


def _correction(meta: RecordingMetadata, services: StageModels, store: RecordingStore) -> dict[str, Any]:
    """Correct the transcript of record and give the turns its corrected words."""
    from callpipe.stt.record import retext_turns

    result = services.corrector.process(meta.transcription.text, meta.transcription.word_confidences)
    transcription = meta.transcription.model_copy(
        update={
            "corrected_text": result.corrected_text,
            "corrections_made": result.corrections,
            "correction_method": ProcessingMode.OFFLINE,
        }
    )
    turns = retext_turns(meta.turns, result.corrected_text, result.token_sources)
    return {"transcription": transcription, "turns": turns}


def _analysis_inputs(meta: RecordingMetadata) -> Any:
    return [_text(meta), [(t.speaker, t.text) for t in _turns(meta)]]


def _sentiment(meta: RecordingMetadata, services: StageModels, store: RecordingStore) -> dict[str, Any]:
    return {"sentiment": services.analyzer.sentiment.analyze(_text(meta), _turns(meta))}


def _outcome_inputs(meta: RecordingMetadata) -> Any:
    detail = meta.outcome_detail
    recorder = detail.source == "recorder" if detail else meta.outcome.value != "unknown"
    given = meta.outcome.value if recorder else None  # unchanged by the stage's own inference
    return [*_analysis_inputs(meta), given]


def _intent(meta: RecordingMetadata, services: StageModels, store: RecordingStore) -> dict[str, Any]:
    """Intent, and the call's outcome: the recorder's when given, else inferred from the last turns."""
    from callpipe.analysis.outcome import call_outcome

    text, turns = _text(meta), _turns(meta)
    outcome = call_outcome(meta.outcome, meta.outcome_detail, text, turns)
    return {
        "intent": services.analyzer.intent.analyze(text, turns),
        "outcome": outcome.label,
        "outcome_detail": outcome,
    }


def _entities(meta: RecordingMetadata, services: StageModels, store: RecordingStore) -> dict[str, Any]:
    from callpipe.analysis.entities import extract_entities

    return {"entities": extract_entities(_text(meta), meta.timestamp.date())}


def _topics(meta: RecordingMetadata, services: StageModels, store: RecordingStore) -> dict[str, Any]:
    return {"topics": services.analyzer.topics.analyze(_text(meta), _turns(meta))}


@dataclass(frozen=True)
class StageSpec:
    """One offline stage: its version, the input it depends on, and its function."""

    version: str
    inputs: Callable[[RecordingMetadata], Any]
    run: StageFn


STAGES: dict[str, StageSpec] = {
    "stt": StageSpec("3", _stt_inputs, _stt),  # 3: mono calls diarized by voice
    "correction": StageSpec("2", _correction_inputs, _correction),
    "sentiment": StageSpec("2", _analysis_inputs, _sentiment),
    "intent": StageSpec("3", _outcome_inputs, _intent),  # 3: also the call's outcome
    "entities": StageSpec("2", _analysis_inputs, _entities),
    "topics": StageSpec("2", _analysis_inputs, _topics),
}
