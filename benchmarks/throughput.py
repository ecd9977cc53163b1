"""Throughput of the offline pipeline: recordings/hour and audio-hours/hour for N demo calls.

For each N (``--sizes``, default 10,50,200): N generated calls are recorded through the online
``Recorder`` into a fresh local store on one call date, then one fresh process runs
``callpipe.batch.run_partitions`` for that date on a fresh ``DAGSTER_HOME`` (SQLite), as
``callpipe batch`` does. Each N's block is printed as soon as it is done.

Calls are generated once into ``--cache-dir`` (reused afterwards): each one joins the opening of
one dialogue of ``callpipe.demo_calls.DIALOGUES``, the middle of another and the close of a third,
spoken at one of four speeds by one of four agent and four customer espeak-ng voices. The live
transcript given to the recorder is the script with live-ASR-like confidences (0.45-0.85), so
its estimated WER is high and every call takes the Whisper path (the expensive, common case).

Times, per N:

- process: wall time of the batch process (interpreter start, imports, models, the run);
- run: wall time of the Dagster run (``execute_in_process``; models load lazily inside it);
- steps: sum over the run's steps of STEP_START..STEP_SUCCESS (the in-process executor runs
  steps one after another), from the run's event log;
- stage time: sum over recordings and stages of ``processing_metrics.stage_seconds`` (thread
  seconds inside the stage functions, lazy model loading included); with ``max_concurrent``
  threads busy, its wall-clock share is about stage time / concurrency;
- Dagster overhead = run - steps (run start/finish, resource set-up, step hand-offs, events);
- in-step overhead = steps - stage time / concurrency (manifest, leases, metadata reads and
  writes, summary, a thread idle at a stage's tail).

Separately, an empty call date is run three times in one process: the Dagster run's fixed
cost with nothing to process. And faster-whisper alone (same bundled model via
``callpipe.stt.locate_model()``, int8, beam 5, VAD, word timestamps, mono mix, one call after
another, in a fresh process) on the same ``--whisper-n`` calls gives the ratio
pipeline/whisper-alone (target <= 1.3).

    .venv/bin/python benchmarks/throughput.py --sizes 10,50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GENERATOR_VERSION = 1
SPEEDS = (135, 150, 165, 180)
AGENT_VOICES = ("es", "es+f3", "es+m3", "es+f5")
CUSTOMER_VOICES = ("es-419", "es-419+f2", "es-419+m2", "es-419+f4")

RUN_DAY = r"""
import json, sys
from callpipe.batch import run_partitions
print(json.dumps(run_partitions({day: None for day in sys.argv[1:]})))
"""

EMPTY_DAYS = r"""
import json, sys
from callpipe.batch import run_partitions
print(json.dumps([run_partitions({sys.argv[1]: None})["runs"][0] for _ in range(3)]))
"""

WHISPER_ALONE = r"""
import json, sys, time
started = time.perf_counter()
from callpipe.stt import locate_model  # first: the same OpenMP settings as the pipeline's Whisper
from callpipe.stt.audio_input import decode_channels
from faster_whisper import WhisperModel
model = WhisperModel(str(locate_model()), device="cpu", compute_type="int8", local_files_only=True)
loaded = time.perf_counter()
audio = 0.0
for path in sys.argv[1:]:
    mono = decode_channels(path).mean(axis=0)
    segments, info = model.transcribe(mono, language="es", beam_size=5, vad_filter=True, word_timestamps=True)
    list(segments)
    audio += info.duration
done = time.perf_counter()
print(json.dumps({"load": loaded - started, "transcribe": done - loaded, "audio": audio}))
"""


# ---- demo calls ----------------------------------------------------------------------------------
def call_plan(index: int) -> dict[str, Any]:
    """The script of generated call ``index``: three dialogues' turns, a speed and two voices."""
    from callpipe.demo_calls import DIALOGUES

    names = sorted(DIALOGUES)
    rng = random.Random(f"callpipe-throughput-{index}")
    opening, middle, closing = (rng.choice(names) for _ in range(3))
    turns = DIALOGUES[opening][:2] + DIALOGUES[middle][2:4] + DIALOGUES[closing][4:]
    return {
        "version": GENERATOR_VERSION,
        "dialogues": [opening, middle, closing],
        "turns": [list(turn) for turn in turns],
        "speed": rng.choice(SPEEDS),
        "agent_voice": AGENT_VOICES[index % len(AGENT_VOICES)],
        "customer_voice": rng.choice(CUSTOMER_VOICES),
    }


@contextmanager
def demo_voices(agent: str, customer: str) -> Iterator[None]:
    """``synthesize_call`` reads its voices from module constants; set them for one call."""
    import callpipe.demo_calls as demo

    saved = demo.AGENT_VOICE, demo.CUSTOMER_VOICE
    demo.AGENT_VOICE, demo.CUSTOMER_VOICE = agent, customer
    try:
        yield
    finally:
        demo.AGENT_VOICE, demo.CUSTOMER_VOICE = saved


def ensure_calls(cache: Path, count: int) -> list[tuple[Path, dict[str, Any]]]:
    """Calls 0..count-1 as WAV files in ``cache``, generated where missing or made from another plan."""
    from callpipe.demo_calls import synthesize_call

    cache.mkdir(parents=True, exist_ok=True)
    calls, made, started = [], 0, time.perf_counter()
    for index in range(count):
        plan = call_plan(index)
        wav, meta = cache / f"call-{index:04d}.wav", cache / f"call-{index:04d}.json"
        if not (wav.is_file() and meta.is_file() and json.loads(meta.read_text()) == plan):
            with demo_voices(plan["agent_voice"], plan["customer_voice"]):
                audio = synthesize_call([tuple(t) for t in plan["turns"]], speed=plan["speed"])
            for path, data in ((wav, audio), (meta, json.dumps(plan).encode())):
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            made += 1
        calls.append((wav, plan))
    if made:
        print(f"generated {made} calls into {cache} in {time.perf_counter() - started:.1f} s", flush=True)
    return calls


def live_confidences(text: str, seed: int) -> list[dict[str, Any]]:
    """Per-token confidences a live ASR might give (0.45-0.85), aligned to the recorder's tokens."""
    from callpipe.recorder.dictionary import tokenize

    rng = random.Random(seed)
    return [{"word": t.text, "confidence": round(rng.uniform(0.45, 0.85), 3)} for t in tokenize(text)]


def record_calls(root: Path, calls: list[tuple[Path, dict[str, Any]]], day: date) -> float:
    """Record ``calls`` on ``day`` (10:00 UTC, one a minute) through the online Recorder; seconds."""
    from callpipe.recorder import Recorder
    from callpipe.storage import LocalStore

    recorder = Recorder(LocalStore(root))
    first = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    started = time.perf_counter()
    for index, (wav, plan) in enumerate(calls):
        text = " ".join(t[1] for t in plan["turns"])
        recorder.record_sync(
            wav.read_bytes(),
            f"bench-conv-{index:04d}",
            transcription=text,
            word_confidences=live_confidences(text, index),
            timestamp=first + timedelta(minutes=index),
            audio_format="wav",
        )
    return time.perf_counter() - started


# ---- measuring -----------------------------------------------------------------------------------
def child_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(tmp / "recordings"),
        "DAGSTER_HOME": str(tmp / "dagster"),
        "PYTHONWARNINGS": "ignore",
    }


def run_child(code: str, args: list[str], env: dict[str, str]) -> tuple[Any, float]:
    """Run ``code`` in a fresh interpreter; its JSON stdout and the process wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=REPO, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"child process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def step_seconds(dagster_home: Path, run_id: str) -> dict[str, float]:
    """STEP_START..STEP_SUCCESS (or failure) wall seconds per step, from the run's event log."""
    import dagster as dg

    starts: dict[str, float] = {}
    out: dict[str, float] = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or entry.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                starts[entry.step_key] = entry.timestamp
            elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                out[entry.step_key] = entry.timestamp - starts.get(entry.step_key, entry.timestamp)
    return out


def stage_totals(root: Path, day: date) -> tuple[dict[str, float], float, int, int]:
    """Stage seconds per stage, audio seconds, calls sent through Whisper and calls that kept
    Whisper's transcript, over the day's calls."""
    from callpipe.storage import LocalStore
    from callpipe.stt import needs_retranscription

    totals: dict[str, float] = defaultdict(float)
    audio, whisper, kept = 0.0, 0, 0
    for meta in LocalStore(root).iter_recordings(day.isoformat()):
        audio += meta.audio.duration_seconds if meta.audio else 0.0
        live = meta.online_transcription
        whisper += bool(live and needs_retranscription(live.estimated_wer or 1.0))
        kept += bool(meta.transcription.retranscribed)
        for stage, seconds in meta.processing_metrics.stage_seconds.items():
            totals[stage] += seconds
    return dict(totals), audio, whisper, kept


def concurrency() -> int:
    from callpipe.stage_runner import PipelineSettings

    return PipelineSettings.from_env().max_concurrent


def measure_size(calls: list[tuple[Path, dict[str, Any]]], day: date) -> dict[str, Any]:
    """Record ``calls`` into a fresh store, run the day in a fresh process; every number of one N."""
    with tempfile.TemporaryDirectory(prefix="callpipe-throughput-") as name:
        tmp = Path(name)
        recorded = record_calls(tmp / "recordings", calls, day)
        batch, process_wall = run_child(RUN_DAY, [day.isoformat()], child_env(tmp))
        run = batch["runs"][0]
        steps = step_seconds(tmp / "dagster", run["run_id"])
        stages, audio, whisper, kept = stage_totals(tmp / "recordings", day)
    return {
        "n": len(calls),
        "recorded_s": recorded,
        "process_s": process_wall,
        "run_s": run["seconds"],
        "processed": run["processed"],
        "failed": run["failed"],
        "whisper": whisper,
        "kept_whisper": kept,
        "audio_s": audio,
        "steps": steps,
        "stages": stages,
        "load": os.getloadavg()[0],
    }


def report_size(m: dict[str, Any], workers: int) -> None:
    audio_min = m["audio_s"] / 60
    run_s, process_s = m["run_s"], m["process_s"]
    steps_s = sum(m["steps"].values())
    stage_s = sum(m["stages"].values())
    by_stage = ", ".join(f"{k} {v:.1f}" for k, v in sorted(m["stages"].items(), key=lambda kv: -kv[1]))
    by_step = ", ".join(f"{k} {v:.1f}" for k, v in sorted(m["steps"].items(), key=lambda kv: -kv[1])[:4])
    transcripts = sum(v for k, v in m["steps"].items() if k == "transcripts" or k.startswith("transcripts."))
    lines = [
        f"N={m['n']}: {m['processed']} processed, {m['failed']} failed, {m['whisper']} re-transcribed by "
        f"Whisper ({m['kept_whisper']} kept its text), {audio_min:.1f} audio min "
        f"(recording them online took {m['recorded_s']:.2f} s, not counted)",
        f"  batch process {process_s:.1f} s, run {run_s:.1f} s: {3600 * m['n'] / run_s:.0f} recordings/hour, "
        f"{m['audio_s'] / run_s:.2f} audio-hours/hour (by run wall); "
        f"{3600 * m['n'] / process_s:.0f} recordings/hour by process wall",
        f"  seconds per audio minute: run {run_s / audio_min:.2f}, process {process_s / audio_min:.2f}, "
        f"stage time {stage_s / audio_min:.2f} (stt {m['stages'].get('stt', 0) / audio_min:.2f}), "
        f"transcripts step {transcripts / audio_min:.2f}",
        f"  stage time (thread-s, sum over calls): {by_stage}; total {stage_s:.1f}, "
        f"/ concurrency {workers} = {stage_s / workers:.1f} s wall",
        f"  Dagster overhead (run - steps) {run_s - steps_s:.1f} s; in-step overhead "
        f"(steps - stage/{workers}) {steps_s - stage_s / workers:.1f} s; steps {steps_s:.1f} s: {by_step}",
        f"  (1-min load average at the end: {m['load']:.2f} on {os.cpu_count()} CPUs)",
    ]
    print("\n".join(lines), flush=True)


def report_empty(day: date) -> None:
    with tempfile.TemporaryDirectory(prefix="callpipe-throughput-") as name:
        tmp = Path(name)
        runs, wall = run_child(EMPTY_DAYS, [day.isoformat()], child_env(tmp))
        steps = [sum(step_seconds(tmp / "dagster", r["run_id"]).values()) for r in runs]
    print(
        "empty call date, 3 runs in one process (Dagster run start/finish, 9 steps, nothing to do): "
        + ", ".join(f"{r['seconds']:.2f} s (steps {s:.2f})" for r, s in zip(runs, steps, strict=True))
        + f"; process {wall:.1f} s",
        flush=True,
    )


def report_whisper(calls: list[tuple[Path, dict[str, Any]]], pipeline: dict[str, Any] | None) -> None:
    alone, wall = run_child(WHISPER_ALONE, [str(path) for path, _ in calls], dict(os.environ))
    print(
        f"faster-whisper alone, N={len(calls)} ({alone['audio'] / 60:.1f} audio min; int8, beam 5, VAD, mono "
        f"mix, one call after another): process {wall:.1f} s (model load {alone['load']:.1f} s, "
        f"transcription {alone['transcribe']:.1f} s, {alone['transcribe'] / (alone['audio'] / 60):.2f} s per "
        f"audio min)",
        flush=True,
    )
    if pipeline is not None:
        inner = alone["load"] + alone["transcribe"]
        print(
            f"ratio pipeline / whisper alone at N={len(calls)}: {pipeline['process_s'] / wall:.2f} by "
            f"process wall, {pipeline['run_s'] / inner:.2f} by run vs load+transcribe (target <= 1.3)",
            flush=True,
        )


def report_fit(results: list[dict[str, Any]]) -> None:
    """Least-squares run wall = fixed + slope x audio minutes over the sizes measured."""
    if len(results) < 2:
        return
    xs = [r["audio_s"] / 60 for r in results]
    ys = [r["run_s"] for r in results]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    fixed = mean_y - slope * mean_x
    residuals = ", ".join(
        f"N={r['n']} {y - (fixed + slope * x):+.1f} s" for r, x, y in zip(results, xs, ys, strict=True)
    )
    print(
        f"fit over N={','.join(str(r['n']) for r in results)}: run wall = {fixed:.1f} s + {slope:.2f} s per "
        f"audio min (residuals {residuals})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200", help="comma-separated numbers of calls")
    parser.add_argument("--whisper-n", type=int, default=50, help="calls for faster-whisper alone (0: skip)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "callpipe" / "throughput",
    )
    parser.add_argument("--no-empty", action="store_true", help="skip the empty-date runs")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        parser.error("--sizes needs positive numbers, e.g. 10,50,200")

    calls = ensure_calls(args.cache_dir, max([*sizes, args.whisper_n]))
    day = (datetime.now(UTC) - timedelta(days=2)).date()
    workers = concurrency()
    import callpipe.stt  # noqa: F401  (sets the OpenMP wait policy the children inherit)

    print(
        f"machine: {os.cpu_count()} CPUs; pipeline max_concurrent={workers}; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; call date {day}; "
        f"calls cached in {args.cache_dir}",
        flush=True,
    )
    if not args.no_empty:
        report_empty(day - timedelta(days=1))
    results: list[dict[str, Any]] = []
    for n in sizes:
        started = time.perf_counter()
        results.append(measure_size(calls[:n], day))
        report_size(results[-1], workers)
        print(f"  (N={n} took {time.perf_counter() - started:.0f} s to measure)", flush=True)
        if n == args.whisper_n:
            report_whisper(calls[:n], results[-1])
    if args.whisper_n and args.whisper_n not in sizes:
        report_whisper(calls[: args.whisper_n], None)
    report_fit(results)


if __name__ == "__main__":
    main()
