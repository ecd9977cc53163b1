"""The Dagster instance on a real PostgreSQL (dagster-postgres): runs, event logs, sensor cursors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.sensor import execute_sensor_iteration

from callpipe.batch import ensure_dagster_home, run_partitions
from callpipe.defs.assets import ALL_ASSETS
from callpipe.storage import RecordingStore, get_audio_storage
from callpipe_tests.scale.conftest import REPO_ROOT
from callpipe_tests.storage.conftest import make_wav

EMPTY_DAY = "2025-02-03"
DAY1 = datetime(2025, 3, 1, 12, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 12, tzinfo=UTC)


@pytest.fixture
def pg_env(pg_url: str, dagster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """DAGSTER_HOME (temp) whose instance ``ensure_dagster_home`` points at the test database."""
    url = pg_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    ensure_dagster_home()
    return {**dagster_env, "DAGSTER_PG_URL": url}


def _query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg2.connect(url.replace("+psycopg2", "")) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def test_postgres_instance_holds_a_batch_run(pg_env: dict[str, str]) -> None:
    home = Path(pg_env["DAGSTER_HOME"])
    text = (home / "dagster.yaml").read_text()
    assert "DAGSTER_PG_URL" in text and "127.0.0.1" not in text  # an env reference, not the URL

    summary = run_partitions({EMPTY_DAY: None}, trigger="pg-test")
    (run,) = summary["runs"]
    assert run["success"] and run["to_process"] == 0

    url = pg_env["DAGSTER_PG_URL"]
    rows = _query(url, "SELECT status, partition FROM runs WHERE run_id = %s", run["run_id"])
    assert rows == [("SUCCESS", EMPTY_DAY)]
    events = {
        kind
        for (kind,) in _query(
            url, "SELECT DISTINCT dagster_event_type FROM event_logs WHERE run_id = %s", run["run_id"]
        )
    }
    # Run events keep their legacy names in the table (DagsterEventType.RUN_SUCCESS == "PIPELINE_SUCCESS").
    assert {"PIPELINE_START", "STEP_SUCCESS", "ASSET_MATERIALIZATION", "PIPELINE_SUCCESS"} <= events
    materialized = _query(
        url,
        "SELECT DISTINCT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
        run["run_id"],
        "ASSET_MATERIALIZATION",
    )
    every_asset = {key for a in ALL_ASSETS for key in a.keys}  # the stages' and the tables'
    assert len(materialized) == len(every_asset) == 13
    assert not (home / "history" / "runs.db").exists()  # nothing went to SQLite
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_run_by_id(run["run_id"]).tags["callpipe/trigger"] == "pg-test"


def test_field_by_field_settings_reach_the_database(
    pg_url: str, dagster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    host_port, name = pg_url.split("@", 1)[1].split("/", 1)
    host, port = host_port.split(":")
    for var, value in {
        "DAGSTER_PG_HOST": host,
        "DAGSTER_PG_PORT": port,
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_DB": name,
    }.items():
        monkeypatch.setenv(var, value)
    home = ensure_dagster_home()
    assert name not in (home / "dagster.yaml").read_text()
    with dg.DagsterInstance.get() as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_runs() == []
    tables = {t for (t,) in _query(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "event_logs", "instigators", "job_ticks"} <= tables  # created in that database


def _save(store: RecordingStore, recording_id: str, timestamp: datetime) -> None:
    meta = {"recording_id": recording_id, "conversation_id": "conv-1", "timestamp": timestamp}
    store.save_recording(make_wav(seconds=0.1), "conv-1", metadata=meta, recording_id=recording_id)


@pytest.fixture
def daemon_target() -> ModuleTarget:
    return ModuleTarget(
        module_name="callpipe.defs.definitions",
        attribute="defs",
        working_directory=str(REPO_ROOT),
        location_name="callpipe",
    )


def _tick(target: ModuleTarget, instance: dg.DagsterInstance, now: datetime) -> None:
    """One sensor-daemon iteration (code server subprocess, as ``dagster-daemon`` runs it)."""
    with freeze_time(now), create_test_daemon_workspace_context(target, instance) as context:
        list(execute_sensor_iteration(context, logging.getLogger("callpipe.test"), None, None))


def _sensor_state(instance: dg.DagsterInstance) -> Any:
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    return next(s for s in states if s.name == "unprocessed_recordings_sensor")


@pytest.fixture
def instances(pg_env: dict[str, str]) -> Iterator[list[dg.DagsterInstance]]:
    opened: list[dg.DagsterInstance] = []
    yield opened
    for instance in opened:
        instance.dispose()


@pytest.mark.slow
def test_sensor_cursor_survives_a_new_instance(
    pg_env: dict[str, str], daemon_target: ModuleTarget, instances: list[dg.DagsterInstance]
) -> None:
    store = get_audio_storage()  # behind the catalog the sensor reads
    _save(store, "rec-1", DAY1)
    start = datetime.now(UTC)

    instances.append(dg.DagsterInstance.get())
    _tick(daemon_target, instances[0], start)
    first = _sensor_state(instances[0])
    cursor = first.instigator_data.cursor
    assert DAY1.date().isoformat() in cursor
    assert [r.tags["dagster/partition"] for r in instances[0].get_runs()] == ["2025-03-01"]
    instances[0].dispose()

    # A new instance from the same DAGSTER_HOME (a restarted daemon) reads the cursor back ...
    instances.append(dg.DagsterInstance.get())
    again = _sensor_state(instances[1])
    assert again.instigator_data.cursor == cursor
    # ... and the next tick resumes from it: nothing new for day 1, one run for the new day.
    _save(store, "rec-2", DAY2)
    _tick(daemon_target, instances[1], start + timedelta(seconds=61))
    runs = instances[1].get_runs()
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["2025-03-01", "2025-03-02"]
    ticks = instances[1].get_ticks(again.instigator_origin_id, again.selector_id)
    assert [len(t.run_keys) for t in ticks] == [1, 1]  # newest first: day 2, then day 1

    url = pg_env["DAGSTER_PG_URL"]
    stored = _query(url, "SELECT count(*) FROM job_ticks WHERE selector_id = %s", again.selector_id)
    assert stored == [(2,)]
