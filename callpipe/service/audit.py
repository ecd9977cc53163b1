"""Append-only audit log of admin access to raw data and of every erasure (JSON Lines).

One line per event: ``{"ts", "role", "key_id", "action", "recording_id", "outcome", ...}``: who
(the key's role and id, never the key), what and when, never the data itself. Each line is
written with one ``write`` on a descriptor opened with ``O_APPEND`` and then fsynced, so
concurrent writers (threads or processes) never interleave or overwrite lines and a crash leaves
at most a missing last line. The file lives beside the store (``CALLPIPE_AUDIT_LOG``, default
``data/audit/api.jsonl``), mode 0600.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callpipe.service.api_config import Principal


class AuditLog:
    """Appends events to one JSON Lines file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, principal: Principal, action: str, **fields: Any) -> dict[str, Any]:
        """Append one event (ids and counts only) and return it."""
        event = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "role": principal.role,
            "key_id": principal.key_id,
            "action": action,
            **fields,
        }
        line = (json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, line)
                if written != len(line):  # a full disk: say so rather than leave half a line unnoticed
                    raise OSError(f"audit log {self.path}: short write")
                os.fsync(fd)
            finally:
                os.close(fd)
        return event

    def read(self) -> list[dict[str, Any]]:
        """Every event, oldest first (tests, tools)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
