"""Embedded analytics store: one Parquet file per table and call date, queried through DuckDB.

Layout (``ROOT`` defaults to ``./data/analytics``)::

    ROOT/calls/call_date=YYYY-MM-DD/part.parquet
    ROOT/turns/call_date=YYYY-MM-DD/part.parquet
    ROOT/entities/call_date=YYYY-MM-DD/part.parquet

Why files and not one ``.duckdb`` database: DuckDB lets one process open a database file for
writing *or* many processes open it read-only, never both at once. Dagster runs (writers), the
HTTP API and an analyst's ``duckdb`` shell or BI tool (readers) are separate processes, so a
shared database file would make a reader block the day's write or the reverse. Here a writer
never opens anything a reader holds: it writes the day's table to a temporary file beside the
target and renames it over ``part.parquet`` (atomic on POSIX), so a reader sees the old day or
the new day, never half of one; a reader with the old file open keeps reading the old inode.
Re-running a day replaces its files, so rows are never duplicated. A day's three tables are
renamed one after the other (calls last), so for an instant a reader may see new turns with the
previous calls row of the same day.

Readers query an in-memory DuckDB whose tables mirror the files: before each query the store
compares each day file's (inode, size, mtime) with what it loaded and reloads only the days that
changed, so a query over 100,000 calls does not re-read Parquet. Anyone can also read the files
directly, e.g. ``duckdb -c "SELECT * FROM read_parquet('data/analytics/calls/*/*.parquet',
hive_partitioning=true)"``.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from callpipe.analytics.columns import LIST_COLUMNS, TABLES
from callpipe.analytics.queries import (
    LIST_ORDER,
    SqlReads,
    create_table_sql,
    decode_json_columns,
    list_calls_sql,
    page,
)

PART = "part.parquet"
VERSION = "_version"
"""Replaced (new inode) after every day write: readers stat this one file per query and scan the
day files only when it changed."""
_Signature = tuple[int, int, int]


def _connect() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(":memory:", config={"threads": 2})
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


class ParquetAnalyticsStore(SqlReads):
    """:class:`~callpipe.analytics.store.AnalyticsStore` on Parquet files under ``root``."""

    def __init__(self, root: str | Path, *, read_only: bool = False) -> None:
        self.root = Path(root)
        self.read_only = read_only
        if not read_only:
            for table in TABLES:
                (self.root / table).mkdir(parents=True, exist_ok=True)
        self._conn = _connect()
        for table, columns in TABLES.items():
            self._conn.execute(create_table_sql(table, columns, "duckdb"))
        self._indexed = False
        self._loaded: dict[str, dict[str, _Signature]] = {table: {} for table in TABLES}
        self._version: _Signature | None = None
        self._lock = threading.Lock()

    # --- writing -------------------------------------------------------------------------------

    def day_path(self, table: str, call_date: str) -> Path:
        """The Parquet file of ``table`` for ``call_date``."""
        return self.root / table / f"call_date={date.fromisoformat(call_date).isoformat()}" / PART

    def replace_day(
        self,
        call_date: str,
        calls: list[dict[str, Any]],
        turns: list[dict[str, Any]],
        entities: list[dict[str, Any]],
    ) -> None:
        """Write the day's three files (temporary file, then rename); calls last."""
        if self.read_only:
            raise PermissionError("analytics store opened read-only")
        day = date.fromisoformat(call_date).isoformat()
        for table, rows in (("turns", turns), ("entities", entities), ("calls", calls)):
            wrong = {str(r.get("call_date")) for r in rows} - {day}
            if wrong:
                raise ValueError(f"{table} rows for {sorted(wrong)} given to replace_day({day})")
            self._write_file(table, day, rows)
        self._bump_version()

    def remove_recording(self, recording_id: str) -> bool:
        """Rewrite the days holding ``recording_id`` without its rows (erasure); whether any held it."""
        if self.read_only:
            raise PermissionError("analytics store opened read-only")
        found = False
        for table in TABLES:
            for day_dir in sorted((self.root / table).glob("call_date=*")):
                path = day_dir / PART
                if not path.is_file():
                    continue
                conn = _connect()
                try:
                    quoted = _quote(path)
                    sql = f"SELECT count(*) FROM read_parquet('{quoted}') WHERE recording_id = ?"
                    hits = conn.execute(sql, [recording_id]).fetchone()
                    if not hits or not hits[0]:
                        continue
                    found = True
                    tmp = path.with_name(f".{PART}.{uuid.uuid4().hex}.tmp")
                    conn.execute(
                        f"COPY (SELECT * FROM read_parquet('{quoted}') WHERE recording_id <> ?)"
                        f" TO '{_quote(tmp)}' (FORMAT parquet)",
                        [recording_id],
                    )
                finally:
                    conn.close()
                os.replace(tmp, path)
                _fsync_dir(path.parent)
        if found:
            self._bump_version()
        return found

    def _bump_version(self) -> None:
        tmp = self.root / f".{VERSION}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(uuid.uuid4().hex, encoding="ascii")
        os.replace(tmp, self.root / VERSION)

    def _write_file(self, table: str, day: str, rows: list[dict[str, Any]]) -> None:
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
            order = "call_start_utc DESC, recording_id" if table == "calls" else "recording_id"
            conn.execute(f"COPY (SELECT * FROM day ORDER BY {order}) TO '{_quote(tmp)}' (FORMAT parquet)")
        finally:
            conn.close()
        try:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    # --- reading -------------------------------------------------------------------------------

    def _scan(self, table: str) -> dict[str, _Signature]:
        found: dict[str, _Signature] = {}
        base = self.root / table
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            return found
        for entry in entries:
            if not entry.name.startswith("call_date="):
                continue
            try:
                st = os.stat(os.path.join(entry.path, PART))
            except FileNotFoundError:
                continue
            found[entry.name.removeprefix("call_date=")] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return found

    def _version_signature(self) -> _Signature | None:
        try:
            st = os.stat(self.root / VERSION)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def refresh(self) -> None:
        """Reload the days whose files changed since the last query (and drop removed days);
        nothing but one ``stat`` when no day was written since."""
        with self._lock:
            version = self._version_signature()
            if version is not None and version == self._version:
                return
            for table in TABLES:
                current = self._scan(table)
                loaded = self._loaded[table]
                changed = [d for d, sig in current.items() if loaded.get(d) != sig]
                gone = [d for d in loaded if d not in current]
                if not changed and not gone:
                    continue
                self._conn.execute("BEGIN")
                try:
                    for day in changed + gone:
                        self._conn.execute(
                            f"DELETE FROM {table} WHERE call_date = ?", [date.fromisoformat(day)]
                        )
                    for day in changed:
                        path = _quote(self.day_path(table, day))
                        self._conn.execute(
                            f"INSERT INTO {table} BY NAME"
                            f" SELECT * FROM read_parquet('{path}', hive_partitioning=false)"
                        )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                for day in gone:
                    loaded.pop(day, None)
                loaded.update({d: current[d] for d in changed})
            if not self._indexed:  # after the first load: building it once beats updating it per row
                for table in TABLES:
                    self._conn.execute(f"CREATE INDEX {table}_by_id ON {table} (recording_id)")
                self._indexed = True
            self._version = version

    def _query(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        self.refresh()
        cursor = self._conn.cursor()
        try:
            return _rows(cursor.execute(sql, params))
        finally:
            cursor.close()

    def list_calls(
        self,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        status: str | None = None,
        intent: str | None = None,
        sentiment: str | None = None,
        agent_id: str | None = None,
        q: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """See :meth:`AnalyticsStore.list_calls`.

        Two steps in one snapshot: the filters and the order pick the page's row ids reading only
        the filtered columns, then only those rows are read whole (reading every column of every
        matching row first made a page over 100,000 calls several times slower).
        """
        filters = {
            "date_from": date_from,
            "date_to": date_to,
            "status": status,
            "intent": intent,
            "sentiment": sentiment,
            "agent_id": agent_id,
            "q": q,
            "cursor": cursor,
        }
        sql, params = list_calls_sql(limit=limit, select="rowid", **filters)
        self.refresh()
        cursor = self._conn.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            ids = [row[0] for row in cursor.execute(sql, params).fetchall()]
            rows = _rows(
                cursor.execute(
                    f"SELECT {', '.join(LIST_COLUMNS)} FROM calls"
                    f" WHERE rowid IN (SELECT unnest(?::BIGINT[])) {LIST_ORDER}",
                    [ids],
                )
            )
            cursor.execute("COMMIT")
        finally:
            cursor.close()
        return page([decode_json_columns(r) for r in rows], limit)

    def get_call(self, recording_id: str) -> dict[str, Any] | None:
        """See :meth:`AnalyticsStore.get_call`."""
        rows = self._query("SELECT * FROM calls WHERE recording_id = ? LIMIT 1", [recording_id])
        return decode_json_columns(rows[0]) if rows else None

    def close(self) -> None:
        """Close the in-memory database."""
        self._conn.close()


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
