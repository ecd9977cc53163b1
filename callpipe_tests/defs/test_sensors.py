"""The sensors against a real store (temp directory and moto S3), evaluated the way the daemon does:
``evaluate_tick`` on the code location's definitions, so run requests resolve against the job."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.sensor_definition import SensorExecutionData

from callpipe.defs import sensors
from callpipe.defs.definitions import defs
from callpipe.defs.sensors import reprocessing_sensor, unprocessed_recordings_sensor
from callpipe.stages import STAGES
from callpipe.storage import MetadataCorruptError
from callpipe_tests.defs.conftest import StoreSetup, local_setup

# Noon UTC: the same call date in any CALLPIPE_TIMEZONE from UTC-11 to UTC+11.
DAY1 = datetime(2025, 3, 1, 12, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 12, tzinfo=UTC)
DAY3 = datetime(2025, 3, 3, 12, tzinfo=UTC)
RUN_KEY = re.compile(r"^unprocessed:(\d{4}-\d{2}-\d{2}):([0-9a-f]{16})$")


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def tick(
    sensor: dg.SensorDefinition, setup: StoreSetup, instance: dg.DagsterInstance, cursor: str | None = None
) -> SensorExecutionData:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"store": setup.resource}
    ) as context:
        return sensor.evaluate_tick(context)


def keys(data: SensorExecutionData) -> list[str]:
    return [request.partition_key for request in data.run_requests]


def test_unprocessed_sensor_one_run_per_date_then_resumes_from_cursor(
    store_setup: StoreSetup, instance: dg.DagsterInstance
) -> None:
    store_setup.save("rec-a1", DAY1)
    store_setup.save("rec-a2", DAY1.replace(hour=15))
    store_setup.save("rec-b1", DAY2)

    first = tick(unprocessed_recordings_sensor, store_setup, instance)
    assert keys(first) == ["2025-03-01", "2025-03-02"]
    for request in first.run_requests:
        match = RUN_KEY.match(request.run_key or "")
        assert match and match.group(1) == request.partition_key
        assert request.tags["dagster/partition"] == request.partition_key  # resolved against the job
        assert request.tags["callpipe/trigger"] == "unprocessed-sensor"
    assert [r.tags["callpipe/pending"] for r in first.run_requests] == ["2", "1"]
    assert set(json.loads(first.cursor or "{}")) == {"2025-03-01", "2025-03-02"}

    again = tick(unprocessed_recordings_sensor, store_setup, instance, first.cursor)
    assert again.run_requests == []
    assert again.cursor == first.cursor

    store_setup.save("rec-a3", DAY1.replace(hour=18))  # a late arrival on a day already requested
    late = tick(unprocessed_recordings_sensor, store_setup, instance, again.cursor)
    assert keys(late) == ["2025-03-01"]
    assert late.run_requests[0].run_key != first.run_requests[0].run_key
    assert late.run_requests[0].tags["callpipe/pending"] == "3"

    store_setup.mark_processed("rec-a1", "rec-a2", "rec-a3")  # the day's run finished
    settled = tick(unprocessed_recordings_sensor, store_setup, instance, late.cursor)
    assert settled.run_requests == []
    assert set(json.loads(settled.cursor or "{}")) == {"2025-03-02"}

    store_setup.save("rec-a4", DAY1.replace(hour=20))  # a new arrival on an already processed day
    reopened = tick(unprocessed_recordings_sensor, store_setup, instance, settled.cursor)
    assert keys(reopened) == ["2025-03-01"]
    assert reopened.run_requests[0].tags["callpipe/pending"] == "1"
    assert reopened.run_requests[0].run_key not in {
        first.run_requests[0].run_key,
        late.run_requests[0].run_key,
    }


def test_unprocessed_sensor_ignores_processed_recordings(
    store_setup: StoreSetup, instance: dg.DagsterInstance
) -> None:
    store_setup.save("rec-done", DAY1)
    store_setup.save("rec-open", DAY2)
    store_setup.mark_processed("rec-done")
    assert keys(tick(unprocessed_recordings_sensor, store_setup, instance)) == ["2025-03-02"]

    store_setup.mark_processed("rec-open")
    nothing = tick(unprocessed_recordings_sensor, store_setup, instance)
    assert nothing.run_requests == []
    assert json.loads(nothing.cursor or "") == {}


def test_unprocessed_sensor_reads_no_metadata_documents(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    setup = local_setup(tmp_path / "recordings")
    setup.save("rec-a1", DAY1)
    setup.save("rec-b1", DAY2)
    documents = sorted((tmp_path / "recordings" / "metadata").rglob("*.json"))
    assert len(documents) == 2
    for document in documents:
        document.write_text("{not json")
    with pytest.raises(MetadataCorruptError):
        setup.store.get_metadata("rec-a1")

    data = tick(unprocessed_recordings_sensor, setup, instance)
    assert keys(data) == ["2025-03-01", "2025-03-02"]


def test_unprocessed_sensor_caps_requests_per_tick_and_continues(
    tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensors, "MAX_REQUESTS_PER_TICK", 2)
    setup = local_setup(tmp_path / "recordings")
    for n, day in enumerate((DAY1, DAY2, DAY3)):
        setup.save(f"rec-{n}", day)

    first = tick(unprocessed_recordings_sensor, setup, instance)
    assert keys(first) == ["2025-03-01", "2025-03-02"]
    second = tick(unprocessed_recordings_sensor, setup, instance, first.cursor)
    assert keys(second) == ["2025-03-03"]
    third = tick(unprocessed_recordings_sensor, setup, instance, second.cursor)
    assert third.run_requests == []


def test_reprocessing_sensor_requests_every_date_after_a_version_change(
    store_setup: StoreSetup, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_setup.save("rec-a1", DAY1)
    store_setup.save("rec-b1", DAY2)
    store_setup.mark_processed("rec-a1")  # processed recordings can be stale too

    first = tick(reprocessing_sensor, store_setup, instance)
    assert first.run_requests == []  # the first tick only records the versions
    versions = json.loads(first.cursor or "")["versions"]
    assert re.fullmatch(r"[0-9a-f]{16}", versions)

    same = tick(reprocessing_sensor, store_setup, instance, first.cursor)
    assert same.run_requests == []
    assert same.cursor == first.cursor

    topics = STAGES["topics"]
    monkeypatch.setitem(STAGES, "topics", replace(topics, version=f"{topics.version}-next"))
    changed = tick(reprocessing_sensor, store_setup, instance, same.cursor)
    new_versions = json.loads(changed.cursor or "")["versions"]
    assert new_versions != versions
    assert keys(changed) == ["2025-03-01", "2025-03-02"]
    assert [r.run_key for r in changed.run_requests] == [
        f"stale:2025-03-01:{new_versions}",
        f"stale:2025-03-02:{new_versions}",
    ]
    assert all(r.tags["dagster/partition"] == r.partition_key for r in changed.run_requests)

    settled = tick(reprocessing_sensor, store_setup, instance, changed.cursor)
    assert settled.run_requests == []


def test_reprocessing_sensor_with_a_foreign_versions_digest(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    setup = local_setup(tmp_path / "recordings")
    setup.save("rec-a1", DAY1)
    setup.save("rec-c1", DAY3)
    data = tick(reprocessing_sensor, setup, instance, json.dumps({"versions": "0000000000000000"}))
    assert keys(data) == ["2025-03-01", "2025-03-03"]
