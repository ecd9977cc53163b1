"""The nightly run: yesterday's call date at ``BATCH_PROCESSING_HOUR`` (default 2) local time,
plus a sweep of older call dates that still have unprocessed recordings."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from callpipe.defs.jobs import process_call_date
from callpipe.defs.partitions import build_call_date_partitions, call_timezone
from callpipe.defs.pending_days import pending_partitions
from callpipe.defs.resources import RecordingStoreResource
from callpipe.defs.run_owners import reap_on_tick
from callpipe.settings import Settings


def processing_hour() -> int:
    """``BATCH_PROCESSING_HOUR`` now (default 2)."""
    return Settings.from_env(only=["BATCH_PROCESSING_HOUR"]).batch_processing_hour


def nightly_requests(scheduled: datetime, timezone: str, backlog: set[str]) -> list[dg.RunRequest]:
    """Yesterday (in ``timezone``) and every earlier call date in ``backlog`` (unprocessed work)."""
    now = scheduled.astimezone(ZoneInfo(timezone))
    yesterday = (now.date() - timedelta(days=1)).isoformat()
    tick = now.date().isoformat()
    requests = [
        dg.RunRequest(
            partition_key=yesterday, run_key=f"nightly:{yesterday}", tags={"callpipe/trigger": "nightly"}
        )
    ]
    for key in sorted(backlog):
        if key < yesterday:
            requests.append(
                dg.RunRequest(
                    partition_key=key,
                    run_key=f"nightly-sweep:{tick}:{key}",
                    tags={"callpipe/trigger": "nightly-sweep"},
                )
            )
    return requests


def build_nightly_schedule(
    job: Any, timezone: str | None = None, hour: int | None = None
) -> dg.ScheduleDefinition:
    """The nightly schedule for ``job`` at ``hour``:00 in ``timezone`` (default: ``BATCH_PROCESSING_HOUR``
    in ``CALLPIPE_TIMEZONE``, read now)."""
    timezone = timezone or call_timezone()
    hour = processing_hour() if hour is None else hour

    @dg.schedule(
        name="nightly_processing_schedule",
        cron_schedule=f"0 {hour} * * *",
        job=job,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _nightly(context: dg.ScheduleEvaluationContext, store: RecordingStoreResource) -> list[dg.RunRequest]:
        reap_on_tick(context)  # the runs it requests must not wait on a killed run's pool slot
        backlog = set(pending_partitions(store.get_store(), timezone, {})[0])
        partitions = build_call_date_partitions(timezone)
        backlog = {key for key in backlog if partitions.has_partition_key(key)}
        return nightly_requests(context.scheduled_execution_time, timezone, backlog)

    return _nightly


def nightly_processing_schedule() -> dg.ScheduleDefinition:
    """The nightly schedule of ``process_call_date`` as configured now (built with the definitions)."""
    return build_nightly_schedule(process_call_date)
