"""PostgreSQL analytics store: the same three tables in one database, for production.

A day is replaced in one short transaction (``DELETE`` the day's rows, then ``INSERT`` the new
ones): PostgreSQL's MVCC lets readers go on reading the previous day meanwhile, and they never
block the writer. Two writers of the same day are serialised by a transaction-level advisory
lock on the date, so a day is never left with both runs' rows.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from callpipe.analytics.columns import TABLES
from callpipe.analytics.queries import (
    JSON_COLUMNS,
    SqlReads,
    create_table_sql,
    list_calls_sql,
    page,
    sql_type,
)

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS calls_by_date ON calls (call_date)",
    "CREATE INDEX IF NOT EXISTS calls_by_start ON calls (call_start_utc DESC, recording_id DESC)",
    "CREATE INDEX IF NOT EXISTS calls_by_id ON calls (recording_id)",
    "CREATE INDEX IF NOT EXISTS turns_by_call ON turns (recording_id)",
    "CREATE INDEX IF NOT EXISTS turns_by_date ON turns (call_date)",
    "CREATE INDEX IF NOT EXISTS entities_by_call ON entities (recording_id)",
    "CREATE INDEX IF NOT EXISTS entities_by_date ON entities (call_date)",
)


def _pg(sql: str) -> str:
    """``?`` placeholders as psycopg2's ``%s`` (the shared SQL holds no literal ``%`` or ``?``)."""
    return sql.replace("?", "%s")


class PostgresAnalyticsStore(SqlReads):
    """:class:`~callpipe.analytics.store.AnalyticsStore` on PostgreSQL (``dsn``: a libpq URL)."""

    def __init__(self, dsn: str, *, read_only: bool = False) -> None:
        import psycopg2

        self.read_only = read_only
        self._conn = psycopg2.connect(dsn, options="-c timezone=UTC")
        self._lock = threading.Lock()
        if not read_only:
            with self._conn, self._conn.cursor() as cur:
                for table, columns in TABLES.items():
                    cur.execute(create_table_sql(table, columns, "postgres"))
                    for name, kind, _ in columns:  # tables made by an older version gain new columns
                        kind_sql = sql_type(kind, "postgres")
                        cur.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind_sql}")
                for statement in _INDEXES:
                    cur.execute(statement)
                _trigram_index(cur)

    def replace_day(
        self,
        call_date: str,
        calls: list[dict[str, Any]],
        turns: list[dict[str, Any]],
        entities: list[dict[str, Any]],
    ) -> None:
        """Delete the day's rows and insert these, in one transaction."""
        if self.read_only:
            raise PermissionError("analytics store opened read-only")
        from psycopg2.extras import Json, execute_values

        day = date.fromisoformat(call_date)
        with self._lock, self._conn, self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [day.toordinal()])
            for table, rows in (("calls", calls), ("turns", turns), ("entities", entities)):
                wrong = {str(r.get("call_date")) for r in rows} - {day.isoformat()}
                if wrong:
                    raise ValueError(f"{table} rows for {sorted(wrong)} given to replace_day({day})")
                names = [name for name, _, _ in TABLES[table]]
                cur.execute(f"DELETE FROM {table} WHERE call_date = %s", [day])
                values = [
                    [Json(_json(row.get(n))) if n in JSON_COLUMNS else row.get(n) for n in names]
                    for row in rows
                ]
                if values:
                    execute_values(
                        cur, f"INSERT INTO {table} ({', '.join(names)}) VALUES %s", values, page_size=500
                    )

    def remove_recording(self, recording_id: str) -> bool:
        """Delete the recording's rows from every table (erasure); whether it had any."""
        if self.read_only:
            raise PermissionError("analytics store opened read-only")
        found = 0
        with self._lock, self._conn, self._conn.cursor() as cur:
            for table in TABLES:
                cur.execute(f"DELETE FROM {table} WHERE recording_id = %s", [recording_id])
                found += cur.rowcount
        return found > 0

    def _query(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with self._lock, self._conn.cursor() as cur:
            try:
                cur.execute(_pg(sql), params)
                names = [d[0] for d in cur.description or []]
                rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
            finally:
                self._conn.rollback()  # end the read transaction: no snapshot held between queries
        return rows

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
        """See :meth:`AnalyticsStore.list_calls`."""
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
        sql, params = list_calls_sql(limit=limit, **filters)
        return page(self._query(sql, params), limit)

    def get_call(self, recording_id: str) -> dict[str, Any] | None:
        """See :meth:`AnalyticsStore.get_call`."""
        rows = self._query("SELECT * FROM calls WHERE recording_id = ? LIMIT 1", [recording_id])
        return rows[0] if rows else None

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def _trigram_index(cur: Any) -> None:
    """A trigram index for the text search (``LIKE '%term%'``) when ``pg_trgm`` can be enabled;
    without it the search scans the table, which is correct, only slower."""
    import psycopg2

    cur.execute("SAVEPOINT trigram")
    try:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cur.execute("CREATE INDEX IF NOT EXISTS calls_search ON calls USING gin (search_text gin_trgm_ops)")
    except psycopg2.Error:
        cur.execute("ROLLBACK TO SAVEPOINT trigram")
    else:
        cur.execute("RELEASE SAVEPOINT trigram")
