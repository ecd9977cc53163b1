"""``GET /health``: each dependency the API needs, checked for real and cached a few seconds.

Answers ``{"status": "ok" | "degraded" | "down", "checks": {name: {"status": "ok" | "down",
"detail"?}}}``: the store's sides (``store.local``, ``store.s3``), the analytics tables and the
catalog (when the app has one). ``down`` (HTTP 503) when no side of the store can take a call;
``degraded`` (200) when something else is down (with ``STORAGE_BACKEND=both`` and S3 down, calls
are still kept locally, pending sync). Checks run in threads, at most one at a time, each bounded
by :data:`CHECK_SECONDS`; the answer is reused for :data:`CACHE_SECONDS`, so an unauthenticated
caller cannot turn ``/health`` into load on S3. Details are one line with no path or endpoint.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

CACHE_SECONDS = 5.0
CHECK_SECONDS = 3.0


def _local(store: Any) -> Callable[[], None]:
    def check() -> None:
        root = store.root  # created at the first save: its nearest existing folder must be writable
        while not os.path.exists(root) and root.parent != root:
            root = root.parent
        if not os.path.isdir(root) or not os.access(root, os.W_OK | os.X_OK):
            raise OSError("store directory not writable")

    return check


def _s3(store: Any) -> Callable[[], None]:
    def check() -> None:
        store.client.head_bucket(Bucket=store.bucket)

    return check


def _analytics(state: Any) -> Callable[[], None]:
    def check() -> None:
        with state.analytics.use():
            pass

    return check


def store_checks(store: Any) -> dict[str, Callable[[], None]]:
    """``store.local`` / ``store.s3`` checks of a local, S3 or mirrored store."""
    from callpipe.storage.local import LocalStore
    from callpipe.storage.s3 import S3Store

    store = getattr(store, "wrapped", store)  # a catalog wrapper: the store it wraps
    sides = {"local": getattr(store, "local", None), "s3": getattr(store, "s3", None)}
    if isinstance(store, LocalStore):
        sides["local"] = store
    if isinstance(store, S3Store):
        sides["s3"] = store
    checks: dict[str, Callable[[], None]] = {}
    if isinstance(sides["local"], LocalStore):
        checks["store.local"] = _local(sides["local"])
    if isinstance(sides["s3"], S3Store):
        checks["store.s3"] = _s3(sides["s3"])
    return checks


class HealthCheck:
    """The cached health answer of one app."""

    def __init__(self) -> None:
        self._answer: tuple[int, dict[str, Any]] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, state: Any) -> tuple[int, dict[str, Any]]:
        """``(http_status, body)``, recomputed when older than :data:`CACHE_SECONDS`."""
        async with self._lock:
            if self._answer is None or time.monotonic() - self._at > CACHE_SECONDS:
                self._answer = await self._compute(state)
                self._at = time.monotonic()
            return self._answer

    async def _compute(self, state: Any) -> tuple[int, dict[str, Any]]:
        checks = store_checks(state.store)
        checks["analytics"] = _analytics(state)
        catalog = getattr(state, "catalog", None)
        if catalog is not None and callable(getattr(catalog, "ping", None)):
            checks["catalog"] = catalog.ping
        names = list(checks)
        outcomes = await asyncio.gather(*(_run(checks[n]) for n in names))
        results = dict(zip(names, outcomes, strict=True))
        store_sides = [r for n, r in results.items() if n.startswith("store.")]
        if not any(r["status"] == "ok" for r in store_sides):
            overall, code = "down", 503
        elif all(r["status"] == "ok" for r in results.values()):
            overall, code = "ok", 200
        else:
            overall, code = "degraded", 200
        return code, {"status": overall, "checks": results}


async def _run(check: Callable[[], None]) -> dict[str, str]:
    try:
        await asyncio.wait_for(asyncio.to_thread(check), timeout=CHECK_SECONDS)
    except TimeoutError:
        return {"status": "down", "detail": f"no answer within {CHECK_SECONDS:g} s"}
    except Exception as exc:  # any failure of a dependency is its being down; say which kind
        return {"status": "down", "detail": _kind(exc)}
    return {"status": "ok"}


def _kind(exc: BaseException) -> str:
    """A one-line description without paths or endpoints: the error's type (and S3 code)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return f"{type(exc).__name__}{f' ({code})' if code else ''}"
