"""Bounds of ``WS /recordings/stream``: the audio frames go to a spooled temporary file as they
arrive (at most :data:`IN_MEMORY` bytes per stream in memory; the rest on disk, removed when the
stream ends), the total is capped at the upload limit, and a stream that sends nothing for the
idle time, or has not finished within the body deadline, is closed."""

from __future__ import annotations

import asyncio
import tempfile
import time
from types import TracebackType
from typing import Any

from fastapi import WebSocket

IN_MEMORY = 256 * 1024


class StreamTimeout(Exception):
    """The stream stalled or ran past its deadline."""


class AudioSpool:
    """The audio of one stream, bounded in size, memory and time."""

    def __init__(self, limit: int, idle: float, total: float) -> None:
        self.limit = limit
        self.idle = idle
        self.deadline = time.monotonic() + total
        self.size = 0
        self._file = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY, prefix="callpipe-stream-")  # noqa: SIM115 (closed by __exit__)

    def __enter__(self) -> AudioSpool:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._file.close()

    async def next_message(self, websocket: WebSocket) -> Any:
        """The next message, or :class:`StreamTimeout` past the idle time or the deadline."""
        left = self.deadline - time.monotonic()
        try:
            return await asyncio.wait_for(websocket.receive(), timeout=max(0.0, min(self.idle, left)))
        except TimeoutError:
            raise StreamTimeout(
                "the stream sent nothing for too long"
                if left > self.idle
                else "the stream did not finish in time"
            ) from None

    def write(self, data: bytes) -> bool:
        """Keep ``data``; False (nothing kept) when it would pass the limit."""
        if self.size + len(data) > self.limit:
            return False
        self._file.write(data)
        self.size += len(data)
        return True

    async def read_all(self) -> bytes:
        """Every byte kept, read in a thread (it may be on disk)."""

        def read() -> bytes:
            self._file.seek(0)
            return self._file.read()

        return await asyncio.to_thread(read)
