"""A real app over a real local store (and the real analytics tables) through FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from callpipe.service import ServiceSettings, create_app, parse_keys
from callpipe.storage import LocalStore, RecordingStore
from callpipe_tests.storage.conftest import make_wav

KEYS = {
    "ingest": "ingest-key-0123456789abcdef",
    "analyst": "analyst-key-0123456789abcdef",
    "admin": "admin-key-0123456789abcdef",
}
UNKNOWN_KEY = "nobody-key-0123456789abcdef"


def auth(role: str) -> dict[str, str]:
    """The Authorization header of the test key of ``role``."""
    return {"Authorization": f"Bearer {KEYS[role]}"}


def make_settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        keys=parse_keys(",".join(f"{role}:{key}" for role, key in KEYS.items())),
        session_secret=b"s" * 32,
        audit_log=tmp_path / "audit" / "api.jsonl",
    )


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return make_settings(tmp_path)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "recordings")


@pytest.fixture
def analytics_url(tmp_path: Path) -> str:
    """A fresh directory of embedded analytics tables for one test."""
    return str(tmp_path / "analytics")


def client_for(settings: ServiceSettings, store: RecordingStore, analytics_url: str) -> TestClient:
    return TestClient(create_app(settings, store, analytics_url=analytics_url))


@pytest.fixture
def client(settings: ServiceSettings, local_store: LocalStore, analytics_url: str) -> Iterator[TestClient]:
    with client_for(settings, local_store, analytics_url) as c:
        yield c


@pytest.fixture
def wav() -> bytes:
    """Two seconds of 8 kHz PCM-16 audio."""
    return make_wav(seconds=2.0, rate=8000, seed=3)


def post_call(client: TestClient, audio: bytes, role: str = "ingest", **fields: Any) -> Any:
    """``POST /recordings`` with ``audio`` as ``call.wav`` and ``fields`` as form fields."""
    data = {"conversation_id": "conv-1", **fields}
    return client.post(
        "/recordings", headers=auth(role), files={"audio": ("call.wav", audio, "audio/wav")}, data=data
    )
