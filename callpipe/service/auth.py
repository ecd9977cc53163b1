"""API keys and web sessions.

Clients send ``Authorization: Bearer KEY``; the web UI logs in once with an analyst (or admin)
key and then carries a signed session cookie (HttpOnly, SameSite=Strict, never the key itself:
``base64(key id, session id, expiry).HMAC``). The session id must also be live in the
server-side :class:`~callpipe.service.sessions.SessionStore`, so logout ends it everywhere. The
cookie is accepted only on safe methods (GET, HEAD), so a state-changing call always needs the
key. Revoking a key (removing it from ``CALLPIPE_API_KEYS`` and restarting) ends its sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import HTTPException, Request, Security, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from callpipe.service.api_config import Principal, ServiceSettings
from callpipe.service.sessions import session_store

SESSION_COOKIE = "callpipe_session"
SAFE_METHODS = frozenset({"GET", "HEAD"})
BEARER = HTTPBearer(auto_error=False, description="an API key from CALLPIPE_API_KEYS")
"""Declares the scheme in the OpenAPI document (the docs' Authorize button); checking is ours."""


def _settings(conn: Request | WebSocket) -> ServiceSettings:
    return conn.app.state.settings


def bearer(header: str | None) -> str | None:
    """The key in an ``Authorization: Bearer KEY`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def identify(conn: Request | WebSocket, *, allow_cookie: bool) -> Principal | None:
    """The principal of a request: its bearer key, else (when allowed) its session cookie."""
    settings = _settings(conn)
    key = bearer(conn.headers.get("authorization"))
    if key is not None:
        return settings.authenticate(key)
    if allow_cookie:
        return read_session(settings, conn.cookies.get(SESSION_COOKIE))
    return None


def require(role: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: 401 without a valid key, 403 when the key lacks ``role``."""

    def dependency(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
    ) -> Principal:
        principal = identify(request, allow_cookie=request.method in SAFE_METHODS)
        if principal is None:
            raise HTTPException(
                status_code=401,
                detail="missing or unknown API key (send Authorization: Bearer KEY)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if role not in principal.roles:
            raise HTTPException(status_code=403, detail=f"this key lacks the {role} role")
        request.state.principal = principal
        return principal

    return dependency


def _sign(secret: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, payload, hashlib.sha256).digest()).decode().rstrip("=")


def make_session(settings: ServiceSettings, principal: Principal, now: float | None = None) -> str:
    """A signed session value for ``principal`` valid for ``settings.session_seconds``."""
    expires = int((now if now is not None else time.time()) + settings.session_seconds)
    sid = session_store(settings.state_path).open(principal.key_id, expires, now=now)
    payload = json.dumps({"k": principal.key_id, "s": sid, "exp": expires}, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(settings.session_secret, payload)}"


def read_session(settings: ServiceSettings, value: str | None, now: float | None = None) -> Principal | None:
    """The principal of a session cookie, or None when absent, forged, expired or its key revoked."""
    if not value or value.count(".") != 1:
        return None
    body, signature = value.split(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if not hmac.compare_digest(signature, _sign(settings.session_secret, payload)):
            return None
        data = json.loads(payload)
        expires, wanted, sid = int(data["exp"]), str(data["k"]), str(data["s"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires < (now if now is not None else time.time()):
        return None
    key = settings.by_id(wanted)
    if key is None or not session_store(settings.state_path).is_live(sid, wanted, now=now):
        return None  # a revoked key, or a session ended by logout
    return settings.principal(key)


def end_session(settings: ServiceSettings, value: str | None) -> bool:
    """End the session of a (validly signed) cookie server-side; whether there was one."""
    if not value or value.count(".") != 1:
        return False
    body, signature = value.split(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if not hmac.compare_digest(signature, _sign(settings.session_secret, payload)):
            return False
        sid = str(json.loads(payload)["s"])
    except (ValueError, KeyError, TypeError):
        return False
    session_store(settings.state_path).close(sid)
    return True
