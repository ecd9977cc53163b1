"""Recording store: audio + metadata JSON per recording, locally, on S3, or both.

Use :func:`get_audio_storage` (configured from the environment) or build a store
explicitly: ``LocalStore(root)``, ``S3Store(bucket, prefix, client)``,
``MirroredStore(local, s3)``.
"""

from __future__ import annotations

from callpipe.storage.base import (
    ListingError,
    RecordingPage,
    RecordingRef,
    RecordingStore,
    SaveResult,
    SyncReport,
)
from callpipe.storage.errors import (
    ChecksumMismatchError,
    ConflictError,
    InvalidAudioError,
    InvalidIdError,
    InvalidMetadataError,
    MetadataCorruptError,
    RecordingExistsError,
    RecordingNotFoundError,
    StorageError,
    StorageUnavailableError,
    StorageWriteError,
)
from callpipe.storage.ids import new_recording_id, validate_id
from callpipe.storage.local import LocalStore
from callpipe.storage.mirrored import MirroredStore
from callpipe.storage.s3 import FAST, PATIENT, ClientLimits, S3Store, make_s3_client
from callpipe.storage.store_settings import StorageSettings, build_store, get_audio_storage

__all__ = [
    "FAST",
    "PATIENT",
    "ChecksumMismatchError",
    "ClientLimits",
    "ConflictError",
    "InvalidAudioError",
    "InvalidIdError",
    "InvalidMetadataError",
    "ListingError",
    "LocalStore",
    "MetadataCorruptError",
    "MirroredStore",
    "RecordingExistsError",
    "RecordingNotFoundError",
    "RecordingPage",
    "RecordingRef",
    "RecordingStore",
    "S3Store",
    "SaveResult",
    "StorageError",
    "StorageSettings",
    "StorageUnavailableError",
    "StorageWriteError",
    "SyncReport",
    "build_store",
    "get_audio_storage",
    "make_s3_client",
    "new_recording_id",
    "validate_id",
]
