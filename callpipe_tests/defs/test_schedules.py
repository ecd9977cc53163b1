"""The nightly schedule in Europe/Madrid: which call date each tick targets, across DST changes,
and the sweep of older dates that still have unprocessed recordings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.definitions.schedule_definition import ScheduleExecutionData
from dagster._utils.schedules import cron_string_iterator

from callpipe.defs.definitions import defs
from callpipe.defs.partitions import build_call_date_partitions
from callpipe.defs.schedules import build_nightly_schedule, nightly_requests, processing_hour
from callpipe_tests.defs.conftest import StoreSetup, local_setup

MADRID = ZoneInfo("Europe/Madrid")


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def setup(tmp_path: Path) -> StoreSetup:
    return local_setup(tmp_path / "recordings")


def madrid_schedule(hour: int) -> tuple[dg.ScheduleDefinition, dg.RepositoryDefinition]:
    """The schedule over a job whose partitions are Madrid call dates (so keys are validated)."""
    partitions = build_call_date_partitions("Europe/Madrid")

    @dg.asset(partitions_def=partitions)
    def call_day() -> None:
        return None

    job = dg.define_asset_job("madrid_call_date", selection=[call_day])
    schedule = build_nightly_schedule(job, timezone="Europe/Madrid", hour=hour)
    repository = dg.Definitions(assets=[call_day], jobs=[job], schedules=[schedule]).get_repository_def()
    return schedule, repository


def evaluate(
    hour: int, scheduled: datetime, setup: StoreSetup, instance: dg.DagsterInstance
) -> ScheduleExecutionData:
    schedule, repository = madrid_schedule(hour)
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=scheduled,
        repository_def=repository,
        resources={"store": setup.resource},
    ) as context:
        return schedule.evaluate_tick(context)


def keys(data: ScheduleExecutionData) -> list[str]:
    return [request.partition_key for request in data.run_requests]


def test_two_am_in_madrid_targets_the_previous_day(setup: StoreSetup, instance: dg.DagsterInstance) -> None:
    scheduled = datetime(2026, 3, 10, 1, tzinfo=UTC)  # 02:00 in Madrid (CET)
    data = evaluate(2, scheduled, setup, instance)
    assert keys(data) == ["2026-03-09"]
    (request,) = data.run_requests
    assert request.run_key == "nightly:2026-03-09"
    assert request.tags["dagster/partition"] == "2026-03-09"
    assert request.tags["callpipe/trigger"] == "nightly"


def test_midnight_in_madrid_is_still_the_previous_utc_evening(
    setup: StoreSetup, instance: dg.DagsterInstance
) -> None:
    # 00:00 Madrid is 23:00 UTC the day before: "yesterday" must be taken in Madrid, not in UTC.
    scheduled = datetime(2026, 3, 9, 23, tzinfo=UTC)
    assert keys(evaluate(0, scheduled, setup, instance)) == ["2026-03-09"]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # 2026-03-29 02:00 does not exist in Madrid (02:00 CET -> 03:00 CEST): Dagster ticks at 03:00.
        (
            datetime(2026, 3, 27, 12, tzinfo=MADRID),
            [
                ("2026-03-28T02:00:00+01:00", "2026-03-27"),
                ("2026-03-29T03:00:00+02:00", "2026-03-28"),
                ("2026-03-30T02:00:00+02:00", "2026-03-29"),
            ],
        ),
        # 2026-10-25 02:00 happens twice (03:00 CEST -> 02:00 CET): Dagster ticks once, at the second.
        (
            datetime(2026, 10, 23, 12, tzinfo=MADRID),
            [
                ("2026-10-24T02:00:00+02:00", "2026-10-23"),
                ("2026-10-25T02:00:00+01:00", "2026-10-24"),
                ("2026-10-26T02:00:00+01:00", "2026-10-25"),
            ],
        ),
    ],
)
def test_every_call_date_exactly_once_across_dst(
    start: datetime, expected: list[tuple[str, str]], setup: StoreSetup, instance: dg.DagsterInstance
) -> None:
    schedule, _ = madrid_schedule(2)
    # The iterator the scheduler daemon uses to pick tick times.
    ticks = cron_string_iterator(start.timestamp(), schedule.cron_schedule, schedule.execution_timezone)
    seen = []
    for _ in expected:
        scheduled = next(ticks)
        seen.append((scheduled.isoformat(), *keys(evaluate(2, scheduled, setup, instance))))
    assert seen == expected


def test_backlog_sweep_adds_older_dates_with_unprocessed_recordings(
    setup: StoreSetup, instance: dg.DagsterInstance
) -> None:
    setup.save("rec-old", datetime(2026, 3, 1, 10, tzinfo=MADRID))
    setup.save("rec-late-night", datetime(2026, 3, 4, 23, 30, tzinfo=UTC))  # 00:30 on the 5th in Madrid
    setup.save("rec-done", datetime(2026, 3, 6, 10, tzinfo=MADRID))
    setup.save("rec-yesterday", datetime(2026, 3, 9, 10, tzinfo=MADRID))
    setup.save("rec-today", datetime(2026, 3, 10, 1, tzinfo=MADRID))
    setup.save("rec-too-early", datetime(2023, 6, 1, 10, tzinfo=MADRID))  # before the first partition
    setup.mark_processed("rec-done")

    data = evaluate(2, datetime(2026, 3, 10, 2, tzinfo=MADRID), setup, instance)
    assert keys(data) == ["2026-03-09", "2026-03-01", "2026-03-05"]
    assert [r.run_key for r in data.run_requests] == [
        "nightly:2026-03-09",
        "nightly-sweep:2026-03-10:2026-03-01",
        "nightly-sweep:2026-03-10:2026-03-05",
    ]
    assert [r.tags["callpipe/trigger"] for r in data.run_requests] == ["nightly", *["nightly-sweep"] * 2]

    setup.mark_processed("rec-old", "rec-late-night")
    assert keys(evaluate(2, datetime(2026, 3, 10, 2, tzinfo=MADRID), setup, instance)) == ["2026-03-09"]


def test_nightly_requests() -> None:
    scheduled = datetime(2026, 3, 10, 1, tzinfo=UTC)
    backlog = {"2026-03-10", "2026-03-09", "2026-03-01", "2026-02-28"}
    requests = nightly_requests(scheduled, "Europe/Madrid", backlog)
    assert [r.partition_key for r in requests] == ["2026-03-09", "2026-02-28", "2026-03-01"]
    assert [r.run_key for r in requests] == [
        "nightly:2026-03-09",
        "nightly-sweep:2026-03-10:2026-02-28",
        "nightly-sweep:2026-03-10:2026-03-01",
    ]
    # The next night sweeps a still-pending day again, under a new run key.
    next_night = nightly_requests(datetime(2026, 3, 11, 1, tzinfo=UTC), "Europe/Madrid", {"2026-03-01"})
    assert [r.run_key for r in next_night] == ["nightly:2026-03-10", "nightly-sweep:2026-03-11:2026-03-01"]
    # In UTC the same instant is still 01:00 on the 10th: same target day; at 23:30 UTC it differs.
    assert nightly_requests(scheduled, "UTC", set())[0].partition_key == "2026-03-09"
    late = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)
    assert nightly_requests(late, "UTC", set())[0].partition_key == "2026-03-08"
    assert nightly_requests(late, "Europe/Madrid", set())[0].partition_key == "2026-03-09"


def test_code_location_schedule_targets_the_call_date_job() -> None:
    schedule = defs.get_schedule_def("nightly_processing_schedule")
    assert schedule.job_name == "process_call_date"
    assert schedule.cron_schedule == f"0 {processing_hour()} * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
