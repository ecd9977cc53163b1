"""The sensors against a real store (temp directory and moto S3), evaluated the way the daemon does:
``evaluate_tick`` on the code location's definitions, so run requests resolve against the job."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.sensor_definition import SensorExecutionData

from callpipe.defs import sensors
from callpipe.defs.definitions import defs
from callpipe.defs.resources import RecordingStoreResource
from callpipe.defs.sensors import reprocessing_sensor, unprocessed_recordings_sensor
from callpipe.stage_list import STAGES
from callpipe.storage import LocalStore, MetadataCorruptError, RecordingStore, S3Store, index
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
    for request, ids in zip(first.run_requests, (["rec-a1", "rec-a2"], ["rec-b1"]), strict=True):
        match = RUN_KEY.match(request.run_key or "")
        assert match and match.group(1) == request.partition_key
        # The UTC digest as cursors and run keys of earlier versions hold it: still valid.
        assert match.group(2) == hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
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


S3_REQUESTS: list[tuple[str, str]] = []


def _observe(params: dict[str, Any], model: Any, **_: Any) -> None:
    S3_REQUESTS.append((model.name, params.get("Key") or params.get("Prefix") or ""))


class ObservedStoreResource(RecordingStoreResource):
    """The real resource; on S3 the requests of its client are recorded in ``S3_REQUESTS``."""

    def get_store(self) -> RecordingStore:
        store = super().get_store()
        base = getattr(store, "wrapped", store)  # behind the catalog
        if isinstance(base, S3Store):
            base.client.meta.events.register("provide-client-params.s3.*", _observe, unique_id="observe")
        return store


def observed(setup: StoreSetup) -> StoreSetup:
    fields = ("backend", "local_path", "s3_bucket", "s3_prefix", "s3")
    resource = ObservedStoreResource(**{name: getattr(setup.resource, name) for name in fields})
    return StoreSetup(setup.store, resource, setup.seed)


def observed_tick(setup: StoreSetup, instance: dg.DagsterInstance, cursor: str | None) -> SensorExecutionData:
    S3_REQUESTS.clear()
    return tick(unprocessed_recordings_sensor, setup, instance, cursor)


def fetched() -> list[str]:
    return [key for op, key in S3_REQUESTS if op in ("GetObject", "HeadObject")]


def test_unprocessed_sensor_on_s3_only_lists(store_setup: StoreSetup, instance: dg.DagsterInstance) -> None:
    setup = observed(store_setup)
    setup.save("rec-a1", DAY1)
    setup.save("rec-b1", DAY2)
    first = observed_tick(setup, instance, None)
    assert keys(first) == ["2025-03-01", "2025-03-02"]
    setup.save("rec-b2", DAY2.replace(hour=13))
    second = observed_tick(setup, instance, first.cursor)
    assert keys(second) == ["2025-03-02"] and second.run_requests[0].tags["callpipe/pending"] == "2"
    if setup.on_s3:
        assert S3_REQUESTS == []  # the catalog answers: no listing of the bucket, no document read


def test_unprocessed_sensor_splits_utc_dates_outside_utc(
    store_setup: StoreSetup, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UTC-6: the first 6 hours of a UTC date belong to the previous call date. Marker names hold
    the UTC time of day, so every recording finds its call date from the listing alone."""
    monkeypatch.setenv("CALLPIPE_TIMEZONE", "America/Mexico_City")
    setup = observed(store_setup)
    setup.save("rec-c", datetime(2025, 3, 1, 12, tzinfo=UTC))  # call date 03-01
    setup.save("rec-a", datetime(2025, 3, 2, 5, 59, 59, 999_999, tzinfo=UTC))  # 03-01 23:59:59 local
    setup.save("rec-b", datetime(2025, 3, 2, 6, tzinfo=UTC))  # 03-02 00:00 local: call date 03-02

    first = observed_tick(setup, instance, None)
    assert keys(first) == ["2025-03-01", "2025-03-02"]
    assert [r.tags["callpipe/pending"] for r in first.run_requests] == ["2", "1"]
    assert "utc_dates" not in json.loads(first.cursor or "")  # nothing to remember: no entry read
    if setup.on_s3:
        assert S3_REQUESTS == []  # the catalog answers: no request to the bucket

    again = observed_tick(setup, instance, first.cursor)
    assert again.run_requests == [] and again.cursor == first.cursor

    setup.save("rec-d", datetime(2025, 3, 2, 4, tzinfo=UTC))  # late arrival for call date 03-01
    late = observed_tick(setup, instance, again.cursor)
    assert keys(late) == ["2025-03-01"] and late.run_requests[0].tags["callpipe/pending"] == "3"
    if setup.on_s3:
        assert S3_REQUESTS == []  # the catalog answers: no request to the bucket

    setup.mark_processed("rec-a", "rec-c", "rec-d")
    settled = observed_tick(setup, instance, late.cursor)
    assert settled.run_requests == []
    assert json.loads(settled.cursor or "") == {"2025-03-02": json.loads(first.cursor or "")["2025-03-02"]}


def _to_legacy(store: RecordingStore, *recording_ids: str) -> None:
    """Rename markers to the layout of stores written before names held the time of day."""
    assert isinstance(store, LocalStore | S3Store)
    for rid in recording_ids:
        current, legacy = index.pending_keys(store._entry(rid))
        store._put(legacy, store._get(current))
        store._delete(current)


@pytest.mark.usefixtures("catalog_off")
def test_unprocessed_sensor_reads_only_markers_without_time_outside_utc(
    store_setup: StoreSetup, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written before marker names held the time: outside UTC its markers on UTC dates that
    span two call dates are read (once per change of that set), the others map from names."""
    monkeypatch.setenv("CALLPIPE_TIMEZONE", "America/Mexico_City")
    setup = observed(store_setup)
    setup.save("rec-a", datetime(2025, 3, 2, 3, tzinfo=UTC))  # call date 03-01
    setup.save("rec-b", datetime(2025, 3, 2, 12, tzinfo=UTC))  # call date 03-02
    setup.save("rec-c", datetime(2025, 3, 2, 4, tzinfo=UTC))  # call date 03-01, keeps its time
    _to_legacy(setup.store, "rec-a", "rec-b")
    legacy = {f"callpipe/test/index/pending/2025-03-02/{rid}" for rid in ("rec-a", "rec-b")}

    first = observed_tick(setup, instance, None)
    assert keys(first) == ["2025-03-01", "2025-03-02"]
    assert [r.tags["callpipe/pending"] for r in first.run_requests] == ["2", "1"]
    assert set(json.loads(first.cursor or "")["utc_dates"]) == {"2025-03-02"}
    if isinstance(setup.store, S3Store):
        assert set(fetched()) == legacy
        assert {key for op, key in S3_REQUESTS if op == "ListObjectsV2"} == {"callpipe/test/index/pending/"}

    setup.save("rec-d", datetime(2025, 3, 2, 5, tzinfo=UTC))  # new name: no read needed
    late = observed_tick(setup, instance, first.cursor)
    assert keys(late) == ["2025-03-01"] and late.run_requests[0].tags["callpipe/pending"] == "3"
    if isinstance(setup.store, S3Store):
        assert fetched() == []

    setup.mark_processed("rec-a")  # the old name goes: the remaining one is read again
    settled = observed_tick(setup, instance, late.cursor)
    assert keys(settled) == ["2025-03-01"] and settled.run_requests[0].tags["callpipe/pending"] == "2"
    if isinstance(setup.store, S3Store):
        assert fetched() == ["callpipe/test/index/pending/2025-03-02/rec-b"]


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


def test_reprocessing_sensor_caps_requests_per_tick_and_continues(
    tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensors, "MAX_REQUESTS_PER_TICK", 2)
    setup = local_setup(tmp_path / "recordings")
    for n, day in enumerate((DAY1, DAY2, DAY3)):
        setup.save(f"rec-{n}", day)
    first = tick(reprocessing_sensor, setup, instance)
    assert first.run_requests == []
    topics = STAGES["topics"]
    monkeypatch.setitem(STAGES, "topics", replace(topics, version=f"{topics.version}-next"))
    changed = tick(reprocessing_sensor, setup, instance, first.cursor)
    assert keys(changed) == ["2025-03-01", "2025-03-02"]
    rest = tick(reprocessing_sensor, setup, instance, changed.cursor)
    assert keys(rest) == ["2025-03-03"]
    assert tick(reprocessing_sensor, setup, instance, rest.cursor).run_requests == []

    # A newer version during a sweep starts it again from the first date.
    monkeypatch.setitem(STAGES, "topics", replace(topics, version=f"{topics.version}-again"))
    again = tick(reprocessing_sensor, setup, instance, changed.cursor)
    assert keys(again) == ["2025-03-01", "2025-03-02"]
    assert all(r.run_key.endswith(json.loads(again.cursor or "")["versions"]) for r in again.run_requests)


def test_sensors_count_and_report_recordings_before_the_start_date(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from callpipe.defs import partitions

    monkeypatch.setattr(
        partitions, "call_date_partitions", partitions.build_call_date_partitions(start_date="2025-03-02")
    )
    setup = local_setup(tmp_path / "recordings")
    setup.save("early-1", DAY1)
    setup.save("early-2", DAY1.replace(hour=15))
    setup.save("in-range", DAY2)
    capfd.readouterr()
    data = tick(unprocessed_recordings_sensor, setup, instance)
    assert keys(data) == ["2025-03-02"]
    assert json.loads(data.cursor or "")["before_start"] == 2
    assert "unprocessed: 2 recordings before CALLPIPE_START_DATE (2025-03-02)" in capfd.readouterr().err
    again = tick(unprocessed_recordings_sensor, setup, instance, data.cursor)
    assert again.run_requests == [] and "CALLPIPE_START_DATE" not in capfd.readouterr().err  # once per change

    setup.mark_processed("in-range")
    topics = STAGES["topics"]
    first = tick(reprocessing_sensor, setup, instance)
    monkeypatch.setitem(STAGES, "topics", replace(topics, version=f"{topics.version}-next"))
    capfd.readouterr()
    stale = tick(reprocessing_sensor, setup, instance, first.cursor)
    assert keys(stale) == ["2025-03-02"]
    assert "reprocessing: 1 call dates before CALLPIPE_START_DATE" in capfd.readouterr().err
