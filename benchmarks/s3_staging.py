"""Cost of staging S3 audio per stage (a temporary file deleted after it) against the old cache.

Saves the bundled demo calls to a real moto S3 server on loopback, then for each call times
``with store.audio_file(id)`` (metadata read, GET, checksum, write, delete), and, for
comparison, what a hit of the old per-host cache cost (hash the cached file against the
metadata's checksum). Prints medians in milliseconds, the audio size and the load average.

Usage: .venv/bin/python benchmarks/s3_staging.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    from callpipe.demo_calls import load_demo_calls
    from callpipe.storage import S3Store, make_s3_client

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        client = make_s3_client(region_name="us-east-1", endpoint_url=f"http://{host}:{port}")
        client.create_bucket(Bucket="bench")
        with tempfile.TemporaryDirectory() as tmp:
            store = S3Store("bench", "calls", client, cache_dir=Path(tmp) / "staging")
            calls = load_demo_calls()
            ids = [store.save_recording(c.audio, c.conversation_id).recording_id for c in calls]
            sizes = [len(c.audio) for c in calls]
            staged, cached = [], []
            for _ in range(args.rounds):
                for rid, call in zip(ids, calls, strict=True):
                    started = time.perf_counter()
                    with store.audio_file(rid) as path:
                        path.stat()
                    staged.append(time.perf_counter() - started)
                    old = Path(tmp) / "old-cache.flac"
                    old.write_bytes(call.audio)
                    started = time.perf_counter()
                    checksum = store.get_metadata(rid).audio.checksum_sha256
                    assert hashlib.sha256(old.read_bytes()).hexdigest() == checksum
                    cached.append(time.perf_counter() - started)
    finally:
        server.stop()
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{len(ids)} calls, median audio {statistics.median(sizes) / 1024:.0f} KiB, {args.rounds} rounds")
    print(f"staged per stage (GET + write + delete): median {statistics.median(staged) * 1000:.1f} ms")
    print(f"old cache hit (metadata read + hash):    median {statistics.median(cached) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
