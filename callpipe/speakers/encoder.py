"""The speaker encoder: resemblyzer's pretrained GE2E model (weights inside its wheel), on CPU.

Optional: installed with the ``speakers`` extra (it needs torch, the ``torch`` extra). Without it
:func:`load_encoder` returns None and mono calls keep ``unknown`` speakers (logged once).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16000
_FRAMES = 160  # 1.6 s partial utterances, as the encoder was trained
_HOP = 80  # 50% overlap between partials
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: list[object] = []


class SpeakerEncoder(Protocol):
    """Embeds spans of one 16 kHz mono signal into L2-normed voice vectors."""

    def embed_spans(self, samples: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray: ...


class Ge2eEncoder:
    """resemblyzer's VoiceEncoder: one log-mel pass over the call, all partials in one batch."""

    name = "resemblyzer-ge2e-0.1.4"

    def __init__(self) -> None:
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad imports pkg_resources
            from resemblyzer import VoiceEncoder
            from resemblyzer.audio import wav_to_mel_spectrogram

        self._torch = torch
        self._mel = wav_to_mel_spectrogram
        self._model = VoiceEncoder("cpu", verbose=False)

    def embed_spans(self, samples: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
        """One embedding per (start, end) span in seconds: the normed mean of its partials."""
        wav = np.asarray(samples, dtype=np.float32)
        peak = float(np.abs(wav).max()) if wav.size else 0.0
        if peak > 0:
            wav = wav / peak * 0.5
        mel = self._mel(wav)  # (frames, 40), 10 ms hop
        partials, owners = [], []
        for index, (start, end) in enumerate(spans):
            lo = max(0, int(start * 100))
            hi = min(len(mel), max(lo + 1, int(end * 100)))
            chunk = mel[lo:hi]
            if len(chunk) < _FRAMES:  # short unit: repeat it to one partial's length
                chunk = np.tile(chunk, (int(np.ceil(_FRAMES / max(len(chunk), 1))), 1))[:_FRAMES]
            for offset in range(0, max(1, len(chunk) - _FRAMES + 1), _HOP):
                partials.append(chunk[offset : offset + _FRAMES])
                owners.append(index)
        with self._torch.no_grad():
            embeds = self._model(self._torch.from_numpy(np.stack(partials))).numpy()
        out = np.zeros((len(spans), embeds.shape[1]), dtype=np.float64)
        np.add.at(out, np.array(owners), embeds)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def load_encoder() -> SpeakerEncoder | None:
    """The process-wide encoder (loaded once), or None when the ``speakers`` extra is missing."""
    with _lock:
        if not _loaded:
            try:
                _loaded.append(Ge2eEncoder())
            except ImportError as exc:
                _log.warning("speaker encoder unavailable (%s): mono calls keep unknown speakers", exc)
                _loaded.append(None)
        return _loaded[0]  # type: ignore[return-value]
