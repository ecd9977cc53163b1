"""Stores on a temp directory and on a real moto S3 server, plus test audio."""

from __future__ import annotations

import io
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from callpipe.storage import LocalStore, MirroredStore, RecordingStore, S3Store, make_s3_client
from callpipe_tests.audio import espeak_wav

SPEECH_TEXT = "Hola, buenos días, llamo por un cargo en mi factura"


def make_wav(seconds: float = 0.5, rate: int = 8000, seed: int = 0, channels: int = 1) -> bytes:
    """A short PCM-16 WAV of a tone plus seeded noise (distinct bytes per seed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * (200 + 10 * seed) * t) + 0.01 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, np.repeat(tone[:, None], channels, axis=1), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Spanish speech from espeak-ng (22.05 kHz mono WAV)."""
    out = tmp_path_factory.mktemp("speech") / "hola.wav"
    return espeak_wav(SPEECH_TEXT, "es", out).read_bytes()


@pytest.fixture
def s3_client(s3_server: str) -> Any:
    return make_s3_client(region_name="us-east-1", endpoint_url=s3_server)


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "recordings")


@pytest.fixture
def s3_store(bucket: str, s3_client: Any, tmp_path: Path) -> S3Store:
    return S3Store(bucket, "callpipe/dev", s3_client, cache_dir=tmp_path / "cache")


@pytest.fixture
def mirrored_store(local_store: LocalStore, s3_store: S3Store) -> MirroredStore:
    return MirroredStore(local_store, s3_store)


@pytest.fixture(params=["local", "s3", "both"])
def store(request: pytest.FixtureRequest) -> RecordingStore:
    """Each test using this runs once per backend."""
    name = {"local": "local_store", "s3": "s3_store", "both": "mirrored_store"}[request.param]
    return request.getfixturevalue(name)


class RestartableS3:
    """A moto server of its own on a fixed loopback port that can be stopped and started again.

    Moto keeps its data in process memory, so objects survive a stop/start, as they
    survive an outage of a real S3 endpoint.
    """

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
        self._server._server.server_close()  # ThreadedMotoServer.stop leaves the socket bound
        self._server = None


@pytest.fixture
def restartable_s3(s3_server: str) -> Iterator[RestartableS3]:
    """Depends on ``s3_server`` only for its fake credentials."""
    server = RestartableS3()
    server.start()
    yield server
    if server._server is not None:
        server.stop()
