"""Fuzzing ``save_recording``: hostile ids, broken audio, garbage metadata, on local, S3 and both.

Contract checked for every input: the call succeeds, or raises a ``StorageError`` (bad id,
invalid metadata, id taken) or ``InvalidAudioError`` with a one-line message; ``TypeError`` only
when an argument has the wrong Python type. A failed save leaves the store as it was, nothing is
ever written outside the store root, and on S3 every key stays under the configured prefix.
"""

from __future__ import annotations

import io
import struct
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import example, given
from hypothesis import strategies as st

from callpipe.audio_files import InvalidAudioError
from callpipe.schema import RecordingMetadata
from callpipe.storage import LocalStore, MirroredStore, S3Store, StorageError
from callpipe_tests.fuzz.support import COUNTS, fuzz, hostile_ids, one_line, resolve, snapshot


def _encode(fmt: str, frames: int = 64) -> bytes:
    buffer = io.BytesIO()
    tone = 0.2 * np.sin(np.arange(frames) / 5.0)
    sf.write(buffer, tone, 8000, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


WAV = _encode("WAV")
FLAC = _encode("FLAC")


def _patch(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, min(offset, len(out) - 4), value)
    return bytes(out)


audio_bytes = st.one_of(
    st.just(WAV),
    st.just(FLAC),
    st.just(b""),
    st.binary(max_size=2048),
    st.sampled_from([WAV, FLAC]).flatmap(lambda d: st.integers(0, len(d)).map(lambda k: d[:k])),
    st.builds(  # header fields (sizes, rates, channels) overwritten, e.g. with huge declared sizes
        _patch,
        st.sampled_from([WAV, FLAC]),
        st.integers(0, 60),
        st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFF0]) | st.integers(0, 2**32 - 1),
    ),
    st.tuples(
        st.sampled_from([b"RIFF", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"FORM"]), st.binary(max_size=512)
    ).map(b"".join),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = [*RecordingMetadata.model_fields, "checksum", "duration", "corrected_text", "word_confidences"]
odd_values = st.one_of(
    json_values,
    st.sampled_from(
        [
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2024-02-30T00:00:00Z",
            "2024-01-01T00:00:00",
            "inf",
            "1e400",
            "nan",
            "",
            b"\xff\xfe",
            float("nan"),
            {1, 2},
            object(),
        ]
    ),
)
metadata_values = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=10), odd_values, max_size=5),
    st.builds(lambda v: {"extra": {"k": v}}, odd_values),
    st.sampled_from([[1, 2], "abc", 42, b"{}", [("conversation_id", "c")]]),
)
formats = st.sampled_from(["wav", "flac", "mp3", "", "../x", "WAV"]) | st.text(max_size=10) | st.just(5)


def _wrong_type(audio: Any, metadata: Any, fmt: Any) -> bool:
    return (
        not isinstance(audio, bytes | bytearray | memoryview)
        or not (metadata is None or isinstance(metadata, dict | RecordingMetadata))
        or not isinstance(fmt, str)
    )


def _save_and_check(store: Any, parent: Path, root_of: Any, args: tuple[Any, ...]) -> str:
    """Save, check the contract; returns the outcome's name (for the counters)."""
    audio, conversation_id, metadata, fmt, recording_id = args
    conversation_id = resolve(conversation_id, parent)
    recording_id = resolve(recording_id, parent) if isinstance(recording_id, str) else recording_id
    before = root_of()
    try:
        result = store.save_recording(audio, conversation_id, metadata, fmt, recording_id)
    except (StorageError, InvalidAudioError) as exc:
        one_line(exc)
        assert root_of() == before, f"failed save ({type(exc).__name__}: {exc}) left files behind"
        return type(exc).__name__
    except TypeError as exc:
        assert _wrong_type(audio, metadata, fmt), f"TypeError for well-typed arguments: {exc}"
        one_line(exc)
        assert root_of() == before
        return "TypeError"
    doc = store.get_metadata(result.recording_id)
    assert doc.conversation_id == conversation_id and doc.audio is not None
    assert store.get_recording(result.recording_id) == bytes(audio)
    return "saved"


def _outside_unchanged(parent: Path, root: Path, before: dict[str, tuple[int, int]]) -> None:
    after = snapshot(parent, skip=root)
    assert after == before, f"written outside the store root: {sorted(set(after) ^ set(before))}"


GOOD = {
    "audio": st.sampled_from([WAV, FLAC]),
    "conversation_id": st.from_regex(r"[a-z0-9][a-z0-9-]{0,11}", fullmatch=True),
    "metadata": st.none() | st.just({"direction": "outbound", "extra": {"agent_id": "a-7"}}),
    "format": st.sampled_from(["wav", "flac"]),
    "recording_id": st.none() | st.from_regex(r"r[a-z0-9]{1,12}", fullmatch=True),
}
BAD = {
    "audio": audio_bytes | st.sampled_from(["text", None, 12]),
    "conversation_id": hostile_ids,
    "metadata": metadata_values,
    "format": formats,
    "recording_id": hostile_ids | st.sampled_from([5, b"r1"]),
}


def _args(hostile: tuple[str, ...]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(*((BAD if name in hostile else GOOD)[name] for name in GOOD))


# Each example attacks one argument (or none, or all), so most inputs get past the id checks.
save_args = st.sampled_from([(), *((name,) for name in GOOD), tuple(GOOD)]).flatmap(_args)


@fuzz(150)
@given(args=save_args)
@example(args=(WAV, "../escape", None, "wav", None))
@example(args=(WAV, "c", None, "wav", "{PARENT}/escaped"))
@example(args=(WAV, "c", {"timestamp": "0001-01-01T00:00:00+05:00"}, "wav", None))
@example(args=(WAV, "c", {"schema_version": None}, "wav", None))
@example(args=(WAV, "c", [1, 2], "wav", None))
@example(args=(WAV, "c", {"extra": {"k": b"\xff"}}, "wav", None))
@example(args=(WAV, "c", {"extra": {"k": object()}}, "wav", None))
@example(args=("not bytes", "c", None, "wav", None))
@example(args=(WAV, "c", {"turns": [{"start": float("inf"), "end": 1, "text": "x"}]}, "wav", None))
@example(args=(WAV, "c", {"conversation_id": "other"}, "wav", None))
def test_local_save_never_escapes_the_root(args: tuple[Any, ...]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp)
        (parent / "outside").mkdir()
        (parent / "outside" / "keep.txt").write_text("untouched")
        root = parent / "store"
        before = snapshot(parent, skip=root)
        store = LocalStore(root)
        outcome = _save_and_check(store, parent, lambda: _files(root), args)
        COUNTS[f"save_recording[local] {outcome}"] += 1
        _outside_unchanged(parent, root, before)
        allowed = {"audio", "metadata", "transcripts", "index", ".locks"}
        assert {p.name for p in root.iterdir()} <= allowed if root.exists() else True


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {k: v for k, v in snapshot(root).items() if not k.startswith(".locks")} if root.exists() else {}


def _keys(client: Any, bucket: str) -> dict[str, str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"]: obj["ETag"] for page in pages for obj in page.get("Contents", [])}


@pytest.mark.parametrize("backend", ["s3", "both"])
def test_s3_save_keeps_every_key_under_the_prefix(
    backend: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    prefix = "tenant-a/calls"
    root = tmp_path / "store"
    s3 = S3Store(bucket, prefix, s3_client, cache_dir=tmp_path / "cache")
    store = MirroredStore(LocalStore(root), s3) if backend == "both" else s3
    (tmp_path / "outside").mkdir()
    before = snapshot(tmp_path, skip=root)

    def state() -> tuple[dict[str, str], dict[str, tuple[int, int]]]:
        return _keys(s3_client, bucket), _files(root)

    @fuzz(25)
    @given(args=save_args)
    @example(args=(WAV, "../../escape", None, "wav", None))
    @example(args=(WAV, "c", None, "wav", "/absolute"))
    @example(args=(FLAC, "c", {"processed": True}, "flac", "rec.1"))
    def run(args: tuple[Any, ...]) -> None:
        outcome = _save_and_check(store, tmp_path, state, args)
        COUNTS[f"save_recording[{backend}] {outcome}"] += 1
        stray = [k for k in _keys(s3_client, bucket) if not k.startswith(prefix + "/")]
        assert not stray, f"keys outside the prefix {prefix!r}: {stray}"
        _outside_unchanged(tmp_path, root, before)

    run()
    assert _keys(s3_client, bucket), "no example was saved: the fuzzer never reached S3"


def test_saved_ids_sort_by_time_for_early_years(tmp_path: Path) -> None:
    """Found by fuzzing: year-1 timestamps gave ids like ``10101T...`` (strftime does not pad %Y)."""
    store = LocalStore(tmp_path / "store")
    early = store.save_recording(WAV, "c", {"timestamp": datetime(1, 1, 1, tzinfo=UTC)})
    late = store.save_recording(WAV, "c", {"timestamp": datetime(2024, 1, 1, tzinfo=UTC)})
    assert early.recording_id.startswith("00010101T000000Z-")
    assert early.recording_id < late.recording_id
