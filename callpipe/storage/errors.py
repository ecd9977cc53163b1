"""Exceptions raised by the recording stores.

Every error carries a one-line message naming the recording and, where there is
one, the file or key involved. ``InvalidAudioError`` lives in :mod:`callpipe.audio_files`
(the probe raises it) and is re-exported here.
"""

from __future__ import annotations

from callpipe.audio_files import InvalidAudioError

__all__ = [
    "ChecksumMismatchError",
    "ConflictError",
    "InvalidAudioError",
    "InvalidIdError",
    "InvalidMetadataError",
    "MetadataCorruptError",
    "RecordingExistsError",
    "RecordingNotFoundError",
    "StorageError",
    "StorageUnavailableError",
    "StorageWriteError",
]


class StorageError(Exception):
    """Base class of every error a recording store raises on purpose."""


class InvalidIdError(StorageError, ValueError):
    """A recording or conversation id that is unsafe as a path or key component."""


class InvalidMetadataError(StorageError, ValueError):
    """Metadata given to ``save_recording`` that does not fit the schema or cannot be stored as JSON."""


class RecordingNotFoundError(StorageError, KeyError):
    """No recording (or no part of it, e.g. its metadata) exists under that id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MetadataCorruptError(StorageError):
    """A metadata document (or index entry) that cannot be parsed."""


class ConflictError(StorageError):
    """An optimistic-concurrency check failed: the stored revision is not the one the caller read."""


class RecordingExistsError(ConflictError):
    """``save_recording`` was given a recording id that is already stored."""


class ChecksumMismatchError(StorageError):
    """Stored audio bytes do not match the sha256 recorded in the metadata."""


class StorageUnavailableError(StorageError):
    """The backend (S3 endpoint, disk) could not be reached or answered with a server error."""


class StorageWriteError(StorageError):
    """The backend refused a write (disk full, file too large, read-only, no permission); nothing
    was replaced: the previous version of the file is intact."""


class PreconditionFailed(Exception):
    """Internal (not a :class:`StorageError`, never reaches callers): a blob store's conditional
    write found a different version than expected."""
