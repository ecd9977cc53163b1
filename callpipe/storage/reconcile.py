"""Index entries that follow a blob store's metadata document, and replica copies of it.

The pending marker and the by-caller entry must agree with the latest document even where
two writers race (S3 has no lock), and a replica written from elsewhere (the mirrored
store's S3 side) must never go back to an older revision. Like :mod:`callpipe.storage.index`,
these functions take the store; :class:`~callpipe.storage.blob_store.BlobStore` calls them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from callpipe.schema import RecordingMetadata
from callpipe.storage import index
from callpipe.storage.documents import dump_document, parse_document
from callpipe.storage.errors import ConflictError, MetadataCorruptError, PreconditionFailed
from callpipe.storage.index import Entry

if TYPE_CHECKING:
    from callpipe.storage.blob_store import BlobStore

log = logging.getLogger(__name__)


def add_caller_entry(store: BlobStore, entry: Entry, doc: RecordingMetadata) -> None:
    """Written before the document, so a recording is always findable by its caller's phone key."""
    if caller := index.caller_key(doc):
        store._put(index.by_caller_key(caller, entry.recording_id), entry.to_bytes())


def drop_caller_entry(
    store: BlobStore, entry: Entry, old: RecordingMetadata | None, new: RecordingMetadata
) -> None:
    """After the document changed caller (or lost it), remove the previous caller's entry."""
    previous = index.caller_key(old) if old is not None else None
    if previous and previous != index.caller_key(new):
        store._delete(index.by_caller_key(previous, entry.recording_id))


def put_replica(store: BlobStore, entry: Entry, doc: RecordingMetadata) -> None:
    """Store a copy of ``doc`` made elsewhere (the mirrored store's local side), never going back
    to an older revision: the stored copy is replaced only while its revision is lower.
    """
    with store._lock(entry.recording_id):
        _put_replica_locked(store, entry, doc)


def _put_replica_locked(store: BlobStore, entry: Entry, doc: RecordingMetadata) -> None:
    key = store.metadata_key(entry)
    data = dump_document(doc)
    if not doc.processed:
        store._put(index.pending_key(entry), entry.to_bytes())
    add_caller_entry(store, entry, doc)
    for _ in range(20):
        try:
            raw, version = store._get_versioned(key)
        except FileNotFoundError:
            try:
                reconcile_pending(store, entry, doc, store._put(key, data, exclusive=True))
                return
            except FileExistsError:
                continue
        try:
            stored: RecordingMetadata | None = parse_document(raw, entry.recording_id, store._uri(key))
        except MetadataCorruptError:
            stored = None  # a damaged copy is replaced by the good one
        if stored is not None and stored.revision >= doc.revision:
            reconcile_pending(store, entry, stored, version)
            return
        try:
            reconcile_pending(store, entry, doc, store._put_if(key, data, version))
            drop_caller_entry(store, entry, stored, doc)
            return
        except (PreconditionFailed, FileNotFoundError):
            continue
    raise ConflictError(f"recording {entry.recording_id}: replica at {store._uri(key)} kept changing")


def resync_pending(store: BlobStore, entry: Entry) -> None:
    """Make the pending marker follow the stored document (nothing to do when it is gone or damaged)."""
    key = store.metadata_key(entry)
    try:
        raw, version = store._get_versioned(key)
        reconcile_pending(store, entry, parse_document(raw, entry.recording_id, store._uri(key)), version)
    except (FileNotFoundError, MetadataCorruptError):
        pass


def reconcile_pending(store: BlobStore, entry: Entry, doc: RecordingMetadata, version: str) -> None:
    """Make the pending marker follow the latest document.

    After setting the marker from ``doc`` the document's version is checked again: if a
    later write slipped in (S3 has no lock), its document is read and the marker redone,
    so the last marker write always reflects the last document.
    """
    key = store.metadata_key(entry)
    marker, legacy = index.pending_keys(entry)
    for _ in range(20):
        if doc.processed:
            store._delete(marker)
        elif not store._exists(marker):
            store._put(marker, entry.to_bytes())
        store._delete(legacy)  # a store's old marker name goes once touched (after the new one is set)
        if store._version(key) == version:
            return
        try:
            raw, version = store._get_versioned(key)
            doc = parse_document(raw, entry.recording_id, store._uri(key))
        except FileNotFoundError:  # deleted meanwhile
            store._delete(marker)
            return
        except MetadataCorruptError:
            return  # leave the marker: a recording that looks pending gets looked at
    log.warning("pending marker of %s did not settle after 20 rounds", entry.recording_id)
