"""Recording store on a local directory.

Layout under ``root``: ``audio/{conversation_id}/{recording_id}.{ext}``,
``metadata/{conversation_id}/{recording_id}.json``,
``transcripts/{conversation_id}/{recording_id}.txt``, the index under ``index/``
(see :mod:`callpipe.storage.index`) and per-recording lock files under ``.locks/``.

Every write goes to a hidden temp file in the target directory, is fsynced, then
renamed over the target (``os.replace``) and the directory fsynced, so a reader sees
the old or the new file, never a part; a crashed writer leaves only a hidden
``.*.tmp`` file, which listings skip.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from callpipe.schema import RecordingMetadata, StorageInfo
from callpipe.storage.base import SaveResult
from callpipe.storage.blob_store import BlobStore
from callpipe.storage.errors import PreconditionFailed, RecordingNotFoundError, StorageWriteError
from callpipe.storage.ids import validate_id
from callpipe.storage.index import Entry


def _token(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class LocalStore(BlobStore):
    """Recordings under a local directory (created on the first write)."""

    backend = "local"
    audio_root = "audio"
    metadata_root = "metadata"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    __str__ = __repr__

    def path(self, key: str) -> Path:
        """Absolute path of a store key (keys are built from validated ids only)."""
        return self.root / key

    def local_audio_path(self, recording_id: str) -> Path:
        entry = self._entry(recording_id)
        path = self.path(self.audio_key(entry))
        if not path.is_file():
            raise RecordingNotFoundError(f"audio of recording {recording_id} not found ({path})")
        return path

    # ---- primitives -----------------------------------------------------------------------------
    def _get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def _get_versioned(self, key: str) -> tuple[bytes, str]:
        data = self._get(key)
        return data, _token(data)

    def _version(self, key: str) -> str | None:
        try:
            return _token(self._get(key))
        except FileNotFoundError:
            return None

    def _put(self, key: str, data: bytes, *, exclusive: bool = False) -> str:
        target = self.path(key)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            try:
                with _create(tmp) as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                if exclusive:
                    os.link(tmp, target)  # atomic create-if-absent with the full content
                else:
                    os.replace(tmp, target)
            finally:
                if tmp.exists():
                    tmp.unlink()
            _fsync_dir(target.parent)
        except (FileExistsError, FileNotFoundError):
            raise  # exclusive create lost, or the directory went away: callers handle these
        except OSError as exc:  # disk full, file too large, read-only: the old file is untouched
            code = errno.errorcode.get(exc.errno or 0, "EIO")
            raise StorageWriteError(f"cannot write {target}: {exc.strerror or exc} ({code})") from None
        return _token(data)

    def _put_if(self, key: str, data: bytes, version: str) -> str:
        # Callers hold the recording's lock, so nothing can change between this check and the write.
        if self._version(key) != version:
            raise PreconditionFailed(key)
        return self._put(key, data)

    def _delete(self, key: str) -> None:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.path(key).parent)

    def _exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def _list_names(self, directory: str, start_after: str | None = None) -> list[str]:
        try:
            with os.scandir(self.path(directory)) as entries:
                names = [e.name for e in entries if not e.name.startswith(".") and e.is_file()]
        except FileNotFoundError:
            return []
        names.sort()
        return [n for n in names if n > start_after] if start_after else names

    def _list_dirs(self, directory: str) -> list[str]:
        try:
            with os.scandir(self.path(directory)) as entries:
                dirs = [e.path for e in entries if not e.name.startswith(".") and e.is_dir()]
        except FileNotFoundError:
            return []
        return sorted(os.path.basename(d) for d in dirs if _has_visible_file(d))

    def _walk(self, directory: str) -> Iterator[tuple[str, int]]:
        base = self.path(directory)
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if not name.startswith("."):
                    full = os.path.join(dirpath, name)
                    try:
                        size = os.stat(full).st_size
                    except FileNotFoundError:
                        continue
                    yield os.path.relpath(full, self.root), size

    @contextmanager
    def _lock(self, recording_id: str) -> Iterator[None]:
        """An exclusive ``flock`` on ``.locks/{recording_id}.lock`` (threads and processes alike)."""
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f"{validate_id(recording_id)}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _uri(self, key: str) -> str:
        return str(self.path(key))

    def _storage_info(self, entry: Entry) -> StorageInfo:
        return StorageInfo(backend="local", audio_path=self.audio_key(entry))

    def _location(self) -> dict[str, Any]:
        return {"root": str(self.root)}

    def _result(self, entry: Entry, doc: RecordingMetadata) -> SaveResult:
        assert doc.audio is not None
        return SaveResult(
            recording_id=entry.recording_id,
            local_path=self.path(self.audio_key(entry)),
            s3_path=None,
            metadata_path=self._uri(self.metadata_key(entry)),
            size_bytes=doc.audio.file_size_bytes,
            checksum=doc.audio.checksum_sha256,
            pending_sync=False,
            metadata=doc,
        )


def _create(path: Path) -> BinaryIO:
    """Open a new file for writing, making its directory; retried because an erasure may remove
    an empty directory between the ``mkdir`` and the ``open`` (see :mod:`callpipe.storage.purge`)."""
    for _ in range(5):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return open(path, "wb")
        except FileNotFoundError:
            continue
    return open(path, "wb")


def _has_visible_file(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(not e.name.startswith(".") for e in entries)
    except FileNotFoundError:  # removed as empty meanwhile
        return False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
