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

Writes (a day, an erasure) are serialised across processes by ``ROOT/.write.lock`` (``flock``);
no Parquet file is written outside it. A day write, inside the lock: drops the ids in the
tombstone, writes the day's files (and those of the days its calls moved from, without them) to
temporary names, then in one listing transaction replaces the day's listing, search and
aggregate rows and renames the files over ``part.parquet``. An erasure, inside the same lock,
commits the id to the tombstone (with its call date) first, then rewrites only that day's files
and rows: a run that read the documents before the erasure cannot write the call back, one that
was writing finishes first and is undone. Keys: one ``calls`` row per ``recording_id`` (the
listing's PRIMARY KEY; a call filed under another date is moved, never duplicated), and the
tables' keys (:data:`~callpipe.analytics.queries.TABLE_KEYS`) enforced when a day file is written.

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
from callpipe.analytics.parquet_io import array_type, connect, discard, fetch_rows, install, quote
from callpipe.analytics.queries import (
    CATEGORY_FILTER,
    STATUSES,
    TABLE_KEYS,
    AnalyticsQueryError,
    create_table_sql,
    decode_cursor,
    decode_json_columns,
    encode_cursor,
    encode_cursor_offset,
    offset_cursor,
)
from callpipe.faultpoints import park

PART = "part.parquet"
LISTING = "listing.sqlite"
LOCK = ".write.lock"
WriteHook = Callable[[str], None]
"""Called at named points of a write (``"documents-read"``: rows given, no lock taken yet;
``"files-written"``: the day's files are written, nothing renamed or committed yet); tests pause
a writer there to interleave an erasure (other processes: :mod:`callpipe.faultpoints`)."""


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
        self._duck = connect()
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

    def _point(self, point: str) -> None:
        """A named point of a write: the test hook, and :func:`callpipe.faultpoints.park`."""
        if self.hook is not None:
            self.hook(point)
        park(f"tables:{point}")

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
        self._point("documents-read")
        with self._locked():
            listing = self.listing
            ids = {str(r["recording_id"]) for rows in (calls, turns, entities) for r in rows}
            erased = listing.erased_among(ids)
            if erased:
                calls, turns, entities = (
                    [r for r in rows if r["recording_id"] not in erased] for rows in (calls, turns, entities)
                )
            moved: dict[str, set[str]] = {}
            for rid, old_day in listing.days_of(r["recording_id"] for r in calls).items():
                if old_day != day:
                    moved.setdefault(old_day, set()).add(rid)
            tmps = [
                (self._write_tmp(t, day, rows), self.day_path(t, day))
                for t, rows in (("turns", turns), ("entities", entities), ("calls", calls))
            ]
            olds = {old: self._without(old, rids) for old, rids in sorted(moved.items())}
            tmps += [pair for old_tmps, _ in olds.values() for pair in old_tmps]
            self._point("files-written")
            conn = listing.conn()
            try:
                with conn:  # the listing of both days and the files change together
                    listing.replace_day(conn, day, calls, day_aggregate(day, calls))
                    rules = parsed(category_tables.rules(conn))  # the categories stage, same transaction
                    category_tables.replace_calls_matches(
                        conn, day, [str(r["recording_id"]) for r in calls],
                        day_matches(rules, day, calls, turns, entities),
                    )
                    for old, (_, kept) in olds.items():
                        listing.put_aggregate(conn, old, day_aggregate(old, kept))
                    install(tmps)
            finally:
                discard(tmps)
            self._mirror(day, list(TABLES))
            for old, (old_tmps, _) in olds.items():
                self._mirror(old, [target.parent.parent.name for _, target in old_tmps])

    def remove_recording(self, recording_id: str) -> bool:
        """Erase one recording: tombstone it, then rewrite only its day's files and rows; whether
        any held it."""
        with self._locked():
            listing = self.listing
            day = listing.day_of(recording_id) or listing.erased_day(recording_id)
            conn = listing.conn()
            with conn:  # committed first: from now on no write can put the id back
                listing.tombstone(conn, recording_id, day)
            if day is None:
                return False
            tmps, kept = self._without(day, {recording_id})
            try:
                with conn:
                    found = listing.delete_ids(conn, [recording_id]) > 0 or bool(tmps)
                    listing.put_aggregate(conn, day, day_aggregate(day, kept))
                    install(tmps)
            finally:
                discard(tmps)
            self._mirror(day, [target.parent.parent.name for _, target in tmps])
            return found

    def has_rows(self, recording_id: str) -> bool:
        """Whether any table, index or search row of ``recording_id`` remains (erasure's check):
        its listing row, else a row in the day files it was filed under (those only)."""
        try:
            listing = self.listing
        except FileNotFoundError:
            return False
        day = listing.day_of(recording_id)
        if day is not None:
            return True
        day = listing.erased_day(recording_id)
        return day is not None and any(self._read(self.day_path(t, day), recording_id) for t in TABLES)

    def _without(self, day: str, ids: set[str]) -> tuple[list[tuple[Path, Path]], list[dict[str, Any]]]:
        """The day's files rewritten without ``ids`` under temporary names (``(temp, target)``
        for each that held one) and the day's ``calls`` rows kept."""
        tmps: list[tuple[Path, Path]] = []
        kept_calls: list[dict[str, Any]] = []
        for table in TABLES:
            path = self.day_path(table, day)
            rows = self._read(path) if path.is_file() else []
            kept = [r for r in rows if r["recording_id"] not in ids]
            if len(kept) != len(rows):
                tmps.append((self._write_tmp(table, day, kept), path))
            if table == "calls":  # decoded in place: after the file is written
                kept_calls = [decode_json_columns(r) for r in kept]
        return tmps, kept_calls

    def _mirror(self, day: str, tables: list[str]) -> None:
        if self.mirror is not None:
            for table in tables:
                self.mirror.put(table, day, self.day_path(table, day))

    def _read(self, path: Path, recording_id: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM read_parquet('{quote(path)}', hive_partitioning=false)"
        params: list[Any] = []
        if recording_id is not None:
            sql += " WHERE recording_id = ?"
            params.append(recording_id)
        with self._duck_lock:
            cursor = self._duck.cursor()
        try:
            return fetch_rows(cursor.execute(sql, params))
        except duckdb.IOException:
            return []
        finally:
            cursor.close()

    def _write_tmp(self, table: str, day: str, rows: list[dict[str, Any]]) -> Path:
        target = self.day_path(table, day)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{PART}.{uuid.uuid4().hex}.tmp")
        columns = TABLES[table]
        conn = connect()
        try:
            conn.execute(create_table_sql("day", columns, "duckdb", key=TABLE_KEYS[table]))
            if rows:
                values = [[row.get(name) for row in rows] for name, _, _ in columns]
                selects = ", ".join(
                    f"unnest(${i + 1}::{array_type(kind)})" for i, (_, kind, _) in enumerate(columns)
                )
                try:
                    conn.execute(f"INSERT INTO day SELECT {selects}", values)
                except duckdb.ConstraintException:  # the key is enforced: one row per key
                    raise ValueError(f"{table} rows of {day} repeat a key ({TABLE_KEYS[table]})") from None
            order = "call_start_utc DESC, recording_id" if table == "calls" else "recording_id, turn_index"
            conn.execute(
                f"COPY (SELECT * FROM day ORDER BY {order}) TO '{quote(tmp)}'"
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
                offset = offset_cursor(cursor)
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
