"""Erasure of one recording from one blob store: every object it left, found, removed and listed.

A recording's objects are its audio, its metadata document, every transcript file
(``{id}.txt``, ``{id}.redacted.txt``, ...), and its index entries (by-id, by-date, pending,
pending-sync, retained, by-caller). On a local store the hidden temp files a crashed writer
left, the recording's lock file and the directories left empty go too; on S3 the local
download cache.

Tombstones (``index/erasing/{id}``) make an erasure resumable: :mod:`callpipe.erasure` writes
one before deleting anything and removes it once every backend is clean. Until then the
mirrored store neither uploads the recording again nor keeps what a racing write put on S3.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from callpipe.storage import index
from callpipe.storage.documents import parse_document
from callpipe.storage.errors import MetadataCorruptError
from callpipe.storage.index import Entry

if TYPE_CHECKING:  # annotations only: the stores import this module, never the reverse
    from callpipe.storage.blob_store import BlobStore

_TMP = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{32}\.tmp")
"""A local writer's temp file: ``.{target name}.{uuid hex}.tmp`` (see ``LocalStore._put``)."""


@dataclass(frozen=True, slots=True)
class Removed:
    """One object an erasure or the retention policy removed: ``backend`` and its path or URI."""

    backend: str
    object: str

    def to_dict(self) -> dict[str, str]:
        return {"backend": self.backend, "object": self.object}


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An erasure in progress: where the recording's objects are, and its callers' phone keys."""

    entry: Entry
    callers: tuple[str, ...] = ()


# ---- tombstones ---------------------------------------------------------------------------------
def write_tombstone(store: BlobStore, tombstone: Tombstone) -> None:
    data = json.loads(tombstone.entry.to_bytes())
    data["callers"] = sorted(set(tombstone.callers))
    store._put(index.erasing_key(tombstone.entry.recording_id), json.dumps(data).encode())


def read_tombstone(store: BlobStore, recording_id: str) -> Tombstone | None:
    key = index.erasing_key(recording_id)
    try:
        raw = store._get(key)
    except FileNotFoundError:
        return None
    entry = Entry.parse(raw, store._uri(key))
    callers = json.loads(raw).get("callers") or []
    return Tombstone(entry, tuple(str(c) for c in callers))


def list_tombstones(store: BlobStore) -> list[Tombstone]:
    """Unfinished erasures, oldest recording id first (a damaged tombstone raises)."""
    found = (read_tombstone(store, rid) for rid in store._list_names(index.ERASING))
    return [t for t in found if t is not None]


def clear_tombstone(store: BlobStore, recording_id: str) -> None:
    key = index.erasing_key(recording_id)
    store._delete(key)
    _prune(store, [key])


# ---- finding ------------------------------------------------------------------------------------
def document_callers(store: BlobStore, entry: Entry) -> set[str]:
    """The caller phone key of the stored document, if it can be read (empty set otherwise)."""
    key = store.metadata_key(entry)
    try:
        doc = parse_document(store._get(key), entry.recording_id, store._uri(key))
    except (FileNotFoundError, MetadataCorruptError):
        return set()
    caller = index.caller_key(doc)
    return {caller} if caller else set()


def _belongs(name: str, recording_id: str, others: Collection[str]) -> bool:
    """Whether file ``name`` is one of the recording's (``{id}``, ``{id}.{suffix}`` or its pending
    marker ``{id}!{time}``), and not of a longer id that starts the same (ids may hold dots: "a"
    and "a.b")."""
    if name == recording_id or name.startswith(recording_id + index.MARKER_TIME):
        return True
    if not name.startswith(recording_id + "."):
        return False
    return not any(other.startswith(recording_id + ".") and name.startswith(other + ".") for other in others)


def _conversation_dirs(store: BlobStore, conversation_id: str) -> list[str]:
    """The directories (prefixes) holding a conversation's audio, metadata and transcripts."""
    dirs = [f"{store.audio_root}/{conversation_id}", store.metadata_dir(conversation_id)]
    return list(dict.fromkeys([*dirs, f"transcripts/{conversation_id}"]))


def _others(store: BlobStore, conversation_id: str) -> set[str]:
    """Ids of the conversation's recordings that still have a metadata document."""
    return {n.removesuffix(".json") for n in store._list_names(store.metadata_dir(conversation_id))}


def recording_objects(store: BlobStore, entry: Entry, callers: Iterable[str] = ()) -> list[str]:
    """Keys of every object of the recording that exists now: metadata first, by-id entry last."""
    rid = entry.recording_id
    listed = {d: store._list_names(d) for d in _conversation_dirs(store, entry.conversation_id)}
    others = {n.removesuffix(".json") for n in listed[store.metadata_dir(entry.conversation_id)]}
    files = [f"{d}/{n}" for d, names in listed.items() for n in names if _belongs(n, rid, others)]
    metadata = store.metadata_key(entry)
    files.sort(key=lambda key: key != metadata)
    entries = [
        index.by_date_key(entry.call_date, rid),
        *index.pending_keys(entry),
        index.retained_key(entry.call_date, rid),
        index.pending_sync_key(rid),
        *(index.by_caller_key(caller, rid) for caller in sorted(set(callers))),
        index.by_id_key(rid),
    ]
    return files + [key for key in entries if store._exists(key)]


def media_objects(store: BlobStore, entry: Entry) -> list[str]:
    """Keys of the recording's audio and transcript files (what the retention policy removes)."""
    rid = entry.recording_id
    others = _others(store, entry.conversation_id)
    audio = store.audio_key(entry)
    keys = [audio] if store._exists(audio) else []
    directory = store.transcript_key(entry).rsplit("/", 1)[0]
    return keys + [f"{directory}/{n}" for n in store._list_names(directory) if _belongs(n, rid, others)]


# ---- removing -----------------------------------------------------------------------------------
def purge_recording(store: BlobStore, entry: Entry, callers: Iterable[str] = ()) -> list[Removed]:
    """Remove every object of the recording from ``store``; idempotent (absent objects are skipped).

    ``callers`` adds phone keys whose by-caller entry must go besides the stored document's.
    Raises ``StorageError`` (e.g. ``StorageUnavailableError``) with part of the work done: call again.
    """
    wanted = set(callers) | document_callers(store, entry)
    with store._lock(entry.recording_id):
        removed = _remove(store, recording_objects(store, entry, wanted))
        removed += _remove_local_leftovers(store, entry, wanted)
    return removed + _remove_cache(store, entry)


def purge_media(store: BlobStore, entry: Entry) -> list[Removed]:
    """Remove the recording's audio and transcript files only (index and metadata stay)."""
    with store._lock(entry.recording_id):
        removed = _remove(store, media_objects(store, entry))
    return removed + _remove_cache(store, entry)


def purge_directories(store: BlobStore, conversation_id: str) -> list[Removed]:
    """Remove whatever is left in a conversation's audio, metadata and transcript directories
    (objects whose index entries were already lost), after its recordings were purged."""
    directories = _conversation_dirs(store, conversation_id)
    removed = _remove(store, [f"{d}/{n}" for d in directories for n in store._list_names(d)])
    if store.backend == "local":
        for directory in directories:
            for name in _hidden_files(store.path(directory)):
                path = store.path(f"{directory}/{name}")
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(Removed(store.backend, str(path)))
        _prune(store, [f"{d}/-" for d in directories])
    return removed


def _remove(store: BlobStore, keys: list[str]) -> list[Removed]:
    removed: list[Removed] = []
    for key in keys:
        with contextlib.suppress(FileNotFoundError):
            store._delete(key)
        removed.append(Removed(store.backend, store._uri(key)))
    _prune(store, keys)
    return removed


def _remove_local_leftovers(store: BlobStore, entry: Entry, callers: Iterable[str]) -> list[Removed]:
    """Temp files of crashed writers in the recording's directories, and its lock file."""
    if store.backend != "local":
        return []
    rid = entry.recording_id
    others = _others(store, entry.conversation_id)
    directories = [
        *_conversation_dirs(store, entry.conversation_id),
        f"{index.BY_DATE}/{entry.call_date}",
        f"{index.PENDING}/{entry.call_date}",
        f"{index.RETAINED}/{entry.call_date}",
        *(f"{index.BY_CALLER}/{caller}" for caller in callers),
        index.BY_ID,
        index.PENDING_SYNC,
    ]
    removed: list[Removed] = []
    for directory in dict.fromkeys(directories):
        for name in _hidden_files(store.path(directory)):
            match = _TMP.fullmatch(name)
            if match and _belongs(match["name"], rid, others):
                with contextlib.suppress(FileNotFoundError):
                    store.path(f"{directory}/{name}").unlink()
                    removed.append(Removed(store.backend, str(store.path(f"{directory}/{name}"))))
    lock = store.root / ".locks" / f"{rid}.lock"
    with contextlib.suppress(FileNotFoundError):
        lock.unlink()
        removed.append(Removed(store.backend, str(lock)))
    return removed


def _remove_cache(store: BlobStore, entry: Entry) -> list[Removed]:
    """A download of the audio that versions before staging (``S3Store.audio_file``) cached for good."""
    if store.backend != "s3":
        return []
    path = store.cache_path(entry)
    try:
        path.unlink()
    except FileNotFoundError:
        return []
    return [Removed("s3-cache", str(path))]


def _hidden_files(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return [e.name for e in entries if e.name.startswith(".") and e.is_file()]
    except FileNotFoundError:
        return []


def _prune(store: BlobStore, keys: Iterable[str]) -> None:
    """Local store: remove the directories of ``keys`` that are now empty, up to the root.

    ``LocalStore._put`` re-creates a directory removed under a concurrent writer.
    """
    if store.backend != "local":
        return
    for key in keys:
        directory = store.path(key).parent
        while directory != store.root and store.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:  # not empty, or already gone
                break
            directory = directory.parent

