"""Finish or sweep the saves a killed process left ``saving`` in the catalog.

A row is ``saving`` from before the audio is written until the JSON document is. When its owner
process is gone (same host: pid plus start time), the save is completed if the document and the
audio are both there and the audio matches the document's checksum, and swept otherwise: every
file and marker the save wrote is removed and the row forgotten, so nothing half-saved is listed
or counted. Rows of live owners (a save in progress) and of other hosts are left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from callpipe.catalog.catalog_table import Row, owner_is_gone, row_from_doc
from callpipe.storage.errors import StorageError
from callpipe.storage.index import Entry
from callpipe.storage.mirrored import store_sides

if TYPE_CHECKING:
    from callpipe.catalog.cataloged import CatalogStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RecoveryReport:
    """Ids completed, swept, and left (owner alive or elsewhere, or the store unreachable)."""

    completed: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def recover_saves(store: CatalogStore, *, force: bool = False) -> RecoveryReport:
    """Complete or sweep every abandoned ``saving`` row (``force``: owners on other hosts too)."""
    report = RecoveryReport()
    for row in store.catalog.saving_rows():
        if not (force or owner_is_gone(row.save_owner)):
            report.left.append(row.recording_id)
            continue
        try:
            if _complete(store, row):
                report.completed.append(row.recording_id)
            else:
                _sweep(store, row)
                report.swept.append(row.recording_id)
        except StorageError as exc:  # S3 down: try again at the next open
            log.warning("could not recover interrupted save of %s: %s", row.recording_id, exc)
            report.left.append(row.recording_id)
    if report.completed or report.swept:
        log.info("interrupted saves: %d completed, %d swept", len(report.completed), len(report.swept))
    return report


def _complete(store: CatalogStore, row: Row) -> bool:
    try:
        doc = store.wrapped.get_metadata(row.recording_id)
        store.wrapped.get_recording(row.recording_id)  # present and matching the checksum
    except StorageError as exc:
        if type(exc).__name__ == "StorageUnavailableError":
            raise
        return False
    store.catalog.put(row_from_doc(doc))
    return True


def _sweep(store: CatalogStore, row: Row) -> None:
    entry = Entry(
        row.recording_id, row.conversation_id, row.call_date, datetime.fromisoformat(row.utc_time), row.format
    )
    _, sides = store_sides(store.wrapped)
    for side in sides:
        side._remove_all(entry, row.caller_key)
    store.catalog.forget(row.recording_id)
