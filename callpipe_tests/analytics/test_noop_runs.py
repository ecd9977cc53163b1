"""Runs with nothing to do: the sensor does not stack runs on a busy day, its runs execute in one
process, and a run of a finished day loads no model and still reports the day's data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from callpipe.analytics import open_analytics_store
from callpipe.defs import resources as resources_module
from callpipe.defs.assets import ALL_ASSETS
from callpipe.defs.definitions import defs
from callpipe.defs.resources import AnalyticsTablesResource, RecordingStoreResource, StageModelsResource
from callpipe.defs.sensors import run_config, unprocessed_recordings_sensor
from callpipe.schema import ProcessingStatus, RecordingMetadata
from callpipe.stage_runner import stage_versions
from callpipe_tests.defs.conftest import StoreSetup, local_setup

DAY = datetime(2025, 3, 1, 12, tzinfo=UTC)
KEY = "2025-03-01"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def _tick(setup: StoreSetup, instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"store": setup.resource}
    ) as context:
        return unprocessed_recordings_sensor.evaluate_tick(context)


def _start_run(instance: dg.DagsterInstance, key: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    run = dg.DagsterRun(
        job_name="process_call_date", run_id=str(uuid.uuid4()), status=status, tags={"dagster/partition": key}
    )
    return instance.add_run(run)


def test_no_second_run_while_the_day_is_being_processed(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    setup = local_setup(tmp_path / "recordings")
    for n in range(3):
        setup.save(f"rec-{n}", DAY.replace(minute=n))
    first = _tick(setup, instance)
    assert [r.partition_key for r in first.run_requests] == [KEY]
    assert first.run_requests[0].run_config == run_config() == {"execution": {"config": {"in_process": {}}}}
    run = _start_run(instance, KEY, dg.DagsterRunStatus.STARTED)
    setup.mark_processed("rec-0")  # the run is working: the pending set shrinks
    busy = _tick(setup, instance, first.cursor)
    assert busy.run_requests == []  # no run for work already being done
    setup.mark_processed("rec-1", "rec-2")
    instance.report_run_canceled(run)  # the run ends
    done = _tick(setup, instance, busy.cursor)
    assert done.run_requests == []  # nothing pending is left
    setup.save("rec-3", DAY.replace(minute=9))  # a late arrival after the run: a new run
    late = _tick(setup, instance, done.cursor)
    assert [r.partition_key for r in late.run_requests] == [KEY]


def test_the_sensor_run_config_is_valid_for_the_job() -> None:
    job = defs.resolve_job_def("process_call_date")
    assert dg.validate_run_config(job, run_config())


def _finish(meta: RecordingMetadata) -> None:
    meta.processed = True
    meta.status.status = ProcessingStatus.PROCESSED
    meta.provenance.stage_versions = stage_versions()
    meta.provenance.run_id = "earlier-run"


def _fail_for_good(meta: RecordingMetadata) -> None:
    meta.status.status = ProcessingStatus.FAILED
    meta.status.error = "stt: audio could not be decoded"
    meta.status.attempts = 3


def test_a_run_with_nothing_to_do_loads_no_model_and_reports_the_day(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    root = tmp_path / "recordings"
    setup = local_setup(root)
    for n in range(4):
        setup.save(f"done-{n}", DAY.replace(minute=n))
        setup.store.modify_metadata(f"done-{n}", _finish)
    setup.save("broken", DAY.replace(minute=8))  # failed for good: its pending marker stays
    setup.store.modify_metadata("broken", _fail_for_good)
    models = StageModelsResource(retranscribe_wer_threshold=0.987)  # its own StageModels in this process
    result = dg.materialize(
        ALL_ASSETS,
        partition_key=KEY,
        instance=instance,
        resources={
            "store": RecordingStoreResource(
                backend="local", local_path=str(root), s3=S3Resource(region_name="us-east-1")
            ),
            "tables": AnalyticsTablesResource(),
            "models": models,
        },
    )
    assert result.success and result.asset_value("recordings")["work"] == []
    services = [s for (_, threshold), s in resources_module._SERVICES.items() if threshold == 0.987]
    assert len(services) == 1
    assert (services[0]._transcriber, services[0]._corrector, services[0]._analyzer) == (None, None, None)
    event = instance.get_latest_materialization_event(dg.AssetKey("call_analytics"))
    assert event is not None and event.asset_materialization.metadata["processed_this_run"].value == 0
    event = instance.get_latest_materialization_event(dg.AssetKey("calls"))
    assert event is not None
    meta = event.asset_materialization.metadata
    assert meta["processed"].value == 4 and meta["failed"].value == 1
    assert meta["dagster/row_count"].value == 5
    tables = open_analytics_store(read_only=True, local_root=root)
    assert {r["run_id"] for r in tables.list_calls(status="processed")[0]} == {"earlier-run"}
    tables.close()
    # a fresh sensor cursor (e.g. `dagster dev` after `make demo`) asks for no run for what the
    # day's last run left pending; a new arrival on that day does get one
    fresh = _tick(setup, instance)
    assert fresh.run_requests == []
    setup.save("late", DAY.replace(minute=30))
    assert [r.partition_key for r in _tick(setup, instance, fresh.cursor).run_requests] == [KEY]
