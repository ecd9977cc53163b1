"""Offline processing of recordings from the stages, in plain Python.

The Dagster assets (``callpipe.defs``) :func:`claim` a day's recordings, call :func:`run_stage` once
per stage over them and :func:`callpipe.finalizer.finalize` at the end;
:func:`callpipe.finalizer.process_recording` runs every stage for one recording (CLI, tests).
Each stage's output lives in the recording's metadata document, and
``provenance.stage_inputs[stage]`` holds a fingerprint of the stage's input and version: a stage
whose fingerprint has not changed is skipped, so re-running a day only does new or changed work.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from callpipe.failures import INFRA_ERRORS, mark_failed, one_line, retrying
from callpipe.faultpoints import park
from callpipe.leases import Heartbeat, LeaseLostError, OwnerCheck, check_owner, extend, hold, lease_is_live
from callpipe.schema import ProcessingStatus, RecordingMetadata
from callpipe.settings import Settings
from callpipe.stage_list import STAGES, StageFn, StageModels
from callpipe.storage import RecordingStore, StorageUnavailableError

log = logging.getLogger(__name__)
STAGE_ORDER: tuple[str, ...] = tuple(STAGES)
"""Stage names in execution order: stt, correction, sentiment, intent, entities, topics."""


class PipelineSettings(BaseModel):
    """Batch behaviour, read from the environment by :meth:`from_env`.

    ``lease_seconds`` bounds how long a killed run blocks its recordings (leases are renewed while
    a run works, see :mod:`callpipe.leases`); ``storage_retry_seconds`` is how long a stage keeps
    retrying, with backoff, a recording whose store is unavailable before the step fails.
    """

    max_attempts: int = Field(default=3, ge=1)
    lease_seconds: int = Field(default=300, ge=10)
    max_concurrent: int = Field(default=2, ge=1, le=64)
    storage_retry_seconds: float = Field(default=60.0, ge=0)

    @classmethod
    def from_env(cls, **overrides: Any) -> PipelineSettings:
        """``BATCH_*`` from :class:`callpipe.settings.Settings`; explicit ``overrides`` win."""
        fields = ("max_attempts", "lease_seconds", "max_concurrent", "storage_retry_seconds")
        settings = Settings.from_env(only=[f"BATCH_{field.upper()}" for field in fields])
        values = {field: getattr(settings, f"batch_{field}") for field in fields}
        return cls(**{**values, **overrides})


def stage_versions() -> dict[str, str]:
    """Current version of each stage (recorded in provenance; a change makes results stale)."""
    return {name: spec.version for name, spec in STAGES.items()}


def fingerprint(stage: str, meta: RecordingMetadata) -> str:
    """Digest of what ``stage`` reads from ``meta`` plus its version."""
    spec = STAGES[stage]
    payload = json.dumps([stage, spec.version, spec.inputs(meta)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def work_reason(
    meta: RecordingMetadata,
    settings: PipelineSettings,
    now: datetime | None = None,
    is_owner_alive: OwnerCheck | None = None,
) -> str | None:
    """Why ``meta`` needs offline work now, or None when it is done (or busy elsewhere).

    A live lease makes it busy; ``is_owner_alive`` voids the lease of a run known to be over.
    """
    now = now or datetime.now(UTC)
    state = meta.status
    if lease_is_live(meta, now, is_owner_alive):
        return None
    if state.reprocess_requested:
        return "reprocess requested"
    if not meta.processed:
        if state.status == ProcessingStatus.FAILED:
            return "retry" if state.attempts < settings.max_attempts else None
        if state.status == ProcessingStatus.PROCESSING:
            expired = state.lease_until is None or state.lease_until <= now
            return "expired lease" if expired else "lease of a finished run"
        return "unprocessed"
    # A recording whose audio the retention policy deleted cannot be redone from its audio.
    if meta.provenance.stage_versions != stage_versions() and meta.retention is None:
        return "stale stage versions"
    return None


@dataclass
class StageReport:
    """What one stage did over a batch of recordings (``lost``: taken over by another run)."""

    stage: str
    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    lost: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> list[str]:
        return self.ran + self.cached


class _NotClaimable(Exception):
    """Raised inside a metadata edit to leave the document unwritten."""


def claim(
    store: RecordingStore,
    recording_id: str,
    run_id: str,
    settings: PipelineSettings,
    *,
    is_owner_alive: OwnerCheck | None = None,
    force: bool = False,
) -> bool:
    """Take the processing lease of a recording for ``run_id`` (compare-and-swap on the document).

    False, writing nothing, when another run holds a live lease or, unless ``force``, when the
    recording no longer needs work (another run finished it since the manifest was made). A lease
    whose owner ``is_owner_alive`` reports over is taken at once, an expired one always
    (see :mod:`callpipe.leases`); each take counts in ``status.attempts``.
    """
    now = datetime.now(UTC)
    gave_up = False

    def edit(meta: RecordingMetadata) -> None:
        nonlocal gave_up
        state = meta.status
        mine = state.status == ProcessingStatus.PROCESSING and state.lease_owner == run_id
        if not mine:
            if lease_is_live(meta, now, is_owner_alive):
                raise _NotClaimable
            if not force and work_reason(meta, settings, now, is_owner_alive) is None:
                raise _NotClaimable
            abandoned = state.status == ProcessingStatus.PROCESSING
            if not force and abandoned and state.attempts >= settings.max_attempts:
                # Every earlier run died holding it (killed, out of memory): a poison recording
                # would otherwise take down a worker per lease forever.
                state.status = ProcessingStatus.FAILED
                state.error = f"abandoned {state.attempts} times: its run stopped before finishing it"
                state.lease_owner = None
                state.lease_until = None
                state.updated_at = now
                gave_up = True
                return
            state.attempts += 1
        state.status = ProcessingStatus.PROCESSING
        state.lease_owner = run_id
        state.lease_until = now + timedelta(seconds=settings.lease_seconds)
        state.updated_at = now
        if meta.online_transcription is None:
            meta.online_transcription = meta.transcription.model_copy(deep=True)

    try:
        store.modify_metadata(recording_id, edit)
    except _NotClaimable:
        return False
    return not gave_up


def run_stage(
    store: RecordingStore,
    stage: str,
    recording_ids: Sequence[str],
    services: StageModels,
    *,
    max_concurrent: int | None = None,
    force: bool = False,
    owner: str | None = None,
    settings: PipelineSettings | None = None,
) -> StageReport:
    """Run ``stage`` over ``recording_ids`` with bounded concurrency; failures are isolated.

    A recording whose stage fingerprint is unchanged (and not flagged for that stage) is
    skipped. A failing recording is marked failed with its reason and left out of the result's
    ``ok`` list; the others go on. With ``owner`` (the run holding the leases) a recording whose
    lease another run took over is dropped (``lost``), and leases are renewed while working.
    A store that stays unavailable (or refuses writes) for ``storage_retry_seconds`` raises
    :class:`StorageUnavailableError` once the recordings in flight are done: nothing is marked
    failed for it, and the next run takes the leases over.
    """
    settings = settings or PipelineSettings.from_env()
    workers = max(1, max_concurrent or settings.max_concurrent)
    spec = STAGES[stage]
    report = StageReport(stage)
    lock = threading.Lock()
    outage = threading.Event()
    outage_error: list[str] = []
    heartbeat = Heartbeat(store, owner, settings.lease_seconds) if owner else None
    park(f"before:{stage}")  # fault tests only

    def one(recording_id: str) -> None:
        if outage.is_set():
            return
        started = time.perf_counter()
        if heartbeat:
            heartbeat.add(recording_id)
        try:
            ran = retrying(
                lambda: _run_one(store, recording_id, stage, spec.run, services, force, owner, settings),
                settings.storage_retry_seconds,
                outage,
                f"{stage} of {recording_id}",
            )
        except LeaseLostError as exc:
            log.warning("%s: %s", stage, exc)
            with lock:
                report.lost[recording_id] = str(exc)
            return
        except INFRA_ERRORS as exc:
            with lock:
                outage_error.append(f"{type(exc).__name__}: {one_line(exc)}")
            outage.set()
            return
        except Exception as exc:
            reason = f"{stage}: {type(exc).__name__}: {one_line(exc)}"
            if isinstance(exc, MemoryError):
                # The traceback's frames hold the arrays that ran out of memory: free them first, so
                # that marking this one recording failed (and releasing its lease) can allocate.
                traceback.clear_frames(exc.__traceback__)
                del exc
                gc.collect()
            mark_failed(store, recording_id, reason, owner=owner)
            with lock:
                report.failed[recording_id] = reason
            return
        finally:
            if heartbeat:
                heartbeat.discard(recording_id)
        with lock:
            (report.ran if ran else report.cached).append(recording_id)
            report.seconds[recording_id] = round(time.perf_counter() - started, 4)
        park(f"stage:{stage}")  # fault tests only (inert unless CALLPIPE_FAULT_PARK names it)

    with heartbeat or contextlib.nullcontext(), ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, recording_ids))
    if outage_error:
        done = len(report.ran) + len(report.cached) + len(report.failed) + len(report.lost)
        raise StorageUnavailableError(
            f"stage {stage} stopped after {done} of {len(recording_ids)} recordings: the store failed "
            f"for {settings.storage_retry_seconds:g} s ({outage_error[0]}); the rest are not marked "
            "failed and the next run takes them over"
        )
    return report


def _run_one(
    store: RecordingStore,
    recording_id: str,
    stage: str,
    fn: StageFn,
    services: StageModels,
    force: bool,
    owner: str | None,
    settings: PipelineSettings,
) -> bool:
    if owner:
        meta = hold(store, recording_id, owner, settings.lease_seconds)
    else:
        meta = store.get_metadata(recording_id)
    digest = fingerprint(stage, meta)
    flagged = meta.status.reprocess_requested and (
        not meta.status.reprocess_stages or stage in meta.status.reprocess_stages
    )
    if not force and not flagged and meta.provenance.stage_inputs.get(stage) == digest:
        return False
    started = time.perf_counter()
    patch = fn(meta, services, store)
    elapsed = round(time.perf_counter() - started, 4)

    def apply(current: RecordingMetadata) -> RecordingMetadata:
        if owner:  # compare-and-swap on the owner too: a run that lost the lease never writes
            check_owner(current, owner)
        updated = current.model_copy(update=patch)
        updated.provenance.stage_inputs[stage] = digest
        updated.processing_metrics.stage_seconds[stage] = elapsed
        if owner:
            extend(updated, settings.lease_seconds)
        return updated

    store.modify_metadata(recording_id, apply)
    log.debug("stage %s ran on %s for run %s", stage, recording_id, owner or "-")
    return True
