"""Issue 17 items 2, 10 and 12: word alignment linear in the input and run once, documented limits
on words and confidence items, recording work off the event loop, one set of validated limits for
CLI and API with the format decided by the bytes, and a README example that runs as written."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from callpipe.cli import main
from callpipe.recorder import Recorder
from callpipe.recorder import online as online_module
from callpipe.service.ingest import IngestError, ingest, parse_fields
from callpipe.settings import Settings, SettingsError
from callpipe.storage import LocalStore
from callpipe_tests.storage.conftest import make_wav

REPO = Path(__file__).resolve().parents[2]


class _Counted(str):
    """A word whose comparisons are counted (the operation count of an alignment)."""

    count = 0

    def __eq__(self, other: object) -> bool:
        _Counted.count += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def _comparisons(words: int, items: int) -> int:
    """Comparisons made aligning ``words`` transcript words to ``items`` word items that differ
    from them every few words (what a live engine that splits words its own way sends)."""
    a = [_Counted(f"w{i % 50}") for i in range(words)]
    b = [_Counted(f"w{(2 * i) % 50}" if i % 3 else "x") for i in range(items)]
    _Counted.count = 0
    online_module.match_words(a, b)
    return _Counted.count


def test_alignment_of_16000_words_and_8000_items_is_linear() -> None:
    small, large = _comparisons(8000, 4000), _comparisons(16000, 8000)
    window = online_module.ALIGN_WINDOW
    assert large <= 4 * window * window * (16000 + 8000)
    assert large <= 2.2 * small  # twice the input, about twice the work (difflib: about four times)


def test_one_alignment_per_recorded_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = online_module.match_words

    def counted(a: list[str], b: list[str], window: int = online_module.ALIGN_WINDOW) -> list[int | None]:
        calls.append(len(a))
        return real(a, b, window)

    monkeypatch.setattr(online_module, "match_words", counted)
    text = " ".join(["necesito revisar el salgo de mi cuesta"] * 2000)  # 14,000 words
    items = [{"word": w, "confidence": 0.4} for w in text.split()[:7000]]
    result = Recorder(LocalStore(tmp_path / "rec")).record_sync(
        make_wav(), "c1", transcription=text, word_confidences=items
    )
    assert calls == [14000]
    assert result.online["confidence_alignment"] == "words"
    assert len(result.save.metadata.transcription.word_confidences) == 7000


def test_words_and_items_past_the_limits_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "rec"))
    monkeypatch.setenv("CALLPIPE_MAX_TRANSCRIPT_WORDS", "1000")
    monkeypatch.setenv("CALLPIPE_MAX_WORD_CONFIDENCES", "500")
    wav = tmp_path / "call.wav"
    wav.write_bytes(make_wav())
    text = " ".join(["hola"] * 1001)
    assert main(["record", str(wav), "--conversation-id", "c1", "--transcript", text]) == 2
    assert "CALLPIPE_MAX_TRANSCRIPT_WORDS" in capsys.readouterr().err
    words = tmp_path / "words.json"
    words.write_text(json.dumps([{"word": "hola", "confidence": 0.9}] * 501))
    args = [
        "record",
        str(wav),
        "--conversation-id",
        "c1",
        "--transcript",
        "hola",
        "--word-confidences",
        str(words),
    ]
    assert main(args) == 2
    assert "CALLPIPE_MAX_WORD_CONFIDENCES" in capsys.readouterr().err
    request = parse_fields({"conversation_id": "c1", "transcript": text})
    with pytest.raises(IngestError) as refused:
        asyncio.run(ingest(Recorder(LocalStore(tmp_path / "rec")), make_wav(), request))
    assert refused.value.status == 422 and "CALLPIPE_MAX_TRANSCRIPT_WORDS" in refused.value.message
    assert not list((tmp_path / "rec").rglob("*.wav"))


def test_the_api_records_in_a_worker_thread(tmp_path: Path) -> None:
    """Structural: the correction (alignment included) runs on a thread other than the event loop's,
    so /health is answered while a long transcript is worked on."""
    recorder = Recorder(LocalStore(tmp_path / "rec"))
    seen: dict[str, int] = {}
    real = recorder.pipeline.correct

    def spy(*args: object, **kwargs: object) -> dict[str, object]:
        seen["thread"] = threading.get_ident()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    recorder.pipeline = type("Spy", (), {"correct": staticmethod(spy), "process_online": None})()

    async def call() -> int:
        await ingest(recorder, make_wav(), parse_fields({"conversation_id": "c1", "transcript": "hola"}))
        return threading.get_ident()

    loop_thread = asyncio.run(call())
    assert seen["thread"] != loop_thread


@pytest.mark.parametrize("value", ["-1", "0", "999999"])
def test_an_upload_limit_out_of_range_is_refused_at_start(
    value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SettingsError, match="CALLPIPE_MAX_UPLOAD_MB"):
        Settings.from_env({"CALLPIPE_MAX_UPLOAD_MB": value})
    monkeypatch.setenv("CALLPIPE_MAX_UPLOAD_MB", value)
    assert main(["stats"]) == 2
    assert "CALLPIPE_MAX_UPLOAD_MB" in capsys.readouterr().err


def test_the_cli_refuses_what_the_api_refuses_by_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "rec"))
    monkeypatch.setenv("CALLPIPE_MAX_UPLOAD_MB", "1")
    wav = tmp_path / "long.wav"
    wav.write_bytes(make_wav(seconds=70, rate=8000))  # 1.1 MB
    assert main(["record", str(wav), "--conversation-id", "c1"]) == 2
    assert "CALLPIPE_MAX_UPLOAD_MB" in capsys.readouterr().err
    assert not list((tmp_path / "rec").rglob("*.wav"))


@pytest.mark.parametrize("name", ["call.txt", "call.mp3", "../../../etc/passwd", "call"])
def test_the_bytes_decide_the_format_and_no_name_is_echoed(name: str, tmp_path: Path) -> None:
    request = parse_fields({"conversation_id": "c1"}, filename=name)
    result = asyncio.run(ingest(Recorder(LocalStore(tmp_path / "rec")), make_wav(), request))
    assert result["local_path"].endswith(".wav")
    not_audio = parse_fields({"conversation_id": "c2"}, filename=name)
    with pytest.raises(IngestError) as refused:
        asyncio.run(ingest(Recorder(LocalStore(tmp_path / "rec")), b"not audio " * 100, not_audio))
    assert (
        refused.value.status == 422
        and "passw" not in refused.value.message
        and "/etc" not in refused.value.message
    )


def _readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    key = re.search(r"^export CALLPIPE_PII_KEY_FILE=.*$", text, re.M)
    record = re.search(r"^callpipe record (?:.*\\\n)*.*$", text, re.M)
    assert key and record, "the README's first `callpipe record` example is missing"
    return key.group(0) + "\n" + record.group(0)


def test_the_readme_record_example_runs_as_written(tmp_path: Path) -> None:
    """In a copy of what `make demo` leaves (docs/examples, no CALLPIPE_PII_KEY), the README's first
    `callpipe record` lines run and correct both confusions."""
    shutil.copytree(REPO / "docs" / "examples", tmp_path / "docs" / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLPIPE_PII", "STORAGE_", "PII_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    out = subprocess.run(
        ["bash", "-e", "-c", _readme_example()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    fixed = {(c["original"], c["corrected"]) for c in result["online"]["corrections_made"]}
    assert fixed == {("salgo", "saldo"), ("cuesta", "cuenta")}
    assert (tmp_path / "data" / "recordings").is_dir()


def test_errors_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "rec"))
    monkeypatch.delenv("CALLPIPE_PII_KEY", raising=False)
    monkeypatch.delenv("CALLPIPE_PII_KEY_FILE", raising=False)
    wav = tmp_path / "call.wav"
    wav.write_bytes(make_wav())
    args = ["record", str(wav), "--conversation-id", "c1", "--caller-phone", "+34 612 34 56 78"]
    assert main(args) == 2
    assert "CALLPIPE_PII_KEY_FILE=$PWD/data/pii.key" in capsys.readouterr().err
    monkeypatch.setenv("CALLPIPE_PII_KEY", "callpipe-tests-only-key-not-secret")
    assert main(["record", str(wav), "--conversation-id", "c1", "--transcript", "el salgo de mi cuesta"]) == 0
    err = capsys.readouterr().err
    assert "--word-confidences" in err and "nothing is corrected" in err
