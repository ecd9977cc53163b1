"""Embedded analytics store: Parquet files per table and call date (the tables a BI tool reads),
plus a SQLite listing beside them (:mod:`callpipe.analytics.listing`) that serves the API.

Layout (``ROOT`` defaults to ``analytics/`` beside the recording store)::

    ROOT/calls/call_date=YYYY-MM-DD/part.parquet      hive-partitioned: any engine reads them
    ROOT/turns/call_date=YYYY-MM-DD/part.parquet
    ROOT/entities/call_date=YYYY-MM-DD/part.parquet
    ROOT/listing.sqlite                               calls listing, FTS5 index, day aggregates,
                                                      tombstone of erased ids

Nothing is copied into memory: a list, a search, the dashboard and stats read indexed SQLite
rows (the dashboard reads the per-day aggregates written with each day); a call's page reads
that call's rows from its own day's files through DuckDB. Memory does not grow with history.

Writes (a day, an erasure) are serialised across processes by ``ROOT/.write.lock`` (``flock``).
A day write, inside the lock: drops the ids in the tombstone, writes the three day files to
temporary names, renames them over ``part.parquet`` (atomic; a reader holding the old file keeps
the old inode) and commits the day's listing, search and aggregate rows; a call whose call date
moved is removed from its old day. An erasure, inside the same lock, adds the id to the tombstone
first, then rewrites only its own day's files and rows: a run that read the documents before the
erasure cannot write the call back. Its cost is that of one day, whatever the history.

Anyone can read the files directly, e.g. ``duckdb -c "SELECT * FROM read_parquet(
'data/analytics/calls/*/*.parquet', hive_partitioning=true)"``.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from callpipe.analytics import category_tables
from callpipe.analytics.aggregates import dashboard_from, day_aggregate, summary_from
from callpipe.analytics.categorize import day_matches, parsed
from callpipe.analytics.columns import TABLES
from callpipe.analytics.duck_categories import ParquetCategories
from callpipe.analytics.listing import FILTERS, Listing, fts_query, start_us
from callpipe.analytics.queries import (
    CATEGORY_FILTER,
    STATUSES,
    AnalyticsQueryError,
    create_table_sql,
    decode_cursor,
    decode_json_columns,
    encode_cursor,
)

PART = "part.parquet"
LISTING = "listing.sqlite"
LOCK = ".write.lock"
WriteHook = Callable[[str], None]
"""Called at named points of a write (``"files-written"``: the day's files are written, nothing
renamed or committed yet); tests pause a writer there to interleave an erasure."""


def _connect() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": "256MB"})
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


class ParquetAnalyticsStore(ParquetCategories):
    """:class:`~callpipe.analytics.store.AnalyticsStore` on Parquet files and a SQLite listing
    under ``root``."""

    def __init__(self, root: str | Path, *, read_only: bool = False, mirror: Any = None) -> None:
        self.root = Path(root)
        self.mirror = mirror  # an S3Mirror (callpipe.analytics.mirror) when the store is S3
        self.read_only = read_only
        self.hook: WriteHook | None = None
        if not read_only:
            for table in TABLES:
                (self.root / table).mkdir(parents=True, exist_ok=True)
        self._listing: Listing | None = None
        self._duck = _connect()
        self._duck_lock = threading.Lock()

    @property
    def listing(self) -> Listing:
        """The SQLite side (created by the first writer; a reader before it sees empty tables)."""
        if self._listing is None:
            path = self.root / LISTING
            if self.read_only and not path.is_file():
                raise FileNotFoundError(f"no analytics tables written yet under {self.root}")
            self._listing = Listing(path, read_only=self.read_only)
        return self._listing

    # --- writing -------------------------------------------------------------------------------

    def day_path(self, table: str, call_date: str) -> Path:
        """The Parquet file of ``table`` for ``call_date``."""
        return self.root / table / f"call_date={date.fromisoformat(call_date).isoformat()}" / PART

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self.read_only:
            raise PermissionError("analytics store opened read-only")
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _hook(self, point: str) -> None:
        if self.hook is not None:
            self.hook(point)

    def replace_day(
        self,
        call_date: str,
        calls: list[dict[str, Any]],
        turns: list[dict[str, Any]],
        entities: list[dict[str, Any]],
    ) -> None:
        """Make the day's rows exactly these, less any erased id (see the module docstring)."""
        day = date.fromisoformat(call_date).isoformat()
        for table, rows in (("turns", turns), ("entities", entities), ("calls", calls)):
            wrong = {str(r.get("call_date")) for r in rows} - {day}
            if wrong:
                raise ValueError(f"{table} rows for {sorted(wrong)} given to replace_day({day})")
        with self._locked():
            listing = self.listing
            ids = {str(r["recording_id"]) for r in calls} | {str(r["recording_id"]) for r in turns}
            erased = listing.erased_among(ids)
            if erased:
                calls, turns, entities = (
                    [r for r in rows if r["recording_id"] not in erased] for rows in (calls, turns, entities)
                )
            moved: dict[str, list[str]] = {}
            for rid, old_day in listing.days_of(r["recording_id"] for r in calls).items():
                if old_day != day:
                    moved.setdefault(old_day, []).append(rid)
            tmps = [
                (self._write_tmp(t, day, rows), self.day_path(t, day))
                for t, rows in (("turns", turns), ("entities", entities), ("calls", calls))
            ]
            self._hook("files-written")
            conn = listing.conn()
            try:
                with conn:
                    listing.replace_day(conn, day, calls, day_aggregate(day, calls))
                    rules = parsed(category_tables.rules(conn))  # the categories stage, same transaction
                    category_tables.replace_calls_matches(
                        conn, day, [str(r["recording_id"]) for r in calls],
                        day_matches(rules, day, calls, turns, entities),
                    )
                    for tmp, target in tmps:
                        os.replace(tmp, target)
                        _fsync_dir(target.parent)
            finally:
                for tmp, _ in tmps:
                    tmp.unlink(missing_ok=True)
            self._mirror(day, [t for t in TABLES])
            for old_day, rids in moved.items():
                self._drop_from_day(old_day, set(rids))

    def remove_recording(self, recording_id: str) -> bool:
        """Erase one recording: tombstone it, then rewrite only its day's files and rows; whether
        any held it."""
        with self._locked():
            listing = self.listing
            conn = listing.conn()
            with conn:
                listing.tombstone(conn, recording_id)
            day = listing.day_of(recording_id)
            found = False
            days = {day} if day else set()
            for d in days:
                found = self._drop_from_day(d, {recording_id}) or found
            with conn:
                found = listing.delete_ids(conn, [recording_id]) > 0 or found
            return found

    def has_rows(self, recording_id: str) -> bool:
        """Whether any table, index or search row of ``recording_id`` remains (erasure's check)."""
        day = self.listing.day_of(recording_id)
        return day is not None

    def _drop_from_day(self, day: str, ids: set[str]) -> bool:
        """Rewrite one day's files without ``ids`` and recompute its aggregate (lock held)."""
        found = False
        kept_calls: list[dict[str, Any]] = []
        for table in TABLES:
            path = self.day_path(table, day)
            if not path.is_file():
                continue
            rows = self._read(path)
            kept = [r for r in rows if r["recording_id"] not in ids]
            if table == "calls":
                kept_calls = kept
            if len(kept) == len(rows):
                continue
            found = True
            tmp = self._write_tmp(table, day, kept)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
            self._mirror(day, [table])
        conn = self.listing.conn()
        with conn:
            self.listing.delete_ids(conn, sorted(ids))
            self.listing.put_aggregate(
                conn, day, day_aggregate(day, [decode_json_columns(r) for r in kept_calls])
            )
        return found

    def _mirror(self, day: str, tables: list[str]) -> None:
        if self.mirror is not None:
            for table in tables:
                self.mirror.put(table, day, self.day_path(table, day))

    def _read(self, path: Path, recording_id: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM read_parquet('{_quote(path)}', hive_partitioning=false)"
        params: list[Any] = []
        if recording_id is not None:
            sql += " WHERE recording_id = ?"
            params.append(recording_id)
        with self._duck_lock:
            cursor = self._duck.cursor()
        try:
            return _rows(cursor.execute(sql, params))
        except duckdb.IOException:
            return []
        finally:
            cursor.close()

    def _write_tmp(self, table: str, day: str, rows: list[dict[str, Any]]) -> Path:
        target = self.day_path(table, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{PART}.{uuid.uuid4().hex}.tmp")
        columns = TABLES[table]
        conn = _connect()
        try:
            conn.execute(create_table_sql("day", columns, "duckdb"))
            if rows:
                values = [[row.get(name) for row in rows] for name, _, _ in columns]
                selects = ", ".join(
                    f"unnest(${i + 1}::{_array_type(kind)})" for i, (_, kind, _) in enumerate(columns)
                )
                conn.execute(f"INSERT INTO day SELECT {selects}", values)
            order = "call_start_utc DESC, recording_id" if table == "calls" else "recording_id, turn_index"
            conn.execute(
                f"COPY (SELECT * FROM day ORDER BY {order}) TO '{_quote(tmp)}'"
                " (FORMAT parquet, ROW_GROUP_SIZE 8192)"
            )
        finally:
            conn.close()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        return tmp

    # --- reading -------------------------------------------------------------------------------

    def list_calls(
        self,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        status: str | None = None,
        intent: str | None = None,
        sentiment: str | None = None,
        agent_id: str | None = None,
        outcome: str | None = None,
        q: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        category: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """See :meth:`AnalyticsStore.list_calls`: indexed SQLite rows, newest first; with ``q``
        the FTS5 matches ranked by ``bm25`` (best first)."""
        if not 1 <= limit <= 1000:
            raise AnalyticsQueryError(f"limit must be 1..1000, got {limit}")
        if status is not None and status not in STATUSES:
            raise AnalyticsQueryError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        where: list[str] = []
        params: list[Any] = []
        if date_from is not None:
            where.append("call_date >= ?")
            params.append(date_from.isoformat())
        if date_to is not None:
            where.append("call_date <= ?")
            params.append(date_to.isoformat())
        for key, value in (
            ("status", status),
            ("intent", intent),
            ("sentiment", sentiment),
            ("agent_id", agent_id),
            ("outcome", outcome),
        ):
            if value is not None:
                where.append(f"{FILTERS[key]} = ?")
                params.append(value)
        if category is not None:
            where.append(CATEGORY_FILTER)
            params.append(category)
        match = fts_query(q)
        offset, after = 0, None
        if cursor:
            if match is not None:
                offset = _offset_cursor(cursor)
            else:
                start, rid = decode_cursor(cursor)
                after = (start_us(start), rid)
        try:
            listing = self.listing
        except FileNotFoundError:
            return [], None
        rows = listing.search(where, params, match, limit + 1, offset, after)
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        if match is not None:
            return rows, encode_cursor_offset(offset + limit)
        last = rows[-1]
        return rows, encode_cursor(last["call_start_utc"], last["recording_id"])

    def _day_rows(self, table: str, recording_id: str) -> list[dict[str, Any]]:
        try:
            day = self.listing.day_of(recording_id)
        except FileNotFoundError:
            return []
        if day is None:
            return []
        return [decode_json_columns(r) for r in self._read(self.day_path(table, day), recording_id)]

    def get_call(self, recording_id: str) -> dict[str, Any] | None:
        """See :meth:`AnalyticsStore.get_call` (read from the call's own day file)."""
        rows = self._day_rows("calls", recording_id)
        return rows[0] if rows else None

    def call_turns(self, recording_id: str) -> list[dict[str, Any]]:
        """See :meth:`AnalyticsStore.call_turns`."""
        rows = sorted(
            self._day_rows("turns", recording_id), key=lambda r: (r["start_seconds"] or 0, r["turn_index"])
        )
        for r in rows:
            r["start"], r["end"] = r["start_seconds"], r["end_seconds"]
        return rows

    def call_entities(self, recording_id: str) -> list[dict[str, Any]]:
        """See :meth:`AnalyticsStore.call_entities`."""
        rows = self._day_rows("entities", recording_id)
        big = 1 << 62
        return sorted(
            rows,
            key=lambda r: (
                big if r["turn_index"] is None else r["turn_index"],
                r["category"] or "",
                r["kind"] or "",
            ),
        )

    def dashboard(self, date_from: date | None = None, date_to: date | None = None) -> dict[str, Any]:
        """See :meth:`AnalyticsStore.dashboard`: merged from the per-day aggregates."""
        try:
            days = self.listing.aggregates(date_from, date_to)
        except FileNotFoundError:
            days = []
        return dashboard_from(days)

    def failed_total(self) -> int:
        """Failed calls over all days (from the per-day aggregates)."""
        return sum(int(d.get("failed") or 0) for d in self.dashboard()["per_day"])

    def day_summary(self, call_date: str) -> dict[str, Any]:
        """See :meth:`AnalyticsStore.day_summary`: the day's aggregate, no table scan."""
        day = date.fromisoformat(call_date)
        try:
            found = self.listing.aggregates(day, day)
        except FileNotFoundError:
            found = []
        return summary_from(call_date, found[0] if found else None)

    def close(self) -> None:
        """Close the connections of this thread."""
        if self._listing is not None:
            self._listing.close()
        self._duck.close()


def encode_cursor_offset(offset: int) -> str:
    """The cursor of a ranked search page (its offset)."""
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(["rank", offset]).encode()).decode().rstrip("=")


def _offset_cursor(cursor: str) -> int:
    import base64
    import binascii
    import json

    try:
        kind, offset = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "rank" or not isinstance(offset, int) or not 0 <= offset <= 1_000_000:
            raise ValueError(cursor)
        return offset
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise AnalyticsQueryError("invalid cursor: pass the next_cursor of a previous page") from None


def _array_type(portable: str) -> str:
    from callpipe.analytics.queries import sql_type

    return sql_type(portable, "duckdb") + "[]"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
