"""Listing and stats latency: the catalog (SQLite) against the marker-file index, at N recordings.

``python benchmarks/catalog.py [--calls 100000]`` writes N index entries (by-id, by-date, pending
markers for a third) into a temporary local store, and the same N rows into a catalog, then prints
p50/p95 of a pending page (50 rows), a full page with a date window, the pending-by-date lookup the
sensors use, and the store counts (``/processing/stats``' queue part), for both.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callpipe.catalog import Catalog
from callpipe.catalog.catalog_table import row_from_doc
from callpipe.catalog.cataloged import CatalogStore
from callpipe.schema import AudioInfo, RecordingMetadata
from callpipe.service.reads import queue_counts
from callpipe.storage import LocalStore
from callpipe.storage import index as idx
from callpipe.storage.index import Entry


def _docs(n: int) -> list[RecordingMetadata]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    audio = AudioInfo(
        format="wav",
        checksum_sha256="0" * 64,
        file_size_bytes=1000,
        duration_seconds=1.0,
        sample_rate=8000,
        channels=1,
    )
    docs = []
    for i in range(n):
        doc = RecordingMetadata(
            recording_id=f"rec-{i:07d}",
            conversation_id=f"conv-{i % 997}",
            timestamp=start + timedelta(minutes=5 * i),
            audio=audio,
            processed=i % 3 != 0,
        )
        docs.append(doc)
    return docs


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        docs = _docs(args.calls)
        markers = LocalStore(Path(tmp) / "markers")
        for doc in docs:
            entry = Entry.from_doc(doc)
            raw = entry.to_bytes()
            markers._put(idx.by_id_key(doc.recording_id), raw)
            markers._put(idx.by_date_key(doc.call_date, doc.recording_id), raw)
            if not doc.processed:
                markers._put(idx.pending_key(entry), raw)
        catalog = Catalog(path=Path(tmp) / "catalog.sqlite")
        catalog.put_many(row_from_doc(d) for d in docs)
        catalogued = CatalogStore(LocalStore(Path(tmp) / "empty"), catalog, recover=False)
        mid = docs[len(docs) // 2].timestamp
        cases: dict[str, Callable[[object], object]] = {
            "pending_page": lambda s: s.list_recordings(processed=False, limit=50),
            "window_page": lambda s: s.list_recordings(since=mid, until=mid + timedelta(days=3), limit=50),
            "pending_by_date": lambda s: s.pending_ids_by_date(),
            "queue_counts": lambda s: queue_counts(s),
        }
        for name, case in cases.items():
            for label, store in (("markers", markers), ("catalog", catalogued)):
                p50, p95 = _time(lambda store=store, case=case: case(store), args.repeat)
                print(f"{name:16s} {label:8s} N={args.calls} p50_ms={p50:.2f} p95_ms={p95:.2f}")


if __name__ == "__main__":
    main()
