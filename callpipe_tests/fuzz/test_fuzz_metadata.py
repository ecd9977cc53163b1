"""Fuzzing the metadata loader: malformed documents and index entries on disk.

Contract: ``RecordingMetadata.model_validate``/``model_validate_json`` accept a document or raise
pydantic's ``ValidationError`` (a ``ValueError``), nothing else. Through a store, a damaged
document makes ``get_metadata`` raise ``MetadataCorruptError`` naming the recording, in one line;
``iter_recordings`` reports it in ``errors`` and still yields every other recording; a damaged
index entry is reported by ``list_recordings`` and the others are listed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from callpipe.schema import RecordingMetadata
from callpipe.storage import LocalStore, MetadataCorruptError, RecordingNotFoundError
from callpipe.storage.base import ListingError
from callpipe_tests.fuzz.support import COUNTS, fuzz, one_line
from callpipe_tests.fuzz.test_fuzz_storage import WAV

DAY = datetime(2025, 3, 12, 10, 30, tzinfo=UTC)
TARGET = "rec-target"
OTHERS = ("rec-a", "rec-b")

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
odd_dates = (
    st.sampled_from(
        [
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2025-02-30T10:00:00Z",
            "2025-03-12T10:00:00",
            "2025-03-12",
            "yesterday",
            "",
            "2025-03-12T25:61:00Z",
            "+275760-09-13T00:00:00Z",
            "1e400",
        ]
    )
    | st.integers()
    | st.floats()
)
_PATHS = [
    ("timestamp",),
    ("schema_version",),
    ("recording_id",),
    ("conversation_id",),
    ("processed",),
    ("revision",),
    ("audio",),
    ("audio", "sample_rate"),
    ("audio", "checksum_sha256"),
    ("audio", "duration_seconds"),
    ("transcription",),
    ("transcription", "word_confidences"),
    ("transcription", "confidence"),
    ("sentiment",),
    ("status",),
    ("status", "status"),
    ("status", "lease_until"),
    ("entities",),
    ("turns",),
    ("extra",),
    ("storage", "backend"),
]


def _v1(fields: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"recording_id": TARGET, "conversation_id": "conv", "timestamp": DAY.isoformat()}
    doc.update(fields)
    return doc


v1_documents = st.builds(
    _v1,
    st.fixed_dictionaries(
        {},
        optional={
            "schema_version": st.sampled_from([1, "1", "1.0", 0, None, "uno", 1.5]),
            "transcription": st.none() | st.text(max_size=30) | json_values,
            "corrected_text": st.none() | st.text(max_size=20) | st.integers(),
            "word_confidences": st.none()
            | st.lists(st.fixed_dictionaries({"word": scalars, "confidence": scalars}), max_size=3)
            | json_values,
            "corrections_made": json_values,
            "confidence": scalars,
            "checksum": st.sampled_from(["0" * 64, "xyz"]) | scalars,
            "duration": scalars,
            "size_bytes": scalars,
            "sample_rate": scalars,
            "format": scalars,
            "sentiment": st.sampled_from(["positive", "neutral", "angry"]) | json_values,
            "status": st.sampled_from(["processed", "pending", "weird"]) | json_values,
            "processed": scalars,
            "timestamp": odd_dates,
        },
    ),
)


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("metadata-fuzz") / "store"
    store = LocalStore(root)
    for rid in (TARGET, *OTHERS):
        store.save_recording(WAV, "conv", {"timestamp": DAY}, recording_id=rid)
    return root


@pytest.fixture(scope="module")
def valid_document(base_store: Path) -> dict[str, Any]:
    return json.loads((base_store / "metadata" / "conv" / f"{TARGET}.json").read_bytes())


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return doc


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def documents(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    raw = _dump(valid)
    return st.one_of(
        st.integers(0, len(raw) - 1).map(lambda k: raw[:k]),  # truncated
        st.builds(_set, st.just(valid), st.sampled_from(_PATHS), json_values | odd_dates).map(_dump),
        v1_documents.map(_dump),
        json_values.map(_dump),
        st.binary(max_size=200),
        st.sampled_from([b"[" * 5000, b'{"a":' * 5000, b"\xff\xfe{}", b"", b"null", b"{}"]),
    )


@pytest.fixture
def store(base_store: Path, tmp_path: Path) -> Iterator[LocalStore]:
    root = tmp_path / "store"
    shutil.copytree(base_store, root)
    yield LocalStore(root)


def _check_store(store: LocalStore, damaged: str) -> str:
    """The loader contract for one damaged recording; returns the outcome name."""
    try:
        doc = store.get_metadata(TARGET)
        assert doc.recording_id == TARGET
        outcome = "loaded"
    except MetadataCorruptError as exc:
        assert TARGET in one_line(exc), f"message does not name the recording: {exc}"
        outcome = "MetadataCorruptError"
    except RecordingNotFoundError as exc:  # a damaged by-id entry may read as a missing one
        assert damaged == "index" and TARGET in one_line(exc)
        outcome = "RecordingNotFoundError"
    errors: list[ListingError] = []
    seen = {doc.recording_id for doc in store.iter_recordings(DAY.date().isoformat(), errors=errors)}
    assert set(OTHERS) <= seen, f"iteration lost good recordings: {seen}"
    assert (TARGET in seen) != any(e.recording_id == TARGET for e in errors) or damaged == "index"
    for error in errors:
        assert "\n" not in error.message
    page = store.list_recordings(limit=10)
    assert set(OTHERS) <= {ref.recording_id for ref in page.items}
    return outcome


def _restore(store: LocalStore, valid: dict[str, Any]) -> None:
    (store.root / "metadata" / "conv" / f"{TARGET}.json").write_bytes(_dump(valid))


@given(data=st.data())
@fuzz(120)
def test_damaged_document_is_reported_and_the_others_load(
    store: LocalStore, valid_document: dict[str, Any], data: st.DataObject
) -> None:
    raw = data.draw(documents(valid_document), label="document")
    (store.root / "metadata" / "conv" / f"{TARGET}.json").write_bytes(raw)
    try:
        COUNTS[f"metadata document {_check_store(store, 'document')}"] += 1
    finally:
        _restore(store, valid_document)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"recording_id":"rec-target","conversation_id":"conv","timestamp":"0001-01-01T00:00:00+05:00"}',
        b'{"recording_id":"rec-target","conversation_id":"conv","schema_version":null}',
        b'{"recording_id":"rec-target","conversation_id":"conv","schema_version":"1e400"}',
        b'{"recording_id":"rec-target","conversation_id":"conv","schema_version":[1]}',
    ],
)
def test_documents_that_used_to_crash_the_loader(store: LocalStore, raw: bytes) -> None:
    """Found by fuzzing: these raised OverflowError/TypeError out of ``get_metadata`` and iteration."""
    (store.root / "metadata" / "conv" / f"{TARGET}.json").write_bytes(raw)
    assert _check_store(store, "document") == "MetadataCorruptError"


index_entries = st.one_of(
    json_values.map(_dump),
    st.binary(max_size=120),
    st.fixed_dictionaries(
        {
            "recording_id": st.just(TARGET) | scalars,
            "conversation_id": st.sampled_from(["conv", "../x", "/abs"]) | scalars,
            "call_date": st.sampled_from(["2025-03-12", "2025-02-30", "../../x"]) | scalars,
            "timestamp": st.sampled_from([DAY.isoformat()]) | odd_dates,
            "format": st.sampled_from(["wav", "../wav", ""]) | scalars,
        }
    ).map(_dump),
)


@given(raw=index_entries, where=st.sampled_from(["by-id", "by-date", "pending"]))
@example(raw=b"[" * 5000, where="by-id")
@example(raw=b"[" * 5000, where="by-date")
@fuzz(80)
def test_damaged_index_entry_is_reported(store: LocalStore, raw: bytes, where: str) -> None:
    key = {
        "by-id": f"index/by-id/{TARGET}",
        "by-date": f"index/by-date/2025-03-12/{TARGET}",
        "pending": f"index/pending/2025-03-12/{TARGET}!103000",  # the marker holds DAY's time
    }[where]
    original = (store.root / key).read_bytes()
    (store.root / key).write_bytes(raw)
    try:
        COUNTS[f"metadata index entry {_check_store(store, 'index')}"] += 1
    finally:
        (store.root / key).write_bytes(original)


@given(
    doc=st.one_of(
        v1_documents,
        st.dictionaries(
            st.sampled_from(list(RecordingMetadata.model_fields)), json_values | odd_dates, max_size=6
        ),
    )
)
@example(doc={"recording_id": "r", "conversation_id": "c", "schema_version": float("inf")})
@example(doc={"recording_id": "r", "conversation_id": "c", "timestamp": "9999-12-31T23:59:59-05:00"})
@fuzz(300)
def test_model_validate_raises_only_validation_errors(doc: dict[str, Any]) -> None:
    for parse in (
        RecordingMetadata.model_validate,
        lambda d: RecordingMetadata.model_validate_json(_dump(d)),
    ):
        try:
            parsed = parse(doc)
        except ValidationError:
            COUNTS["RecordingMetadata.model_validate ValidationError"] += 1
            continue
        COUNTS["RecordingMetadata.model_validate valid"] += 1
        again = RecordingMetadata.model_validate_json(parsed.model_dump_json())
        assert again.recording_id == parsed.recording_id and again.timestamp == parsed.timestamp
