"""A real ``callpipe serve`` process on a free loopback port, and raw-socket helpers.

Every test here talks to the server over real sockets: raw ones where the attack is in the
bytes on the wire (a lying ``Content-Length``, a trickle, a half-sent head), httpx and
websockets otherwise. The server's temporary directory (``TMPDIR``, where multipart uploads are
spooled) is a folder of the test, so a test can tell whether an upload reached the disk.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

KEYS = {
    "ingest": "ingest-key-0123456789abcdef",
    "analyst": "analyst-key-0123456789abcdef",
    "admin": "admin-key-0123456789abcdef",
}
SECOND_INGEST = "ingest-two-0123456789abcdef"
UPLOAD_MB = 1
"""The servers here take 1 MB of audio (plus 1 MB of form) so that limits are reached quickly."""


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_size(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def open_files_under(pid: int, folder: Path) -> list[int]:
    """Sizes of the files process ``pid`` holds open under ``folder``, unnamed ones included
    (Python's temporary files are ``O_TMPFILE``: on disk, but in no directory listing)."""
    sizes = []
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith(str(folder)):
                sizes.append(os.stat(fd).st_size)
    return sizes


class Server:
    """``callpipe serve`` in a child process with keys, a store, a state folder and a spool
    folder under ``root``; :meth:`start` waits until it answers."""

    def __init__(self, root: Path, **env: str) -> None:
        self.root = root
        self.port = free_port()
        self.spool = root / "spool"
        self.store = root / "recordings"
        self.audit = root / "audit" / "api.jsonl"
        self.spool.mkdir(parents=True, exist_ok=True)
        keys = ",".join(f"{role}:{key}" for role, key in KEYS.items()) + f",ingest:{SECOND_INGEST}"
        self.env = {
            **os.environ,
            "CALLPIPE_API_KEYS": keys,
            "CALLPIPE_SESSION_SECRET": "attack-tests-session-secret-0123",
            "STORAGE_BACKEND": "local",
            "STORAGE_LOCAL_PATH": str(self.store),
            "CALLPIPE_AUDIT_LOG": str(self.audit),
            "CALLPIPE_STATE_DIR": str(root / "state"),
            "CALLPIPE_ANALYTICS_DB": str(root / "analytics"),
            "CALLPIPE_MAX_UPLOAD_MB": str(UPLOAD_MB),
            "CALLPIPE_BODY_IDLE_SECONDS": "1",
            "CALLPIPE_BODY_TIMEOUT_SECONDS": "3",
            "CALLPIPE_HEADER_TIMEOUT_SECONDS": "2",
            "TMPDIR": str(self.spool),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "callpipe.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"callpipe serve exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/docs", timeout=1)
                return self
            time.sleep(0.2)
        raise RuntimeError("callpipe serve did not answer within 60 s")

    def kill(self) -> None:
        """SIGKILL (a crash: nothing is flushed or cleaned up)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def spooled(self) -> int:
        """Bytes the server has in its temporary folder now, open unnamed files included."""
        assert self.process is not None
        return tree_size(self.spool) + sum(open_files_under(self.process.pid, self.spool))

    def spool_files(self) -> list[int]:
        assert self.process is not None
        return open_files_under(self.process.pid, self.spool)

    def audit_lines(self) -> list[str]:
        return self.audit.read_text().splitlines() if self.audit.exists() else []


@contextlib.contextmanager
def running(root: Path, **env: str) -> Iterator[Server]:
    server = Server(root, **env).start()
    try:
        yield server
    finally:
        server.stop()


class RawConnection:
    """A raw TCP connection whose incoming bytes are read by a thread as they arrive, so an answer
    sent before the server closes (and resets) the connection is never lost."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)  # a read timeout here would look like the server closing
        self.received = bytearray()
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.received += data
        except OSError:
            pass
        self.closed.set()

    def send(self, data: bytes) -> bool:
        """Send ``data``; False when the server has closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def status(self, wait: float) -> int | None:
        """The status code of the first answer within ``wait`` seconds, None if none came."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and b"\r\n" not in self.received:
            if self.closed.is_set():
                break
            time.sleep(0.02)
        head = bytes(self.received).split(b"\r\n", 1)[0]
        return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread
        with contextlib.suppress(OSError):
            self.sock.close()
