"""Quality gate (estimated WER of a live transcript) and Whisper hallucination filter.

The WER estimate is a linear map, clipped to [0, 1], of a few uncertainty features of the
transcript. Its coefficients are data, fitted by ``benchmarks/wer_calibration.py`` against the
measured WER of synthetic Spanish calls and stored in ``callpipe/data/wer_calibration.json``
together with how they were obtained and the held-out accuracy.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from callpipe.schema import WordConfidence
from callpipe.stt.result import DroppedSegment, TranscriptSegment

OFFLINE_RETRANSCRIBE_WER_THRESHOLD = 0.2
"""Default estimated WER above which a live transcript is re-transcribed offline."""

LOW_CONFIDENCE = 0.5
COMPRESSION_RATIO_LIMIT = 2.4
NO_SPEECH_LIMIT = 0.6
LOGPROB_FLOOR = -1.0
MIN_SPEECH_OVERLAP = 0.2  # share of a segment that must fall inside VAD speech
MIN_WORD_SECONDS = 0.02  # words shorter than this were not aligned to any audio
PROMPT_ECHO_WORDS = 4

# Phrases Whisper learnt from subtitled videos and emits over silence or noise; compared on
# normalised text (lower case, no accents, no punctuation).
OUTRO_PHRASES = (
    "subtitulos realizados por la comunidad de amara org",
    "subtitulos por la comunidad de amara org",
    "amara org",
    "subtitulado por",
    "gracias por ver el video",
    "suscribete",
    "suscribanse",
    "no olvides suscribirte",
    "dale like",
    "nos vemos en el proximo video",
)
# Too common inside real sentences to match as a substring: only a whole segment counts.
WHOLE_SEGMENT_OUTROS = frozenset({"gracias por ver", "gracias por vernos"})
# fmt: off
_NUMBER_WORDS = frozenset({
    "cero", "uno", "una", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve",
    "diez", "once", "doce", "trece", "catorce", "quince",
})
# fmt: on


def uncertainty_features(
    word_confidences: Sequence[WordConfidence | float], segments: Sequence[TranscriptSegment] | None = None
) -> dict[str, float]:
    """The estimator's inputs: word count, mean(1-p), share of words under 0.5 and, with
    segments, the duration-weighted -avg_logprob."""
    probs = [float(w) if isinstance(w, float | int) else w.confidence for w in word_confidences]
    features = {
        "words": float(len(probs)),
        "mean_uncertainty": sum(1.0 - p for p in probs) / len(probs) if probs else 1.0,
        "low_fraction": sum(p < LOW_CONFIDENCE for p in probs) / len(probs) if probs else 1.0,
    }
    if segments:
        weights = [max(s.end - s.start, 0.01) for s in segments]
        mean_logprob = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True)) / sum(weights)
        features["neg_logprob"] = -mean_logprob
    return features


def estimate_wer(
    word_confidences: Sequence[WordConfidence | float],
    segments: Sequence[TranscriptSegment] | None = None,
    *,
    calibration: dict[str, Any] | None = None,
) -> float:
    """Estimate the word error rate of a transcript from its word confidences.

    With ``segments`` (Whisper decoder statistics) the "decoder" model of the calibration is
    used, otherwise the "confidences" model. An empty transcript estimates 1.0: nothing
    vouches for it. The result is clipped to [0, 1].
    """
    return predict_wer(uncertainty_features(word_confidences, segments), calibration=calibration)


def predict_wer(features: dict[str, float], *, calibration: dict[str, Any] | None = None) -> float:
    """Apply the calibrated linear map to :func:`uncertainty_features` output (clipped to [0, 1])."""
    if features.get("words", 0.0) == 0:
        return 1.0
    models = (calibration or load_calibration())["models"]
    model = models["decoder"] if "neg_logprob" in features else models["confidences"]
    value = model["intercept"] + sum(coef * features[name] for name, coef in model["coefficients"].items())
    return min(1.0, max(0.0, value))


def needs_retranscription(estimated_wer: float, threshold: float | None = None) -> bool:
    """True when ``estimated_wer`` exceeds the threshold (env ``OFFLINE_RETRANSCRIBE_WER_THRESHOLD``, 0.2)."""
    if threshold is None:
        threshold = float(
            os.environ.get("OFFLINE_RETRANSCRIBE_WER_THRESHOLD", OFFLINE_RETRANSCRIBE_WER_THRESHOLD)
        )
    return estimated_wer > threshold


RETRANSCRIBE_POLICIES = ("gate", "always", "never")
RETRANSCRIBE_POLICY_ENV = "CALLPIPE_RETRANSCRIBE_POLICY"
CPU_DEFAULT_POLICY = "gate"
"""Policy without ``CALLPIPE_RETRANSCRIBE_POLICY`` when the stage runs on CPU (``always`` on CUDA)."""


def retranscribe_policy(explicit: str | None = None, *, threshold: float | None = None) -> str:
    """``explicit``, else ``CALLPIPE_RETRANSCRIBE_POLICY``, else the default.

    ``gate``: re-transcribe when the live transcript's estimated WER is above the threshold and keep
    the re-transcription only when it is estimated better; ``always``: re-transcribe every call and
    keep the re-transcription (unless it is empty); ``never``: keep the live transcript. The default
    is ``gate`` when a threshold is configured (``threshold`` given or
    ``OFFLINE_RETRANSCRIBE_WER_THRESHOLD`` set), else ``always`` when the Whisper device resolves
    to CUDA, else :data:`CPU_DEFAULT_POLICY`. Raises ValueError for another value.
    """
    value = (explicit or os.environ.get(RETRANSCRIBE_POLICY_ENV, "")).strip().lower()
    if not value:
        if threshold is not None or os.environ.get("OFFLINE_RETRANSCRIBE_WER_THRESHOLD", "").strip():
            return "gate"
        return "always" if _stage_on_cuda() else CPU_DEFAULT_POLICY
    if value not in RETRANSCRIBE_POLICIES:
        raise ValueError(
            f"{RETRANSCRIBE_POLICY_ENV} must be one of {', '.join(RETRANSCRIBE_POLICIES)}, got {value!r}"
        )
    return value


def should_retranscribe(estimated_wer: float, policy: str, threshold: float | None = None) -> bool:
    """Whether a live transcript with ``estimated_wer`` is re-transcribed under ``policy``."""
    if policy == "always":
        return True
    if policy == "never":
        return False
    return needs_retranscription(estimated_wer, threshold)


def _stage_on_cuda() -> bool:
    device = os.environ.get("CALLPIPE_WHISPER_DEVICE", "auto").strip().lower() or "auto"
    if device != "auto":
        return device == "cuda"
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


@lru_cache(maxsize=1)
def load_calibration() -> dict[str, Any]:
    """The fitted estimator coefficients shipped in ``callpipe/data/wer_calibration.json``."""
    text = (resources.files("callpipe") / "data" / "wer_calibration.json").read_text(encoding="utf-8")
    return json.loads(text)


def drop_hallucinations(
    segments: Sequence[TranscriptSegment],
    *,
    speech: Sequence[tuple[float, float]] | None = None,
    prompt: str | None = None,
) -> tuple[list[TranscriptSegment], list[DroppedSegment]]:
    """Split ``segments`` into kept ones and likely hallucinations with their reasons.

    A segment is dropped for: compression ratio > 2.4 (looping text); a 3-gram occurring 3+
    times or a non-number word 4+ times in a row; no_speech_prob > 0.6 with avg_logprob < -1;
    most words (3+) aligned to no audio at all (zero duration); lying mostly outside
    ``speech`` (VAD intervals in seconds) when given; repeating 4+ consecutive words of the
    decoder ``prompt`` (initial prompt / hotwords) when given; or a known subtitle-outro
    phrase ("Subtítulos realizados por la comunidad de Amara.org", ...).
    """
    kept: list[TranscriptSegment] = []
    dropped: list[DroppedSegment] = []
    for segment in segments:
        reasons = hallucination_reasons(segment, speech=speech, prompt=prompt)
        if reasons:
            dropped.append(DroppedSegment(segment=segment, reasons=reasons))
        else:
            kept.append(segment)
    return kept, dropped


def hallucination_reasons(
    segment: TranscriptSegment,
    *,
    speech: Sequence[tuple[float, float]] | None = None,
    prompt: str | None = None,
) -> list[str]:
    """Every hallucination rule ``segment`` breaks (empty list when it looks genuine)."""
    reasons = []
    text = segment.text.strip()
    ratio = max(segment.compression_ratio, compression_ratio(text))
    if ratio > COMPRESSION_RATIO_LIMIT:
        reasons.append(f"compression ratio {ratio:.2f} > {COMPRESSION_RATIO_LIMIT}")
    words = _normalise(text).split()
    trigram, count = _top_trigram(words)
    if count >= 3:
        reasons.append(f"3-gram '{trigram}' repeated {count} times")
    word, run = _longest_run(words)
    if run >= 4:
        reasons.append(f"word '{word}' repeated {run} times in a row")
    if segment.no_speech_prob > NO_SPEECH_LIMIT and segment.avg_logprob < LOGPROB_FLOOR:
        reasons.append(
            f"no_speech_prob {segment.no_speech_prob:.2f} > {NO_SPEECH_LIMIT} with "
            f"avg_logprob {segment.avg_logprob:.2f} < {LOGPROB_FLOOR}"
        )
    unaligned = sum(w.end - w.start < MIN_WORD_SECONDS for w in segment.words)
    if len(segment.words) >= 3 and unaligned > len(segment.words) / 2:
        reasons.append(f"{unaligned} of {len(segment.words)} words aligned to no audio")
    if prompt and _shares_ngram(words, _normalise(prompt).split(), PROMPT_ECHO_WORDS):
        reasons.append(f"repeats {PROMPT_ECHO_WORDS}+ consecutive words of the prompt")
    if speech is not None:
        share = _speech_share(segment.start, segment.end, speech)
        if share < MIN_SPEECH_OVERLAP:
            reasons.append(f"only {share:.0%} of the segment lies in VAD speech")
    normalised = " ".join(words)
    outro = normalised if normalised in WHOLE_SEGMENT_OUTROS else None
    outro = outro or next((p for p in OUTRO_PHRASES if re.search(rf"\b{re.escape(p)}\b", normalised)), None)
    if outro:
        reasons.append(f"known subtitle outro '{outro}'")
    return reasons


def compression_ratio(text: str) -> float:
    """Bytes / zlib-compressed bytes, as Whisper computes it (1.0 for empty text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 1.0


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^\w]+", " ", plain).strip()


def _top_trigram(words: list[str]) -> tuple[str, int]:
    counts = Counter(tuple(words[i : i + 3]) for i in range(len(words) - 2))
    if not counts:
        return "", 0
    gram, count = counts.most_common(1)[0]
    return " ".join(gram), count


def _shares_ngram(words: list[str], other: list[str], size: int) -> bool:
    grams = {tuple(other[i : i + size]) for i in range(len(other) - size + 1)}
    return any(tuple(words[i : i + size]) in grams for i in range(len(words) - size + 1))


def _longest_run(words: list[str]) -> tuple[str, int]:
    best, best_run, run = "", 0, 0
    for i, word in enumerate(words):
        run = run + 1 if i and word == words[i - 1] else 1
        # Digits and number words repeat legitimately ("cero cero cero cero" in an account).
        if run > best_run and not word.isdigit() and word not in _NUMBER_WORDS:
            best, best_run = word, run
    return best, best_run


def _speech_share(start: float, end: float, speech: Sequence[tuple[float, float]]) -> float:
    length = end - start
    if length <= 0:
        return 1.0 if any(s <= start <= e for s, e in speech) else 0.0
    inside = sum(max(0.0, min(end, e) - max(start, s)) for s, e in speech)
    return min(1.0, inside / length)
