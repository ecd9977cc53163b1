"""Latency of the online correction: ``await pipeline.process_online(...)`` per call.

Generates Spanish call utterances of 10-40 words that mix filler speech with words from the
shipped confusion dictionary (each with one of its context cues, so many fixes really fire),
gives every word a confidence drawn from a mix of sure and unsure values, then awaits
``process_online`` once per utterance inside one event loop, timing each await with
``perf_counter_ns``. Prints p50, p95, p99 and max in milliseconds.

Usage: .venv/bin/python benchmarks/online_latency.py [--calls 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callpipe.recorder import ConfusionDictionary, OnlineCorrectionPipeline

FILLER_TEXT = (
    "hola buenos días quiero necesito llamaba porque me han dicho que la el de en mi su por favor "
    "gracias tengo una un problema con esta este mes semana pasada ayer hoy mañana no sé si puede "
    "ayudarme revisar consultar cambiar pagar factura recibo cuenta tarjeta línea fibra luz gas agua "
    "compañía banco oficina teléfono móvil contrato tarifa importe euros cuarenta y cinco veinte cien "
    "número cliente titular dirección correo también todavía nada mucho poco otra vez llamado esperando"
)
FILLER = FILLER_TEXT.split()
PUNCT = ("", "", "", "", ",", ".", "?")


def make_utterances(
    dictionary: ConfusionDictionary, count: int, rng: random.Random
) -> list[tuple[str, list]]:
    """(text, confidences) pairs of 10-40 whitespace words, about a quarter from the dictionary."""
    entries = list(dictionary.entries)
    out: list[tuple[str, list]] = []
    for _ in range(count):
        length = rng.randint(10, 40)
        words: list[str] = []
        while len(words) < length:
            if rng.random() < 0.25:
                entry = rng.choice(entries)
                chunk = []
                if entry.before and rng.random() < 0.7:
                    chunk.extend(rng.choice(entry.before).split())
                chunk.extend(entry.wrong.split())
                if entry.after and rng.random() < 0.5:
                    chunk.extend(rng.choice(entry.after).split())
                words.extend(chunk)
            else:
                words.append(rng.choice(FILLER))
        words = words[:length]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        words = [w + rng.choice(PUNCT) for w in words]
        confidences = [
            rng.uniform(0.1, 0.69) if rng.random() < 0.35 else rng.uniform(0.7, 1.0) for _ in words
        ]
        out.append((" ".join(words), confidences))
    return out


async def measure(
    pipeline: OnlineCorrectionPipeline, utterances: list, calls: int
) -> tuple[list[int], list[int], int, int]:
    """Per-call wall and CPU nanoseconds, number of corrections, number of clarifications.

    CPU time (this thread's) is printed too because on a shared machine the wall-clock tail
    mostly shows other processes taking the core away, not the code.
    """
    timings: list[int] = []
    cpu: list[int] = []
    corrections = clarifications = 0
    for k in range(calls):
        text, confidences = utterances[k % len(utterances)]
        cpu_started = time.thread_time_ns()
        started = time.perf_counter_ns()
        result = await pipeline.process_online(text, confidences, "bench")
        timings.append(time.perf_counter_ns() - started)
        cpu.append(time.thread_time_ns() - cpu_started)
        corrections += len(result["corrections_made"])
        clarifications += result["needs_clarification"]
    return timings, cpu, corrections, clarifications


def percentile(sorted_values: list[int], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index] / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--utterances", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    load_started = time.perf_counter()
    dictionary = ConfusionDictionary.load_default()
    pipeline = OnlineCorrectionPipeline(dictionary)
    load_ms = (time.perf_counter() - load_started) * 1e3
    utterances = make_utterances(dictionary, args.utterances, random.Random(args.seed))
    asyncio.run(measure(pipeline, utterances, 500))  # warm-up, not reported
    timings, cpu, corrections, clarifications = asyncio.run(measure(pipeline, utterances, args.calls))
    timings.sort()
    cpu.sort()
    words = [len(text.split()) for text, _ in utterances]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.2f}, python {platform.python_version()}"
    )
    print(f"dictionary: {len(dictionary)} entries, loaded in {load_ms:.1f} ms")
    print(
        f"calls: {len(timings)} over {len(utterances)} utterances of {min(words)}-{max(words)} words "
        f"(mean {statistics.mean(words):.1f}); corrections {corrections}, clarifications {clarifications}"
    )
    for label, values in (("wall (perf_counter_ns)", timings), ("cpu (thread_time_ns)", cpu)):
        print(
            f"process_online {label} ms: p50 {percentile(values, 0.50):.3f}  "
            f"p95 {percentile(values, 0.95):.3f}  p99 {percentile(values, 0.99):.3f}  "
            f"max {values[-1] / 1e6:.3f}  mean {statistics.mean(values) / 1e6:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
