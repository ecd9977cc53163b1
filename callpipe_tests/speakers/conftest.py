"""Fixtures of the speaker tests: the real Whisper model, loaded once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def transcriber():
    from callpipe.stt import Transcriber

    return Transcriber()
