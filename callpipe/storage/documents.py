"""Building, serialising, parsing and checking metadata documents (no I/O)."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from callpipe.audio_files import probe_audio
from callpipe.schema import RecordingMetadata
from callpipe.storage.errors import ChecksumMismatchError, InvalidMetadataError, MetadataCorruptError
from callpipe.storage.ids import new_recording_id, validate_id


def prepare_document(
    audio_data: bytes,
    conversation_id: str,
    metadata: RecordingMetadata | dict[str, Any] | None,
    format: str,
    recording_id: str | None,
) -> RecordingMetadata:
    """Validate ids, metadata and audio, and build the revision-0 document (nothing is written).

    Raises ``InvalidIdError``, ``InvalidMetadataError`` (wrong field values, ids that differ from
    the arguments, values that cannot be stored as JSON), ``InvalidAudioError``, and ``TypeError``
    when an argument has the wrong Python type.
    """
    validate_id(conversation_id, "conversation_id")
    if recording_id is not None:
        validate_id(recording_id)
    if not isinstance(audio_data, bytes | bytearray | memoryview):
        raise TypeError(f"audio_data must be bytes, got {type(audio_data).__name__}")
    if not isinstance(format, str):
        raise TypeError(f"format must be a str, got {type(format).__name__}")
    if isinstance(metadata, RecordingMetadata):
        doc = metadata.model_copy(deep=True)
        given: Any = doc.recording_id
    elif metadata is None or isinstance(metadata, dict):
        data = dict(metadata or {})
        given = data.get("recording_id")
        data.setdefault("conversation_id", conversation_id)
        data["recording_id"] = "unassigned"  # placeholder until the timestamp is known
        try:
            doc = RecordingMetadata.model_validate(data)
        except ValidationError as exc:
            raise InvalidMetadataError(
                f"invalid metadata for conversation {conversation_id}: {_first_error(exc)}"
            ) from None
    else:
        kind = type(metadata).__name__
        raise TypeError(f"metadata must be a RecordingMetadata, a dict or None, got {kind}")
    if given is not None:
        validate_id(given)
    if recording_id is not None and given is not None and given != recording_id:
        raise InvalidMetadataError(
            f"recording_id {recording_id!r} differs from metadata.recording_id {given!r}"
        )
    if doc.conversation_id != conversation_id:
        raise InvalidMetadataError(
            f"conversation_id {conversation_id!r} differs from "
            f"metadata.conversation_id {doc.conversation_id!r:.60}"
        )
    doc.audio = probe_audio(bytes(audio_data), format)
    doc.recording_id = recording_id or given or new_recording_id(doc.timestamp)
    doc.revision = 0
    # Fail before anything is written, not halfway through the save, and never store a document
    # that cannot be read back (an infinite Turn.start is written as null, which does not load).
    try:
        RecordingMetadata.model_validate_json(dump_document(doc))
    except PydanticSerializationError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidMetadataError(
            f"metadata of recording {doc.recording_id} cannot be stored as JSON: {message:.200}"
        ) from None
    except ValidationError as exc:
        raise InvalidMetadataError(
            f"metadata of recording {doc.recording_id} would not load back from JSON "
            f"(NaN or infinity?): {_first_error(exc)}"
        ) from None
    return doc


def _first_error(exc: ValidationError) -> str:
    """``field.path: message`` of the first error, on one line."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "document"
    return f"{where}: {first['msg']}".replace("\n", " ")[:300]


def dump_document(doc: RecordingMetadata) -> bytes:
    """The stored JSON: a transcript's corrected and redacted texts are written only where they
    differ from its text (``same_as_text`` names the others; see :class:`~callpipe.schema.Transcription`)."""
    return doc.model_dump_json(indent=2, context={"compact": True}).encode()


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
