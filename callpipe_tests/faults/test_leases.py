"""Lease rules on a real local store: takeover, renewal, and a run that lost its lease."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from callpipe.defs.run_owners import run_owner_check
from callpipe.failures import mark_failed
from callpipe.leases import (
    HOST_TAG,
    PID_START_TAG,
    PID_TAG,
    Heartbeat,
    LeaseLostError,
    process_identity,
    process_is_gone,
    process_start_ticks,
    renew,
)
from callpipe.schema import ProcessingStatus, RecordingMetadata
from callpipe.stage_list import STAGES, StageModels, StageSpec
from callpipe.stage_runner import PipelineSettings, claim, run_stage
from callpipe.storage import LocalStore, RecordingStore
from callpipe_tests.faults.calls import seed_day

SETTINGS = PipelineSettings(lease_seconds=60)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "recordings")


def test_a_live_lease_holds_unless_its_run_is_known_to_be_over(store: LocalStore) -> None:
    [rid] = seed_day(store, "2026-03-15", 1)
    assert claim(store, rid, "run-a", SETTINGS)
    revision = store.get_metadata(rid).revision
    assert not claim(store, rid, "run-b", SETTINGS)
    assert not claim(store, rid, "run-b", SETTINGS, is_owner_alive=lambda run: run == "run-a")
    assert store.get_metadata(rid).revision == revision  # a refused claim writes nothing
    assert claim(store, rid, "run-b", SETTINGS, is_owner_alive=lambda run: run != "run-a")
    state = store.get_metadata(rid).status
    assert (state.lease_owner, state.attempts) == ("run-b", 2)


def test_an_expired_lease_is_taken_over_and_a_finished_recording_is_not_claimed(store: LocalStore) -> None:
    expired, finished = seed_day(store, "2026-03-15", 2)
    assert claim(store, expired, "run-a", SETTINGS)

    def lapse(meta: RecordingMetadata) -> None:
        meta.status.lease_until = datetime.now(UTC) - timedelta(seconds=1)

    store.modify_metadata(expired, lapse)
    assert claim(store, expired, "run-b", SETTINGS)

    def done(meta: RecordingMetadata) -> None:
        meta.processed = True
        meta.status.status = ProcessingStatus.PROCESSED
        meta.provenance.stage_versions = {name: spec.version for name, spec in STAGES.items()}

    store.modify_metadata(finished, done)
    assert not claim(store, finished, "run-c", SETTINGS)  # finished by another run since the manifest


def test_heartbeat_renews_the_leases_being_worked_on(store: LocalStore) -> None:
    working, idle = seed_day(store, "2026-03-15", 2)
    for rid in (working, idle):
        assert claim(store, rid, "run-a", SETTINGS)
    before = {rid: store.get_metadata(rid).status.lease_until for rid in (working, idle)}
    with Heartbeat(store, "run-a", lease_seconds=0.3) as heartbeat:
        heartbeat.add(working)
        time.sleep(0.5)
    after = {rid: store.get_metadata(rid).status.lease_until for rid in (working, idle)}
    assert after[idle] == before[idle]
    assert after[working] != before[working] and store.get_metadata(working).status.lease_owner == "run-a"
    with pytest.raises(LeaseLostError):
        renew(store, working, "run-b", 60)


def test_a_run_that_lost_the_lease_writes_nothing_and_marks_nothing_failed(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    [rid] = seed_day(store, "2026-03-15", 1)
    assert claim(store, rid, "run-a", SETTINGS)

    def taken_over_meanwhile(
        meta: RecordingMetadata, services: StageModels, store: RecordingStore
    ) -> dict[str, Any]:
        def takeover(current: RecordingMetadata) -> None:
            current.status.lease_owner = "run-b"

        store.modify_metadata(rid, takeover)  # what run-b's claim does once run-a's lease lapsed
        return {"extra": {"written_by": "run-a"}}

    monkeypatch.setitem(STAGES, "sentiment", StageSpec("1", lambda meta: [], taken_over_meanwhile))
    report = run_stage(store, "sentiment", [rid], StageModels(), owner="run-a", settings=SETTINGS)
    assert report.lost and not report.ok and not report.failed
    meta = store.get_metadata(rid)
    assert "sentiment" not in meta.provenance.stage_inputs and "written_by" not in meta.extra
    mark_failed(store, rid, "sentiment: boom", owner="run-a")
    state = store.get_metadata(rid).status
    assert (state.status, state.lease_owner, state.error) == (ProcessingStatus.PROCESSING, "run-b", None)


def test_a_recording_whose_runs_keep_dying_is_failed_after_max_attempts(store: LocalStore) -> None:
    """A poison recording (its worker is killed each time) stops being retried: the claim that
    finds it abandoned ``max_attempts`` times marks it failed with the reason instead."""
    [rid] = seed_day(store, "2026-03-15", 1)
    settings = PipelineSettings(lease_seconds=60, max_attempts=3)
    dead = lambda run: False  # noqa: E731 - every earlier owner is over
    for attempt in range(1, 4):
        assert claim(store, rid, f"run-{attempt}", settings, is_owner_alive=dead)
        assert store.get_metadata(rid).status.attempts == attempt
    assert not claim(store, rid, "run-4", settings, is_owner_alive=dead)
    state = store.get_metadata(rid).status
    assert state.status == ProcessingStatus.FAILED and state.lease_owner is None
    assert "abandoned 3 times" in (state.error or "")
    assert not claim(store, rid, "run-5", settings, is_owner_alive=dead)  # no further retries
    assert claim(store, rid, "run-6", settings, is_owner_alive=dead, force=True)  # an explicit redo still can


def test_process_identity_tells_a_dead_batch_process_from_a_live_one() -> None:
    """``callpipe batch`` tags its runs with host, pid and pid start time: a run whose process is
    gone (SIGKILL) is known over at once; pid reuse by another process does not fool it."""
    mine = process_identity()
    assert mine and not process_is_gone(mine)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_is_gone({**mine, PID_TAG: str(child.pid)})
    assert process_is_gone({**mine, PID_START_TAG: "1"})  # same pid, another process's start time
    assert not process_is_gone({**mine, HOST_TAG: "another-host"})  # cannot tell: trust the lease
    assert not process_is_gone({})


def test_a_started_run_whose_process_died_loses_its_leases(store: LocalStore, tmp_path: Path) -> None:
    [rid] = seed_day(store, "2026-03-15", 1)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = {**process_identity(), PID_TAG: str(child.pid)}
    identity[PID_START_TAG] = process_start_ticks(child.pid) or ""
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run = dg.DagsterRun(job_name="process_call_date", status=dg.DagsterRunStatus.STARTED, tags=identity)
        instance.add_run(run)
        assert claim(store, rid, run.run_id, SETTINGS)
        assert not claim(store, rid, "run-b", SETTINGS, is_owner_alive=run_owner_check(instance))
        child.kill()
        child.wait()
        assert claim(store, rid, "run-b", SETTINGS, is_owner_alive=run_owner_check(instance))
    assert store.get_metadata(rid).status.lease_owner == "run-b"
