"""The catalog's one table: a row per recording, keyed by ``recording_id``.

A row mirrors what the marker-file index knew (ids, dates, status, lease, paths, checksum, caller
key) plus ``save_state``: ``saving`` is claimed before the audio and the JSON document are written,
``saved`` once both are. Readers list only ``saved`` rows, so nothing half-saved is ever counted.
The metadata JSON stays the record; every column is derived from it (:func:`row_from_doc`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import astuple, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from callpipe.schema import ProcessingStatus, RecordingMetadata

SAVING, SAVED = "saving", "saved"

DDL = """
CREATE TABLE IF NOT EXISTS recordings (
    recording_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    call_date TEXT NOT NULL,
    utc_time TEXT NOT NULL,
    format TEXT NOT NULL,
    status TEXT NOT NULL,
    processed INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    revision INTEGER NOT NULL,
    audio_path TEXT,
    metadata_path TEXT,
    checksum TEXT,
    caller_key TEXT,
    save_state TEXT NOT NULL,
    save_owner TEXT,
    retained INTEGER NOT NULL,
    erasing INTEGER NOT NULL,
    pending_sync INTEGER NOT NULL
)
"""
INDEXES = (
    "CREATE INDEX IF NOT EXISTS recordings_date ON recordings (call_date, recording_id)",
    "CREATE INDEX IF NOT EXISTS recordings_pending ON recordings (processed, call_date, recording_id)",
    "CREATE INDEX IF NOT EXISTS recordings_queue ON recordings (processed, utc_time, recording_id)",
    "CREATE INDEX IF NOT EXISTS recordings_conversation ON recordings (conversation_id)",
    "CREATE INDEX IF NOT EXISTS recordings_caller ON recordings (caller_key)",
    "CREATE INDEX IF NOT EXISTS recordings_saving ON recordings (save_state)",
)


@dataclass(frozen=True, slots=True)
class Row:
    """One catalog row; field order is the column order of :data:`DDL`."""

    recording_id: str
    conversation_id: str
    call_date: str
    utc_time: str
    format: str
    status: str
    processed: bool
    attempts: int
    lease_owner: str | None
    lease_until: str | None
    revision: int
    audio_path: str | None
    metadata_path: str | None
    checksum: str | None
    caller_key: str | None
    save_state: str
    save_owner: str | None
    retained: bool
    erasing: bool
    pending_sync: bool

    def values(self) -> tuple[object, ...]:
        """Column values in order (booleans as 0/1 for SQLite and PostgreSQL INTEGER alike)."""
        return tuple(int(v) if isinstance(v, bool) else v for v in astuple(self))

    @property
    def timestamp(self) -> datetime:
        """The call's UTC timestamp."""
        return datetime.fromisoformat(self.utc_time)


COLUMNS = tuple(f.name for f in fields(Row))


def row_from_doc(doc: RecordingMetadata, state: str = SAVED, *, metadata_path: str | None = None) -> Row:
    """The row a document stands for (``state`` is ``saving`` while its files are being written)."""
    status = doc.status.status
    return Row(
        recording_id=doc.recording_id,
        conversation_id=doc.conversation_id,
        call_date=doc.call_date,
        utc_time=doc.timestamp.astimezone(UTC).isoformat(),
        format=doc.audio.format if doc.audio else "wav",
        status=status.value if isinstance(status, ProcessingStatus) else str(status),
        processed=bool(doc.processed),
        attempts=doc.status.attempts,
        lease_owner=doc.status.lease_owner,
        lease_until=doc.status.lease_until.isoformat() if doc.status.lease_until else None,
        revision=doc.revision,
        audio_path=doc.storage.audio_path or doc.storage.s3_audio_key,
        metadata_path=metadata_path or doc.storage.s3_metadata_key,
        checksum=doc.audio.checksum_sha256 if doc.audio else None,
        caller_key=doc.caller.phone_key or None,
        save_state=state,
        save_owner=process_identity() if state == SAVING else None,
        retained=doc.retention is not None,
        erasing=False,
        pending_sync=doc.storage.pending_sync,
    )


def row_from_values(values: tuple[object, ...]) -> Row:
    """A row from a ``SELECT`` of :data:`COLUMNS`."""
    data = dict(zip(COLUMNS, values, strict=True))
    for name in ("processed", "retained", "erasing", "pending_sync"):
        data[name] = bool(data[name])
    return Row(**data)  # type: ignore[arg-type]


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_identity() -> str:
    """``host:pid:start-ticks`` of this process: who claimed a ``saving`` row."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def owner_is_gone(owner: str | None) -> bool:
    """True when ``owner`` (a :func:`process_identity`) is a process of this host that no longer
    runs; an owner on another host is never judged here (its row is swept once stale)."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _start_ticks(int(pid)) != ticks
