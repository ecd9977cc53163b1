"""End-to-end ``callpipe batch`` on the demo calls against faster-whisper alone on the same audio.

Both sides run as fresh processes (model loading included), one after the other, on this
machine: (1) faster-whisper with the same bundled model, beam 5 and VAD, on each demo call;
(2) ``callpipe batch --mode date_range`` over the day holding the demo calls (online stage
done beforehand, not timed), on a fresh store and a fresh Dagster instance. Prints seconds,
the ratio (target <= 1.3) and where the pipeline's time went.

    .venv/bin/python benchmarks/pipeline_overhead.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

WHISPER_ALONE = r"""
import sys, time
from faster_whisper import WhisperModel
from callpipe.demo_calls import load_demo_calls
from callpipe.stt import locate_model
from callpipe.stt.audio_input import decode_channels
started = time.perf_counter()
model = WhisperModel(str(locate_model()), device="cpu", compute_type="int8", local_files_only=True)
audio = 0.0
for call in load_demo_calls():
    samples = decode_channels(call.audio).mean(axis=0)
    segments, info = model.transcribe(samples, language="es", beam_size=5, vad_filter=True,
                                      word_timestamps=True)
    list(segments)
    audio += info.duration
print(f"{time.perf_counter() - started:.3f} {audio:.1f}")
"""


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "STORAGE_BACKEND": "local", "STORAGE_LOCAL_PATH": f"{tmp}/recordings",
               "DAGSTER_HOME": f"{tmp}/dagster", "PYTHONWARNINGS": "ignore"}
        Path(env["DAGSTER_HOME"]).mkdir()
        day = (datetime.now(UTC) - timedelta(days=2)).date()
        record = (
            "from datetime import datetime, UTC\n"
            "from callpipe.demo_calls import load_demo_calls\nfrom callpipe.recorder import Recorder\n"
            "r = Recorder()\n"
            f"ts = datetime({day.year}, {day.month}, {day.day}, 10, tzinfo=UTC)\n"
            "for c in load_demo_calls():\n"
            "    r.record_sync(c.audio, c.conversation_id, transcription=c.live_text,\n"
            "        word_confidences=c.live_word_confidences, timestamp=ts, audio_format='flac')\n"
        )
        subprocess.run([python, "-c", record], env=env, check=True, cwd=repo)

        started = time.perf_counter()
        out = subprocess.run([python, "-c", WHISPER_ALONE], env=env, check=True, cwd=repo,
                             capture_output=True, text=True).stdout.split()
        whisper_wall = time.perf_counter() - started
        whisper_inner, audio_seconds = float(out[0]), float(out[1])

        started = time.perf_counter()
        batch = subprocess.run(
            [python, "-m", "callpipe.cli", "batch", "--mode", "date_range", "--start-date", day.isoformat(),
             "--end-date", day.isoformat()], env=env, check=True, cwd=repo, capture_output=True, text=True)
        pipeline_wall = time.perf_counter() - started
        stats = json.loads(batch.stdout)

        stage_totals: dict[str, float] = defaultdict(float)
        retranscribed = 0
        for path in Path(f"{tmp}/recordings/metadata").rglob("*.json"):
            meta = json.loads(path.read_text())
            retranscribed += bool(meta["transcription"]["retranscribed"])
            for stage, seconds in meta["processing_metrics"]["stage_seconds"].items():
                stage_totals[stage] += seconds

    print(f"demo calls: {stats['processed']} processed, {stats['failed']} failed, "
          f"{audio_seconds:.1f} s of audio, {retranscribed} re-transcribed")
    print(f"faster-whisper alone (beam 5, VAD, process incl. model load): {whisper_wall:.1f} s "
          f"(in-process {whisper_inner:.1f} s)")
    print(f"callpipe batch end to end (process, models, Dagster run):    {pipeline_wall:.1f} s "
          f"(run {stats['seconds']:.1f} s)")
    print(f"ratio pipeline / whisper alone: {pipeline_wall / whisper_wall:.2f} (target <= 1.3)")
    print("pipeline stage seconds (sum over calls): "
          + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stage_totals.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
