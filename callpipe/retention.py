"""Retention policy: audio older than ``RETENTION_DAYS`` goes, de-identified analytics stay.

:func:`apply_retention` (run daily by the Dagster job ``apply_retention``, or
``callpipe retention``) takes every processed recording whose call is more than ``days`` old
and, on every backend:

1. de-identifies its metadata document (:func:`deidentify`): transcripts become their redacted
   text (:func:`callpipe.pii.redact`, plus the person names the entity stage found), word
   lists, corrections and raw entity values are dropped (their counts per kind are kept), the
   caller (masked phone and phone key) is cleared, so nothing links the call back to a person;
   sentiment, intent, topics, metrics, durations, outcome and provenance stay;
2. deletes its audio and transcript files;
3. marks it ``index/retained/{date}/{id}`` so later runs skip it without reading it.

Unprocessed recordings keep their audio (the pipeline needs it) and are listed in the report
as ``unprocessed``; they are retained on the first run after they are processed. Every step is
idempotent: a run interrupted (e.g. S3 unreachable) is finished by the next one.
``RETENTION_DAYS`` unset or empty means keep forever.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from callpipe.schema import CallerInfo, RecordingMetadata, RetentionInfo
from callpipe.storage import index
from callpipe.storage.base import RecordingStore
from callpipe.storage.blob_store import BlobStore
from callpipe.storage.errors import MetadataCorruptError, RecordingNotFoundError, StorageError
from callpipe.storage.index import Entry
from callpipe.storage.mirrored import store_sides
from callpipe.storage.pending import pending_ids
from callpipe.storage.purge import purge_media

RETENTION_ENV = "RETENTION_DAYS"


def retention_days(environ: Mapping[str, str] | None = None) -> int | None:
    """``RETENTION_DAYS`` as a whole number of days; None (keep forever) when unset or empty."""
    env = os.environ if environ is None else environ
    raw = (env.get(RETENTION_ENV) or "").strip()
    if not raw:
        return None
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"{RETENTION_ENV}={raw!r}: expected a whole number of days") from None
    if days < 1:
        raise ValueError(f"{RETENTION_ENV}={raw!r}: must be at least 1 (unset it to keep audio forever)")
    return days


@dataclass(slots=True)
class RetentionReport:
    """What one :func:`apply_retention` run did (or, with ``dry_run``, would do)."""

    days: int
    cutoff: datetime
    dry_run: bool = False
    retained: list[str] = field(default_factory=list)
    unprocessed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    objects_removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "retained": len(self.retained),
            "unprocessed": len(self.unprocessed),
            "failed": len(self.failed),
            "objects_removed": self.objects_removed,
            "retained_ids": self.retained[:100],
            "unprocessed_ids": self.unprocessed[:100],
            "failures": dict(list(self.failed.items())[:100]),
        }


def apply_retention(
    store: RecordingStore, days: int, now: datetime | None = None, *, dry_run: bool = False
) -> RetentionReport:
    """Retain every processed recording whose call timestamp is before ``now - days``.

    Candidates come from the index alone (by-date entries minus retained and pending markers),
    so a run reads only the documents it changes. A per-recording failure is reported in
    ``failed`` and retried by the next run.
    """
    if days < 1:
        raise ValueError(f"retention days must be at least 1, got {days}")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        cutoff = now - timedelta(days=days)
    except OverflowError:  # found by fuzzing: --days 99999999999999999999
        raise ValueError(f"retention of {str(days)[:20]} days reaches back before the year 1") from None
    report = RetentionReport(days=days, cutoff=cutoff, dry_run=dry_run)
    index_side, sides = store_sides(store)
    last_day = cutoff.astimezone(UTC).date().isoformat()
    for day in index_side._list_dirs(index.BY_DATE):
        if day > last_day:
            break
        for entry in _candidates(index_side, day, report):
            if entry.timestamp >= cutoff:
                continue
            if dry_run:
                report.retained.append(entry.recording_id)
                continue
            try:
                report.objects_removed += _retain(store, index_side, sides, entry, days, now)
                report.retained.append(entry.recording_id)
            except (StorageError, ValueError) as exc:
                report.failed[entry.recording_id] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return report


def _candidates(side: BlobStore, day: str, report: RetentionReport) -> list[Entry]:
    """Entries of ``day`` not yet retained; unprocessed ones go to ``report.unprocessed``."""
    done = set(side._list_names(f"{index.RETAINED}/{day}"))
    pending = set(pending_ids(side, day))
    names = [n for n in side._list_names(f"{index.BY_DATE}/{day}") if n not in done]
    keys = [index.by_date_key(day, n) for n in names]
    entries: list[Entry] = []
    for name, key, raw in zip(names, keys, side._get_many(keys), strict=True):
        if raw is None:
            continue
        try:
            entry = Entry.parse(raw, side._uri(key))
        except MetadataCorruptError as exc:
            report.failed[name] = str(exc)
            continue
        if name in pending:
            if entry.timestamp < report.cutoff:
                report.unprocessed.append(name)
            continue
        entries.append(entry)
    return entries


def _retain(
    store: RecordingStore,
    index_side: BlobStore,
    sides: list[BlobStore],
    entry: Entry,
    days: int,
    now: datetime,
) -> int:
    """De-identify the document first (so a sync never looks for the audio again), then delete
    the audio and transcripts on every side, then mark the recording retained."""
    rid = entry.recording_id
    try:
        meta = store.get_metadata(rid)
    except RecordingNotFoundError:
        return 0  # deleted meanwhile
    if not meta.processed:
        return 0  # reprocessing was requested since the listing: keep the audio for it
    if meta.retention is None:
        store.modify_metadata(rid, lambda doc: deidentify(doc, days, now))
    removed = 0
    for side in sides:
        removed += len(purge_media(side, entry))
    index_side._put(index.retained_key(entry.call_date, rid), entry.to_bytes())
    return removed


_REDACTED_PERSON = "[PERSON]"


def deidentify(meta: RecordingMetadata, days: int, now: datetime) -> None:
    """Strip ``meta`` (in place) down to what is not linkable to the caller; idempotent."""
    from callpipe.pii import map_strings, redact

    names = _person_names(meta)

    def clean(text: str | None) -> str:
        out = redact(text or "")
        for name in names:
            out = re.sub(rf"\b{re.escape(name)}\b", _REDACTED_PERSON, out, flags=re.IGNORECASE)
        return out

    counts: dict[str, int] = {}
    if meta.entities is not None:
        for kind, values in meta.entities:
            if values:
                counts[kind] = len(values)
    for transcription in (meta.transcription, meta.online_transcription):
        if transcription is None:
            continue
        text = clean(transcription.redacted_text or transcription.corrected_text or transcription.text)
        transcription.text = text
        transcription.redacted_text = text
        transcription.corrected_text = None
        transcription.word_confidences = []
        transcription.corrections_made = []
        transcription.clarification_reason = None
    meta.turns = [turn.model_copy(update={"text": clean(turn.text)}) for turn in meta.turns]
    meta.turn_redaction = None  # it kept person names; the turns are cleaned now
    meta.entities = None
    meta.caller = CallerInfo()
    meta.extra = map_strings(meta.extra, clean)
    if meta.retention is None:
        meta.retention = RetentionInfo(audio_deleted_at=now, retention_days=days, entity_counts=counts)


def _person_names(meta: RecordingMetadata) -> list[str]:
    """Person names the entity stage found (``redact`` keeps names), longest first."""
    if meta.entities is None:
        return []
    found = {e.text.strip() for e in meta.entities.persons if len(e.text.strip()) > 2}
    return sorted(found, key=len, reverse=True)

