"""Sensors: unprocessed recordings, and reprocessing after a stage version changes.

``callpipe reprocess`` flags recordings and makes them unprocessed again
(:meth:`~callpipe.storage.RecordingStore.request_reprocess`), so one path, the unprocessed
sensor, picks up new and flagged recordings alike; the reprocessing sensor covers what no
flag marks: results made by an older stage version.

Both read only the store's index (pending markers, per-date listings), never every metadata
document; run keys carry a digest of what makes a request new, so repeats are deduplicated and
new arrivals for an already processed day still get a run.
"""

import hashlib
import json
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from callpipe.defs.jobs import process_call_date
from callpipe.defs.partitions import call_date_partitions, partition_key_for
from callpipe.defs.resources import RecordingStoreResource
from callpipe.pipeline import stage_versions

MAX_REQUESTS_PER_TICK = 50


def _digest(values: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()[:16]


def _load_cursor(raw: str | None) -> dict[str, str]:
    try:
        data = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _utc_edges(day: str) -> tuple[datetime, datetime]:
    """First and last instant of a UTC call date (the store's index groups by UTC date)."""
    start = datetime.combine(date.fromisoformat(day), time(0), tzinfo=UTC)
    return start, start + timedelta(days=1) - timedelta(microseconds=1)


def _in_range(partition_key: str) -> bool:
    """Whether the call date is a partition now (not before the start date, not after today)."""
    return call_date_partitions.has_partition_key(partition_key)


@dg.sensor(job=process_call_date, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def unprocessed_recordings_sensor(
    context: dg.SensorEvaluationContext, store: RecordingStoreResource
) -> dg.SensorResult:
    """A run per call date that has unprocessed recordings not yet requested in this form."""
    backend = store.get_store()
    by_partition: dict[str, list[str]] = defaultdict(list)
    cursor = None
    while True:
        page = backend.list_recordings(processed=False, limit=1000, cursor=cursor)
        for ref in page.items:
            if ref.timestamp is not None:
                by_partition[partition_key_for(ref.timestamp)].append(ref.recording_id)
        cursor = page.next_cursor
        if cursor is None:
            break
    seen = _load_cursor(context.cursor)
    requests = []
    for key in sorted(by_partition):
        digest = _digest(by_partition[key])
        if seen.get(key) == digest or not _in_range(key):
            continue
        if len(requests) == MAX_REQUESTS_PER_TICK:
            break  # the rest keep their old digest and come on the next tick
        requests.append(
            dg.RunRequest(
                partition_key=key,
                run_key=f"unprocessed:{key}:{digest}",
                tags={
                    "callpipe/trigger": "unprocessed-sensor",
                    "callpipe/pending": str(len(by_partition[key])),
                },
            )
        )
        seen[key] = digest
    current = {k: v for k, v in seen.items() if k in by_partition}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))


@dg.sensor(job=process_call_date, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def reprocessing_sensor(
    context: dg.SensorEvaluationContext, store: RecordingStoreResource
) -> dg.SensorResult:
    """After a stage's version changes, a run for every call date with recordings (each run
    skips, cheaply, the recordings already processed by the current versions)."""
    backend = store.get_store()
    state = _load_cursor(context.cursor)
    versions = json.dumps(stage_versions(), sort_keys=True)
    versions_digest = _digest([versions])
    requests: list[dg.RunRequest] = []
    if state.get("versions") not in (None, versions_digest):
        keys = {partition_key_for(edge) for day in backend.list_dates() for edge in _utc_edges(day)}
        for key in sorted(keys):
            if _in_range(key):
                requests.append(
                    dg.RunRequest(
                        partition_key=key,
                        run_key=f"stale:{key}:{versions_digest}",
                        tags={"callpipe/trigger": "stale-stage-versions"},
                    )
                )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"versions": versions_digest}))
