"""Ablation of callpipe's premium STT pass against plain faster-whisper beam 5, on dev calls only.

Each row changes one thing between ``WhisperModel.transcribe(path, language="es", beam_size=5)``
and the premium pass (audio path, word timestamps, VAD, the seeded fallback, the hallucination
filter) and prints WER and seconds. Two dev sets, never the frozen report set:

- ``a``: ``real_speech.py``'s own calls (seed 12, 8 calls of 46 s, 0.6 s gaps);
- ``b``: calls assembled the way the report set is (random pauses, telephone band-pass) but only
  from the prompts the report set excludes (those other benchmarks use), seed 99.

    .venv/bin/python benchmarks/stt_ablation.py [--set a|b] [--rows 'label;label']

Measured 2026-12-07, dev set b (8 calls, 509 s), 2 shared cores (load 1.5-1.9), int8, 2 threads:
plain beam 5 (path) 0.221 (53.4 s); plain on callpipe's decoded array 0.207 (56.2 s); + seeded
fallback 0.221; + word_timestamps 0.236 (54.9 s); + VAD 0.207 (51.4 s); + word_timestamps + the
hallucination filter 0.215; premium as shipped 0.215 (60.7 s); premium without VAD 0.206 (51.2 s);
premium without the filter 0.215. On this set the premium pass is not worse than plain beam 5; the
single largest effect is ``word_timestamps=True`` (+1.5 points alone: it moves the 30 s window to
the last word's end), and the audio path alone moves WER by 1.4 points (resampling differences), so
differences of this size between sets are within what one decoding detail does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ctranslate2

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from real_speech import build_calls, corpus_wer  # noqa: E402
from real_speech_set import PAUSE_RANGE, REPORT_SET, build_report_calls  # noqa: E402
from wer_calibration import REAL_SOUNDS, REAL_TEXT, load_real_prompts  # noqa: E402

from callpipe.stt.audio_input import decode_channels, select_channel  # noqa: E402
from callpipe.stt.quality import drop_hallucinations  # noqa: E402
from callpipe.stt.transcriber import Transcriber, _segment  # noqa: E402

DEV_B_SEED = 99


def dev_b_recipe(calls: int = 8, call_seconds: float = 50.0) -> dict[str, Any]:
    """A recipe like the report set's from the prompts it excludes (none of the report set's)."""
    frozen = json.loads(REPORT_SET.read_text(encoding="utf-8"))
    excluded = set(frozen["excluded_prompts"])
    texts = dict(load_real_prompts(REAL_SOUNDS, REAL_TEXT))
    stems = sorted(s for s in excluded if s in texts)
    rng = random.Random(DEV_B_SEED)
    rng.shuffle(stems)
    out, pool = [], iter(stems)
    for n in range(calls):
        prompts, seconds = [], 0.0
        while seconds < call_seconds:
            stem = next(pool, None)
            if stem is None:
                break
            source = REAL_SOUNDS / f"{stem}.gsm"
            pause = round(rng.uniform(*PAUSE_RANGE), 2)
            prompts.append(
                {
                    "prompt": stem,
                    "text": texts[stem],
                    "pause_before": pause,
                    "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                }
            )
            seconds += pause + source.stat().st_size / 1650.0  # GSM: 33 bytes per 20 ms
        if not prompts:
            break
        out.append(
            {
                "id": f"devb{n:02d}",
                "prompts": prompts,
                "pause_after": round(rng.uniform(*PAUSE_RANGE), 2),
                "reference": " ".join(p["text"] for p in prompts),
            }
        )
    return {**frozen, "calls": out, "excluded_prompts": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="a", choices=["a", "b"])
    parser.add_argument("--rows", default="")
    args = parser.parse_args()
    threads = int(os.environ.get("CALLPIPE_WHISPER_THREADS", "2"))
    transcriber = Transcriber(cpu_threads=threads)
    model = transcriber._model
    unfiltered = Transcriber(transcriber.settings, filter_hallucinations=False)

    def plain(source: Any, **options: Any) -> str:
        segments, _ = model.transcribe(source, language="es", beam_size=5, **options)
        return " ".join(s.text.strip() for s in segments)

    def filtered(source: Any, **options: Any) -> str:
        raw, _ = model.transcribe(source, language="es", beam_size=5, word_timestamps=True, **options)
        kept, _dropped = drop_hallucinations([_segment(s) for s in raw])
        return " ".join(s.text.strip() for s in kept)

    def samples(path: Path) -> Any:
        return select_channel(decode_channels(str(path)), None)

    def seeded(path: Path) -> str:
        ctranslate2.set_random_seed(0)
        return plain(str(path))

    rows = {
        "plain beam 5 (path)": lambda p: plain(str(p)),
        "plain, callpipe audio path": lambda p: plain(samples(p)),
        "plain + seeded fallback": seeded,
        "plain + word_timestamps": lambda p: plain(str(p), word_timestamps=True),
        "plain + VAD": lambda p: plain(str(p), vad_filter=True),
        "plain + word_timestamps + filter": lambda p: filtered(str(p)),
        "premium as shipped": lambda p: transcriber.transcribe(str(p), premium=True).text,
        "premium, no VAD": lambda p: transcriber.transcribe(str(p), premium=True, vad_filter=False).text,
        "premium, no filter": lambda p: unfiltered.transcribe(str(p), premium=True).text,
    }
    chosen = [r.strip() for r in args.rows.split(";") if r.strip()] or list(rows)
    with tempfile.TemporaryDirectory(prefix="stt-ablation-") as tmp:
        if args.set == "a":
            calls = build_calls(Path(tmp), 8, 46.0, 12)
        else:
            calls = build_report_calls(Path(tmp), dev_b_recipe())
        audio = sum(c["seconds"] for c in calls)
        print(
            f"dev set {args.set}: {len(calls)} calls, {audio:.0f} s; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        print("| row | WER | seconds |\n|---|---|---|", flush=True)
        for label in chosen:
            started = time.perf_counter()
            texts = [rows[label](call["path"]) for call in calls]
            seconds = time.perf_counter() - started
            print(f"| {label} | {corpus_wer(calls, texts):.3f} | {seconds:.1f} |", flush=True)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
