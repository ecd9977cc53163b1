"""Audio with HTTP range requests (RFC 9110 section 14), so a browser's player can seek.

The audio comes from the store's own local file (:meth:`RecordingStore.local_audio_path`), or,
for S3 where no host may keep a copy, from the verified bytes held in memory for this response
only (:meth:`RecordingStore.get_recording`). One
range per request is served (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``); a request with several
ranges gets the whole file (200), which the RFC allows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

CONTENT_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "webm": "audio/webm",
    "m4a": "audio/mp4",
}
CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte positions (inclusive) of a single-range header, None to send it all.

    Raises 416 for a range that starts past the end (or an empty file's range).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or (not match.group(1) and not match.group(2)):
        return None  # several ranges or another unit: the whole file
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
        if last_text and int(last_text) < first:
            return None  # invalid: ignored as the RFC says
    else:
        suffix = int(last_text)
        if suffix == 0:
            _unsatisfiable(size)
        first, last = max(size - suffix, 0), size - 1
    if first >= size:
        _unsatisfiable(size)
    return first, last


def served_bytes(response: StreamingResponse) -> dict[str, int] | None:
    """What ``response`` sends of the file, from the headers it was built with (``first``,
    ``last``, ``bytes``, ``size``), or None when it sends no audio (an empty file)."""
    length = int(response.headers.get("content-length", "0"))
    if response.status_code not in (200, 206) or length <= 0:
        return None
    content_range = response.headers.get("content-range")
    if content_range:
        span, _, size = content_range.removeprefix("bytes ").partition("/")
        first, _, last = span.partition("-")
        return {"first": int(first), "last": int(last), "bytes": length, "size": int(size)}
    return {"first": 0, "last": length - 1, "bytes": length, "size": length}


def _unsatisfiable(size: int) -> None:
    raise HTTPException(
        status_code=416,
        detail="requested range not satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
    )


def _slice(data: bytes, first: int, last: int) -> Iterator[bytes]:
    for start in range(first, last + 1, CHUNK):
        yield data[start : min(start + CHUNK, last + 1)]


def _read(path: Path, first: int, last: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            data = f.read(min(CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data


def audio_response(source: Path | bytes, audio_format: str, range_header: str | None) -> StreamingResponse:
    """200 with the whole file or 206 with one range; always ``Accept-Ranges: bytes``. ``source``
    is a local file or the audio's bytes."""
    size = len(source) if isinstance(source, bytes) else os.stat(source).st_size

    def chunks(first: int, last: int) -> Iterator[bytes]:
        return _slice(source, first, last) if isinstance(source, bytes) else _read(source, first, last)

    wanted = parse_range(range_header, size)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=300"}
    media_type = CONTENT_TYPES.get(audio_format, "application/octet-stream")
    if wanted is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(chunks(0, size - 1), media_type=media_type, headers=headers)
    first, last = wanted
    headers["Content-Length"] = str(last - first + 1)
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(chunks(first, last), status_code=206, media_type=media_type, headers=headers)
