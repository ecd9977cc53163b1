"""A recording store whose every state change is written to the catalog in the same step.

:class:`CatalogStore` wraps the store the settings build (local, S3 or mirrored). Saves claim the
catalog row (``saving``) before any file is written and mark it ``saved`` once the audio and the
JSON document are both there; updates, leases and reprocess requests (all document writes) upsert
the row; erasure marks it ``erasing`` then removes it. Listing, pending lookups and counts are
answered by the catalog alone: no marker directory and no bucket is listed per request.
Anything else (``local``, ``s3``, ``sync_pending`` ...) is the wrapped store's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from callpipe.catalog.catalog_table import SAVING, Row, row_from_doc
from callpipe.catalog.db import Catalog, CatalogConflictError
from callpipe.schema import RecordingMetadata
from callpipe.storage.base import ListingError, RecordingPage, RecordingRef, RecordingStore, SaveResult
from callpipe.storage.documents import prepare_document
from callpipe.storage.errors import (
    MetadataCorruptError,
    RecordingExistsError,
    RecordingNotFoundError,
    StorageError,
)
from callpipe.storage.ids import decode_cursor, encode_cursor, validate_date, validate_id
from callpipe.storage.index import check_listing_bounds

log = logging.getLogger(__name__)


def _ref(row: Row) -> RecordingRef:
    return RecordingRef(
        row.recording_id, row.conversation_id, row.call_date, row.timestamp, row.processed, row.format
    )


class CatalogStore(RecordingStore):
    """``wrapped`` (any :class:`RecordingStore`) with its state in ``catalog``.

    Opening it fills a catalog that was just created from the stored documents (a store written
    before the catalog existed, or a lost catalog: :func:`callpipe.catalog.rebuild.rebuild_catalog`)
    and completes or sweeps saves a killed process left ``saving``
    (:func:`callpipe.catalog.recover.recover_saves`) unless ``recover`` is false.
    """

    def __init__(self, wrapped: RecordingStore, catalog: Catalog, *, recover: bool = True) -> None:
        self.wrapped = wrapped
        self.catalog = catalog
        self.backend = wrapped.backend
        if not catalog.filled:
            self._fill()
        if recover:
            from callpipe.catalog.recover import recover_saves

            recover_saves(self)

    def _fill(self) -> None:
        """Rebuild a new catalog from the documents; with the store unreachable, the next open
        tries again (saves and updates meanwhile write their rows as always)."""
        from callpipe.catalog.rebuild import rebuild_catalog

        try:
            report = rebuild_catalog(self)
        except StorageError as exc:
            log.warning("catalog not filled from the stored documents yet: %s", exc)
            return
        if report.rows:
            log.info("new catalog filled from %d stored documents", report.rows)

    def __repr__(self) -> str:
        return f"{self.wrapped!r} + {self.catalog!r}"

    def __getattr__(self, name: str) -> Any:
        if name in ("wrapped", "catalog"):  # not set yet (during unpickling): no recursion
            raise AttributeError(name)
        attr = getattr(self.wrapped, name)
        if name == "sync_pending":  # the mirrored store's upload: refresh the rows it uploaded
            return lambda limit=None: self._synced(attr(limit))
        return attr

    def _synced(self, report: Any) -> Any:
        for rid in report.uploaded:
            self.refresh(rid)
        return report

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
        try:
            self.catalog.claim(row_from_doc(doc, SAVING))
        except CatalogConflictError:
            raise RecordingExistsError(f"recording {doc.recording_id} already exists in {self}") from None
        try:
            result = self.wrapped.save_recording(audio_data, conversation_id, doc, format, doc.recording_id)
        except RecordingExistsError:
            self.refresh(doc.recording_id)  # files of a save the catalog lost: catalog the stored one
            raise
        except BaseException:
            self.catalog.forget(doc.recording_id)  # the store rolled its files back
            raise
        self.catalog.put(row_from_doc(result.metadata, metadata_path=result.metadata_path))
        return result

    def update_metadata(self, recording_id: str, metadata: RecordingMetadata) -> RecordingMetadata:
        new = self.wrapped.update_metadata(recording_id, metadata)
        self.catalog.put(row_from_doc(new))
        return new

    def delete_recording(self, recording_id: str) -> None:
        validate_id(recording_id)
        self.catalog.mark(recording_id, erasing=True)
        try:
            self.wrapped.delete_recording(recording_id)
        except RecordingNotFoundError:
            self.catalog.forget(recording_id)
            raise
        self.catalog.forget(recording_id)

    def refresh(self, recording_id: str) -> None:
        """Re-read one document into the catalog (forget the row when the recording is gone)."""
        try:
            self.catalog.put(row_from_doc(self.wrapped.get_metadata(recording_id)))
        except RecordingNotFoundError:
            self.catalog.forget(recording_id)

    def save_transcript(self, recording_id: str, text: str, *, redacted: bool = False) -> str:
        return self.wrapped.save_transcript(recording_id, text, redacted=redacted)

    # ---- reads of files -------------------------------------------------------------------------
    def get_recording(self, recording_id: str) -> bytes:
        return self.wrapped.get_recording(recording_id)

    def get_metadata(self, recording_id: str) -> RecordingMetadata:
        return self.wrapped.get_metadata(recording_id)

    def get_transcript(self, recording_id: str, *, redacted: bool = False) -> str:
        return self.wrapped.get_transcript(recording_id, redacted=redacted)

    def local_audio_path(self, recording_id: str) -> Path:
        return self.wrapped.local_audio_path(recording_id)

    @contextmanager
    def audio_file(self, recording_id: str) -> Iterator[Path]:
        with self.wrapped.audio_file(recording_id) as path:
            yield path

    # ---- reads of state: the catalog alone ------------------------------------------------------
    def list_recordings(
        self,
        conversation_id: str | None = None,
        processed: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RecordingPage:
        check_listing_bounds(limit, since, until)
        if conversation_id is not None:
            validate_id(conversation_id, "conversation_id")
        rows = self.catalog.page(
            conversation_id=conversation_id,
            processed=processed,
            since=since.astimezone(UTC).isoformat() if since else None,
            until=until.astimezone(UTC).isoformat() if until else None,
            after=decode_cursor(cursor) if cursor else None,
            limit=limit + 1,
        )
        items = [_ref(row) for row in rows[:limit]]
        next_cursor = (
            encode_cursor(items[-1].call_date, items[-1].recording_id) if len(rows) > limit else None
        )
        return RecordingPage(items=items, next_cursor=next_cursor)

    def list_pending_dates(self) -> list[str]:
        return self.catalog.dates(pending=True)

    def list_dates(self) -> list[str]:
        return self.catalog.dates()

    def list_pending_ids(self, call_date: str) -> list[str]:
        return [row.recording_id for row in self.catalog.pending_rows(validate_date(call_date))]

    def pending_refs(self, call_date: str, ids: list[str]) -> list[RecordingRef]:
        wanted = set(ids)
        rows = self.catalog.pending_rows(validate_date(call_date))
        return [_ref(row) for row in rows if row.recording_id in wanted]

    def pending_ids_by_date(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for row in self.catalog.pending_rows():
            out.setdefault(row.call_date, []).append(row.recording_id)
        return out

    def pending_times_by_date(self) -> dict[str, list[tuple[str, time | None]]]:
        out: dict[str, list[tuple[str, time | None]]] = {}
        for row in self.catalog.pending_rows():
            clock = row.timestamp.time().replace(microsecond=0)
            out.setdefault(row.call_date, []).append((row.recording_id, clock))
        return out

    def iter_recordings(
        self,
        call_date: str,
        processed: bool | None = None,
        errors: list[ListingError] | None = None,
    ) -> Iterator[RecordingMetadata]:
        validate_date(call_date)
        rows = self.catalog.page(call_date=call_date, processed=processed, limit=10**9)
        for row in rows:
            try:
                doc = self.wrapped.get_metadata(row.recording_id)
            except (RecordingNotFoundError, MetadataCorruptError) as exc:
                log.warning("%s", exc)
                if errors is not None:
                    errors.append(ListingError(row.metadata_path or "", row.recording_id, str(exc)))
                continue
            if processed is not None and doc.processed != processed:
                self.catalog.put(row_from_doc(doc))  # the row was behind the document: catch up
                continue
            yield doc

    def get_storage_stats(self) -> dict[str, Any]:
        """Counts from the catalog (processed from each row's state, never total minus pending);
        sizes and location from the wrapped store."""
        stats = self.wrapped.get_storage_stats()
        stats.update(self.catalog.counts())
        stats["catalog"] = self.catalog.where
        return stats
