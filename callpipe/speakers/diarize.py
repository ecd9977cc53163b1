"""Who spoke when on a mono call: speaker embeddings over Whisper's timed words, clustered.

The words are grouped into *units*: runs of words without a pause, cut into pieces of at most
:data:`MAX_UNIT_SECONDS` so that a voice change inside one Whisper segment (an answer without a
pause, an overlap) lands in a different unit; *long* units are the same runs cut at
:data:`LONG_UNIT_SECONDS` (their own embeddings: pooling the short units' loses the partials that
span two of them, and measured worse on dev). Each unit gets one GE2E speaker embedding
(:mod:`callpipe.speakers.encoder`, resemblyzer's pretrained encoder shipped in its wheel, on CPU;
one log-mel pass over the call and one batched forward for all units). The long units are clustered
(agglomerative, average linkage on cosine distance, refined by nearest-centroid passes) into two
speakers and each short unit takes the nearer of the two centroids; a third is kept apart (as
``unknown``) only when its voice is far from both and it holds a real share of the speech. When
the two clusters are too close, the call has one voice (or voices the encoder cannot tell apart)
and every word stays ``unknown``: no guess.

Roles come from :mod:`callpipe.speakers.roles`. Pure numpy/scipy here; the encoder is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from callpipe.speakers.encoder import SpeakerEncoder

Span = tuple[float, float]

PAUSE_SECONDS = 0.25
"""A gap at least this long between two words ends a unit."""
MAX_UNIT_SECONDS = 2.0
"""A unit longer than this is cut at word boundaries (voice changes inside a segment)."""
LONG_UNIT_SECONDS = 6.0
"""Cap of the *long* units (runs of words without a pause, cut at this length) that are clustered:
their embeddings average more speech, so the two voices' centroids are steadier than those of
2 s units (dev2: same-family espeak voices). The short units are then each given the nearer
centroid, which finds a voice change inside a long unit (an answer without a pause, an overlap)."""
MIN_UNIT_SECONDS = 0.5
"""A shorter unit joins its neighbour in the same run of words (too short for a stable voice)."""
MIN_SEPARATION = 0.13
"""Cosine distance between the two speakers' centroids (of the long units) below which the call
counts as one voice (0.13 and silhouette 0.35: set on the dev and dev2 sets, whose six one-voice
calls gave up to 0.127 with silhouettes 0.38-0.43, and whose separable two-party calls >= 0.13)."""
THIRD_SPEAKER_DISTANCE = 0.45
"""A cluster this far (cosine) from both main speakers with enough speech is a third voice."""
THIRD_SPEAKER_SHARE = 0.15
CONFIDENCE_TEMPERATURE = 0.05
SEED_CLUSTERS = 6
MIN_SILHOUETTE = 0.35
"""Weighted silhouette of the two-speaker split below which the call counts as one voice."""


@dataclass
class Diarization:
    """Per-word speaker clusters (-1: unknown) and confidences, plus call-level facts."""

    labels: list[int]
    confidences: list[float]
    speakers: int
    separation: float | None
    reason: str
    units: list[Span] = field(default_factory=list)

    @property
    def separated(self) -> bool:
        """Whether the audio told two speakers apart."""
        return self.speakers >= 2


def word_units(
    spans: Sequence[Span | tuple[None, None]], max_seconds: float = MAX_UNIT_SECONDS
) -> list[list[int]]:
    """Indices of the timed words grouped into units of at most ``max_seconds`` (see the module
    docstring)."""
    timed = [i for i, (s, e) in enumerate(spans) if s is not None and e is not None]
    runs: list[list[int]] = []
    for i in timed:
        if runs and spans[i][0] - spans[runs[-1][-1]][1] < PAUSE_SECONDS:
            runs[-1].append(i)
        else:
            runs.append([i])
    units: list[list[int]] = []
    for run in runs:
        pieces: list[list[int]] = [[]]
        for i in run:
            if pieces[-1] and spans[i][1] - spans[pieces[-1][0]][0] > max_seconds:
                pieces.append([])
            pieces[-1].append(i)
        merged: list[list[int]] = []
        for piece in pieces:
            short = spans[piece[-1]][1] - spans[piece[0]][0] < MIN_UNIT_SECONDS
            if (merged and short) or (
                merged and spans[merged[-1][-1]][1] - spans[merged[-1][0]][0] < MIN_UNIT_SECONDS
            ):
                merged[-1].extend(piece)
            else:
                merged.append(list(piece))
        units.extend(merged)
    return units


def diarize(
    samples: np.ndarray,
    spans: Sequence[Span | tuple[None, None]],
    encoder: SpeakerEncoder,
    *,
    min_separation: float = MIN_SEPARATION,
    min_silhouette: float = MIN_SILHOUETTE,
) -> Diarization:
    """Cluster the words of a 16 kHz mono call by voice; ``spans`` are the words' (start, end)."""
    n = len(spans)
    units = word_units(spans)
    unit_spans = [(float(spans[u[0]][0]), float(spans[u[-1]][1])) for u in units]
    long_units = word_units(spans, LONG_UNIT_SECONDS)
    long_spans = [(float(spans[u[0]][0]), float(spans[u[-1]][1])) for u in long_units]
    if len(long_units) < 2:
        return Diarization([-1] * n, [0.0] * n, 1 if units else 0, None, "too little speech", unit_spans)
    both = encoder.embed_spans(samples, unit_spans + long_spans)  # one mel pass, one forward
    embeddings, long_embeddings = both[: len(units)], both[len(units) :]
    weights = np.array([max(e - s, 1e-3) for s, e in unit_spans])
    long_weights = np.array([max(e - s, 1e-3) for s, e in long_spans])
    long_labels, centroids = _two_speakers(long_embeddings, long_weights)
    separation = float(1.0 - centroids[0] @ centroids[1])
    two = len(set(long_labels.tolist())) == 2
    spread = silhouette(long_embeddings, long_labels, long_weights) if two else -1.0
    if separation < min_separation or spread < min_silhouette:
        reason = f"one voice: speakers {separation:.2f} apart, silhouette {spread:.2f}"
        return Diarization([-1] * n, [0.0] * n, 1, separation, reason, unit_spans)
    sims = embeddings @ centroids.T
    probs = np.exp(sims / CONFIDENCE_TEMPERATURE)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.argmax(sims, axis=1)
    unit_labels = labels.copy()
    unit_conf = probs[np.arange(len(units)), labels]
    third = _third_speaker(embeddings, weights, centroids)
    if third is not None:
        unit_labels[third] = -1
    word_labels, word_conf = [-1] * n, [0.0] * n
    for unit, label, conf in zip(units, unit_labels.tolist(), unit_conf.tolist(), strict=True):
        for i in unit:
            word_labels[i], word_conf[i] = int(label), round(float(conf), 3)
    _fill_untimed(word_labels, word_conf, spans)
    speakers = 3 if third is not None else 2
    reason = f"separated: speakers {separation:.2f} apart, silhouette {spread:.2f}"
    return Diarization(word_labels, word_conf, speakers, separation, reason, unit_spans)


def _two_speakers(embeddings: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two heaviest average-linkage clusters (tree cut at up to :data:`SEED_CLUSTERS`, so that a
    stray unit cannot be a speaker), refined by weighted nearest-centroid passes."""
    tree = linkage(embeddings, method="average", metric="cosine")
    cut = fcluster(tree, t=min(SEED_CLUSTERS, len(embeddings)), criterion="maxclust")
    mass = {c: weights[cut == c].sum() for c in set(cut.tolist())}
    heaviest = sorted(mass, key=mass.get, reverse=True)[:2]
    if len(heaviest) < 2:
        return np.zeros(len(embeddings), dtype=int), np.stack([embeddings[0], embeddings[0]])
    seeds = np.stack(
        [_normed((embeddings[cut == c] * weights[cut == c, None]).sum(axis=0)) for c in heaviest]
    )
    labels = np.argmax(embeddings @ seeds.T, axis=1)
    centroids = np.zeros((2, embeddings.shape[1]))
    for _ in range(5):
        for k in range(2):
            members = labels == k
            if not members.any():
                return labels, np.stack([embeddings[0], embeddings[0]])
            c = (embeddings[members] * weights[members, None]).sum(axis=0)
            centroids[k] = c / np.linalg.norm(c)
        new = np.argmax(embeddings @ centroids.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels, centroids


def _normed(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def silhouette(embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean silhouette of a two-way split on cosine distance (-1..1; high: well apart)."""
    dist = 1.0 - embeddings @ embeddings.T
    values = []
    for i in range(len(embeddings)):
        own, other = labels == labels[i], labels != labels[i]
        own[i] = False
        if not own.any() or not other.any():
            values.append(0.0)
            continue
        a = float(np.average(dist[i, own], weights=weights[own]))
        b = float(np.average(dist[i, other], weights=weights[other]))
        values.append((b - a) / max(a, b, 1e-9))
    return float(np.average(values, weights=weights))


def _third_speaker(embeddings: np.ndarray, weights: np.ndarray, centroids: np.ndarray) -> np.ndarray | None:
    """Units of a third voice: far from both speakers and a real share of the speech, else None."""
    far = (1.0 - embeddings @ centroids.T).min(axis=1) > THIRD_SPEAKER_DISTANCE
    if far.sum() < 2 or weights[far].sum() < THIRD_SPEAKER_SHARE * weights.sum():
        return None
    return np.flatnonzero(far)


def _fill_untimed(
    labels: list[int], confidences: list[float], spans: Sequence[Span | tuple[None, None]]
) -> None:
    """A word without times takes its predecessor's speaker (its successor's at the start)."""
    previous = next((i for i, (s, _) in enumerate(spans) if s is not None), None)
    if previous is None:
        return
    for i, (start, _) in enumerate(spans):
        if start is None:
            labels[i], confidences[i] = labels[previous], confidences[previous]
        else:
            previous = i
