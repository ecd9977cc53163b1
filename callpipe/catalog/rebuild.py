"""Rebuild the catalog from the metadata JSON documents (the record): losing it loses nothing.

Every document under the store's ``metadata/`` (the mirrored store: its local side, the authority)
becomes a ``saved`` row; a recording with files but no document was never saved and gets no row.
Stores written before the catalog existed are rebuilt the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callpipe.catalog.catalog_table import row_from_doc
from callpipe.storage.documents import parse_document
from callpipe.storage.errors import MetadataCorruptError
from callpipe.storage.mirrored import store_sides

if TYPE_CHECKING:
    from callpipe.catalog.cataloged import CatalogStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RebuildReport:
    """How many rows were written, and the documents that could not be read (path, message)."""

    rows: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def rebuild_catalog(store: CatalogStore, *, batch: int = 1000) -> RebuildReport:
    """Replace every row of ``store.catalog`` with the rows the stored documents stand for."""
    side, _ = store_sides(store.wrapped)
    report = RebuildReport()
    rows = []
    keys = [key for key, _ in side._walk(side.metadata_root) if key.endswith(".json")]
    for start in range(0, len(keys), batch):
        chunk = keys[start : start + batch]
        for key, raw in zip(chunk, side._get_many(chunk), strict=True):
            if raw is None:
                continue
            rid = key.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                doc = parse_document(raw, rid, side._uri(key))
            except MetadataCorruptError as exc:
                report.errors.append((side._uri(key), str(exc)))
                continue
            rows.append(row_from_doc(doc, metadata_path=side._uri(key)))
    store.catalog.replace_all(rows)
    store.catalog.mark_filled()
    report.rows = len(rows)
    return report
