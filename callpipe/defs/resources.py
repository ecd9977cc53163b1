"""Resources: the recording store, the analytics tables and the loaded stage models."""

from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from callpipe.analytics import AnalyticsStore, open_analytics_store
from callpipe.stage_list import StageModels
from callpipe.storage import RecordingStore, StorageSettings, build_store
from callpipe.storage.s3 import make_s3_client
from callpipe.storage.store_settings import client_limits


class RecordingStoreResource(dg.ConfigurableResource):
    """Where recordings live: ``local``, ``s3`` (through dagster-aws ``S3Resource``) or ``both``.

    Unset fields fall back to the same environment variables the online recorder reads
    (``STORAGE_BACKEND``, ``STORAGE_LOCAL_PATH``, ``S3_BUCKET``, ``S3_PREFIX``), so both stages
    always see one store.
    """

    backend: str | None = None
    local_path: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str | None = None
    s3: dg.ResourceDependency[S3Resource]

    _store: RecordingStore | None = PrivateAttr(default=None)

    def get_store(self) -> RecordingStore:
        if self._store is None:
            overrides = {
                "backend": self.backend,
                "local_path": self.local_path,
                "s3_bucket": self.s3_bucket,
                "s3_prefix": self.s3_prefix,
            }
            settings = StorageSettings.from_env().model_copy(update={k: v for k, v in overrides.items() if v})
            client = _s3_client(self.s3, settings) if settings.backend in ("s3", "both") else None
            self._store = build_store(settings, s3_client=client)
        return self._store


def _s3_client(resource: S3Resource, settings: StorageSettings) -> Any:
    """A client from the ``S3Resource``'s region, endpoint and credentials, with callpipe's bounded
    timeouts: ``S3Resource.get_client()`` keeps botocore's 60 s per try, so a silent endpoint
    would hold every call of a run for minutes."""
    credentials = {
        "aws_access_key_id": resource.aws_access_key_id,
        "aws_secret_access_key": resource.aws_secret_access_key,
        "aws_session_token": resource.aws_session_token,
    }
    client = make_s3_client(
        resource.region_name or settings.s3_region or "us-east-1",
        resource.endpoint_url or settings.s3_endpoint_url,
        client_limits(settings),
        profile_name=resource.profile_name,
        use_ssl=resource.use_ssl,
        verify=resource.verify,
        **{k: v for k, v in credentials.items() if v},
    )
    if resource.use_unsigned_session:
        from botocore import UNSIGNED

        client.meta.events.register("choose-signer.s3.*", lambda **_: UNSIGNED)
    return client


class AnalyticsTablesResource(dg.ConfigurableResource):
    """Where the ``calls``, ``turns``, ``entities`` and ``day_aggregates`` tables are written and
    read: ``url`` is what ``CALLPIPE_ANALYTICS_DB`` takes (``postgresql://...``, a directory or
    ``duckdb:///DIR``); unset, that variable is read when the tables are opened, and unset too,
    the embedded default: Parquet day files and a SQLite listing beside the recording store
    (with S3, the day files are also put to ``s3://BUCKET/PREFIX/analytics/``, see
    :func:`callpipe.analytics.store.s3_location`). Configure it as
    ``AnalyticsTablesResource(url=dg.EnvVar("CALLPIPE_ANALYTICS_DB"))`` where that variable is
    always set (an ``EnvVar`` that is unset fails the run)."""

    url: str | None = None

    def open(self, store: RecordingStore, *, read_only: bool = False) -> AnalyticsStore:
        """The tables for ``store``'s recordings (close them after use)."""
        return open_analytics_store(self.url or None, read_only=read_only, store=store)


class StageModelsResource(dg.ConfigurableResource):
    """The stage models (Whisper, correction, analysis), loaded once per process on first use."""

    whisper_model: str | None = None
    retranscribe_wer_threshold: float | None = None

    _services: StageModels | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from callpipe.stt import TranscriberSettings

        overrides: dict[str, Any] = {"model": self.whisper_model} if self.whisper_model else {}
        self._services = _process_services(
            TranscriberSettings.from_env(**overrides), self.retranscribe_wer_threshold
        )

    @property
    def services(self) -> StageModels:
        if self._services is None:
            raise dg.DagsterInvariantViolationError("StageModelsResource used before setup")
        return self._services


_SERVICES: dict[Any, StageModels] = {}


def _process_services(settings: Any, threshold: float | None) -> StageModels:
    """One :class:`StageModels` per process and configuration: models survive across steps and runs
    of the same process (in-process executor, a Celery worker's child)."""
    key = (settings.model_dump_json(), threshold)
    if key not in _SERVICES:
        _SERVICES[key] = StageModels(settings, threshold)
    return _SERVICES[key]


def default_resources() -> dict[str, Any]:
    """Resources for ``Definitions``. Nothing is read here: the store's settings and the S3 client's
    region and endpoint (``S3_REGION``, default us-east-1, ``S3_ENDPOINT_URL``) come from
    :class:`callpipe.settings.Settings` when a run first uses the store
    (:meth:`RecordingStoreResource.get_store`); the analytics tables' from
    ``CALLPIPE_ANALYTICS_DB`` when a run first opens them (:class:`AnalyticsTablesResource`)."""
    return {
        "store": RecordingStoreResource(s3=S3Resource(max_attempts=3)),
        "tables": AnalyticsTablesResource(),
        "models": StageModelsResource(),
    }
