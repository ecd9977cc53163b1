"""Issue 17 item 1: nobody fills the disk or holds connections without a key, and nobody with
one sends more, or more slowly, than the limits allow."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from callpipe_tests.attacks.conftest import multipart_head
from callpipe_tests.attacks.server import KEYS, RawConnection, Server

pytestmark = pytest.mark.slow
BOUNDARY = "attackboundary"


def upload_head(length: int | None, key: str | None, *, chunked: bool = False) -> bytes:
    lines = [
        "POST /recordings HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
    ]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 401), ("nobody-key-0123456789abcdef", 401), (KEYS["analyst"], 403)],
    ids=["no-key", "unknown-key", "analyst-key"],
)
def test_a_300_mb_upload_without_an_ingest_key_is_refused_before_its_body(
    server: Server, key: str | None, status: int
) -> None:
    spooled = server.spooled()
    conn = RawConnection(server.port)
    try:
        assert conn.send(upload_head(300 * 1024 * 1024, key) + multipart_head(BOUNDARY) + b"\0" * 65536)
        # 64 KB of 300 MB sent: the answer comes now, not after the rest
        assert conn.status(wait=5) == status
        assert conn.closed.wait(5), "the server keeps the connection open for the rest of the body"
    finally:
        conn.close()
    assert server.spooled() == spooled  # nothing of the body reached the disk


def test_a_declared_length_over_the_limit_is_413_before_the_body(server: Server) -> None:
    for declared in (10**12, 3 * 1024 * 1024):
        conn = RawConnection(server.port)
        try:
            assert conn.send(upload_head(declared, KEYS["ingest"]) + multipart_head(BOUNDARY))
            assert conn.status(wait=5) == 413
        finally:
            conn.close()


def test_a_chunked_body_is_cut_off_as_it_passes_the_limit(server: Server) -> None:
    """No Content-Length to check: the server counts as the chunks arrive (limit 1 MB of audio +
    1 MB of form) and answers 413 without waiting for the end that never comes."""
    spooled = server.spooled()
    conn = RawConnection(server.port)
    sent = 0
    try:
        conn.send(upload_head(None, KEYS["ingest"], chunked=True) + chunk(multipart_head(BOUNDARY)))
        while sent < 6 * 1024 * 1024 and conn.send(chunk(b"\0" * 65536)):
            sent += 65536
        assert conn.status(wait=5) == 413
        assert sent < 6 * 1024 * 1024 or conn.closed.wait(5)
    finally:
        conn.close()
    # What was spooled goes with the request; the server removes it just after it answers, so the
    # test waits for that (a few seconds at most) instead of racing it.
    deadline = time.monotonic() + 10
    while server.spooled() > spooled and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.spooled() <= spooled


def test_300_trickling_uploads_are_all_closed(server: Server) -> None:
    """Each sends its head and then one byte a second: the body deadline (idle 1 s, total 3 s here)
    ends each with 408, or the connection limit refuses it; none stays open."""
    conns = []
    for _ in range(300):
        conn = RawConnection(server.port)
        conn.send(upload_head(500_000, KEYS["ingest"]) + multipart_head(BOUNDARY))
        conns.append(conn)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(c.closed.is_set() for c in conns):
            for c in conns:
                if not c.closed.is_set():
                    c.send(b"x")
            time.sleep(0.5)
        still_open = sum(not c.closed.is_set() for c in conns)
        assert still_open == 0, f"{still_open} of 300 trickling connections still open after 30 s"
        assert {c.status(wait=0) for c in conns} <= {408, 503, None}
    finally:
        for c in conns:
            c.close()


def test_a_request_head_sent_a_byte_at_a_time_is_closed(server: Server) -> None:
    """Slowloris: a head that never ends is closed after the head deadline (2 s here)."""
    conn = RawConnection(server.port)
    try:
        conn.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not conn.closed.is_set():
            conn.send(b"X-Pad: y\r\n")
            time.sleep(0.5)
        assert conn.closed.is_set(), "a never-ending request head kept its connection for 20 s"
    finally:
        conn.close()


def test_websocket_audio_is_spooled_to_disk_capped_and_a_stalled_stream_closed(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/recordings/stream"
    headers = {"Authorization": f"Bearer {KEYS['ingest']}"}

    async def attack() -> tuple[int, list[int], int | None]:
        async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
            for _ in range(3):  # 768 KB of 1 MB allowed: past 256 KB the frames wait on disk
                await ws.send(b"\0" * 256 * 1024)
            await asyncio.sleep(0.5)
            on_disk = server.spool_files()
            try:
                for _ in range(2):  # past the limit
                    await ws.send(b"\0" * 256 * 1024)
                await asyncio.wait_for(ws.recv(), timeout=5)  # the error message
                await asyncio.wait_for(ws.recv(), timeout=5)
            except websockets.ConnectionClosed:
                pass
            over = ws.close_code
        async with websockets.connect(url, additional_headers=headers) as ws:  # sends nothing
            try:
                reply = await asyncio.wait_for(ws.recv(), timeout=10)
                assert "error" in json.loads(reply)
                await asyncio.wait_for(ws.wait_closed(), timeout=5)
            except websockets.ConnectionClosed:
                pass
            stalled = ws.close_code
        return over or 0, on_disk, stalled

    over, on_disk, stalled = asyncio.run(attack())
    assert on_disk and max(on_disk) >= 512 * 1024, "the stream's audio is held in memory"
    assert over == 1009
    assert stalled == 1008
    assert server.spool_files() == []  # removed with the stream
