"""The embedded store's SQLite side (``ROOT/listing.sqlite``, standard library): what the API
reads on every request, indexed, so that no request depends on how much history exists.

- ``calls``: one row per ``recording_id`` (PRIMARY KEY) with the list columns, indexed on the
  list order and on each filter column;
- ``calls_fts``: an FTS5 index (``unicode61 remove_diacritics 2``) over each call's redacted
  words, ``rowid`` = the ``calls`` row's; searches are ranked by ``bm25``;
- ``day_aggregates``: the per-day aggregate documents (:mod:`callpipe.analytics.aggregates`);
- ``erased``: the tombstone of erased recording ids (and the call date their rows were filed
  under, so that a check or a retry opens that day's files only); a day write drops them in the
  same lock.
- ``call_categories``, ``category_rules``, ``category_progress``: the categories stage
  (:mod:`callpipe.analytics.category_tables`).

WAL journal: readers never block the writer nor the reverse; writers are serialised by the
store's lock file (:mod:`callpipe.analytics.duck`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from callpipe.analytics import category_tables
from callpipe.analytics.columns import CALLS_COLUMNS, LIST_COLUMNS, normalize_text

FILTERS = {
    "status": "status",
    "intent": "primary_intent",
    "sentiment": "sentiment_label",
    "agent_id": "agent_id",
    "outcome": "outcome",
}
_KINDS = {name: kind for name, kind, _ in CALLS_COLUMNS}

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS calls (recording_id TEXT PRIMARY KEY, call_date TEXT NOT NULL,"
    " start_us INTEGER NOT NULL, status TEXT, primary_intent TEXT, sentiment_label TEXT,"
    " agent_id TEXT, row TEXT NOT NULL, outcome TEXT)",
    "CREATE INDEX IF NOT EXISTS calls_order ON calls (start_us DESC, recording_id DESC)",
    "CREATE INDEX IF NOT EXISTS calls_date ON calls (call_date, start_us)",
    *(
        f"CREATE INDEX IF NOT EXISTS calls_{col} ON calls ({col}, start_us DESC, recording_id DESC)"
        for col in FILTERS.values()
    ),
    "CREATE VIRTUAL TABLE IF NOT EXISTS calls_fts USING fts5(body, tokenize='unicode61 remove_diacritics 2')",
    "CREATE TABLE IF NOT EXISTS day_aggregates (call_date TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS erased (recording_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL,"
    " call_date TEXT)",
    *category_tables.schema(postgres=False),
)


def _add_outcome_column(conn: sqlite3.Connection) -> None:
    """A listing made before the outcome filter gets the column, filled from each row's document."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    if "outcome" not in columns:
        conn.execute("ALTER TABLE calls ADD COLUMN outcome TEXT")
        conn.execute("UPDATE calls SET outcome = json_extract(row, '$.outcome')")


def start_us(value: Any) -> int:
    """Microseconds since the epoch of a call start (a datetime or ISO text)."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds


def _encode(row: dict[str, Any]) -> str:
    return json.dumps({k: row.get(k) for k in LIST_COLUMNS}, default=str, separators=(",", ":"))


def decode_row(text: str) -> dict[str, Any]:
    """A listing row with the types the Parquet/PostgreSQL rows have (datetimes, dates, JSON)."""
    row = json.loads(text)
    for key, value in row.items():
        if value is None:
            continue
        kind = _KINDS.get(key)
        if kind == "TIMESTAMPTZ":
            row[key] = datetime.fromisoformat(value)
        elif kind == "DATE":
            row[key] = date.fromisoformat(value)
        elif kind == "JSON" and isinstance(value, str):
            row[key] = json.loads(value)
    return row


def fts_query(q: str | None) -> str | None:
    """The FTS5 expression of a search: every normalised word, each quoted (implicit AND)."""
    words = list(dict.fromkeys(normalize_text(q).split()))
    return " ".join(f'"{w}"' for w in words) if words else None


class Listing:
    """The SQLite database at ``path``; one connection per thread (opened read-only when asked)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        if not read_only:
            conn = self.conn()
            conn.execute("PRAGMA journal_mode=WAL")
            with conn:
                conn.execute(SCHEMA[0])
                _add_outcome_column(conn)
                for statement in SCHEMA[1:]:
                    conn.execute(statement)
                if "call_date" not in {row[1] for row in conn.execute("PRAGMA table_info(erased)")}:
                    conn.execute("ALTER TABLE erased ADD COLUMN call_date TEXT")

    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.read_only:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            else:
                conn = sqlite3.connect(self.path, timeout=30)
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-16000")  # 16 MB page cache per connection
            self._local.conn = conn
        return conn

    def exists(self) -> bool:
        """Whether the database has been created."""
        return self.path.is_file()

    # --- writing (the caller holds the store's lock and commits) --------------------------------

    def erased_among(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are in the tombstone."""
        ids = list(ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in self.conn().execute(
                    f"SELECT recording_id FROM erased WHERE recording_id IN ({marks})", chunk
                )
            )
        return found

    def days_of(self, ids: Iterable[str]) -> dict[str, str]:
        """``recording_id -> call_date`` of those of ``ids`` listed."""
        ids = list(ids)
        out: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                self.conn()
                .execute(f"SELECT recording_id, call_date FROM calls WHERE recording_id IN ({marks})", chunk)
                .fetchall()
            )
        return out

    def replace_day(
        self, conn: sqlite3.Connection, day: str, calls: list[dict[str, Any]], aggregate: dict[str, Any]
    ) -> None:
        """In ``conn``'s open transaction: the day's listing rows, search rows and aggregate become these."""
        ids = [str(r["recording_id"]) for r in calls]
        conn.execute(
            "DELETE FROM calls_fts WHERE rowid IN (SELECT rowid FROM calls WHERE call_date = ?)", [day]
        )
        conn.execute("DELETE FROM calls WHERE call_date = ?", [day])
        self.delete_ids(conn, ids)
        for r in calls:
            cur = conn.execute(
                "INSERT INTO calls (recording_id, call_date, start_us, status, primary_intent,"
                " sentiment_label, agent_id, row, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    r["recording_id"],
                    day,
                    start_us(r["call_start_utc"]),
                    r.get("status"),
                    r.get("primary_intent"),
                    r.get("sentiment_label"),
                    r.get("agent_id"),
                    _encode(r),
                    r.get("outcome"),
                ],
            )
            conn.execute(
                "INSERT INTO calls_fts (rowid, body) VALUES (?, ?)",
                [cur.lastrowid, r.get("search_text") or ""],
            )
        self.put_aggregate(conn, day, aggregate)

    def delete_ids(self, conn: sqlite3.Connection, ids: list[str]) -> int:
        """Remove these ids' listing and search rows (in ``conn``'s transaction); how many were listed."""
        removed = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            conn.execute(
                "DELETE FROM calls_fts WHERE rowid IN"
                f" (SELECT rowid FROM calls WHERE recording_id IN ({marks}))",
                chunk,
            )
            removed += conn.execute(f"DELETE FROM calls WHERE recording_id IN ({marks})", chunk).rowcount
        category_tables.delete_matches_of(conn, ids)
        return removed

    def put_aggregate(self, conn: sqlite3.Connection, day: str, aggregate: dict[str, Any]) -> None:
        """Upsert one day's aggregate document."""
        conn.execute(
            "INSERT INTO day_aggregates (call_date, doc) VALUES (?, ?)"
            " ON CONFLICT (call_date) DO UPDATE SET doc = excluded.doc",
            [day, json.dumps(aggregate, default=str)],
        )

    def tombstone(self, conn: sqlite3.Connection, recording_id: str, call_date: str | None) -> None:
        """Add an id to the tombstone, with the call date its rows are filed under when known."""
        conn.execute(
            "INSERT INTO erased (recording_id, erased_at, call_date) VALUES (?, ?, ?)"
            " ON CONFLICT (recording_id)"
            " DO UPDATE SET call_date = coalesce(excluded.call_date, erased.call_date)",
            [recording_id, datetime.now(UTC).isoformat(timespec="seconds"), call_date],
        )

    def erased_day(self, recording_id: str) -> str | None:
        """The call date an erased id's rows were filed under (``None``: not erased, or unknown)."""
        return self._call_date("erased", recording_id)

    # --- reading ---------------------------------------------------------------------------------

    def day_of(self, recording_id: str) -> str | None:
        """The call date of a listed recording."""
        return self._call_date("calls", recording_id)

    def _call_date(self, table: str, recording_id: str) -> str | None:
        sql = f"SELECT call_date FROM {table} WHERE recording_id = ?"
        row = self.conn().execute(sql, [recording_id]).fetchone()
        return row[0] if row else None

    def get(self, recording_id: str) -> dict[str, Any] | None:
        """The listing row of a recording."""
        row = self.conn().execute("SELECT row FROM calls WHERE recording_id = ?", [recording_id]).fetchone()
        return decode_row(row[0]) if row else None

    def aggregates(self, date_from: date | None, date_to: date | None) -> list[dict[str, Any]]:
        """The aggregate documents of the days in range, in date order."""
        where, params = [], []
        if date_from is not None:
            where.append("call_date >= ?")
            params.append(date_from.isoformat())
        if date_to is not None:
            where.append("call_date <= ?")
            params.append(date_to.isoformat())
        sql = "SELECT doc FROM day_aggregates" + (f" WHERE {' AND '.join(where)}" if where else "")
        return [json.loads(r[0]) for r in self.conn().execute(sql + " ORDER BY call_date", params)]

    def search(
        self,
        where: list[str],
        params: list[Any],
        match: str | None,
        limit: int,
        offset: int,
        after: tuple[int, str] | None,
    ) -> list[dict[str, Any]]:
        """``limit`` listing rows: newest first (keyset ``after``), or by ``bm25`` rank with ``match``."""
        clauses, args = list(where), list(params)
        if match is not None:
            # rank the matches by their keys alone, then read the rows of the page: the sorter
            # never carries the listing row of every match
            ranked = (
                "SELECT c.rowid AS id, bm25(calls_fts) AS score, c.start_us AS s, c.recording_id AS r"
                " FROM calls_fts JOIN calls AS c ON c.rowid = calls_fts.rowid WHERE calls_fts MATCH ?"
                + "".join(f" AND c.{c}" for c in clauses)
                + " ORDER BY score, s DESC, r DESC LIMIT ? OFFSET ?"
            )
            args.insert(0, match)
            args += [limit, offset]
            sql = (
                f"SELECT c.row FROM ({ranked}) AS page JOIN calls AS c ON c.rowid = page.id"
                " ORDER BY page.score, page.s DESC, page.r DESC"
            )
        else:
            if after is not None:
                clauses.append("(start_us < ? OR (start_us = ? AND recording_id < ?))")
                args += [after[0], after[0], after[1]]
            sql = "SELECT row FROM calls" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
            sql += " ORDER BY start_us DESC, recording_id DESC LIMIT ?"
            args.append(limit)
        return [decode_row(r[0]) for r in self.conn().execute(sql, args)]

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
