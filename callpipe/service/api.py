"""The JSON API: health, processing statistics, the dashboard, ingest (HTTP and WebSocket),
search, one call, its audio, reprocessing and erasure. Roles: see :mod:`callpipe.service.api_config`."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    HTTPException,
    Query,
    Request,
    UploadFile,
    WebSocket,
)
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from callpipe.service.api_config import Principal
from callpipe.service.auth import identify, require
from callpipe.service.ingest import IngestError, ingest, ingest_once, parse_fields
from callpipe.service.media import audio_response, served_bytes
from callpipe.service.reads import analyst_view, processing_stats
from callpipe.service.streaming import AudioSpool, StreamTimeout
from callpipe.service.unprocessed import list_with_catalog
from callpipe.storage import RecordingNotFoundError, StorageError, validate_id

log = logging.getLogger("callpipe.service")
router = APIRouter()
Analyst = Annotated[Principal, Depends(require("analyst"))]
Ingest = Annotated[Principal, Depends(require("ingest"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def _id(recording_id: str) -> str:
    try:
        return validate_id(recording_id)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc).splitlines()[0]) from None


def _not_found(recording_id: str) -> HTTPException:
    """404 naming the id only: never the store, its path or its bucket."""
    return HTTPException(status_code=404, detail=f"recording {recording_id} not found")


@router.get("/health", tags=["service"])
async def health(request: Request) -> JSONResponse:
    """Each dependency (store sides, analytics, catalog) checked, no key needed; 503 when no
    store side can take a call (see :mod:`callpipe.service.health`)."""
    code, body = await request.app.state.health.get(request.app.state)
    return JSONResponse(body, status_code=code)


@router.get("/processing/stats", tags=["service"])
def stats(request: Request, _: Analyst) -> dict[str, Any]:
    """Store and queue statistics over the whole store, from the index (the seed's shape)."""
    state = request.app.state
    return processing_stats(state.store, state.analytics, state.stats_cache)


@router.get("/analytics/dashboard", tags=["analytics"])
def dashboard(
    request: Request, _: Analyst, date_from: date | None = None, date_to: date | None = None
) -> dict[str, Any]:
    """The UI dashboard's data from the per-day aggregates: per-day counts, sentiment and intents
    by day, top topics, agents (with their resolution rate), slowest calls, calls per outcome
    and the resolution rate (resolved / calls with a known outcome) overall and by intent."""
    with request.app.state.analytics.use() as tables:
        return tables.dashboard(date_from=date_from, date_to=date_to)


@router.post("/recordings", status_code=201, tags=["recordings"])
async def create_recording(
    request: Request,
    principal: Ingest,
    audio: Annotated[UploadFile, File(description="the call's audio (wav, flac, ogg, mp3)")],
    conversation_id: Annotated[str, Form()],
    agent_id: Annotated[str | None, Form()] = None,
    direction: Annotated[Literal["inbound", "outbound"], Form()] = "inbound",
    transcript: Annotated[str | None, Form()] = None,
    word_confidences: Annotated[str | None, Form(description="JSON list of {word, confidence}")] = None,
    caller_phone: Annotated[str | None, Form()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Save a finished call through the online recorder; answers what ``callpipe record`` prints
    (without server paths). With ``Idempotency-Key`` a retry gets the first result back (200,
    ``replayed: true``) and nothing is stored again; the same key for another request is a 409."""
    limit = request.app.state.settings.max_upload_bytes
    data = await audio.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(status_code=413, detail=f"audio larger than {limit // (1024 * 1024)} MB")
    fields = {
        "conversation_id": conversation_id,
        "agent_id": agent_id,
        "direction": direction,
        "transcript": transcript,
        "word_confidences": word_confidences,
        "caller_phone": caller_phone,
    }
    try:
        parsed = parse_fields(fields, audio.filename)
        if idempotency_key is None:
            stored = await ingest(request.app.state.recorder, data, parsed)
            request.app.state.stats_cache.queue.invalidate()  # stats agree with the list at once
            return JSONResponse(stored, status_code=201)
        result, replayed = await ingest_once(
            request.app.state.recorder,
            request.app.state.idempotency,
            principal.key_id,
            idempotency_key,
            data,
            parsed,
        )
    except IngestError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.message) from None
    request.app.state.stats_cache.queue.invalidate()
    return JSONResponse(result, status_code=200 if replayed else 201)


@router.websocket("/recordings/stream")
async def stream_recording(websocket: WebSocket) -> None:
    """Binary audio frames, then one JSON text message with ``conversation_id``, ``transcript``,
    ``word_confidences`` (and optionally ``agent_id``, ``direction``, ``caller_phone``, ``format``).
    The call is saved on that message and the reply is the same JSON as ``POST /recordings``;
    a mistake is answered ``{"error": ...}`` and the socket closed (1008 policy, 1009 too big)."""
    principal = identify(websocket, allow_cookie=False)
    if principal is None or "ingest" not in principal.roles:
        await websocket.close(code=1008, reason="an ingest key is required (Authorization: Bearer KEY)")
        return
    await websocket.accept()
    state = websocket.app.state
    settings = state.settings
    spool = AudioSpool(settings.max_upload_bytes, settings.body_idle_seconds, settings.body_timeout_seconds)
    try:
        with spool:
            while True:
                try:
                    message = await spool.next_message(websocket)
                except StreamTimeout as exc:
                    await _ws_error(websocket, 1008, str(exc))
                    return
                if message["type"] == "websocket.disconnect":
                    return  # the call was abandoned: nothing stored
                if message.get("bytes") is not None:
                    if not spool.write(message["bytes"]):
                        await _ws_error(websocket, 1009, "audio larger than the upload limit")
                        return
                    continue
                try:
                    fields = json.loads(message.get("text") or "")
                except json.JSONDecodeError:
                    await _ws_error(websocket, 1008, "the final message must be a JSON object")
                    return
                if not isinstance(fields, dict):
                    await _ws_error(websocket, 1008, "the final message must be a JSON object")
                    return
                try:
                    result = await ingest(state.recorder, await spool.read_all(), parse_fields(fields))
                except IngestError as exc:
                    await _ws_error(websocket, 1008 if exc.status < 500 else 1011, exc.message)
                    return
                await websocket.send_json(result)
                await websocket.close(code=1000)
                return
    except WebSocketDisconnect:
        return


async def _ws_error(websocket: WebSocket, code: int, message: str) -> None:
    await websocket.send_json({"error": message})
    await websocket.close(code=code, reason=message[:120])


@router.get("/recordings", tags=["recordings"])
def list_recordings(
    request: Request,
    _: Analyst,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
    intent: str | None = None,
    sentiment: str | None = None,
    agent_id: str | None = None,
    outcome: Annotated[
        str | None, Query(max_length=20, description="resolved, escalated, abandoned, transferred or unknown")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="words in the redacted transcripts")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    category: Annotated[str | None, Query(max_length=100, description="calls matching this category")] = None,
) -> dict[str, Any]:
    """Calls from the analytics table, newest first, with the calls not processed yet from the catalog
    (:mod:`callpipe.service.unprocessed`); pass ``next_cursor`` back for the next page."""
    try:
        with request.app.state.analytics.use() as tables:
            items, next_cursor = list_with_catalog(
                tables,
                request.app.state.store,
                date_from=date_from,
                date_to=date_to,
                status=status or None,
                intent=intent or None,
                sentiment=sentiment or None,
                agent_id=agent_id or None,
                outcome=outcome or None,
                q=q.strip() if q and q.strip() else None,
                limit=limit,
                cursor=cursor or None,
                **({"category": category} if category else {}),
            )
    except ValueError as exc:  # a cursor that is not one of ours, an unknown status
        raise HTTPException(status_code=422, detail=str(exc).splitlines()[0]) from None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/recordings/{recording_id}", tags=["recordings"])
def get_recording(
    request: Request, recording_id: str, principal: Analyst, raw: bool = False
) -> dict[str, Any]:
    """The metadata document, redacted for analysts; ``raw=true`` (admin only, audited) as stored."""
    recording_id = _id(recording_id)
    if raw and "admin" not in principal.roles:
        raise HTTPException(status_code=403, detail="raw metadata needs the admin role")
    try:
        doc = request.app.state.store.get_metadata(recording_id)
    except RecordingNotFoundError:
        raise _not_found(recording_id) from None
    if raw:
        request.app.state.audit.record(
            principal, "read_raw_metadata", recording_id=recording_id, outcome="served"
        )
        return doc.model_dump(mode="json")
    return analyst_view(doc)


@router.get("/recordings/{recording_id}/audio", tags=["recordings"])
async def get_audio(request: Request, recording_id: str, principal: Analyst) -> Any:
    """The call's audio; honours ``Range`` (206, ``Content-Range``) so players can seek."""
    recording_id = _id(recording_id)
    store = request.app.state.store
    try:
        meta = await asyncio.to_thread(store.get_metadata, recording_id)
        source: Path | bytes = await asyncio.to_thread(_audio_source, store, recording_id)
    except RecordingNotFoundError:
        raise _not_found(recording_id) from None
    except (StorageError, OSError):
        raise HTTPException(status_code=404, detail=f"audio of {recording_id} is not available") from None
    fmt = meta.audio.format if meta.audio else (source.suffix.lstrip(".") if isinstance(source, Path) else "")
    response = audio_response(source, fmt, request.headers.get("range"))
    served = served_bytes(response)
    if "admin" in principal.roles and served is not None:  # by what is sent, whatever was asked
        request.app.state.audit.record(
            principal, "read_audio", recording_id=recording_id, outcome="served", **served
        )
    return response


def _audio_source(store: Any, recording_id: str) -> Path | bytes:
    """The store's own local audio file, else (S3) the verified bytes, kept for this response only:
    no host keeps a copy that erasure could miss."""
    try:
        return store.local_audio_path(recording_id)
    except StorageError:
        return store.get_recording(recording_id)


@router.post("/recordings/{recording_id}/reprocess", tags=["recordings"])
def reprocess(
    request: Request,
    recording_id: str,
    _: Analyst,
    stage: Annotated[list[str] | None, Query(description="only these stages; default all")] = None,
) -> dict[str, Any]:
    """Queue the call for offline work again (what ``callpipe reprocess ID`` does)."""
    from callpipe.stage_runner import STAGE_ORDER

    recording_id = _id(recording_id)
    unknown = sorted(set(stage or []) - set(STAGE_ORDER))
    if unknown:
        raise HTTPException(
            status_code=422, detail=f"unknown stage {', '.join(unknown)}; stages are {', '.join(STAGE_ORDER)}"
        )
    try:
        request.app.state.store.request_reprocess(recording_id, stage)
    except RecordingNotFoundError:
        raise _not_found(recording_id) from None
    return {"flagged": 1, "stages": stage or "all", "recording_ids": [recording_id]}


@router.delete("/recordings/{recording_id}", tags=["recordings"])
def delete_recording(request: Request, recording_id: str, principal: Admin) -> JSONResponse:
    """Erase the call everywhere (``callpipe erase --recording-id``); answers the receipt, audited.
    200 when complete, 502 when a backend still holds part of it (``callpipe erase --resume``)."""
    from callpipe.erasure import erase

    recording_id = _id(recording_id)
    state = request.app.state
    try:
        receipt = erase(state.store, recording_id=recording_id)
    except RecordingNotFoundError:
        state.audit.record(principal, "erase", recording_id=recording_id, outcome="not_found")
        raise _not_found(recording_id) from None
    body = receipt.to_dict()
    removed = sum(len(r.removed) for r in receipt.recordings)
    state.audit.record(
        principal,
        "erase",
        recording_id=recording_id,
        outcome="complete" if receipt.complete else "incomplete",
        objects_removed=removed,
    )
    complete = receipt.complete
    try:  # the call leaves the analytics tables now, not at its day's next run
        from callpipe.analytics import remaining_recordings, remove_recordings

        removed_rows = remove_recordings(state.store, [recording_id], state.analytics_url)
        left = remaining_recordings(state.store, [recording_id], state.analytics_url)
        body["analytics"] = {"rows_removed": bool(removed_rows), "rows_remain": bool(left)}
        complete = complete and not left
    except Exception as exc:  # the erasure itself succeeded: say what is left
        log.warning("erasure of %s: analytics rows not removed: %s", recording_id, type(exc).__name__)
        body["analytics"] = {"rows_removed": False, "error": "analytics tables unavailable; rows remain"}
        complete = False
    body["complete"] = complete
    return JSONResponse(body, status_code=200 if complete else 502)
