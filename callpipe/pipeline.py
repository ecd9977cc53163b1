"""Offline processing of recordings from the stages, in plain Python.

The Dagster assets (``callpipe.defs``) call :func:`run_stage` once per stage over a day's
recordings and :func:`finalize` at the end; :func:`process_recording` runs every stage for one
recording (CLI, tests). Each stage's output lives in the recording's metadata document, and
``provenance.stage_inputs[stage]`` holds a fingerprint of the stage's input and version: a stage
whose fingerprint has not changed is skipped, so re-running a day only does new or changed work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from callpipe import __version__
from callpipe.schema import ProcessingMode, ProcessingStatus, RecordingMetadata
from callpipe.stages import STAGES, Services, StageFn
from callpipe.storage import RecordingStore

STAGE_ORDER: tuple[str, ...] = tuple(STAGES)
"""Stage names in execution order: stt, correction, sentiment, intent, entities, topics."""


class PipelineSettings(BaseModel):
    """Batch behaviour, read from the environment by :meth:`from_env`."""

    max_attempts: int = Field(default=3, ge=1)
    lease_seconds: int = Field(default=3600, ge=10)
    max_concurrent: int = Field(default=2, ge=1, le=64)

    @classmethod
    def from_env(cls, **overrides: Any) -> PipelineSettings:
        env = {
            "max_attempts": os.environ.get("BATCH_MAX_ATTEMPTS"),
            "lease_seconds": os.environ.get("BATCH_LEASE_SECONDS"),
            "max_concurrent": os.environ.get("BATCH_MAX_CONCURRENT"),
        }
        values = {k: v for k, v in env.items() if v not in (None, "")}
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
    meta: RecordingMetadata, settings: PipelineSettings, now: datetime | None = None
) -> str | None:
    """Why ``meta`` needs offline work now, or None when it is done (or busy elsewhere)."""
    now = now or datetime.now(UTC)
    state = meta.status
    if state.status == ProcessingStatus.PROCESSING and state.lease_until and state.lease_until > now:
        return None
    if state.reprocess_requested:
        return "reprocess requested"
    if not meta.processed:
        if state.status == ProcessingStatus.FAILED:
            return "retry" if state.attempts < settings.max_attempts else None
        return "expired lease" if state.status == ProcessingStatus.PROCESSING else "unprocessed"
    if meta.provenance.stage_versions != stage_versions():
        return "stale stage versions"
    return None


@dataclass
class StageReport:
    """What one stage did over a batch of recordings."""

    stage: str
    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> list[str]:
        return self.ran + self.cached


def claim(store: RecordingStore, recording_id: str, run_id: str, settings: PipelineSettings) -> bool:
    """Take the processing lease of a recording; False when another live run holds it."""
    now = datetime.now(UTC)
    taken = False

    def edit(meta: RecordingMetadata) -> None:
        nonlocal taken
        state = meta.status
        busy = state.status == ProcessingStatus.PROCESSING and state.lease_until and state.lease_until > now
        if busy and state.lease_owner != run_id:
            taken = False
            return
        if state.lease_owner != run_id or state.status != ProcessingStatus.PROCESSING:
            state.attempts += 1
        state.status = ProcessingStatus.PROCESSING
        state.lease_owner = run_id
        state.lease_until = now + timedelta(seconds=settings.lease_seconds)
        state.updated_at = now
        if meta.online_transcription is None:
            meta.online_transcription = meta.transcription.model_copy(deep=True)
        taken = True

    store.modify_metadata(recording_id, edit)
    return taken


def run_stage(
    store: RecordingStore,
    stage: str,
    recording_ids: Sequence[str],
    services: Services,
    *,
    max_concurrent: int = 2,
    force: bool = False,
) -> StageReport:
    """Run ``stage`` over ``recording_ids`` with bounded concurrency; failures are isolated.

    A recording whose stage fingerprint is unchanged (and not flagged for that stage) is
    skipped. A failing recording is marked failed with its reason and left out of the result's
    ``ok`` list; the others go on.
    """
    spec = STAGES[stage]
    report = StageReport(stage)
    lock = threading.Lock()

    def one(recording_id: str) -> None:
        started = time.perf_counter()
        try:
            ran = _run_one(store, recording_id, stage, spec.run, services, force=force)
        except Exception as exc:
            reason = f"{stage}: {type(exc).__name__}: {_one_line(exc)}"
            mark_failed(store, recording_id, reason)
            with lock:
                report.failed[recording_id] = reason
            return
        with lock:
            (report.ran if ran else report.cached).append(recording_id)
            report.seconds[recording_id] = round(time.perf_counter() - started, 4)

    with ThreadPoolExecutor(max_workers=max(1, max_concurrent)) as pool:
        list(pool.map(one, recording_ids))
    return report


def _run_one(
    store: RecordingStore, recording_id: str, stage: str, fn: StageFn, services: Services, *, force: bool
) -> bool:
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
        updated = current.model_copy(update=patch)
        updated.provenance.stage_inputs[stage] = digest
        updated.processing_metrics.stage_seconds[stage] = elapsed
        return updated

    store.modify_metadata(recording_id, apply)
    return True


def finalize(
    store: RecordingStore, recording_ids: Iterable[str], *, run_id: str, services: Services
) -> dict[str, str]:
    """Mark recordings processed (every stage done): status, provenance, transcript file.

    Returns ``{recording_id: error}`` for the ones that could not be finalized.
    """
    failed: dict[str, str] = {}
    versions = stage_versions()
    for recording_id in recording_ids:

        def done(meta: RecordingMetadata) -> None:
            missing = [s for s in STAGE_ORDER if s not in meta.provenance.stage_inputs]
            if missing:
                raise ValueError(f"stages not run: {', '.join(missing)}")
            now = datetime.now(UTC)
            meta.processed = True
            meta.processing_mode = ProcessingMode.OFFLINE
            meta.status.status = ProcessingStatus.PROCESSED
            meta.status.error = None
            meta.status.lease_owner = None
            meta.status.lease_until = None
            meta.status.reprocess_requested = False
            meta.status.reprocess_stages = []
            meta.status.updated_at = now
            meta.processing_metrics.total_seconds = round(
                sum(meta.processing_metrics.stage_seconds.values()), 4
            )
            meta.provenance.pipeline_version = __version__
            meta.provenance.stage_versions = dict(versions)
            meta.provenance.models = services.model_names()
            meta.provenance.run_id = run_id
            meta.provenance.processed_at = now

        try:
            meta = store.modify_metadata(recording_id, done)
            store.save_transcript(recording_id, meta.transcription.corrected_text or meta.transcription.text)
        except Exception as exc:
            failed[recording_id] = f"finalize: {type(exc).__name__}: {_one_line(exc)}"
            mark_failed(store, recording_id, failed[recording_id])
    return failed


def mark_failed(store: RecordingStore, recording_id: str, reason: str) -> None:
    """Record a failure (reason, lease released); never raises."""

    def edit(meta: RecordingMetadata) -> None:
        meta.processed = False
        meta.status.status = ProcessingStatus.FAILED
        meta.status.error = reason[:500]
        meta.status.lease_owner = None
        meta.status.lease_until = None
        meta.status.updated_at = datetime.now(UTC)

    with contextlib.suppress(Exception):  # the caller is already reporting the failure
        store.modify_metadata(recording_id, edit)


def process_recording(
    store: RecordingStore,
    recording_id: str,
    services: Services,
    *,
    run_id: str = "local",
    settings: PipelineSettings | None = None,
    force: bool = False,
) -> RecordingMetadata:
    """Every stage for one recording, then :func:`finalize`. Failures are recorded, then raised."""
    settings = settings or PipelineSettings.from_env()
    if not claim(store, recording_id, run_id, settings):
        raise RuntimeError(f"recording {recording_id} is being processed by another run")
    for stage in STAGE_ORDER:
        report = run_stage(store, stage, [recording_id], services, max_concurrent=1, force=force)
        if report.failed:
            raise RuntimeError(report.failed[recording_id])
    failed = finalize(store, [recording_id], run_id=run_id, services=services)
    if failed:
        raise RuntimeError(failed[recording_id])
    return store.get_metadata(recording_id)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
