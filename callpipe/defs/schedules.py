"""The nightly run: yesterday's call date at ``BATCH_PROCESSING_HOUR`` (default 2) local time,
plus a sweep of older call dates that still have unprocessed recordings."""

import os
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from callpipe.defs.jobs import process_call_date
from callpipe.defs.leases import reap_on_tick
from callpipe.defs.partitions import TIMEZONE, build_call_date_partitions
from callpipe.defs.resources import RecordingStoreResource
from callpipe.defs.sensors import pending_partitions

PROCESSING_HOUR = int(os.environ.get("BATCH_PROCESSING_HOUR", "2") or 2)


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
    job: Any, timezone: str = TIMEZONE, hour: int = PROCESSING_HOUR
) -> dg.ScheduleDefinition:
    """The nightly schedule for ``job`` at ``hour``:00 in ``timezone``."""

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


nightly_processing_schedule = build_nightly_schedule(process_call_date)
