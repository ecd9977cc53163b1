"""The front door: what a request must show before the app reads a byte of its body, and how
long and how large a body (or a connection that never finishes its headers) may be.

:class:`BodyGuard` is an ASGI middleware in front of every route. For a request that may carry
a body (any method but GET, HEAD, OPTIONS) it answers, before reading the body:

* 401 without a valid ``Authorization: Bearer KEY`` (the login form, which takes a key,
  logout and the categories form, which take the session cookie, are the only exceptions) and 403 for ``POST
  /recordings`` without the ingest role;
* 400 for a ``Content-Length`` that is not a number, 413 for one over the route's limit
  (``CALLPIPE_MAX_UPLOAD_MB`` plus 1 MB of form fields for ``POST /recordings``, 1 MB elsewhere).

Then it counts the bytes as they arrive (a chunked body has no ``Content-Length`` to trust), and
answers 413 as soon as the limit is passed, and 408 when the body stalls for
``CALLPIPE_BODY_IDLE_SECONDS`` or is not complete within ``CALLPIPE_BODY_TIMEOUT_SECONDS``. Each
of those answers closes the connection, so the rest of the body is never read.

:class:`HeaderDeadlineProtocol` is uvicorn's h11 protocol with one more timer: a connection that
has not sent a whole request head within ``CALLPIPE_HEADER_TIMEOUT_SECONDS`` (slowloris) is closed.
:func:`uvicorn_limits` gives the rest of uvicorn's bounds (connections, keep-alive, header size,
WebSocket message size and queue).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from callpipe.service.api_config import ServiceSettings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_KEY_PATHS = frozenset({"/ui/login", "/ui/logout", "/ui/categories"})
"""Body-carrying routes that authenticate by their own means (a key in the form, a cookie: the
categories form checks the analyst session and the origin before it reads its body)."""
FORM_OVERHEAD = 1024 * 1024
"""Room for the multipart framing and text fields of ``POST /recordings`` beyond the audio."""
SMALL_BODY = 1024 * 1024
"""Every other route's body limit (a login form, an empty POST)."""


def body_limit(settings: ServiceSettings, method: str, path: str) -> int:
    """The most bytes the body of ``method path`` may have."""
    if method == "POST" and path == "/recordings":
        return settings.max_upload_bytes + FORM_OVERHEAD
    return SMALL_BODY


class BodyGuard:
    """ASGI middleware: authenticate and check the declared size first, then bound the body as it
    arrives in size and time (see the module's docstring)."""

    def __init__(self, app: ASGIApp, settings: ServiceSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refuse_before_body(method, path, headers)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        limit = body_limit(self.settings, method, path)
        counted = _BoundedReceive(
            receive, send, limit, self.settings.body_idle_seconds, self.settings.body_timeout_seconds
        )

        async def send_unless_refused(message: Message) -> None:
            if not counted.refused:  # once refused, the app's own answer is not sent
                await send(message)

        try:
            await self.app(scope, counted, send_unless_refused)
        except Exception:
            if not counted.refused:
                raise  # after a refusal, the app's error on the cut body is expected

    def _refuse_before_body(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[int, str, dict[str, str]] | None:
        if path not in NO_KEY_PATHS:
            from callpipe.service.auth import bearer

            key = bearer(headers.get("authorization"))
            principal = self.settings.authenticate(key) if key is not None else None
            if principal is None:
                return (
                    401,
                    "missing or unknown API key (send Authorization: Bearer KEY)",
                    {"WWW-Authenticate": "Bearer"},
                )
            if method == "POST" and path == "/recordings" and "ingest" not in principal.roles:
                return 403, "this key lacks the ingest role", {}
        declared = headers.get("content-length")
        limit = body_limit(self.settings, method, path)
        if declared is not None:
            if not declared.strip().isdigit():
                return 400, "Content-Length is not a number", {}
            if int(declared) > limit:
                return 413, f"body larger than {limit // (1024 * 1024)} MB", {}
        return None


class _BoundedReceive:
    """``receive`` that counts body bytes and enforces the idle and total deadlines: past either,
    it answers 413 or 408 itself (connection closed) and tells the app the client is gone."""

    def __init__(self, receive: Receive, send: Send, limit: int, idle: float, total: float) -> None:
        self.receive = receive
        self.send = send
        self.refused = False
        self.limit = limit
        self.idle = idle
        self.deadline = time.monotonic() + total
        self.size = 0
        self.done = False

    async def __call__(self) -> Message:
        if self.done:  # after the body: only the disconnect is left to wait for, unbounded
            return await self.receive()
        if self.refused:
            return {"type": "http.disconnect"}
        left = self.deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(self.receive(), timeout=max(0.0, min(self.idle, left)))
        except TimeoutError:
            return await self._refuse(408, "the request body arrived too slowly")
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.limit:
                return await self._refuse(413, f"body larger than {self.limit // (1024 * 1024)} MB")
            if not message.get("more_body", False):
                self.done = True
        return message

    async def _refuse(self, status: int, detail: str) -> Message:
        self.refused = True
        await _answer(self.send, status, detail, {})
        return {"type": "http.disconnect"}


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection still sending its request head after
    ``header_timeout`` seconds (set by :func:`uvicorn_limits`), idle keep-alive ones included."""

    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._head_generation = getattr(self, "_head_generation", 0) + 1
        self.loop.call_later(self.header_timeout, self._header_deadline, self._head_generation)

    def _header_deadline(self, generation: int) -> None:
        if generation != self._head_generation or self.transport.is_closing():
            return  # a later request re-armed it
        if self.conn.their_state is h11.IDLE and self.cycle_is_idle():
            self.transport.close()

    def cycle_is_idle(self) -> bool:
        """No request is being answered on this connection now."""
        return self.cycle is None or self.cycle.response_complete


def uvicorn_limits(settings: ServiceSettings) -> dict[str, Any]:
    """uvicorn options that bound what clients can hold: connections, keep-alive, header size,
    WebSocket message size and queue, and the request-head deadline."""
    protocol = type(
        "CallpipeH11Protocol", (HeaderDeadlineProtocol,), {"header_timeout": settings.header_timeout_seconds}
    )
    return {
        "http": protocol,
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 16 * 1024,
        "ws_max_size": 1024 * 1024,
        "ws_max_queue": 4,
        "timeout_graceful_shutdown": 10,
    }
