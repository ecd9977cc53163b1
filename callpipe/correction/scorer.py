"""Decide whether a phonetic or vector candidate replaces a transcript word.

A candidate is described by :class:`CandidateFeatures`; :class:`Scorer` turns them into one
score and accepts the candidate only when the score clears the margin *and* none of the hard
rules object:

- the recogniser's confidence must be known and below ``max_confidence`` (0.9);
- the candidate must sound and look like the word (``min_similarity``, lower when a domain
  phrase supports it: ``min_similarity_in_context``);
- a word Spanish speakers use often (Zipf frequency >= ``common_zipf``, from ``wordfreq``) or
  a domain term is kept unless a domain phrase around it supports the change (a correct,
  common word that fits must not become a rare lexicon term: "cuánto cuesta" stays);
- a word of one or two letters changes only with phrase context ("lu" -> "luz");
- numbers (digits or number words) are never produced nor replaced (``is_number_word``).

Score (weights in :class:`ScorerWeights`, tuned on ``correction_dev.jsonl`` only)::

    bias + w_conf*(1 - confidence) + w_sim*similarity' + w_ctx*context + w_sem*semantic'
         - w_common*zipf(original)/7 + w_cand*zipf(candidate)/7

where ``similarity'`` rescales [min_similarity, 1] to [0, 1], ``context`` is the share of the
phrase's other words matched exactly (0 unless one of them is right next to the word) and
``semantic'`` rescales the e5 cosine of window and phrase from [0.8, 1] to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from callpipe.correction.phonetic import strip_accents

_NUMBER_TEXT = (
    "cero uno una un dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince "
    "dieciseis diecisiete dieciocho diecinueve veinte veintiuno veintiun veintidos veintitres "
    "veinticuatro veinticinco veintiseis veintisiete veintiocho veintinueve treinta cuarenta "
    "cincuenta sesenta setenta ochenta noventa cien ciento doscientos trescientos cuatrocientos "
    "quinientos seiscientos setecientos ochocientos novecientos doscientas trescientas "
    "cuatrocientas quinientas seiscientas setecientas ochocientas novecientas mil millon millones "
    "primero primera segundo segunda tercero tercera medio media coma"
)
NUMBER_WORDS = frozenset(_NUMBER_TEXT.split())
SHORT_WORD = 2


def is_number_word(word: str) -> bool:
    """Whether a word is a number (digits or a Spanish number word; case and accents ignored)."""
    folded = strip_accents(word)
    return folded in NUMBER_WORDS or any(ch.isdigit() for ch in folded)


@lru_cache(maxsize=65536)
def zipf(word: str) -> float:
    """Spanish Zipf frequency of ``word`` (0 = unknown, 7 = "de"); wordfreq is imported on first use."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "es")


@dataclass(frozen=True, slots=True)
class CandidateFeatures:
    """Everything the scorer weighs about replacing one word (or two merged words) by ``candidate``."""

    original: str
    candidate: str
    confidence: float
    similarity: float
    context: float = 0.0
    semantic: float = 0.0
    original_in_lexicon: bool = False

    @property
    def zipf_original(self) -> float:
        return zipf(self.original.lower())

    @property
    def zipf_candidate(self) -> float:
        return zipf(self.candidate.lower())


@dataclass(frozen=True, slots=True)
class ScorerWeights:
    """Weights of the score and its thresholds (defaults tuned on the dev set)."""

    bias: float = -0.4
    conf: float = 1.0
    sim: float = 1.0
    ctx: float = 1.0
    sem: float = 0.0
    common: float = 1.0
    cand: float = 0.0
    margin: float = 0.0
    max_confidence: float = 0.9
    min_similarity: float = 0.8
    min_similarity_in_context: float = 0.7
    common_zipf: float = 4.0


@dataclass(frozen=True, slots=True)
class Decision:
    """The scorer's verdict on one candidate; ``rule`` names the hard rule that refused it, if any."""

    accepted: bool
    score: float
    rule: str | None = None
    needs_context: bool = False


class Scorer:
    """Weighs :class:`CandidateFeatures`; see the module docstring."""

    def __init__(self, weights: ScorerWeights | None = None) -> None:
        self.weights = weights or ScorerWeights()

    def score(self, f: CandidateFeatures) -> float:
        """The weighted evidence for the change (higher = more in favour)."""
        w = self.weights
        sim = (f.similarity - w.min_similarity) / (1.0 - w.min_similarity)  # negative below the bar
        sem = min(max((f.semantic - 0.8) / 0.2, 0.0), 1.0)
        return (
            w.bias
            + w.conf * (1.0 - f.confidence)
            + w.sim * sim
            + w.ctx * f.context
            + w.sem * sem
            - w.common * f.zipf_original / 7.0
            + w.cand * f.zipf_candidate / 7.0
        )

    def decide(self, f: CandidateFeatures) -> Decision:
        """Accept or refuse; ``needs_context`` says the phrase context was needed to accept."""
        w = self.weights
        score = self.score(f)
        rule = self._refusal(f)
        if rule is not None:
            return Decision(False, score, rule)
        if score < w.margin:
            return Decision(False, score, "margin")
        if f.context > 0:
            alone = replace(f, context=0.0, semantic=0.0)
            needs = self._refusal(alone) is not None or self.score(alone) < w.margin
            return Decision(True, score, None, needs)
        return Decision(True, score)

    def _refusal(self, f: CandidateFeatures) -> str | None:
        w = self.weights
        if f.confidence >= w.max_confidence:
            return "high_confidence"
        if f.similarity < (w.min_similarity_in_context if f.context > 0 else w.min_similarity):
            return "not_similar"
        if is_number_word(f.original) or is_number_word(f.candidate):
            return "number"
        if f.context <= 0 and (f.original_in_lexicon or f.zipf_original >= w.common_zipf):
            return "common_word_without_context"
        if f.context <= 0 and len(f.original.replace(" ", "")) <= SHORT_WORD:
            return "short_word_without_context"
        return None
