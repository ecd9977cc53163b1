"""Ingest of finished calls over HTTP (multipart) and WebSocket, through the online recorder.

Both paths end in :func:`ingest`, which runs :meth:`callpipe.recorder.Recorder.record` (what
``callpipe record`` runs) and answers what ``callpipe record`` prints. A mistake in the request
becomes :class:`IngestError` (one line, an HTTP status) and nothing is stored: the recorder
validates ids, confidences, the phone number and the audio before it writes anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from callpipe.audio_files import InvalidAudioError
from callpipe.idempotency import IdempotencyConflict, IdempotencyStore, check_key, fingerprint
from callpipe.pii import PIIConfigError
from callpipe.recorder import Recorder
from callpipe.storage import (
    InvalidIdError,
    InvalidMetadataError,
    RecordingExistsError,
    StorageError,
    StorageUnavailableError,
)

log = logging.getLogger("callpipe.service")
AUDIO_FORMATS = ("wav", "flac", "ogg", "mp3", "opus", "webm", "m4a")


class IngestError(Exception):
    """A request that cannot be stored: ``status`` (4xx/5xx) and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class IngestRequest:
    """The fields of one call, as sent (strings), validated by :func:`parse_fields`."""

    conversation_id: str
    agent_id: str | None = None
    direction: str = "inbound"
    transcript: str = ""
    word_confidences: list[dict[str, Any]] | None = None
    caller_phone: str | None = None
    audio_format: str = "wav"


def parse_fields(fields: dict[str, Any], filename: str | None = None) -> IngestRequest:
    """Validate the form (or final WebSocket message) fields; :class:`IngestError` (422) if wrong."""
    conversation_id = fields.get("conversation_id")
    if not isinstance(conversation_id, str) or not conversation_id.strip():
        raise IngestError(422, "conversation_id is required")
    direction = fields.get("direction") or "inbound"
    if direction not in ("inbound", "outbound"):
        raise IngestError(422, f"direction must be inbound or outbound, not {str(direction)[:20]!r}")
    transcript = fields.get("transcript") or ""
    if not isinstance(transcript, str):
        raise IngestError(422, "transcript must be text")
    words = fields.get("word_confidences")
    if isinstance(words, str):
        words = words.strip() or None
        if words is not None:
            try:
                words = json.loads(words)
            except json.JSONDecodeError as exc:
                raise IngestError(422, f"word_confidences is not valid JSON: {exc.msg}") from None
    if isinstance(words, dict):
        words = words.get("word_confidences", "missing")
    if words is not None and (not isinstance(words, list) or not all(isinstance(w, dict) for w in words)):
        raise IngestError(422, "word_confidences must be a JSON list of {word, confidence} objects")
    # The bytes decide the format (callpipe.audio_files.probe_audio); a name is only a hint, and
    # what a client wrote is never echoed (a "file name" can be a path).
    fmt = str(fields.get("format") or "").lower()
    if fmt and fmt not in AUDIO_FORMATS:
        raise IngestError(422, f"the format field must be one of {', '.join(AUDIO_FORMATS)}")
    if not fmt and filename and "." in filename:
        suffix = filename.rsplit(".", 1)[-1].lower()
        fmt = suffix if suffix in AUDIO_FORMATS else ""
    optional = {}
    for name in ("agent_id", "caller_phone"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise IngestError(422, f"{name} must be text")
        optional[name] = value.strip() if value and value.strip() else None
    return IngestRequest(
        conversation_id=conversation_id.strip(),
        direction=direction,
        transcript=transcript,
        word_confidences=words,
        audio_format=fmt,
        **optional,
    )


async def ingest(recorder: Recorder, audio: bytes, request: IngestRequest) -> dict[str, Any]:
    """Record one call (online correction + save); returns what ``callpipe record`` prints."""
    if not audio:
        raise IngestError(422, "audio is empty")
    extra = {"agent_id": request.agent_id} if request.agent_id else {}
    try:
        result = await recorder.record(
            audio,
            request.conversation_id,
            transcription=request.transcript,
            word_confidences=request.word_confidences,
            direction=request.direction,
            audio_format=request.audio_format,
            extra=extra,
            caller_phone=request.caller_phone,
        )
    except RecordingExistsError as exc:
        raise IngestError(409, _line(exc)) from None
    except StorageUnavailableError as exc:
        raise IngestError(503, _line(exc)) from None
    except PIIConfigError as exc:
        raise IngestError(500, _line(exc)) from None
    except (InvalidAudioError, InvalidIdError, InvalidMetadataError) as exc:
        raise IngestError(422, _line(exc)) from None
    except StorageError as exc:  # its text may name a path or a bucket: the log has it, not the client
        log.error("ingest of %s failed: %s", request.conversation_id[:80], _line(exc))
        raise IngestError(500, "the store could not save the call") from None
    except ValueError as exc:  # confidences, phone number, pydantic validation of the metadata
        raise IngestError(422, _line(exc)) from None
    answer = result.to_dict()
    for server_only in ("local_path", "metadata_path"):  # where the server keeps it is its own business
        answer.pop(server_only, None)
    return answer


async def ingest_once(
    recorder: Recorder,
    keys: IdempotencyStore,
    scope: str,
    key: str,
    audio: bytes,
    request: IngestRequest,
) -> tuple[dict[str, Any], bool]:
    """:func:`ingest` under an idempotency key: ``(result, replayed)``; a replay is the first
    result's ids, size, checksum and sync state with ``replayed: true``, and stores nothing."""
    try:
        key = check_key(key)
    except ValueError as exc:
        raise IngestError(422, str(exc)) from None
    request_id = fingerprint(audio, asdict(request))
    try:
        first = await asyncio.to_thread(keys.claim, scope, key, request_id)
    except IdempotencyConflict as exc:
        raise IngestError(409, str(exc)) from None
    if first is not None:
        return {**first, "replayed": True}, True
    try:
        result = await ingest(recorder, audio, request)
    except BaseException:
        await asyncio.to_thread(keys.release, scope, key)
        raise
    await asyncio.to_thread(keys.finish, scope, key, result)
    return result, False


def _line(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    errors = getattr(exc, "errors", None)
    if callable(errors) and hasattr(exc, "title"):  # pydantic ValidationError
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        text = f"invalid {exc.title}: {where + ': ' if where else ''}{first['msg']}"
    return text.splitlines()[0] if text.strip() else type(exc).__name__
