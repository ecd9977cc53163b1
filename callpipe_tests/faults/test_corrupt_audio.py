"""One corrupt audio file among 20 good calls of a day."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from callpipe.batch import ensure_dagster_home, quiet_run_config
from callpipe.defs.launch import execute_partition
from callpipe.storage import LocalStore
from callpipe_tests.faults.calls import seed_day

pytestmark = pytest.mark.slow

DAY = "2026-03-14"


def test_corrupt_audio_fails_alone_with_its_reason_and_the_check_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "recordings")
    good = seed_day(store, DAY, 20, prefix="ok")
    [bad] = seed_day(store, DAY, 1, prefix="bad")
    store.local_audio_path(bad).write_bytes(b"\x00garbage" * 2000)  # damaged on disk after the save
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(store.root))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    ensure_dagster_home()

    with dg.DagsterInstance.get() as instance:
        tags = {"callpipe/trigger": "cli"}
        run = execute_partition(DAY, instance=instance, tags=tags, run_config=quiet_run_config())
        evaluations = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        checks = {
            e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data
            for e in evaluations
        }
    analytics = run.values["call_analytics"]
    assert sorted(analytics["processed"]) == sorted(good)
    assert list(analytics["failed"]) == [bad]
    assert run.success  # 1 of 21 (4.8%) stays under the 10% failure-rate threshold

    meta = store.get_metadata(bad)
    assert meta.status.status == "failed" and not meta.processed and meta.status.attempts == 1
    assert meta.status.error == analytics["failed"][bad]
    assert meta.status.error.startswith("stt: InvalidAudioError: cannot decode ")
    assert meta.status.lease_owner is None  # released: the next run retries it (attempt 2 of 3)
    for rid in good:
        done = store.get_metadata(rid)
        assert done.processed and done.status.status == "processed" and done.provenance.run_id == run.run_id

    rate = checks["failure_rate_under_threshold"]
    values = {k: getattr(v, "value", v) for k, v in rate.metadata.items()}
    assert rate.passed and values["failed"] == 1 and values["processed"] == 20
    assert values["failures"] == {bad: meta.status.error}  # the check names the recording and why
