"""Sensors: unprocessed recordings, and reprocessing after a stage version changes.

``callpipe reprocess`` flags recordings and makes them unprocessed again
(:meth:`~callpipe.storage.RecordingStore.request_reprocess`), so one path, the unprocessed
sensor, picks up new and flagged recordings alike; the reprocessing sensor covers what no
flag marks: results made by an older stage version.

Both read only the store's index, never metadata documents: the unprocessed sensor lists the
names of the pending markers (their UTC date and time of day are in the key, so each maps to a
call date of ``CALLPIPE_TIMEZONE`` without a read); it reads markers only where a store still
holds names without the time (written before it was added), for a UTC date that spans two call
dates and whose such markers changed since the last tick. The reprocessing sensor lists dates.
Run keys carry a digest of what makes a request new, so repeats are deduplicated and new
arrivals for an already processed day still get a run.

No-op runs: a call date whose run is still queued or in progress gets no second run (its pending
set shrinks as that run works, which used to look like new work and launched runs for work
already being done; two runs of one day also shared the filesystem IO manager's files); it is
looked at again once that run ends. A whole-day run tags itself with the pending set it leaves
(failed recordings keep their pending marker): that exact set gets no new run, e.g. on the first
tick of a fresh sensor cursor; their retries come with the nightly schedule's sweep of days still
pending, or with the day's next run.
With the default executor the sensors' runs execute in one
process (as ``callpipe batch`` does): the stage models load once per run instead of once per
step, and a run with nothing to do takes seconds instead of one process start per step.
"""

import hashlib
import json
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg

from callpipe.defs.jobs import process_call_date
from callpipe.defs.partitions import TIMEZONE, call_date_partitions, partition_key_for
from callpipe.defs.resources import RecordingStoreResource
from callpipe.deploy import executor_mode
from callpipe.pipeline import stage_versions
from callpipe.storage import RecordingStore

MAX_REQUESTS_PER_TICK = 50
LEFT_PENDING_TAG = "callpipe/left_pending"
"""Run tag set by ``call_analytics`` at the end of a whole-day run: the digest of the day's pending
recordings it left (e.g. failed for good), as :func:`pending_partitions` computes it, or ``none``."""
SPLITS = "utc_dates"  # cursor key of the split UTC dates (never a partition key)


def _digest(values: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()[:16]


def _load_cursor(raw: str | None) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _utc_edges(day: str) -> tuple[datetime, datetime]:
    """First and last instant of a UTC call date (the store's index groups by UTC date)."""
    start = datetime.combine(date.fromisoformat(day), time(0), tzinfo=UTC)
    return start, start + timedelta(days=1) - timedelta(microseconds=1)


ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def busy_partitions(instance: dg.DagsterInstance) -> set[str]:
    """Call dates with a ``process_call_date`` run queued or in progress (one query)."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=process_call_date.name, statuses=ACTIVE_STATUSES))
    return {key for run in runs if (key := run.tags.get("dagster/partition"))}


def record_left_pending(instance: dg.DagsterInstance, run_id: str, backend: RecordingStore, key: str) -> None:
    """Tag the run with what it left pending on its call date (see :data:`LEFT_PENDING_TAG`)."""
    left = pending_partitions(backend, TIMEZONE, {})[0].get(key)
    instance.add_run_tags(run_id, {LEFT_PENDING_TAG: left[0] if left else "none"})


def left_by_last_run(instance: dg.DagsterInstance, key: str) -> str | None:
    """The pending digest the call date's latest day run left, ``None`` when unknown (no run, or
    the latest one stopped before writing the day's analytics)."""
    for run in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": key}), limit=10):
        if LEFT_PENDING_TAG in run.tags:
            return run.tags[LEFT_PENDING_TAG]
        if run.job_name == process_call_date.name:
            return None
    return None


def _instance(context: dg.SensorEvaluationContext) -> dg.DagsterInstance | None:
    """The context's instance; ``None`` when evaluated without one (then no run is known)."""
    try:
        return context.instance
    except dg.DagsterInvariantViolationError:
        return None


def run_config() -> dict[str, Any]:
    """In-process execution for the sensors' runs under the default executor (see module doc);
    Celery and Kubernetes executors keep their own configuration."""
    if executor_mode() == "default":
        return {"execution": {"config": {"in_process": {}}}}
    return {}


def _in_range(partition_key: str) -> bool:
    """Whether the call date is a partition now (not before the start date, not after today)."""
    return call_date_partitions.has_partition_key(partition_key)


def _split_day(backend: RecordingStore, day: str, ids: list[str], timezone: str) -> dict[str, list[Any]]:
    """``{partition: [digest, count]}`` of pending recordings of a UTC date that spans two
    partitions whose marker names lack the time of day: the only case where the sensor reads
    index entries (for their timestamps)."""
    by_partition: dict[str, list[str]] = defaultdict(list)
    for ref in backend.pending_refs(day, ids):
        if ref.timestamp is not None:
            by_partition[partition_key_for(ref.timestamp, timezone)].append(ref.recording_id)
    return {key: [_digest(members), len(members)] for key, members in by_partition.items()}


def _known_split(memo: object, names: str) -> bool:
    """Whether a cursor's record of a split UTC date is well formed and for the same pending ids."""
    if not isinstance(memo, dict) or memo.get("names") != names or not isinstance(memo.get("parts"), dict):
        return False
    return all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)
        for v in memo["parts"].values()
    )


def pending_partitions(
    backend: RecordingStore, timezone: str, splits: dict[str, Any]
) -> tuple[dict[str, tuple[str, int]], dict[str, Any]]:
    """``{partition: (digest of its pending ids, count)}`` and the new record of split UTC dates.

    The store lists pending ids and their UTC time of day by UTC date from key names alone. A UTC
    date inside one partition (always, in UTC) maps whole; one that spans two maps each id by its
    time. Ids listed without a time (markers of an older store) have their entries read, but only
    when that set of ids changed since ``splits`` (the previous tick's record) was made.
    """
    parts: dict[str, list[tuple[str, str, int, bool]]] = defaultdict(list)
    new_splits: dict[str, Any] = {}
    for day, items in backend.pending_times_by_date().items():
        edges = _utc_edges(day)
        first, last = (partition_key_for(edge, timezone) for edge in edges)
        if first == last:
            parts[first].append((day, _digest([rid for rid, _ in items]), len(items), True))
            continue
        by_partition: dict[str, list[str]] = defaultdict(list)
        untimed: list[str] = []
        midnight = edges[0]
        for rid, clock in items:
            if clock is None:
                untimed.append(rid)
            else:
                instant = midnight.replace(hour=clock.hour, minute=clock.minute, second=clock.second)
                by_partition[partition_key_for(instant, timezone)].append(rid)
        if untimed:
            names = _digest(untimed)
            memo = splits.get(day)
            if not _known_split(memo, names):
                memo = {"names": names, "parts": _split_day(backend, day, untimed, timezone)}
            new_splits[day] = memo
            for key, (digest, count) in memo["parts"].items():
                parts[key].append((day, digest, count, False))
        for key, members in by_partition.items():
            parts[key].append((day, _digest(members), len(members), False))
    result: dict[str, tuple[str, int]] = {}
    for key, pieces in parts.items():
        count = sum(piece[2] for piece in pieces)
        if len(pieces) == 1 and pieces[0][3]:
            result[key] = (pieces[0][1], count)  # the digest of the partition's ids, as always in UTC
        else:
            result[key] = (_digest([f"{day}:{digest}" for day, digest, _, _ in pieces]), count)
    return result, new_splits


@dg.sensor(job=process_call_date, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def unprocessed_recordings_sensor(
    context: dg.SensorEvaluationContext, store: RecordingStoreResource
) -> dg.SensorResult:
    """A run per call date that has unprocessed recordings not yet requested in this form.

    The cursor maps each call date with pending work to the digest last requested and, outside
    UTC, keeps under ``utc_dates`` how the markers without a time of day (an older store's) of
    each UTC date spanning two call dates split.
    """
    state = _load_cursor(context.cursor)
    splits = state.get(SPLITS)
    pending, new_splits = pending_partitions(
        store.get_store(), TIMEZONE, splits if isinstance(splits, dict) else {}
    )
    seen = {k: v for k, v in state.items() if k != SPLITS and isinstance(v, str)}
    requests = []
    busy: set[str] | None = None
    config = run_config()
    instance = _instance(context)
    for key in sorted(pending):
        digest, count = pending[key]
        if seen.get(key) == digest or not _in_range(key):
            continue
        if busy is None:
            busy = busy_partitions(instance) if instance else set()
        if key in busy:
            continue  # its run is still working on these; the next tick after it ends decides
        if instance and left_by_last_run(instance, key) == digest:
            seen[key] = digest  # exactly what the day's last run left (failed ones): nothing new
            continue
        if len(requests) == MAX_REQUESTS_PER_TICK:
            break  # the rest keep their old digest and come on the next tick
        requests.append(
            dg.RunRequest(
                partition_key=key,
                run_key=f"unprocessed:{key}:{digest}",
                tags={"callpipe/trigger": "unprocessed-sensor", "callpipe/pending": str(count)},
                run_config=config,
            )
        )
        seen[key] = digest
    current: dict[str, Any] = {k: v for k, v in seen.items() if k in pending}
    if new_splits:
        current[SPLITS] = new_splits
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
                        run_config=run_config(),
                    )
                )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps({"versions": versions_digest}))
