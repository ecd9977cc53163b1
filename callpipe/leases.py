"""Processing leases: which run works on a recording now, and until when.

A run claims a recording (:func:`callpipe.stage_runner.claim`): its ``status`` becomes ``processing``
with ``lease_owner`` (the run id) and ``lease_until``. The lease is short (``BATCH_LEASE_SECONDS``,
default 300 s) and kept alive while the run works on the recording:

- every stage result written extends it (same write, no extra I/O);
- before a step starts on a recording whose lease is more than a third used, it renews it;
- while a step works on recordings, a :class:`Heartbeat` thread renews theirs every third of a lease.

Another run takes a recording over when its lease has expired (the owner was killed: SIGKILL,
out of memory, machine lost), or at once when ``is_owner_alive`` says the owner run is over:
Dagster knows a run that failed, was cancelled or finished, and a ``callpipe batch`` run carries
its process identity (:func:`process_identity`) and a heartbeat tag (:data:`ALIVE_UNTIL_TAG`),
so a run whose process died is known over (:func:`run_death`: at once on this host, one lease
after its last heartbeat elsewhere) although Dagster still shows it started. A run that lost a
lease notices before it starts a stage on the recording and again when it writes a stage result
(a compare-and-swap on the owner): it drops the recording, never overwrites the new owner's work,
never marks it failed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from callpipe.schema import ProcessingStatus, RecordingMetadata
from callpipe.storage import RecordingStore

log = logging.getLogger(__name__)

OwnerCheck = Callable[[str], bool]
"""``is_owner_alive(run_id)``: False only when the run is known to be over (its lease is void)."""


class LeaseLostError(RuntimeError):
    """This run no longer holds the recording's lease: another run took it over (or it finished)."""


HOST_TAG, PID_TAG, PID_START_TAG = "callpipe/host", "callpipe/pid", "callpipe/pid-start"
ALIVE_UNTIL_TAG = "callpipe/alive-until"
"""Run tag a ``callpipe batch`` process renews while it lives (ISO time, a lease ahead): once
passed, any host knows the run's process is gone."""


def process_start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), None if not running.

    A pid alone is not an identity (the kernel reuses pids); pid plus start time is.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime), counted after "comm)"


def process_identity() -> dict[str, str]:
    """Run tags naming this process, so another run on this host can tell when it has died."""
    ticks = process_start_ticks(os.getpid())
    if ticks is None:  # no /proc (not Linux): the lease expiry stays the only bound
        return {}
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), PID_START_TAG: ticks}


def process_is_gone(tags: Mapping[str, str]) -> bool:
    """True when ``tags`` (from :func:`process_identity`) name a process of this host that is no
    longer running; False when it runs, or when it cannot be told (another host, no tags)."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    if process_start_ticks(os.getpid()) is None:
        return False
    return process_start_ticks(int(tags[PID_TAG])) != tags.get(PID_START_TAG)


def run_death(tags: Mapping[str, str], now: datetime | None = None) -> str | None:
    """Why the process of a ``callpipe batch`` run (its tags) is provably gone, or None when it
    may still run. On its own host the pid decides (no longer running, or reused); elsewhere its
    ``alive-until`` heartbeat, once passed (a lease after the process stopped renewing it)."""
    if tags.get(HOST_TAG) == socket.gethostname() and process_start_ticks(os.getpid()) is not None:
        if process_is_gone(tags):
            return f"its process (pid {tags[PID_TAG]} on {tags[HOST_TAG]}) is gone"
        return None
    raw = tags.get(ALIVE_UNTIL_TAG)
    if raw:
        try:
            until = datetime.fromisoformat(raw)
        except ValueError:
            return None
        if until.tzinfo is not None and until < (now or datetime.now(UTC)):
            return f"its process on {tags.get(HOST_TAG, 'another host')} sent no heartbeat since {raw}"
    return None


def alive_until(lease_seconds: float, now: datetime | None = None) -> str:
    """The :data:`ALIVE_UNTIL_TAG` value a live process sets: a lease from now, to the second."""
    return ((now or datetime.now(UTC)) + timedelta(seconds=lease_seconds)).isoformat(timespec="seconds")


def lease_is_live(meta: RecordingMetadata, now: datetime, is_owner_alive: OwnerCheck | None = None) -> bool:
    """Whether ``meta`` is leased to a run that may still be working on it."""
    state = meta.status
    if state.status != ProcessingStatus.PROCESSING or not state.lease_owner:
        return False
    if state.lease_until is None or state.lease_until <= now:
        return False
    return is_owner_alive is None or is_owner_alive(state.lease_owner)


def check_owner(meta: RecordingMetadata, owner: str) -> None:
    """Raise :class:`LeaseLostError` unless ``owner`` holds the recording's processing lease."""
    state = meta.status
    if state.status != ProcessingStatus.PROCESSING or state.lease_owner != owner:
        now = f"held by run {state.lease_owner}" if state.lease_owner else f"status {state.status.value}"
        raise LeaseLostError(f"run {owner} lost the lease of recording {meta.recording_id} ({now})")


class _NotMine(Exception):
    """Raised inside a metadata edit to leave the document unwritten."""


def release(store: RecordingStore, recording_id: str, owner: str) -> bool:
    """Give back ``owner``'s lease of a recording it did not finish (a cancelled run): pending again,
    the attempt not counted, so the next run takes it at once. False when ``owner`` holds none."""

    def edit(meta: RecordingMetadata) -> None:
        state = meta.status
        if state.status != ProcessingStatus.PROCESSING or state.lease_owner != owner:
            raise _NotMine
        state.status = ProcessingStatus.PENDING
        state.lease_owner = None
        state.lease_until = None
        state.attempts = max(0, state.attempts - 1)
        state.updated_at = datetime.now(UTC)

    try:
        store.modify_metadata(recording_id, edit)
    except _NotMine:
        return False
    return True


def extend(meta: RecordingMetadata, lease_seconds: float, now: datetime | None = None) -> None:
    """Push the lease end of ``meta`` (already checked with :func:`check_owner`) to now + a lease."""
    now = now or datetime.now(UTC)
    meta.status.lease_until = now + timedelta(seconds=lease_seconds)
    meta.status.updated_at = now


def renew(store: RecordingStore, recording_id: str, owner: str, lease_seconds: float) -> RecordingMetadata:
    """Extend ``owner``'s lease (compare-and-swap: raises :class:`LeaseLostError` if it is not his)."""

    def edit(meta: RecordingMetadata) -> None:
        check_owner(meta, owner)
        extend(meta, lease_seconds)

    return store.modify_metadata(recording_id, edit)


def hold(store: RecordingStore, recording_id: str, owner: str, lease_seconds: float) -> RecordingMetadata:
    """The document, after checking that ``owner`` holds its lease; renewed first when more than a
    third of the lease is used, so that nobody can take it over while a stage runs."""
    meta = store.get_metadata(recording_id)
    check_owner(meta, owner)
    until = meta.status.lease_until
    if until is not None and until - datetime.now(UTC) > timedelta(seconds=lease_seconds * 2 / 3):
        return meta
    return renew(store, recording_id, owner, lease_seconds)


class Heartbeat:
    """A thread renewing ``owner``'s leases on the recordings being worked on, every third of a lease.

    Use as a context manager; :meth:`add` and :meth:`discard` a recording around its work.
    """

    def __init__(self, store: RecordingStore, owner: str, lease_seconds: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._working: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat-{owner[:8]}", daemon=True)

    def add(self, recording_id: str) -> None:
        with self._lock:
            self._working.add(recording_id)

    def discard(self, recording_id: str) -> None:
        with self._lock:
            self._working.discard(recording_id)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            with self._lock:
                working = sorted(self._working)
            for recording_id in working:
                try:
                    renew(self.store, recording_id, self.owner, self.lease_seconds)
                except LeaseLostError as exc:
                    log.warning("%s", exc)
                    self.discard(recording_id)  # the stage's own write will notice and drop it
                except Exception as exc:  # storage hiccup: the stage itself retries or fails the step
                    log.warning("lease renewal of %s failed: %s", recording_id, type(exc).__name__)
