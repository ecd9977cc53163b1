"""Offline hybrid correction: exact dictionary fixes, then phonetic and vector candidates, scored.

1. **exact**: the online confusion dictionary (``ConfusionDictionary``) with the same context
   rules as ``callpipe.recorder.online``; offline the confidence bar is a little higher,
   ``max(entry threshold or 0.7, 0.8)`` (``OFFLINE_EXACT_THRESHOLD``): with the whole call
   available there is time to fix a few more known confusions, and the context rules still
   guard every fix.
2. **phonetic**: words the recogniser was unsure of (confidence < 0.9) are compared with the
   domain lexicon by Spanish phonetic key and jellyfish distances (:mod:`.phonetic`); FAISS
   over key n-grams proposes the lexicon terms to compare (:mod:`.vector`).
3. **vector**: FAISS over character n-grams (and, with ``use_embeddings=True``, over e5
   sentence embeddings) finds the domain phrases a stretch around the word resembles; aligning
   the phrase with the transcript proposes the phrase word that stands where the doubtful word
   is ("el recibo de la lu" -> "luz").

:mod:`.scorer` weighs every candidate (confidence, distances, Spanish word frequency, phrase
context) and a word changes only when the evidence clears the margin; a candidate that needed
the phrase context to pass is reported as ``vector``, otherwise as ``phonetic``. Numbers and
probable names (Title-case words inside a sentence) are never touched. Unknown confidences
(no list, or a list that cannot be aligned) mean no change at all, as online.
``Correction.confidence`` is, as online, the recogniser's confidence in the replaced word(s);
the scorer's verdict is in ``evidence["score"]`` (with distances, key, frequencies, phrase
context and the ranked candidate list).

faiss (and the embedding model, when enabled) load on the first correction that needs them,
once per :class:`HybridCorrector`; :func:`process_offline` uses one cached instance per process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from callpipe.correction.candidates import CandidateFinder, Edit
from callpipe.correction.domain_lexicon import DomainLexicon
from callpipe.correction.scorer import Scorer, ScorerWeights
from callpipe.recorder.dictionary import ConfusionDictionary, Token, tokenize
from callpipe.recorder.online import OnlineCorrectionPipeline, align_confidences, apply_case
from callpipe.schema import Correction

if TYPE_CHECKING:
    from callpipe.recorder.online import ConfidenceItem

OFFLINE_EXACT_THRESHOLD = 0.8
"""Exact fixes apply below ``max(entry threshold or the online 0.7, this)``."""
ONLINE_DEFAULT_THRESHOLD = 0.7


@dataclass(frozen=True, slots=True)
class OfflineCorrectionResult:
    """What :func:`process_offline` returns; :meth:`to_dict` has the online result's keys."""

    corrected_text: str
    corrections: list[Correction]
    processing_time_ms: float
    needs_clarification: bool = False
    clarification_reason: str | None = None
    confidence_alignment: str = "missing"
    conversation_id: str | None = field(default=None, compare=False)
    token_sources: tuple[int, ...] = field(default=(), compare=False)
    """For each whitespace token of ``corrected_text``, the index of the input token it came from
    (every word of a replacement points at the first token it replaced)."""

    def to_dict(self) -> dict[str, Any]:
        """Same keys as ``OnlineCorrectionPipeline.correct``, ``processing_mode`` ``"offline"``."""
        return {
            "corrected_text": self.corrected_text,
            "corrections_made": [c.model_dump(mode="json") for c in self.corrections],
            "needs_clarification": self.needs_clarification,
            "clarification_reason": self.clarification_reason,
            "processing_mode": "offline",
            "processing_time_ms": self.processing_time_ms,
            "confidence_alignment": self.confidence_alignment,
        }


class HybridCorrector:
    """Holds the dictionary, lexicon, scorer and (lazily) the FAISS indexes and embedder."""

    def __init__(
        self,
        dictionary: ConfusionDictionary | None = None,
        lexicon: DomainLexicon | None = None,
        weights: ScorerWeights | None = None,
        exact_threshold: float = OFFLINE_EXACT_THRESHOLD,
        use_embeddings: bool = False,
    ) -> None:
        """Defaults: the shipped dictionary and lexicon (plus their environment extensions).

        ``use_embeddings`` adds e5 sentence embeddings to the phrase retrieval. Off by default:
        on the dev set it changed no decision and cost time (see ``benchmarks/correction_eval.py``).
        """
        if not 0.0 <= exact_threshold <= 1.0:
            raise ValueError(f"exact_threshold must be in [0, 1], got {exact_threshold!r}")
        self.dictionary = dictionary if dictionary is not None else ConfusionDictionary.load_default()
        self.lexicon = lexicon if lexicon is not None else DomainLexicon.load_default()
        self.scorer = Scorer(weights)
        self.exact_threshold = exact_threshold
        self.use_embeddings = use_embeddings
        # Clarification only: a threshold of 0 means this pipeline never corrects anything.
        self._clarifier = OnlineCorrectionPipeline(self.dictionary, correction_threshold=0.0)
        self._finder: CandidateFinder | None = None
        self._lock = threading.Lock()

    def finder(self) -> CandidateFinder:
        """The candidate finder, built (FAISS indexes, phrase embeddings) on first call."""
        with self._lock:
            if self._finder is None:
                self._finder = CandidateFinder(self.lexicon, self.scorer, self.use_embeddings)
            return self._finder

    def process(
        self,
        text: str,
        word_confidences: Sequence[ConfidenceItem] | None = None,
        audio_path: str | Path | None = None,
        conversation_id: str | None = None,
    ) -> OfflineCorrectionResult:
        """Correct ``text`` whose whitespace tokens ``word_confidences`` describe.

        ``word_confidences`` items are dicts (``word``, ``confidence`` or ``probability``),
        ``WordConfidence`` objects or bare numbers, aligned as online does. ``audio_path`` and
        ``conversation_id`` are accepted for tracing only: correction works on the text
        (re-transcription belongs to ``callpipe.stt``). Raises ``TypeError`` for a non-str text
        and ``InvalidConfidenceError`` for a confidence outside [0, 1].
        """
        started = perf_counter_ns()
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        tokens = tokenize(text)
        confidences, alignment = align_confidences(tokens, word_confidences)
        edits = self._exact(tokens, confidences)
        locked = {k for e in edits for k in range(e.start, e.end)}
        if any(c is not None and c < self.scorer.weights.max_confidence for c in confidences):
            edits += self.finder().find(tokens, confidences, locked)
        edits.sort(key=lambda e: e.start)
        corrected, out_confidences, sources = _apply(tokens, confidences, edits, text)
        clarification = self._clarifier.correct(corrected, out_confidences)
        corrections = [
            Correction(
                original=" ".join(t.core for t in tokens[e.start : e.end]),
                corrected=e.replacement,
                method=e.method,
                position=e.start,
                confidence=e.confidence,
                evidence=e.evidence,
            )
            for e in edits
        ]
        return OfflineCorrectionResult(
            corrected_text=corrected,
            corrections=corrections,
            processing_time_ms=(perf_counter_ns() - started) / 1e6,
            needs_clarification=clarification["needs_clarification"],
            clarification_reason=clarification["clarification_reason"],
            confidence_alignment=alignment,
            conversation_id=conversation_id,
            token_sources=tuple(sources),
        )

    def _exact(self, tokens: Sequence[Token], confidences: Sequence[float | None]) -> list[Edit]:
        """Leftmost-longest dictionary fixes under the offline threshold, context rules as online."""
        edits: list[Edit] = []
        i = 0
        while i < len(tokens):
            chosen = None
            for entry in self.dictionary.entries_for(tokens[i].norm):
                end = i + len(entry.wrong_words)
                if not self.dictionary.matches(tokens, i, entry):
                    continue
                span = confidences[i:end]
                if any(c is None for c in span):
                    continue
                confidence = min(c for c in span if c is not None)
                base = ONLINE_DEFAULT_THRESHOLD if entry.threshold is None else entry.threshold
                threshold = max(base, self.exact_threshold)
                if confidence >= threshold:
                    continue
                evidence = self.dictionary.context_evidence(tokens, i, end, entry)
                if evidence is not None:
                    evidence["threshold"] = threshold
                    chosen = Edit(i, end, entry.right, "exact", confidence, 1.0, evidence)
                    break
            if chosen is None:
                i += 1
            else:
                edits.append(chosen)
                i = chosen.end
        return edits


def _apply(
    tokens: Sequence[Token], confidences: Sequence[float | None], edits: Sequence[Edit], text: str
) -> tuple[str, list[float | None], list[int]]:
    """The corrected text (the input itself when nothing changed), one confidence per output token
    and the input token each output token came from."""
    if not edits:
        return text, list(confidences), list(range(len(tokens)))
    pieces: list[str] = []
    out_conf: list[float | None] = []
    sources: list[int] = []
    i = 0
    for edit in edits:
        for k in range(i, edit.start):
            pieces.append(tokens[k].text)
            out_conf.append(confidences[k])
            sources.append(k)
        span = tokens[edit.start : edit.end]
        replacement = apply_case(span, edit.replacement)
        edit.replacement = replacement
        words = replacement.split()
        words[0] = span[0].lead + words[0]
        words[-1] = words[-1] + span[-1].trail
        pieces.extend(words)
        out_conf.extend([edit.confidence] * len(words))
        sources.extend([edit.start] * len(words))
        i = edit.end
    for k in range(i, len(tokens)):
        pieces.append(tokens[k].text)
        out_conf.append(confidences[k])
        sources.append(k)
    return " ".join(pieces), out_conf, sources


@cache
def get_default_corrector() -> HybridCorrector:
    """The process-wide corrector (shipped data + environment extensions), built on first use."""
    return HybridCorrector()


def process_offline(
    text: str,
    word_confidences: Sequence[ConfidenceItem] | None = None,
    audio_path: str | Path | None = None,
    conversation_id: str | None = None,
) -> OfflineCorrectionResult:
    """Correct one transcript with the cached default :class:`HybridCorrector` (see its ``process``)."""
    return get_default_corrector().process(text, word_confidences, audio_path, conversation_id)


class CorrectionPipeline(OnlineCorrectionPipeline):
    """The seed's pipeline API: online ``correct``/``process_online`` plus ``process_offline``.

    It lives on the offline side so that :mod:`callpipe.recorder` imports nothing offline.
    """

    async def process_offline(
        self,
        transcription: str,
        word_confidences: Sequence[ConfidenceItem] | None = None,
        audio_path: str | None = None,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """The offline hybrid correction (:func:`process_offline`), same result keys as ``correct``.

        Runs in a worker thread because it can take milliseconds to seconds.
        """
        result = await asyncio.to_thread(
            process_offline,
            transcription,
            word_confidences,
            audio_path=audio_path,
            conversation_id=conversation_id,
        )
        return result.to_dict()


@cache
def get_correction_pipeline() -> CorrectionPipeline:
    """The process-wide seed pipeline (online dictionary + offline hybrid), built on first use."""
    return CorrectionPipeline()
