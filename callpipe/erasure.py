"""Erasure of personal data on request (GDPR art. 17): behind ``callpipe erase``.

:func:`erase` finds the recordings of one recording id, one conversation id or one caller
phone number on every backend (local, S3, both sides of the mirrored store) and removes each
one's audio, metadata document, transcript files and index entries (see
:mod:`callpipe.storage.purge`), then returns an :class:`ErasureReceipt` listing every object
removed.

Finding: a recording id through the by-id entry; a conversation through its metadata
directory (no document read), after which whatever is left in the conversation's
directories goes too; a caller through ``index/by-caller/{phone_key}/`` (written at save and
whenever ``caller`` changes), each document checked to still name that caller.

Order and resumption: per recording a tombstone is written first (on the mirrored store's
local side), then the local side is erased, then S3; the tombstone goes last. When S3 cannot be
reached the local copy is gone already, the receipt says what is left, and every later
:func:`erase` (or :func:`resume_erasures`, ``callpipe erase --resume``) finishes the
tombstoned recordings first. Meanwhile ``sync_pending`` never uploads a tombstoned recording.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from callpipe.storage import index
from callpipe.storage.base import RecordingStore
from callpipe.storage.blob_store import BlobStore
from callpipe.storage.errors import (
    MetadataCorruptError,
    RecordingNotFoundError,
    StorageError,
    StorageUnavailableError,
)
from callpipe.storage.ids import validate_id
from callpipe.storage.index import Entry
from callpipe.storage.mirrored import store_sides
from callpipe.storage.purge import (
    Removed,
    Tombstone,
    clear_tombstone,
    document_callers,
    list_tombstones,
    purge_directories,
    purge_recording,
    read_tombstone,
    write_tombstone,
)


@dataclass(slots=True)
class ErasedRecording:
    """What one recording's erasure removed; ``error`` set when a backend still holds part of it."""

    recording_id: str
    conversation_id: str
    call_date: str
    removed: list[Removed] = field(default_factory=list)
    error: str | None = None
    resumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "recording_id": self.recording_id,
            "conversation_id": self.conversation_id,
            "call_date": self.call_date,
            "complete": self.error is None,
            "error": self.error,
            "resumed": self.resumed,
            "removed": [r.to_dict() for r in self.removed],
        }


@dataclass(slots=True)
class ErasureReceipt:
    """The answer of :func:`erase`: per recording each removed object, plus counts."""

    request: dict[str, str]
    recordings: list[ErasedRecording] = field(default_factory=list)
    other_removed: list[Removed] = field(default_factory=list)
    """Objects found without a recording to attach them to: stale by-caller entries, files left in
    an erased conversation's directories."""
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors and all(r.error is None for r in self.recordings)

    def to_dict(self) -> dict[str, Any]:
        removed = [r for rec in self.recordings for r in rec.removed] + self.other_removed
        return {
            "request": self.request,
            "complete": self.complete,
            "counts": {
                "recordings": len(self.recordings),
                "objects": len(removed),
                "by_backend": dict(sorted(Counter(r.backend for r in removed).items())),
            },
            "recordings": [r.to_dict() for r in self.recordings],
            "other_removed": [r.to_dict() for r in self.other_removed],
            "errors": self.errors,
        }


def erase(
    store: RecordingStore,
    *,
    recording_id: str | None = None,
    conversation_id: str | None = None,
    caller_phone: str | None = None,
    region: str = "ES",
) -> ErasureReceipt:
    """Erase the recordings of exactly one of ``recording_id``, ``conversation_id`` or
    ``caller_phone`` (any notation ``callpipe.pii.normalize_phone`` reads; ``region`` for
    numbers without ``+``), finishing unfinished erasures first.

    Raises ``RecordingNotFoundError`` when nothing matches, ``ValueError`` for a bad id or phone
    number (nothing is removed then). Backend failures do not raise: they are in the receipt
    (``complete`` false) and the tombstones keep the rest to do.
    """
    given = [v for v in (recording_id, conversation_id, caller_phone) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of recording_id, conversation_id, caller_phone")
    index_side, sides = store_sides(store)
    receipt = ErasureReceipt(request={})
    targets: dict[str, Tombstone] = {}
    if recording_id is not None:
        receipt.request = {"recording_id": validate_id(recording_id)}
        _by_recording(index_side, sides, recording_id, targets, receipt)
    elif conversation_id is not None:
        receipt.request = {"conversation_id": validate_id(conversation_id, "conversation_id")}
        _by_conversation(index_side, sides, conversation_id, targets, receipt)
    else:
        from callpipe.pii import mask_phone, normalize_phone, phone_key

        assert caller_phone is not None
        e164 = normalize_phone(caller_phone, region)
        receipt.request = {"caller_phone": mask_phone(e164)}
        _by_caller(index_side, sides, phone_key(e164), targets, receipt)
    if not targets and not receipt.other_removed:
        if receipt.errors:
            raise StorageUnavailableError(receipt.errors[0])
        what = ", ".join(f"{k} {v}" for k, v in receipt.request.items())
        raise RecordingNotFoundError(f"nothing to erase: no recording of {what} on {store}")
    unfinished = {t.entry.recording_id: t for t in list_tombstones(index_side)}
    down: dict[int, str] = {}
    _execute(index_side, sides, targets, receipt, down, resumed=False)
    _execute(index_side, sides, {r: t for r, t in unfinished.items() if r not in targets}, receipt, down)
    _settle_catalog(store, index_side, [*targets, *unfinished])
    if conversation_id is not None and targets:
        for side in sides:
            if id(side) not in down:
                try:
                    receipt.other_removed += purge_directories(side, conversation_id)
                except StorageError as exc:
                    receipt.errors.append(f"{side.backend}: {exc}")
    return receipt


def resume_erasures(store: RecordingStore) -> ErasureReceipt:
    """Finish every erasure a backend failure left unfinished (their tombstones)."""
    index_side, sides = store_sides(store)
    receipt = ErasureReceipt(request={"resume": "unfinished erasures"})
    pending = {t.entry.recording_id: t for t in list_tombstones(index_side)}
    _execute(index_side, sides, pending, receipt, {})
    _settle_catalog(store, index_side, list(pending))
    return receipt


def _settle_catalog(store: RecordingStore, index_side: BlobStore, recording_ids: list[str]) -> None:
    """A catalog wrapper's rows: forgotten once the recording's by-id entry is gone, else marked
    ``erasing`` (its tombstone keeps the rest to do; listing no longer offers it to runs)."""
    catalog = getattr(store, "catalog", None)
    if catalog is None:
        return
    from callpipe.storage.index import by_id_key

    for rid in recording_ids:
        if index_side._exists(by_id_key(rid)):
            catalog.mark(rid, erasing=True)
        else:
            catalog.forget(rid)


# ---- finding ------------------------------------------------------------------------------------
def _add(targets: dict[str, Tombstone], entry: Entry, callers: set[str]) -> None:
    known = targets.get(entry.recording_id)
    merged = set(callers) | set(known.callers if known else ())
    targets[entry.recording_id] = Tombstone(known.entry if known else entry, tuple(sorted(merged)))


def _on_each_side(sides: list[BlobStore], receipt: ErasureReceipt, find: Any) -> None:
    """Run ``find(side)`` on every side; an unreachable backend is noted, not fatal."""
    for side in sides:
        try:
            find(side)
        except StorageUnavailableError as exc:
            receipt.errors.append(f"{side.backend}: {exc}")


def _by_recording(
    index_side: BlobStore,
    sides: list[BlobStore],
    rid: str,
    targets: dict[str, Tombstone],
    receipt: ErasureReceipt,
) -> None:
    def find(side: BlobStore) -> None:
        try:
            entry = side._entry(rid)
        except RecordingNotFoundError:
            return
        _add(targets, entry, document_callers(side, entry))

    _on_each_side(sides, receipt, find)
    tombstone = read_tombstone(index_side, rid)
    if tombstone is not None:
        _add(targets, tombstone.entry, set(tombstone.callers))


def _by_conversation(
    index_side: BlobStore,
    sides: list[BlobStore],
    conv: str,
    targets: dict[str, Tombstone],
    receipt: ErasureReceipt,
) -> None:
    def find(side: BlobStore) -> None:
        names = side._list_names(side.metadata_dir(conv))
        for rid in (n.removesuffix(".json") for n in names if n.endswith(".json")):
            try:
                entry = side._entry(rid)
            except (RecordingNotFoundError, MetadataCorruptError):
                continue  # its files still go with the conversation's directories
            if entry.conversation_id == conv:
                _add(targets, entry, document_callers(side, entry))

    _on_each_side(sides, receipt, find)
    for tombstone in list_tombstones(index_side):
        if tombstone.entry.conversation_id == conv:
            _add(targets, tombstone.entry, set(tombstone.callers))
    if not targets:  # no recording left, but maybe files of one whose index entries were lost

        def leftovers(side: BlobStore) -> None:
            receipt.other_removed.extend(purge_directories(side, conv))

        _on_each_side(sides, receipt, leftovers)


def _by_caller(
    index_side: BlobStore,
    sides: list[BlobStore],
    key: str,
    targets: dict[str, Tombstone],
    receipt: ErasureReceipt,
) -> None:
    def find(side: BlobStore) -> None:
        directory = f"{index.BY_CALLER}/{key}"
        for rid in side._list_names(directory):
            where = index.by_caller_key(key, rid)
            try:
                entry = Entry.parse(side._get(where), side._uri(where))
            except FileNotFoundError:
                continue
            callers = document_callers(side, entry)
            if callers and key not in callers:  # the caller was changed: only the old entry goes
                side._delete(where)
                receipt.other_removed.append(Removed(side.backend, side._uri(where)))
                continue
            _add(targets, entry, callers | {key})

    _on_each_side(sides, receipt, find)
    for tombstone in list_tombstones(index_side):
        if key in tombstone.callers:
            _add(targets, tombstone.entry, set(tombstone.callers))


# ---- removing -----------------------------------------------------------------------------------
def _execute(
    index_side: BlobStore,
    sides: list[BlobStore],
    targets: dict[str, Tombstone],
    receipt: ErasureReceipt,
    down: dict[int, str],
    *,
    resumed: bool = True,
) -> None:
    """Tombstone, erase side by side, clear the tombstone. A side found unreachable (noted in
    ``down``) is skipped for the remaining recordings, whose tombstones stay."""
    for rid in sorted(targets):
        tombstone = targets[rid]
        entry = tombstone.entry
        done = ErasedRecording(rid, entry.conversation_id, entry.call_date, resumed=resumed)
        receipt.recordings.append(done)
        if id(index_side) in down:
            done.error = down[id(index_side)]
            continue
        try:
            write_tombstone(index_side, tombstone)
        except StorageError as exc:
            done.error = f"{index_side.backend}: {exc}"
            if isinstance(exc, StorageUnavailableError):
                down[id(index_side)] = done.error
            continue
        for side in sides:
            if id(side) in down:
                done.error = done.error or down[id(side)]
                continue
            try:
                done.removed += purge_recording(side, entry, tombstone.callers)
            except StorageError as exc:
                done.error = done.error or f"{side.backend}: {exc}"
                if isinstance(exc, StorageUnavailableError):
                    down[id(side)] = f"{side.backend}: {exc}"
        if done.error is None:
            try:
                clear_tombstone(index_side, rid)
            except StorageError as exc:
                done.error = f"{index_side.backend}: tombstone not cleared: {exc}"
