"""The offline stages as data: what each reads (its fingerprint input), its version, its run.

A stage function takes a recording's metadata and the loaded :class:`Services` and returns a
patch (top-level metadata fields to replace). Bump a stage's ``version`` whenever its output for
the same input can change: recordings processed by an older version become stale and are redone
by the next run, and the Dagster asset's ``code_version`` changes with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callpipe.schema import ProcessingMode, RecordingMetadata, Transcription
from callpipe.storage import RecordingStore

StageFn = Callable[[RecordingMetadata, "Services", RecordingStore], dict[str, Any]]


class Services:
    """Models a process loads once, each on first use: transcriber, corrector, analyzer.

    Thread-safe; one instance per process (the Dagster resources hold one). A run whose
    recordings need no re-transcription never loads Whisper.
    """

    def __init__(self, transcriber_settings: Any = None, retranscribe_threshold: float | None = None) -> None:
        self._lock = threading.Lock()
        self._transcriber: Any = None
        self._corrector: Any = None
        self._analyzer: Any = None
        self.transcriber_settings = transcriber_settings
        self.retranscribe_threshold = retranscribe_threshold

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
        [(w.word, w.confidence) for w in live.word_confidences],
    ]


def _stt(meta: RecordingMetadata, services: Services, store: RecordingStore) -> dict[str, Any]:
    """Keep the live transcript when its estimated WER is low, else re-transcribe (premium) and
    keep whichever transcript is estimated better; turns come from the re-transcription."""
    from callpipe.stt import estimate_wer, needs_retranscription, transcribe_conversation
    from callpipe.stt.turns import vad_metrics

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
    audio_path = store.local_audio_path(meta.recording_id)
    if not needs_retranscription(live_wer, services.retranscribe_threshold):
        return {
            "online_transcription": live,
            "transcription": kept,
            "conversation_metrics": vad_metrics(str(audio_path)),
        }
    conversation = transcribe_conversation(services.transcriber, str(audio_path), premium=True)
    segments = [s for channel in conversation.channels for s in channel.segments]
    new_wer = estimate_wer(conversation.word_confidences, segments)
    patch: dict[str, Any] = {
        "online_transcription": live,
        "turns": conversation.turns,
        "conversation_metrics": conversation.metrics,
        "transcription": kept,
    }
    if conversation.text.strip() and new_wer <= live_wer:
        words = conversation.word_confidences
        patch["transcription"] = Transcription(
            text=conversation.text,
            language=conversation.channels[0].language if conversation.channels else "es",
            confidence=round(sum(w.confidence for w in words) / len(words), 4) if words else None,
            word_confidences=words,
            estimated_wer=round(new_wer, 4),
            retranscribed=True,
        )
    return patch


def _text(meta: RecordingMetadata) -> str:
    return meta.transcription.corrected_text or meta.transcription.text


def _correction_inputs(meta: RecordingMetadata) -> Any:
    return [meta.transcription.text, [(w.word, w.confidence) for w in meta.transcription.word_confidences]]


def _correction(meta: RecordingMetadata, services: Services, store: RecordingStore) -> dict[str, Any]:
    result = services.corrector.process(meta.transcription.text, meta.transcription.word_confidences)
    transcription = meta.transcription.model_copy(
        update={
            "corrected_text": result.corrected_text,
            "corrections_made": result.corrections,
            "correction_method": ProcessingMode.OFFLINE,
        }
    )
    return {"transcription": transcription}


def _analysis_inputs(meta: RecordingMetadata) -> Any:
    return [_text(meta), [(t.speaker, t.text) for t in meta.turns]]


def _sentiment(meta: RecordingMetadata, services: Services, store: RecordingStore) -> dict[str, Any]:
    return {"sentiment": services.analyzer.sentiment.analyze(_text(meta), meta.turns)}


def _intent(meta: RecordingMetadata, services: Services, store: RecordingStore) -> dict[str, Any]:
    return {"intent": services.analyzer.intent.analyze(_text(meta), meta.turns)}


def _entities(meta: RecordingMetadata, services: Services, store: RecordingStore) -> dict[str, Any]:
    from callpipe.analysis.entities import extract_entities

    return {"entities": extract_entities(_text(meta), meta.timestamp.date())}


def _topics(meta: RecordingMetadata, services: Services, store: RecordingStore) -> dict[str, Any]:
    return {"topics": services.analyzer.topics.analyze(_text(meta), meta.turns)}


@dataclass(frozen=True)
class StageSpec:
    """One offline stage: its version, the input it depends on, and its function."""

    version: str
    inputs: Callable[[RecordingMetadata], Any]
    run: StageFn


STAGES: dict[str, StageSpec] = {
    "stt": StageSpec("1", _stt_inputs, _stt),
    "correction": StageSpec("1", _correction_inputs, _correction),
    "sentiment": StageSpec("2", _analysis_inputs, _sentiment),
    "intent": StageSpec("2", _analysis_inputs, _intent),
    "entities": StageSpec("2", _analysis_inputs, _entities),
    "topics": StageSpec("1", _analysis_inputs, _topics),
}
