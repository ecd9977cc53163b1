"""SIGKILL of ``callpipe batch`` in the middle of a partition, then the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callpipe.batch import run_partitions
from callpipe.stage_runner import STAGE_ORDER
from callpipe.storage import LocalStore
from callpipe_tests.faults.calls import seed_day
from callpipe_tests.faults.conftest import logged_stage_runs, parse_all, temp_files

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-03-10"
COUNT = 8
LEASE_SECONDS = 300  # the default: the next run must not wait for it


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(tmp_path / "recordings"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "BATCH_LEASE_SECONDS": str(LEASE_SECONDS),
        "BATCH_MAX_CONCURRENT": "1",
    }


def _batch(tmp_path: Path) -> subprocess.Popen[str]:
    """``callpipe batch`` over the day in a child process (its own process group)."""
    command = ["batch", "--mode", "date_range", "--start-date", DAY, "--end-date", DAY]
    return subprocess.Popen(
        [sys.executable, "-m", "callpipe.cli", *command],
        cwd=REPO,
        env={**os.environ, **_env(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, killed as a whole
    )


def _mid_partition(store: LocalStore, ids: list[str]) -> bool:
    """Some recording has an analysis result written and none is finished yet."""
    docs = [store.get_metadata(rid) for rid in ids]
    return any(len(d.provenance.stage_inputs) > 2 for d in docs)


def test_sigkill_mid_partition_then_next_run_completes_each_recording_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage_log: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "recordings")
    ids = seed_day(store, DAY, COUNT)

    first = _batch(tmp_path)
    deadline = time.monotonic() + 180
    while not _mid_partition(store, ids):
        assert first.poll() is None, "the batch finished before it could be killed"
        assert time.monotonic() < deadline, "the batch never reached the analysis stages"
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    killed_at = datetime.now(UTC)
    assert first.returncode == -signal.SIGKILL

    # Right after the kill: every document parses, nothing is half-written, leases are bounded.
    raw = parse_all(store)
    assert sorted(raw) == ids
    leftovers = temp_files(store.root)  # a killed writer may leave a hidden temp file, never a document
    page = store.list_recordings(limit=100)
    assert [r.recording_id for r in page.items] == ids and not page.errors
    snapshot = {rid: store.get_metadata(rid) for rid in ids}
    unfinished = [rid for rid, m in snapshot.items() if not m.processed]
    assert unfinished, "killed too late: every recording was already finished"
    owners = {snapshot[rid].status.lease_owner for rid in unfinished}
    assert len(owners) == 1 and None not in owners
    killed_run = owners.pop()
    for rid in unfinished:
        state = snapshot[rid].status
        assert state.status == "processing" and state.attempts == 1
        assert state.lease_until is not None
        assert (state.lease_until - killed_at).total_seconds() <= LEASE_SECONDS  # blocks one lease at most
    done_before = {(rid, s) for rid, m in snapshot.items() for s in m.provenance.stage_inputs}
    assert len(done_before) < COUNT * len(STAGE_ORDER)

    # The next run takes the leases over at once (the killed run's process, named in its run tags,
    # is gone from this host although Dagster still shows the run started) and finishes the day.
    expiry = min(snapshot[rid].status.lease_until for rid in unfinished)
    for name, value in _env(tmp_path).items():
        monkeypatch.setenv(name, value)
    report = run_partitions({DAY: None}, trigger="cli")  # what `callpipe batch` runs, in this process
    run = report["runs"][0]
    assert run["success"] and run["processed"] == len(unfinished) and run["failed"] == 0
    assert datetime.now(UTC) < expiry, "the next run waited for the leases to expire"

    ran = logged_stage_runs(stage_log)
    assert all(n == 1 for n in ran.values()), ran  # no stage ran twice for a recording
    assert {owner for owner, _, _ in ran} == {run["run_id"]}
    missing = {(rid, s) for rid in ids for s in STAGE_ORDER} - done_before
    assert {(rid, stage) for _, rid, stage in ran} == missing  # exactly what the kill left undone

    raw = parse_all(store)
    assert sorted(raw) == ids
    for rid in ids:
        meta = store.get_metadata(rid)
        assert meta.processed and meta.status.status == "processed"
        assert meta.status.lease_owner is None and meta.status.lease_until is None
        assert set(meta.provenance.stage_inputs) == set(STAGE_ORDER)
        if rid in unfinished:
            assert meta.provenance.run_id == run["run_id"] and meta.status.attempts == 2
        else:
            assert meta.provenance.run_id == killed_run and meta == snapshot[rid]  # left untouched
    assert temp_files(store.root) == leftovers  # the next run adds none
