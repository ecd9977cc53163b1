"""HTTP API numbers on this machine (prints measured numbers; asserts nothing).

1. ``GET /recordings`` with two filters and ``q`` over N generated calls (default 100,000) in the
   embedded analytics tables: p50/p95 (target p95 <= 100 ms).
2. ``GET /processing/stats`` over N recordings in a local store's index (entries written directly,
   one placeholder audio file each): first call (walks the audio for sizes) and then p50/p95
   (target <= 200 ms).
3. ``POST /recordings`` of 1-minute 8 kHz calls at 1, 8 and 32 concurrent clients, local store:
   calls/s, p50, p99 (target p99 <= 50 ms at 8 clients); then checks that every call is stored
   once (nothing lost, nothing duplicated).

The server is a real uvicorn process (``callpipe.service.app:app_from_env``) on a free loopback
port; clients are httpx. Usage: ``.venv/bin/python benchmarks/api.py [--calls N] [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

KEY = "bench-key-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {KEY}"}
PER_DAY = 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fill_tables(root: Path, total: int) -> None:
    """``total`` calls: one day of generated calls turned into rows, repeated over days with new
    ids (rows_for_day on 100,000 documents would take minutes; the rows are what matters here)."""
    from callpipe.analytics import open_analytics_store, rows_for_day
    from callpipe.analytics.synthetic import generated_calls

    base_day = date(2026, 1, 1)
    calls, turns, entities = rows_for_day(
        generated_calls(base_day.isoformat(), min(PER_DAY, total), seed=1, failed_every=40, pending_every=25)
    )
    store = open_analytics_store(str(root))
    days = (total + PER_DAY - 1) // PER_DAY
    try:
        for n in range(days):
            day = base_day + timedelta(days=n)
            shift = timedelta(days=n)
            count = min(PER_DAY, total - n * PER_DAY)
            keep = {row["recording_id"] for row in calls[:count]}

            def moved(
                rows: list[dict[str, Any]],
                n: int = n,
                day: date = day,
                keep: set[str] = keep,
                shift: timedelta = shift,
            ) -> list[dict[str, Any]]:
                out = []
                for row in rows:
                    if row["recording_id"] not in keep:
                        continue
                    row = dict(row, call_date=day, recording_id=f"{row['recording_id']}-d{n:03d}")
                    if "call_start_utc" in row:
                        row["call_start_utc"] = row["call_start_utc"] + shift
                    out.append(row)
                return out

            store.replace_day(day.isoformat(), moved(calls), moved(turns), moved(entities))
    finally:
        store.close()


def fill_index(root: Path, total: int, pending_every: int = 10) -> None:
    """``total`` recordings in a local store's index (by-id, by-date, pending markers) plus a
    placeholder audio file each, written directly (saving 100,000 real calls takes too long)."""
    from callpipe.storage.index import BY_DATE, BY_ID, Entry, pending_key

    start = datetime(2025, 6, 1, 8, tzinfo=UTC)
    made: set[Path] = set()
    for n in range(total):
        ts = start + timedelta(seconds=41 * n)
        rid = f"idx-{n:07d}"
        entry = Entry(rid, f"conv-{n:07d}", ts.date().isoformat(), ts, "wav")
        data = entry.to_bytes()
        keys = [f"{BY_ID}/{rid}", f"{BY_DATE}/{entry.call_date}/{rid}"]
        if n % pending_every == 0:
            keys.append(pending_key(entry))
        keys.append(f"audio/{entry.conversation_id[:9]}/{rid}.wav")
        for key in keys:
            path = root / key
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(data)


def one_minute_call(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    rate = 8000
    t = np.arange(60 * rate) / rate
    signal = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def stats_uncached(work: Path, runs: int) -> None:
    """What a stats request computes when its cache is cold, timed in this process."""
    from callpipe.service.reads import AnalyticsHandle, default_opener, queue_stats
    from callpipe.storage import LocalStore

    store = LocalStore(work / "recordings")
    tables = AnalyticsHandle(default_opener(store, str(work / "analytics")))
    queue_stats(store, tables)  # loads the tables once, as the server did at its first request
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        queue_stats(store, tables)
        times.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    store.get_storage_stats()
    walk = (time.perf_counter() - started) * 1000
    tables.reset()
    print(
        f"processing_queue computed without cache ({runs} runs): p50 {pct(times, 0.5):.1f} ms, "
        f"p95 {pct(times, 0.95):.1f} ms; storage sizes walk {walk:.0f} ms (cached 60 s); "
        f"load {os.getloadavg()[0]:.2f}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "callpipe.service.app:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def timed_gets(client: httpx.Client, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url, headers=HEADERS)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


async def post_calls(
    url: str, clients: int, per_client: int, audio: bytes, tag: str
) -> tuple[list[float], float, list[str]]:
    times: list[float] = []
    ids: list[str] = []

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        for k in range(per_client):
            started = time.perf_counter()
            response = await client.post(
                f"{url}/recordings",
                headers=HEADERS,
                files={"audio": ("call.wav", audio, "audio/wav")},
                data={
                    "conversation_id": f"bench-{tag}-{n}-{k}",
                    "transcript": "quiero ver el salgo de mi cuesta",
                },
            )
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            ids.append(response.json()["recording_id"])

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(n, client) for n in range(clients)))
        elapsed = time.perf_counter() - started
    return times, elapsed, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=100_000, help="calls in the tables and recordings in the index"
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--workdir", type=Path, help="reuse the tables and index a previous run left here")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="callpipe-api-bench-"))
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start, workdir {work}")

    if not (work / "analytics" / "calls").is_dir():
        t0 = time.perf_counter()
        fill_tables(work / "analytics", args.calls)
        print(f"tables: {args.calls} calls written in {time.perf_counter() - t0:.1f} s")
    if not (work / "recordings" / "index").is_dir():
        t0 = time.perf_counter()
        fill_index(work / "recordings", args.calls)
        print(
            f"index: {args.calls} recordings (entries, markers, audio placeholders)"
            f" in {time.perf_counter() - t0:.1f} s"
        )

    env = {
        **os.environ,
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(work / "recordings"),
        "CALLPIPE_ANALYTICS_DB": str(work / "analytics"),
        "CALLPIPE_API_KEYS": f"admin:{KEY},ingest:{KEY}",
        "CALLPIPE_AUDIT_LOG": str(work / "audit.jsonl"),
        "CALLPIPE_PII_KEY": "bench-pii-key-0123456789",
    }
    proc, url = start_server(env)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            started = time.perf_counter()
            client.get("/recordings?limit=1", headers=HEADERS).raise_for_status()
            ms = (time.perf_counter() - started) * 1000
            print(f"first GET /recordings (loads the tables into DuckDB): {ms:.0f} ms")
            rng = random.Random(3)
            intents = ["balance_inquiry", "card_issue", "billing_dispute", "cancellation", "transfer"]
            words = ["portabilidad", "saldo", "factura", "tarjeta", "baja", "transferencia"]
            sentiments = ["positive", "neutral", "negative", "frustrated"]
            n = 40 if args.quick else 200
            urls = [
                f"/recordings?intent={rng.choice(intents)}&sentiment={rng.choice(sentiments)}"
                f"&q={rng.choice(words)}&limit=50"
                for _ in range(n)
            ]
            times = timed_gets(client, urls)
            print(
                f"GET /recordings intent+sentiment+q over {args.calls} calls, {n} requests: "
                f"p50 {pct(times, 0.5):.1f} ms, p95 {pct(times, 0.95):.1f} ms (target p95 <= 100 ms); "
                f"load {os.getloadavg()[0]:.2f}"
            )
            paged = [
                f"/recordings?status=processed&agent_id=agent-00{rng.randrange(7)}&q=cuenta&limit=50"
                for _ in range(n)
            ]
            times = timed_gets(client, paged)
            print(
                "GET /recordings status+agent_id+q:"
                f" p50 {pct(times, 0.5):.1f} ms, p95 {pct(times, 0.95):.1f} ms"
            )

            started = time.perf_counter()
            stats = client.get("/processing/stats", headers=HEADERS)
            stats.raise_for_status()
            first = (time.perf_counter() - started) * 1000
            times = timed_gets(client, ["/processing/stats"] * (10 if args.quick else 50))
            queue = stats.json()["processing_queue"]
            print(
                f"GET /processing/stats over {queue['total_recordings']} recordings: first {first:.0f} ms "
                f"(walks audio sizes), then p50 {pct(times, 0.5):.1f} ms, p95 {pct(times, 0.95):.1f} ms "
                f"with the default 5 s cache (target <= 200 ms); queue {queue}"
            )
        stats_uncached(work, 5 if args.quick else 20)
        audio = one_minute_call(0)
        before = len(os.listdir(work / "recordings" / "index" / "by-id"))
        asyncio.run(post_calls(url, 1, 3, audio, "warm"))
        all_ids: list[str] = []
        posted = 3
        for clients, per_client in (
            (1, 10 if args.quick else 30),
            (8, 4 if args.quick else 10),
            (32, 2 if args.quick else 5),
        ):
            times, elapsed, ids = asyncio.run(post_calls(url, clients, per_client, audio, f"c{clients}"))
            all_ids += ids
            posted += len(ids)
            print(
                f"POST /recordings 1-minute 8 kHz WAV ({len(audio) // 1024} KB), {clients} clients,"
                f" {len(ids)} calls: {len(ids) / elapsed:.1f} calls/s,"
                f" p50 {pct(times, 0.5):.1f} ms, p99 {pct(times, 0.99):.1f} ms; "
                f"load {os.getloadavg()[0]:.2f}"
            )
        after = len(os.listdir(work / "recordings" / "index" / "by-id"))
        unique = len(set(all_ids)) == len(all_ids)
        verdict = "nothing lost or duplicated" if after - before == posted and unique else "MISMATCH"
        print(f"stored {after - before} of {posted} posted; ids unique: {unique} ({verdict})")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
