"""HTTP API and analyst web UI of callpipe (FastAPI on uvicorn): ``callpipe serve``.

Beside the command line in the import order: it uses the recorder, the store and the analytics
tables, never Dagster definitions. Nothing is configured at import: :func:`create_app` takes
:class:`ServiceSettings` (``ServiceSettings.from_env()`` reads ``CALLPIPE_API_KEYS`` and friends).
"""

from __future__ import annotations

from callpipe.service.api_config import Principal, ServiceConfigError, ServiceSettings, parse_keys
from callpipe.service.app import create_app, serve

__all__ = ["Principal", "ServiceConfigError", "ServiceSettings", "create_app", "parse_keys", "serve"]
