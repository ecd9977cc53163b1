"""A day partition through dagster-celery on a real Redis: STT on the ``gpu`` worker, the rest on
the ``dagster`` worker, both started with ``dagster-celery worker start`` as the README says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from callpipe.batch import ensure_dagster_home, run_partitions
from callpipe.defs.executors import step_report
from callpipe.storage import LocalStore
from callpipe_tests.scale.conftest import REPO_ROOT, record_demo_calls

pytestmark = pytest.mark.slow

DAY = "2026-10-14"
CELERY_YAML = REPO_ROOT / "scripts" / "deploy" / "celery.yaml"
BIN = Path(sys.executable).parent  # the venv's bin: dagster-celery runs `celery` from PATH


def worker_command(queue: str, name: str) -> list[str]:
    """The README's worker command; one process per worker (``-c 1``) on this 2-core machine."""
    return [
        str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
        "-y", str(CELERY_YAML), "-q", queue, "-n", name, "--", "-c", "1",
    ]  # fmt: skip


def _wait_ready(broker: str, names: set[str], logs: list[Path], timeout: float = 90.0) -> None:
    from celery import Celery

    app = Celery(broker=broker, backend=broker)
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = {name.split("@")[0] for reply in app.control.ping(timeout=1.0) for name in reply}
        if names <= seen:
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in logs)
    pytest.fail(f"celery workers {sorted(names - seen)} not ready after {timeout:.0f}s\n{tails}")


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
    worker_env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    workers: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for queue, name in (("gpu", "gpuw"), ("dagster", "cpuw")):
            log = tmp_path / f"{name}.log"
            logs.append(log)
            with log.open("wb") as out:
                workers.append(
                    subprocess.Popen(
                        worker_command(queue, name),
                        cwd=REPO_ROOT,
                        env=worker_env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: the finalizer kills all of it
                    )
                )
        _wait_ready(redis_url, {"gpuw", "cpuw"}, logs)
        yield env
    finally:
        for worker in workers:
            _kill_group(worker)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            # The group may outlive its leader (celery's pool children): check it is empty.
            os.killpg(process.pid, 0)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        else:
            time.sleep(1)
            continue
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return


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
