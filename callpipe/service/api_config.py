"""Configuration of the HTTP API, read when the app is created (``callpipe serve``), never at import.

``CALLPIPE_API_KEYS="role:key,role:key"`` with roles ``ingest``, ``analyst`` and ``admin``; the same
key may be listed under several roles. ``admin`` implies ``analyst`` (an administrator can read what
an analyst reads); ``ingest`` is separate: the telephony platform's key cannot read calls, and an
analyst's key cannot write them. Keys are at least 16 characters and never logged: each is known
in logs and in the audit log by its id, the first 12 hex digits of its SHA-256.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from callpipe.limits import Limits
from callpipe.settings import SettingsError

ROLES = ("ingest", "analyst", "admin")
IMPLIED = {
    "admin": frozenset({"admin", "analyst"}),
    "analyst": frozenset({"analyst"}),
    "ingest": frozenset({"ingest"}),
}
KEYS_ENV = "CALLPIPE_API_KEYS"
SESSION_SECRET_ENV = "CALLPIPE_SESSION_SECRET"
DAGSTER_URL_ENV = "DAGSTER_WEBSERVER_URL"
AUDIT_ENV = "CALLPIPE_AUDIT_LOG"
STATE_DIR_ENV = "CALLPIPE_STATE_DIR"
BODY_TIMEOUT_ENV = "CALLPIPE_BODY_TIMEOUT_SECONDS"
BODY_IDLE_ENV = "CALLPIPE_BODY_IDLE_SECONDS"
HEADER_TIMEOUT_ENV = "CALLPIPE_HEADER_TIMEOUT_SECONDS"
MAX_CONNECTIONS_ENV = "CALLPIPE_MAX_CONNECTIONS"
MIN_KEY_LENGTH = 16


class ServiceConfigError(ValueError):
    """The service's configuration cannot be used (reported in one line; the server does not start)."""


def key_id(secret: str) -> str:
    """The public name of a key: first 12 hex digits of its SHA-256 (safe in logs and audits)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ApiKey:
    """One configured key: its digest (the key itself is not kept), id and granted roles."""

    digest: bytes = field(repr=False)
    key_id: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's id and its effective roles (``admin`` includes ``analyst``)."""

    key_id: str
    roles: frozenset[str]

    @property
    def role(self) -> str:
        """The strongest role, for the audit log."""
        return next(r for r in ("admin", "analyst", "ingest") if r in self.roles)


@dataclass(frozen=True)
class ServiceSettings:
    """What the app needs; build with :meth:`from_env` (or directly in tests)."""

    keys: tuple[ApiKey, ...]
    session_secret: bytes = field(repr=False)
    dagster_url: str = "http://127.0.0.1:3000"
    audit_log: Path = Path("data/audit/api.jsonl")
    max_upload_bytes: int = 100 * 1024 * 1024
    session_seconds: int = 8 * 3600
    body_timeout_seconds: float = 120.0
    body_idle_seconds: float = 15.0
    header_timeout_seconds: float = 10.0
    max_connections: int = 200
    state_dir: Path | None = None
    """Sessions and idempotency keys (SQLite); None: ``state`` beside the audit log's folder."""

    @property
    def state_path(self) -> Path:
        """The folder of the service's durable state (sessions, idempotency keys)."""
        return self.state_dir if self.state_dir is not None else self.audit_log.parent.parent / "state"

    def authenticate(self, presented: str) -> Principal | None:
        """The principal of ``presented`` or None; every configured key is compared in constant time."""
        digest = hashlib.sha256(presented.encode()).digest()
        found: ApiKey | None = None
        for key in self.keys:  # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(digest, key.digest):
                found = key
        return self.principal(found) if found else None

    def principal(self, key: ApiKey) -> Principal:
        """The effective roles of ``key``."""
        roles: frozenset[str] = frozenset()
        for role in key.roles:
            roles |= IMPLIED[role]
        return Principal(key.key_id, roles)

    def by_id(self, wanted: str) -> ApiKey | None:
        """The configured key with id ``wanted`` (sessions name their key by id)."""
        return next((k for k in self.keys if hmac.compare_digest(k.key_id, wanted)), None)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, demo: bool = False
    ) -> tuple[ServiceSettings, str | None]:
        """Settings from ``environ`` (default ``os.environ``) and, with ``demo`` and no keys
        configured, a random admin+ingest key to print once (else None).

        Raises :class:`ServiceConfigError` when no key is configured and ``demo`` is false.
        """
        env = os.environ if environ is None else environ
        keys = parse_keys(env.get(KEYS_ENV, ""))
        demo_key = None
        if not keys:
            if not demo:
                raise ServiceConfigError(
                    f"no API keys: set {KEYS_ENV}='analyst:KEY,ingest:KEY,admin:KEY' "
                    "(or use --demo for a random key)"
                )
            demo_key = secrets.token_urlsafe(24)
            keys = parse_keys(f"admin:{demo_key},ingest:{demo_key}")
        secret_text = env.get(SESSION_SECRET_ENV, "")
        if secret_text and len(secret_text) < MIN_KEY_LENGTH:
            raise ServiceConfigError(f"{SESSION_SECRET_ENV} must be at least {MIN_KEY_LENGTH} characters")
        secret = secret_text.encode() if secret_text else secrets.token_bytes(32)
        store_dir = Path(env.get("STORAGE_LOCAL_PATH") or "./data/recordings")
        audit = Path(env.get(AUDIT_ENV) or store_dir.parent / "audit" / "api.jsonl")
        try:
            max_upload_bytes = Limits.from_env(env).max_upload_bytes
        except SettingsError as exc:
            raise ServiceConfigError(str(exc)) from None
        timing = {
            "body_timeout_seconds": _positive(env, BODY_TIMEOUT_ENV, 120.0),
            "body_idle_seconds": _positive(env, BODY_IDLE_ENV, 15.0),
            "header_timeout_seconds": _positive(env, HEADER_TIMEOUT_ENV, 10.0),
            "max_connections": int(_positive(env, MAX_CONNECTIONS_ENV, 200)),
        }
        settings = cls(
            **timing,
            state_dir=Path(env[STATE_DIR_ENV]) if env.get(STATE_DIR_ENV) else store_dir.parent / "state",
            keys=keys,
            session_secret=secret,
            dagster_url=(env.get(DAGSTER_URL_ENV) or "http://127.0.0.1:3000").rstrip("/"),
            audit_log=audit,
            max_upload_bytes=max_upload_bytes,
        )
        return settings, demo_key


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    try:
        value = float(text) if text else default
    except ValueError:
        raise ServiceConfigError(f"{name} must be a positive number") from None
    if not value > 0:
        raise ServiceConfigError(f"{name} must be a positive number")
    return value


def parse_keys(text: str) -> tuple[ApiKey, ...]:
    """``role:key,role:key`` into keys (a key listed under several roles gets them all).

    Errors name the entry's position, never the key.
    """
    by_digest: dict[bytes, set[str]] = {}
    for n, item in enumerate(text.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        role, sep, secret = item.partition(":")
        role, secret = role.strip().lower(), secret.strip()
        if not sep or role not in ROLES:
            raise ServiceConfigError(
                f"{KEYS_ENV} entry {n}: expected ROLE:KEY with ROLE one of {', '.join(ROLES)}"
            )
        if len(secret) < MIN_KEY_LENGTH:
            raise ServiceConfigError(f"{KEYS_ENV} entry {n}: key shorter than {MIN_KEY_LENGTH} characters")
        digest = hashlib.sha256(secret.encode()).digest()
        by_digest.setdefault(digest, set()).add(role)
    return tuple(
        ApiKey(digest=d, key_id=d.hex()[:12], roles=frozenset(roles)) for d, roles in by_digest.items()
    )
