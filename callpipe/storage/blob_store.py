"""The recording store written once over a few blob primitives (get/put/conditional put/list).

:class:`~callpipe.storage.local.LocalStore` implements the primitives on a directory,
:class:`~callpipe.storage.s3.S3Store` on a bucket prefix; everything else (layout,
write order, revisions, index upkeep, listing) lives here so both behave the same.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from datetime import datetime, time
from typing import Any

from callpipe import faultpoints
from callpipe.schema import RecordingMetadata, StorageInfo
from callpipe.storage import index, pending, reconcile
from callpipe.storage.base import ListingError, RecordingPage, RecordingRef, RecordingStore, SaveResult
from callpipe.storage.documents import dump_document, parse_document, prepare_document, verify_checksum
from callpipe.storage.errors import (
    ConflictError,
    PreconditionFailed,
    RecordingExistsError,
    RecordingNotFoundError,
)
from callpipe.storage.ids import validate_id
from callpipe.storage.index import Entry
from callpipe.storage.purge import purge_recording

log = logging.getLogger(__name__)


class BlobStore(RecordingStore):
    """A :class:`RecordingStore` over abstract blob primitives; keys are ``/``-separated, relative."""

    audio_root: str
    metadata_root: str

    # ---- primitives implemented by the backends -------------------------------------------------
    @abstractmethod
    def _get(self, key: str) -> bytes:
        """The bytes at ``key``; ``FileNotFoundError`` when absent."""

    @abstractmethod
    def _get_versioned(self, key: str) -> tuple[bytes, str]:
        """Bytes plus a version token that changes with every write."""

    @abstractmethod
    def _version(self, key: str) -> str | None:
        """Current version token, None when absent."""

    @abstractmethod
    def _put(self, key: str, data: bytes, *, exclusive: bool = False) -> str:
        """Atomic write; ``exclusive`` raises ``FileExistsError`` if the key exists. Returns the version."""

    @abstractmethod
    def _put_if(self, key: str, data: bytes, version: str) -> str:
        """Atomic replace only if the current version is ``version`` (else ``PreconditionFailed``)."""

    @abstractmethod
    def _delete(self, key: str) -> None:
        """Remove ``key``; absent is fine."""

    @abstractmethod
    def _exists(self, key: str) -> bool: ...

    @abstractmethod
    def _list_names(self, directory: str, start_after: str | None = None) -> list[str]:
        """Sorted names of the files directly under ``directory`` (temp files excluded)."""

    @abstractmethod
    def _list_dirs(self, directory: str) -> list[str]:
        """Sorted names of the non-empty sub-directories of ``directory``."""

    @abstractmethod
    def _walk(self, directory: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every file below ``directory``."""

    @abstractmethod
    def _lock(self, recording_id: str) -> AbstractContextManager[object]:
        """Serialises writers of one recording where the backend can (local); S3 relies on If-Match."""

    @abstractmethod
    def _uri(self, key: str) -> str:
        """Human-readable location of ``key`` (a path or ``s3://`` URI) for messages."""

    @abstractmethod
    def _storage_info(self, entry: Entry) -> StorageInfo: ...

    @abstractmethod
    def _location(self) -> dict[str, Any]:
        """Where the store lives, for stats (root, or bucket and prefix)."""

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        """Bytes of several keys (None where absent); S3 overrides this to fetch in parallel."""
        out: list[bytes | None] = []
        for key in keys:
            try:
                out.append(self._get(key))
            except FileNotFoundError:
                out.append(None)
        return out

    # ---- layout ---------------------------------------------------------------------------------
    def metadata_dir(self, conversation_id: str) -> str:
        return f"{self.metadata_root}/{conversation_id}"

    def audio_key(self, entry: Entry) -> str:
        return f"{self.audio_root}/{entry.conversation_id}/{entry.recording_id}.{entry.format}"

    def metadata_key(self, entry: Entry) -> str:
        return f"{self.metadata_root}/{entry.conversation_id}/{entry.recording_id}.json"

    def transcript_key(self, entry: Entry, *, redacted: bool = False) -> str:
        suffix = ".redacted.txt" if redacted else ".txt"
        return f"transcripts/{entry.conversation_id}/{entry.recording_id}{suffix}"

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
        doc.storage = self._storage_info(entry)
        self._write_recording(entry, audio_data, doc, claim=True)
        return self._result(entry, doc)

    @abstractmethod
    def _result(self, entry: Entry, doc: RecordingMetadata) -> SaveResult: ...

    def _write_recording(
        self,
        entry: Entry,
        audio: bytes | None,
        doc: RecordingMetadata,
        *,
        claim: bool,
        with_metadata: bool = True,
    ) -> None:
        """Write in the order that keeps readers safe: id claim, audio, index entries, metadata last.

        With ``claim`` the by-id entry is created exclusively (the id is taken) and a failure
        removes what this call wrote; without it (replicas, sync) every write is an idempotent overwrite.
        ``audio`` is None only when syncing a recording whose audio the retention policy removed.
        """
        raw_entry = entry.to_bytes()
        caller = index.caller_key(doc)
        try:
            self._put(index.by_id_key(entry.recording_id), raw_entry, exclusive=claim)
        except FileExistsError:
            raise RecordingExistsError(f"recording {entry.recording_id} already exists in {self}") from None
        try:
            if audio is not None:
                self._put(self.audio_key(entry), audio)
                faultpoints.park("save:audio")  # a fault test kills a save here (audio, no document)
            self._put(index.by_date_key(entry.call_date, entry.recording_id), raw_entry)
            reconcile.add_caller_entry(self, entry, doc)
            if not doc.processed:
                self._put(index.pending_key(entry), raw_entry)
            if with_metadata:
                self._put(self.metadata_key(entry), dump_document(doc))
        except BaseException:
            if claim:
                try:
                    self._remove_all(entry, caller)
                except Exception as cleanup:  # keep the original error; the leftover is logged
                    log.error("could not roll back partial save of %s: %s", entry.recording_id, cleanup)
            raise

    def update_metadata(self, recording_id: str, metadata: RecordingMetadata) -> RecordingMetadata:
        return self._update(recording_id, metadata)

    def _update(
        self, recording_id: str, metadata: RecordingMetadata, storage: StorageInfo | None = None
    ) -> RecordingMetadata:
        """Compare-and-swap of the document; ``storage`` lets the store itself change ``storage``."""
        validate_id(recording_id)
        if metadata.recording_id != recording_id:
            raise ValueError(f"metadata.recording_id {metadata.recording_id!r} is not {recording_id!r}")
        entry = self._entry(recording_id)
        key = self.metadata_key(entry)
        with self._lock(recording_id):
            current, version = self._read_document(entry)
            if current.revision != metadata.revision:
                raise ConflictError(
                    f"recording {recording_id}: stored revision is {current.revision} but the update is "
                    f"based on revision {metadata.revision}; re-read and retry"
                )
            for name in ("conversation_id", "timestamp"):
                if getattr(metadata, name) != getattr(current, name):
                    raise ValueError(f"{name} of recording {recording_id} cannot be changed")
            new = metadata.model_copy(deep=True)
            new.audio = current.audio
            new.storage = storage or current.storage
            new.revision = current.revision + 1
            if not new.processed:  # marker before the document: a crash leaves it pending, never lost
                self._put(index.pending_key(entry), entry.to_bytes())
            reconcile.add_caller_entry(self, entry, new)
            try:
                new_version = self._put_if(key, dump_document(new), version)
            except PreconditionFailed:
                reconcile.resync_pending(self, entry)  # undo the marker above if the winner is processed
                raise ConflictError(
                    f"recording {recording_id}: metadata changed while updating revision {metadata.revision}"
                ) from None
            except FileNotFoundError:
                raise RecordingNotFoundError(f"recording {recording_id} was deleted while updating") from None
            reconcile.reconcile_pending(self, entry, new, new_version)
            reconcile.drop_caller_entry(self, entry, current, new)
        return new

    def _put_replica(self, entry: Entry, doc: RecordingMetadata) -> None:
        """See :func:`callpipe.storage.reconcile.put_replica` (the mirrored store's S3 side)."""
        reconcile.put_replica(self, entry, doc)

    def _resync_pending(self, entry: Entry) -> None:
        """See :func:`callpipe.storage.reconcile.resync_pending` (listing drops stale markers)."""
        reconcile.resync_pending(self, entry)

    def delete_recording(self, recording_id: str) -> None:
        purge_recording(self, self._entry(recording_id))

    def _remove_all(self, entry: Entry, caller: str | None = None) -> None:
        """Metadata first (nobody sees metadata without audio), the by-id entry last (retryable).

        Rolls back a partial save; erasure uses :func:`callpipe.storage.purge.purge_recording`.
        """
        rid = entry.recording_id
        for key in (
            self.metadata_key(entry),
            self.audio_key(entry),
            self.transcript_key(entry),
            index.by_date_key(entry.call_date, rid),
            *index.pending_keys(entry),
            index.pending_sync_key(rid),
            *([index.by_caller_key(caller, rid)] if caller else []),
            index.by_id_key(rid),
        ):
            with suppress(FileNotFoundError):
                self._delete(key)

    def save_transcript(self, recording_id: str, text: str, *, redacted: bool = False) -> str:
        key = self.transcript_key(self._entry(recording_id), redacted=redacted)
        self._put(key, text.encode("utf-8"))
        return self._uri(key)

    # ---- reads ----------------------------------------------------------------------------------
    def _entry(self, recording_id: str) -> Entry:
        key = index.by_id_key(validate_id(recording_id))
        try:
            raw = self._get(key)
        except FileNotFoundError:
            raise RecordingNotFoundError(f"recording {recording_id} not found in {self}") from None
        return Entry.parse(raw, self._uri(key))

    def _read_document(self, entry: Entry) -> tuple[RecordingMetadata, str]:
        key = self.metadata_key(entry)
        try:
            raw, version = self._get_versioned(key)
        except FileNotFoundError:
            raise RecordingNotFoundError(
                f"metadata of recording {entry.recording_id} not found ({self._uri(key)})"
            ) from None
        return parse_document(raw, entry.recording_id, self._uri(key)), version

    def get_metadata(self, recording_id: str) -> RecordingMetadata:
        return self._read_document(self._entry(recording_id))[0]

    def get_recording(self, recording_id: str) -> bytes:
        entry = self._entry(recording_id)
        doc, _ = self._read_document(entry)
        key = self.audio_key(entry)
        try:
            data = self._get(key)
        except FileNotFoundError:
            raise RecordingNotFoundError(
                f"audio of recording {recording_id} not found ({self._uri(key)})"
            ) from None
        verify_checksum(data, doc, self._uri(key))
        return data

    def get_transcript(self, recording_id: str, *, redacted: bool = False) -> str:
        key = self.transcript_key(self._entry(recording_id), redacted=redacted)
        try:
            return self._get(key).decode("utf-8")
        except FileNotFoundError:
            raise RecordingNotFoundError(
                f"no transcript for recording {recording_id} ({self._uri(key)})"
            ) from None

    def list_recordings(
        self,
        conversation_id: str | None = None,
        processed: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RecordingPage:
        return index.list_page(self, conversation_id, processed, since, until, limit, cursor)

    def list_pending_dates(self) -> list[str]:
        return self._list_dirs(index.PENDING)

    def list_dates(self) -> list[str]:
        return self._list_dirs(index.BY_DATE)

    def list_pending_ids(self, call_date: str) -> list[str]:
        return pending.pending_ids(self, call_date)

    def pending_ids_by_date(self) -> dict[str, list[str]]:
        return pending.pending_ids_by_date(self)

    def pending_times_by_date(self) -> dict[str, list[tuple[str, time | None]]]:
        return pending.pending_times_by_date(self)

    def pending_refs(self, call_date: str, ids: list[str]) -> list[RecordingRef]:
        return pending.pending_refs(self, call_date, ids)

    def iter_recordings(
        self,
        call_date: str,
        processed: bool | None = None,
        errors: list[ListingError] | None = None,
    ) -> Iterator[RecordingMetadata]:
        return index.iter_documents(self, call_date, processed, errors)

    def get_storage_stats(self) -> dict[str, Any]:
        return index.storage_stats(self)
