"""Step times of a call-date run in process against the same run through dagster-celery workers.

Records the same demo calls on four call dates (fresh local store, fresh SQLite instance), then
runs ``callpipe.batch.run_partitions`` on two dates in this process (cold: models load in the
first run; warm: the second run reuses them) and on two dates through a ``gpu`` and a ``dagster``
Celery worker (started here with the README's command, ``-c 1``, Redis db 5). Prints the seconds of
each step from the runs' event logs (STEP_START to STEP_SUCCESS), the worker that ran it, and each
run's wall time. The machine's other load shows in the numbers: compare runs of one invocation.

    .venv/bin/python benchmarks/celery_steps.py [CALLS...]   # default: saldo tarjeta
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

BROKER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
STEPS = ("recordings", "transcripts", "corrected_transcripts", "call_sentiment", "call_analytics")


def main() -> None:
    calls = sys.argv[1:] or ["saldo", "tarjeta"]
    root = Path(tempfile.mkdtemp(prefix="callpipe-celery-bench-"))
    os.chdir(Path(__file__).resolve().parents[1])
    os.environ.update(
        DAGSTER_HOME=str(root / "dagster"),
        STORAGE_BACKEND="local",
        STORAGE_LOCAL_PATH=str(root / "recordings"),
        CELERY_BROKER_URL=BROKER,
        CELERY_RESULT_BACKEND=BROKER,
    )
    os.environ.pop("CALLPIPE_EXECUTOR", None)
    import dagster as dg
    import redis

    from callpipe.batch import ensure_dagster_home, run_partitions
    from callpipe.defs.launch import step_report
    from callpipe.storage import LocalStore
    from callpipe_tests.demo_recordings import record_demo_calls
    from callpipe_tests.scale.workers import celery_workers

    store = LocalStore(root / "recordings")
    plan = {
        "in-process cold": "2026-09-01",
        "in-process warm": "2026-09-02",
        "celery cold": "2026-09-03",
        "celery warm": "2026-09-04",
    }
    for day in plan.values():
        record_demo_calls(store, day, calls)
    ensure_dagster_home()
    dg.DagsterInstance.get().dispose()  # create the SQLite schema before the workers start
    results = {}
    for label in ("in-process cold", "in-process warm"):
        results[label] = run_partitions({plan[label]: None}, trigger="bench")["runs"][0]
    redis.Redis.from_url(BROKER).flushdb()
    os.environ["CALLPIPE_EXECUTOR"] = "celery"
    with celery_workers(BROKER, root):
        for label in ("celery cold", "celery warm"):
            results[label] = run_partitions({plan[label]: None}, trigger="bench")["runs"][0]
    redis.Redis.from_url(BROKER).flushdb()

    print(f"{len(calls)} demo calls per run ({', '.join(calls)}); seconds per step")
    print(f"{'run':<16} {'wall':>6} " + " ".join(f"{s[:12]:>12}" for s in STEPS) + "  stt worker")
    with dg.DagsterInstance.get() as instance:
        for label, run in results.items():
            if not run["success"] or run["processed"] != len(calls):
                raise SystemExit(f"{label}: run failed: {run}")
            steps = step_report(instance, run["run_id"])
            stt = {k: v for k, v in steps.items() if k.startswith("transcripts.transcribe_chunk")}
            seconds = {s: steps.get(s, {}).get("seconds") or 0.0 for s in STEPS}
            seconds["transcripts"] = sum(
                v.get("seconds") or 0.0 for k, v in steps.items() if k.startswith("transcripts")
            )
            cells = " ".join(f"{seconds[s]:>12.2f}" for s in STEPS)
            workers = ",".join(sorted({v.get("worker") or "-" for v in stt.values()})) or "-"
            print(f"{label:<16} {run['seconds']:>6.1f} {cells}  {workers}")


if __name__ == "__main__":
    main()
