"""Deployment settings read from the environment: instance storage and executor mode (no Dagster import).

Instance storage: with ``DAGSTER_PG_URL`` (``postgresql+psycopg2://...``), or ``DAGSTER_PG_HOST``
(+ ``DAGSTER_PG_USER``, ``DAGSTER_PG_DB``, optional ``DAGSTER_PG_PASSWORD`` and ``DAGSTER_PG_PORT``),
runs, event logs and schedule/sensor state live in PostgreSQL through ``dagster-postgres``;
otherwise in SQLite under ``DAGSTER_HOME``. The storage section written to
``$DAGSTER_HOME/dagster.yaml`` holds only ``{env: NAME}`` references, so a password or URL never
lands in the file.

Executor: ``CALLPIPE_EXECUTOR`` is ``default`` (Dagster's multiprocess executor for launched runs,
in process for ``callpipe batch``), ``celery`` (``dagster-celery`` over ``CELERY_BROKER_URL`` /
``CELERY_RESULT_BACKEND``, default ``redis://127.0.0.1:6379/0``) or ``k8s`` (``dagster-k8s``
``k8s_job_executor``: one Kubernetes Job per step).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

EXECUTOR_ENV = "CALLPIPE_EXECUTOR"
EXECUTOR_MODES = ("default", "celery", "k8s")
BROKER_ENV = "CELERY_BROKER_URL"
BACKEND_ENV = "CELERY_RESULT_BACKEND"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
PG_URL_ENV = "DAGSTER_PG_URL"
PG_FIELDS = {
    "hostname": "DAGSTER_PG_HOST",
    "username": "DAGSTER_PG_USER",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
    "port": "DAGSTER_PG_PORT",
}
PG_SCHEME = "postgresql+psycopg2"
"""SQLAlchemy driver of the generated ``postgres_db`` section (psycopg2 comes with dagster-postgres)."""
_REQUIRED_PG_FIELDS = ("hostname", "username", "db_name")
_STORAGE_KEYS = ("storage", "run_storage", "event_log_storage", "schedule_storage")
_HEADER = (
    "# Written by callpipe (callpipe.deploy.sync_instance_config) from ./dagster.yaml and the\n"
    "# DAGSTER_PG_* environment; `storage` holds env references only, never credentials.\n"
)


class DeploymentConfigError(ValueError):
    """The deployment environment variables are inconsistent (one-line message names the fix)."""


def executor_mode(environ: Mapping[str, str] | None = None) -> str:
    """The executor mode named by ``CALLPIPE_EXECUTOR`` (``default`` when unset or empty)."""
    env = os.environ if environ is None else environ
    mode = (env.get(EXECUTOR_ENV) or "default").strip().lower()
    if mode not in EXECUTOR_MODES:
        raise DeploymentConfigError(f"{EXECUTOR_ENV}={mode!r}: expected one of {', '.join(EXECUTOR_MODES)}")
    return mode


def celery_urls(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``broker`` and ``backend`` for the Celery executor: an ``{env: NAME}`` reference when the
    variable is set (the URL may hold a password), else the local Redis default."""
    env = os.environ if environ is None else environ
    return {
        "broker": {"env": BROKER_ENV} if env.get(BROKER_ENV) else DEFAULT_BROKER,
        "backend": {"env": BACKEND_ENV} if env.get(BACKEND_ENV) else DEFAULT_BROKER,
    }


def postgres_storage(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The ``storage: postgres:`` section the environment asks for, or ``None`` for SQLite."""
    env = os.environ if environ is None else environ
    if env.get(PG_URL_ENV):
        scheme = env[PG_URL_ENV].split("://", 1)[0]
        if scheme in ("postgres", "postgresql") and importlib.util.find_spec("psycopg") is None:
            # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; dagster-postgres installs psycopg2.
            raise DeploymentConfigError(f"{PG_URL_ENV}: start it with {PG_SCHEME}:// instead of {scheme}://")
        return {"postgres_url": {"env": PG_URL_ENV}}
    if not env.get(PG_FIELDS["hostname"]):
        return None
    missing = [PG_FIELDS[f] for f in _REQUIRED_PG_FIELDS if not env.get(PG_FIELDS[f])]
    if missing:
        raise DeploymentConfigError(f"DAGSTER_PG_HOST is set but {', '.join(missing)} is not")
    db: dict[str, Any] = {field: {"env": name} for field, name in PG_FIELDS.items() if env.get(name)}
    return {"postgres_db": {**db, "scheme": PG_SCHEME}}


def _is_ours(storage: Any) -> bool:
    """Whether a storage section is one :func:`postgres_storage` writes (env references only)."""
    if not isinstance(storage, dict) or set(storage) != {"postgres"}:
        return False
    section = storage["postgres"]
    if section == {"postgres_url": {"env": PG_URL_ENV}}:
        return True
    db = section.get("postgres_db") if isinstance(section, dict) and set(section) == {"postgres_db"} else None
    if not isinstance(db, dict) or db.get("scheme") != PG_SCHEME:
        return False
    return all(db[f] == {"env": PG_FIELDS[f]} for f in db if f != "scheme")


def sync_instance_config(home: Path, template: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Make ``home/dagster.yaml`` match the environment's storage choice; return its path.

    Seeds it from ``template`` when it has none. With PostgreSQL configured, sets ``storage``;
    without, removes a ``storage`` section this function wrote earlier, so SQLite is used. Storage
    written by hand is kept, and conflicts with the DAGSTER_PG_* variables raise
    :class:`DeploymentConfigError`. The file is rewritten atomically and only when it changes.
    """
    target = home / "dagster.yaml"
    wanted = postgres_storage(environ)
    if not target.exists() and template.is_file() and template.resolve() != target.resolve():
        if wanted is None:
            shutil.copyfile(template, target)
            return target
        config = yaml.safe_load(template.read_text(encoding="utf-8")) or {}
    elif target.exists():
        config = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
    else:
        config = {}
    if not isinstance(config, dict):
        raise DeploymentConfigError(f"{target}: expected a YAML mapping")
    updated = dict(config)
    if wanted is not None:
        hand_written = [k for k in _STORAGE_KEYS if k in config and not _is_ours(config[k])]
        if hand_written:
            raise DeploymentConfigError(
                f"{target} sets {', '.join(hand_written)} itself; remove it or unset DAGSTER_PG_*"
            )
        updated["storage"] = {"postgres": wanted}
    elif _is_ours(config.get("storage")):
        updated.pop("storage")
    if updated != config:
        tmp = target.with_suffix(".yaml.tmp")
        tmp.write_text(_HEADER + yaml.safe_dump(updated, sort_keys=False), encoding="utf-8")
        os.replace(tmp, target)
    return target
