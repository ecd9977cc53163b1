"""Issue 17 items 8 and 11: an S3 endpoint that answers a bare 404 to PUT (a real loopback HTTP
server), an S3 outage, and ``callpipe sync``'s output and exit code."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from callpipe.cli import main
from callpipe.storage import make_s3_client
from callpipe_tests.storage.conftest import make_wav


class _Bare404(BaseHTTPRequestHandler):
    """Answers every request with a bare 404 (no XML body), as a misrouted proxy does."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_GET = do_HEAD = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bare_404() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bare404)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _dead_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed when the block ends: refused


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str, endpoint: str, bucket: str) -> Path:
    root = tmp_path / "recordings"
    for name, value in {
        "STORAGE_BACKEND": backend,
        "STORAGE_LOCAL_PATH": str(root),
        "STORAGE_CACHE_DIR": str(tmp_path / "cache"),
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": endpoint,
        "S3_REGION": "us-east-1",
        "S3_MAX_ATTEMPTS": "1",
        "S3_CONNECT_TIMEOUT": "2",
        "S3_READ_TIMEOUT": "2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    return root


def _record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    wav = tmp_path / "call.wav"
    wav.write_bytes(make_wav())
    code = main(["record", str(wav), "--conversation-id", "c1", "--transcript", "hola"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_both_keeps_the_call_locally_when_s3_answers_bare_404_to_put(
    bare_404: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _env(monkeypatch, tmp_path, "both", bare_404, "calls")
    code, out, err = _record(tmp_path, capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["pending_sync"] is True
    assert result["s3_path"] is None  # no s3:// URI for an object that does not exist
    assert Path(result["local_path"]).is_file() and Path(result["local_path"]).is_relative_to(root)


def test_s3_backend_outage_is_no_user_mistake(
    bare_404: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, tmp_path, "s3", bare_404, "calls")
    code, _, err = _record(tmp_path, capsys)
    assert code not in (0, 2) and "unavailable" in err, err
    _env(monkeypatch, tmp_path, "s3", _dead_port(), "calls")
    code, _, err = _record(tmp_path, capsys)
    assert code not in (0, 2), err


def test_both_with_moto_shows_s3_path_only_for_an_uploaded_object(
    s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = f"attack-{uuid.uuid4().hex[:10]}"
    client = make_s3_client(region_name="us-east-1", endpoint_url=s3_server)
    client.create_bucket(Bucket=bucket)
    _env(monkeypatch, tmp_path, "both", s3_server, bucket)
    code, out, err = _record(tmp_path, capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["pending_sync"] is False
    key = result["s3_path"].removeprefix(f"s3://{bucket}/")
    assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == result["size_bytes"]


def test_sync_prints_plain_json_and_fails_when_nothing_uploaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, tmp_path, "both", _dead_port(), "calls")
    code, out, err = _record(tmp_path, capsys)
    assert code == 0 and json.loads(out)["pending_sync"] is True, err
    code = main(["sync"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code != 0
    assert "SyncReport(" not in out and report["uploaded"] == []
    assert len(report["failed"]) == 1 and all(isinstance(v, str) for v in report["failed"].values())
