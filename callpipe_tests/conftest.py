"""Fixtures shared by all test packages (keep this file small)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from callpipe_tests.services import fresh_postgres_database

# Outside the demo a missing CALLPIPE_PII_KEY is an error (callpipe/pii.py); the tests use a fixed,
# non-secret key unless the caller set one (.ci/run does). Tests of the key itself unset it.
os.environ.setdefault("CALLPIPE_PII_KEY", "callpipe-tests-only-key-not-secret")
# The tests' call dates go back to 2024; the default first partition is only three months back.
os.environ.setdefault("CALLPIPE_START_DATE", "2024-01-01")


@pytest.fixture(scope="session", autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user's state folder (an S3-only store's embedded catalog) in a temporary directory."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
        yield


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Endpoint URL of a real moto S3 server on 127.0.0.1 (free port) for the whole session.

    Sets fake AWS credentials and region in the environment for the session. Use a
    unique bucket per test: the server keeps its state until the session ends.
    """
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the test (see :mod:`callpipe_tests.services`)."""
    with fresh_postgres_database() as url:
        yield url
