"""``callpipe record`` input found wrong by hand: long transcripts, left-over word confidences, and
errors that name the confidences file; a transcript is stored once in the metadata JSON."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callpipe.cli import MAX_TRANSCRIPT_BYTES, main
from callpipe.recorder import Recorder
from callpipe.schema import RecordingMetadata
from callpipe.storage import LocalStore

# About 260 kB: over Linux's limit on one command-line argument (MAX_ARG_STRLEN, 128 kB).
LONG = " ".join(f"frase{i} de la llamada" for i in range(13_000))


@pytest.fixture()
def store_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "recordings"
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(root))
    monkeypatch.setenv("PII_REDACTION", "mask")
    return root


@pytest.fixture()
def audio(tmp_path: Path) -> Path:
    path = tmp_path / "call.wav"
    sf.write(path, 0.2 * np.sin(np.arange(8000) / 5.0), 8000, subtype="PCM_16")
    return path


def _record(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code = main(["record", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


def _stored(root: Path) -> list[Path]:
    return sorted((root / "metadata").rglob("*.json")) if root.exists() else []


def test_argument_limit_is_real_and_a_transcript_file_passes_it(
    store_root: Path, audio: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "callpipe.cli", "record", str(audio), "--conversation-id", "c1"]
    with pytest.raises(OSError, match="Argument list too long"):
        subprocess.run([*command, "--transcript", LONG], env=os.environ.copy(), check=False)
    transcript = tmp_path / "live.txt"
    transcript.write_text(LONG + "\n", encoding="utf-8")
    for how in (["--transcript-file", str(transcript)], ["--transcript-file", "-"]):
        ran = subprocess.run(
            [*command, *how],
            input=transcript.read_bytes() if how[-1] == "-" else None,
            capture_output=True,
            env=os.environ.copy(),
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        path = Path(json.loads(ran.stdout)["metadata_path"])
        assert RecordingMetadata.model_validate_json(path.read_bytes()).transcription.text == LONG


def test_the_transcript_is_stored_once(
    store_root: Path, audio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = _record([str(audio), "--conversation-id", "c1", "--transcript", LONG[:5000]], capsys)
    assert code == 0
    raw = Path(result["metadata_path"]).read_text(encoding="utf-8")
    assert raw.count("frase99 de la llamada") == 1  # was 3: text, corrected_text, redacted_text
    doc = RecordingMetadata.model_validate_json(raw)
    t = doc.transcription
    assert t.text == t.corrected_text == t.redacted_text == LONG[:5000]
    assert doc.model_dump()["transcription"]["corrected_text"] == LONG[:5000]  # API dumps stay whole


def test_older_documents_with_copies_still_load(
    store_root: Path, audio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = _record([str(audio), "--conversation-id", "c1", "--transcript", "hola mundo"], capsys)
    assert code == 0
    path = Path(result["metadata_path"])
    old = json.loads(path.read_text(encoding="utf-8"))
    copies = old["transcription"].pop("same_as_text")
    for name in copies:
        old["transcription"][name] = "hola mundo"
    path.write_text(json.dumps(old), encoding="utf-8")  # as versions before compaction wrote it
    doc = LocalStore(store_root).get_metadata(result["recording_id"])
    assert doc.transcription.corrected_text == doc.transcription.redacted_text == "hola mundo"
    differing = doc.transcription.model_copy(update={"corrected_text": "hola mundo corregido"})
    compact = json.loads(
        doc.model_copy(update={"transcription": differing}).model_dump_json(context={"compact": True})
    )
    assert compact["transcription"]["corrected_text"] == "hola mundo corregido"
    assert compact["transcription"]["same_as_text"] == ["redacted_text"]


def test_transcript_input_errors_are_one_line(
    store_root: Path,
    audio: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (MAX_TRANSCRIPT_BYTES + 1))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("llamó".encode("latin-1"))
    cases = [
        (["--transcript-file", str(big)], f"transcript file {big} is over the 1,000,000 byte limit"),
        (["--transcript-file", str(latin1)], f"transcript file {latin1} is not UTF-8 text"),
        (["--transcript-file", str(tmp_path / "none.txt")], "cannot read transcript file"),
    ]
    for args, message in cases:
        code, _, err = _record([str(audio), "--conversation-id", "c1", *args], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"b" * (MAX_TRANSCRIPT_BYTES + 5))))
    code, _, err = _record([str(audio), "--conversation-id", "c1", "--transcript-file", "-"], capsys)
    assert code == 2 and "transcript from stdin is over" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["record", str(audio), "--conversation-id", "c1", "--transcript", "x", "--transcript-file", "-"])
    assert exit_info.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert _stored(store_root) == []  # nothing was recorded


def test_left_over_confidences_are_reported_naming_the_file(
    store_root: Path, audio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words = tmp_path / "words.json"
    items = [("hola", 0.9), ("mundo", 0.8), ("sobra", 0.7), ("otra", 0.6)]
    words.write_text(json.dumps([{"word": w, "confidence": c} for w, c in items]))
    args = [
        str(audio),
        "--conversation-id",
        "c1",
        "--transcript",
        "hola mundo",
        "--word-confidences",
        str(words),
    ]
    code, result, err = _record(args, capsys)
    assert code == 0
    warning = "4 word confidences for 2 words: 2 were not used"
    assert err == f"callpipe: warning: word confidences file {words}: {warning}\n"
    assert result["online"]["confidence_warning"].startswith("4 word confidences for 2 words")
    stored = RecordingMetadata.model_validate_json(Path(result["metadata_path"]).read_bytes())
    assert [w.word for w in stored.transcription.word_confidences] == ["hola", "mundo"]


def test_bad_confidence_values_name_the_file(
    store_root: Path, audio: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    words = tmp_path / "conf.json"
    words.write_text(json.dumps({"word_confidences": [{"word": "hola", "confidence": "alta"}]}))
    args = [str(audio), "--conversation-id", "c1", "--transcript", "hola", "--word-confidences", str(words)]
    code, _, err = _record(args, capsys)
    assert (
        code == 2 and err.startswith(f"callpipe: error: word confidences file {words}: ") and "'alta'" in err
    )
    assert _stored(store_root) == []


def test_the_library_warns_about_bare_numbers_of_another_count(
    tmp_path: Path, audio: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(LocalStore(tmp_path / "lib"))
    with caplog.at_level(logging.WARNING, logger="callpipe.recorder.recorder"):
        result = recorder.record_sync(
            audio.read_bytes(), "c1", transcription="hola mundo", word_confidences=[0.9, 0.8, 0.7]
        )
    assert result.online["confidence_warning"] == (
        "3 word confidences for 2 words: items without their word only match by position, so none was used"
    )
    assert "conversation c1: 3 word confidences for 2 words" in caplog.text
    same = recorder.record_sync(
        audio.read_bytes(), "c1", transcription="hola mundo", word_confidences=[0.9, 0.8]
    )
    assert "confidence_warning" not in same.online
