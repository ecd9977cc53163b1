"""SIGTERM and Ctrl-C (SIGINT) of ``callpipe batch`` stop it cleanly; a run waiting on a pool slot
says so and sleeps; a killed run's slot is freed by the next batch, the sensor and the schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from callpipe.batch import ensure_dagster_home
from callpipe.defs.resources import RecordingStoreResource
from callpipe.defs.run_owners import reap_dead_runs
from callpipe.leases import ALIVE_UNTIL_TAG, HOST_TAG, PID_TAG, run_death
from callpipe.storage import LocalStore
from callpipe_tests.faults.calls import seed_day
from callpipe_tests.faults.runs import (
    DAY,
    REPO,
    batch_env,
    fake_cli_run,
    gpu_holders,
    identity_of,
    instance_for,
    start_batch,
    stderr,
    wait_parked,
)

COUNT = 2


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def sleeper() -> subprocess.Popen[bytes]:
    """A live process standing for another ``callpipe batch`` (killed at the end)."""
    child = subprocess.Popen(["sleep", "600"])
    yield child
    child.kill()
    child.wait()


def _dead_identity() -> dict[str, str]:
    """Process tags of a process that ran on this host and is gone."""
    child = subprocess.Popen(["sleep", "600"])
    tags = identity_of(child.pid)
    child.kill()
    child.wait()
    return tags


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("signum", "point"), [(signal.SIGTERM, "stage:stt"), (signal.SIGINT, "stage:sentiment")]
)
def test_sigterm_and_ctrl_c_stop_the_batch_cleanly(signum: int, point: str, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "recordings")
    ids = seed_day(store, DAY, COUNT)
    child = start_batch(tmp_path, park=point)
    wait_parked(tmp_path, child)
    with instance_for(tmp_path) as instance:
        (run,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    held = [rid for rid in ids if store.get_metadata(rid).status.lease_owner == run.run_id]
    assert held

    os.killpg(child.pid, signum)  # a terminal's Ctrl-C reaches the whole foreground group
    assert child.wait(timeout=60) == 128 + signum
    lines = [line for line in stderr(tmp_path).splitlines() if line.startswith("callpipe:")]
    assert len(lines) == 1, stderr(tmp_path)
    assert f"stopped by {signal.Signals(signum).name}" in lines[0] and run.run_id in lines[0]
    assert "Traceback" not in stderr(tmp_path)

    with instance_for(tmp_path) as instance:
        final = instance.get_run_by_id(run.run_id)
        assert final is not None and final.status == dg.DagsterRunStatus.CANCELED
        assert gpu_holders(instance) == set()
    for rid in ids:
        state = store.get_metadata(rid).status
        assert state.lease_owner is None and state.lease_until is None
        if rid in held and not store.get_metadata(rid).processed:
            assert state.status == "pending" and state.attempts == 0  # the canceled attempt does not count


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("ending", ["holder dies", "SIGTERM while waiting"])
def test_a_run_waiting_on_a_pool_slot_says_who_holds_it_sleeps_and_ends_cleanly(
    ending: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen[bytes]
) -> None:
    seed_day(LocalStore(tmp_path / "recordings"), DAY, COUNT)
    for name, value in batch_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    ensure_dagster_home()  # dagster.yaml: gpu pool limit 1
    with instance_for(tmp_path) as instance:
        holder = fake_cli_run(instance, identity_of(sleeper.pid), hold_gpu=True)  # alive: not reaped

    child = start_batch(tmp_path)
    deadline = time.monotonic() + 240
    while f"held by run {holder}" not in stderr(tmp_path):
        assert child.poll() is None, stderr(tmp_path)
        assert time.monotonic() < deadline, "no message about the pool wait"
        time.sleep(0.2)
    (line,) = [x for x in stderr(tmp_path).splitlines() if f"held by run {holder}" in x]
    assert "waits for a slot of pool 'gpu'" in line and "transcribe_chunk" in line and " since 20" in line

    cpu, wall = _cpu_seconds(child.pid), time.monotonic()
    time.sleep(6)
    busy = (_cpu_seconds(child.pid) - cpu) / (time.monotonic() - wall)
    assert child.poll() is None
    assert busy < 0.3, f"the waiting batch used {busy:.0%} of a core"  # the issue saw ~70%

    if ending == "SIGTERM while waiting":  # the issue: still running 10 s after each of two SIGTERMs
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(timeout=30) == 128 + signal.SIGTERM
        assert "callpipe: batch stopped by SIGTERM" in stderr(tmp_path)
        with instance_for(tmp_path) as instance:
            assert gpu_holders(instance) == {holder}  # its queued claim gone, the live holder kept
            (run,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.CANCELED]))
            assert run.run_id != holder
        return
    sleeper.kill()  # the holder dies: the waiting batch ends it and takes the slot
    sleeper.wait()
    assert child.wait(timeout=120) == 0, stderr(tmp_path)
    assert f"ended run {holder}" in stderr(tmp_path)
    with instance_for(tmp_path) as instance:
        dead = instance.get_run_by_id(holder)
        assert dead is not None and dead.status == dg.DagsterRunStatus.FAILURE
        assert gpu_holders(instance) == set()


def _instance_with_dead_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    for name, value in batch_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    ensure_dagster_home()
    with instance_for(tmp_path) as instance:
        dead = fake_cli_run(instance, _dead_identity(), hold_gpu=True)
        finished = fake_cli_run(instance, _dead_identity(), hold_gpu=False)
        run = instance.get_run_by_id(finished)
        assert run is not None
        instance.report_run_failed(run, message="test")
    return dead, finished


def _resource(tmp_path: Path) -> RecordingStoreResource:
    return RecordingStoreResource(
        backend="local", local_path=str(tmp_path / "recordings"), s3=S3Resource(region_name="us-east-1")
    )


def _assert_reaped(tmp_path: Path, dead: str) -> None:
    with instance_for(tmp_path) as instance:
        run = instance.get_run_by_id(dead)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
        assert "is gone" in (instance.all_logs(dead)[-1].message or "")
        assert gpu_holders(instance) == set()


def test_the_unprocessed_sensor_ends_a_killed_batch_run_and_frees_its_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callpipe.defs.sensors import unprocessed_recordings_sensor

    dead, _ = _instance_with_dead_run(tmp_path, monkeypatch)
    resource = _resource(tmp_path)
    with (
        instance_for(tmp_path) as instance,
        dg.build_sensor_context(instance=instance, resources={"store": resource}) as context,
    ):
        unprocessed_recordings_sensor(context)
    _assert_reaped(tmp_path, dead)


def test_the_nightly_schedule_ends_a_killed_batch_run_and_frees_its_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callpipe.defs.schedules import nightly_processing_schedule

    dead, _ = _instance_with_dead_run(tmp_path, monkeypatch)
    resource = _resource(tmp_path)
    scheduled = datetime(2026, 3, 11, 2, tzinfo=UTC)
    with (
        instance_for(tmp_path) as instance,
        dg.build_schedule_context(
            instance=instance, resources={"store": resource}, scheduled_execution_time=scheduled
        ) as context,
    ):
        nightly_processing_schedule()(context)
    _assert_reaped(tmp_path, dead)


def test_reaping_leaves_live_runs_and_runs_it_cannot_judge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen[bytes]
) -> None:
    dead, finished = _instance_with_dead_run(tmp_path, monkeypatch)
    with instance_for(tmp_path) as instance:
        storage = instance.event_log_storage
        storage.free_concurrency_slots_for_run(dead)
        live = fake_cli_run(instance, identity_of(sleeper.pid), hold_gpu=True)
        daemon_run = fake_cli_run(instance, {}, hold_gpu=False)  # launched by the daemon: no process tags
        reaped = {r.run_id for r in reap_dead_runs(instance)}
        assert reaped == {dead}  # the finished one was already failed
        for run_id, status in ((live, "STARTED"), (daemon_run, "STARTED"), (finished, "FAILURE")):
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.status.value == status
        assert gpu_holders(instance) == {live}


def test_run_death_on_another_host_is_told_by_the_heartbeat_tag() -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    elsewhere = {HOST_TAG: "gpu-node-7", PID_TAG: "1234"}
    past = (now - timedelta(seconds=1)).isoformat()
    future = (now + timedelta(seconds=100)).isoformat()
    assert run_death({**elsewhere, ALIVE_UNTIL_TAG: future}, now) is None
    reason = run_death({**elsewhere, ALIVE_UNTIL_TAG: past}, now)
    assert reason is not None and "gpu-node-7" in reason and "no heartbeat" in reason
    assert run_death(elsewhere, now) is None  # no heartbeat tag: the lease stays the bound
    assert run_death({**elsewhere, ALIVE_UNTIL_TAG: "garbage"}, now) is None
    assert run_death({**_dead_identity(), ALIVE_UNTIL_TAG: future}, now) is not None  # this host: the pid


LAUNCHED = """
import sys
import dagster as dg
from callpipe.defs.launch import process_call_date_job

with dg.DagsterInstance.get() as instance:
    result = dg.execute_job(
        dg.reconstructable(process_call_date_job),
        instance=instance,
        tags={"dagster/partition": sys.argv[1], "callpipe/trigger": "unprocessed-sensor"},
        raise_on_error=False,
    )
print("success" if result.success else "failure", flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_daemon_style_run_blocked_on_a_killed_batch_slot_finishes_after_the_next_sensor_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `dagster dev` does with the sensor's request: the multiprocess executor in a run worker
    process (each step a process: minutes on 2 busy cores); it waits on the dead run's slot until
    the sensor's next tick ends that run."""
    from callpipe.defs.sensors import unprocessed_recordings_sensor

    store = LocalStore(tmp_path / "recordings")
    ids = seed_day(store, DAY, COUNT)
    dead, _ = _instance_with_dead_run(tmp_path, monkeypatch)
    worker = subprocess.Popen(
        [sys.executable, "-c", LAUNCHED, DAY],
        cwd=REPO,
        env={**os.environ, **batch_env(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while True:  # until its STT step is blocked by the dead run's slot
            with instance_for(tmp_path) as instance:
                runs = instance.get_runs(dg.RunsFilter(tags={"callpipe/trigger": "unprocessed-sensor"}))
                logs = instance.all_logs(runs[0].run_id) if runs else []
                blocked = any("blocked by limit for pool gpu" in (r.message or "") for r in logs)
            if blocked:
                break
            assert worker.poll() is None, "the run ended without waiting on the slot"
            assert time.monotonic() < deadline, "the run never reached its STT step"
            time.sleep(0.5)
        with (
            instance_for(tmp_path) as instance,
            dg.build_sensor_context(instance=instance, resources={"store": _resource(tmp_path)}) as context,
        ):
            unprocessed_recordings_sensor(context)  # the next tick under `dagster dev`
        out, _ = worker.communicate(timeout=240)
    finally:
        worker.kill()
    assert out.strip() == "success"
    _assert_reaped(tmp_path, dead)
    assert all(store.get_metadata(rid).processed for rid in ids)
