from __future__ import annotations

import hashlib
import json
import multiprocessing
import socket
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from callpipe.stt.models import MANIFEST_NAME, ModelNotFoundError, assemble_bundled_model, locate_model


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model locator tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def test_bundled_model_is_joined_once_and_verified(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("CALLPIPE_MODEL_CACHE", str(tmp_path))
    monkeypatch.delenv("CALLPIPE_WHISPER_MODEL", raising=False)
    model_dir = locate_model()
    assert model_dir == tmp_path / "whisper-base"
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt", MANIFEST_NAME):
        assert (model_dir / name).is_file(), name
    manifest = json.loads((model_dir / MANIFEST_NAME).read_text())
    model_bin = model_dir / "model.bin"
    assert (
        manifest["model.bin"]["size"]
        == model_bin.stat().st_size
        == sum(Path(p).stat().st_size for p in manifest["sources"])
    )
    assert manifest["model.bin"]["sha256"] == _sha256(model_bin)
    assert not list(model_dir.glob(".model.bin.*")), "temp file left behind"

    mtime = model_bin.stat().st_mtime_ns
    # The second call only stats: it neither joins the parts again nor takes the assembly lock
    # (benchmarks/timing_bounds.py prints how long it takes).
    from callpipe.stt import models

    def must_not_run(*args, **kwargs):
        raise AssertionError("the second call assembled the model again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "_join_parts", must_not_run)
        patch.setattr(models, "_locked", must_not_run)
        assert locate_model("base") == model_dir
    assert model_bin.stat().st_mtime_ns == mtime, "second call rewrote model.bin"


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLPIPE_MODEL_CACHE", str(tmp_path))
    model_dir = locate_model("base")
    expected = json.loads((model_dir / MANIFEST_NAME).read_text())["model.bin"]
    with (model_dir / "model.bin").open("r+b") as handle:
        handle.truncate(1000)
    assert locate_model("base") == model_dir
    assert (model_dir / "model.bin").stat().st_size == expected["size"]
    assert _sha256(model_dir / "model.bin") == expected["sha256"]


def _assemble(target: str) -> str:
    return str(assemble_bundled_model(Path(target)))


def test_concurrent_processes_do_not_race(tmp_path):
    target = tmp_path / "whisper-base"
    # ProcessPoolExecutor, not multiprocessing.Pool: Pool.terminate() on exit can deadlock on a
    # worker blocked on the task queue's lock (seen here: a clean run hung for minutes).
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_assemble, [str(target)] * 2))
    assert results == [str(target)] * 2
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    assert _sha256(target / "model.bin") == manifest["model.bin"]["sha256"]
    assert not list(target.glob(".model.bin.*"))


def test_size_name_without_local_copy_fails_without_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("CALLPIPE_MODEL_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError) as caught:
        locate_model("large-v3")
    message = str(caught.value)
    assert str(tmp_path / "whisper-large-v3") in message
    assert "never downloads" in message and "CALLPIPE_WHISPER_MODEL" in message


def test_size_name_resolves_to_local_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLPIPE_MODEL_CACHE", str(tmp_path))
    small = tmp_path / "whisper-small"
    small.mkdir()
    for name in ("model.bin", "config.json"):
        (small / name).write_bytes(b"{}")
    monkeypatch.setenv("CALLPIPE_WHISPER_MODEL", "small")
    assert locate_model() == small


def test_directory_name_is_used_as_is_or_rejected(tmp_path):
    assert locate_model(str(locate_model("base"))) == locate_model("base")
    with pytest.raises(ModelNotFoundError, match="not a CTranslate2 Whisper model directory"):
        locate_model(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        locate_model(str(tmp_path / "missing"))


def test_transcriber_with_unknown_size_fails_clearly(tmp_path, monkeypatch, no_network):
    from callpipe.stt.transcriber import Transcriber

    monkeypatch.setenv("CALLPIPE_MODEL_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="whisper-small"):
        Transcriber(model="small")
