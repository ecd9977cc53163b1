"""The nightly run: yesterday's call date at ``BATCH_PROCESSING_HOUR`` (default 2) local time,
plus a sweep of older call dates that still have unprocessed recordings."""

import os
from datetime import timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from callpipe.defs.jobs import process_call_date
from callpipe.defs.partitions import TIMEZONE, call_date_partitions, partition_key_for
from callpipe.defs.resources import RecordingStoreResource

PROCESSING_HOUR = int(os.environ.get("BATCH_PROCESSING_HOUR", "2") or 2)


@dg.schedule(
    cron_schedule=f"0 {PROCESSING_HOUR} * * *",
    job=process_call_date,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_processing_schedule(
    context: dg.ScheduleEvaluationContext, store: RecordingStoreResource
) -> list[dg.RunRequest]:
    """Yesterday's partition, then every earlier partition that still has unprocessed recordings."""
    now = context.scheduled_execution_time.astimezone(ZoneInfo(TIMEZONE))
    yesterday = (now.date() - timedelta(days=1)).isoformat()
    tick = now.date().isoformat()
    requests = [
        dg.RunRequest(
            partition_key=yesterday, run_key=f"nightly:{yesterday}", tags={"callpipe/trigger": "nightly"}
        )
    ]
    backlog: set[str] = set()
    cursor = None
    backend = store.get_store()
    while True:
        page = backend.list_recordings(processed=False, limit=1000, cursor=cursor)
        backlog.update(partition_key_for(ref.timestamp) for ref in page.items if ref.timestamp)
        cursor = page.next_cursor
        if cursor is None:
            break
    for key in sorted(backlog):
        if key < yesterday and call_date_partitions.has_partition_key(key):
            requests.append(
                dg.RunRequest(
                    partition_key=key,
                    run_key=f"nightly-sweep:{tick}:{key}",
                    tags={"callpipe/trigger": "nightly-sweep"},
                )
            )
    return requests
