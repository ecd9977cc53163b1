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

import json
from typing import Any

import dagster as dg

from callpipe.defs import partitions
from callpipe.defs.jobs import process_call_date
from callpipe.defs.partitions import call_timezone, partition_key_for
from callpipe.defs.pending_days import (
    ids_digest,
    left_by_last_run,
    pending_partitions,
    utc_edges,
)
from callpipe.defs.resources import RecordingStoreResource
from callpipe.defs.run_owners import reap_on_tick
from callpipe.deploy import executor_mode
from callpipe.stage_runner import stage_versions

MAX_REQUESTS_PER_TICK = 50
SPLITS = "utc_dates"  # cursor key of the split UTC dates (never a partition key)
EARLY = "before_start"  # cursor key: pending recordings dated before the first partition


def _load_cursor(raw: str | None) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


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
    return partitions.call_date_partitions.has_partition_key(partition_key)


@dg.sensor(job=process_call_date, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def unprocessed_recordings_sensor(
    context: dg.SensorEvaluationContext, store: RecordingStoreResource
) -> dg.SensorResult:
    """A run per call date that has unprocessed recordings not yet requested in this form.

    Pending recordings dated before ``CALLPIPE_START_DATE`` are never requested: their number is
    kept in the cursor (``before_start``) and logged as a warning whenever it changes.

    The cursor maps each call date with pending work to the digest last requested and, outside
    UTC, keeps under ``utc_dates`` how the markers without a time of day (an older store's) of
    each UTC date spanning two call dates split.
    """
    reap_on_tick(context)  # a killed `callpipe batch` holds no pool slot past a tick
    state = _load_cursor(context.cursor)
    splits = state.get(SPLITS)
    pending, new_splits = pending_partitions(
        store.get_store(), call_timezone(), splits if isinstance(splits, dict) else {}
    )
    seen = {k: v for k, v in state.items() if k != SPLITS and isinstance(v, str)}
    early = sorted(key for key in pending if key < _first_partition())
    early_count = sum(pending[key][1] for key in early)
    if early_count != state.get(EARLY, 0):  # one line per change, not one per tick
        _report_early(context, "unprocessed", early_count, "recordings", early)
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
    if early_count:
        current[EARLY] = early_count
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))


@dg.sensor(job=process_call_date, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def reprocessing_sensor(
    context: dg.SensorEvaluationContext, store: RecordingStoreResource
) -> dg.SensorResult:
    """After a stage's version changes, a run for every call date with recordings (each run
    skips, cheaply, the recordings already processed by the current versions).

    At most :data:`MAX_REQUESTS_PER_TICK` dates per tick, in date order: the cursor keeps the
    sweep (the versions it is for and the last date requested), so the next tick continues
    after it; a newer version change restarts the sweep from the first date.
    """
    state = _load_cursor(context.cursor)
    versions_digest = ids_digest([json.dumps(stage_versions(), sort_keys=True)])
    sweep = state.get("sweep")
    if state.get("versions") not in (None, versions_digest):
        sweep = {"versions": versions_digest, "after": ""}
    if not (isinstance(sweep, dict) and sweep.get("versions") == versions_digest):
        sweep = None
    cursor: dict[str, Any] = {"versions": versions_digest}
    requests: list[dg.RunRequest] = []
    if sweep is not None:
        backend = store.get_store()
        keys = {partition_key_for(edge) for day in backend.list_dates() for edge in utc_edges(day)}
        early = sorted(key for key in keys if not _in_range(key) and key < _first_partition())
        _report_early(context, "reprocessing", len(early), "call dates", early)
        todo = [key for key in sorted(keys) if _in_range(key) and key > str(sweep.get("after", ""))]
        for key in todo[:MAX_REQUESTS_PER_TICK]:
            requests.append(
                dg.RunRequest(
                    partition_key=key,
                    run_key=f"stale:{key}:{versions_digest}",
                    tags={"callpipe/trigger": "stale-stage-versions"},
                    run_config=run_config(),
                )
            )
        if len(todo) > MAX_REQUESTS_PER_TICK:
            cursor["sweep"] = {"versions": versions_digest, "after": requests[-1].partition_key}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


def _first_partition() -> str:
    return partitions.call_date_partitions.get_first_partition_key() or ""


def _report_early(
    context: dg.SensorEvaluationContext, sensor: str, count: int, what: str, keys: list[str]
) -> None:
    """One warning line, in the sensor's log, when there are call dates before the first partition."""
    if count:
        context.log.warning(
            f"{sensor}: {count} {what} before CALLPIPE_START_DATE ({_first_partition()}) are not "
            f"processed (first {keys[0]}, last {keys[-1]}); set CALLPIPE_START_DATE to include them"
        )
