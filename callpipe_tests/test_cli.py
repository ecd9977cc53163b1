"""The command line: JSON on stdout, user mistakes as exit code 2 with one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callpipe.cli import main
from callpipe.demo_calls import load_demo_calls


@pytest.fixture()
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "recordings"
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(root))
    return root


@pytest.fixture(scope="module")
def call_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "saldo.flac"
    path.write_bytes(next(c for c in load_demo_calls() if c.call_id == "saldo").audio)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_record_show_stats(
    store_env: Path, call_audio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words = tmp_path / "words.json"
    text = "necesito revisar el salgo de mi cuesta"
    confidences = [0.95, 0.9, 0.97, 0.3, 0.96, 0.94, 0.35]
    words.write_text(
        json.dumps([{"word": w, "confidence": c} for w, c in zip(text.split(), confidences, strict=True)])
    )
    code, out, _ = _run(
        [
            "record",
            str(call_audio),
            "--conversation-id",
            "conv-1",
            "--transcript",
            text,
            "--word-confidences",
            str(words),
            "--agent-id",
            "a-7",
        ],
        capsys,
    )
    assert code == 0
    saved = json.loads(out)
    assert saved["online"]["corrected_text"] == "necesito revisar el saldo de mi cuenta"
    assert {c["method"] for c in saved["online"]["corrections_made"]} == {"fast_exact"}
    assert Path(saved["local_path"]).is_file()

    code, out, _ = _run(["show", saved["recording_id"]], capsys)
    assert code == 0
    meta = json.loads(out)
    assert meta["processed"] is False
    assert meta["status"]["status"] == "pending"
    assert meta["extra"]["agent_id"] == "a-7"
    assert meta["audio"]["format"] == "flac" and meta["audio"]["channels"] == 2
    assert meta["transcription"]["corrected_text"].endswith("saldo de mi cuenta")
    assert len(meta["transcription"]["word_confidences"]) == 7

    code, out, _ = _run(["stats"], capsys)
    stats = json.loads(out)
    assert code == 0 and stats["recordings"] == 1 and stats["pending"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "../etc"], "recording_id"),
        (["show", "no-such-recording"], "not found"),
        (["sync"], "STORAGE_BACKEND=both"),
        (["record", "/no/such/file.wav", "--conversation-id", "c"], "cannot read audio file"),
        (["reprocess"], "RECORDING_ID or --since"),
        (["batch", "--mode", "single"], "--recording-id"),
    ],
)
def test_user_mistakes_exit_2(
    store_env: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_not_audio_and_unsafe_id_exit_2(
    store_env: Path, call_audio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 50)
    code, _, err = _run(["record", str(junk), "--conversation-id", "c1"], capsys)
    assert code == 2 and "audio" in err.lower()
    code, _, err = _run(["record", str(call_audio), "--conversation-id", "../../escape"], capsys)
    assert code == 2 and "conversation_id" in err
    broken = tmp_path / "words.json"
    broken.write_text('[{"word": "hola", "confidence": 0.9')
    code, _, err = _run(
        ["record", str(call_audio), "--conversation-id", "c1", "--word-confidences", str(broken)], capsys
    )
    assert code == 2 and "not valid JSON" in err
    assert not any(store_env.rglob("*.json")) if store_env.exists() else True


def test_subprocess_never_prints_a_traceback(store_env: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(os.urandom(4096))
    result = subprocess.run(
        [sys.executable, "-m", "callpipe.cli", "record", str(junk), "--conversation-id", "c1"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("callpipe: error:")
