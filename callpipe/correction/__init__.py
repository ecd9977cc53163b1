"""Offline hybrid correction of Spanish call transcripts: exact + phonetic + vector, scored.

``process_offline(text, word_confidences)`` returns an :class:`OfflineCorrectionResult`; see
:mod:`callpipe.correction.hybrid`. ``get_correction_pipeline().process_offline(...)`` is the seed's
async API (the online pipeline plus the offline correction). Importing this package loads no
model: faiss, jellyfish, wordfreq and the e5 embedder are imported on the first correction that
needs them.
"""

from __future__ import annotations

from callpipe.correction.domain_lexicon import DomainLexicon, DomainPhrase, LexiconFileError, LexiconTerm
from callpipe.correction.hybrid import (
    OFFLINE_EXACT_THRESHOLD,
    CorrectionPipeline,
    HybridCorrector,
    OfflineCorrectionResult,
    get_correction_pipeline,
    get_default_corrector,
    process_offline,
)
from callpipe.correction.phonetic import phonetic_key, word_distance
from callpipe.correction.scorer import CandidateFeatures, Scorer, ScorerWeights

__all__ = [
    "OFFLINE_EXACT_THRESHOLD",
    "CandidateFeatures",
    "CorrectionPipeline",
    "DomainLexicon",
    "DomainPhrase",
    "HybridCorrector",
    "LexiconFileError",
    "LexiconTerm",
    "OfflineCorrectionResult",
    "Scorer",
    "ScorerWeights",
    "get_correction_pipeline",
    "get_default_corrector",
    "phonetic_key",
    "process_offline",
    "word_distance",
]
