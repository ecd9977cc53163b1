"""Building, serialising, parsing and checking metadata documents (no I/O)."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError

from callpipe.audio import probe_audio
from callpipe.schema import RecordingMetadata
from callpipe.storage.errors import ChecksumMismatchError, MetadataCorruptError
from callpipe.storage.ids import new_recording_id, validate_id


def prepare_document(
    audio_data: bytes,
    conversation_id: str,
    metadata: RecordingMetadata | dict[str, Any] | None,
    format: str,
    recording_id: str | None,
) -> RecordingMetadata:
    """Validate ids, probe the audio and build the revision-0 document (nothing is written)."""
    validate_id(conversation_id, "conversation_id")
    if recording_id is not None:
        validate_id(recording_id)
    if isinstance(metadata, RecordingMetadata):
        doc = metadata.model_copy(deep=True)
        given: str | None = doc.recording_id
    else:
        data = dict(metadata or {})
        given = data.get("recording_id")
        data.setdefault("conversation_id", conversation_id)
        data["recording_id"] = "unassigned"  # placeholder until the timestamp is known
        doc = RecordingMetadata.model_validate(data)
    if given is not None:
        validate_id(given)
    if recording_id is not None and given is not None and given != recording_id:
        raise ValueError(f"recording_id {recording_id!r} differs from metadata.recording_id {given!r}")
    if doc.conversation_id != conversation_id:
        raise ValueError(
            f"conversation_id {conversation_id!r} differs from "
            f"metadata.conversation_id {doc.conversation_id!r}"
        )
    doc.audio = probe_audio(audio_data, format)
    doc.recording_id = recording_id or given or new_recording_id(doc.timestamp)
    doc.revision = 0
    return doc


def dump_document(doc: RecordingMetadata) -> bytes:
    return doc.model_dump_json(indent=2).encode()


def parse_document(raw: bytes, recording_id: str, where: str) -> RecordingMetadata:
    """Parse a metadata document; :class:`MetadataCorruptError` names the recording and file."""
    try:
        doc = RecordingMetadata.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MetadataCorruptError(
            f"metadata of recording {recording_id} is corrupt ({where}): {first['type']}: {first['msg']}"
        ) from None
    if doc.recording_id != recording_id:
        raise MetadataCorruptError(
            f"metadata at {where} belongs to recording {doc.recording_id!r}, not {recording_id!r}"
        )
    return doc


def verify_checksum(data: bytes, doc: RecordingMetadata, where: str) -> None:
    """Raise :class:`ChecksumMismatchError` unless ``data`` hashes to the sha256 in ``doc.audio``."""
    if doc.audio is None:
        raise MetadataCorruptError(f"metadata of recording {doc.recording_id} has no audio checksum")
    actual = hashlib.sha256(data).hexdigest()
    if actual != doc.audio.checksum_sha256:
        raise ChecksumMismatchError(
            f"audio of recording {doc.recording_id} ({where}) has sha256 {actual[:16]}..., "
            f"metadata says {doc.audio.checksum_sha256[:16]}..."
        )
