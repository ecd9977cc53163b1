"""Time of one ``unprocessed_recordings_sensor`` tick over a store holding 100,000 recordings.

The store is filled with metadata only (no audio files: the sensor never reads audio): for each
recording the index entries (by-id, by-date and, while unprocessed, pending) and the metadata
document, with the bytes and keys the store's own helpers make (``index.Entry.to_bytes``,
``index.*_key``, ``store.metadata_key``, ``documents.dump_document``, ``store._storage_info``).
Locally the files are written directly (no fsync, no temp file: the contents are the same, only
durability differs); on S3 the same keys and bytes go in through moto's own backend
``put_object`` (what its HTTP PutObject handler calls: 300,000 PUTs over HTTP take too long here).
Before filling, a pending and a processed recording are saved with ``save_recording`` into a
scratch store and compared file by file with the fast path's output for the same documents.

By default 100,000 recordings over 100 UTC days (1,000 a day); the last 5 days are entirely
unprocessed and 5% of the older recordings are too (failed or flagged for reprocessing), so
about 9,750 recordings on 100 call dates are pending: more dates than the sensor's
``MAX_REQUESTS_PER_TICK`` (50), so the first tick leaves some for the second.

Ticks are evaluated as the daemon does (``build_sensor_context`` with the code location's
definitions and the real ``RecordingStoreResource``; resources are built per tick):

1. cold: the first tick in the process, no cursor;
2. warm: the cursor of tick 1 (the dates left over by the per-tick cap);
3. steady: the cursor of tick 2 (nothing new: no run requests);
4. no cursor again in a warm process (the full cost of a tick without first-use costs).

For S3 a moto server (``ThreadedMotoServer``) runs in a child process on 127.0.0.1 and the ticks
reach it over HTTP with the real client. moto keeps keys in a Python dict and scans every key of
the bucket for each ListObjectsV2 call, so its listing cost grows with the whole bucket (real S3
lists by prefix): the S3 numbers measure the sensor's requests against moto on loopback, not S3's
latency. The request counts of one full listing are printed so they can be costed for real S3,
next to a names-only listing (pending ids per UTC date, no entry reads) for comparison.

    .venv/bin/python benchmarks/sensor_tick.py                   # local and S3 (moto)
    .venv/bin/python benchmarks/sensor_tick.py --backends local
    .venv/bin/python benchmarks/sensor_tick.py --timezones UTC,Europe/Madrid --legacy-markers

``--legacy-markers`` names the pending markers by id alone, as stores written before marker names
held the UTC time of day: outside UTC the sensor then reads the markers of UTC dates that span two
call dates (the fallback such stores take until their markers are rewritten).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from callpipe.schema import ProcessingMode, ProcessingStatus, RecordingMetadata
from callpipe.storage import LocalStore, S3Store, make_s3_client, new_recording_id
from callpipe.storage import index as layout
from callpipe.storage.blob_store import BlobStore
from callpipe.storage.documents import dump_document, prepare_document

Files = list[tuple[str, bytes]]
BUCKET, PREFIX = "bench", "callpipe"
LEGACY_MARKERS = [False]  # --legacy-markers: pending markers named by id alone, as older stores have


def tiny_wav() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(800, dtype=np.int16), 8000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def templates() -> dict[bool, RecordingMetadata]:
    """A pending and a processed document (revision 0, audio facts of a 0.1 s WAV)."""
    pending = prepare_document(tiny_wav(), "conv-template", {"timestamp": datetime.now(UTC)}, "wav", "tpl")
    done = pending.model_copy(deep=True)
    done.processed = True
    done.processing_mode = ProcessingMode.OFFLINE
    done.status.status = ProcessingStatus.PROCESSED
    return {False: pending, True: done}


def plan(total: int, days: int, pending_days: int, straggler_rate: float) -> Iterator[tuple[datetime, bool]]:
    """(timestamp, processed) of each recording: ``days`` UTC days ending yesterday, evenly filled."""
    rng = random.Random(20251127)
    last = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    per_day = total // days
    for i in range(total):
        day_index = min(i // per_day, days - 1)  # the remainder goes to the last day
        age = days - 1 - day_index
        slot = i - day_index * per_day
        ts = last - timedelta(days=age) + timedelta(hours=7, seconds=slot * 50400 / per_day)
        ts += timedelta(microseconds=i % 1_000_000)
        yield ts, not (age < pending_days or rng.random() < straggler_rate)


def recording_files(store: BlobStore, doc: RecordingMetadata) -> Files:
    """What ``save_recording`` writes for ``doc``, audio left out, in its order."""
    entry = layout.Entry.from_doc(doc)
    raw = entry.to_bytes()
    files = [
        (layout.by_id_key(entry.recording_id), raw),
        (layout.by_date_key(entry.call_date, entry.recording_id), raw),
    ]
    if not doc.processed:
        legacy = layout.legacy_pending_key(entry.call_date, entry.recording_id)
        files.append((legacy if LEGACY_MARKERS[0] else layout.pending_key(entry), raw))
    files.append((store.metadata_key(entry), dump_document(doc)))
    return files


def make_doc(store: BlobStore, template: RecordingMetadata, n: int, ts: datetime) -> RecordingMetadata:
    doc = template.model_copy(
        update={
            "recording_id": new_recording_id(ts),
            "conversation_id": f"conv-{n // 2:06d}",
            "timestamp": ts,
        }
    )
    doc.storage = store._storage_info(layout.Entry.from_doc(doc))
    return doc


def check_fast_path(docs: dict[bool, RecordingMetadata]) -> None:
    """One pending and one processed recording: fast-path files == what ``save_recording`` writes."""
    with tempfile.TemporaryDirectory() as tmp:
        real, fast = LocalStore(Path(tmp) / "real"), LocalStore(Path(tmp) / "fast")
        for processed, template in docs.items():
            doc = make_doc(fast, template, 7, datetime(2025, 3, 1, 12, tzinfo=UTC))
            given = doc.model_copy(update={"storage": template.storage})
            if processed:  # save as the recorder does, then mark processed as the pipeline does
                real.save_recording(
                    tiny_wav(), doc.conversation_id, given.model_copy(update={"processed": False})
                )
                stored = real.get_metadata(doc.recording_id)
                real.update_metadata(doc.recording_id, stored.model_copy(update={"processed": True}))
            else:
                real.save_recording(tiny_wav(), doc.conversation_id, given)
            write_local(fast, recording_files(fast, doc))
            for key, data in recording_files(fast, doc):
                if key.startswith("metadata/") and processed:
                    continue  # revision and status differ by design after update_metadata
                if real.path(key).read_bytes() != data:
                    raise SystemExit(f"fast path differs from save_recording at {key}")
            real_index = sorted(
                str(p.relative_to(real.root)) for p in (real.root / "index").rglob("*") if p.is_file()
            )
            fast_index = sorted(
                str(p.relative_to(fast.root)) for p in (fast.root / "index").rglob("*") if p.is_file()
            )
            if real_index != fast_index:
                raise SystemExit(f"index keys differ: {real_index} vs {fast_index}")


def write_local(store: LocalStore, files: Files) -> None:
    for key, data in files:
        path = store.path(key)
        try:
            path.write_bytes(data)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def fill(
    store: BlobStore, args: argparse.Namespace, put: Callable[[str, bytes], Any] | None = None
) -> tuple[int, int, float]:
    """Write every recording (local: files directly; else ``put``); returns (recordings, pending, seconds)."""
    docs = templates()
    started = time.perf_counter()
    count = pending = 0
    batch: Files = []

    def flush() -> None:
        if put is None:
            assert isinstance(store, LocalStore)
            write_local(store, batch)
        else:
            for key, data in batch:
                put(key, data)
        batch.clear()

    for n, (ts, processed) in enumerate(plan(args.recordings, args.days, args.pending_days, args.stragglers)):
        batch.extend(recording_files(store, make_doc(store, docs[processed], n, ts)))
        count += 1
        pending += not processed
        if len(batch) >= 4000:
            flush()
    flush()
    return count, pending, time.perf_counter() - started


def listing_requests(store: BlobStore) -> tuple[int, int, Counter[str], float]:
    """The sensor's listing alone (pages of 1000, unprocessed); refs, dates, S3 requests, seconds."""
    calls: Counter[str] = Counter()
    if isinstance(store, S3Store):
        store.client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    started = time.perf_counter()
    refs, dates, cursor = 0, set(), None
    while True:
        page = store.list_recordings(processed=False, limit=1000, cursor=cursor)
        refs += len(page.items)
        dates.update(ref.call_date for ref in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return refs, len(dates), calls, time.perf_counter() - started


def names_only_listing(store: BlobStore) -> tuple[int, int, Counter[str], float]:
    """``pending_ids_by_date``: pending ids per UTC date from key names alone (what the sensor
    lists); refs, dates, S3 requests, seconds."""
    calls: Counter[str] = Counter()
    if isinstance(store, S3Store):
        store.client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    started = time.perf_counter()
    by_date = store.pending_ids_by_date()
    return sum(map(len, by_date.values())), len(by_date), calls, time.perf_counter() - started


TICK_CALLS: Counter[str] = Counter()
LIST_SECONDS = [0.0]  # wall time inside ListObjectsV2 calls (sequential: they add up)


def _count_request(model: Any, context: dict[str, Any], **_: Any) -> None:
    TICK_CALLS[model.name] += 1
    context["bench_started"] = time.perf_counter()


def _count_listed(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if model.name == "ListObjectsV2":
        TICK_CALLS["keys listed"] += len(parsed.get("Contents", [])) + len(parsed.get("CommonPrefixes", []))
        LIST_SECONDS[0] += time.perf_counter() - context.get("bench_started", time.perf_counter())


def observed_resource(**config: Any) -> Any:
    """The real ``RecordingStoreResource``; on S3 its client's requests are counted in TICK_CALLS."""
    from callpipe.defs.resources import RecordingStoreResource

    class Observed(RecordingStoreResource):
        def get_store(self) -> Any:
            store = super().get_store()
            if isinstance(store, S3Store):
                events = store.client.meta.events
                events.register("before-call.s3", _count_request, unique_id="bench-count")
                events.register("after-call.s3", _count_listed, unique_id="bench-listed")
            return store

    return Observed(**config)


def ticks(resource: Any, label: str, timezone: str) -> None:
    import dagster as dg

    from callpipe.defs import sensors
    from callpipe.defs.definitions import defs

    os.environ["CALLPIPE_TIMEZONE"] = timezone  # the partitions' timezone, read per tick

    def tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[float, Any, str]:
        TICK_CALLS.clear()
        LIST_SECONDS[0] = 0.0
        started = time.perf_counter()
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"store": resource}
        ) as context:
            data = sensors.unprocessed_recordings_sensor.evaluate_tick(context)
        seconds = time.perf_counter() - started
        calls = ", ".join(f"{n} {op}" for op, n in sorted(TICK_CALLS.items()))
        if TICK_CALLS:
            calls += f", {LIST_SECONDS[0]:.2f} s of it in ListObjectsV2 calls"
        return seconds, data, calls

    with dg.instance_for_test() as instance:
        results = [("cold (first in process, no cursor)", *tick(instance, None))]
        results.append(("warm (cursor of tick 1)", *tick(instance, results[0][2].cursor)))
        results.append(("steady (cursor of tick 2, nothing new)", *tick(instance, results[1][2].cursor)))
        results.append(("warm process, no cursor", *tick(instance, None)))
    for name, seconds, data, calls in results:
        requests = f"; S3: {calls}" if calls else ""
        print(
            f"  {label} [{timezone}] tick {name}: {seconds:.2f} s, {len(data.run_requests)} run requests"
            f"{requests} (load {load()})",
            flush=True,
        )


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def serve_moto(port: int, args: argparse.Namespace) -> None:
    """Child process: a moto S3 server on ``port``, filled through moto's own ``put_object`` (the
    same backend call its HTTP layer makes; 300,000 PUTs over HTTP take too long here), then
    serving until stdin closes."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(BUCKET, "us-east-1")
    layout_only = S3Store(BUCKET, PREFIX, client=object())  # keys and storage info, no requests
    count, pending, seconds = fill(
        layout_only, args, put=lambda key, data: backend.put_object(BUCKET, layout_only.full_key(key), data)
    )
    print(f"READY {count} {pending} {seconds:.1f}", flush=True)
    sys.stdin.read()
    server.stop()


@contextmanager
def moto_server(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """A filled moto S3 server in a child process on a free loopback port: (endpoint, READY line)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, __file__, "--serve-moto", str(port), "--recordings", str(args.recordings)]
    command += ["--days", str(args.days), "--pending-days", str(args.pending_days)]
    command += ["--stragglers", str(args.stragglers)]
    command += ["--legacy-markers"] if args.legacy_markers else []
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    try:
        ready = server.stdout.readline().strip()
        if not ready.startswith("READY"):
            raise SystemExit(f"moto server child failed: {ready!r}")
        yield f"http://127.0.0.1:{port}", ready
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def run_local(args: argparse.Namespace) -> None:
    from dagster_aws.s3 import S3Resource

    with tempfile.TemporaryDirectory(prefix="callpipe-sensor-") as tmp:
        store = LocalStore(Path(tmp) / "recordings")
        count, pending, seconds = fill(store, args)
        print(
            f"local store: {count} recordings, {pending} unprocessed, written in {seconds:.1f} s", flush=True
        )
        if args.entry_listing:
            refs, dates, _, listed = listing_requests(store)
            print(
                f"  local entry listing (list_recordings(processed=False), pages of 1000): {refs} pending "
                f"on {dates} dates in {listed:.2f} s"
            )
        refs, dates, _, listed = names_only_listing(store)
        print(
            f"  local pending_ids_by_date (names only): {refs} pending on {dates} dates in {listed:.2f} s "
            f"(load {load()})"
        )
        resource = observed_resource(
            backend="local", local_path=str(store.root), s3=S3Resource(region_name="us-east-1")
        )
        for timezone in args.timezones:
            ticks(resource, "local", timezone)


def run_s3(args: argparse.Namespace) -> None:
    from dagster_aws.s3 import S3Resource

    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.pop("AWS_PROFILE", None)
    with (
        moto_server(args) as (endpoint, ready),
        tempfile.TemporaryDirectory(prefix="callpipe-sensor-") as tmp,
    ):
        _, count, pending, seconds = ready.split()
        client = make_s3_client(region_name="us-east-1", endpoint_url=endpoint)
        store = S3Store(BUCKET, PREFIX, client, cache_dir=Path(tmp) / "cache")
        print(
            f"S3 store (moto server in its own process, loopback): {count} recordings, "
            f"{pending} unprocessed, put into moto's backend in {seconds} s",
            flush=True,
        )
        if args.entry_listing:
            refs, dates, calls, listed = listing_requests(store)
            requests = ", ".join(f"{n} {op}" for op, n in calls.most_common())
            print(
                f"  S3 entry listing (list_recordings(processed=False), pages of 1000): {refs} pending on "
                f"{dates} dates in {listed:.2f} s ({requests})",
                flush=True,
            )
        fresh = S3Store(BUCKET, PREFIX, make_s3_client(region_name="us-east-1", endpoint_url=endpoint))
        refs, dates, calls, listed = names_only_listing(fresh)
        requests = ", ".join(f"{n} {op}" for op, n in calls.most_common())
        print(
            f"  S3 pending_ids_by_date (names only): {refs} pending on {dates} dates in {listed:.2f} s "
            f"({requests}; load {load()})",
            flush=True,
        )
        started = time.perf_counter()
        fresh._list_dirs(layout.PENDING)
        print(
            f"  one ListObjectsV2 on moto (pending dates, {count} recordings in the bucket): "
            f"{time.perf_counter() - started:.2f} s",
            flush=True,
        )
        resource = observed_resource(
            backend="s3",
            s3_bucket=BUCKET,
            s3_prefix=PREFIX,
            s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1"),
        )
        for timezone in args.timezones:
            ticks(resource, "S3 (moto)", timezone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--pending-days", type=int, default=5, help="latest days left entirely unprocessed")
    parser.add_argument("--stragglers", type=float, default=0.05, help="unprocessed share of older days")
    parser.add_argument("--backends", default="local,s3", help="comma-separated: local, s3")
    parser.add_argument("--timezones", default="UTC", help="partition timezones to tick in (comma-separated)")
    parser.add_argument(
        "--entry-listing", action="store_true", help="also time list_recordings(processed=False)"
    )
    parser.add_argument(
        "--legacy-markers",
        action="store_true",
        help="name pending markers by id alone (stores written before names held the time of day)",
    )
    parser.add_argument("--serve-moto", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_moto:
        LEGACY_MARKERS[0] = args.legacy_markers
        serve_moto(args.serve_moto, args)
        return
    if args.recordings < args.days or args.days < 1:
        parser.error("--recordings must be at least --days, and --days at least 1")
    check_fast_path(templates())
    print("fast path check: index entries and metadata document identical to save_recording's", flush=True)
    LEGACY_MARKERS[0] = args.legacy_markers
    if args.legacy_markers:
        print("pending markers in the legacy layout: index/pending/{date}/{recording_id}", flush=True)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.timezones = [t.strip() for t in args.timezones.split(",") if t.strip()]
    if "local" in backends:
        run_local(args)
    if "s3" in backends:
        run_s3(args)


if __name__ == "__main__":
    main()
