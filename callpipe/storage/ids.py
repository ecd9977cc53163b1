"""Validation and generation of recording / conversation ids.

Ids become path components and S3 key components, so only a conservative
alphabet is accepted: ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}`` and never ``..``.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime

from callpipe.storage.errors import InvalidIdError

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")


def validate_id(value: object, kind: str = "recording_id") -> str:
    """Return ``value`` if it is a safe id, else raise :class:`InvalidIdError`."""
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} must be a string, got {type(value).__name__}")
    if not ID_PATTERN.fullmatch(value) or ".." in value:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidIdError(
            f"invalid {kind} {shown!r}: use 1-128 characters from A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit, without '..'"
        )
    return value


def validate_date(value: str) -> str:
    """Return ``value`` if it is an ISO date ``YYYY-MM-DD``, else raise :class:`ValueError`."""
    if not isinstance(value, str) or not _DATE_PATTERN.fullmatch(value):
        raise ValueError(f"invalid call date {value!r:.40}: expected YYYY-MM-DD")
    date.fromisoformat(value)
    return value


def new_recording_id(timestamp: datetime | None = None) -> str:
    """A time-sortable id such as ``20261127T061500Z-0a1b2c3d4e5f``.

    The first 5 hex digits of the suffix are the microseconds, so ids of one second
    still sort by time; the last 7 are random.
    """
    ts = (timestamp or datetime.now(UTC)).astimezone(UTC)
    # The year is padded by hand: strftime's %Y gives "1", not "0001", for year 1 on glibc.
    return f"{ts.year:04d}{ts:%m%dT%H%M%S}Z-{ts.microsecond:05x}{secrets.token_hex(4)[:7]}"


def encode_cursor(call_date: str, recording_id: str) -> str:
    """Opaque listing position: the last item returned."""
    return f"{call_date}/{recording_id}"


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Inverse of :func:`encode_cursor`; raises :class:`ValueError` for a malformed cursor."""
    call_date, sep, recording_id = cursor.partition("/")
    if not sep:
        raise ValueError(f"invalid cursor {cursor!r}")
    return validate_date(call_date), validate_id(recording_id)
