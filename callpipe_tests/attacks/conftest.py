"""One ``callpipe serve`` per module (tests that restart or reconfigure a server start their own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callpipe_tests.attacks.server import Server, running
from callpipe_tests.storage.conftest import make_wav


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(tmp_path_factory.mktemp("serve")) as s:
        yield s


@pytest.fixture
def wav() -> bytes:
    """Half a second of 8 kHz PCM-16 audio."""
    return make_wav(seconds=0.5, rate=8000, seed=5)


def multipart_head(boundary: str, filename: str = "call.wav") -> bytes:
    """The multipart preamble up to the audio's first byte (a conversation id first)."""
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="conversation_id"\r\n\r\nconv-a\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="{filename}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
