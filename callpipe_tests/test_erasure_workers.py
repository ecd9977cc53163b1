"""Two workers (separate processes, separate HOME and cache dirs) run the STT stage on the same S3
recording; an erasure run on one of them leaves no copy of the audio on either host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from callpipe.storage import S3Store, make_s3_client
from callpipe_tests.storage.conftest import make_wav

WORKER = """
import json, sys
from callpipe.stage_list import STAGES, StageModels
from callpipe.storage import get_audio_storage

store = get_audio_storage()
meta = store.get_metadata(sys.argv[1])
# Threshold 1.0: the live transcript is kept, the stage reads the audio for its VAD metrics only.
patch = STAGES["stt"].run(meta, StageModels(retranscribe_threshold=1.0), store)
print(json.dumps({"metrics": patch["conversation_metrics"] is not None}))
"""


def _worker_env(home: Path, endpoint: str, bucket: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(
        HOME=str(home),
        STORAGE_BACKEND="s3",
        S3_BUCKET=bucket,
        S3_PREFIX="calls",
        S3_ENDPOINT_URL=endpoint,
        S3_REGION="us-east-1",
    )
    return env


def _copies(root: Path, audio: bytes, rid: str) -> list[str]:
    """Files under ``root`` named after the recording or holding its audio bytes."""
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and (rid in p.name or audio in p.read_bytes())
    ]


@pytest.mark.slow
def test_no_host_keeps_audio_after_an_erasure_elsewhere(s3_server: str, tmp_path: Path) -> None:
    bucket = f"workers-{uuid.uuid4().hex[:8]}"
    client = make_s3_client(region_name="us-east-1", endpoint_url=s3_server)
    client.create_bucket(Bucket=bucket)
    audio = make_wav(seconds=1.0, seed=11)
    store = S3Store(bucket, "calls", client, cache_dir=tmp_path / "unused")
    rid = store.save_recording(audio, "conv-w", {"transcription": {"text": "hola"}}).recording_id
    homes = [tmp_path / "gpu-worker-1", tmp_path / "gpu-worker-2"]
    for home in homes:
        home.mkdir()
        env = _worker_env(home, s3_server, bucket)
        ran = subprocess.run(
            [sys.executable, "-c", WORKER, rid], env=env, capture_output=True, text=True, timeout=180
        )
        assert ran.returncode == 0, ran.stderr[-2000:]
        assert json.loads(ran.stdout.splitlines()[-1]) == {"metrics": True}
    erased = subprocess.run(
        [sys.executable, "-m", "callpipe.cli", "erase", "--recording-id", rid],
        env=_worker_env(homes[0], s3_server, bucket),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["complete"]
    for home in homes:
        assert _copies(home, audio, rid) == [], f"a copy of the erased audio survived on {home.name}"
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert not [o["Key"] for o in listing if rid in o["Key"]]
