"""SQL shared by the DuckDB and PostgreSQL backends (``?`` placeholders; PostgreSQL swaps them).

Both backends expose the same three tables (``calls``, ``turns``, ``entities``); only the
type names differ (:func:`sql_type`). Keyset pagination orders calls newest first by
``(call_start_utc, recording_id)``; the cursor is that pair, base64url JSON, opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime
from typing import Any, Literal

from callpipe.analytics.columns import LIST_COLUMNS, TABLES, Column, normalize_text

Dialect = Literal["duckdb", "postgres"]

_TYPES: dict[Dialect, dict[str, str]] = {
    "duckdb": {"TEXT[]": "VARCHAR[]", "TEXT": "VARCHAR"},
    "postgres": {"DOUBLE": "DOUBLE PRECISION", "JSON": "JSONB"},
}
JSON_COLUMNS = {name for cols in TABLES.values() for name, kind, _ in cols if kind == "JSON"}


class AnalyticsQueryError(ValueError):
    """A bad argument to a query (e.g. a malformed cursor or an unknown status); one-line message."""


def sql_type(portable: str, dialect: Dialect) -> str:
    """The backend's name for a portable column type."""
    return _TYPES[dialect].get(portable, portable)


TABLE_KEYS = {
    "calls": "recording_id",
    "turns": "recording_id, turn_index",
    "entities": "recording_id, entity_index",
}
"""The primary key of each analytics table (one ``calls`` row per recording)."""


def create_table_sql(table: str, columns: list[Column], dialect: Dialect, *, key: str | None = None) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one of the analytics tables (with ``key`` as its
    primary key when given)."""
    body = ", ".join(f"{name} {sql_type(kind, dialect)}" for name, kind, _ in columns)
    if key:
        body += f", PRIMARY KEY ({key})"
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


def encode_cursor(call_start: datetime, recording_id: str) -> str:
    """An opaque cursor for the call after ``(call_start, recording_id)`` in list order."""
    raw = json.dumps([call_start.isoformat(), recording_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(call_start, recording_id)`` pair of a cursor; :class:`AnalyticsQueryError` if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        start, recording_id = json.loads(raw)
        when = datetime.fromisoformat(start)
        if when.tzinfo is None or not isinstance(recording_id, str):
            raise ValueError(cursor)
        return when, recording_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise AnalyticsQueryError("invalid cursor: pass the next_cursor of a previous page") from None


def encode_cursor_offset(offset: int) -> str:
    """The cursor of a ranked search page (its offset)."""
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(["rank", offset]).encode()).decode().rstrip("=")


def offset_cursor(cursor: str) -> int:
    """The offset of a ranked search page's cursor; :class:`AnalyticsQueryError` if malformed."""
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


STATUSES = ("processed", "pending", "failed")
CATEGORY_FILTER = "recording_id IN (SELECT recording_id FROM call_categories WHERE category = ?)"
"""The ``WHERE`` clause of ``GET /recordings?category=NAME`` (one parameter: the name; the
``call_categories`` table is :mod:`callpipe.analytics.category_tables`')."""
LIST_ORDER = "ORDER BY call_start_utc DESC, recording_id DESC"


def list_calls_sql(
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
    select: str | None = None,
    category: str | None = None,
) -> tuple[str, list[Any]]:
    """SQL and parameters of one page of the call list (``limit + 1`` rows, to know if more follow);
    ``select`` replaces the list columns (DuckDB selects ``rowid`` first, then the rows)."""
    if not 1 <= limit <= 1000:
        raise AnalyticsQueryError(f"limit must be 1..1000, got {limit}")
    if status is not None and status not in STATUSES:
        raise AnalyticsQueryError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    where, params = _date_where(date_from, date_to)
    for column, value in (
        ("status", status),
        ("primary_intent", intent),
        ("sentiment_label", sentiment),
        ("agent_id", agent_id),
        ("outcome", outcome),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if category is not None:
        where.append(CATEGORY_FILTER)
        params.append(category)
    for term in dict.fromkeys(normalize_text(q).split()):
        where.append("search_text LIKE ?")  # a normalised term holds no LIKE wildcard
        params.append(f"%{term}%")
    if cursor:
        start, recording_id = decode_cursor(cursor)
        where.append("(call_start_utc < ? OR (call_start_utc = ? AND recording_id < ?))")
        params += [start, start, recording_id]
    sql = (
        f"SELECT {select or ', '.join(LIST_COLUMNS)} FROM calls"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" {LIST_ORDER} LIMIT ?"
    )
    return sql, [*params, limit + 1]


def _date_where(date_from: date | None, date_to: date | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if date_from is not None:
        where.append("call_date >= ?")
        params.append(date_from)
    if date_to is not None:
        where.append("call_date <= ?")
        params.append(date_to)
    return where, params


def page(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """The first ``limit`` rows and the cursor of the next page (``None`` on the last page)."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last["call_start_utc"], last["recording_id"])


def dashboard_sql(date_from: date | None, date_to: date | None) -> dict[str, tuple[str, list[Any]]]:
    """The dashboard's queries by part name."""
    where, params = _date_where(date_from, date_to)
    w = f" WHERE {' AND '.join(where)}" if where else ""
    a = f"{w} AND" if where else " WHERE"
    return {
        "per_day": (
            "SELECT call_date, count(*) AS calls,"
            " sum(CASE WHEN status = 'processed' THEN 1 ELSE 0 END) AS processed,"
            " sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending,"
            " sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,"
            " avg(CASE WHEN status = 'processed' THEN live_wer_estimate END) AS avg_live_wer,"
            " avg(offline_wer_estimate) AS avg_offline_wer,"
            " sum(talk_seconds) AS talk_seconds, sum(silence_seconds) AS silence_seconds,"
            " sum(CASE WHEN retranscribed THEN 1 ELSE 0 END) AS retranscribed,"
            " sum(online_corrections) AS online_corrections,"
            " sum(offline_corrections) AS offline_corrections"
            f" FROM calls{w} GROUP BY call_date ORDER BY call_date",
            params,
        ),
        "sentiment_by_day": (
            "SELECT call_date, sentiment_label AS label, count(*) AS calls"
            f" FROM calls{a} sentiment_label IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
            params,
        ),
        "intent_by_day": (
            "SELECT call_date, primary_intent AS intent, count(*) AS calls"
            f" FROM calls{a} primary_intent IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
            params,
        ),
        "top_topics": (
            "SELECT topic, count(*) AS calls FROM"
            f" (SELECT unnest(topics) AS topic FROM calls{w}) AS t"
            " GROUP BY topic ORDER BY calls DESC, topic LIMIT 10",
            params,
        ),
        "by_agent": (
            "SELECT agent_id, count(*) AS calls, avg(sentiment_score) AS avg_sentiment,"
            " avg(duration_seconds) AS avg_duration_seconds"
            f" FROM calls{a} agent_id IS NOT NULL GROUP BY agent_id ORDER BY calls DESC, agent_id LIMIT 20",
            params,
        ),
        "slowest": (
            "SELECT recording_id, processing_seconds AS seconds, retranscribed"
            f" FROM calls{a} processing_seconds IS NOT NULL"
            " ORDER BY processing_seconds DESC, recording_id LIMIT 10",
            params,
        ),
    }


def day_totals_sql() -> tuple[str, list[str]]:
    """One row of day counts and means for :meth:`AnalyticsStore.day_summary` (parameter: the date)."""
    return (
        "SELECT count(*) AS recordings,"
        " coalesce(sum(CASE WHEN status = 'processed' THEN 1 ELSE 0 END), 0) AS processed,"
        " coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,"
        " coalesce(sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,"
        " coalesce(sum(CASE WHEN status = 'processed' AND retranscribed THEN 1 ELSE 0 END), 0)"
        " AS retranscribed,"
        " avg(CASE WHEN status = 'processed' THEN live_wer_estimate END) AS estimated_wer_before,"
        " avg(offline_wer_estimate) AS estimated_wer_after,"
        " avg(CASE WHEN offline_wer_measured IS NOT NULL THEN live_wer_measured END)"
        " AS measured_wer_before,"
        " avg(offline_wer_measured) AS measured_wer_after,"
        " count(offline_wer_measured) AS measured_calls,"
        " coalesce(sum(online_corrections), 0) AS online_corrections,"
        " coalesce(sum(offline_corrections), 0) AS offline_corrections,"
        " sum(talk_seconds) AS talk_seconds, sum(silence_seconds) AS silence_seconds"
        " FROM calls WHERE call_date = ?",
        ["day"],
    )


DAY_PARTS = {
    "sentiment": "SELECT sentiment_label AS label, count(*) AS calls FROM calls"
    " WHERE call_date = ? AND sentiment_label IS NOT NULL GROUP BY 1 ORDER BY calls DESC, label",
    "intents": "SELECT primary_intent AS intent, count(*) AS calls FROM calls"
    " WHERE call_date = ? AND primary_intent IS NOT NULL GROUP BY 1 ORDER BY calls DESC, intent",
    "slowest": "SELECT recording_id, processing_seconds AS seconds, retranscribed FROM calls"
    " WHERE call_date = ? AND processing_seconds IS NOT NULL"
    " ORDER BY processing_seconds DESC, recording_id LIMIT 5",
    "failures": "SELECT recording_id, error FROM calls WHERE call_date = ? AND status = 'failed'"
    " ORDER BY recording_id LIMIT 20",
}


def round_floats(row: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    """``row`` with floats rounded (means come back with many digits) and decimals made floats."""
    out = {}
    for key, value in row.items():
        if isinstance(value, float):
            value = round(value, digits)
        elif type(value).__name__ == "Decimal":
            value = float(value) if value % 1 else int(value)
        out[key] = value
    return out


def decode_json_columns(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns as Python objects (DuckDB returns their text)."""
    for key in JSON_COLUMNS & row.keys():
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


class SqlReads:
    """The read queries both backends run the same way; a backend supplies :meth:`_query` (SQL
    with ``?`` placeholders -> rows as dicts, in a read snapshot of its own)."""

    def _query(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def call_turns(self, recording_id: str) -> list[dict[str, Any]]:
        """See :meth:`AnalyticsStore.call_turns`."""
        return self._query(
            'SELECT *, start_seconds AS "start", end_seconds AS "end" FROM turns'
            " WHERE recording_id = ? ORDER BY start_seconds, turn_index",
            [recording_id],
        )

    def call_entities(self, recording_id: str) -> list[dict[str, Any]]:
        """See :meth:`AnalyticsStore.call_entities`."""
        return self._query(
            "SELECT * FROM entities WHERE recording_id = ? ORDER BY turn_index NULLS LAST, category, kind",
            [recording_id],
        )

    def dashboard(self, date_from: date | None = None, date_to: date | None = None) -> dict[str, Any]:
        """See :meth:`AnalyticsStore.dashboard`."""
        return {
            part: [round_floats(r) for r in self._query(sql, params)]
            for part, (sql, params) in dashboard_sql(date_from, date_to).items()
        }

    def day_summary(self, call_date: str) -> dict[str, Any]:
        """See :meth:`AnalyticsStore.day_summary`."""
        day = date.fromisoformat(call_date)
        sql, _ = day_totals_sql()
        summary = round_floats(self._query(sql, [day])[0])
        for part, part_sql in DAY_PARTS.items():
            summary[part] = [round_floats(r) for r in self._query(part_sql, [day])]
        return summary
