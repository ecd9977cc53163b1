"""Recording store on an S3 (or S3-compatible) bucket.

Keys under ``prefix``: ``recordings/{conversation_id}/{recording_id}.{ext}`` with the
metadata ``recordings/{conversation_id}/{recording_id}.json`` beside it,
``transcripts/{conversation_id}/{recording_id}.txt`` and the index under ``index/``
(see :mod:`callpipe.storage.index`).

Concurrency: a metadata update is a conditional PUT (``If-Match`` on the ETag read
with the document), new ids are claimed with ``If-None-Match: *``. S3 has honoured
both since 2024, and moto's server (5.2.5) checks both on ``put_object``.
Credentials come from boto3's chain and never appear in messages.

Encryption at rest: with ``sse`` (``AES256`` for SSE-S3, ``aws:kms`` for SSE-KMS with
``sse_kms_key_id`` or the account's default KMS key) every ``PutObject`` asks for it, conditional
ones included. A bucket default encryption setting works as well and covers other writers.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from callpipe.schema import RecordingMetadata, StorageInfo
from callpipe.storage.base import SaveResult
from callpipe.storage.blob_store import BlobStore, verify_checksum
from callpipe.storage.errors import PreconditionFailed, StorageError, StorageUnavailableError
from callpipe.storage.index import Entry

T = TypeVar("T")
_POOL_LOCK = threading.Lock()
_WRITE_OPS = frozenset({"PutObject", "CopyObject"})
_NO_OBJECT_OPS = _WRITE_OPS | {"ListObjectsV2"}
"""Calls for which a bare 404 cannot mean a missing object (a listing of an empty prefix is a 200)."""
_BUSY_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}
SSE_MODES = ("AES256", "aws:kms")


def sse_arguments(sse: str | None, kms_key_id: str | None = None) -> dict[str, str]:
    """``put_object`` arguments for server-side encryption; a KMS key id alone implies ``aws:kms``."""
    if kms_key_id and sse is None:
        sse = "aws:kms"
    if sse is None:
        return {}
    if sse not in SSE_MODES:
        raise ValueError(f"S3 server-side encryption {sse!r}: expected one of {', '.join(SSE_MODES)}")
    if kms_key_id and sse != "aws:kms":
        raise ValueError("an SSE-KMS key id needs server-side encryption aws:kms, not AES256")
    args = {"ServerSideEncryption": sse}
    if kms_key_id:
        args["SSEKMSKeyId"] = kms_key_id
    return args


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Timeouts (seconds) and total attempts of an S3 client."""

    connect_timeout: float
    read_timeout: float
    max_attempts: int


PATIENT = ClientLimits(connect_timeout=2.0, read_timeout=5.0, max_attempts=3)
"""For S3 alone: a failure reaches the caller, so slow answers are waited for."""
FAST = ClientLimits(connect_timeout=1.0, read_timeout=1.0, max_attempts=1)
"""Behind a mirrored store: a failure only defers the upload, so give up within ~2 s
(botocore also waits up to 1 s for ``100-continue`` on every PUT to a silent server)."""


def make_s3_client(
    region_name: str | None = None,
    endpoint_url: str | None = None,
    limits: ClientLimits = PATIENT,
    *,
    profile_name: str | None = None,
    **client_kwargs: Any,
) -> Any:
    """A boto3 S3 client with bounded timeouts and retries (botocore's defaults wait 60 s per try).

    An unreachable endpoint costs about ``max_attempts * connect_timeout``, one that accepts
    and never answers ``max_attempts * (read_timeout + 1 s)`` for a PUT (botocore's wait for
    ``100-continue``); a refused connection fails at once. ``client_kwargs`` (``use_ssl``,
    ``verify``, explicit credentials) go to ``Session.client`` as given.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=limits.connect_timeout,
        read_timeout=limits.read_timeout,
        retries={"total_max_attempts": limits.max_attempts, "mode": "standard"},
        max_pool_connections=16,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session(profile_name=profile_name).client(
        "s3", region_name=region_name, endpoint_url=endpoint_url, config=config, **client_kwargs
    )


def default_cache_dir() -> Path:
    """Where S3 audio is staged while a stage works on it (``STORAGE_CACHE_DIR`` overrides it)."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "callpipe" / "recordings"


_STAGED = re.compile(r"^(\d+)-[A-Za-z0-9_]+\.[a-z0-9]+$")
_LEGACY = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(wav|flac|ogg|mp3|opus|m4a|webm)$"  # {recording_id}.{ext}
    r"|^\.[A-Za-z0-9][A-Za-z0-9._-]*\.[0-9a-f]{32}\.tmp$"  # a download a crash left half written
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_staging_dir(directory: Path) -> list[Path]:
    """Remove audio a dead process staged (killed inside a stage) and the downloads older
    versions cached there for good (``{recording_id}.{ext}``); the removed paths."""
    removed = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return removed
    for name in names:
        staged = _STAGED.match(name)
        if (staged and not _alive(int(staged.group(1)))) or (not staged and _LEGACY.match(name)):
            path = directory / name
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


class S3Store(BlobStore):
    """Recordings in ``bucket`` under ``prefix``; ``client`` defaults to :func:`make_s3_client`."""

    backend = "s3"
    audio_root = "recordings"
    metadata_root = "recordings"
    _pool: ThreadPoolExecutor | None = None
    _pool_pid = 0

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3 bucket name is empty")
        self._sse = sse_arguments(sse, sse_kms_key_id)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client if client is not None else make_s3_client()
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()

    def __repr__(self) -> str:
        return f"S3Store('s3://{self.bucket}/{self.prefix}')"

    __str__ = __repr__

    def full_key(self, key: str) -> str:
        """The bucket key of a store key (the prefix prepended)."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def cache_path(self, entry: Entry) -> Path:
        """Where versions before staging kept a recording's download for good (erasure and the
        staging sweep still remove such files)."""
        return self.cache_dir / f"{entry.recording_id}.{entry.format}"

    def local_audio_path(self, recording_id: str) -> Path:
        raise StorageError(
            f"{self}: S3 audio has no lasting local file; stage it with `with store.audio_file(id)`"
        )

    @contextmanager
    def audio_file(self, recording_id: str) -> Iterator[Path]:
        """The verified audio in a private temporary file under ``cache_dir`` (mode 0600, named by
        process id, not by recording), deleted when the block ends; files of dead processes and
        old cached downloads there are swept first. No host keeps audio after its stage."""
        entry = self._entry(recording_id)
        doc, _ = self._read_document(entry)
        data = self._get(self.audio_key(entry))
        verify_checksum(data, doc, self._uri(self.audio_key(entry)))
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        sweep_staging_dir(self.cache_dir)
        fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=f".{entry.format}", dir=self.cache_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _remove_all(self, entry: Entry, caller: str | None = None) -> None:
        super()._remove_all(entry, caller)
        self.cache_path(entry).unlink(missing_ok=True)

    # ---- primitives -----------------------------------------------------------------------------
    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """Run one S3 call, turning botocore errors into the store's exceptions."""
        try:
            return fn()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            where = self._uri(key)
            if code in ("NoSuchKey", "404", "NotFound") and (op not in _NO_OBJECT_OPS or code == "NoSuchKey"):
                raise FileNotFoundError(where) from None
            if op in _NO_OBJECT_OPS and status == 404 and code != "NoSuchBucket":
                # A bare 404 to a write or a listing is no missing object: a wrong endpoint, a
                # missing bucket or a proxy in the way. An outage, never "not found" (which callers
                # read as a user mistake).
                raise StorageUnavailableError(
                    f"S3 {op} {where}: HTTP 404 {code} (endpoint or bucket)"
                ) from None
            if status == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PreconditionFailed(where) from None
            if status >= 500 or code in _BUSY_CODES:
                raise StorageUnavailableError(f"S3 {op} {where}: {code} (HTTP {status})") from None
            raise StorageError(f"S3 {op} {where} failed: {code} (HTTP {status})") from None
        except (NoCredentialsError, PartialCredentialsError):
            raise StorageError(f"S3 {op}: no usable AWS credentials in boto3's credential chain") from None
        except BotoCoreError as exc:
            raise StorageUnavailableError(f"S3 {op} {self._uri(key)}: {type(exc).__name__}") from None

    def _get(self, key: str) -> bytes:
        return self._get_versioned(key)[0]

    def _get_versioned(self, key: str) -> tuple[bytes, str]:
        def fetch() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))
            return response["Body"].read(), response["ETag"]

        return self._call("GetObject", key, fetch)

    def _version(self, key: str) -> str | None:
        try:
            head = self._call(
                "HeadObject", key, lambda: self.client.head_object(Bucket=self.bucket, Key=self.full_key(key))
            )
        except FileNotFoundError:
            return None
        return str(head["ETag"])

    def _put(self, key: str, data: bytes, *, exclusive: bool = False) -> str:
        extra = {"IfNoneMatch": "*"} if exclusive else {}
        try:
            response = self._call(
                "PutObject",
                key,
                lambda: self.client.put_object(
                    Bucket=self.bucket, Key=self.full_key(key), Body=data, **extra, **self._sse
                ),
            )
        except PreconditionFailed:
            raise FileExistsError(self._uri(key)) from None
        return str(response["ETag"])

    def _put_if(self, key: str, data: bytes, version: str) -> str:
        response = self._call(
            "PutObject",
            key,
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=self.full_key(key), Body=data, IfMatch=version, **self._sse
            ),
        )
        return str(response["ETag"])

    def _delete(self, key: str) -> None:
        self._call(
            "DeleteObject", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))
        )

    def _exists(self, key: str) -> bool:
        return self._version(key) is not None

    def _pages(
        self, directory: str, delimiter: bool, start_after: str | None = None
    ) -> Iterator[dict[str, Any]]:
        prefix = self.full_key(directory) + "/"
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = "/"
        if start_after:
            kwargs["StartAfter"] = prefix + start_after
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call("ListObjectsV2", directory, lambda: iter(paginator.paginate(**kwargs)))
        while True:
            page = self._call("ListObjectsV2", directory, lambda: next(pages, None))
            if page is None:
                return
            yield page

    def _list_names(self, directory: str, start_after: str | None = None) -> list[str]:
        cut = len(self.full_key(directory)) + 1
        names = [
            obj["Key"][cut:]
            for page in self._pages(directory, True, start_after)
            for obj in page.get("Contents", [])
        ]
        return sorted(n for n in names if n and not n.startswith("."))

    def _list_dirs(self, directory: str) -> list[str]:
        cut = len(self.full_key(directory)) + 1
        return sorted(
            p["Prefix"][cut:].rstrip("/")
            for page in self._pages(directory, True)
            for p in page.get("CommonPrefixes", [])
        )

    def _walk(self, directory: str) -> Iterator[tuple[str, int]]:
        cut = len(self.full_key("")) if self.prefix else 0
        for page in self._pages(directory, False):
            for obj in page.get("Contents", []):
                yield obj["Key"][cut:].lstrip("/"), int(obj["Size"])

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        if len(keys) < 2:
            return super()._get_many(keys)

        def one(key: str) -> bytes | None:
            try:
                return self._get(key)
            except FileNotFoundError:
                return None

        return list(self._executor().map(one, keys))

    def _executor(self) -> ThreadPoolExecutor:
        """The store's pool for parallel GETs, made once per process (a forked child makes its own);
        listings call :meth:`_get_many` per batch of 32 keys, so a pool per call would be one per batch."""
        with _POOL_LOCK:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-get")
                self._pool_pid = os.getpid()
            return self._pool

    def _lock(self, recording_id: str) -> nullcontext[None]:
        return nullcontext()  # S3 writers are serialised by If-Match, not by a lock

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.full_key(key)}"

    def _storage_info(self, entry: Entry) -> StorageInfo:
        return StorageInfo(
            backend="s3",
            s3_audio_key=self.full_key(self.audio_key(entry)),
            s3_metadata_key=self.full_key(self.metadata_key(entry)),
        )

    def _location(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "prefix": self.prefix}

    def _result(self, entry: Entry, doc: RecordingMetadata) -> SaveResult:
        assert doc.audio is not None
        return SaveResult(
            recording_id=entry.recording_id,
            local_path=None,
            s3_path=self._uri(self.audio_key(entry)),
            metadata_path=self._uri(self.metadata_key(entry)),
            size_bytes=doc.audio.file_size_bytes,
            checksum=doc.audio.checksum_sha256,
            pending_sync=False,
            metadata=doc,
        )
