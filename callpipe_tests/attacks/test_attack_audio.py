"""Issue 17 item 3: audio bombs (1 Hz / 2,000,000 frames, 1000 channels, 2 GHz) are refused at ingest,
decoding for STT is bounded, and one bad recording fails alone, with its lease released."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from callpipe.audio_files import probe_audio
from callpipe.cli import main
from callpipe.limits import LimitExceededError
from callpipe.storage import LocalStore
from callpipe.stt.audio_input import decode_channels
from callpipe.stt.errors import InvalidAudioError
from callpipe_tests.attacks.wavs import one_hertz_wav, pcm_wav, tone_wav

BOMBS = {
    "1 Hz, 2,000,000 frames": (lambda: pcm_wav(1, 1, 2_000_000, fill=1000), "CALLPIPE_MIN_SAMPLE_RATE"),
    "1000 channels": (lambda: pcm_wav(16000, 1000, 50), "CALLPIPE_MAX_CHANNELS"),
    "2 GHz": (lambda: pcm_wav(2_000_000_000, 1, 100), "CALLPIPE_MAX_SAMPLE_RATE"),
}


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "recordings"
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(root))
    return root


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_cli_record_refuses_audio_bombs_and_stores_nothing(
    name: str, local_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, variable = BOMBS[name]
    wav = tmp_path / "call.wav"
    wav.write_bytes(make())
    assert main(["record", str(wav), "--conversation-id", "c1", "--transcript", "hola"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and variable in err, err
    assert not list(local_store.rglob("*.wav"))


def test_header_over_the_call_length_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPIPE_MAX_CALL_MINUTES", "1")
    with pytest.raises(LimitExceededError, match="CALLPIPE_MAX_CALL_MINUTES"):
        probe_audio(tone_wav(8000, 61))
    assert probe_audio(tone_wav(8000, 59)).duration_seconds == pytest.approx(59)


def test_stt_decode_stops_at_the_call_length_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An already stored file longer than the limit (stored before the limit was lowered) is refused
    while it is decoded, frame by frame: the resampled array never grows past the limit."""
    path = tmp_path / "long.wav"
    path.write_bytes(tone_wav(8000, 12))
    monkeypatch.setenv("CALLPIPE_MAX_CALL_MINUTES", "0.1")  # 6 s
    with pytest.raises(InvalidAudioError, match="CALLPIPE_MAX_CALL_MINUTES"):
        decode_channels(path)
    monkeypatch.setenv("CALLPIPE_MAX_CALL_MINUTES", "1")
    assert decode_channels(path).shape == (1, 12 * 16000)


_BOUNDED = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # 3 GiB: main reached 7.5 GB RSS
from callpipe.stt.audio_input import decode_channels
try:
    decode_channels(sys.argv[1])
    print(json.dumps({"result": "decoded"}))
except BaseException as exc:
    print(json.dumps({"result": type(exc).__name__, "message": str(exc)[:300]}))
"""


def test_stt_decode_of_the_one_hertz_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """Run in a child process capped at 3 GiB of address space: resampling 2,000,000 s to 16 kHz
    (128 GB of float32) ends in MemoryError there; the bounded decoder refuses from the header."""
    wav = one_hertz_wav(tmp_path / "bomb.wav")
    out = subprocess.run(
        [sys.executable, "-c", _BOUNDED, str(wav)], capture_output=True, text=True, timeout=300, check=False
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["result"] == "InvalidAudioError", result
    assert "CALLPIPE_MIN_SAMPLE_RATE" in result["message"]


_ISOLATION = """
import json, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from callpipe.stage_list import STAGES, StageModels, StageSpec
from callpipe.stage_runner import PipelineSettings, claim, run_stage
from callpipe.storage import LocalStore
from callpipe.stt.audio_input import decode_channels
from callpipe_tests.faults.calls import seed_day

store = LocalStore(Path(sys.argv[1]))
ids = seed_day(store, "2026-03-15", 3)
bomb, good = sys.argv[2], sys.argv[3]
settings = PipelineSettings(lease_seconds=60, max_concurrent=3)
for rid in ids:
    assert claim(store, rid, "run-a", settings)

def stt(meta, services, store):  # the audio path of the STT stage, on one bad file
    decode_channels(bomb if meta.recording_id == ids[1] else good)
    return {}

STAGES["stt"] = StageSpec("test", lambda meta: meta.recording_id, stt)
report = run_stage(store, "stt", ids, StageModels(), owner="run-a", settings=settings)
docs = {rid: store.get_metadata(rid).status for rid in ids}
print(json.dumps({
    "ran": sorted(report.ran), "failed": report.failed, "bad": ids[1],
    "status": {rid: [s.status.value, s.lease_owner, s.error] for rid, s in docs.items()},
}))
"""


def test_one_bomb_in_a_chunk_fails_alone_and_releases_its_lease(tmp_path: Path) -> None:
    """Three leased recordings through ``run_stage`` (real store, real decoder): the one whose audio
    is the 1 Hz bomb is marked failed with a reason naming the limit, its lease released; the other
    two run. In a child process capped at 4 GiB, so that an unbounded decoder cannot take the host."""
    one_hertz_wav(tmp_path / "bomb.wav")
    (tmp_path / "good.wav").write_bytes(tone_wav(16000, 1))
    files = [str(tmp_path / name) for name in ("rec", "bomb.wav", "good.wav")]
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_ISOLATION), *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    bad = result["bad"]
    assert list(result["failed"]) == [bad]
    assert "CALLPIPE_MIN_SAMPLE_RATE" in result["failed"][bad]
    assert len(result["ran"]) == 2 and bad not in result["ran"]
    status, owner, error = result["status"][bad]
    assert status == "failed" and owner is None and "CALLPIPE_MIN_SAMPLE_RATE" in error


def test_the_store_refuses_what_the_cli_refuses(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "rec")
    with pytest.raises(LimitExceededError, match="CALLPIPE_MAX_CHANNELS"):
        store.save_recording(pcm_wav(8000, 9, 100), "c1")
    assert store.list_recordings().items == []
