"""Propose phonetic and vector candidates for the doubtful words of one transcript and score them.

A word is *doubtful* when its confidence is known and below the scorer's ``max_confidence``,
it is made of letters, it is not a number and it is not a probable name (a Title-case word
inside a sentence). For each doubtful word (and each pair of adjacent doubtful
words, which ASR often splits from one: "vi sum" -> "bizum"):

- lexicon terms whose phonetic key is near (FAISS over key n-grams, then jellyfish);
- domain phrases near the words around it (FAISS over spelling n-grams, and over e5
  embeddings when enabled), aligned with the transcript: the phrase word that stands where the
  doubtful word is becomes a candidate, and the exactly matching neighbours are its context.

Context counts content words fully and frequent function words (Zipf >= 6: "de", "la") a
quarter; it needs a match right next to the word, and what the original word already gets
from a phrase is subtracted, so a phrase that fits the original keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from callpipe.correction.domain_lexicon import DomainLexicon, DomainPhrase
from callpipe.correction.phonetic import phonetic_key, sound_similarity, word_distance
from callpipe.correction.scorer import CandidateFeatures, Scorer, is_number_word, zipf
from callpipe.correction.vector import FlatIndex, align_phrase, default_embedders, ngram_vectors
from callpipe.correction.vocabulary import default_vocabulary
from callpipe.recorder.dictionary import Token

LEXICON_K = 8
PHRASE_K = 4
WINDOW = 4  # words on each side of a doubtful word that phrases are aligned with
FUNCTION_ZIPF = 6.0
FUNCTION_WEIGHT = 0.25
CONTEXT_FULL = 2.0  # weighted matches that make the context 1.0
_SENTENCE_END = ".?!…"


@dataclass(slots=True)
class Edit:
    """One accepted change: tokens ``start:end`` become ``replacement``."""

    start: int
    end: int
    replacement: str
    method: str
    confidence: float
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Candidate:
    start: int
    span: int
    word: str
    from_lexicon: bool = False
    context: float = 0.0
    semantic: float = 0.0
    phrase: str | None = None
    retrieval: dict[str, float] = field(default_factory=dict)


class CandidateFinder:
    """FAISS indexes over the lexicon and phrases (built once) and the candidate search."""

    def __init__(self, lexicon: DomainLexicon, scorer: Scorer, use_embeddings: bool = False) -> None:
        self.lexicon = lexicon
        self.scorer = scorer
        self._terms = lexicon.terms
        self._phrases: tuple[DomainPhrase, ...] = lexicon.phrases
        self._term_index = FlatIndex(ngram_vectors([t.key for t in self._terms]))
        self._phrase_index = FlatIndex(ngram_vectors([" ".join(p.folds) for p in self._phrases]))
        self._embed = None
        self._phrase_vectors: np.ndarray | None = None
        self._semantic_index: FlatIndex | None = None
        if use_embeddings:
            self._embed, _ = default_embedders()
            self._phrase_vectors = self._embed([p.text for p in self._phrases])
            self._semantic_index = FlatIndex(self._phrase_vectors)

    def find(
        self, tokens: Sequence[Token], confidences: Sequence[float | None], locked: set[int]
    ) -> list[Edit]:
        """Accepted, non-overlapping edits for the doubtful words (best score first wins)."""
        doubtful = [self._doubtful(tokens, confidences, i, locked) for i in range(len(tokens))]
        positions = [i for i, d in enumerate(doubtful) if d]
        if not positions:
            return []
        candidates: dict[tuple[int, int, str], _Candidate] = {}
        original_context: dict[int, float] = {}
        self._lexicon_candidates(tokens, positions, doubtful, candidates)
        self._phrase_candidates(tokens, positions, candidates, original_context)
        scored: list[Edit] = []
        alternatives: dict[int, list[dict[str, Any]]] = {}
        for cand in candidates.values():
            if not all(doubtful[cand.start : cand.start + cand.span]):
                continue  # a phrase alignment merged a doubtful word with a sure one
            edit = self._judge(tokens, confidences, cand, original_context.get(cand.start, 0.0))
            heard = " ".join(t.core for t in tokens[edit.start : edit.end])
            alternatives.setdefault(cand.start, []).append(
                {"original": heard, "word": cand.word, "score": round(edit.score, 4)}
            )
            if edit.method != "refused":
                scored.append(edit)
        taken: set[int] = set()
        accepted: list[Edit] = []
        for edit in sorted(scored, key=lambda e: -e.score):
            span = set(range(edit.start, edit.end))
            if span & taken:
                continue
            taken |= span
            ranked = sorted(alternatives[edit.start], key=lambda a: -a["score"])
            edit.evidence["candidates"] = ranked[:5]
            accepted.append(edit)
        return accepted

    def _doubtful(
        self, tokens: Sequence[Token], confidences: Sequence[float | None], i: int, locked: set[int]
    ) -> bool:
        conf = confidences[i]
        token = tokens[i]
        if i in locked or conf is None or conf >= self.scorer.weights.max_confidence:
            return False
        if not token.core or not token.core.replace("-", "").isalpha():
            return False
        if is_number_word(token.core):
            return False
        return not probable_name(tokens, i)

    def _lexicon_candidates(
        self,
        tokens: Sequence[Token],
        positions: list[int],
        doubtful: list[bool],
        out: dict[tuple[int, int, str], _Candidate],
    ) -> None:
        queries = [(i, 1, tokens[i].fold) for i in positions]
        queries += [
            (i, 2, tokens[i].fold + tokens[i + 1].fold)
            for i in positions
            if i + 1 < len(tokens) and doubtful[i + 1] and _mergeable(tokens[i], tokens[i + 1])
        ]
        hits = self._term_index.search(ngram_vectors([phonetic_key(q) for _, _, q in queries]), LEXICON_K)
        for (i, span, text), row in zip(queries, hits, strict=True):
            for term_id, cosine in row:
                term = self._terms[term_id]
                if span == 1 and term.fold == text:
                    continue
                cand = out.setdefault((i, span, term.fold), _Candidate(i, span, term.form))
                cand.from_lexicon = True
                cand.retrieval["key_ngram_cosine"] = round(cosine, 4)

    def _phrase_candidates(
        self,
        tokens: Sequence[Token],
        positions: list[int],
        out: dict[tuple[int, int, str], _Candidate],
        original_context: dict[int, float],
    ) -> None:
        folds = [t.fold for t in tokens]
        n = len(tokens)
        queries, owners = [], []
        for i in positions:
            for lo, hi in ((i - 2, i + 3), (i - 3, i + 1), (i, i + 4)):
                queries.append(" ".join(folds[max(0, lo) : min(n, hi)]))
                owners.append(i)
        found: dict[int, dict[int, float]] = {i: {} for i in positions}
        for i, row in zip(owners, self._phrase_index.search(ngram_vectors(queries), PHRASE_K), strict=True):
            for pid, cosine in row:
                found[i][pid] = max(found[i].get(pid, 0.0), cosine)
        window_vectors = None
        if self._embed is not None and self._semantic_index is not None:
            texts = [" ".join(t.core for t in tokens[max(0, i - WINDOW) : i + WINDOW + 1]) for i in positions]
            window_vectors = self._embed(texts)
            for i, row in zip(positions, self._semantic_index.search(window_vectors, PHRASE_K), strict=True):
                for pid, _ in row:
                    found[i].setdefault(pid, 0.0)
        for k, i in enumerate(positions):
            lo, hi = max(0, i - WINDOW), min(n, i + WINDOW + 2)
            window = folds[lo:hi]
            for pid, ngram_cosine in found[i].items():
                phrase = self._phrases[pid]
                alignment = align_phrase(window, i - lo, phrase.folds, sound_similarity)
                if alignment is None or alignment.target is None or not alignment.adjacent:
                    continue
                weights = [_weight(phrase.folds[j]) for j in alignment.matched]
                if max(weights, default=0.0) < 1.0:
                    continue  # function words alone ("de la") are no context
                context = min(1.0, sum(weights) / CONTEXT_FULL)
                word = phrase.words[alignment.target]
                if alignment.span == 1 and phrase.folds[alignment.target] == folds[i]:
                    original_context[i] = max(original_context.get(i, 0.0), context)
                    continue
                if (
                    zipf(phrase.folds[alignment.target]) >= FUNCTION_ZIPF
                    or len(phrase.folds[alignment.target]) < 3
                ):
                    continue  # only content words are proposed from phrases
                semantic = 0.0
                if window_vectors is not None and self._phrase_vectors is not None:
                    semantic = float(window_vectors[k] @ self._phrase_vectors[pid])
                key = (i, alignment.span, phrase.folds[alignment.target])
                cand = out.setdefault(key, _Candidate(i, alignment.span, word))
                if context > cand.context:
                    cand.context, cand.semantic, cand.phrase = context, semantic, phrase.text
                    cand.retrieval["phrase_ngram_cosine"] = round(ngram_cosine, 4)
                    cand.retrieval["context_cost"] = alignment.cost

    def _judge(
        self,
        tokens: Sequence[Token],
        confidences: Sequence[float | None],
        cand: _Candidate,
        original_context: float,
    ) -> Edit:
        span = tokens[cand.start : cand.start + cand.span]
        original = " ".join(t.core for t in span)  # frequency and lexicon look at the words as heard
        confidence = min(c for c in confidences[cand.start : cand.start + cand.span] if c is not None)
        distance = word_distance(original.replace(" ", ""), cand.word)
        context = max(0.0, cand.context - original_context)
        if cand.span == 2 and not _uses_both(span, cand.word, distance.similarity):
            distance = replace(distance, key_jaro_winkler=0.0, spelling_jaro_winkler=0.0)
        features = CandidateFeatures(
            original=original,
            candidate=cand.word,
            confidence=confidence,
            similarity=distance.similarity,
            context=context,
            semantic=cand.semantic if context > 0 else 0.0,
            original_in_lexicon=original in self.lexicon,
        )
        decision = self.scorer.decide(features)
        method = "refused"
        rival = None
        if decision.accepted:
            method = "vector" if (decision.needs_context or not cand.from_lexicon) else "phonetic"
            if method == "phonetic":  # no phrase supports it: an ordinary word may sound closer
                rival = default_vocabulary().rival(original.replace(" ", ""), cand.word, distance.similarity)
                if rival is not None:
                    method = "refused"
        evidence: dict[str, Any] = {
            **distance.as_evidence(),
            "frequency": {"original": features.zipf_original, "candidate": features.zipf_candidate},
            "asr_confidence": round(confidence, 4),
            "score": round(decision.score, 4),
            "margin": self.scorer.weights.margin,
            **cand.retrieval,
        }
        if rival is not None:
            evidence["closer_general_word"] = rival
        if cand.phrase is not None:
            evidence.update(
                phrase=cand.phrase,
                context=round(context, 4),
                original_context=round(original_context, 4),
                embedding_similarity=round(cand.semantic, 4),
            )
        return Edit(
            cand.start, cand.start + cand.span, cand.word, method, confidence, decision.score, evidence
        )


def _mergeable(first: Token, second: Token) -> bool:
    """Whether two heard words may stand for one word: no punctuation between, no function word."""
    return not first.trail and not second.lead and max(zipf(first.fold), zipf(second.fold)) < FUNCTION_ZIPF


def _uses_both(span: Sequence[Token], word: str, joined_similarity: float) -> bool:
    """Whether ``word`` stands for both heard words, not just for one of them ("han cobrado")."""
    if not _mergeable(span[0], span[1]):
        return False
    return all(word_distance(t.core, word).similarity + 0.05 < joined_similarity for t in span)


def _weight(folded: str) -> float:
    return FUNCTION_WEIGHT if zipf(folded) >= FUNCTION_ZIPF else 1.0


def probable_name(tokens: Sequence[Token], i: int) -> bool:
    """A Title-case word inside a sentence: probably a name, never corrected."""
    token = tokens[i]
    sentence_start = i == 0 or any(ch in _SENTENCE_END for ch in tokens[i - 1].trail)
    titled = token.core[:1].isupper() and not token.core.isupper()
    return titled and not sentence_start
