"""The analytics store interface and :func:`open_analytics_store`, which picks the backend.

``CALLPIPE_ANALYTICS_DB`` (read when a store is opened, never at import):

- unset or empty: embedded, Parquet files per day under ``analytics/`` beside the recording
  store's local root (``STORAGE_LOCAL_PATH``, default ``./data/recordings`` -> ``./data/analytics``),
  queried through DuckDB (:mod:`callpipe.analytics.duck`);
- a directory path, or ``duckdb:///path/to/dir``: the same, in that directory;
- ``postgresql://...`` or ``postgresql+psycopg2://...``: PostgreSQL (:mod:`callpipe.analytics.postgres`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

ANALYTICS_ENV = "CALLPIPE_ANALYTICS_DB"
DEFAULT_DIRNAME = "analytics"


@runtime_checkable
class AnalyticsStore(Protocol):
    """The ``calls``, ``turns`` and ``entities`` tables: written a day at a time, read by anyone."""

    def replace_day(
        self,
        call_date: str,
        calls: list[dict[str, Any]],
        turns: list[dict[str, Any]],
        entities: list[dict[str, Any]],
    ) -> None:
        """Make the day's rows exactly these (idempotent; readers see the old or the new day)."""
        ...

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
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of calls, newest first, and the next page's cursor (``None`` at the end).

        ``q``: every word must appear in the redacted transcript (case and accents ignored).
        """
        ...

    def get_call(self, recording_id: str) -> dict[str, Any] | None:
        """The ``calls`` row of a recording (with its redacted transcript), or ``None``."""
        ...

    def call_turns(self, recording_id: str) -> list[dict[str, Any]]:
        """The call's turns in order (keys ``start``/``end`` mirror ``start_seconds``/``end_seconds``)."""
        ...

    def call_entities(self, recording_id: str) -> list[dict[str, Any]]:
        """The call's entities (masked values)."""
        ...

    def dashboard(self, date_from: date | None = None, date_to: date | None = None) -> dict[str, Any]:
        """Per-day counts and means, sentiment and intent by day, top topics, agents, slowest calls."""
        ...

    def day_summary(self, call_date: str) -> dict[str, Any]:
        """Counts, WER before/after, distributions and slowest calls of one call date."""
        ...

    def remove_recording(self, recording_id: str) -> bool:
        """Remove every row of one recording (erasure); whether there were any."""
        ...

    def has_rows(self, recording_id: str) -> bool:
        """Whether any table, index or search row of the recording remains (erasure's check)."""
        ...

    def failed_total(self) -> int:
        """Failed calls over every day (from the per-day aggregates)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class AnalyticsConfigError(ValueError):
    """``CALLPIPE_ANALYTICS_DB`` names something that is not a usable store (one-line message)."""


def default_root(environ: Mapping[str, str] | None = None, local_root: str | Path | None = None) -> Path:
    """``analytics/`` beside the local recording store: ``local_root`` when given (a store's
    root), else ``STORAGE_LOCAL_PATH`` (default ``./data/recordings``)."""
    env = os.environ if environ is None else environ
    local = local_root or env.get("STORAGE_LOCAL_PATH") or "./data/recordings"
    return Path(local).expanduser().absolute().parent / DEFAULT_DIRNAME


def store_local_root(store: object) -> Path | None:
    """The local root of a recording store (local or mirrored), ``None`` for S3 only."""
    for candidate in (store, getattr(store, "local", None)):
        root = getattr(candidate, "root", None)
        if isinstance(root, Path):
            return root
    return None


def s3_location(store: object) -> tuple[Path, Any] | None:
    """For an S3-only recording store: the local directory of its tables (beside its staging
    cache, one per bucket and prefix, never the working directory) and the bucket mirror the day
    files are copied to (``s3://BUCKET/PREFIX/analytics/...``); ``None`` for other stores."""
    base = getattr(store, "s3", store)
    bucket, cache_dir = getattr(base, "bucket", None), getattr(base, "cache_dir", None)
    if store_local_root(store) is not None or not isinstance(bucket, str) or not isinstance(cache_dir, Path):
        return None
    from callpipe.analytics.mirror import S3Mirror

    prefix = str(getattr(base, "prefix", "") or "")
    root = cache_dir.parent / DEFAULT_DIRNAME / bucket / (prefix.replace("/", "_") or "_")
    return root, S3Mirror(
        base.client,
        bucket,
        f"{prefix}/{DEFAULT_DIRNAME}" if prefix else DEFAULT_DIRNAME,
        getattr(base, "_sse", None),
    )


def open_analytics_store(
    url: str | None = None,
    *,
    read_only: bool = False,
    environ: Mapping[str, str] | None = None,
    local_root: str | Path | None = None,
    store: object | None = None,
) -> AnalyticsStore:
    """The analytics store ``url`` names (default ``CALLPIPE_ANALYTICS_DB``, then embedded Parquet
    beside ``store`` (local root, or for S3 see :func:`s3_location`), ``local_root`` or
    ``STORAGE_LOCAL_PATH``, see :func:`default_root`)."""
    env = os.environ if environ is None else environ
    mirror = None
    if store is not None and local_root is None:
        local_root = store_local_root(store)
        located = s3_location(store) if local_root is None else None
        if located is not None:
            local_root, mirror = located[0] / "recordings", located[1]
    raw = (url if url is not None else env.get(ANALYTICS_ENV, "")).strip()
    if raw.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
        from callpipe.analytics.postgres import PostgresAnalyticsStore

        dsn = raw.replace("postgresql+psycopg2://", "postgresql://", 1)
        return PostgresAnalyticsStore(dsn, read_only=read_only)
    if "://" in raw and not raw.startswith("duckdb://"):
        scheme = raw.split("://", 1)[0]
        raise AnalyticsConfigError(
            f"{ANALYTICS_ENV}: unsupported scheme {scheme!r}; use a directory, duckdb:///DIR or postgresql://"
        )
    from callpipe.analytics.duck import ParquetAnalyticsStore

    path = raw.removeprefix("duckdb://") if raw else ""
    root = Path(path).expanduser() if path else default_root(env, local_root)
    return ParquetAnalyticsStore(root, read_only=read_only, mirror=None if path else mirror)


def remove_recordings(store: object, recording_ids: list[str], url: str | None = None) -> int:
    """Remove every analytics row of ``recording_ids`` from the tables beside ``store`` (or at
    ``url``), at once rather than at their day's next run: what an erasure must also do. Returns
    how many of them had rows."""
    if not recording_ids:
        return 0
    configured = url if url is not None else os.environ.get(ANALYTICS_ENV, "")
    if not configured.strip() and not _tables_root(store).exists():
        return 0  # no tables were ever written here: nothing to remove, and nothing to create
    writer = open_analytics_store(url, store=store)
    try:
        return sum(1 for rid in recording_ids if writer.remove_recording(rid))
    finally:
        writer.close()


def remaining_recordings(store: object, recording_ids: list[str], url: str | None = None) -> list[str]:
    """Those of ``recording_ids`` that still have a row in some analytics table or index (an
    erasure is incomplete while this is not empty)."""
    if not recording_ids:
        return []
    configured = url if url is not None else os.environ.get(ANALYTICS_ENV, "")
    if not configured.strip() and not _tables_root(store).exists():
        return []
    reader = open_analytics_store(url, store=store)
    try:
        return [rid for rid in recording_ids if reader.has_rows(rid)]
    finally:
        reader.close()


def _tables_root(store: object) -> Path:
    """Where the embedded tables of ``store`` live by default."""
    local_root = store_local_root(store)
    located = s3_location(store) if local_root is None else None
    return default_root(local_root=located[0] / "recordings" if located else local_root)
