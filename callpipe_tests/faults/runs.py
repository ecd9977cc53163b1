"""Helpers of the kill and signal tests: ``callpipe batch`` children, park points, instance state."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg

from callpipe.faultpoints import PARK_ENV, READY_ENV
from callpipe.leases import HOST_TAG, PID_START_TAG, PID_TAG, process_start_ticks

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-03-10"
LEASE_SECONDS = 300  # the default: the next run must not wait for it
GPU = "gpu"


def batch_env(tmp_path: Path) -> dict[str, str]:
    """A local store and an instance of this test; the instance gets the repository's dagster.yaml
    (pool limit 1), as ``callpipe batch`` seeds it."""
    return {
        "STORAGE_LOCAL_PATH": str(tmp_path / "recordings"),
        "STORAGE_BACKEND": "local",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "BATCH_LEASE_SECONDS": str(LEASE_SECONDS),
        "BATCH_MAX_CONCURRENT": "1",
    }


def start_batch(tmp_path: Path, park: str | None = None) -> subprocess.Popen[str]:
    """``callpipe batch`` over :data:`DAY` in a child process (its own process group), parked at
    ``park`` (:mod:`callpipe.faultpoints`) when given; stderr goes to ``tmp_path/stderr.txt``."""
    env = {**os.environ, **batch_env(tmp_path)}
    env.pop(PARK_ENV, None)
    if park:
        env.update({PARK_ENV: park, READY_ENV: str(tmp_path / "parked")})
    command = ["batch", "--mode", "date_range", "--start-date", DAY, "--end-date", DAY]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "callpipe.cli", *command],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )


def wait_parked(tmp_path: Path, child: subprocess.Popen[str], limit: float = 240) -> None:
    """Until the child reports it parked (fails if it exits first)."""
    deadline = time.monotonic() + limit
    while not (tmp_path / "parked").exists():
        assert child.poll() is None, f"batch exited ({child.returncode}) before parking: {stderr(tmp_path)}"
        assert time.monotonic() < deadline, "the batch never reached its park point"
        time.sleep(0.05)


def stderr(tmp_path: Path) -> str:
    return (tmp_path / "stderr.txt").read_text()


def instance_for(tmp_path: Path) -> dg.DagsterInstance:
    """The test's instance (open it after a batch seeded its dagster.yaml)."""
    return dg.DagsterInstance.from_config(str(tmp_path / "dagster"))


def gpu_holders(instance: dg.DagsterInstance) -> set[str]:
    """Runs holding a ``gpu`` slot or queued for one."""
    info = instance.event_log_storage.get_concurrency_info(GPU)
    return {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}


def identity_of(pid: int) -> dict[str, str]:
    """The process tags ``callpipe batch`` would put on its runs, for another process."""
    import socket

    ticks = process_start_ticks(pid)
    assert ticks is not None
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PID_START_TAG: ticks}


def fake_cli_run(instance: dg.DagsterInstance, tags: dict[str, str], *, hold_gpu: bool) -> str:
    """A STARTED run of ``process_call_date`` as a ``callpipe batch`` process would leave it,
    holding the ``gpu`` slot (with the pool limit from dagster.yaml) when ``hold_gpu``."""
    run = instance.add_run(
        dg.DagsterRun(
            job_name="process_call_date",
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
            tags={"callpipe/trigger": "cli", "dagster/partition": DAY, **tags},
        )
    )
    if hold_gpu:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(GPU)
        status = storage.claim_concurrency_slot(GPU, run.run_id, "transcripts.transcribe_chunk[chunk_0]")
        assert status.is_claimed, status
    return run.run_id
