"""Online stage of callpipe: live transcript correction (and, from recorder.py, saving calls).

Importing this package pulls in no Dagster, torch or faster-whisper: it runs inside the
voice bot's process. Use :func:`get_correction_pipeline` for the cached pipeline.
"""

from __future__ import annotations

from callpipe.recorder.dictionary import (
    ENV_FILE,
    ConfusionDictionary,
    ConfusionEntry,
    ConfusionFileError,
    Fix,
    Token,
    fold,
    load_confusions_file,
    tokenize,
)
from callpipe.recorder.online import (
    CLARIFICATION_THRESHOLD_ENV,
    CORRECTION_THRESHOLD_ENV,
    CorrectionConfigError,
    InvalidConfidenceError,
    OnlineCorrectionPipeline,
    align_confidences,
    get_correction_pipeline,
)
from callpipe.recorder.recorder import Recorder, RecordResult

__all__ = [
    "CLARIFICATION_THRESHOLD_ENV",
    "CORRECTION_THRESHOLD_ENV",
    "ENV_FILE",
    "ConfusionDictionary",
    "ConfusionEntry",
    "ConfusionFileError",
    "CorrectionConfigError",
    "Fix",
    "InvalidConfidenceError",
    "OnlineCorrectionPipeline",
    "RecordResult",
    "Recorder",
    "Token",
    "align_confidences",
    "fold",
    "get_correction_pipeline",
    "load_confusions_file",
    "tokenize",
]
