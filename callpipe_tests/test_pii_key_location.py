"""The PII key does not depend on the working directory: erase by caller from anywhere finds calls."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callpipe import pii

CALLER = "+34 612 34 56 78"


def _env(store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (pii.KEY_ENV, pii.KEY_FILE_ENV)}
    env.update(STORAGE_BACKEND="local", STORAGE_LOCAL_PATH=str(store), PII_REDACTION="mask", **extra)
    return env


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callpipe.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A store, two unrelated working directories and a short WAV file."""
    store, first, second = tmp_path / "store", tmp_path / "ops-a", tmp_path / "ops-b"
    first.mkdir()
    second.mkdir()
    audio = tmp_path / "call.wav"
    buffer = io.BytesIO()
    sf.write(buffer, 0.2 * np.sin(np.arange(8000) / 5.0), 8000, format="WAV", subtype="PCM_16")
    audio.write_bytes(buffer.getvalue())
    return store, first, second, audio


def _record(audio: Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = ["record", str(audio), "--conversation-id", "conv-1", "--transcript", "hola"]
    return _cli([*args, "--caller-phone", CALLER], cwd, env)


def test_missing_key_is_a_clear_error_and_nothing_is_stored(layout) -> None:
    store, first, second, audio = layout
    recorded = _record(audio, first, _env(store))
    assert recorded.returncode == 2, recorded.stdout
    assert recorded.stderr.count("\n") == 1 and pii.KEY_ENV in recorded.stderr, recorded.stderr
    assert "Traceback" not in recorded.stderr
    assert not (first / "data").exists(), "a key was made in the working directory"
    erased = _cli(["erase", "--caller-phone", CALLER], second, _env(store))
    assert erased.returncode == 2 and pii.KEY_ENV in erased.stderr
    assert not (second / "data").exists()


def test_relative_key_file_is_refused(layout) -> None:
    store, first, _, audio = layout
    recorded = _record(audio, first, _env(store, **{pii.KEY_FILE_ENV: "keys/pii.key"}))
    assert recorded.returncode == 2 and "absolute" in recorded.stderr, recorded.stderr
    assert not (first / "keys").exists()


@pytest.mark.parametrize("how", ["key", "key-file"])
def test_erase_by_caller_from_another_directory(layout, tmp_path: Path, how: str) -> None:
    store, first, second, audio = layout
    setting = (
        {pii.KEY_ENV: "another-directory-key-0123456789"}
        if how == "key"
        else {pii.KEY_FILE_ENV: str(tmp_path / "secrets" / "pii.key")}
    )
    recorded = _record(audio, first, _env(store, **setting))
    assert recorded.returncode == 0, recorded.stderr
    recording_id = json.loads(recorded.stdout)["recording_id"]
    erased = _cli(["erase", "--caller-phone", CALLER], second, _env(store, **setting))
    assert erased.returncode == 0, erased.stderr
    receipt = json.loads(erased.stdout)
    assert [r["recording_id"] for r in receipt["recordings"]] == [recording_id]
    assert not (first / "data").exists() and not (second / "data").exists()


def test_the_demo_keeps_its_key_beside_its_store_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callpipe.demo_command import apply_defaults

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(pii.KEY_ENV, raising=False)
    monkeypatch.delenv(pii.KEY_FILE_ENV, raising=False)
    for name in ("STORAGE_BACKEND", "STORAGE_LOCAL_PATH"):
        monkeypatch.delenv(name, raising=False)
    apply_defaults()
    assert os.environ[pii.KEY_FILE_ENV] == str(tmp_path / "data" / "pii.key")
    pii._KEYS.clear()
    key = pii.phone_key("+34612345678")
    monkeypatch.chdir(tmp_path / "..")  # the run's subprocesses may start elsewhere: same key
    pii._KEYS.clear()
    assert pii.phone_key("+34612345678") == key
    monkeypatch.setenv(pii.KEY_ENV, "set-by-the-user-0123456789")
    monkeypatch.delenv(pii.KEY_FILE_ENV)
    apply_defaults()
    assert pii.KEY_FILE_ENV not in os.environ  # a configured key wins
