"""The FastAPI application: :func:`create_app` builds it from settings (read at startup, never at
import) and :func:`serve` runs it on uvicorn (``callpipe serve``)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from callpipe.idempotency import open_store as open_idempotency
from callpipe.service.api_config import ServiceSettings
from callpipe.service.audit import AuditLog
from callpipe.service.guard import BodyGuard, uvicorn_limits
from callpipe.service.health import HealthCheck
from callpipe.service.reads import (
    AnalyticsHandle,
    AnalyticsUnavailableError,
    StatsCaches,
    default_opener,
)
from callpipe.storage import RecordingStore, StorageUnavailableError, get_audio_storage

log = logging.getLogger("callpipe.service")
SECURITY_HEADERS = {
    # Every script and style is served by the app; Plotly injects its own <style> elements.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "media-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(
    settings: ServiceSettings,
    store: RecordingStore | None = None,
    analytics_url: str | None = None,
) -> FastAPI:
    """The API and web UI over ``store`` (default: the configured one) and the analytics tables
    at ``analytics_url`` (default ``CALLPIPE_ANALYTICS_DB``, else the embedded tables beside the store)."""
    from callpipe.recorder import Recorder
    from callpipe.service import api, categories_api, categories_ui, ui

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.analytics.reset()

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,  # served by ui.mount from the bundled Swagger UI: no CDN
        redoc_url=None,
        title="callpipe",
        summary="Call recordings into analytics: ingest, search, one call, audio, reprocess, erase.",
        version="1.0",
    )
    app.state.settings = settings
    app.state.store = store if store is not None else get_audio_storage()
    app.state.recorder = Recorder(app.state.store)
    app.state.audit = AuditLog(settings.audit_log)
    app.state.analytics_url = analytics_url
    app.state.analytics = AnalyticsHandle(default_opener(app.state.store, analytics_url))
    app.state.stats_cache = StatsCaches.from_env()
    app.state.health = HealthCheck()
    app.state.idempotency = open_idempotency(settings.state_path)
    app.include_router(api.router)
    app.include_router(categories_api.router)
    ui.mount(app)
    categories_ui.mount(app)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
        return JSONResponse({"detail": message.splitlines()[0]}, status_code=422)

    @app.exception_handler(StorageUnavailableError)
    async def store_down(request: Request, exc: StorageUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": f"store unavailable: {str(exc).splitlines()[0]}"}, status_code=503)

    @app.exception_handler(AnalyticsUnavailableError)
    async def tables_down(request: Request, exc: AnalyticsUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.middleware("http")
    async def headers_and_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # The path only: query strings may hold search words, headers hold keys.
        log.info(
            "%s %s %d %.1f ms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    app.add_middleware(BodyGuard, settings=settings)  # outermost of ours: before any body byte is read
    return app


def app_from_env() -> FastAPI:
    """The app configured from the environment (keys required): for ``uvicorn --factory
    callpipe.service.app:app_from_env`` when more than one worker process is wanted."""
    settings, _ = ServiceSettings.from_env()
    return create_app(settings)


def serve(host: str = "127.0.0.1", port: int = 8000, *, demo: bool = False) -> None:
    """Run the app on uvicorn until interrupted (``callpipe serve``).

    Raises :class:`~callpipe.service.api_config.ServiceConfigError` without keys unless ``demo``;
    with ``demo`` a random admin+ingest key is printed once on stderr.
    """
    import uvicorn

    settings, demo_key = ServiceSettings.from_env(demo=demo)
    app = create_app(settings)
    if demo_key:
        sys.stderr.write(
            f"callpipe serve: demo key (admin, analyst, ingest; shown once): {demo_key}\n"
            f"callpipe serve: open http://{_url_host(host)}:{port}/ui and log in with it\n"
        )
        sys.stderr.flush()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "log_level": "info",
        **uvicorn_limits(settings),
    }
    uvicorn.run(app, **config)


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
