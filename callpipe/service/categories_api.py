"""The categories API (analyst role): define, edit and delete categories; every save is applied
to every stored call in a background thread of the server (only the categories stage runs, see
:mod:`callpipe.analytics.categorize`), and its progress (``covered`` of ``total`` calls) is read
back with ``GET /categories/{name}``.

``PUT`` is authenticated before a byte of its body is read (the front door,
:mod:`callpipe.service.guard`, then the route's dependency), its body is bounded
(:data:`MAX_DEFINITION_BYTES`), and a definition that does not validate is a 422 naming the field.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from callpipe.service.api_config import Principal
from callpipe.service.auth import require

router = APIRouter(tags=["categories"])
Analyst = Annotated[Principal, Depends(require("analyst"))]
MAX_DEFINITION_BYTES = 64 * 1024
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def category_name(name: str) -> str:
    """``name`` if it is a category name (letters, digits, ``_ . -``; 1..100), else a 422."""
    if not NAME.fullmatch(name):
        raise HTTPException(status_code=422, detail="category name: 1..100 letters, digits, '_', '.' or '-'")
    return name


def runner(state: Any) -> Any:
    """The app's :class:`~callpipe.analytics.categorize.CategoryRunner` (made at first use)."""
    if getattr(state, "categories", None) is None:
        from callpipe.analytics import open_analytics_store
        from callpipe.analytics.categorize import CategoryRunner

        state.categories = CategoryRunner(
            lambda: open_analytics_store(state.analytics_url, store=state.store)
        )
    return state.categories


def save_category(state: Any, principal: Principal, name: str, text: bytes | str) -> dict[str, Any]:
    """Validate, store and start applying one definition; ``CategoryError`` when it is invalid."""
    from callpipe.analytics import open_analytics_store
    from callpipe.categories import parse_rule

    rule = parse_rule(text, name)
    writer = open_analytics_store(state.analytics_url, store=state.store)
    try:
        writer.put_category(rule)
        writer.set_category_progress(rule.name, rule.version, 0, 0, "queued")
    finally:
        writer.close()
    runner(state).start(rule.name)
    state.audit.record(principal, "put_category", category=rule.name, version=rule.version)
    return {"name": rule.name, "version": rule.version, "progress": {"state": "queued"}}


async def bounded_body(request: Request, limit: int = MAX_DEFINITION_BYTES) -> bytes:
    """The request body, at most ``limit`` bytes (413 past it, without reading the rest)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail=f"definition larger than {limit // 1024} KB")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/categories")
def list_categories(
    request: Request, _: Analyst, date_from: date | None = None, date_to: date | None = None
) -> dict[str, Any]:
    """Every stored category with its progress, and calls per category per call date."""
    with request.app.state.analytics.use() as tables:
        return {"items": tables.categories(), "per_day": tables.category_counts(date_from, date_to)}


@router.get("/categories/{name}")
def get_category(request: Request, name: str, _: Analyst) -> dict[str, Any]:
    """One category: its YAML definition, version and progress over history."""
    name = category_name(name)
    with request.app.state.analytics.use() as tables:
        found = tables.categories(name)
    if not found:
        raise HTTPException(status_code=404, detail=f"category {name} not found")
    return found[0]


@router.put("/categories/{name}", status_code=202)
async def put_category(request: Request, name: str, principal: Analyst) -> JSONResponse:
    """Create or replace a category from a YAML (or JSON) body, then apply it to every stored
    call in the background (202; follow ``GET /categories/{name}``'s ``progress``)."""
    from callpipe.categories import CategoryError

    name = category_name(name)
    body = await bounded_body(request)
    try:
        saved = save_category(request.app.state, principal, name, body)
    except CategoryError as exc:
        raise HTTPException(status_code=422, detail=str(exc).splitlines()[0]) from None
    return JSONResponse(saved, status_code=202)


@router.delete("/categories/{name}")
def delete_category(request: Request, name: str, principal: Analyst) -> dict[str, Any]:
    """Delete a category and every call's match of it."""
    from callpipe.analytics import open_analytics_store

    name = category_name(name)
    state = request.app.state
    writer = open_analytics_store(state.analytics_url, store=state.store)
    try:
        found = writer.delete_category(name)
    finally:
        writer.close()
    if not found:
        raise HTTPException(status_code=404, detail=f"category {name} not found")
    state.audit.record(principal, "delete_category", category=name)
    return {"deleted": name}


@router.get("/recordings/{recording_id}/categories", tags=["recordings"])
def recording_categories(request: Request, recording_id: str, _: Analyst) -> dict[str, Any]:
    """The categories a call matches, with the turn and the words that matched."""
    from callpipe.storage import validate_id

    try:
        recording_id = validate_id(recording_id)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc).splitlines()[0]) from None
    with request.app.state.analytics.use() as tables:
        return {"recording_id": recording_id, "categories": tables.call_categories(recording_id)}
