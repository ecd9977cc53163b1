"""Offline hybrid correction of Spanish call transcripts: exact + phonetic + vector, scored.

``process_offline(text, word_confidences)`` returns an :class:`OfflineCorrectionResult`; see
:mod:`callpipe.correction.hybrid`. Importing this package loads no model: faiss, jellyfish,
wordfreq and the e5 embedder are imported on the first correction that needs them.
"""

from __future__ import annotations

from callpipe.correction.hybrid import (
    OFFLINE_EXACT_THRESHOLD,
    HybridCorrector,
    OfflineCorrectionResult,
    get_default_corrector,
    process_offline,
)
from callpipe.correction.lexicon import DomainLexicon, DomainPhrase, LexiconFileError, LexiconTerm
from callpipe.correction.phonetic import phonetic_key, word_distance
from callpipe.correction.scorer import CandidateFeatures, Scorer, ScorerWeights

__all__ = [
    "OFFLINE_EXACT_THRESHOLD",
    "CandidateFeatures",
    "DomainLexicon",
    "DomainPhrase",
    "HybridCorrector",
    "LexiconFileError",
    "LexiconTerm",
    "OfflineCorrectionResult",
    "Scorer",
    "ScorerWeights",
    "get_default_corrector",
    "phonetic_key",
    "process_offline",
    "word_distance",
]
