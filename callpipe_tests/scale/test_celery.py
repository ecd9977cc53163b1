"""A day partition through dagster-celery on a real Redis: STT on the ``gpu`` worker, the rest on
the ``dagster`` worker, both started with ``dagster-celery worker start`` as the README says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from callpipe.batch import ensure_dagster_home, run_partitions
from callpipe.defs.executors import step_report
from callpipe.storage import LocalStore
from callpipe_tests.scale.conftest import record_demo_calls
from callpipe_tests.scale.workers import celery_workers

pytestmark = pytest.mark.slow

DAY = "2026-10-14"


@pytest.fixture
def celery_env(
    redis_url: str, dagster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The launcher's environment in celery mode, and a gpu and a cpu worker sharing it."""
    env = {
        **dagster_env,
        "CALLPIPE_EXECUTOR": "celery",
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ensure_dagster_home()
    # Create the SQLite databases once: two workers starting together on an empty DAGSTER_HOME
    # would race to create the schema.
    dg.DagsterInstance.get().dispose()
    with celery_workers(redis_url, tmp_path):
        yield env


def test_day_partition_runs_across_gpu_and_cpu_workers(celery_env: dict[str, str]) -> None:
    store = LocalStore(celery_env["STORAGE_LOCAL_PATH"])
    ids = record_demo_calls(store, DAY, ["saldo", "tarjeta"])

    summary = run_partitions({DAY: None}, trigger="celery-test")
    (run,) = summary["runs"]
    assert run["success"], run
    assert run["processed"] == 2 and run["failed"] == 0, run

    for recording_id in ids:
        meta = store.get_metadata(recording_id)
        assert meta.processed and meta.status.status == "processed"
        assert meta.provenance.run_id == run["run_id"]
        assert meta.transcription.retranscribed  # Whisper ran (on the gpu worker)
        assert meta.transcription.corrected_text and meta.sentiment is not None and meta.intent is not None

    with dg.DagsterInstance.get() as instance:
        steps = step_report(instance, run["run_id"])
    ran = {key: s for key, s in steps.items() if s["seconds"] is not None}
    assert "transcripts" in ran and "call_analytics" in ran and "daily_call_summary" in ran
    stt = ran.pop("transcripts")
    assert stt["queue"] == "gpu" and stt["worker"].startswith("gpuw@"), stt
    assert {s["queue"] for s in ran.values()} == {"dagster"}, ran
    assert all(s["worker"].startswith("cpuw@") for s in ran.values()), ran
