"""Whisper throughput of the offline STT stage on CPU and on GPU, in call-audio seconds per second.

Transcribes the bundled demo calls (stereo, 24-29 s each), repeated to about five minutes of
audio, as the STT stage re-transcribes a call (``transcribe_conversation``, premium: beam 5 + VAD,
decoding the FLAC each time), with each device / compute type in turn: ``cpu int8``,
``cuda float16`` and ``cuda int8_float16``. Every configuration loads the model once (timed
apart) and warms up on one call before the timed pass; the WER against the calls' scripts is
printed so that a fast but broken configuration shows. Without CUDA the GPU rows print
``no CUDA`` and the script still exits 0. Run through ``benchmarks/gpu_stt.sh``.

    benchmarks/gpu_stt.sh [--repeat 2] [--configs cpu:int8,cuda:float16,cuda:int8_float16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_CONFIGS = "cpu:int8,cuda:float16,cuda:int8_float16"


def parse_configs(text: str) -> list[tuple[str, str]]:
    """``cpu:int8,cuda:float16`` -> [("cpu", "int8"), ("cuda", "float16")]."""
    configs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        device, _, compute = item.partition(":")
        if device not in ("cpu", "cuda") or not compute:
            raise ValueError(f"--configs: {item!r} is not DEVICE:COMPUTE_TYPE with DEVICE cpu or cuda")
        configs.append((device, compute))
    if not configs:
        raise ValueError("--configs: nothing to run")
    return configs


def cuda_devices() -> int:
    """CUDA devices CTranslate2 sees (0 when its CUDA runtime is missing)."""
    import ctranslate2

    try:
        return int(ctranslate2.get_cuda_device_count())
    except RuntimeError:
        return 0


def run_config(device: str, compute: str, audio: list[tuple[str, bytes]], references: dict[str, str]) -> str:
    """Load, warm up, then time one pass over ``audio``; one result line."""
    from callpipe.stt import Transcriber, TranscriberSettings, transcribe_conversation, word_error_rate
    from callpipe.stt.audio_input import SAMPLE_RATE, decode_channels

    threads = int(os.environ.get("CALLPIPE_WHISPER_THREADS") or os.cpu_count() or 1)
    settings = TranscriberSettings.from_env(device=device, compute_type=compute, cpu_threads=threads)
    started = time.perf_counter()
    transcriber = Transcriber(settings)
    load = time.perf_counter() - started
    transcribe_conversation(transcriber, audio[0][1], premium=True)  # warm-up, not timed
    seconds = sum(decode_channels(data).shape[1] / SAMPLE_RATE for _, data in audio)
    errors = []
    started = time.perf_counter()
    for call_id, data in audio:
        text = transcribe_conversation(transcriber, data, premium=True).text
        errors.append(word_error_rate(references[call_id], text))
    wall = time.perf_counter() - started
    label = f"{device} {transcriber.compute_type}"
    threads_note = f", {threads} threads" if device == "cpu" else ""
    return (
        f"{label:<18} {seconds / wall:8.1f} audio s/s  ({seconds:.0f} audio s in {wall:.1f} s; "
        f"model load {load:.1f} s; mean WER {statistics.mean(errors):.3f}{threads_note})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="passes over the demo calls (default 2)")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"default {DEFAULT_CONFIGS}")
    args = parser.parse_args(argv)
    try:
        configs = parse_configs(args.configs)
        if args.repeat < 1:
            raise ValueError("--repeat must be 1 or more")
    except ValueError as exc:
        print(f"gpu_stt: {exc}", file=sys.stderr)
        return 2

    from callpipe.demo_calls import load_demo_calls
    from callpipe.stt import locate_model

    calls = load_demo_calls()
    audio = [(call.call_id, call.audio) for _ in range(args.repeat) for call in calls]
    references = {call.call_id: call.reference_text for call in calls}
    gpus = cuda_devices()
    print(
        f"model {locate_model(None).name}; {len(audio)} calls ({len(calls)} demo calls x {args.repeat}); "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); CUDA devices: {gpus}; "
        f"load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    failed = 0
    for device, compute in configs:
        label = f"{device} {compute}"
        if device == "cuda" and gpus == 0:
            print(f"{label:<18} no CUDA: CTranslate2 sees no CUDA device, skipped", flush=True)
            continue
        try:
            print(run_config(device, compute, audio, references), flush=True)
        except Exception as exc:  # one broken configuration (e.g. a missing cuBLAS) must not hide the others
            failed += 1
            message = (str(exc).strip().splitlines() or [""])[0][:300]
            print(f"{label:<18} failed: {type(exc).__name__}: {message}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
