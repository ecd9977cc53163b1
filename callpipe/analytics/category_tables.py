"""The categories' tables, the same in the embedded SQLite listing and in PostgreSQL.

- ``call_categories``: one row per call and matching category (primary key ``(category,
  recording_id)``): the rule ``version`` that matched, the ``turn_index`` where it matched, the
  ``matched`` words (normalised, from the redacted turn text) and the ``call_date``;
- ``category_rules``: the rule store: ``name`` (primary key), ``definition`` (YAML text),
  ``version`` (:attr:`~callpipe.categories.CategoryRule.version`), ``updated_at``;
- ``category_progress``: how far applying a category to history has got (``covered`` of
  ``total`` calls, ``state`` running / done / failed) for the rule ``version`` being applied.

Functions take a DB-API cursor of either backend inside the caller's transaction; SQL is written
with ``?`` and turned into psycopg2's ``%s`` for PostgreSQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from callpipe.analytics.queries import _date_where

MAX_NAME = 100

CALL_CATEGORIES_COLUMNS = [
    ("recording_id", "TEXT", "Recording id"),
    ("category", "TEXT", "Category name (primary key with recording_id)"),
    ("version", "TEXT", "Version of the rule that matched"),
    ("turn_index", "BIGINT", "Turn where the rule matched"),
    ("matched", "TEXT", "The words that matched (normalised, from the redacted turn text)"),
    ("call_date", "DATE", "Call date (partition)"),
]


def schema(postgres: bool) -> list[str]:
    """``CREATE TABLE/INDEX IF NOT EXISTS`` statements of the three tables."""
    day = "DATE" if postgres else "TEXT"
    return [
        "CREATE TABLE IF NOT EXISTS call_categories (recording_id TEXT NOT NULL, category TEXT NOT NULL,"
        f" version TEXT NOT NULL, turn_index BIGINT, matched TEXT, call_date {day} NOT NULL,"
        " PRIMARY KEY (category, recording_id))",
        "CREATE INDEX IF NOT EXISTS call_categories_by_call ON call_categories (recording_id)",
        "CREATE INDEX IF NOT EXISTS call_categories_by_day ON call_categories (call_date, category)",
        "CREATE TABLE IF NOT EXISTS category_rules (name TEXT PRIMARY KEY, definition TEXT NOT NULL,"
        " version TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS category_progress (name TEXT PRIMARY KEY, version TEXT NOT NULL,"
        " covered BIGINT NOT NULL, total BIGINT NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL)",
    ]




@contextlib.contextmanager
def empty_tables() -> Iterator[sqlite3.Connection]:
    """Empty category tables in memory: what a reader sees in a database that an older version
    made and no writer has migrated yet (the next writer adds the tables)."""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in schema(postgres=False):
            conn.execute(statement)
        yield conn
    finally:
        conn.close()


def _run(cur: Any, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
    if not isinstance(cur, sqlite3.Cursor | sqlite3.Connection):
        sql = sql.replace("?", "%s")
    result = cur.execute(sql, list(params))
    return cur if result is None else result  # psycopg2's execute returns None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def put_rule(cur: Any, name: str, definition: str, version: str) -> None:
    """Upsert a rule (its YAML text and version)."""
    _run(
        cur,
        "INSERT INTO category_rules (name, definition, version, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,"
        " version = excluded.version, updated_at = excluded.updated_at",
        [name, definition, version, _now()],
    )


def rules(cur: Any, name: str | None = None) -> list[dict[str, Any]]:
    """Stored rules (``name``, ``definition``, ``version``, ``updated_at``), by name; one when named."""
    sql = "SELECT name, definition, version, updated_at FROM category_rules"
    params = [name] if name is not None else []
    rows = _run(cur, sql + (" WHERE name = ?" if name is not None else "") + " ORDER BY name", params)
    names = ("name", "definition", "version", "updated_at")
    return [dict(zip(names, r, strict=True)) for r in rows.fetchall()]


def delete_category(cur: Any, name: str) -> bool:
    """Remove a rule, every call's match of it and its progress; whether the rule existed."""
    found = _run(cur, "DELETE FROM category_rules WHERE name = ?", [name]).rowcount > 0
    _run(cur, "DELETE FROM call_categories WHERE category = ?", [name])
    _run(cur, "DELETE FROM category_progress WHERE name = ?", [name])
    return found


def _insert_matches(cur: Any, rows: list[dict[str, Any]]) -> None:
    sql = (
        "INSERT INTO call_categories (recording_id, category, version, turn_index, matched, call_date)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (category, recording_id) DO UPDATE SET"
        " version = excluded.version, turn_index = excluded.turn_index, matched = excluded.matched,"
        " call_date = excluded.call_date"
    )
    values = [
        [r["recording_id"], r["category"], r["version"], r["turn_index"], r["matched"], r["call_date"]]
        for r in rows
    ]
    if not values:
        return
    if isinstance(cur, sqlite3.Cursor | sqlite3.Connection):
        cur.executemany(sql, values)
    else:
        from psycopg2.extras import execute_batch

        execute_batch(cur, sql.replace("?", "%s"), values, page_size=1000)


def replace_category_day(cur: Any, name: str, day: str, rows: list[dict[str, Any]]) -> None:
    """One category's matches on one call date become ``rows``."""
    _run(cur, "DELETE FROM call_categories WHERE category = ? AND call_date = ?", [name, day])
    _insert_matches(cur, rows)


def replace_calls_matches(cur: Any, day: str, ids: list[str], rows: list[dict[str, Any]]) -> None:
    """Every category's matches of a day's calls (``ids``, the day's calls) become ``rows``."""
    _run(cur, "DELETE FROM call_categories WHERE call_date = ?", [day])
    delete_matches_of(cur, ids)
    _insert_matches(cur, rows)


def delete_matches_of(cur: Any, ids: list[str]) -> None:
    """Remove the matches of these calls (an erasure, a call moved to another day)."""
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        _run(cur, f"DELETE FROM call_categories WHERE recording_id IN ({','.join('?' * len(chunk))})", chunk)


def matches_of(cur: Any, recording_id: str) -> list[dict[str, Any]]:
    """The categories a call matches: ``category``, ``version``, ``turn_index``, ``matched`` (list)."""
    rows = _run(
        cur,
        "SELECT category, version, turn_index, matched FROM call_categories WHERE recording_id = ?"
        " ORDER BY category",
        [recording_id],
    ).fetchall()
    return [
        {"category": c, "version": v, "turn_index": t, "matched": (m or "").split()} for c, v, t, m in rows
    ]


def counts_by_day(cur: Any, date_from: date | None, date_to: date | None) -> list[dict[str, Any]]:
    """Calls per category and call date (``call_date`` ISO text, ``category``, ``calls``)."""
    where, dates = _date_where(date_from, date_to)
    params = [d.isoformat() for d in dates]
    sql = "SELECT call_date, category, count(*) FROM call_categories"
    sql += (f" WHERE {' AND '.join(where)}" if where else "") + " GROUP BY 1, 2 ORDER BY 1, 2"
    return [{"call_date": str(d), "category": c, "calls": int(n)} for d, c, n in _run(cur, sql, params)]


def set_progress(cur: Any, name: str, version: str, covered: int, total: int, state: str) -> None:
    """Record how far applying ``name`` (at ``version``) to history has got."""
    _run(
        cur,
        "INSERT INTO category_progress (name, version, covered, total, state, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET version = excluded.version,"
        " covered = excluded.covered, total = excluded.total, state = excluded.state,"
        " updated_at = excluded.updated_at",
        [name, version, covered, total, state, _now()],
    )


def progress(cur: Any, name: str) -> dict[str, Any] | None:
    """The progress row of ``name`` (``version``, ``covered``, ``total``, ``state``, ``updated_at``)."""
    row = _run(
        cur,
        "SELECT version, covered, total, state, updated_at FROM category_progress WHERE name = ?",
        [name],
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("version", "covered", "total", "state", "updated_at"), row, strict=True))
