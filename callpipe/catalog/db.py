"""The catalog database: embedded SQLite (WAL) by default, PostgreSQL when a DSN is configured.

Every write is one transaction; ``recording_id`` is the primary key, so two saves of one id cannot
both claim it. Connections are per thread (and per process: a forked child opens its own).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from callpipe.catalog.catalog_table import COLUMNS, DDL, INDEXES, SAVED, SAVING, Row, row_from_values
from callpipe.storage.errors import StorageUnavailableError, StorageWriteError

_COLS = ", ".join(COLUMNS)
_MARKS = ", ".join("?" for _ in COLUMNS)
_KEEP = ("audio_path", "metadata_path")  # a document that does not name them keeps the stored ones
_UPSERT_SET = ", ".join(
    f"{c} = COALESCE(excluded.{c}, recordings.{c})" if c in _KEEP else f"{c} = excluded.{c}"
    for c in COLUMNS
    if c != "recording_id"
)


_VISIBLE = f"save_state = '{SAVED}' AND erasing = 0"  # nothing half-saved or being erased is listed


_META_DDL = "CREATE TABLE IF NOT EXISTS catalog_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"


class CatalogUnavailableError(StorageUnavailableError):
    """The catalog database cannot be reached now (locked too long, server down)."""


class CatalogWriteError(StorageWriteError):
    """The catalog's disk refused a write (full, file too large, I/O error, read-only): nothing
    was changed."""


_REFUSED = re.compile(r"(?i)disk|full|i/o|readonly|read-only|too (large|big)")


class CatalogConflictError(Exception):
    """The recording id is already in the catalog (the primary key refused the row)."""


class Catalog:
    """Rows of :class:`~callpipe.catalog.catalog_table.Row` in a SQLite file or a PostgreSQL database."""

    def __init__(self, *, path: str | os.PathLike[str] | None = None, dsn: str | None = None) -> None:
        if (path is None) == (dsn is None):
            raise ValueError("give exactly one of path (SQLite) or dsn (PostgreSQL)")
        self.kind = "postgres" if dsn else "sqlite"
        self._path = Path(path) if path is not None else None
        self._dsn = dsn
        self._local = threading.local()
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._tx() as cur:
            cur.execute(DDL)
            cur.execute(_META_DDL)
            for statement in INDEXES:
                cur.execute(statement)

    def __repr__(self) -> str:
        return f"Catalog({self._path})" if self._path else "Catalog(postgres)"

    @property
    def where(self) -> str:
        """The SQLite file, or ``postgres`` (the DSN may hold a password: never shown)."""
        return str(self._path) if self._path else "postgres"

    # ---- connections ----------------------------------------------------------------------------
    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        if self._path is not None:
            conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")  # a forgotten row's bytes are zeroed in the file
        else:
            import psycopg2

            conn = psycopg2.connect(self._dsn)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.kind == "postgres" else statement

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[Any]:
        """One transaction; a database that cannot be reached or written (disk full, server down)
        raises :class:`CatalogWriteError` or :class:`CatalogUnavailableError`, storage errors that
        the commands report in one line."""
        try:
            conn = self._connection()
            cur = conn.cursor()
            if self.kind == "sqlite" and write:  # take the write lock now: no upgrade deadlock later
                cur.execute("BEGIN IMMEDIATE")
            try:
                yield _Cursor(cur, self._sql)
            except BaseException:
                with suppress(Exception):
                    conn.rollback()
                raise
            else:
                conn.commit()
            finally:
                with suppress(Exception):
                    cur.close()
        except Exception as exc:
            if _is_unavailable(exc):
                line = f"catalog {self.where}: {_first_line(exc)}"
                refused = isinstance(exc, sqlite3.OperationalError) and _REFUSED.search(str(exc))
                raise (CatalogWriteError if refused else CatalogUnavailableError)(line) from None
            raise

    def _query(self, statement: str, params: Iterable[object] = ()) -> list[tuple[Any, ...]]:
        with self._tx(write=False) as cur:
            cur.execute(statement, tuple(params))
            return cur.fetchall()

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ---- writes ---------------------------------------------------------------------------------
    def claim(self, row: Row) -> None:
        """Insert ``row`` (state ``saving``); :class:`CatalogConflictError` when the id exists."""
        try:
            with self._tx() as cur:
                cur.execute(f"INSERT INTO recordings ({_COLS}) VALUES ({_MARKS})", row.values())
        except Exception as exc:
            if _is_unique_violation(exc):
                raise CatalogConflictError(row.recording_id) from None
            raise

    def put(self, row: Row) -> None:
        """Insert or replace ``row``, unless the stored row has a higher revision (a late writer)."""
        self.put_many([row])

    def put_many(self, rows: Iterable[Row]) -> int:
        """:meth:`put` for many rows in one transaction; returns how many were given."""
        count = 0
        with self._tx() as cur:
            for row in rows:
                cur.execute(
                    f"INSERT INTO recordings ({_COLS}) VALUES ({_MARKS}) ON CONFLICT (recording_id) "
                    f"DO UPDATE SET {_UPSERT_SET} WHERE recordings.revision <= excluded.revision",
                    row.values(),
                )
                count += 1
        return count

    def mark(self, recording_id: str, **columns: object) -> None:
        """Set a few columns of one row (e.g. ``erasing=True``)."""
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown catalog columns: {sorted(unknown)}")
        sets = ", ".join(f"{c} = ?" for c in columns)
        values = [int(v) if isinstance(v, bool) else v for v in columns.values()]
        with self._tx() as cur:
            cur.execute(f"UPDATE recordings SET {sets} WHERE recording_id = ?", (*values, recording_id))

    def forget(self, recording_id: str) -> None:
        """Remove the row of ``recording_id`` (absent is fine). SQLite: zeroed in the file
        (``secure_delete``) and the write-ahead log checkpointed and truncated, so that an erased
        call's ids are left in no file (a reader holding an old snapshot delays the truncation
        until the next forget)."""
        with self._tx() as cur:
            cur.execute("DELETE FROM recordings WHERE recording_id = ?", (recording_id,))
        if self.kind == "sqlite":
            with suppress(sqlite3.Error):
                self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def replace_all(self, rows: Iterable[Row]) -> None:
        """Every saved row replaced by ``rows`` in one transaction (a rebuild: readers see old or
        new); a ``saving`` claim of a save in progress stays unless a row of ``rows`` replaces it."""
        with self._tx() as cur:
            cur.execute(f"DELETE FROM recordings WHERE save_state = '{SAVED}'")
            for row in rows:
                cur.execute(
                    f"INSERT INTO recordings ({_COLS}) VALUES ({_MARKS}) "
                    f"ON CONFLICT (recording_id) DO UPDATE SET {_UPSERT_SET}",
                    row.values(),
                )

    def mark_filled(self) -> None:
        """Record that the rows were filled from the stored documents (see :attr:`filled`)."""
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO catalog_meta (name, value) VALUES ('filled', '1') ON CONFLICT (name) DO NOTHING"
            )

    # ---- reads ----------------------------------------------------------------------------------
    @property
    def filled(self) -> bool:
        """Whether the catalog was ever filled from the documents: a new catalog (a store written
        before the catalog existed, or a lost catalog) is not, and is rebuilt when opened."""
        return bool(self._query("SELECT value FROM catalog_meta WHERE name = 'filled'"))

    def get(self, recording_id: str) -> Row | None:
        """The row of ``recording_id`` in any save state, None when absent."""
        rows = self._query(f"SELECT {_COLS} FROM recordings WHERE recording_id = ?", (recording_id,))
        return row_from_values(rows[0]) if rows else None

    def page(
        self,
        *,
        conversation_id: str | None = None,
        processed: bool | None = None,
        since: str | None = None,
        until: str | None = None,
        after: tuple[str, str] | None = None,
        call_date: str | None = None,
        caller_key: str | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Saved rows in (call date, recording id) order; ``since``/``until`` are UTC ISO times."""
        where, params = [_VISIBLE], []
        for column, value in (
            ("conversation_id", conversation_id),
            ("call_date", call_date),
            ("caller_key", caller_key),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if processed is not None:
            where.append("processed = ?")
            params.append(int(processed))
        if since is not None:
            where += ["call_date >= ?", "utc_time >= ?"]
            params += [since[:10], since]
        if until is not None:
            where += ["call_date <= ?", "utc_time <= ?"]
            params += [until[:10], until]
        if after is not None:
            where.append("(call_date > ? OR (call_date = ? AND recording_id > ?))")
            params += [after[0], after[0], after[1]]
        return self._rows(where, params, "call_date, recording_id", limit)

    def dates(self, *, pending: bool = False) -> list[str]:
        """Call dates with at least one saved recording (only unprocessed ones with ``pending``)."""
        extra = " AND processed = 0" if pending else ""
        rows = self._query(
            f"SELECT DISTINCT call_date FROM recordings WHERE {_VISIBLE}{extra} ORDER BY call_date"
        )
        return [r[0] for r in rows]

    def pending_rows(self, call_date: str | None = None) -> list[Row]:
        """Saved unprocessed rows (of one call date, or all), in (date, id) order."""
        where, params = f"{_VISIBLE} AND processed = 0", []
        if call_date is not None:
            where += " AND call_date = ?"
            params.append(call_date)
        rows = self._query(
            f"SELECT {_COLS} FROM recordings WHERE {where} ORDER BY call_date, recording_id", params
        )
        return [row_from_values(r) for r in rows]

    def unprocessed_newest(
        self,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        failed: bool | None = None,
        before: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> list[Row]:
        """Saved unprocessed rows newest first (UTC time, then id, descending), read through the
        ``(processed, utc_time, recording_id)`` index: the queue, never the history.
        ``failed``: only rows whose status is (True) or is not (False) ``failed``;
        ``before``: rows after the ``(utc_time, recording_id)`` of a previous page."""
        where, params = _unprocessed_in(date_from, date_to)
        if failed is not None:
            where.append("status = 'failed'" if failed else "status <> 'failed'")
        if before is not None:
            where.append("(utc_time < ? OR (utc_time = ? AND recording_id < ?))")
            params += [before[0], before[0], before[1]]
        return self._rows(where, params, "processed, utc_time DESC, recording_id DESC", limit)

    def _rows(self, where: list[str], params: list[object], order: str, limit: int) -> list[Row]:
        rows = self._query(
            f"SELECT {_COLS} FROM recordings WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
            (*params, limit),
        )
        return [row_from_values(r) for r in rows]

    def unprocessed_by_day(self, date_from: str | None = None, date_to: str | None = None) -> dict[str, int]:
        """Saved unprocessed recordings per call date (failed ones included), from the pending index."""
        where, params = _unprocessed_in(date_from, date_to)
        rows = self._query(
            f"SELECT call_date, COUNT(*) FROM recordings WHERE {' AND '.join(where)} GROUP BY call_date",
            params,
        )
        return {day: int(n) for day, n in rows}

    def saving_rows(self) -> list[Row]:
        """Rows left ``saving``: saves in progress, or interrupted (see :mod:`callpipe.catalog.recover`)."""
        rows = self._query(f"SELECT {_COLS} FROM recordings WHERE save_state = '{SAVING}'")
        return [row_from_values(r) for r in rows]

    def counts(self) -> dict[str, Any]:
        """Totals over saved rows: recordings, processed, pending, pending_sync and per status."""
        rows = self._query(
            "SELECT status, processed, pending_sync, COUNT(*) FROM recordings "
            f"WHERE {_VISIBLE} GROUP BY status, processed, pending_sync"
        )
        by_status: dict[str, int] = {}
        total = processed = pending_sync = 0
        for status, is_processed, syncing, n in rows:
            total += n
            processed += n if is_processed else 0
            pending_sync += n if syncing else 0
            by_status[status] = by_status.get(status, 0) + n
        return {
            "recordings": total,
            "processed": processed,
            "pending": total - processed,
            "pending_sync": pending_sync,
            "by_status": dict(sorted(by_status.items())),
        }


class _Cursor:
    """A DB-API cursor whose statements are written with ``?`` placeholders on both backends."""

    def __init__(self, cur: Any, sql: Any) -> None:
        self._cur, self._sql = cur, sql

    def execute(self, statement: str, params: tuple[object, ...] = ()) -> None:
        self._cur.execute(self._sql(statement), params)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._cur.fetchall())


def _unprocessed_in(date_from: str | None, date_to: str | None) -> tuple[list[str], list[object]]:
    """The conditions (and their parameters) of saved unprocessed rows between two call dates."""
    bounds = [(">=", date_from), ("<=", date_to)]
    where = [_VISIBLE, "processed = 0", *(f"call_date {op} ?" for op, day in bounds if day is not None)]
    return where, [day for _, day in bounds if day is not None]


def _is_unavailable(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return True
    return type(exc).__module__.startswith("psycopg2") and type(exc).__name__ in (
        "OperationalError",
        "InterfaceError",
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _is_unique_violation(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return True
    return getattr(exc, "pgcode", None) == "23505"
