"""Server-side web sessions and the failed-login limit.

:class:`SessionStore` keeps one row per live session in SQLite (``sessions.sqlite`` in the
service's state folder, ``CALLPIPE_STATE_DIR``), so a logout ends the session for every worker
process and across restarts: the cookie names a random session id, and a cookie whose id is not
in the table reads nothing, however well signed. Rows are removed at logout and when they expire;
a key keeps at most :data:`MAX_SESSIONS_PER_KEY` (its oldest are ended first), so the table is
bounded by the number of keys.

:class:`LoginLimiter` counts failed logins per client address in memory, bounded to
:data:`MAX_TRACKED` addresses (least recently seen dropped first): after :data:`MAX_FAILURES`
failures within :data:`WINDOW_SECONDS` the address gets 429 until the window passes.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path

MAX_SESSIONS_PER_KEY = 1000
MAX_FAILURES = 10
WINDOW_SECONDS = 300.0
MAX_TRACKED = 10_000


class SessionStore:
    """Live sessions by id (SQLite, shared by processes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        if not self._ready:
            with self._lock:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, key_id TEXT NOT NULL,"
                    " expires REAL NOT NULL)"
                )
                conn.execute("CREATE INDEX IF NOT EXISTS sessions_key ON sessions (key_id, expires)")
                self.path.chmod(0o600)
                self._ready = True
        return conn

    def open(self, key_id: str, expires: float, now: float | None = None) -> str:
        """A new session id for ``key_id`` valid until ``expires`` (epoch seconds)."""
        sid = secrets.token_urlsafe(24)
        conn = self._connect()
        try:
            with conn:
                conn.execute(
                    "DELETE FROM sessions WHERE expires < ?", (now if now is not None else time.time(),)
                )
                conn.execute("INSERT INTO sessions VALUES (?, ?, ?)", (sid, key_id, expires))
                conn.execute(
                    "DELETE FROM sessions WHERE key_id = ? AND sid NOT IN (SELECT sid FROM sessions"
                    " WHERE key_id = ? ORDER BY expires DESC LIMIT ?)",
                    (key_id, key_id, MAX_SESSIONS_PER_KEY),
                )
        finally:
            conn.close()
        return sid

    def is_live(self, sid: str, key_id: str, now: float | None = None) -> bool:
        """Whether session ``sid`` of ``key_id`` exists and has not expired."""
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT 1 FROM sessions WHERE sid = ? AND key_id = ? AND expires >= ?",
                (sid, key_id, now if now is not None else time.time()),
            ).fetchone()
        finally:
            conn.close()
        return row is not None

    def close(self, sid: str) -> None:
        """End session ``sid`` (logout); unknown ids are ignored."""
        conn = self._connect()
        try:
            with conn:
                conn.execute("DELETE FROM sessions WHERE sid = ?", (sid,))
        finally:
            conn.close()


_STORES: dict[Path, SessionStore] = {}
_STORES_LOCK = threading.Lock()


def session_store(state_dir: Path) -> SessionStore:
    """The (shared, per process) session store of the state folder ``state_dir``."""
    path = (Path(state_dir) / "sessions.sqlite").absolute()
    with _STORES_LOCK:
        return _STORES.setdefault(path, SessionStore(path))


class LoginLimiter:
    """Failed logins per client address, bounded in memory (one process)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked(self, client: str) -> float:
        """Seconds ``client`` must wait before trying again (0: may try now)."""
        now = time.monotonic()
        with self._lock:
            times = [t for t in self._failures.get(client, []) if now - t < self.window]
            if len(times) < self.max_failures:
                return 0.0
            return self.window - (now - times[0])

    def failed(self, client: str) -> None:
        """Count one failed login of ``client``."""
        now = time.monotonic()
        with self._lock:
            times = [t for t in self._failures.pop(client, []) if now - t < self.window]
            self._failures[client] = [*times, now][-self.max_failures :]
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)

    def tracked(self) -> int:
        """How many addresses are counted now (for tests and the benchmark)."""
        return len(self._failures)
