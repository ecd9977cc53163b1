"""The recording-store interface and the small result types it returns."""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from callpipe.schema import RecordingMetadata
from callpipe.storage.errors import ConflictError
from callpipe.storage.ids import validate_date


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What :meth:`RecordingStore.save_recording` wrote.

    ``local_path`` is the audio file (local/both), ``s3_path`` the ``s3://`` URI of
    the audio (s3/both, even while ``pending_sync``), ``metadata_path`` the local
    path or URI of the metadata document.
    """

    recording_id: str
    local_path: Path | None
    s3_path: str | None
    metadata_path: str
    size_bytes: int
    checksum: str
    pending_sync: bool
    metadata: RecordingMetadata


@dataclass(frozen=True, slots=True)
class RecordingRef:
    """A listing entry, answered from the index without reading the metadata document."""

    recording_id: str
    conversation_id: str
    call_date: str
    timestamp: datetime | None
    processed: bool
    format: str | None = None


@dataclass(frozen=True, slots=True)
class ListingError:
    """A per-file problem met while listing or iterating (the rest goes on)."""

    path: str
    recording_id: str | None
    message: str


@dataclass(slots=True)
class RecordingPage:
    """One page of :meth:`RecordingStore.list_recordings`; pass ``next_cursor`` back for the next."""

    items: list[RecordingRef]
    next_cursor: str | None
    errors: list[ListingError] = field(default_factory=list)


@dataclass(slots=True)
class SyncReport:
    """Outcome of :meth:`MirroredStore.sync_pending`."""

    uploaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    remaining: int = 0


class RecordingStore(ABC):
    """Audio + one metadata JSON document per recording, with an index for cheap listing.

    Implementations: :class:`~callpipe.storage.local.LocalStore`,
    :class:`~callpipe.storage.s3.S3Store` and :class:`~callpipe.storage.mirrored.MirroredStore`.
    """

    backend: str

    @abstractmethod
    def save_recording(
        self,
        audio_data: bytes,
        conversation_id: str,
        metadata: RecordingMetadata | dict[str, Any] | None = None,
        format: str = "wav",
        recording_id: str | None = None,
    ) -> SaveResult:
        """Store audio then metadata; the store fills ``metadata.audio`` and ``metadata.storage``.

        ``format`` is a hint: the probed container decides the stored format and extension.
        Raises ``InvalidAudioError``, ``InvalidIdError``, ``InvalidMetadataError``, ``RecordingExistsError``
        (nothing written for any of them), ``TypeError`` for an argument of the wrong Python type.
        """

    @abstractmethod
    def get_recording(self, recording_id: str) -> bytes:
        """Audio bytes, verified against the sha256 in the metadata (``ChecksumMismatchError``)."""

    @abstractmethod
    def get_metadata(self, recording_id: str) -> RecordingMetadata:
        """The metadata document (``RecordingNotFoundError``, ``MetadataCorruptError``)."""

    @abstractmethod
    def update_metadata(self, recording_id: str, metadata: RecordingMetadata) -> RecordingMetadata:
        """Replace the document atomically if its stored revision equals ``metadata.revision``.

        Returns the stored document (revision + 1). Raises ``ConflictError`` when someone
        else wrote since ``metadata`` was read; nothing is merged. ``recording_id``,
        ``conversation_id`` and ``timestamp`` cannot change; ``audio`` and ``storage``
        are owned by the store and keep their stored values.
        """

    def modify_metadata(
        self,
        recording_id: str,
        fn: Callable[[RecordingMetadata], RecordingMetadata | None],
        retries: int = 5,
    ) -> RecordingMetadata:
        """Read-modify-write with retries: ``fn`` edits the document in place (returning None) or
        returns a new one; on ``ConflictError`` the document is re-read and ``fn`` applied again.
        """
        for attempt in range(retries + 1):
            current = self.get_metadata(recording_id)
            changed = fn(current)
            try:
                return self.update_metadata(recording_id, changed if changed is not None else current)
            except ConflictError:
                if attempt == retries:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    @abstractmethod
    def list_recordings(
        self,
        conversation_id: str | None = None,
        processed: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RecordingPage:
        """Page through recordings ordered by (call date, recording id), from the index only.

        ``since``/``until`` bound the timestamp (inclusive); pass the same filters with
        ``cursor`` to continue. ``processed=False`` reads only the pending markers.
        """

    @abstractmethod
    def list_pending_dates(self) -> list[str]:
        """Call dates (``YYYY-MM-DD``) that have at least one unprocessed recording, ascending."""

    @abstractmethod
    def list_dates(self) -> list[str]:
        """Call dates (``YYYY-MM-DD``, UTC) that have at least one recording, ascending."""

    def list_pending_ids(self, call_date: str) -> list[str]:
        """Ids of the unprocessed recordings of one call date (UTC), ascending.

        Index stores answer from key names alone (no entry or document is read); this
        fallback pages through :meth:`list_recordings`.
        """
        return [ref.recording_id for ref in self._pending_of_day(call_date)]

    def pending_refs(self, call_date: str, ids: list[str]) -> list[RecordingRef]:
        """Listing entries (timestamps included) of pending recordings of one call date (UTC), by id.

        Ids no longer pending are left out. Index stores read one small index entry per id (in
        parallel on S3) and list nothing; this fallback pages through :meth:`list_recordings`.
        """
        wanted = set(ids)
        return [ref for ref in self._pending_of_day(call_date) if ref.recording_id in wanted]

    def _pending_of_day(self, call_date: str) -> list[RecordingRef]:
        since = datetime.combine(date.fromisoformat(validate_date(call_date)), dtime(0), tzinfo=UTC)
        until = since + timedelta(days=1) - timedelta(microseconds=1)
        refs: list[RecordingRef] = []
        cursor = None
        while True:
            page = self.list_recordings(processed=False, since=since, until=until, limit=1000, cursor=cursor)
            refs += [ref for ref in page.items if ref.call_date == call_date]
            cursor = page.next_cursor
            if cursor is None:
                return refs

    def pending_ids_by_date(self) -> dict[str, list[str]]:
        """Every unprocessed recording id grouped by call date (UTC), both ascending.

        Index stores answer with one listing of key names (S3: one ``ListObjectsV2`` per 1,000
        pending recordings), reading no entry or document.
        """
        return {day: ids for day in self.list_pending_dates() if (ids := self.list_pending_ids(day))}

    def pending_times_by_date(self) -> dict[str, list[tuple[str, dtime | None]]]:
        """Every unprocessed recording as ``(id, UTC time of day of its call)``, grouped by call date
        (UTC), both ascending: with the date, enough to place the call in any timezone.

        Index stores answer from key names alone, like :meth:`pending_ids_by_date`; the time is
        None for a marker written before names held it (:meth:`pending_refs` reads its entry,
        which has the timestamp). This fallback pages through :meth:`list_recordings`.
        """
        by_date: dict[str, list[tuple[str, dtime | None]]] = {}
        for day in self.list_pending_dates():
            for ref in sorted(self._pending_of_day(day), key=lambda ref: ref.recording_id):
                clock = ref.timestamp.astimezone(UTC).time() if ref.timestamp else None
                by_date.setdefault(day, []).append((ref.recording_id, clock))
        return by_date

    @abstractmethod
    def iter_recordings(
        self,
        call_date: str,
        processed: bool | None = None,
        errors: list[ListingError] | None = None,
    ) -> Iterator[RecordingMetadata]:
        """Metadata of every recording of one call date, read in batches.

        Unreadable documents are appended to ``errors`` (and skipped) instead of stopping the
        iteration. With ``processed=False`` only pending markers are followed, and a marker whose
        document is already processed (left by a crash) is removed.
        """

    def request_reprocess(self, recording_id: str, stages: list[str] | None = None) -> RecordingMetadata:
        """Queue a recording for offline work again (all stages, or only ``stages``).

        It becomes unprocessed (so the unprocessed-recordings sensor and the nightly sweep see
        it) with ``status.reprocess_requested``; its previous analytics stay until replaced.
        """
        from callpipe.schema import ProcessingStatus

        def flag(meta: RecordingMetadata) -> None:
            meta.processed = False
            meta.status.status = ProcessingStatus.PENDING
            meta.status.error = None
            meta.status.attempts = 0
            meta.status.reprocess_requested = True
            meta.status.reprocess_stages = sorted(set(stages or []))

        return self.modify_metadata(recording_id, flag)

    @abstractmethod
    def get_storage_stats(self) -> dict[str, Any]:
        """Counts and sizes, from the index and file/object listings (no metadata reads)."""

    @abstractmethod
    def local_audio_path(self, recording_id: str) -> Path:
        """The store's own local audio file (a local store; an S3 store has none and raises)."""

    @contextmanager
    def audio_file(self, recording_id: str) -> Iterator[Path]:
        """A local file with the audio for the duration of the ``with`` block.

        A local store yields its own file; an S3 store stages a verified download in a private
        temporary file deleted when the block ends, so no host keeps a copy that an erasure
        elsewhere could not reach.
        """
        yield self.local_audio_path(recording_id)

    @abstractmethod
    def delete_recording(self, recording_id: str) -> None:
        """Remove audio, metadata, transcript and index entries (erasure)."""

    @abstractmethod
    def save_transcript(self, recording_id: str, text: str, *, redacted: bool = False) -> str:
        """Write ``transcripts/{conversation_id}/{recording_id}.txt`` (``.redacted.txt`` for the
        redacted copy, :mod:`callpipe.pii`); returns its path or URI."""

    @abstractmethod
    def get_transcript(self, recording_id: str, *, redacted: bool = False) -> str:
        """The text saved by :meth:`save_transcript` (``RecordingNotFoundError`` when none)."""
