"""PostgreSQL analytics store: the same three tables in one database, for production.

- Primary keys: ``calls (recording_id)``, ``turns (recording_id, turn_index)``,
  ``entities (recording_id, entity_index)``; indexes on the list order and each filter column.
- Search: a GIN index over ``search_tsv``, the stored (generated) ``to_tsvector('spanish',
  search_text)``, which ``ts_rank`` reads too (no text parsed per match); ``search_text`` already holds
  each word lower-cased without accents (:func:`~callpipe.analytics.columns.normalize_text`), and
  the query is normalised the same way, so ``facturacion`` finds ``facturación`` (the ``spanish``
  configuration alone does not unaccent); matches ranked by ``ts_rank``.
- ``day_aggregates``: the per-day aggregate documents (:mod:`callpipe.analytics.aggregates`),
  written in the day's transaction; the dashboard and the day summary read only those.
- ``erased_recordings``: the tombstone. A day write takes a shared advisory lock, an erasure the
  exclusive one, so an erasure waits for the writes in flight to commit and deletes their rows;
  any later write reads the tombstone inside its transaction and drops the id.
- A connection pool (``psycopg2.pool.ThreadedConnectionPool``): requests run in parallel.

A day is replaced in one short transaction: MVCC lets readers go on reading the previous day.
Two writers of the same day are serialised by an advisory lock on the date.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from callpipe.analytics import category_tables
from callpipe.analytics.aggregates import dashboard_from, day_aggregate, summary_from
from callpipe.analytics.categorize import CategoryTablesMixin, Rows, day_matches, parsed
from callpipe.analytics.columns import TABLES, normalize_text
from callpipe.analytics.queries import (
    JSON_COLUMNS,
    LIST_ORDER,
    TABLE_KEYS,
    AnalyticsQueryError,
    SqlReads,
    create_table_sql,
    encode_cursor_offset,
    list_calls_sql,
    offset_cursor,
    page,
    sql_type,
)
from callpipe.faultpoints import park

ERASURE_LOCK = 0x63616C6C  # advisory lock key shared by writers, taken alone by an erasure
KEYS = TABLE_KEYS
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS calls_by_date ON calls (call_date)",
    "CREATE INDEX IF NOT EXISTS calls_by_start ON calls (call_start_utc DESC, recording_id DESC)",
    *(
        f"CREATE INDEX IF NOT EXISTS calls_by_{c} ON calls ({c}, call_start_utc DESC, recording_id DESC)"
        for c in ("status", "primary_intent", "sentiment_label", "agent_id", "outcome")
    ),
    "CREATE INDEX IF NOT EXISTS turns_by_date ON turns (call_date)",
    "CREATE INDEX IF NOT EXISTS entities_by_date ON entities (call_date)",
    # the tsvector stored once per row: ranking reads it instead of parsing every match's text again
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS search_tsv tsvector"
    " GENERATED ALWAYS AS (to_tsvector('spanish', coalesce(search_text, ''))) STORED",
    "DROP INDEX IF EXISTS calls_fts",
    "CREATE INDEX IF NOT EXISTS calls_tsv ON calls USING gin (search_tsv)",
    "CREATE TABLE IF NOT EXISTS day_aggregates (call_date DATE PRIMARY KEY, doc JSONB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS erased_recordings (recording_id TEXT PRIMARY KEY,"
    " erased_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    *category_tables.schema(postgres=True),
)
TSV = "search_tsv"
"""The stored ``to_tsvector('spanish', search_text)`` of each call (a generated column)."""
_CALL_COLUMNS = ", ".join(name for name, _, _ in TABLES["calls"])


def _pg(sql: str) -> str:
    """``?`` placeholders as psycopg2's ``%s`` (the shared SQL holds no literal ``%`` or ``?``)."""
    return sql.replace("?", "%s")


class PostgresAnalyticsStore(CategoryTablesMixin, SqlReads):
    """:class:`~callpipe.analytics.store.AnalyticsStore` on PostgreSQL (``dsn``: a libpq URL)."""

    def __init__(self, dsn: str, *, read_only: bool = False, pool_size: int = 8) -> None:
        from psycopg2.pool import ThreadedConnectionPool

        self.read_only = read_only
        self.hook: Callable[[str], None] | None = None
        self._pool = ThreadedConnectionPool(1, pool_size, dsn, options="-c timezone=UTC")
        if not read_only:
            self._migrate()

    def _migrate(self) -> None:
        """Create or upgrade the tables, once per schema version: a store opened on a current
        schema takes no table lock (DDL would wait for a day write in flight, and stall readers)."""
        version = _schema_version()
        with self._conn() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [ERASURE_LOCK + 1])  # one schema migrator
            cur.execute(
                "CREATE TABLE IF NOT EXISTS analytics_schema (id INT PRIMARY KEY, version TEXT NOT NULL)"
            )
            cur.execute("SELECT version FROM analytics_schema WHERE id = 1")
            found = cur.fetchone()
            if found and found[0] == version:
                return
            for table, columns in TABLES.items():
                cur.execute(create_table_sql(table, columns, "postgres"))
                for name, kind, _ in columns:  # tables made by an older version gain new columns
                    cur.execute(
                        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {sql_type(kind, 'postgres')}"
                    )
                _primary_key(cur, table)
            for statement in _INDEXES:
                cur.execute(statement)
            cur.execute(
                "INSERT INTO analytics_schema (id, version) VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                [version],
            )

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        """A pooled connection inside one transaction (committed on success, else rolled back)."""
        conn = self._pool.getconn()
        try:
            with conn:
                yield conn
        finally:
            self._pool.putconn(conn)

    def replace_day(
        self,
        call_date: str,
        calls: list[dict[str, Any]],
        turns: list[dict[str, Any]],
        entities: list[dict[str, Any]],
    ) -> None:
        """In one transaction: drop erased ids, delete the day's rows (and rows of these calls
        filed under another date), insert these, store the day's aggregate."""
        if self.read_only:
            raise PermissionError("analytics store opened read-only")
        from psycopg2.errors import UniqueViolation
        from psycopg2.extras import Json, execute_values

        day = date.fromisoformat(call_date)
        for table, rows in (("calls", calls), ("turns", turns), ("entities", entities)):
            wrong = {str(r.get("call_date")) for r in rows} - {day.isoformat()}
            if wrong:
                raise ValueError(f"{table} rows for {sorted(wrong)} given to replace_day({day})")
        self._point("documents-read")
        with self._conn() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [ERASURE_LOCK])
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [day.toordinal()])
            ids = sorted({str(r["recording_id"]) for rows in (calls, turns, entities) for r in rows})
            # READ COMMITTED: this sees every erasure committed before the lock was granted
            cur.execute("SELECT recording_id FROM erased_recordings WHERE recording_id = ANY(%s)", [ids])
            erased = {r[0] for r in cur.fetchall()}
            if erased:
                calls, turns, entities = (
                    [r for r in rows if r["recording_id"] not in erased] for rows in (calls, turns, entities)
                )
            call_ids = [str(r["recording_id"]) for r in calls]
            cur.execute(
                "SELECT DISTINCT call_date FROM calls WHERE recording_id = ANY(%s) AND call_date <> %s",
                [call_ids, day],
            )
            moved_from = [r[0] for r in cur.fetchall()]
            for table, rows in (("calls", calls), ("turns", turns), ("entities", entities)):
                names = [name for name, _, _ in TABLES[table]]
                cur.execute(
                    f"DELETE FROM {table} WHERE call_date = %s OR recording_id = ANY(%s)", [day, call_ids]
                )
                values = [
                    [Json(_json(row.get(n))) if n in JSON_COLUMNS else row.get(n) for n in names]
                    for row in rows
                ]
                try:
                    if values:
                        execute_values(
                            cur, f"INSERT INTO {table} ({', '.join(names)}) VALUES %s", values, page_size=1000
                        )
                except UniqueViolation:  # the primary key: one row per key
                    raise ValueError(f"{table} rows of {day} repeat a key ({KEYS[table]})") from None
            self._put_aggregate(cur, day.isoformat(), calls)
            rules = parsed(category_tables.rules(cur))  # the categories stage, same transaction
            category_tables.replace_calls_matches(
                cur, day.isoformat(), call_ids, day_matches(rules, day.isoformat(), calls, turns, entities)
            )
            for old in moved_from:
                self._recompute_aggregate(cur, old)
            self._point("rows-written")

    def _point(self, point: str) -> None:
        """A named point of a write: the test hook, and :func:`callpipe.faultpoints.park`."""
        if self.hook is not None:
            self.hook(point)
        park(f"tables:{point}")

    def _put_aggregate(self, cur: Any, day: str, calls: list[dict[str, Any]]) -> None:
        doc = json.dumps(day_aggregate(day, calls), default=str)
        cur.execute(
            "INSERT INTO day_aggregates (call_date, doc) VALUES (%s, %s)"
            " ON CONFLICT (call_date) DO UPDATE SET doc = excluded.doc",
            [day, doc],
        )

    def _recompute_aggregate(self, cur: Any, day: date) -> None:
        names = [n for n, _, _ in TABLES["calls"] if n not in ("redacted_text", "search_text")]
        cur.execute(f"SELECT {', '.join(names)} FROM calls WHERE call_date = %s", [day])
        rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
        self._put_aggregate(cur, day.isoformat(), rows)

    def remove_recording(self, recording_id: str) -> bool:
        """Erase one recording: tombstone, then delete its rows (after the writes in flight)."""
        if self.read_only:
            raise PermissionError("analytics store opened read-only")
        found = 0
        with self._conn() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [ERASURE_LOCK])
            cur.execute(
                "INSERT INTO erased_recordings (recording_id) VALUES (%s) ON CONFLICT DO NOTHING",
                [recording_id],
            )
            cur.execute("SELECT DISTINCT call_date FROM calls WHERE recording_id = %s", [recording_id])
            days = [r[0] for r in cur.fetchall()]
            for table in (*TABLES, "call_categories"):
                cur.execute(f"DELETE FROM {table} WHERE recording_id = %s", [recording_id])
                found += cur.rowcount
            for day in days:
                self._recompute_aggregate(cur, day)
        return found > 0

    def has_rows(self, recording_id: str) -> bool:
        """Whether any table still holds a row of ``recording_id``."""
        tables = (*TABLES, "call_categories")
        sql = " UNION ALL ".join(f"SELECT 1 FROM {t} WHERE recording_id = ?" for t in tables)
        return bool(self._query(f"SELECT EXISTS ({sql})", [recording_id] * len(tables))[0]["exists"])

    @contextlib.contextmanager
    def _category_tx(self) -> Iterator[Any]:
        with self._conn() as conn, conn.cursor() as cur:
            yield cur

    @contextlib.contextmanager
    def _category_read(self) -> Iterator[Any]:
        with self._conn() as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass('category_rules') IS NOT NULL")
            if cur.fetchone()[0]:
                yield cur
                return
        with category_tables.empty_tables() as empty:  # tables from before categories, read-only
            yield empty

    def category_days(self) -> list[tuple[str, int]]:
        """See :meth:`~callpipe.analytics.categorize.CategoryTablesMixin.category_days`."""
        rows = self._query(
            "SELECT call_date, count(*) AS n FROM calls WHERE status = 'processed' GROUP BY 1 ORDER BY 1", []
        )
        return [(r["call_date"].isoformat(), int(r["n"])) for r in rows]

    def category_inputs(self, day: str) -> tuple[Rows, Rows, Rows]:
        """See :meth:`~callpipe.analytics.categorize.CategoryTablesMixin.category_inputs`."""
        when = date.fromisoformat(day)
        calls = self._query(
            "SELECT recording_id, status, primary_intent, sentiment_label, outcome, silence_seconds,"
            " talk_seconds FROM calls WHERE call_date = ? AND status = 'processed'",
            [when],
        )
        turns = self._query(
            "SELECT recording_id, turn_index, speaker, start_seconds, end_seconds, text FROM turns"
            " WHERE call_date = ?",
            [when],
        )
        entities = self._query("SELECT recording_id, kind FROM entities WHERE call_date = ?", [when])
        return calls, turns, entities

    def _query(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        conn = self._pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(_pg(sql), params)
                names = [d[0] for d in cur.description or []]
                rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
            conn.rollback()  # end the read transaction: no snapshot held between queries
        except BaseException:
            conn.rollback()
            raise
        finally:
            self._pool.putconn(conn)
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
        outcome: str | None = None,
        q: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        category: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """See :meth:`AnalyticsStore.list_calls`; with ``q`` the full-text matches ranked best first."""
        filters = {
            "date_from": date_from,
            "date_to": date_to,
            "status": status,
            "intent": intent,
            "sentiment": sentiment,
            "agent_id": agent_id,
            "outcome": outcome,
            "category": category,
        }
        words = " ".join(dict.fromkeys(normalize_text(q).split()))
        if not words:
            sql, params = list_calls_sql(limit=limit, cursor=cursor, **filters)
            return page(self._query(sql, params), limit)
        offset = offset_cursor(cursor) if cursor else 0
        sql, params = list_calls_sql(limit=limit, **filters)
        base, _ = sql.split(f" {LIST_ORDER}", 1)
        tsq = "plainto_tsquery('spanish', ?)"
        joiner = " AND " if " WHERE " in base else " WHERE "
        ranked = (
            f"{base.replace(' FROM calls', f', ts_rank({TSV}, {tsq}) AS _rank FROM calls', 1)}"
            f"{joiner}{TSV} @@ {tsq}"
            " ORDER BY _rank DESC, call_start_utc DESC, recording_id DESC LIMIT ? OFFSET ?"
        )
        rows = self._query(ranked, [words, *params[:-1], words, limit + 1, offset])
        for r in rows:
            r.pop("_rank", None)
        if len(rows) <= limit:
            return rows, None
        return rows[:limit], encode_cursor_offset(offset + limit)

    def get_call(self, recording_id: str) -> dict[str, Any] | None:
        """See :meth:`AnalyticsStore.get_call`."""
        sql = f"SELECT {_CALL_COLUMNS} FROM calls WHERE recording_id = ? LIMIT 1"
        rows = self._query(sql, [recording_id])
        return rows[0] if rows else None

    def _aggregates(self, date_from: date | None, date_to: date | None) -> list[dict[str, Any]]:
        where, params = [], []
        if date_from is not None:
            where.append("call_date >= ?")
            params.append(date_from)
        if date_to is not None:
            where.append("call_date <= ?")
            params.append(date_to)
        sql = "SELECT doc FROM day_aggregates" + (f" WHERE {' AND '.join(where)}" if where else "")
        return [_json(r["doc"]) for r in self._query(sql + " ORDER BY call_date", params)]

    def dashboard(self, date_from: date | None = None, date_to: date | None = None) -> dict[str, Any]:
        """See :meth:`AnalyticsStore.dashboard`: merged from the per-day aggregates."""
        return dashboard_from(self._aggregates(date_from, date_to))

    def failed_total(self) -> int:
        """Failed calls over all days (per-day aggregates)."""
        rows = self._query("SELECT coalesce(sum((doc->>'failed')::bigint), 0) AS n FROM day_aggregates", [])
        return int(rows[0]["n"])

    def day_summary(self, call_date: str) -> dict[str, Any]:
        """See :meth:`AnalyticsStore.day_summary`: the day's aggregate."""
        day = date.fromisoformat(call_date)
        found = self._aggregates(day, day)
        return summary_from(call_date, found[0] if found else None)

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.closeall()


def _schema_version() -> str:
    """A digest of every table, column, key and index definition."""
    import hashlib

    ddl = [create_table_sql(t, c, "postgres", key=TABLE_KEYS[t]) for t, c in TABLES.items()]
    return hashlib.sha256("\n".join([*ddl, *_INDEXES]).encode()).hexdigest()[:16]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _primary_key(cur: Any, table: str) -> None:
    """Give ``table`` its primary key (tables made by an older version had none): duplicate rows
    an older version may have left are dropped first, keeping one."""
    cur.execute("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", [table])
    if cur.fetchone():
        return
    key = KEYS[table]
    cols = [k.strip() for k in key.split(",")]
    same = " AND ".join(f"a.{c} = b.{c}" for c in cols)
    cur.execute(f"DELETE FROM {table} a USING {table} b WHERE a.ctid < b.ctid AND {same}")
    if table == "entities":
        cur.execute(
            "UPDATE entities SET entity_index = -s.n FROM (SELECT ctid AS c, row_number() OVER () AS n"
            " FROM entities WHERE entity_index IS NULL) s WHERE entities.ctid = s.c"
        )
    cur.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({key})")


__all__ = ["AnalyticsQueryError", "PostgresAnalyticsStore"]
