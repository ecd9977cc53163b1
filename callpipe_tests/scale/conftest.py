"""Real PostgreSQL and Redis on loopback for the scale-out tests.

A test needing a service that is down is skipped with the reason, except under ``CI=true``,
where it fails: CI starts both services (``.ci/run``), so a skip there would hide a defect.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callpipe.demo import load_demo_calls
from callpipe.recorder import Recorder
from callpipe.storage import LocalStore
from callpipe_tests.scale.workers import REPO_ROOT

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 5


def require_service(name: str, host: str, port: int) -> None:
    """Skip (fail under ``CI=true``) when nothing listens on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the test."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg2

    name = f"callpipe_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


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


def record_demo_calls(
    store: LocalStore,
    day: str,
    call_ids: list[str],
    *,
    confident: bool = False,
    suffix: str = "",
    first_minute: int = 0,
) -> list[str]:
    """Record demo calls through the online recorder on ``day`` (from 09:00 UTC); their ids
    (``{day}-{call_id}{suffix}``). ``confident`` gives every live word confidence 0.99, so the
    live transcript's estimated WER is low and the STT stage keeps it instead of running Whisper."""
    calls = {c.call_id: c for c in load_demo_calls()}
    recorder = Recorder(store)
    start = datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)
    ids = []
    for n, call_id in enumerate(call_ids, start=first_minute):
        call = calls[call_id]
        recording_id = f"{day}-{call_id}{suffix}"
        words = call.live_word_confidences
        recorder.record_sync(
            call.audio,
            call.conversation_id,
            transcription=call.live_text,
            word_confidences=[{**w, "confidence": 0.99} for w in words] if confident else words,
            timestamp=start + timedelta(minutes=n),
            audio_format="flac",
            recording_id=recording_id,
            extra={"reference_text": call.reference_text},
        )
        ids.append(recording_id)
    return ids
