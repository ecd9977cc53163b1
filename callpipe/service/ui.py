"""The analyst web UI (server-rendered Jinja2): login, dashboard, call list, call page.

Login takes an analyst (or admin) key once and sets a signed session cookie; pages never carry
the key. Every script and style is served by the app (Plotly's bundled ``plotly.min.js``
included), so the UI works with no network.
"""

from __future__ import annotations

import html
import json
import os
import re
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from callpipe.service.api_config import Principal
from callpipe.service.auth import SESSION_COOKIE, end_session, identify, make_session
from callpipe.service.reads import AnalyticsUnavailableError, analyst_view, corrections_of
from callpipe.service.sessions import LoginLimiter
from callpipe.service.unprocessed import dashboard_with_catalog, list_with_catalog
from callpipe.storage import RecordingNotFoundError, validate_id

HERE = Path(__file__).parent
FILTERS = ("date_from", "date_to", "status", "intent", "sentiment", "agent_id", "outcome", "q", "category")
SENTIMENTS = ("positive", "neutral", "negative", "frustrated")
STATUSES = ("processed", "pending", "failed")
OUTCOMES = ("resolved", "escalated", "transferred", "abandoned", "unknown")
_TAG = r"\[[A-Z_]+\]"
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>callpipe API</title>
<link rel="stylesheet" href="/vendor/swagger/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml"></head>
<body><div id="swagger-ui"></div>
<script src="/vendor/swagger/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>
"""


def mount(app: FastAPI) -> None:
    """Add the UI's routes and static files to ``app``."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["sentiments"] = SENTIMENTS
    templates.env.globals["statuses"] = STATUSES
    templates.env.globals["outcomes"] = OUTCOMES
    templates.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, principal: Principal | None, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"principal": principal, **context})

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui", status_code=303)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        path = resources.files("plotly") / "package_data" / "plotly.min.js"
        return FileResponse(
            str(path), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
        )

    import fastapi_offline  # only for its bundled Swagger UI 5 files (OpenAPI 3.1)

    swagger = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/vendor/swagger", StaticFiles(directory=str(swagger)), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)

    @app.get("/ui/login", include_in_schema=False)
    def login_form(request: Request) -> HTMLResponse:
        return page(request, "login.html", None, error=None)

    limiter = LoginLimiter()

    @app.post("/ui/login", include_in_schema=False)
    def login(request: Request, key: Annotated[str, Form(max_length=512)]) -> Response:
        if not same_origin(request):
            return HTMLResponse("cross-site login refused", status_code=403)
        client = request.client.host if request.client else "?"
        wait = limiter.blocked(client)
        if wait > 0:
            return HTMLResponse(
                "too many failed logins; try later",
                status_code=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        principal = request.app.state.settings.authenticate(key.strip())
        if principal is None or "analyst" not in principal.roles:
            limiter.failed(client)
            error = "Unknown key." if principal is None else "This key has no analyst role."
            return templates.TemplateResponse(
                request, "login.html", {"principal": None, "error": error}, status_code=401
            )
        response = RedirectResponse("/ui", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            make_session(request.app.state.settings, principal),
            max_age=request.app.state.settings.session_seconds,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.post("/ui/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        if not same_origin(request):
            return HTMLResponse("cross-site logout refused", status_code=403)
        end_session(request.app.state.settings, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/ui", include_in_schema=False)
    def dashboard(request: Request, date_from: str | None = None, date_to: str | None = None) -> Response:
        principal = _session(request)
        if principal is None:
            return RedirectResponse("/ui/login", status_code=303)
        start, end = _date(date_from), _date(date_to)
        with request.app.state.analytics.use() as tables:
            data = dashboard_with_catalog(
                tables.dashboard(date_from=start, date_to=end), request.app.state.store, start, end
            )
            category_days = tables.category_counts(start, end)
        totals = {k: sum(int(d.get(k) or 0) for d in data["per_day"]) for k in ("calls", *STATUSES)}
        return page(
            request,
            "dashboard.html",
            principal,
            data=data,
            totals=totals,
            date_from=start,
            date_to=end,
            category_days=category_days,
        )

    @app.get("/ui/calls", include_in_schema=False)
    def calls(request: Request, cursor: str | None = None) -> Response:
        principal = _session(request)
        if principal is None:
            return RedirectResponse("/ui/login", status_code=303)
        params = request.query_params
        filters = {name: (params.get(name) or "").strip() for name in FILTERS}
        query = {k: v for k, v in filters.items() if v}
        with request.app.state.analytics.use() as tables:
            try:
                items, next_cursor = list_with_catalog(
                    tables,
                    request.app.state.store,
                    date_from=_date(filters["date_from"]),
                    date_to=_date(filters["date_to"]),
                    status=filters["status"] or None,
                    intent=filters["intent"] or None,
                    sentiment=filters["sentiment"] or None,
                    agent_id=filters["agent_id"] or None,
                    outcome=filters["outcome"][:20] or None,
                    q=filters["q"][:200] or None,
                    limit=25,
                    cursor=cursor or None,
                    category=filters["category"][:100] or None,
                )
            except ValueError:
                items, next_cursor = [], None
        next_url = f"/ui/calls?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None
        first_url = f"/ui/calls?{urlencode(query)}" if cursor else None
        return page(
            request,
            "calls.html",
            principal,
            items=items,
            filters=filters,
            intents=sorted({*intent_names(), *([filters["intent"]] if filters["intent"] else [])}),
            next_url=next_url,
            first_url=first_url,
        )

    @app.get("/ui/calls/{recording_id}", include_in_schema=False)
    def call_page(request: Request, recording_id: str) -> Response:
        principal = _session(request)
        if principal is None:
            return RedirectResponse("/ui/login", status_code=303)
        try:
            recording_id = validate_id(recording_id)
            meta = analyst_view(request.app.state.store.get_metadata(recording_id))
        except (ValueError, RecordingNotFoundError):
            return page(request, "missing.html", principal, recording_id=recording_id[:80])
        call, turns, entities = _known_so_far(request, recording_id, meta)
        categories = _categories_of(request, recording_id)
        fixes = corrections_of(meta)
        whole = None
        if not turns and call.get("redacted_text"):  # no speaker turns (e.g. the live transcript was kept)
            whole = highlight(call["redacted_text"], fixes, entities)
        words = _words_by_turn(categories)
        shown = [
            _render_turn(
                t,
                fixes,
                [e for e in entities if e.get("turn_index") == t["turn_index"]],
                words.get(t["turn_index"], frozenset()),
            )
            for t in turns
        ]
        run_id = call.get("run_id") or (meta.get("provenance") or {}).get("run_id")
        run_url = f"{request.app.state.settings.dagster_url}/runs/{run_id}" if run_id else None
        return page(
            request,
            "call.html",
            principal,
            call=call,
            meta=meta,
            turns=shown,
            entities=entities,
            fixes=fixes,
            whole=whole,
            run_url=run_url,
            recording_id=recording_id,
            categories=categories,
            category_turns=_by_turn(categories),
        )


def _by_turn(categories: list[dict[str, Any]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for c in categories:
        out.setdefault(c["turn_index"], []).append(c["category"])
    return out


def _categories_of(request: Request, recording_id: str) -> list[dict[str, Any]]:
    """The categories the call matches (none while the tables are unavailable)."""
    try:
        with request.app.state.analytics.use() as tables:
            return tables.call_categories(recording_id)
    except AnalyticsUnavailableError:
        return []


def _known_so_far(
    request: Request, recording_id: str, meta: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The call's analytics row, turns and entities; for a call not in the tables yet (pending,
    or no table written) every column ``None`` and the facts the metadata already holds."""
    from callpipe.analytics import CALLS_COLUMNS

    call: dict[str, Any] | None = None
    turns: list[dict[str, Any]] = []
    entities: list[dict[str, Any]] = []
    try:
        with request.app.state.analytics.use() as tables:
            call = tables.get_call(recording_id)
            if call is not None:
                turns = tables.call_turns(recording_id)
                entities = tables.call_entities(recording_id)
    except AnalyticsUnavailableError:
        call = None
    if call is None:
        call = dict.fromkeys(name for name, _, _ in CALLS_COLUMNS)
        audio = meta.get("audio") or {}
        call["duration_seconds"] = audio.get("duration_seconds")
        call["status"] = (meta.get("status") or {}).get("status")
    return call, turns, entities


def intent_names() -> list[str]:
    """Intent labels of the taxonomy in use (``CALLPIPE_INTENT_TAXONOMY`` or the shipped one)."""
    custom = os.environ.get("CALLPIPE_INTENT_TAXONOMY")
    try:
        if custom:
            data = json.loads(Path(custom).read_text(encoding="utf-8"))
        else:
            data = json.loads(
                (resources.files("callpipe") / "data" / "intent_taxonomy.json").read_text("utf-8")
            )
        return sorted({*data.get("intents", {}), data.get("other_label", "other")})
    except (OSError, ValueError, AttributeError):
        return []


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this site: a browser's ``Sec-Fetch-Site`` says
    ``same-origin`` (or ``none``: typed by the user), and an ``Origin`` names this host. A client
    that sends neither (curl, scripts) is not a browser a cross-site form could drive."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:  # decisive where sent: with Referrer-Policy no-referrer, Chromium's Origin is "null"
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def _session(request: Request) -> Principal | None:
    principal = identify(request, allow_cookie=True)
    return principal if principal is not None and "analyst" in principal.roles else None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _render_turn(
    turn: dict[str, Any],
    fixes: list[dict[str, str]],
    entities: list[dict[str, Any]],
    category_words: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The turn with its text as safe HTML: corrected words, entities and category words highlighted."""
    return {**turn, "html": highlight(turn.get("text") or "", fixes, entities, category_words)}


def _words_by_turn(categories: list[dict[str, Any]]) -> dict[int, frozenset[str]]:
    """The words each category matched, by turn (normalised: no accents, lower case)."""
    out: dict[int, set[str]] = {}
    for c in categories:
        out.setdefault(c["turn_index"], set()).update(c["matched"])
    return {k: frozenset(v) for k, v in out.items()}


def highlight(
    text: str,
    fixes: list[dict[str, str]],
    entities: list[dict[str, Any]],
    category_words: frozenset[str] = frozenset(),
) -> Markup:
    """``text`` escaped, with redaction tags and entity values in ``<mark class="ent">``, words a
    correction produced in ``<mark class="fix">`` (its live word in the title) and the words a
    category matched (``category_words``, normalised) in ``<mark class="cat">``."""
    from callpipe.categories import normalize
    live_of = {f["corrected"].lower(): f["original"] for f in fixes}
    values = {str(e.get("value_masked") or ""): e.get("kind") or "" for e in entities}
    values.update({str(e["text_said"]): e.get("kind") or "" for e in entities if e.get("text_said")})
    parts = [_TAG]
    parts += [re.escape(v) for v in sorted(values, key=len, reverse=True) if len(v) >= 2]
    parts += [rf"\b{re.escape(w)}\b" for w in sorted(live_of, key=len, reverse=True) if w]
    if category_words:
        parts.append(r"(?P<word>\b\w+\b)")  # last: any other word, marked when a category matched it
    pattern = re.compile("|".join(parts), re.IGNORECASE)
    out, pos = [], 0
    for match in pattern.finditer(text):
        out.append(html.escape(text[pos : match.start()]))
        found = match.group(0)
        if match.lastgroup == "word":
            word = html.escape(found)
            out.append(f'<mark class="cat">{word}</mark>' if normalize(found) in category_words else word)
        elif found.lower() in live_of:
            live = html.escape(live_of[found.lower()])
            out.append(f'<mark class="fix" title="live: {live}">{html.escape(found)}</mark>')
        else:
            kind = html.escape(values.get(found, found.strip("[]").lower()))
            out.append(f'<mark class="ent" title="{kind}">{html.escape(found)}</mark>')
        pos = match.end()
    out.append(html.escape(text[pos:]))
    return Markup("".join(out))
