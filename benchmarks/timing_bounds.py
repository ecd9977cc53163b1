"""Wall-clock numbers that tests used to assert (moved here: a test never asserts a duration).

Prints, one line each, how long these take on this machine:
- ``locate_model("base")`` once the model is assembled (only ``stat`` calls);
- a store call against a silent S3 endpoint with ``S3_READ_TIMEOUT=0.5``, ``S3_MAX_ATTEMPTS=2``;
- two saves of a mirrored store (``STORAGE_BACKEND=both``) whose S3 endpoint accepts connections
  and never answers: the first tries S3 (``FAST`` limits), the second skips it;
- sentiment of a 4,400-word text and entities of 10,000 words (``--analysis``, loads the models).

Usage: .venv/bin/python benchmarks/timing_bounds.py [--analysis]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(label: str, fn) -> None:
    started = time.perf_counter()
    try:
        fn()
        outcome = "ok"
    except Exception as exc:
        outcome = type(exc).__name__
    print(f"{label}: {(time.perf_counter() - started) * 1000:.2f} ms ({outcome})")


def _wav(seed: int) -> bytes:
    import numpy as np
    import soundfile as sf

    t = np.arange(4000) / 8000
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * (200 + 10 * seed) * t), 8000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def model_lookup() -> None:
    from callpipe.stt.models import locate_model

    locate_model("base")  # assembles it once if needed
    _timed("locate_model('base'), assembled model", lambda: locate_model("base"))


def silent_endpoint() -> None:
    from callpipe.storage import StorageSettings, build_store

    with socket.socket() as silent, tempfile.TemporaryDirectory() as tmp:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = build_store(
            StorageSettings(
                backend="s3",
                local_path=tmp,
                s3_bucket="b",
                s3_endpoint_url=endpoint,
                s3_read_timeout=0.5,
                s3_max_attempts=2,
            )
        )
        _timed("list_dates, silent S3 endpoint (read timeout 0.5 s, 2 attempts)", store.list_dates)
        store = build_store(
            StorageSettings(backend="both", local_path=tmp, s3_bucket="b", s3_endpoint_url=endpoint)
        )
        for n in range(2):
            _timed(f"mirrored save {n + 1}, hung S3 endpoint", lambda n=n: store.save_recording(_wav(n), "c"))


def analysis() -> None:
    from callpipe.analysis.analyzer import get_analyzer
    from callpipe.analysis.entities import extract_entities

    sentiment = get_analyzer().sentiment
    angry = "estoy harto de esperar es una vergüenza llevo semanas sin servicio "
    _timed("sentiment, 4,400 words", lambda: sentiment.analyze((angry * 400).strip()))
    sentence = (
        "buenos dias mi telefono es seis uno dos tres cuatro cinco seis siete ocho y me cobraron "
        "cuarenta y cinco euros con cincuenta el quince de marzo escribame a juan punto perez "
        "arroba gmail punto com gracias "
    )
    text = " ".join((sentence * 400).split()[:10_000])
    _timed("entities, 10,000 words, no names", lambda: extract_entities(text, date(2025, 3, 12), names=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analysis", action="store_true", help="also time sentiment and entities")
    args = parser.parse_args()
    # Fake credentials: the endpoints are local sockets, and without any the client fails at once.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    model_lookup()
    silent_endpoint()
    if args.analysis:
        analysis()


if __name__ == "__main__":
    main()
