"""The catalog of recordings: one database row per recording, the store's state in one place.

On by default: SQLite beside the store (``<STORAGE_LOCAL_PATH>/state/catalog.sqlite``, or
``CALLPIPE_CATALOG_PATH``; an S3-only store's in ``CALLPIPE_STATE_DIR``, else the user's state
folder, never the working directory); with ``CALLPIPE_CATALOG_DSN``: PostgreSQL;
``CALLPIPE_CATALOG=off``: the marker-file index alone.
:func:`with_catalog` wraps a store so that saves, updates, leases and erasure write the catalog and
listing, pending lookups and counts read it; :func:`~callpipe.catalog.rebuild.rebuild_catalog`
rebuilds it from the metadata documents.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from callpipe.catalog.catalog_table import SAVED, SAVING, Row
from callpipe.catalog.db import Catalog, CatalogConflictError

if TYPE_CHECKING:
    from callpipe.storage.base import RecordingStore
    from callpipe.storage.store_settings import StorageSettings

__all__ = ["SAVED", "SAVING", "Catalog", "CatalogConflictError", "Row", "open_catalog", "with_catalog"]


def catalog_path(settings: StorageSettings) -> Path:
    """Where the embedded catalog lives: ``CALLPIPE_CATALOG_PATH``, else beside the local store,
    else (S3 alone) ``catalog-<bucket and prefix hash>.sqlite`` in ``CALLPIPE_STATE_DIR``, else in
    ``$XDG_STATE_HOME/callpipe`` (``~/.local/state/callpipe``): never the working directory."""
    if settings.catalog_path:
        return Path(settings.catalog_path).expanduser()
    if settings.backend in ("local", "both"):
        return Path(settings.local_path) / "state" / "catalog.sqlite"
    where = hashlib.sha256(f"{settings.s3_bucket}/{settings.s3_prefix}".encode()).hexdigest()[:16]
    if settings.state_dir:
        folder = Path(settings.state_dir).expanduser()
    else:
        folder = Path(os.environ.get("XDG_STATE_HOME") or "~/.local/state").expanduser() / "callpipe"
    return folder / f"catalog-{where}.sqlite"


def open_catalog(settings: StorageSettings) -> Catalog | None:
    """The catalog ``settings`` configure: PostgreSQL with a DSN, else SQLite (the default), or None
    with ``CALLPIPE_CATALOG=off`` (the marker-file index answers)."""
    if settings.catalog_dsn is not None:
        return Catalog(dsn=settings.catalog_dsn.get_secret_value())
    if settings.catalog == "off":
        return None
    return Catalog(path=catalog_path(settings))


def with_catalog(store: RecordingStore, settings: StorageSettings) -> RecordingStore:
    """``store`` wrapped by :class:`~callpipe.catalog.cataloged.CatalogStore`, unless the catalog is off."""
    catalog = open_catalog(settings)
    if catalog is None:
        return store
    from callpipe.catalog.cataloged import CatalogStore

    return CatalogStore(store, catalog)
