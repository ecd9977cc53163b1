"""Speech-to-text stage: faster-whisper transcription, quality gate, hallucination filter, turns.

Light names (model locator, results, quality gate, WER) import without loading faster-whisper;
``Transcriber`` and the turn functions import it on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from callpipe.openmp import prefer_passive_waiting

prefer_passive_waiting()  # before any submodule loads CTranslate2 (faster-whisper) and its OpenMP runtime

from callpipe.stt.errors import InvalidAudioError, TranscriptionError
from callpipe.stt.models import ModelNotFoundError, locate_model
from callpipe.stt.quality import (
    OFFLINE_RETRANSCRIBE_WER_THRESHOLD,
    drop_hallucinations,
    estimate_wer,
    needs_retranscription,
)
from callpipe.stt.result import DroppedSegment, TranscriptResult, TranscriptSegment, TranscriptWord
from callpipe.stt.wer import normalize_spanish, word_error_rate

if TYPE_CHECKING:
    from callpipe.stt.transcriber import Transcriber, TranscriberSettings
    from callpipe.stt.turns import ConversationTranscript, conversation_metrics, transcribe_conversation

_LAZY = {
    "Transcriber": "callpipe.stt.transcriber",
    "TranscriberSettings": "callpipe.stt.transcriber",
    "ConversationTranscript": "callpipe.stt.turns",
    "conversation_metrics": "callpipe.stt.turns",
    "transcribe_conversation": "callpipe.stt.turns",
}

__all__ = [
    "OFFLINE_RETRANSCRIBE_WER_THRESHOLD",
    "ConversationTranscript",
    "DroppedSegment",
    "InvalidAudioError",
    "ModelNotFoundError",
    "Transcriber",
    "TranscriberSettings",
    "TranscriptResult",
    "TranscriptSegment",
    "TranscriptWord",
    "TranscriptionError",
    "conversation_metrics",
    "drop_hallucinations",
    "estimate_wer",
    "locate_model",
    "needs_retranscription",
    "normalize_spanish",
    "transcribe_conversation",
    "word_error_rate",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'callpipe.stt' has no attribute {name!r}")
