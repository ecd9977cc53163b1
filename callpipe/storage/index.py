"""Key layout of the index and the listing algorithm, shared by the local and S3 stores.

Under the store root (a directory, or the S3 prefix) the index is::

    index/by-id/{recording_id}                 entry: conversation id, call date, timestamp, format
    index/by-date/{YYYY-MM-DD}/{recording_id}  same entry, one per recording
    index/pending/{YYYY-MM-DD}/{recording_id}!{HHMMSS}
                                               same entry, only while processed is false
    index/pending-sync/{recording_id}          mirrored store: not yet copied to S3
    index/by-caller/{phone_key}/{recording_id} same entry, while the document's caller.phone_key is set
    index/retained/{YYYY-MM-DD}/{recording_id} audio removed by the retention policy (callpipe.retention)
    index/erasing/{recording_id}               tombstone of an unfinished erasure (callpipe.storage.purge)

Entries are written at save before the metadata document and the pending marker
follows ``processed`` on every update, so listing never opens a metadata document:
``processed=False`` lists only the pending markers, and finding days with work is
one directory (prefix) listing. The UTC date, id and UTC time of day (to the second) of a
pending recording are in its marker's key, so one recursive listing of names, nothing read,
maps every pending recording to its call date in any timezone (:mod:`callpipe.storage.pending`).
``!`` never occurs in an id and sorts below every id character, so marker names sort as their
ids do (pages and ``start_after`` work on them as on by-date names).

Stores written before the time of day was added hold markers named ``{recording_id}`` alone.
They are still listed, found and removed (their time is read from the entry when needed); each
update of a recording that sets or clears its marker removes the old name, so a recording never
has both once touched. Where a crash left both, listings count the recording once.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

from callpipe.schema import RecordingMetadata
from callpipe.storage.base import ListingError, RecordingPage, RecordingRef
from callpipe.storage.documents import parse_document
from callpipe.storage.errors import MetadataCorruptError
from callpipe.storage.ids import ID_PATTERN, decode_cursor, encode_cursor, validate_date, validate_id

if TYPE_CHECKING:
    from callpipe.storage.blob_store import BlobStore

log = logging.getLogger(__name__)

BY_ID = "index/by-id"
BY_DATE = "index/by-date"
PENDING = "index/pending"
PENDING_SYNC = "index/pending-sync"
BY_CALLER = "index/by-caller"
RETAINED = "index/retained"
ERASING = "index/erasing"
MARKER_TIME = "!"
"""Separates a pending marker's recording id from its UTC time of day (``ids.ID_PATTERN`` has no
``!``; it is one of S3's safe key characters and sorts below ``-``, ``.``, digits and letters)."""
_HHMMSS = re.compile(r"([01]\d|2[0-3])([0-5]\d)([0-5]\d)")


@dataclass(frozen=True, slots=True)
class Entry:
    """What the index knows of one recording: enough to locate its files and list it."""

    recording_id: str
    conversation_id: str
    call_date: str
    timestamp: datetime
    format: str

    @classmethod
    def from_doc(cls, doc: RecordingMetadata) -> Entry:
        fmt = doc.audio.format if doc.audio else "wav"
        return cls(doc.recording_id, doc.conversation_id, doc.call_date, doc.timestamp, fmt)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "recording_id": self.recording_id,
                "conversation_id": self.conversation_id,
                "call_date": self.call_date,
                "timestamp": self.timestamp.isoformat(),
                "format": self.format,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def parse(cls, raw: bytes, where: str) -> Entry:
        """Parse an index entry; :class:`MetadataCorruptError` names ``where`` when it is damaged."""
        try:
            data = json.loads(raw)
            entry = cls(
                validate_id(data["recording_id"]),
                validate_id(data["conversation_id"], "conversation_id"),
                validate_date(data["call_date"]),  # becomes a path component
                datetime.fromisoformat(data["timestamp"]),
                validate_id(data["format"], "format"),
            )
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: deep nesting
            raise MetadataCorruptError(f"index entry {where} is corrupt: {str(exc)[:200]}") from None
        if entry.timestamp.tzinfo is None:
            raise MetadataCorruptError(f"index entry {where} is corrupt: timestamp without timezone")
        return entry

    def ref(self, processed: bool) -> RecordingRef:
        return RecordingRef(
            self.recording_id, self.conversation_id, self.call_date, self.timestamp, processed, self.format
        )


def by_id_key(recording_id: str) -> str:
    return f"{BY_ID}/{recording_id}"


def by_date_key(call_date: str, recording_id: str) -> str:
    return f"{BY_DATE}/{call_date}/{recording_id}"


def pending_key(entry: Entry) -> str:
    """The pending marker of ``entry``: ``{date}/{id}!{HHMMSS}``, the call's UTC time of day.

    Truncated to the second, the time stays on the same side of any midnight in any timezone
    (UTC offsets are whole seconds), so the name alone gives the call date anywhere.
    """
    clock = entry.timestamp.astimezone(UTC)
    return f"{PENDING}/{entry.call_date}/{entry.recording_id}{MARKER_TIME}{clock:%H%M%S}"


def legacy_pending_key(call_date: str, recording_id: str) -> str:
    """The marker name of stores written before the time of day was added: the id alone."""
    return f"{PENDING}/{call_date}/{recording_id}"


def pending_keys(entry: Entry) -> tuple[str, str]:
    """Both names a pending marker of ``entry`` may have: current, then legacy."""
    return pending_key(entry), legacy_pending_key(entry.call_date, entry.recording_id)


def parse_pending_name(name: str) -> tuple[str, time | None] | None:
    """``(recording_id, UTC time of day)`` of a marker name; the time is None for a legacy name
    (the id alone), and the result None for a name that is neither."""
    rid, sep, clock = name.partition(MARKER_TIME)
    if not ID_PATTERN.fullmatch(rid) or ".." in rid:
        return None
    if not sep:
        return rid, None
    match = _HHMMSS.fullmatch(clock)
    if match is None:
        return None
    return rid, time(*(int(part) for part in match.groups()))


def pending_sync_key(recording_id: str) -> str:
    return f"{PENDING_SYNC}/{recording_id}"


def by_caller_key(phone_key: str, recording_id: str) -> str:
    return f"{BY_CALLER}/{validate_id(phone_key, 'phone_key')}/{recording_id}"


def retained_key(call_date: str, recording_id: str) -> str:
    return f"{RETAINED}/{call_date}/{recording_id}"


def erasing_key(recording_id: str) -> str:
    return f"{ERASING}/{recording_id}"


def caller_key(doc: RecordingMetadata) -> str | None:
    """The keyed hash of the caller's phone that names the by-caller entry, None when unknown."""
    return doc.caller.phone_key or None


def check_listing_bounds(limit: int, since: datetime | None, until: datetime | None) -> None:
    """Refuse a page size under 1 and a naive ``since``/``until`` (``ValueError``)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware, got {bound!r}")


def list_page(
    store: BlobStore,
    conversation_id: str | None,
    processed: bool | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> RecordingPage:
    """The listing algorithm behind :meth:`RecordingStore.list_recordings`."""
    check_listing_bounds(limit, since, until)
    after = decode_cursor(cursor) if cursor else None
    errors: list[ListingError] = []
    items: list[RecordingRef] = []
    if conversation_id is not None:
        candidates = _conversation_candidates(store, validate_id(conversation_id, "conversation_id"), errors)
    else:
        candidates = _date_candidates(
            store, processed, since, until, after, errors, lambda: limit + 1 - len(items)
        )
    for ref in candidates:
        if after and (ref.call_date, ref.recording_id) <= after:
            continue
        if processed is not None and ref.processed != processed:
            continue
        if ref.timestamp and ((since and ref.timestamp < since) or (until and ref.timestamp > until)):
            continue
        items.append(ref)
        if len(items) > limit:
            break
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor(items[-1].call_date, items[-1].recording_id)
    return RecordingPage(items=items, next_cursor=next_cursor, errors=errors)


def _date_candidates(
    store: BlobStore,
    processed: bool | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[str, str] | None,
    errors: list[ListingError],
    wanted: Callable[[], int],
) -> Iterator[RecordingRef]:
    """Refs in (date, id) order from the pending markers (processed=False) or the by-date entries.

    Entries are read in batches of at most 32 and at most ``wanted()`` (what the page still
    needs), so a page reads about as many entries as it returns.
    """
    base = PENDING if processed is False else BY_DATE
    first = since.astimezone(UTC).date().isoformat() if since else ""  # index dates are UTC dates
    if after and after[0] > first:
        first = after[0]
    last = until.astimezone(UTC).date().isoformat() if until else None
    for call_date in store._list_dirs(base):
        if call_date < first or (last and call_date > last):
            continue
        start_after = after[1] if after and after[0] == call_date else None
        if processed is False:  # past every marker name of the cursor's id ("~" sorts above digits)
            marker_after = f"{start_after}{MARKER_TIME}~" if start_after else None
            names = unique_markers(store._list_names(f"{base}/{call_date}", start_after=marker_after))
        else:
            names = store._list_names(f"{base}/{call_date}", start_after=start_after)
        pending: set[str] = set()
        if processed is not False:
            pending = marker_ids(store._list_names(f"{PENDING}/{call_date}", start_after=start_after))
        if processed is True:
            names = [n for n in names if n not in pending]
        pos = 0
        while pos < len(names):
            chunk = names[pos : pos + min(32, max(1, wanted()))]
            pos += len(chunk)
            keys = [f"{base}/{call_date}/{name}" for name in chunk]
            for name, key, raw in zip(chunk, keys, store._get_many(keys), strict=True):
                if raw is None:  # removed since the directory listing
                    continue
                try:
                    entry = Entry.parse(raw, store._uri(key))
                except MetadataCorruptError as exc:
                    errors.append(ListingError(store._uri(key), _name_id(name), str(exc)))
                    continue
                is_processed = processed if processed is False else name not in pending
                yield entry.ref(bool(is_processed))


def _conversation_candidates(
    store: BlobStore, conversation_id: str, errors: list[ListingError]
) -> list[RecordingRef]:
    """Refs of one conversation: its metadata directory names, then the by-id entries."""
    names = store._list_names(store.metadata_dir(conversation_id))
    ids = [n.removesuffix(".json") for n in names if n.endswith(".json")]
    refs: list[RecordingRef] = []
    keys = [by_id_key(rid) for rid in ids]
    for rid, key, raw in zip(ids, keys, store._get_many(keys), strict=True):
        if raw is None:
            continue
        try:
            entry = Entry.parse(raw, store._uri(key))
        except MetadataCorruptError as exc:
            errors.append(ListingError(store._uri(key), rid, str(exc)))
            continue
        processed = not any(store._exists(key) for key in pending_keys(entry))
        refs.append(entry.ref(processed))
    refs.sort(key=lambda r: (r.call_date, r.recording_id))
    return refs


def unique_markers(names: list[str]) -> list[str]:
    """Marker names of one date, one per recording (where a crash left both names, the current
    one), in id order; a name that is no marker stays, so reading it reports it."""
    chosen: dict[str, str] = {}
    for name in names:
        parsed = parse_pending_name(name)
        rid = parsed[0] if parsed else name
        if rid not in chosen or (parsed is not None and parsed[1] is not None):
            chosen[rid] = name
    return [chosen[rid] for rid in sorted(chosen)]


def marker_ids(names: list[str]) -> set[str]:
    """The recording ids of a date's marker names (names that are no marker left out)."""
    return {parsed[0] for name in names if (parsed := parse_pending_name(name))}


def _name_id(name: str) -> str:
    """The recording id a listed name (by-date entry or pending marker) stands for, for messages."""
    parsed = parse_pending_name(name)
    return parsed[0] if parsed else name


def iter_documents(
    store: BlobStore, call_date: str, processed: bool | None, errors: list[ListingError] | None
) -> Iterator[RecordingMetadata]:
    """Behind :meth:`RecordingStore.iter_recordings`: entries of the day, then their documents."""
    validate_date(call_date)
    base = f"{PENDING if processed is False else BY_DATE}/{call_date}"
    names = store._list_names(base)
    for chunk in _chunks(unique_markers(names) if processed is False else names, 32):
        located: list[Entry] = []
        for name, raw in zip(chunk, store._get_many([f"{base}/{n}" for n in chunk]), strict=True):
            if raw is None:  # removed since the directory listing
                continue
            try:
                located.append(Entry.parse(raw, store._uri(f"{base}/{name}")))
            except MetadataCorruptError as exc:
                _report(errors, store._uri(f"{base}/{name}"), _name_id(name), str(exc))
        documents = store._get_many([store.metadata_key(e) for e in located])
        for entry, raw in zip(located, documents, strict=True):
            where = store._uri(store.metadata_key(entry))
            if raw is None:
                _report(
                    errors, where, entry.recording_id, f"metadata of {entry.recording_id} not found ({where})"
                )
                continue
            try:
                doc = parse_document(raw, entry.recording_id, where)
            except MetadataCorruptError as exc:
                _report(errors, where, entry.recording_id, str(exc))
                continue
            if processed is False and doc.processed:
                store._resync_pending(entry)  # a marker left by a crash: drop it so the day can settle
                continue
            if processed is None or doc.processed == processed:
                yield doc


def storage_stats(store: BlobStore) -> dict[str, Any]:
    """Behind :meth:`RecordingStore.get_storage_stats`: names and sizes only, no document reads."""
    recordings = len(store._list_names(BY_ID))
    pending = sum(len(marker_ids(store._list_names(f"{PENDING}/{d}"))) for d in store._list_dirs(PENDING))
    formats: Counter[str] = Counter()
    total = 0
    for key, size in store._walk(store.audio_root):
        if not key.endswith(".json"):
            formats[key.rsplit(".", 1)[-1]] += 1
            total += size
    return {
        "backend": store.backend,
        "recordings": recordings,
        "processed": recordings - pending,
        "pending": pending,
        "pending_sync": len(store._list_names(PENDING_SYNC)),
        "total_bytes": total,
        "formats": dict(sorted(formats.items())),
        **store._location(),
    }


def _report(errors: list[ListingError] | None, path: str, recording_id: str, message: str) -> None:
    log.warning("%s", message)
    if errors is not None:
        errors.append(ListingError(path, recording_id, message))


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
