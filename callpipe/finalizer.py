"""Finishing recordings: :func:`finalize` marks them processed once every stage ran, and
:func:`process_recording` runs every stage for one recording, then finalizes it (CLI, tests).

The stages themselves run through :func:`callpipe.stage_runner.run_stage`; failures are recorded by
:func:`callpipe.failures.mark_failed`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from callpipe import __version__
from callpipe.failures import INFRA_ERRORS, mark_failed, one_line, retrying
from callpipe.faultpoints import park
from callpipe.leases import LeaseLostError, check_owner
from callpipe.pii import RedactionMode, apply_redaction
from callpipe.schema import ProcessingMode, ProcessingStatus, RecordingMetadata
from callpipe.stage_list import StageModels
from callpipe.stage_runner import STAGE_ORDER, PipelineSettings, claim, run_stage, stage_versions
from callpipe.storage import RecordingStore

log = logging.getLogger(__name__)


def finalize(
    store: RecordingStore,
    recording_ids: Iterable[str],
    *,
    run_id: str,
    services: StageModels,
    settings: PipelineSettings | None = None,
) -> dict[str, str]:
    """Mark recordings processed (every stage done): status, provenance, redaction, transcript file.

    ``PII_REDACTION`` (:mod:`callpipe.pii`) decides what the document and the transcript files keep:
    with ``mask`` a ``.redacted.txt`` file goes beside the ``.txt``; with ``drop`` the ``.txt`` holds
    the redacted transcript. The transcript is written first, so a
    document never says processed without it. Only recordings whose lease ``run_id`` holds are
    finalized. Returns ``{recording_id: error}`` for the ones that could not be finalized; a store
    still unavailable after ``storage_retry_seconds`` raises (those finalized so far stay done).
    """
    settings = settings or PipelineSettings.from_env()
    never = threading.Event()
    failed: dict[str, str] = {}
    versions = stage_versions()
    mode = RedactionMode.from_env()
    for recording_id in recording_ids:

        def done(meta: RecordingMetadata) -> None:
            check_owner(meta, run_id)
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
            apply_redaction(meta, mode)

        def write(recording_id: str = recording_id, done: Callable[[RecordingMetadata], None] = done) -> None:
            final = store.get_metadata(recording_id)
            done(final)
            text = final.transcription.corrected_text or final.transcription.text
            store.save_transcript(recording_id, text)
            if mode == RedactionMode.MASK and final.transcription.redacted_text is not None:
                store.save_transcript(recording_id, final.transcription.redacted_text, redacted=True)
            store.modify_metadata(recording_id, done)

        try:
            retrying(write, settings.storage_retry_seconds, never, f"finalize of {recording_id}")
        except LeaseLostError as exc:  # another run took it over and finishes it
            log.warning("finalize: %s", exc)
            failed[recording_id] = f"finalize: {exc}"
        except INFRA_ERRORS:
            raise
        except Exception as exc:
            failed[recording_id] = f"finalize: {type(exc).__name__}: {one_line(exc)}"
            mark_failed(store, recording_id, failed[recording_id], owner=run_id)
        park("finalize")  # fault tests only (inert unless CALLPIPE_FAULT_PARK names it)
    return failed


def process_recording(
    store: RecordingStore,
    recording_id: str,
    services: StageModels,
    *,
    run_id: str = "local",
    settings: PipelineSettings | None = None,
    force: bool = False,
) -> RecordingMetadata:
    """Every stage for one recording, then :func:`finalize`. Failures are recorded, then raised."""
    settings = settings or PipelineSettings.from_env()
    if not claim(store, recording_id, run_id, settings, force=True):
        raise RuntimeError(f"recording {recording_id} is being processed by another run")
    for stage in STAGE_ORDER:
        report = run_stage(
            store,
            stage,
            [recording_id],
            services,
            max_concurrent=1,
            force=force,
            owner=run_id,
            settings=settings,
        )
        if report.failed or report.lost:
            raise RuntimeError({**report.failed, **report.lost}[recording_id])
    failed = finalize(store, [recording_id], run_id=run_id, services=services, settings=settings)
    if failed:
        raise RuntimeError(failed[recording_id])
    return store.get_metadata(recording_id)
