"""Retention in Dagster: the job ``apply_retention`` and its daily schedule.

The schedule runs at ``RETENTION_HOUR`` (default 3, after the nightly processing at 2) in
``CALLPIPE_TIMEZONE``; with ``RETENTION_DAYS`` unset it skips (audio is kept forever). The work
is :func:`callpipe.retention.apply_retention` on the store resource.
"""

import json

import dagster as dg

from callpipe.defs.partitions import call_timezone, partition_key_for
from callpipe.defs.resources import RecordingStoreResource
from callpipe.retention import apply_retention, retention_days
from callpipe.settings import Settings


def retention_hour() -> int:
    """``RETENTION_HOUR`` now (default 3)."""
    return Settings.from_env(only=["RETENTION_HOUR"]).retention_hour


class RetentionConfig(dg.Config):
    """``days`` overrides ``RETENTION_DAYS``; ``dry_run`` only reports what would be retained."""

    days: int | None = None
    dry_run: bool = False


@dg.op(description="Delete audio older than the retention period; keep de-identified analytics.")
def apply_retention_policy(
    context: dg.OpExecutionContext, config: RetentionConfig, store: RecordingStoreResource
) -> None:
    days = config.days or retention_days()
    if days is None:
        context.log.info("RETENTION_DAYS is not set: recordings are kept forever")
        return
    report = apply_retention(store.get_store(), days, dry_run=config.dry_run)
    counts = {k: v for k, v in report.to_dict().items() if not k.endswith(("_ids", "failures"))}
    context.log.info(f"retention: {json.dumps(counts)}")  # counts only: ids stay out of the logs
    if report.failed:
        raise dg.Failure(
            description=f"retention failed for {len(report.failed)} recording(s); the next run retries",
            metadata={k: v for k, v in counts.items() if isinstance(v, int | bool | str)},
        )


@dg.job(
    name="apply_retention",
    description="Retention policy (RETENTION_DAYS): audio and transcripts of old calls go, analytics stay.",
    tags={"callpipe/kind": "retention"},
)
def apply_retention_job() -> None:
    apply_retention_policy()


def build_retention_schedule(
    job: dg.JobDefinition, timezone: str | None = None, hour: int | None = None
) -> dg.ScheduleDefinition:
    """The daily retention schedule for ``job`` at ``hour``:00 in ``timezone`` (default:
    ``RETENTION_HOUR`` in ``CALLPIPE_TIMEZONE``, read now)."""
    timezone = timezone or call_timezone()
    hour = retention_hour() if hour is None else hour

    @dg.schedule(
        name="retention_schedule",
        cron_schedule=f"0 {hour} * * *",
        job=job,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _retention(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        try:
            days = retention_days()
        except ValueError as exc:
            return dg.SkipReason(str(exc))
        if days is None:
            return dg.SkipReason("RETENTION_DAYS is not set: audio is kept forever")
        tick = partition_key_for(context.scheduled_execution_time, timezone)
        return dg.RunRequest(
            run_key=f"retention:{tick}",
            run_config={"ops": {"apply_retention_policy": {"config": {"days": days}}}},
            tags={"callpipe/trigger": "retention"},
        )

    return _retention


def retention_schedule() -> dg.ScheduleDefinition:
    """The daily retention schedule as configured now (built with the definitions)."""
    return build_retention_schedule(apply_retention_job)
