"""A metadata write that the operating system refuses: the old document stays, the error is clear.

Two real OS-level failures: a full filesystem (ENOSPC, a 1 MiB tmpfs in a private mount
namespace) and the file-size limit (EFBIG, ``RLIMIT_FSIZE`` on the writing process).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from callpipe.storage import LocalStore, StorageSettings, build_store
from callpipe_tests.faults.calls import seed_day
from callpipe_tests.faults.conftest import temp_files

REPO = Path(__file__).resolve().parents[2]


def test_full_filesystem_keeps_the_old_metadata(tmp_path: Path) -> None:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs util-linux unshare and mount")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.decode().strip()}")
    disk = tmp_path / "disk"
    disk.mkdir()
    child = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            sys.executable,
            "-m",
            "callpipe_tests.faults.full_disk_child",
            str(disk),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["rc"] == 2  # a user-facing error, not a traceback
    [line] = result["stderr"].strip().splitlines()
    assert line.startswith("callpipe: error: cannot write ") and line.endswith(
        "No space left on device (ENOSPC)"
    )
    assert result["unchanged"] and result["parses"] and result["temp_files"] == []


@pytest.mark.parametrize("catalog", ["off", "sqlite"])
def test_file_size_limit_keeps_the_old_metadata(tmp_path: Path, catalog: str) -> None:
    """With the catalog on (filled by the saves before) or off, the document's write is what the
    limit refuses: one line, exit 2, the document unchanged."""
    root = tmp_path / "recordings"
    store = build_store(StorageSettings(local_path=str(root), catalog=catalog))  # type: ignore[arg-type]
    [rid] = seed_day(store, "2026-03-12", 1)  # type: ignore[arg-type]
    store = LocalStore(root)
    [doc] = (store.root / "metadata").rglob("*.json")
    before = doc.read_bytes()
    limit = len(before) // 2  # index entries fit, the metadata document does not

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {
        **os.environ,
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(store.root),
        "CALLPIPE_CATALOG": catalog,
    }
    cli = subprocess.run(
        [sys.executable, "-m", "callpipe.cli", "reprocess", rid],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=limited,
        timeout=120,
    )
    assert cli.returncode == 2
    [line] = cli.stderr.strip().splitlines()
    assert line == f"callpipe: error: cannot write {doc}: File too large (EFBIG)"
    assert doc.read_bytes() == before
    assert temp_files(store.root) == []
    meta = store.get_metadata(rid)
    assert not meta.status.reprocess_requested and meta.revision == 0
