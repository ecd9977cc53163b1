"""The embedded store's side of the categories stage: the category tables live in the SQLite
listing (``ROOT/listing.sqlite``), written under the store's write lock; a day's inputs come from
the listing (intent, sentiment, outcome) and the day's ``turns`` and ``entities`` Parquet files."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from callpipe.analytics import category_tables
from callpipe.analytics.categorize import CategoryTablesMixin, Rows


class ParquetCategories(CategoryTablesMixin):
    """Category methods of :class:`~callpipe.analytics.duck.ParquetAnalyticsStore`."""

    listing: Any
    _locked: Any
    _read: Any
    day_path: Any

    @contextlib.contextmanager
    def _category_tx(self) -> Iterator[Any]:
        with self._locked():
            conn = self.listing.conn()
            with conn:
                yield conn

    @contextlib.contextmanager
    def _category_read(self) -> Iterator[Any]:
        try:
            conn = self.listing.conn()
        except FileNotFoundError:  # no day written yet: no categories, no matches
            conn = None
        found = (
            conn is not None
            and conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'category_rules'").fetchone()
        )
        if found:
            yield conn
            return
        with category_tables.empty_tables() as empty:  # a listing from before categories, read-only
            yield empty

    def category_days(self) -> list[tuple[str, int]]:
        """See :meth:`CategoryTablesMixin.category_days` (from the listing's indexed dates)."""
        sql = "SELECT call_date, count(*) FROM calls WHERE status = 'processed' GROUP BY 1 ORDER BY 1"
        return [(d, int(n)) for d, n in self.listing.conn().execute(sql)]

    def category_inputs(self, day: str) -> tuple[Rows, Rows, Rows]:
        """See :meth:`CategoryTablesMixin.category_inputs`."""
        cur = self.listing.conn().execute(
            "SELECT recording_id, status, primary_intent, sentiment_label, outcome,"
            " json_extract(row, '$.silence_seconds'), json_extract(row, '$.talk_seconds') FROM calls"
            " WHERE call_date = ? AND status = 'processed'",
            [day],
        )
        names = ("recording_id", "status", "primary_intent", "sentiment_label", "outcome")
        names += ("silence_seconds", "talk_seconds")
        calls = [dict(zip(names, r, strict=True)) for r in cur]
        turns = self._read(self.day_path("turns", day))
        entities = self._read(self.day_path("entities", day))
        return calls, turns, entities
