"""SIGKILL of ``callpipe batch`` at each point of a run, with the production ``gpu`` pool limit (1,
from dagster.yaml), then the next ``callpipe batch``: it ends the dead run (failed, its slot
freed), waits for no slot and no lease, and does each unfinished stage once."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from callpipe.batch import run_partitions
from callpipe.stage_runner import STAGE_ORDER
from callpipe.storage import LocalStore
from callpipe_tests.faults.calls import seed_day
from callpipe_tests.faults.conftest import logged_stage_runs
from callpipe_tests.faults.runs import (
    DAY,
    batch_env,
    gpu_holders,
    instance_for,
    start_batch,
    wait_parked,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]
COUNT = 3

POINTS = {
    "planning": "partition chosen, run not created yet",
    "stage:stt": "inside STT, one Whisper transcript written, gpu slot held",
    "before:correction": "between steps: STT step finished, correction not started",
    "stage:sentiment": "inside analysis, one sentiment written",
    "finalize": "inside finalize, one recording finalized",
}


@pytest.mark.parametrize("point", list(POINTS))
def test_sigkill_at_each_point_then_the_next_batch_finishes_the_day(
    point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage_log: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "recordings")
    ids = seed_day(store, DAY, COUNT, confidence=0.3 if point == "stage:stt" else 0.97)  # stt: real Whisper

    first = start_batch(tmp_path, park=point)
    wait_parked(tmp_path, first)
    with instance_for(tmp_path) as instance:
        started = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        killed_run = started[0].run_id if started else None
        assert (killed_run is None) == (point == "planning")
        if point == "stage:stt":
            assert gpu_holders(instance) == {killed_run}  # the slot the issue saw held forever
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    snapshot = {rid: store.get_metadata(rid) for rid in ids}
    unfinished = [rid for rid, m in snapshot.items() if not m.processed]
    assert unfinished
    done_before = {(rid, s) for rid, m in snapshot.items() for s in m.provenance.stage_inputs}
    leases = [m.status.lease_until for m in snapshot.values() if m.status.lease_until is not None]

    for name, value in batch_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    report = run_partitions({DAY: None}, trigger="cli")  # what `callpipe batch` runs, in this process
    run = report["runs"][0]
    assert run["success"] and run["processed"] == len(unfinished) and run["failed"] == 0
    assert all(datetime.now(UTC) < until for until in leases), "the next run waited for a lease to expire"

    ran = logged_stage_runs(stage_log)
    assert all(n == 1 for n in ran.values()), ran  # no stage twice for a recording
    assert {owner for owner, _, _ in ran} <= {run["run_id"]}  # none when only finalizing was left
    missing = {(rid, s) for rid in ids for s in STAGE_ORDER} - done_before
    assert {(rid, stage) for _, rid, stage in ran} == missing  # exactly what the kill left undone
    for rid in ids:
        meta = store.get_metadata(rid)
        assert meta.processed and meta.status.lease_owner is None

    with instance_for(tmp_path) as instance:
        if killed_run is not None:
            dead = instance.get_run_by_id(killed_run)
            assert dead is not None and dead.status == dg.DagsterRunStatus.FAILURE  # not STARTED forever
        assert gpu_holders(instance) == set()
        blocked = [r for r in instance.all_logs(run["run_id"]) if "blocked by limit for pool" in r.message]
        assert blocked == []  # it never waited on the dead run's slot
