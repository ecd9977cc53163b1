"""What the API and the web UI read: store statistics, the analytics tables, metadata views.

The analytics store (:mod:`callpipe.analytics`) is opened read-only once per app
(:class:`AnalyticsHandle`); its readers never block the batch that writes a day. Processing
statistics come from the store's index (names only, no document read): total and pending over
the whole store; ``failed`` from the analytics table (failed calls stay pending in the index so
that later runs retry them); cached for a few seconds (:class:`StatsCaches`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from callpipe.pii import RedactionMode, apply_redaction
from callpipe.schema import RecordingMetadata
from callpipe.settings import Settings
from callpipe.storage import RecordingStore

AnalyticsOpener = Callable[[], Any]
STATS_CACHE_ENV = "CALLPIPE_STATS_CACHE_SECONDS"


class AnalyticsUnavailableError(Exception):
    """The analytics tables cannot be read now (not built yet, or the database is unavailable)."""


def default_opener(store: RecordingStore, url: str | None = None) -> AnalyticsOpener:
    """Opens the analytics store at ``url`` read-only (default ``CALLPIPE_ANALYTICS_DB``, else the
    embedded tables beside ``store``'s local root)."""

    def open_store() -> Any:
        from callpipe.analytics import open_analytics_store

        return open_analytics_store(url, read_only=True, store=store)

    return open_store


class AnalyticsHandle:
    """One read-only analytics store for the app, opened at first use and kept (its connections:
    the embedded store's SQLite listing and DuckDB, or a PostgreSQL pool; nothing of the tables
    is held in memory). Reading never blocks a writer (see :mod:`callpipe.analytics.duck`).
    After a failed query the store is reopened next time."""

    def __init__(self, opener: AnalyticsOpener) -> None:
        self.opener = opener
        self._store: Any = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        """The store, for one request; errors become :class:`AnalyticsUnavailableError` (503)."""
        with self._lock:
            if self._store is None:
                try:
                    self._store = self.opener()
                except Exception as exc:  # a bad URL, PostgreSQL down: one line, 503
                    raise AnalyticsUnavailableError(f"analytics tables unavailable: {_line(exc)}") from None
            store = self._store
        try:
            yield store
        except (ValueError, LookupError):
            raise  # the request's own mistake (a bad cursor): the store is fine
        except Exception as exc:
            self.reset(store)
            raise AnalyticsUnavailableError(f"analytics query failed: {_line(exc)}") from None

    def reset(self, store: Any = None) -> None:
        """Close the store (when it is still ``store``) so that the next use reopens it."""
        with self._lock:
            if self._store is not None and (store is None or store is self._store):
                with contextlib.suppress(Exception):
                    self._store.close()
                self._store = None


def _line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


class TTLCache:
    """One value recomputed at most every ``ttl`` seconds (0: every time), shared by threads."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._value: Any = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if self._value is None or self.ttl <= 0 or time.monotonic() - self._at > self.ttl:
                self._value = compute()
                self._at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        """Forget the value: the next ``get`` recomputes it (a call was just stored here)."""
        with self._lock:
            self._value = None


class BackgroundValue:
    """A value recomputed in a background thread when older than ``ttl``; readers never wait:
    they get the last value (None before the first computation ends)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._value: Any = None
        self._at = 0.0
        self._running = False
        self._lock = threading.Lock()

    def get(self, compute: Callable[[], Any]) -> Any:
        with self._lock:
            stale = self._value is None or time.monotonic() - self._at > self.ttl
            if stale and not self._running:
                self._running = True
                threading.Thread(target=self._run, args=(compute,), daemon=True).start()
            return self._value

    def prime(self, compute: Callable[[], Any]) -> Any:
        """Compute now, in the caller's thread, when there is no value yet (errors propagate)."""
        value = compute()
        with self._lock:
            if self._value is None:
                self._value, self._at = value, time.monotonic()
            return self._value

    def _run(self, compute: Callable[[], Any]) -> None:
        try:
            value = compute()
        except Exception:  # the store is unreachable now: keep the old value, try again next time
            value = None
        with self._lock:
            if value is not None:
                self._value, self._at = value, time.monotonic()
            self._running = False


def pending_sync_count(store: RecordingStore) -> int:
    """Recordings kept locally during an S3 outage and not yet uploaded (``callpipe sync``)."""
    from callpipe.storage.index import PENDING_SYNC
    from callpipe.storage.local import LocalStore

    local = getattr(store, "local", None)
    return len(_count(str(local.path(PENDING_SYNC)))) if isinstance(local, LocalStore) else 0


class StatsCaches:
    """``GET /processing/stats`` caches: the queue counts for ``CALLPIPE_STATS_CACHE_SECONDS``
    (default 5; 0 recomputes on every request) and the storage sizes, which walk every audio file
    (seconds at 100,000 recordings), refreshed in the background every 60 seconds."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.queue = TTLCache(ttl)
        self.storage = BackgroundValue(max(ttl, 60.0))

    @classmethod
    def from_env(cls) -> StatsCaches:
        return cls(Settings.from_env(only=[STATS_CACHE_ENV]).callpipe_stats_cache_seconds)


def _count(path: str) -> list[str]:
    """Visible names in a directory (``os.listdir``: about twice as fast as ``scandir`` here)."""
    try:
        return [name for name in os.listdir(path) if not name.startswith(".")]
    except FileNotFoundError:
        return []


def queue_counts(store: RecordingStore) -> tuple[int, int]:
    """``(total, pending)`` over the whole store from index names only (no entry or document read).

    A local store (or a mirrored store's local side, the authority) is counted with one
    directory scan per index directory; S3 with key listings.
    """
    from callpipe.storage.blob_store import BlobStore
    from callpipe.storage.index import BY_ID, PENDING, marker_ids
    from callpipe.storage.local import LocalStore

    catalog = getattr(store, "catalog", None)
    if catalog is not None:  # the catalog: saved rows only, processed from each row's state
        counts = catalog.counts()
        return counts["recordings"], counts["pending"]
    base = getattr(store, "local", store)
    if isinstance(base, LocalStore):
        total = len(_count(str(base.path(BY_ID))))
        root = base.path(PENDING)
        pending = sum(len(marker_ids(_count(os.path.join(root, day)))) for day in _count(str(root)))
        return total, pending
    if isinstance(base, BlobStore):
        total = len(base._list_names(BY_ID))
        pending = sum(len(marker_ids(base._list_names(f"{PENDING}/{d}"))) for d in base._list_dirs(PENDING))
        return total, pending
    stats = store.get_storage_stats()
    return int(stats["recordings"]), int(stats["pending"])


def queue_stats(store: RecordingStore, tables: AnalyticsHandle) -> dict[str, Any]:
    """The ``processing_queue`` part: index counts, failed calls from the analytics table."""
    total, pending = queue_counts(store)
    failed, analytics_error = 0, None
    try:
        with tables.use() as analytics:
            failed = analytics.failed_total()  # the per-day aggregates, not a table scan
    except AnalyticsUnavailableError as exc:
        analytics_error = str(exc)
    failed = min(failed, pending)
    processed = total - pending
    return {
        "total_recordings": total,
        "processed": processed,
        "pending": pending - failed,
        "failed": failed,
        "processing_rate": round(processed / total, 4) if total else 0.0,
        **({"failed_unknown": analytics_error} if analytics_error else {}),
    }


def processing_stats(store: RecordingStore, tables: AnalyticsHandle, caches: StatsCaches) -> dict[str, Any]:
    """The seed's ``GET /processing/stats`` shape over the whole store."""
    queue = caches.queue.get(lambda: queue_stats(store, tables))

    def sizes_now() -> dict[str, Any]:
        return {**store.get_storage_stats(), "sizes_as_of": _now()}

    # The first call measures (this runs in a worker thread); later ones get the background value.
    sizes = caches.storage.get(sizes_now) or caches.storage.prime(sizes_now)
    storage = dict(sizes)
    storage.update(
        pending_sync=pending_sync_count(store),
        recordings=queue["total_recordings"],
        processed=queue["processed"],
        pending=queue["pending"] + queue["failed"],
    )
    return {"storage": storage, "pipeline": pipeline_settings(), "processing_queue": dict(queue)}


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def pipeline_settings() -> dict[str, Any]:
    """The pipeline's settings that explain the numbers (read now from :class:`Settings`)."""
    settings = Settings.from_env()
    return {
        "online": {
            "correction_threshold": settings.online_correction_threshold,
            "clarification_threshold": settings.online_clarification_threshold,
        },
        "offline": {
            "orchestrator": "dagster",
            "executor": settings.callpipe_executor,
            "retranscribe_wer_threshold": settings.offline_retranscribe_wer_threshold,
            "timezone": settings.callpipe_timezone,
            "max_concurrent": settings.batch_max_concurrent,
        },
        "pii_redaction": RedactionMode.from_env().value,
    }


def analyst_view(doc: RecordingMetadata) -> dict[str, Any]:
    """The metadata an analyst may see: redacted as ``PII_REDACTION=drop`` whatever is stored
    (transcripts, words, turns and corrections redacted; entity values tags; no raw caller number)."""
    view = apply_redaction(doc.model_copy(deep=True), RedactionMode.DROP)
    view.caller.phone = None
    return view.model_dump(mode="json")


def corrections_of(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Heard -> corrected word pairs of the transcript a (redacted) metadata view displays, each
    once: ``stage`` says whether the online recorder (``live``) or the offline correction
    (``offline``) made it. A re-transcribed call displays Whisper's transcript: the live
    corrections were of the discarded live text and are not listed."""
    pairs: dict[tuple[str, str], dict[str, str]] = {}
    shown = doc.get("transcription") or {}
    parts = [("online_transcription", "live")] if not shown.get("retranscribed") else []
    for part, stage in [*parts, ("transcription", "offline")]:
        t = doc.get(part) or {}
        for c in t.get("corrections_made") or []:
            if c.get("original") and c.get("corrected") and c["original"] != c["corrected"]:
                key = (c["original"].lower(), c["corrected"].lower())
                pairs.setdefault(
                    key,
                    {
                        "original": c["original"],
                        "corrected": c["corrected"],
                        "method": c["method"],
                        "stage": stage,
                    },
                )
    return list(pairs.values())
