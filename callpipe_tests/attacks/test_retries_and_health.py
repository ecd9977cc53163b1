"""Issue 17 items 9 and 11 (health, stats): a retried call is stored once, whether the server was
killed or the client lost the answer; health names each dependency and is not ``ok`` with S3 down;
the store's statistics are there on the first call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from callpipe_tests.attacks.server import SECOND_INGEST, Server, auth, free_port, running

pytestmark = pytest.mark.slow


def post(server: Server, wav: bytes, key: str | None, headers: dict[str, str] | None = None, **fields: str):
    return httpx.post(
        f"{server.url}/recordings",
        headers={**(headers or auth("ingest")), **({"Idempotency-Key": key} if key else {})},
        files={"audio": ("call.wav", wav, "audio/wav")},
        data={"conversation_id": "conv-retry", **fields},
        timeout=30,
    )


def stored_ids(store: Path) -> list[str]:
    index = store / "index" / "by-id"
    return sorted(p.name for p in index.iterdir()) if index.exists() else []


def test_a_retry_after_the_server_was_killed_returns_the_first_result(tmp_path: Path, wav: bytes) -> None:
    with running(tmp_path) as server:
        first = post(server, wav, "order-7731")
        assert first.status_code == 201, first.text
        server.kill()  # the 201 may never have reached the client
    with running(tmp_path) as server:
        again = post(server, wav, "order-7731")
        assert again.status_code == 200, again.text
        assert again.json()["recording_id"] == first.json()["recording_id"] and again.json()["replayed"]
        assert again.json()["checksum"] == first.json()["checksum"]
        assert len(stored_ids(server.store)) == 1  # nothing stored again
        other_body = post(server, wav, "order-7731", transcript="otra cosa")
        assert other_body.status_code == 409 and "another request" in other_body.json()["detail"]
        # keys are scoped per API key: another ingest client's "order-7731" is its own call
        theirs = post(server, wav, "order-7731", headers={"Authorization": f"Bearer {SECOND_INGEST}"})
        assert theirs.status_code == 201 and theirs.json()["recording_id"] != first.json()["recording_id"]
        assert post(server, wav, None).status_code == 201  # without a key, every post is a new call
        assert len(stored_ids(server.store)) == 3
        bad = post(server, wav, "has space")
        assert bad.status_code == 422


def test_cli_record_with_an_idempotency_key_stores_the_call_once(tmp_path: Path, wav: bytes) -> None:
    audio = tmp_path / "call.wav"
    audio.write_bytes(wav)
    env = {**os.environ, "STORAGE_BACKEND": "local", "STORAGE_LOCAL_PATH": str(tmp_path / "recordings")}
    env["CALLPIPE_STATE_DIR"] = str(tmp_path / "state")

    def record(*extra: str) -> subprocess.CompletedProcess[str]:
        argv = [
            sys.executable,
            "-m",
            "callpipe.cli",
            "record",
            str(audio),
            "--conversation-id",
            "c-9",
            *extra,
        ]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)

    first, again = record("--idempotency-key", "k-1"), record("--idempotency-key", "k-1")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert json.loads(again.stdout)["recording_id"] == json.loads(first.stdout)["recording_id"]
    assert json.loads(again.stdout)["replayed"] is True
    assert len(stored_ids(tmp_path / "recordings")) == 1
    other = record("--idempotency-key", "k-1", "--transcript", "otra llamada")
    assert other.returncode == 2 and "another request" in other.stderr and len(other.stderr.splitlines()) == 1


def test_health_reports_each_dependency_and_is_not_ok_with_s3_down(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens here: S3 is down
    env = {
        "STORAGE_BACKEND": "both",
        "S3_BUCKET": "calls",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{closed}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with running(tmp_path, **env) as server:
        response = httpx.get(f"{server.url}/health", timeout=30)
        body = response.json()
        assert body["status"] == "degraded" and response.status_code == 200  # calls are still kept locally
        assert body["checks"]["store.local"] == {"status": "ok"}
        assert body["checks"]["store.s3"]["status"] == "down"
        assert str(closed) not in response.text  # no endpoint named to an unauthenticated caller
        assert body["checks"]["analytics"]["status"] == "ok"


def test_health_is_ok_with_a_healthy_local_store_and_stats_have_sizes_at_once(
    server: Server, wav: bytes
) -> None:
    health = httpx.get(f"{server.url}/health", timeout=30).json()
    assert health["status"] == "ok" and set(health["checks"]) == {"store.local", "analytics"}
    stats = httpx.get(f"{server.url}/processing/stats", headers=auth("analyst"), timeout=30).json()["storage"]
    assert isinstance(stats["total_bytes"], int) and stats["pending_sync"] == 0
