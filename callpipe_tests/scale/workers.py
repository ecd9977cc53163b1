"""Start and stop real dagster-celery workers (by default one ``gpu``, one ``dagster``) for tests and
benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CELERY_YAML = REPO_ROOT / "scripts" / "deploy" / "celery.yaml"
BIN = Path(sys.executable).parent  # the venv's bin: dagster-celery runs `celery` from PATH
WORKERS = (("gpu", "gpuw"), ("dagster", "cpuw"))
"""(queue, worker name) pairs."""


def worker_command(queue: str, name: str) -> list[str]:
    """The README's worker command; one pool process per worker (``-c 1``) on this 2-core machine."""
    return [
        str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
        "-y", str(CELERY_YAML), "-q", queue, "-n", name, "--", "-c", "1",
    ]  # fmt: skip


@contextmanager
def celery_workers(
    broker: str, log_dir: Path, timeout: float = 90.0, workers: Sequence[tuple[str, str]] = WORKERS
) -> Iterator[dict[str, Path]]:
    """Run ``workers`` (queue, name) with this process's environment (DAGSTER_HOME, STORAGE_*,
    CELERY_*) until the block ends; yields their log files. Each worker has its own process group,
    killed at exit."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    started: list[subprocess.Popen[bytes]] = []
    logs = {name: log_dir / f"{name}.log" for _, name in workers}
    try:
        for queue, name in workers:
            with logs[name].open("wb") as out:
                started.append(
                    subprocess.Popen(
                        worker_command(queue, name),
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        _wait_ready(broker, {name for _, name in workers}, logs, timeout)
        yield logs
    finally:
        _kill_groups(started)


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


def _kill_groups(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker's process group (celery's pool children included) at once, then
    SIGKILL the groups still alive after the grace period."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in processes if _group_alive(p.pid)]
        if not alive:
            break
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_group_alive(p.pid) for p in alive):
            for process in alive:
                process.poll()  # reap the leader; its children are reparented and reaped by init
            time.sleep(0.2)
    for process in processes:
        process.poll()
