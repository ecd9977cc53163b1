"""Start and stop real dagster-celery workers (one ``gpu``, one ``dagster``) for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CELERY_YAML = REPO_ROOT / "scripts" / "deploy" / "celery.yaml"
BIN = Path(sys.executable).parent  # the venv's bin: dagster-celery runs `celery` from PATH
WORKERS = (("gpu", "gpuw"), ("dagster", "cpuw"))


def worker_command(queue: str, name: str) -> list[str]:
    """The README's worker command; one pool process per worker (``-c 1``) on this 2-core machine."""
    return [
        str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
        "-y", str(CELERY_YAML), "-q", queue, "-n", name, "--", "-c", "1",
    ]  # fmt: skip


@contextmanager
def celery_workers(broker: str, log_dir: Path, timeout: float = 90.0) -> Iterator[dict[str, Path]]:
    """Run the workers with this process's environment (DAGSTER_HOME, STORAGE_*, CELERY_*) until
    the block ends; yields their log files. Each worker has its own process group, killed at exit."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    workers: list[subprocess.Popen[bytes]] = []
    logs = {name: log_dir / f"{name}.log" for _, name in WORKERS}
    try:
        for queue, name in WORKERS:
            with logs[name].open("wb") as out:
                workers.append(
                    subprocess.Popen(
                        worker_command(queue, name),
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        _wait_ready(broker, {name for _, name in WORKERS}, logs, timeout)
        yield logs
    finally:
        for worker in workers:
            _kill_group(worker)


def _wait_ready(broker: str, names: set[str], logs: dict[str, Path], timeout: float) -> None:
    from celery import Celery

    app = Celery(broker=broker, backend=broker)
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = {name.split("@")[0] for reply in app.control.ping(timeout=1.0) for name in reply}
        if names <= seen:
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in logs.values())
    raise RuntimeError(f"celery workers {sorted(names - seen)} not ready after {timeout:.0f}s\n{tails}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker's process group (celery's pool children included), then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if not _group_alive(process.pid):
            break
        os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(process.pid):
            process.poll()  # reap the leader; its children are reparented and reaped by init
            time.sleep(0.2)
    process.poll()
