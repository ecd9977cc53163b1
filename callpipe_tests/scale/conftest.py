"""Redis and a Dagster environment for the scale-out tests (``pg_url`` is in the root conftest;
both services are described in :mod:`callpipe_tests.services`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from callpipe_tests.scale.workers import REPO_ROOT
from callpipe_tests.services import REDIS_DB, REDIS_HOST, REDIS_PORT, require_service


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of the dedicated Redis database, flushed (that database only) before and after."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    client.flushdb()
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def dagster_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh DAGSTER_HOME and local store under ``tmp_path``, run from the repo root (where the
    ./dagster.yaml template is), with no deployment variables inherited from the shell."""
    monkeypatch.chdir(REPO_ROOT)
    inherited = ("DAGSTER_PG_", "CELERY_", "S3_", "CALLPIPE_EXECUTOR", "STORAGE_")
    for name in list(os.environ):
        if name.startswith(inherited):
            monkeypatch.delenv(name)
    env = {
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(tmp_path / "recordings"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
