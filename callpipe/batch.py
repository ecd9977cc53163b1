"""``callpipe batch``: run the Dagster graph over call-date partitions on the configured instance.

Runs execute in this process through the ``process_call_date`` job on the instance at
``DAGSTER_HOME`` (SQLite under ./data/dagster by default), so they appear in the Dagster UI next
to the runs that sensors and schedules launch.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from callpipe.defs.tags import CONCURRENCY_TAG, ONLY_TAG
from callpipe.settings import Settings


def quiet_run_config() -> dict[str, Any]:
    """Run events still reach the instance (and the UI); the terminal shows ``CALLPIPE_LOG_LEVEL``
    (default warnings) and the progress bar."""
    level = Settings.from_env(only=["CALLPIPE_LOG_LEVEL"]).callpipe_log_level
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def ensure_dagster_home() -> Path:
    """``DAGSTER_HOME`` if set, else ./data/dagster; seeded with ./dagster.yaml when it has none, with
    PostgreSQL storage when ``DAGSTER_PG_URL`` or ``DAGSTER_PG_HOST`` is set (:mod:`callpipe.deploy`)."""
    from callpipe.deploy import sync_instance_config

    home = Path(os.environ.get("DAGSTER_HOME") or "data/dagster").resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    sync_instance_config(home, Path("dagster.yaml"))
    return home


def _progress(done: int, total: int, label: str) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<40}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run_partitions(
    partitions: dict[str, list[str] | None], *, concurrent: int | None = None, trigger: str = "cli"
) -> dict[str, Any]:
    """Run ``process_call_date`` once per partition key (restricted to the listed ids when given).

    First ends the runs of killed ``callpipe batch`` processes
    (:func:`callpipe.defs.run_owners.reap_dead_runs`: marked failed, their pool slots freed), so
    that no step waits on a slot of a dead run. Each run executes in a worker thread while this
    (main) thread watches it (:mod:`callpipe.supervise`): heartbeat, pool waits reported on
    stderr, SIGTERM and SIGINT (:class:`BatchInterrupted`).
    """
    ensure_dagster_home()
    import dagster as dg

    from callpipe.defs.run_owners import reap_dead_runs
    from callpipe.leases import process_identity
    from callpipe.stage_runner import PipelineSettings
    from callpipe.supervise import Supervisor, stop_signals, terminal

    lease_seconds = PipelineSettings.from_env().lease_seconds
    started = time.perf_counter()
    runs = []
    with stop_signals() as stop, dg.DagsterInstance.get() as instance:
        for reaped in reap_dead_runs(instance):
            terminal(f"callpipe: ended run {reaped.run_id} and freed its pool slots: {reaped.reason}")
        keys = sorted(partitions)
        _progress(0, len(keys), "starting")
        for done, key in enumerate(keys, start=1):
            tags = {"callpipe/trigger": trigger, **process_identity()}
            if partitions[key]:
                tags[ONLY_TAG] = ",".join(partitions[key] or [])
            if concurrent:
                tags[CONCURRENCY_TAG] = str(concurrent)
            run_started = time.perf_counter()
            supervisor = Supervisor(instance, key, tags, lease_seconds, stop)
            result = supervisor.run(quiet_run_config())
            analytics = result.values["call_analytics"] or {"processed": [], "failed": {}}
            manifest = result.values["recordings"] or {"work": [], "skipped": {}}
            runs.append(
                {
                    "partition": key,
                    "run_id": result.run_id,
                    "success": result.success,
                    "to_process": len(manifest["work"]),
                    "skipped": len(manifest["skipped"]),
                    "processed": len(analytics["processed"]),
                    "failed": len(analytics["failed"]),
                    "failures": analytics["failed"],
                    "seconds": round(time.perf_counter() - run_started, 2),
                }
            )
            _progress(done, len(keys), key)
    return {
        "runs": runs,
        "partitions": len(runs),
        "processed": sum(r["processed"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
        "skipped": sum(r["skipped"] for r in runs),
        "seconds": round(time.perf_counter() - started, 2),
        "dagster_home": os.environ["DAGSTER_HOME"],
    }


def single(recording_id: str, *, concurrent: int | None = None) -> dict[str, Any]:
    """Process one recording (again, if it was processed) through its partition's run."""
    from callpipe.defs.partitions import partition_key_for
    from callpipe.storage import get_audio_storage

    store = get_audio_storage()
    meta = store.get_metadata(recording_id)
    if meta.processed:
        store.request_reprocess(recording_id)
    return run_partitions({partition_key_for(meta.timestamp): [recording_id]}, concurrent=concurrent)


def unprocessed(*, limit: int | None = None, concurrent: int | None = None) -> dict[str, Any]:
    """Every call date with unprocessed recordings (at most ``limit`` recordings in all)."""
    from callpipe.defs.partitions import partition_key_for
    from callpipe.storage import get_audio_storage

    store = get_audio_storage()
    chosen: dict[str, list[str]] = {}
    cursor, count = None, 0
    while limit is None or count < limit:
        page = store.list_recordings(processed=False, limit=1000, cursor=cursor)
        for ref in page.items:
            if limit is not None and count >= limit:
                break
            if ref.timestamp is not None:
                chosen.setdefault(partition_key_for(ref.timestamp), []).append(ref.recording_id)
                count += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    restricted: dict[str, list[str] | None] = {
        k: (v if limit is not None else None) for k, v in chosen.items()
    }
    return run_partitions(restricted, concurrent=concurrent)


def date_range(start: date, end: date, *, concurrent: int | None = None) -> dict[str, Any]:
    """Every call date from ``start`` to ``end`` inclusive."""
    if end < start:
        raise ValueError(f"--end-date {end} is before --start-date {start}")
    if (end - start).days > 366:
        raise ValueError("date range longer than a year; run it in pieces or backfill from the UI")
    days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    return run_partitions(dict.fromkeys(days), concurrent=concurrent)
