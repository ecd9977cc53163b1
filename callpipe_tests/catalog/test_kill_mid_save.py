"""A save killed with SIGKILL after its audio and before its document is swept on the next open:
no files, no markers, no row, nothing listed or counted. A save whose files were both written is
completed instead."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from callpipe.catalog.catalog_table import SAVING
from callpipe.storage import StorageSettings, build_store
from callpipe_tests.storage.conftest import make_wav

_SAVER = """
import sys
from callpipe.storage import StorageSettings, build_store
store = build_store(StorageSettings(local_path=sys.argv[1], catalog="sqlite"))
store.save_recording(open(sys.argv[2], "rb").read(), "conv-k", {"recording_id": "rec-killed"},
                     recording_id="rec-killed")
"""


def _wait_for(path: Path, proc: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "saver exited"
        assert time.monotonic() < deadline, "saver never reached save:audio"
        time.sleep(0.05)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "state" not in p.parts)


def test_kill_9_mid_save_is_swept_on_next_open(tmp_path: Path) -> None:
    root, wav, ready = tmp_path / "store", tmp_path / "call.wav", tmp_path / "ready"
    wav.write_bytes(make_wav())
    env = {**os.environ, "CALLPIPE_FAULT_PARK": "save:audio", "CALLPIPE_FAULT_READY": str(ready)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVER, str(root), str(wav)], env=env, stderr=subprocess.PIPE
    )
    try:
        _wait_for(ready, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any(name.startswith("audio/") for name in _files(root)), "the kill left no audio: nothing tested"
    settings = StorageSettings(local_path=str(root), catalog="sqlite")
    from callpipe.catalog import open_catalog

    catalog = open_catalog(settings)
    assert catalog is not None and catalog.get("rec-killed").save_state == SAVING  # type: ignore[union-attr]
    store = build_store(settings)  # the next start
    assert catalog.get("rec-killed") is None
    assert _files(root) == []
    assert store.list_recordings().items == []
    stats = store.get_storage_stats()
    assert (stats["recordings"], stats["processed"], stats["pending"]) == (0, 0, 0)
    store.save_recording(make_wav(), "conv-k", {"recording_id": "rec-killed"}, recording_id="rec-killed")
    assert [r.recording_id for r in store.list_recordings(processed=False).items] == ["rec-killed"]


def test_interrupted_save_with_both_files_is_completed(tmp_path: Path) -> None:
    settings = StorageSettings(local_path=str(tmp_path / "store"), catalog="sqlite")
    store = build_store(settings)
    store.save_recording(make_wav(), "conv-c", {"recording_id": "rec-done"}, recording_id="rec-done")
    # as if the process died between the document write and the 'saved' mark, owner long gone
    gone = f"{socket.gethostname()}:999999999:0"  # a pid of this host that does not run
    store.catalog.mark("rec-done", save_state=SAVING, save_owner=gone)  # type: ignore[attr-defined]
    assert store.list_recordings().items == []  # half-saved is never listed
    reopened = build_store(settings)
    assert [r.recording_id for r in reopened.list_recordings(processed=False).items] == ["rec-done"]
    assert reopened.get_recording("rec-done") == make_wav()
