"""Ablation of callpipe's premium STT pass against plain faster-whisper beam 5, on the dev calls.

Runs on ``real_speech.py``'s own calls (the dev set; never on the frozen report set): each row
changes one thing between ``WhisperModel.transcribe(path, language="es", beam_size=5)`` and the
premium pass (VAD, word timestamps, the seeded fallback, the hallucination filter, the audio path
through ``callpipe.stt.audio_input``), and prints WER, seconds and segments dropped.

    .venv/bin/python benchmarks/stt_ablation.py [--rows plain,premium,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ctranslate2

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from real_speech import build_calls, corpus_wer  # noqa: E402

from callpipe.stt.audio_input import decode_channels, select_channel  # noqa: E402
from callpipe.stt.quality import drop_hallucinations  # noqa: E402
from callpipe.stt.transcriber import Transcriber, _segment  # noqa: E402


def plain(model: Any, source: Any, **options: Any) -> tuple[str, int]:
    segments, _ = model.transcribe(source, language="es", beam_size=5, **options)
    return " ".join(s.text.strip() for s in segments), 0


def filtered(model: Any, source: Any, **options: Any) -> tuple[str, int]:
    raw, _ = model.transcribe(source, language="es", beam_size=5, word_timestamps=True, **options)
    kept, dropped = drop_hallucinations([_segment(s) for s in raw])
    return " ".join(s.text.strip() for s in kept), len(dropped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="")
    args = parser.parse_args()
    transcriber = Transcriber()
    model = transcriber._model
    unfiltered = Transcriber(transcriber.settings, filter_hallucinations=False)

    def premium(path: Path, **options: Any) -> tuple[str, int]:
        result = transcriber.transcribe(str(path), premium=True, **options)
        return result.text, len(result.dropped)

    def premium_unfiltered(path: Path, **options: Any) -> tuple[str, int]:
        return unfiltered.transcribe(str(path), premium=True, **options).text, 0

    def samples(path: Path) -> Any:
        return select_channel(decode_channels(str(path)), None)

    def seeded(path: Path) -> tuple[str, int]:
        ctranslate2.set_random_seed(0)
        return plain(model, str(path))

    rows = {
        "plain beam 5 (path)": lambda p: plain(model, str(p)),
        "plain beam 5, callpipe audio path (decode_channels)": lambda p: plain(model, samples(p)),
        "plain + seeded fallback": seeded,
        "plain + best_of=5 explicit": lambda p: plain(model, str(p), best_of=5),
        "plain + word_timestamps": lambda p: plain(model, str(p), word_timestamps=True),
        "plain + VAD": lambda p: plain(model, str(p), vad_filter=True),
        "plain + word_timestamps + VAD": lambda p: plain(
            model, str(p), vad_filter=True, word_timestamps=True
        ),
        "plain + word_timestamps + hallucination filter": lambda p: filtered(model, str(p)),
        "callpipe premium (as shipped)": premium,
        "callpipe premium, no VAD": lambda p: premium(p, vad_filter=False),
        "callpipe premium, no filter": premium_unfiltered,
        "callpipe premium, no filter, no VAD": lambda p: premium_unfiltered(p, vad_filter=False),
    }
    chosen = [r.strip() for r in args.rows.split(";") if r.strip()] or list(rows)
    with tempfile.TemporaryDirectory(prefix="stt-ablation-") as tmp:
        calls = build_calls(Path(tmp), 8, 46.0, 12)
        audio = sum(c["seconds"] for c in calls)
        print(f"dev set: {len(calls)} calls, {audio:.0f} s; load {os.getloadavg()[0]:.2f}", flush=True)
        print("| row | WER | seconds | segments dropped |\n|---|---|---|---|")
        for label in chosen:
            started, texts, dropped = time.perf_counter(), [], 0
            for call in calls:
                text, count = rows[label](call["path"])
                texts.append(text)
                dropped += count
            seconds = time.perf_counter() - started
            print(f"| {label} | {corpus_wer(calls, texts):.3f} | {seconds:.1f} | {dropped} |", flush=True)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
