"""S3 stops answering in the middle of a day's run (a real moto server, stopped and restarted)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from callpipe.batch import run_partitions
from callpipe.stage_runner import STAGE_ORDER
from callpipe.storage import RecordingNotFoundError, S3Store, make_s3_client
from callpipe_tests.faults.calls import seed_day
from callpipe_tests.faults.conftest import logged_stage_runs
from callpipe_tests.storage.conftest import RestartableS3

pytestmark = pytest.mark.slow

DAY = "2026-03-11"
COUNT = 6


def _setup(
    server: RestartableS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retry_seconds: float
) -> tuple[S3Store, list[str]]:
    client = make_s3_client(region_name="us-east-1", endpoint_url=server.endpoint)
    bucket = f"faults-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    store = S3Store(bucket, "calls", client, cache_dir=tmp_path / "cache")
    ids = seed_day(store, DAY, COUNT)
    for name, value in {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": bucket,
        "S3_PREFIX": "calls",
        "S3_ENDPOINT_URL": server.endpoint,
        "S3_REGION": "us-east-1",
        "STORAGE_CACHE_DIR": str(tmp_path / "run-cache"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "BATCH_STORAGE_RETRY_SECONDS": str(retry_seconds),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CALLPIPE_ANALYTICS_DB", raising=False)  # the tables: beside the run cache
    return store, ids


def _run_with_outage(server: RestartableS3, store: S3Store, ids: list[str], down_for: float | None) -> Any:
    """Run the day in a thread; stop S3 once STT results are being written, start it again after
    ``down_for`` seconds (None: after the run ended)."""
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(run_partitions({DAY: None})))
    worker.start()
    deadline = time.monotonic() + 120
    while not any("stt" in store.get_metadata(rid).provenance.stage_inputs for rid in ids):
        assert worker.is_alive() and time.monotonic() < deadline, "the run never reached STT"
        time.sleep(0.02)
    server.stop()
    worker.join(timeout=down_for)
    server.start()
    worker.join(timeout=300)
    assert not worker.is_alive()
    return result


def _assert_consistent(store: S3Store, ids: list[str]) -> dict[str, Any]:
    """Nothing says processed that is not: processed documents have every stage and the transcript."""
    docs = {rid: store.get_metadata(rid) for rid in ids}
    for rid, meta in docs.items():
        if meta.processed:
            assert meta.status.status == "processed" and set(meta.provenance.stage_inputs) == set(STAGE_ORDER)
            assert store.get_transcript(rid)
        else:
            with pytest.raises(RecordingNotFoundError):
                store.get_transcript(rid)
        assert meta.status.status != "failed", meta.status.error  # an outage is not the call's fault
    return docs


def test_short_s3_outage_is_retried_with_backoff(
    restartable_s3: RestartableS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stage_log: pytest.LogCaptureFixture,
) -> None:
    store, ids = _setup(restartable_s3, tmp_path, monkeypatch, retry_seconds=60)
    report = _run_with_outage(restartable_s3, store, ids, down_for=2.0)
    run = report["runs"][0]
    assert run["success"] and run["processed"] == COUNT and run["failed"] == 0
    docs = _assert_consistent(store, ids)
    assert all(m.processed and m.status.attempts == 1 for m in docs.values())
    assert any("retrying in" in r.getMessage() for r in stage_log.records)  # the outage was really met
    ran = logged_stage_runs(stage_log)
    assert all(n == 1 for n in ran.values())
    # the day's tables: in the bucket, and their local side inside tmp_path (never ./data)
    key = f"calls/analytics/calls/call_date={DAY}/part.parquet"
    assert store.client.head_object(Bucket=store.bucket, Key=key)["ContentLength"] > 0
    assert len(list(tmp_path.glob(f"analytics/**/calls/call_date={DAY}/part.parquet"))) == 1


def test_long_s3_outage_fails_the_run_cleanly_and_the_next_run_takes_over(
    restartable_s3: RestartableS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stage_log: pytest.LogCaptureFixture,
) -> None:
    store, ids = _setup(restartable_s3, tmp_path, monkeypatch, retry_seconds=1)
    report = _run_with_outage(restartable_s3, store, ids, down_for=None)
    run = report["runs"][0]
    assert not run["success"]
    docs = _assert_consistent(store, ids)
    unfinished = [rid for rid, m in docs.items() if not m.processed]
    assert unfinished, "the outage came too late to matter"
    assert {docs[rid].status.lease_owner for rid in unfinished} == {run["run_id"]}
    with dg.DagsterInstance.get() as instance:
        failures = [
            e.dagster_event.event_specific_data.error.to_string()
            for e in instance.all_logs(run["run_id"], of_type=dg.DagsterEventType.STEP_FAILURE)
        ]
    assert any("store failed" in m and "not marked failed" in m for m in failures), failures

    # The failed run is over, so its leases (valid for minutes more) are taken over at once.
    again = run_partitions({DAY: None})["runs"][0]
    assert again["success"] and again["processed"] == len(unfinished) and again["failed"] == 0
    docs = _assert_consistent(store, ids)
    assert all(m.processed for m in docs.values())
    assert all(
        docs[rid].status.attempts == 2 and docs[rid].provenance.run_id == again["run_id"]
        for rid in unfinished
    )
    ran = logged_stage_runs(stage_log)
    assert all(n == 1 for n in ran.values()), ran
