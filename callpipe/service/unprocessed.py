"""Calls the catalog holds and the analytics tables do not yet: merged into the call list and the dashboard.

A call is in the catalog (:mod:`callpipe.catalog`) from its 201; its ``calls`` row is written when
its day is processed. Until then the list and the dashboard take it from the catalog's unprocessed
rows, read newest first through the catalog's queue index (never the history), so that a call
that got its 201 is listed as ``pending`` at once and the dashboard's pending count is the one
``/processing/stats`` gives (unprocessed in the catalog minus failed in the tables).

A catalog row knows ids, time, date and state, nothing of the analysis: it joins a list with no
text search (``q``) and no intent, sentiment, agent or outcome filter, and ``status`` maps to the
tables' words (``failed``; ``pending`` for pending and processing). When a call is in both, the
table row is shown. Half-saved (``saving``) and erasing rows are never listed or counted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from callpipe.catalog import Catalog, Row
from callpipe.storage import RecordingStore

TABLE_ONLY_FILTERS = ("intent", "sentiment", "agent_id", "outcome", "q")
_COUNTS = ("calls", "processed", "pending", "failed")


def catalog_of(store: RecordingStore) -> Catalog | None:
    """The store's catalog, None when the catalog is off."""
    catalog = getattr(store, "catalog", None)
    return catalog if isinstance(catalog, Catalog) else None


def _status(row: Row) -> str:
    return "failed" if row.status == "failed" else "pending"


def _as_call(row: Row) -> dict[str, Any]:
    """A ``calls``-shaped row of what the catalog knows (every analysis column None)."""
    from callpipe.analytics import CALLS_COLUMNS

    call: dict[str, Any] = dict.fromkeys(name for name, _, _ in CALLS_COLUMNS)
    call.update(
        recording_id=row.recording_id,
        conversation_id=row.conversation_id,
        call_start_utc=row.timestamp,
        call_date=date.fromisoformat(row.call_date),
        status=_status(row),
    )
    return call


def _key(call: dict[str, Any]) -> tuple[datetime, str]:
    start = call["call_start_utc"]
    if isinstance(start, str):
        start = datetime.fromisoformat(start)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start, call["recording_id"]


def list_with_catalog(
    tables: Any, store: RecordingStore, *, limit: int, cursor: str | None, **filters: Any
) -> tuple[list[dict[str, Any]], str | None]:
    """``tables.list_calls(...)`` with the catalog's unprocessed calls merged in, newest first.

    Both sides are read ``limit`` (+1) rows after the cursor and merged by (start, id) descending:
    the first ``limit`` calls of the merged order are always among them, so paging stays exact.
    """
    items, next_cursor = tables.list_calls(limit=limit, cursor=cursor, **filters)
    catalog = catalog_of(store)
    status = filters.get("status")
    if catalog is None or status == "processed" or any(filters.get(k) for k in TABLE_ONLY_FILTERS):
        return items, next_cursor
    from callpipe.analytics.queries import decode_cursor, encode_cursor

    before = None
    if cursor:
        start, rid = decode_cursor(cursor)
        before = (start.astimezone(UTC).isoformat(), rid)
    date_from, date_to = filters.get("date_from"), filters.get("date_to")
    rows = catalog.unprocessed_newest(
        date_from=date_from.isoformat() if date_from else None,
        date_to=date_to.isoformat() if date_to else None,
        failed=None if status is None else status == "failed",
        before=before,
        limit=limit + 1,
    )
    shown = {call["recording_id"] for call in items}
    merged = sorted(
        [*items, *(_as_call(r) for r in rows if r.recording_id not in shown)], key=_key, reverse=True
    )
    page = merged[:limit]
    if not page or (len(merged) <= limit and next_cursor is None):
        return page, None
    return page, encode_cursor(*_key(page[-1]))


def dashboard_with_catalog(
    data: dict[str, Any], store: RecordingStore, date_from: date | None, date_to: date | None
) -> dict[str, Any]:
    """The dashboard's per-day counts with each day's pending taken from the catalog: unprocessed
    recordings of the day minus its failed calls (the tables'), as ``/processing/stats`` counts;
    a day whose calls are all still unprocessed gets its row."""
    catalog = catalog_of(store)
    if catalog is None:
        return data
    unprocessed = catalog.unprocessed_by_day(
        date_from.isoformat() if date_from else None, date_to.isoformat() if date_to else None
    )
    days = {str(d["call_date"]): d for d in data["per_day"]}
    for day in unprocessed.keys() - days.keys():
        days[day] = {"call_date": date.fromisoformat(day), **dict.fromkeys(_COUNTS, 0)}
    for day, entry in days.items():
        pending = max(unprocessed.get(day, 0) - int(entry.get("failed") or 0), 0)
        entry["calls"] = int(entry.get("calls") or 0) + pending - int(entry.get("pending") or 0)
        entry["pending"] = pending
    per_day = sorted((d for d in days.values() if d["calls"]), key=lambda d: str(d["call_date"]))
    return {**data, "per_day": per_day}
