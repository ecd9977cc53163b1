"""The call dates with pending recordings, from the store's index names (no document reads).

Shared by the unprocessed sensor, the nightly schedule and ``call_analytics`` (which tags its run
with what it left pending), so it imports no job or asset: the sensors import the job, which
imports the assets.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dagster as dg

from callpipe.defs.partitions import call_timezone, partition_key_for
from callpipe.defs.tags import PROCESS_CALL_DATE
from callpipe.storage import RecordingStore

LEFT_PENDING_TAG = "callpipe/left_pending"
"""Run tag set by ``call_analytics`` at the end of a whole-day run: the digest of the day's pending
recordings it left (e.g. failed for good), as :func:`pending_partitions` computes it, or ``none``."""


def ids_digest(values: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()[:16]


def utc_edges(day: str) -> tuple[datetime, datetime]:
    """First and last instant of a UTC call date (the store's index groups by UTC date)."""
    start = datetime.combine(date.fromisoformat(day), time(0), tzinfo=UTC)
    return start, start + timedelta(days=1) - timedelta(microseconds=1)


def _split_day(backend: RecordingStore, day: str, ids: list[str], timezone: str) -> dict[str, list[Any]]:
    """``{partition: [digest, count]}`` of pending recordings of a UTC date that spans two
    partitions whose marker names lack the time of day: the only case where the sensor reads
    index entries (for their timestamps)."""
    by_partition: dict[str, list[str]] = defaultdict(list)
    for ref in backend.pending_refs(day, ids):
        if ref.timestamp is not None:
            by_partition[partition_key_for(ref.timestamp, timezone)].append(ref.recording_id)
    return {key: [ids_digest(members), len(members)] for key, members in by_partition.items()}


def _known_split(memo: object, names: str) -> bool:
    """Whether a cursor's record of a split UTC date is well formed and for the same pending ids."""
    if not isinstance(memo, dict) or memo.get("names") != names or not isinstance(memo.get("parts"), dict):
        return False
    return all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)
        for v in memo["parts"].values()
    )


def pending_partitions(
    backend: RecordingStore, timezone: str, splits: dict[str, Any]
) -> tuple[dict[str, tuple[str, int]], dict[str, Any]]:
    """``{partition: (digest of its pending ids, count)}`` and the new record of split UTC dates.

    The store lists pending ids and their UTC time of day by UTC date from key names alone. A UTC
    date inside one partition (always, in UTC) maps whole; one that spans two maps each id by its
    time. Ids listed without a time (markers of an older store) have their entries read, but only
    when that set of ids changed since ``splits`` (the previous tick's record) was made.
    """
    parts: dict[str, list[tuple[str, str, int, bool]]] = defaultdict(list)
    new_splits: dict[str, Any] = {}
    for day, items in backend.pending_times_by_date().items():
        edges = utc_edges(day)
        first, last = (partition_key_for(edge, timezone) for edge in edges)
        if first == last:
            parts[first].append((day, ids_digest([rid for rid, _ in items]), len(items), True))
            continue
        by_partition: dict[str, list[str]] = defaultdict(list)
        untimed: list[str] = []
        midnight = edges[0]
        for rid, clock in items:
            if clock is None:
                untimed.append(rid)
            else:
                instant = midnight.replace(hour=clock.hour, minute=clock.minute, second=clock.second)
                by_partition[partition_key_for(instant, timezone)].append(rid)
        if untimed:
            names = ids_digest(untimed)
            memo = splits.get(day)
            if not _known_split(memo, names):
                memo = {"names": names, "parts": _split_day(backend, day, untimed, timezone)}
            new_splits[day] = memo
            for key, (digest, count) in memo["parts"].items():
                parts[key].append((day, digest, count, False))
        for key, members in by_partition.items():
            parts[key].append((day, ids_digest(members), len(members), False))
    result: dict[str, tuple[str, int]] = {}
    for key, pieces in parts.items():
        count = sum(piece[2] for piece in pieces)
        if len(pieces) == 1 and pieces[0][3]:
            result[key] = (pieces[0][1], count)  # the digest of the partition's ids, as always in UTC
        else:
            result[key] = (ids_digest([f"{day}:{digest}" for day, digest, _, _ in pieces]), count)
    return result, new_splits


def record_left_pending(instance: dg.DagsterInstance, run_id: str, backend: RecordingStore, key: str) -> None:
    """Tag the run with what it left pending on its call date (see :data:`LEFT_PENDING_TAG`)."""
    left = pending_partitions(backend, call_timezone(), {})[0].get(key)
    instance.add_run_tags(run_id, {LEFT_PENDING_TAG: left[0] if left else "none"})


def left_by_last_run(instance: dg.DagsterInstance, key: str) -> str | None:
    """The pending digest the call date's latest day run left, ``None`` when unknown (no run, or
    the latest one stopped before writing the day's analytics)."""
    for run in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": key}), limit=10):
        if LEFT_PENDING_TAG in run.tags:
            return run.tags[LEFT_PENDING_TAG]
        if run.job_name == PROCESS_CALL_DATE:
            return None
    return None
