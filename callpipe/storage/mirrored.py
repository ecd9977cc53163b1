"""Local store mirrored to S3 (``STORAGE_BACKEND=both``).

The local directory is the authority: every write lands there first, reads prefer
it, and listing uses its index. Each write is then copied to S3. When S3 fails
(refused connection, timeout, 5xx) the caller sees no error: the recording stays
local with ``storage.pending_sync=True`` and a marker ``index/pending-sync/{id}``,
and :meth:`MirroredStore.sync_pending` (or a later successful save, a few at a
time) uploads it. After an S3 outage further S3 attempts are skipped for
``s3_retry_after`` seconds so that saves stay fast.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any, TypeVar

from callpipe.schema import RecordingMetadata, StorageInfo
from callpipe.storage import index
from callpipe.storage.base import (
    ListingError,
    RecordingPage,
    RecordingRef,
    RecordingStore,
    SaveResult,
    SyncReport,
)
from callpipe.storage.blob_store import BlobStore, dump_document, prepare_document
from callpipe.storage.errors import (
    ConflictError,
    RecordingNotFoundError,
    StorageError,
    StorageUnavailableError,
)
from callpipe.storage.index import Entry
from callpipe.storage.local import LocalStore
from callpipe.storage.purge import purge_recording, read_tombstone
from callpipe.storage.s3 import S3Store

log = logging.getLogger(__name__)
T = TypeVar("T")


class MirroredStore(RecordingStore):
    """Writes go to ``local`` then ``s3``; ``opportunistic_sync`` pending recordings are synced
    after each successful save.
    """

    backend = "both"

    def __init__(
        self,
        local: LocalStore,
        s3: S3Store,
        opportunistic_sync: int = 2,
        s3_retry_after: float = 30.0,
    ) -> None:
        self.local = local
        self.s3 = s3
        self.opportunistic_sync = opportunistic_sync
        self.s3_retry_after = s3_retry_after
        self._s3_down_until = 0.0

    def __repr__(self) -> str:
        return f"MirroredStore({self.local!r}, {self.s3!r})"

    __str__ = __repr__

    # ---- writes ---------------------------------------------------------------------------------
    def save_recording(
        self,
        audio_data: bytes,
        conversation_id: str,
        metadata: RecordingMetadata | dict[str, Any] | None = None,
        format: str = "wav",
        recording_id: str | None = None,
    ) -> SaveResult:
        doc = prepare_document(audio_data, conversation_id, metadata, format, recording_id)
        entry = Entry.from_doc(doc)
        doc.storage = StorageInfo(
            backend="both",
            audio_path=self.local.audio_key(entry),
            s3_audio_key=self.s3.full_key(self.s3.audio_key(entry)),
            s3_metadata_key=self.s3.full_key(self.s3.metadata_key(entry)),
        )
        local = self.local
        local._write_recording(entry, audio_data, doc, claim=True, with_metadata=False)
        try:
            # Marked before S3 is tried, so a crash at any point leaves the recording to sync.
            token = self._mark_pending_sync(entry.recording_id)
            error = self._try_s3(lambda: self.s3._write_recording(entry, audio_data, doc, claim=False))
            if error is not None:
                doc.storage = doc.storage.model_copy(update={"pending_sync": True, "sync_error": error})
            local._put(local.metadata_key(entry), dump_document(doc))
        except BaseException:
            local._remove_all(entry, index.caller_key(doc))
            raise
        if error is None:
            self._unmark_pending_sync(entry.recording_id, token)
            if self.opportunistic_sync > 0 and local._list_names(index.PENDING_SYNC):
                self.sync_pending(limit=self.opportunistic_sync)
        assert doc.audio is not None
        return SaveResult(
            recording_id=entry.recording_id,
            local_path=local.path(local.audio_key(entry)),
            s3_path=None if error is not None else self.s3._uri(self.s3.audio_key(entry)),  # not there yet
            metadata_path=local._uri(local.metadata_key(entry)),
            size_bytes=doc.audio.file_size_bytes,
            checksum=doc.audio.checksum_sha256,
            pending_sync=error is not None,
            metadata=doc,
        )

    def update_metadata(self, recording_id: str, metadata: RecordingMetadata) -> RecordingMetadata:
        entry = self.local._entry(recording_id)
        token = self._mark_pending_sync(recording_id)
        try:
            new = self.local.update_metadata(recording_id, metadata)
        except BaseException:
            self._unmark_pending_sync(recording_id, token)
            raise
        if new.storage.pending_sync:
            return new  # never uploaded: sync_pending will copy audio, index and metadata together
        if self._try_s3(lambda: self.s3._put_replica(entry, new)) is None:
            self._unmark_pending_sync(recording_id, token)
            self._undo_if_erased(recording_id)
        else:
            self._mark_pending_sync(recording_id)
        return new

    def delete_recording(self, recording_id: str) -> None:
        """Delete on both sides; raises ``StorageUnavailableError`` if S3 cannot be reached (retry it)."""
        found = False
        for store in (self.local, self.s3):
            try:
                store.delete_recording(recording_id)
                found = True
            except RecordingNotFoundError:
                pass
        if not found:
            raise RecordingNotFoundError(f"recording {recording_id} not found in {self}")

    def save_transcript(self, recording_id: str, text: str, *, redacted: bool = False) -> str:
        path = self.local.save_transcript(recording_id, text, redacted=redacted)
        if self._try_s3(lambda: self.s3.save_transcript(recording_id, text, redacted=redacted)) is not None:
            self._mark_pending_sync(recording_id)
        else:
            self._undo_if_erased(recording_id)
        return path

    def _undo_if_erased(self, recording_id: str) -> None:
        """After an S3 write: if an erasure of this recording began meanwhile, remove the S3 copy.

        Erasure writes its tombstone before deleting anything, so a write that lands after the
        erasure's S3 deletion sees the tombstone here (see :mod:`callpipe.storage.purge`).
        """
        tombstone = read_tombstone(self.local, recording_id)
        if tombstone is not None:
            self._try_s3(lambda: purge_recording(self.s3, tombstone.entry, tombstone.callers))

    # ---- sync -----------------------------------------------------------------------------------
    def sync_pending(self, limit: int | None = None) -> SyncReport:
        """Upload recordings marked pending-sync (audio, index, transcript, metadata), then clear the
        flag and marker. Stops at the first sign that S3 is unreachable.
        """
        report = SyncReport()
        for recording_id in self.local._list_names(index.PENDING_SYNC)[:limit]:
            if self.local._exists(index.erasing_key(recording_id)):
                continue  # being erased: never upload it again
            try:
                self._sync_one(recording_id)
                report.uploaded.append(recording_id)
            except StorageUnavailableError as exc:
                report.failed[recording_id] = str(exc)
                self._s3_down_until = time.monotonic() + self.s3_retry_after
                break
            except StorageError as exc:
                log.warning("sync of %s failed: %s", recording_id, exc)
                report.failed[recording_id] = str(exc)
        else:
            self._s3_down_until = 0.0
        report.remaining = len(self.local._list_names(index.PENDING_SYNC))
        return report

    def _sync_one(self, recording_id: str) -> None:
        local, s3 = self.local, self.s3
        marker = index.pending_sync_key(recording_id)
        try:
            token = local._get(marker)
            entry = local._entry(recording_id)
        except (FileNotFoundError, RecordingNotFoundError):
            local._delete(marker)  # synced by someone else, or the recording was deleted
            return
        doc = local.get_metadata(recording_id)
        # Audio removed by the retention policy is not expected (nor uploaded) any more.
        audio = None if doc.retention is not None else local.get_recording(recording_id)  # checksum-verified
        s3._write_recording(entry, audio, doc, claim=False, with_metadata=False)
        for redacted in (False, True):
            with suppress(FileNotFoundError):
                s3._put(
                    s3.transcript_key(entry, redacted=redacted),
                    local._get(local.transcript_key(entry, redacted=redacted)),
                )
        if doc.storage.pending_sync or doc.storage.sync_error:
            doc = self._clear_sync_flag(recording_id)
        s3._put_replica(entry, doc)
        self._unmark_pending_sync(recording_id, token.decode())
        self._undo_if_erased(recording_id)

    def _clear_sync_flag(self, recording_id: str) -> RecordingMetadata:
        for _ in range(10):
            current = self.local.get_metadata(recording_id)
            storage = current.storage.model_copy(update={"pending_sync": False, "sync_error": None})
            try:
                return self.local._update(recording_id, current, storage=storage)
            except ConflictError:
                continue
        raise ConflictError(f"recording {recording_id}: could not clear pending_sync (kept changing)")

    def _try_s3(self, fn: Callable[[], object]) -> str | None:
        """Run an S3 write; return None on success, else a one-line reason (the error is logged)."""
        if time.monotonic() < self._s3_down_until:
            return "S3 skipped: it was unavailable moments ago"
        try:
            fn()
        except (StorageError, OSError) as exc:  # any S3 failure keeps the call locally, pending sync
            if not isinstance(exc, StorageError) or isinstance(exc, StorageUnavailableError):
                self._s3_down_until = time.monotonic() + self.s3_retry_after
            log.warning("S3 write failed, kept locally for sync: %s", exc)
            return str(exc) or type(exc).__name__
        return None

    def _mark_pending_sync(self, recording_id: str) -> str:
        token = uuid.uuid4().hex
        self.local._put(index.pending_sync_key(recording_id), token.encode())
        return token

    def _unmark_pending_sync(self, recording_id: str, token: str) -> None:
        """Remove the marker only if it is still the one this call wrote (a later writer's stays)."""
        key = index.pending_sync_key(recording_id)
        with self.local._lock(recording_id):
            try:
                if self.local._get(key).decode() == token:
                    self.local._delete(key)
            except FileNotFoundError:
                pass

    # ---- reads: local first, S3 when the local copy is missing ----------------------------------
    def _read(self, fn: Callable[[RecordingStore], T]) -> T:
        try:
            return fn(self.local)
        except RecordingNotFoundError:
            return fn(self.s3)

    def get_recording(self, recording_id: str) -> bytes:
        return self._read(lambda store: store.get_recording(recording_id))

    def get_metadata(self, recording_id: str) -> RecordingMetadata:
        return self._read(lambda store: store.get_metadata(recording_id))

    def get_transcript(self, recording_id: str, *, redacted: bool = False) -> str:
        return self._read(lambda store: store.get_transcript(recording_id, redacted=redacted))

    def local_audio_path(self, recording_id: str) -> Path:
        return self.local.local_audio_path(recording_id)

    @contextmanager
    def audio_file(self, recording_id: str) -> Iterator[Path]:
        """The local copy when there is one, else a staged download from S3."""
        try:
            path = self.local.local_audio_path(recording_id)
        except RecordingNotFoundError:
            with self.s3.audio_file(recording_id) as staged:
                yield staged
            return
        yield path

    def list_recordings(
        self,
        conversation_id: str | None = None,
        processed: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RecordingPage:
        return self.local.list_recordings(conversation_id, processed, since, until, limit, cursor)

    def list_pending_dates(self) -> list[str]:
        return self.local.list_pending_dates()

    def list_dates(self) -> list[str]:
        return self.local.list_dates()

    def list_pending_ids(self, call_date: str) -> list[str]:
        return self.local.list_pending_ids(call_date)

    def pending_ids_by_date(self) -> dict[str, list[str]]:
        return self.local.pending_ids_by_date()

    def pending_times_by_date(self) -> dict[str, list[tuple[str, dtime | None]]]:
        return self.local.pending_times_by_date()

    def pending_refs(self, call_date: str, ids: list[str]) -> list[RecordingRef]:
        return self.local.pending_refs(call_date, ids)

    def iter_recordings(
        self,
        call_date: str,
        processed: bool | None = None,
        errors: list[ListingError] | None = None,
    ) -> Iterator[RecordingMetadata]:
        return self.local.iter_recordings(call_date, processed, errors)

    def get_storage_stats(self) -> dict[str, Any]:
        """Local stats (the authority) plus where the mirror lives; S3 is not listed."""
        stats = self.local.get_storage_stats()
        stats.update(backend="both", bucket=self.s3.bucket, prefix=self.s3.prefix)
        return stats


def store_sides(store: RecordingStore) -> tuple[BlobStore, list[BlobStore]]:
    """``(index side, every side)`` of a store: the mirrored store's local side keeps the index
    and the tombstones, and is erased before S3; a single store is both. A catalog wrapper
    (:class:`callpipe.catalog.cataloged.CatalogStore`) stands for the store it wraps."""
    store = getattr(store, "wrapped", store)
    if isinstance(store, MirroredStore):
        return store.local, [store.local, store.s3]
    if isinstance(store, BlobStore):
        return store, [store]
    raise TypeError(f"erasure needs a LocalStore, S3Store or MirroredStore, got {type(store).__name__}")
