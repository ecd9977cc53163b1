"""Online correction of a live transcript: dictionary fixes gated by ASR confidence.

``get_correction_pipeline().correct(text, word_confidences)`` runs in well under a
millisecond on CPU (see ``benchmarks/online_latency.py``) and imports no model. A word is
replaced only when (1) a dictionary entry matches it, (2) its ASR confidence is below the
threshold (``ONLINE_CORRECTION_THRESHOLD``, default 0.7, or the entry's own) and (3) the
context supports the fix and nothing vetoes it. Separately, a critical value (an amount,
a digit group of an account, card, ID or phone, any spoken number) heard with confidence
below ``ONLINE_CLARIFICATION_THRESHOLD`` (default 0.5) sets ``needs_clarification``.

Word confidences align to the whitespace tokens of the transcript:

- same length: by position;
- different length, and every item carries its word (dicts with ``"word"``,
  ``WordConfidence``, faster-whisper ``Word``): aligned by matching the words in one linear pass
  (:func:`match_words`: equal words pair up, a mismatch resynchronises within a window of
  ``ALIGN_WINDOW`` words), unmatched tokens get no confidence;
- different length and bare numbers: nothing can be aligned safely, so every token is
  treated as unknown;
- a missing confidence (``None``, or no list at all) is unknown.

Unknown confidence is conservative: the word is neither corrected nor flagged.
``confidence_alignment`` in the result says which case applied.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from callpipe.recorder.dictionary import (
    ConfusionDictionary,
    ConfusionEntry,
    Token,
    fold,
    make_token,
    tokenize,
)
from callpipe.settings import Settings, SettingsError

if TYPE_CHECKING:
    from callpipe.schema import WordConfidence

    ConfidenceItem = dict[str, Any] | WordConfidence | float | None

CORRECTION_THRESHOLD_ENV = "ONLINE_CORRECTION_THRESHOLD"
CLARIFICATION_THRESHOLD_ENV = "ONLINE_CLARIFICATION_THRESHOLD"
DEFAULT_CORRECTION_THRESHOLD = 0.7
DEFAULT_CLARIFICATION_THRESHOLD = 0.5


class CorrectionConfigError(ValueError):
    """A threshold setting (argument or environment variable) is not a number in [0, 1]."""


class InvalidConfidenceError(ValueError):
    """A word confidence item has an unsupported type or a value outside [0, 1]."""


def _folded(words: str) -> frozenset[str]:
    return frozenset(fold(w) for w in words.split())


_NUMBER_WORDS = _folded(
    "cero dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince "
    "dieciséis diecisiete dieciocho diecinueve veinte veintiuno veintiún veintiuna veintidós "
    "veintitrés veinticuatro veinticinco veintiséis veintisiete veintiocho veintinueve treinta "
    "cuarenta cincuenta sesenta setenta ochenta noventa cien ciento doscientos doscientas "
    "trescientos trescientas cuatrocientos cuatrocientas quinientos quinientas seiscientos "
    "seiscientas setecientos setecientas ochocientos ochocientas novecientos novecientas mil "
    "millón millones"
)
_ONE = _folded("un una uno")
_CONNECTORS = _folded("y coma con punto")
_CURRENCY = _folded("euro euros € céntimo céntimos dólar dólares peso pesos libras eur")
# Checked in this order against the five words before a number.
_CATEGORIES: tuple[tuple[str, frozenset[str]], ...] = (
    ("número de tarjeta incierto", _folded("tarjeta visa mastercard pin cvv")),
    ("número de cuenta incierto", _folded("cuenta iban ccc entidad swift")),
    ("documento de identidad incierto", _folded("dni nie nif cif documento identidad pasaporte")),
    ("teléfono incierto", _folded("teléfono móvil fijo contacto llamar llamarme llámeme llamadme")),
    (
        "importe incierto",
        _folded(
            "importe pagar pagué pagado pago pagos cobrado cobran cobraron cobrar cargo cargado "
            "factura recibo cuota deuda precio cuesta coste vale transferir transferencia ingresar "
            "ingreso saldo devolver devolución reembolso sacar retirar abonar debo"
        ),
    ),
)
_AMOUNT_LABEL = "importe incierto"
_NUMBER_LABEL = "número incierto"


def _env_threshold(name: str, default: float) -> float:
    """The threshold variable ``name`` from :class:`callpipe.settings.Settings` (``default`` when unset)."""
    try:
        value = getattr(Settings.from_env(only=[name]), name.lower())
    except SettingsError as exc:
        raise CorrectionConfigError(str(exc)) from None
    return default if value is None else float(value)


def _check_threshold(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise CorrectionConfigError(f"{name} must be a number in [0, 1], got {value!r:.40}") from None
    if not 0.0 <= number <= 1.0:
        raise CorrectionConfigError(f"{name} must be a number in [0, 1], got {value!r:.40}")
    return number


def _item_value(item: Any) -> tuple[float | None, str | None]:
    """(confidence, word) of one confidence item; raises InvalidConfidenceError."""
    if item is None:
        return None, None
    word: Any = None
    if isinstance(item, bool):
        raise InvalidConfidenceError(f"word confidence must be a number, got {item!r:.40}")
    if isinstance(item, numbers.Real):
        value: Any = item
    elif isinstance(item, dict):
        value = item.get("confidence", item.get("probability"))
        word = item.get("word")
    elif hasattr(item, "confidence") or hasattr(item, "probability"):
        value = getattr(item, "confidence", None)
        if value is None:
            value = getattr(item, "probability", None)
        word = getattr(item, "word", None)
    else:
        raise InvalidConfidenceError(f"unsupported word confidence item {type(item).__name__}: {item!r:.40}")
    if value is None:
        return None, word if isinstance(word, str) else None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise InvalidConfidenceError(f"word confidence must be a number in [0, 1], got {value!r:.40}")
    if math.isnan(value):
        raise InvalidConfidenceError("word confidence is NaN")
    return float(value), word if isinstance(word, str) else None


def confidence_items(word_confidences: Iterable[ConfidenceItem] | None) -> list[Any] | None:
    """``word_confidences`` as a list (any iterable of items: list, tuple, numpy array, generator).

    Raises ``TypeError`` for a container that is no list of items: a number, a string or bytes
    (their characters are no confidences) or a mapping.
    """
    if word_confidences is None:
        return None
    if isinstance(word_confidences, str | bytes | bytearray | Mapping) or not isinstance(
        word_confidences, Iterable
    ):
        raise TypeError(
            f"word_confidences must be a list of numbers or {{word, confidence}} items, "
            f"got {type(word_confidences).__name__}"
        )
    return list(word_confidences)


ALIGN_WINDOW = 8
"""How far (in words, on either side) :func:`match_words` looks to resynchronise after a mismatch."""


def match_words(a: Sequence[str], b: Sequence[str], window: int = ALIGN_WINDOW) -> list[int | None]:
    """For each word of ``a``, the index of the word of ``b`` it matches (or ``None``), in order.

    One pass, linear in ``len(a) + len(b)``: equal words pair up; after a mismatch the nearest
    resynchronisation point within ``window`` words of both sides is taken (one where the next
    words agree too is preferred), else both words are taken as a substitution. At most about
    ``2 * window**2`` comparisons per mismatch, whatever the lengths (``difflib`` grows with their
    product).
    """
    out: list[int | None] = [None] * len(a)
    n, m = len(a), len(b)
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            out[i] = j
            i, j = i + 1, j + 1
            continue
        weak: tuple[int, int] | None = None
        strong: tuple[int, int] | None = None
        for d in range(1, 2 * window - 1):
            for di in range(max(0, d - window + 1), min(d, window - 1) + 1):
                x, y = i + di, j + d - di
                if x < n and y < m and a[x] == b[y]:
                    if x + 1 >= n or y + 1 >= m or a[x + 1] == b[y + 1]:
                        strong = (x, y)
                        break
                    weak = weak or (x, y)
            if strong:
                break
        target = strong or weak
        if target is None:
            i, j = i + 1, j + 1  # a substitution
        else:
            i, j = target
    return out


@dataclass(frozen=True)
class Alignment:
    """Word confidences placed on the transcript's tokens: one value (or ``None``) and the index of
    the confidence item it came from (or ``None``) per token, and the ``mode`` that applied
    (``"index"``, ``"words"``, ``"none"`` or ``"missing"``)."""

    values: list[float | None]
    mode: str
    item_of: list[int | None]


def align(tokens: Sequence[Token], items: Sequence[Any] | None) -> Alignment:
    """Align the confidence ``items`` (a list, see :func:`confidence_items`) to ``tokens``, once."""
    n = len(tokens)
    if not items:
        return Alignment([None] * n, "missing", [None] * n)
    pairs = [_item_value(item) for item in items]
    if len(pairs) == n:
        return Alignment([value for value, _ in pairs], "index", list(range(n)))
    if any(word is None for _, word in pairs):
        return Alignment([None] * n, "none", [None] * n)
    item_folds = [make_token(word.strip()).fold for _, word in pairs if word is not None]
    item_of = match_words([t.fold for t in tokens], item_folds)
    values = [None if k is None else pairs[k][0] for k in item_of]
    return Alignment(values, "words", item_of)


def align_confidences(
    tokens: Sequence[Token], word_confidences: Iterable[ConfidenceItem] | None
) -> tuple[list[float | None], str]:
    """One confidence (or ``None`` = unknown) per token, and how they were aligned.

    The second value is ``"index"``, ``"words"``, ``"none"`` (lengths differ and the items
    carry no words) or ``"missing"`` (no confidences given).
    """
    result = align(tokens, confidence_items(word_confidences))
    return result.values, result.mode


def apply_case(span: Sequence[Token], right: str) -> str:
    """Give ``right`` the case pattern of the original words (UPPER, Title or as written)."""
    letters = "".join(t.core for t in span)
    if letters.isupper() and sum(ch.isalpha() for ch in letters) > 1:
        return right.upper()
    if span[0].core[:1].isupper():
        return right[:1].upper() + right[1:]
    return right


class OnlineCorrectionPipeline:
    """Confidence-gated dictionary correction plus critical-value clarification."""

    def __init__(
        self,
        dictionary: ConfusionDictionary | None = None,
        correction_threshold: float | None = None,
        clarification_threshold: float | None = None,
    ) -> None:
        """Thresholds default to the environment variables, then to 0.7 / 0.5."""
        self.dictionary = dictionary if dictionary is not None else ConfusionDictionary.load_default()
        self.correction_threshold = (
            _env_threshold(CORRECTION_THRESHOLD_ENV, DEFAULT_CORRECTION_THRESHOLD)
            if correction_threshold is None
            else _check_threshold(correction_threshold, "correction_threshold")
        )
        self.clarification_threshold = (
            _env_threshold(CLARIFICATION_THRESHOLD_ENV, DEFAULT_CLARIFICATION_THRESHOLD)
            if clarification_threshold is None
            else _check_threshold(clarification_threshold, "clarification_threshold")
        )

    async def process_online(
        self,
        transcription: str,
        word_confidences: Sequence[ConfidenceItem] | None = None,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        """Async wrapper of :meth:`correct`; pure CPU work, it never awaits anything."""
        return self.correct(transcription, word_confidences, conversation_id)

    def correct(
        self,
        transcription: str,
        word_confidences: Sequence[ConfidenceItem] | None = None,
        conversation_id: str | None = None,
        *,
        alignment: Alignment | None = None,
    ) -> dict[str, Any]:
        """Correct ``transcription``; returns the online result dict.

        ``alignment`` (from :func:`align` on this transcript's tokens) saves aligning again when
        the caller already did.

        Keys: ``corrected_text``, ``corrections_made`` (dicts shaped like
        ``schema.Correction``, method ``fast_exact``, position = word index), ``needs_clarification``,
        ``clarification_reason``, ``processing_mode`` (``"online"``), ``processing_time_ms``,
        ``confidence_alignment``. ``conversation_id`` is accepted for tracing and does not
        change the result.
        """
        started = perf_counter_ns()
        if not isinstance(transcription, str):
            raise TypeError(f"transcription must be a str, got {type(transcription).__name__}")
        tokens = tokenize(transcription)
        if alignment is None or len(alignment.values) != len(tokens):
            alignment = align(tokens, confidence_items(word_confidences))
        confidences = alignment.values
        pieces: list[str] = []
        corrections: list[dict[str, Any]] = []
        effective = [t.fold for t in tokens]  # words after correction, for clarification
        i, n = 0, len(tokens)
        while i < n:
            token = tokens[i]
            entries = self.dictionary.entries_for(token.norm)
            chosen = self._choose(tokens, confidences, i, entries) if entries else None
            if chosen is None:
                pieces.append(token.text)
                i += 1
                continue
            entry, end, confidence, evidence = chosen
            span = tokens[i:end]
            corrected = apply_case(span, entry.right)
            pieces.append(span[0].lead + corrected + span[-1].trail)
            corrections.append(
                {
                    "original": " ".join(t.core for t in span),
                    "corrected": corrected,
                    "method": "fast_exact",
                    "position": i,
                    "confidence": confidence,
                    "evidence": evidence,
                }
            )
            for k, word in enumerate(fold(entry.right).split()[: end - i]):
                effective[i + k] = word
            i = end
        reason = self._clarification(tokens, effective, confidences)
        return {
            "corrected_text": " ".join(pieces) if corrections else transcription,
            "corrections_made": corrections,
            "needs_clarification": reason is not None,
            "clarification_reason": reason,
            "processing_mode": "online",
            "processing_time_ms": (perf_counter_ns() - started) / 1e6,
            "confidence_alignment": alignment.mode,
        }

    def _choose(
        self,
        tokens: Sequence[Token],
        confidences: Sequence[float | None],
        start: int,
        entries: Sequence[ConfusionEntry],
    ) -> tuple[ConfusionEntry, int, float, dict[str, Any]] | None:
        """First entry (longest first) that matches, is under its threshold and has support."""
        for entry in entries:
            end = start + len(entry.wrong_words)
            if not self.dictionary.matches(tokens, start, entry):
                continue
            span_conf = confidences[start:end]
            if any(c is None for c in span_conf):
                continue
            confidence = min(c for c in span_conf if c is not None)
            threshold = self.correction_threshold if entry.threshold is None else entry.threshold
            if confidence >= threshold:
                continue
            evidence = self.dictionary.context_evidence(tokens, start, end, entry)
            if evidence is not None:
                evidence["threshold"] = threshold
                return entry, end, confidence, evidence
        return None

    def _clarification(
        self, tokens: Sequence[Token], words: Sequence[str], confidences: Sequence[float | None]
    ) -> str | None:
        """Reason text when a critical value was heard with low confidence, else ``None``."""
        n = len(words)
        numeric = [_is_number(w) for w in words]
        for i, w in enumerate(words):  # "un"/"una" count only next to a number or a currency
            if w in _ONE and (
                (i > 0 and numeric[i - 1]) or (i + 1 < n and (numeric[i + 1] or words[i + 1] in _CURRENCY))
            ):
                numeric[i] = True
        problems: list[str] = []
        i = 0
        while i < n:
            if not numeric[i]:
                i += 1
                continue
            end = i + 1
            while end < n and (
                numeric[end] or (words[end] in _CONNECTORS and end + 1 < n and numeric[end + 1])
            ):
                end += 1
            doubtful = [
                k
                for k in range(i, end)
                if numeric[k] and confidences[k] is not None and confidences[k] < self.clarification_threshold
            ]
            label = _category(words, i, end) if doubtful else None
            if label is not None:
                # The kind and the position only, never the value: this text is shown and stored.
                heard = ", ".join(f"palabra {k} ({confidences[k]:.2f})" for k in doubtful)
                problems.append(f"{label}: {heard}")
            i = end
        return "; ".join(problems) if problems else None


def _is_number(word: str) -> bool:
    return word in _NUMBER_WORDS or any(ch.isdigit() for ch in word)


def _category(words: Sequence[str], start: int, end: int) -> str | None:
    """What kind of critical value the number run ``start:end`` is (a Spanish label), or ``None``.

    ``None`` for a lone small number that is no value ("tres veces") and for clock times
    ("a las ocho"): only amounts, identifiers and numbers of two or more words or digits
    are worth asking the caller again.
    """
    following = words[end : end + 2]
    run = words[start:end]
    if any(w in _CURRENCY for w in following) or any("€" in w or "$" in w for w in run):
        return _AMOUNT_LABEL
    if run[0].startswith("es") and any(ch.isdigit() for ch in run[0]):
        return "número de cuenta incierto"  # IBAN written as "ES91 2100 ..."
    preceding = words[max(0, start - 5) : start]
    cues = set(preceding)
    for label, label_cues in _CATEGORIES:
        if cues & label_cues:
            return label
    if preceding[-1:] in (["las"], ["la"]):
        return None  # a clock time
    multiword = sum(1 for w in run if _is_number(w)) >= 2
    if multiword or any(sum(ch.isdigit() for ch in w) >= 2 for w in run):
        return _NUMBER_LABEL
    return None


@cache
def get_correction_pipeline() -> OnlineCorrectionPipeline:
    """The process-wide pipeline (shipped dictionary + ``CALLPIPE_CONFUSIONS_FILE``, env thresholds).

    Built on first use; ``get_correction_pipeline.cache_clear()`` rebuilds it after the
    environment changed.
    """
    return OnlineCorrectionPipeline()
