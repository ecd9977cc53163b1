"""Run inside ``unshare --user --map-root-user --mount``: a store on a 1 MiB tmpfs private to this
namespace, one recording, the disk filled up, then ``callpipe reprocess`` on it (a metadata write).

Prints one JSON object: the command's exit code and stderr, whether the metadata bytes stayed the
same, the temp files left and whether the document still parses.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

from callpipe.storage import LocalStore
from callpipe_tests.faults.calls import seed_day

if __name__ == "__main__":
    disk = Path(sys.argv[1])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    store = LocalStore(disk / "recordings")
    [rid] = seed_day(store, "2026-03-12", 1)
    [doc] = (disk / "recordings" / "metadata").rglob("*.json")
    before = doc.read_bytes()
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    env = {
        **os.environ,
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(disk / "recordings"),
        "CALLPIPE_CATALOG": "off",  # a new catalog on a full disk would fail first: the document's write here
    }
    cli = subprocess.run(
        [sys.executable, "-m", "callpipe.cli", "reprocess", rid], env=env, capture_output=True, text=True
    )
    after = doc.read_bytes()
    result = {
        "rc": cli.returncode,
        "stderr": cli.stderr,
        "unchanged": after == before,
        "temp_files": [str(p) for p in disk.rglob(".*.tmp")],
        "parses": store.get_metadata(rid).recording_id == rid,
    }
    print(json.dumps(result))
