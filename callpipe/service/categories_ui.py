"""The categories page of the web UI (analyst role): define a category (name + YAML), see every
stored category and how far applying it to history has got (``static/categories.js`` polls
``GET /categories/{name}`` until every stored call is covered), delete one.

The form posts with the session cookie: the route checks the analyst session and that the post
comes from this site (``Sec-Fetch-Site`` / ``Origin``, like logout; the cookie is SameSite=Strict)
before it reads a byte of the body, and reads at most
:data:`~callpipe.service.categories_api.MAX_DEFINITION_BYTES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from callpipe.service.auth import identify
from callpipe.service.categories_api import NAME, bounded_body, save_category
from callpipe.service.reads import AnalyticsUnavailableError

HERE = Path(__file__).parent
EXAMPLE = 'speaker: customer\nnear: 4\nphrases: ["baja contrato"]\nnot: ["no quiero la baja"]\n'


def mount(app: FastAPI) -> None:
    """Add ``GET/POST /ui/categories`` to ``app``."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    def render(request: Request, principal: Any, status: int = 200, **context: Any) -> HTMLResponse:
        try:
            with request.app.state.analytics.use() as tables:
                items = tables.categories()
        except AnalyticsUnavailableError:
            items = []
        base = {"principal": principal, "items": items, "example": EXAMPLE, "error": None, "form": {}}
        return templates.TemplateResponse(request, "categories.html", {**base, **context}, status_code=status)

    @app.get("/ui/categories", include_in_schema=False)
    def categories_page(request: Request, edit: str | None = None) -> Response:
        principal = _analyst(request)
        if principal is None:
            return RedirectResponse("/ui/login", status_code=303)
        form: dict[str, str] = {}
        if edit and NAME.fullmatch(edit):
            with request.app.state.analytics.use() as tables:
                found = tables.categories(edit)
            if found:
                form = {"name": edit, "definition": found[0]["definition"]}
        return render(request, principal, form=form, saved=request.query_params.get("saved"))

    @app.post("/ui/categories", include_in_schema=False)
    async def categories_post(request: Request) -> Response:
        from callpipe.service.ui import same_origin

        if not same_origin(request):
            return HTMLResponse("cross-site form refused", status_code=403)
        principal = _analyst(request)
        if principal is None:
            return HTMLResponse("log in with an analyst key first", status_code=401)
        try:
            fields = parse_qs((await bounded_body(request)).decode("utf-8", "replace"), max_num_fields=10)
        except HTTPException as exc:
            return HTMLResponse(str(exc.detail), status_code=exc.status_code)
        name = (fields.get("name") or [""])[0].strip()
        definition = (fields.get("definition") or [""])[0]
        form = {"name": name[:100], "definition": definition}
        if not NAME.fullmatch(name):
            error = "Name: 1..100 letters, digits, '_', '.' or '-'."
            return render(request, principal, 422, form=form, error=error)
        if (fields.get("action") or ["save"])[0] == "delete":
            from callpipe.analytics import open_analytics_store

            state = request.app.state
            writer = open_analytics_store(state.analytics_url, store=state.store)
            try:
                writer.delete_category(name)
            finally:
                writer.close()
            state.audit.record(principal, "delete_category", category=name)
            return RedirectResponse("/ui/categories", status_code=303)
        from callpipe.categories import CategoryError

        try:
            save_category(request.app.state, principal, name, definition)
        except CategoryError as exc:
            return render(request, principal, 422, form=form, error=str(exc).splitlines()[0])
        return RedirectResponse(f"/ui/categories?{urlencode({'saved': name})}", status_code=303)


def _analyst(request: Request) -> Any:
    principal = identify(request, allow_cookie=True)
    return principal if principal is not None and "analyst" in principal.roles else None
