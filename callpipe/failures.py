"""Failure handling shared by the offline stages and finalize, in plain Python.

Two kinds of failure are kept apart: a store that is unavailable or refuses writes
(:data:`INFRA_ERRORS`) is not the recording's fault, so the call is retried with backoff
(:func:`retrying`) and then the step fails, nothing marked; any other error is the recording's
own, recorded on its document by :func:`mark_failed`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from callpipe.leases import LeaseLostError
from callpipe.pii import RedactionMode, apply_redaction, safe_message
from callpipe.schema import ProcessingStatus, RecordingMetadata
from callpipe.storage import RecordingStore, StorageUnavailableError, StorageWriteError

log = logging.getLogger(__name__)
T = TypeVar("T")
INFRA_ERRORS = (StorageUnavailableError, StorageWriteError)
"""Store failures that are not the recording's fault: retried, then the step fails; never marked failed."""


def retrying(call: Callable[[], T], seconds: float, stop: threading.Event, what: str) -> T:
    """``call()``, retried with exponential backoff while the store is unavailable, for at most
    ``seconds``; gives up at once when ``stop`` is set (another worker gave up)."""
    delay, deadline = 0.5, time.monotonic() + seconds
    while True:
        try:
            return call()
        except INFRA_ERRORS as exc:
            wait = delay * random.uniform(0.5, 1.0)
            if stop.is_set() or time.monotonic() + wait > deadline:
                raise
            log.warning("%s: %s; retrying in %.1f s", what, one_line(exc), wait)
            if stop.wait(wait):
                raise
            delay = min(delay * 2, 10.0)


def mark_failed(store: RecordingStore, recording_id: str, reason: str, *, owner: str | None = None) -> None:
    """Record a failure (reason redacted, lease released); never raises.

    With ``owner``, nothing is written when another run holds the lease now. With
    ``PII_REDACTION=drop`` the document is redacted too: raw text of a half-processed
    recording does not linger until a retry succeeds.
    """
    reason = safe_message(reason)

    def edit(meta: RecordingMetadata) -> None:
        if owner and meta.status.status == ProcessingStatus.PROCESSING and meta.status.lease_owner != owner:
            raise LeaseLostError(f"recording {recording_id} is leased to run {meta.status.lease_owner}")
        meta.processed = False
        meta.status.status = ProcessingStatus.FAILED
        meta.status.error = reason[:500]
        if RedactionMode.from_env() is RedactionMode.DROP:
            apply_redaction(meta, RedactionMode.DROP)
        meta.status.lease_owner = None
        meta.status.lease_until = None
        meta.status.updated_at = datetime.now(UTC)

    with contextlib.suppress(Exception):  # the caller is already reporting the failure
        store.modify_metadata(recording_id, edit)


def one_line(exc: BaseException) -> str:
    """First line of an exception's message with personal data redacted (it reaches logs and the UI)."""
    text = str(exc).strip().splitlines()
    return safe_message(text[0])[:300] if text else ""
