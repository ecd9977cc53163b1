"""Store configuration from the environment (or explicit values, e.g. a Dagster resource's config).

Environment variables: ``STORAGE_BACKEND`` (``local`` | ``s3`` | ``both``, default ``local``),
``STORAGE_LOCAL_PATH`` (default ``./data/recordings``), ``S3_BUCKET``, ``S3_REGION``,
``S3_ENDPOINT_URL`` (any S3-compatible server), ``S3_PREFIX``, ``STORAGE_CACHE_DIR``,
``S3_CONNECT_TIMEOUT``, ``S3_READ_TIMEOUT``, ``S3_MAX_ATTEMPTS``, ``S3_SSE`` (``AES256`` or
``aws:kms``: server-side encryption of every object written), ``S3_SSE_KMS_KEY_ID`` and the
catalog's ``CALLPIPE_CATALOG``, ``CALLPIPE_CATALOG_PATH``, ``CALLPIPE_CATALOG_DSN``,
``CALLPIPE_STATE_DIR``.
Credentials are not settings: boto3 finds them through its usual chain (env, profile, instance
role), so they never reach a settings object, its repr or the Dagster UI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from callpipe.settings import Settings
from callpipe.storage.base import RecordingStore
from callpipe.storage.local import LocalStore
from callpipe.storage.mirrored import MirroredStore
from callpipe.storage.s3 import FAST, PATIENT, ClientLimits, S3Store, make_s3_client, sse_arguments

_ENV = {
    "backend": "STORAGE_BACKEND",
    "local_path": "STORAGE_LOCAL_PATH",
    "cache_dir": "STORAGE_CACHE_DIR",
    "s3_bucket": "S3_BUCKET",
    "s3_region": "S3_REGION",
    "s3_endpoint_url": "S3_ENDPOINT_URL",
    "s3_prefix": "S3_PREFIX",
    "s3_connect_timeout": "S3_CONNECT_TIMEOUT",
    "s3_read_timeout": "S3_READ_TIMEOUT",
    "s3_max_attempts": "S3_MAX_ATTEMPTS",
    "s3_sse": "S3_SSE",
    "s3_sse_kms_key_id": "S3_SSE_KMS_KEY_ID",
    "catalog": "CALLPIPE_CATALOG",
    "catalog_path": "CALLPIPE_CATALOG_PATH",
    "catalog_dsn": "CALLPIPE_CATALOG_DSN",
    "state_dir": "CALLPIPE_STATE_DIR",
}


class StorageSettings(BaseModel):
    """Which store to build and where; :meth:`from_env` reads the variables listed in the module doc."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["local", "s3", "both"] = "local"
    local_path: str = "./data/recordings"
    cache_dir: str | None = None
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_endpoint_url: str | None = None
    s3_prefix: str = ""
    s3_connect_timeout: float | None = Field(default=None, gt=0)
    s3_read_timeout: float | None = Field(default=None, gt=0)
    s3_max_attempts: int | None = Field(default=None, ge=1)
    """Unset S3 timeouts take :data:`~callpipe.storage.s3.FAST` for ``both`` (an outage must cost
    a save ~2 s at most: the upload is only deferred) and :data:`~callpipe.storage.s3.PATIENT` for ``s3``.
    """
    s3_sse: Literal["AES256", "aws:kms"] | None = None
    s3_sse_kms_key_id: str | None = None
    catalog: Literal["sqlite", "off"] = "sqlite"
    catalog_path: str | None = None
    catalog_dsn: SecretStr | None = None
    """The catalog of recordings (:mod:`callpipe.catalog`): embedded SQLite (the default), PostgreSQL
    with a DSN, ``off`` for the marker-file index alone."""
    state_dir: str | None = None
    """``CALLPIPE_STATE_DIR``: where an S3-only store's embedded catalog lives (see
    :func:`callpipe.catalog.catalog_path`)."""

    @field_validator("s3_sse", mode="before")
    @classmethod
    def _sse_spelling(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return {"aes256": "AES256", "aws:kms": "aws:kms", "kms": "aws:kms"}.get(value.lower(), value)
        return value

    @model_validator(mode="after")
    def _bucket_when_needed(self) -> StorageSettings:
        if self.backend in ("s3", "both") and not self.s3_bucket:
            raise ValueError(f"STORAGE_BACKEND={self.backend} needs S3_BUCKET")
        sse_arguments(self.s3_sse, self.s3_sse_kms_key_id)  # AES256 with a KMS key id is an error
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageSettings:
        """Settings from ``environ`` (default ``os.environ``) through :class:`callpipe.settings.Settings`;
        unset or empty variables keep defaults."""
        settings = Settings.from_env(environ, only=_ENV.values())
        values = {field: getattr(settings, name.lower()) for field, name in _ENV.items()}
        return cls.model_validate({field: value for field, value in values.items() if value is not None})


def client_limits(settings: StorageSettings) -> ClientLimits:
    """S3 timeouts and attempts: ``S3_*`` settings, else short for ``both``, patient for ``s3``."""
    defaults = FAST if settings.backend == "both" else PATIENT
    return ClientLimits(
        connect_timeout=settings.s3_connect_timeout or defaults.connect_timeout,
        read_timeout=settings.s3_read_timeout or defaults.read_timeout,
        max_attempts=settings.s3_max_attempts or defaults.max_attempts,
    )


def build_store(settings: StorageSettings, s3_client: Any | None = None) -> RecordingStore:
    """The store ``settings`` describe. ``s3_client`` (e.g. from dagster-aws ``S3Resource``) is
    used as given; otherwise one is built with short timeouts and few retries."""
    local = LocalStore(settings.local_path) if settings.backend in ("local", "both") else None
    s3 = None
    if settings.backend in ("s3", "both"):
        assert settings.s3_bucket is not None
        client = s3_client or make_s3_client(
            settings.s3_region, settings.s3_endpoint_url, client_limits(settings)
        )
        s3 = S3Store(
            settings.s3_bucket,
            settings.s3_prefix,
            client,
            cache_dir=settings.cache_dir,
            sse=settings.s3_sse,
            sse_kms_key_id=settings.s3_sse_kms_key_id,
        )
    store: RecordingStore | None = MirroredStore(local, s3) if local and s3 else local or s3
    assert store is not None
    from callpipe.catalog import with_catalog

    return with_catalog(store, settings)


def get_audio_storage(settings: StorageSettings | None = None) -> RecordingStore:
    """The recording store configured by the environment (or by ``settings``)."""
    return build_store(settings or StorageSettings.from_env())
