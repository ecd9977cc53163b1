"""Idempotency keys for saving calls: a retry after a lost answer returns the first result.

A client sends a key of its own with a call (``Idempotency-Key`` on ``POST /recordings``,
``--idempotency-key`` for ``callpipe record``). The first request with a key claims it and
saves the call; a later one with the same key (in the same scope: the API key's id, or ``cli``)
and the same request (the SHA-256 of its audio and fields) gets the first result back and nothing
is stored again; the same key with a different request is a conflict (HTTP 409, exit 2), as is a
key whose first request is still running.

The table is SQLite (``idempotency.sqlite`` in the state folder, ``CALLPIPE_STATE_DIR``, default
``state/`` beside the store), shared by processes and durable across restarts. It keeps only ids,
sizes and checksums, never audio or text. Entries older than :data:`KEEP_SECONDS` are dropped, and
a scope keeps at most :data:`MAX_PER_SCOPE` (oldest dropped first). A claim whose request died
(the process killed before it finished) is taken over after :data:`STALE_SECONDS`; a process
killed between the save and the result's record can still store the call twice (a window of
one SQLite write).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEEP_SECONDS = 24 * 3600.0
MAX_PER_SCOPE = 100_000
STALE_SECONDS = 600.0
STATE_DIR_ENV = "CALLPIPE_STATE_DIR"
KEPT_FIELDS = ("recording_id", "s3_path", "size_bytes", "checksum", "pending_sync")
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class IdempotencyConflict(Exception):
    """The key was used for another request, or its first request is still running."""


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``CALLPIPE_STATE_DIR``, else ``state/`` beside the local store's folder."""
    env = os.environ if environ is None else environ
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    return Path(env.get("STORAGE_LOCAL_PATH") or "./data/recordings").parent / "state"


def check_key(key: str) -> str:
    """``key`` if it is 1 to 200 printable ASCII characters without spaces; else ValueError."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError("idempotency key must be 1 to 200 printable ASCII characters without spaces")
    return key


def fingerprint(audio: bytes, fields: Mapping[str, Any]) -> str:
    """The SHA-256 of a request: its audio and its fields."""
    digest = hashlib.sha256(audio)
    digest.update(json.dumps(dict(fields), sort_keys=True, default=str).encode())
    return digest.hexdigest()


class IdempotencyStore:
    """Key -> first result, per scope (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS idempotency (scope TEXT NOT NULL, key TEXT NOT NULL,"
            " request TEXT NOT NULL, result TEXT, created REAL NOT NULL, PRIMARY KEY (scope, key))"
        )
        self.path.chmod(0o600)
        return conn

    def claim(self, scope: str, key: str, request: str) -> dict[str, Any] | None:
        """The first result of ``key`` (None: the caller claimed it and must :meth:`finish` or
        :meth:`release`); :class:`IdempotencyConflict` if it belongs to another request or runs."""
        now = time.time()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM idempotency WHERE created < ?", (now - KEEP_SECONDS,))
                row = conn.execute(
                    "SELECT request, result, created FROM idempotency WHERE scope = ? AND key = ?",
                    (scope, key),
                ).fetchone()
                if row is not None:
                    first, result, created = row
                    if first != request:
                        raise IdempotencyConflict("this idempotency key was used for another request")
                    if result is not None:
                        conn.execute("COMMIT")
                        return json.loads(result)
                    if now - created < STALE_SECONDS:
                        raise IdempotencyConflict("a request with this idempotency key is still running")
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, NULL, ?)", (scope, key, request, now)
                )
                conn.execute(
                    "DELETE FROM idempotency WHERE scope = ? AND rowid NOT IN (SELECT rowid FROM idempotency"
                    " WHERE scope = ? ORDER BY created DESC LIMIT ?)",
                    (scope, scope, MAX_PER_SCOPE),
                )
                conn.execute("COMMIT")
                return None
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def finish(self, scope: str, key: str, result: Mapping[str, Any]) -> None:
        """Record the result of a claimed key (only ids, size, checksum and sync state kept)."""
        kept = {name: result.get(name) for name in KEPT_FIELDS}
        conn = self._connect()
        try:
            with conn:
                conn.execute(
                    "UPDATE idempotency SET result = ? WHERE scope = ? AND key = ?",
                    (json.dumps(kept), scope, key),
                )
        finally:
            conn.close()

    def release(self, scope: str, key: str) -> None:
        """Give a claimed key back (the request failed: nothing was stored)."""
        conn = self._connect()
        try:
            with conn:
                conn.execute(
                    "DELETE FROM idempotency WHERE scope = ? AND key = ? AND result IS NULL", (scope, key)
                )
        finally:
            conn.close()


def claim_request(
    keys: IdempotencyStore, scope: str, key: str, audio: bytes, fields: Mapping[str, Any]
) -> dict[str, Any] | None:
    """:meth:`IdempotencyStore.claim` of ``key`` for the request ``audio`` + ``fields``
    (ValueError for a malformed key)."""
    return keys.claim(scope, check_key(key), fingerprint(audio, fields))


def open_store(directory: Path | None = None) -> IdempotencyStore:
    """The idempotency table in ``directory`` (default :func:`state_dir`)."""
    return IdempotencyStore((directory if directory is not None else state_dir()) / "idempotency.sqlite")
