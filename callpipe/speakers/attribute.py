"""Speakers of a mono call's timed tokens: diarize, name the roles, split the speech per party."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from callpipe.speakers.diarize import Diarization, Span, diarize
from callpipe.speakers.encoder import SpeakerEncoder, load_encoder
from callpipe.speakers.roles import assign_roles

_log = logging.getLogger(__name__)


@dataclass
class MonoSpeakers:
    """Per-token roles (``agent``/``customer``/``unknown``) and confidences of a mono call."""

    speakers: list[str]
    confidences: list[float]
    separated: bool
    reason: str
    role_confidence: float | None = None
    seconds: float = 0.0
    diarization: Diarization | None = field(default=None, repr=False)


def mono_speakers(
    samples: np.ndarray,
    tokens: Sequence[str],
    spans: Sequence[Span | tuple[None, None]],
    *,
    direction: str | None = "inbound",
    encoder: SpeakerEncoder | None = None,
) -> MonoSpeakers:
    """Who said each token of a 16 kHz mono call (``spans``: each token's times, or Nones).

    A token's confidence is the voice attribution's (how much nearer its unit's embedding is to
    its speaker than to the other) capped by the role assignment's. Without the encoder, or when
    the voices do not separate, every token is ``unknown`` with confidence 0.
    """
    started = time.perf_counter()
    unknown = ["unknown"] * len(tokens)
    encoder = encoder or load_encoder()
    if encoder is None:
        return MonoSpeakers(unknown, [0.0] * len(tokens), False, "no speaker encoder installed")
    result = diarize(samples, spans, encoder)
    seconds = time.perf_counter() - started
    if not result.separated:
        return MonoSpeakers(unknown, [0.0] * len(tokens), False, result.reason, None, seconds, result)
    roles, role_conf = assign_roles(tokens, result.labels, direction)
    speakers = [roles.get(label, "unknown") for label in result.labels]
    confidences = [
        round(min(conf, role_conf), 3) if speaker != "unknown" else 0.0
        for conf, speaker in zip(result.confidences, speakers, strict=True)
    ]
    return MonoSpeakers(speakers, confidences, True, result.reason, role_conf, seconds, result)


def party_speech(vad: Sequence[Span], turns: Sequence[tuple[str, float, float]]) -> dict[str, list[Span]]:
    """VAD speech split per party by the diarized turns ``(speaker, start, end)``.

    Speech outside every agent/customer turn stays ``unknown`` (it counts in the total talk
    time, not in a party's)."""
    out: dict[str, list[Span]] = {"agent": [], "customer": [], "unknown": list(vad)}
    for speaker, start, end in turns:
        if speaker not in ("agent", "customer"):
            continue
        for lo, hi in vad:
            a, b = max(lo, start), min(hi, end)
            if b > a:
                out[speaker].append((a, b))
    return out
