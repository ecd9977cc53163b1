"""Analytics and API numbers at scale (prints measured numbers; asserts nothing).

Generates N realistic calls (5-minute calls: about 700 words in about 40 turns, vocabulary drawn
from the project's Spanish word lists, a few entities each, processed/pending/failed statuses,
``--per-day`` calls a day over consecutive days), writes them day by day through the writer the
day runs use (:func:`callpipe.analytics.rows_for_day` then the analytics store's ``replace_day``),
starts ``callpipe serve`` as its own process over that store, warms it up and measures over HTTP:

- ``rss_mb``: the server's VmRSS (``/proc/PID/status``) after the warm-up;
- ``first_ms``: from starting the ``callpipe serve`` process to its first answered
  ``GET /recordings`` (polled every 20 ms: start-up, imports and the first query together), with
  the CPU time the server used until then (the same on a loaded machine);
- p50/p95 of ``GET /recordings`` with two filters, with ``q=`` text search, of the 30-day
  dashboard (``GET /ui`` with a session), and of ``GET /processing/stats`` (the server runs with
  ``CALLPIPE_CATALOG=sqlite``; each day's calls get their catalog rows through ``put_many``);
- ``day_write_s``: rows and ``replace_day`` of one more day with the whole history behind it.

    .venv/bin/python benchmarks/scale.py --calls 10000 [--calls 100000] [--keep DIR]

One line per N, then the last line ``scale N=... rss_mb=... first_ms=... list_p95_ms=...
search_p95_ms=... dashboard_p95_ms=... stats_p95_ms=... day_write_s=...`` (of the last N).
Data lives in a temporary directory, removed at the end, unless ``--keep DIR``. ``--backend postgres``
writes the tables into a new database on the local PostgreSQL (127.0.0.1:5432, user postgres),
dropped at the end unless ``--keep``; its last line starts ``scale backend=postgres N=...``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import INTENTS, SENTIMENTS, call_document
from callpipe.catalog import Catalog
from callpipe.catalog.catalog_table import row_from_doc
from callpipe.pii import redact, turns_fingerprint
from callpipe.schema import RecordingMetadata, TurnRedaction

KEY = "scale-bench-key-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {KEY}"}
DATA = Path(__file__).resolve().parents[1] / "callpipe" / "data"
FIRST_DAY = date(2026, 1, 1)
AGENTS = 40


def word_list() -> tuple[list[str], list[str], list[str]]:
    """(content words, common words, names) from the project's Spanish lists (no eval data)."""
    content: list[str] = []
    for name in ("domain_lexicon_es.txt", "places_es.txt", "surnames_es.txt"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("["):
                content += [w for w in line.split() if w.isalpha()]
    for line in (DATA / "domain_phrases_es.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        content += [w.lower() for w in re.findall(r"\w+", line) if w.isalpha()]
    common = [
        w
        for w in (DATA / "stopwords_es.txt").read_text(encoding="utf-8").split()
        if w.isalpha() and not w.startswith("#")
    ]
    names = [
        line.strip()
        for line in (DATA / "given_names_es.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return sorted(set(content)), sorted(set(common)), names


class Generator:
    """Deterministic generated calls with long, varied transcripts."""

    def __init__(self, seed: int = 7) -> None:
        self.content, self.common, self.names = word_list()
        self.rng = random.Random(seed)

    def sentence(self, words: int) -> str:
        rng = self.rng
        out = [
            rng.choice(self.common) if rng.random() < 0.55 else rng.choice(self.content) for _ in range(words)
        ]
        return " ".join(out).capitalize() + "."

    def call(self, day: date, index: int) -> RecordingMetadata:
        """Call ``index`` of ``day``: ~700 words in ~40 turns; every 40th failed, every 25th pending."""
        rng = self.rng
        start = datetime(day.year, day.month, day.day, 7, tzinfo=UTC) + timedelta(
            seconds=(index * 13) % 50000
        )
        rid = f"scale-{day.isoformat()}-{index:06d}"
        name = rng.choice(self.names)
        amount = rng.randrange(5, 5000)
        turns: list[dict[str, Any]] = []
        clock = 0.0
        for n in range(rng.randint(34, 46)):
            words = rng.randint(10, 25)
            text = self.sentence(words)
            if n == 3:
                text += (
                    f" Me llamo {name}, son {amount} euros, mi correo es {name.lower()}{index}@example.com."
                )
            length = words / 2.6
            speaker = "agent" if n % 2 == 0 else "customer"
            turns.append(
                {"speaker": speaker, "start": round(clock, 2), "end": round(clock + length, 2), "text": text}
            )
            clock += length + rng.uniform(0.1, 0.8)
        # what the finalize stage stores (redacted_text, turn_redaction): only turn 3 has personal data
        texts = [t["text"] for t in turns]
        said = redact(texts[3])
        redacted = " ".join(said if n == 3 else text for n, text in enumerate(texts))
        status = "failed" if index % 40 == 39 else "pending" if index % 25 == 24 else "processed"
        email = f"{name.lower()}{index}@example.com"
        doc = call_document(
            recording_id=rid,
            conversation_id=f"conv-{day.isoformat()}-{index:06d}",
            timestamp=start,
            index=index,
            turns=turns,
            duration=clock,
            rng=rng,
            status=status,
            label=SENTIMENTS[rng.randrange(len(SENTIMENTS))],
            intent=INTENTS[rng.randrange(len(INTENTS))],
            agents=AGENTS,
            redacted=redacted,
            keywords=rng.sample(self.content, 3),
            entities={
                "amounts": [
                    {
                        "kind": "amount",
                        "text": f"{amount} euros",
                        "value": f"{amount}.00",
                        "amount": float(amount),
                    }
                ],
                "emails": [{"kind": "email", "text": email, "value": email, "valid": True}],
            },
            run_id="scale-bench",
        )
        doc.transcription.redacted_text = redacted  # the recorder redacts the live transcript too
        if doc.processed:
            doc.turn_redaction = TurnRedaction(fingerprint=turns_fingerprint(texts), changed={3: said})
        return doc


def catalog_file(work: Path) -> Path:
    """The embedded catalog the server reads (``CALLPIPE_CATALOG=sqlite`` beside the local store)."""
    return work / "recordings" / "state" / "catalog.sqlite"


def write_day(work: Path, target: str, gen: Generator, day: date, count: int) -> tuple[float, float]:
    """Generate one day, put its catalog rows (the catalog's bulk path) and write its tables;
    (seconds generating documents and catalog rows, seconds of rows + replace_day)."""
    t0 = time.perf_counter()
    docs = [gen.call(day, i) for i in range(count)]
    catalog_file(work).parent.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(path=catalog_file(work))
    try:
        catalog.put_many(row_from_doc(doc) for doc in docs)
        catalog.mark_filled()  # these rows are the catalog: the server must not refill it from documents
    finally:
        catalog.close()
    t1 = time.perf_counter()
    calls, turns, entities = rows_for_day(docs, timezone="UTC")
    store = open_analytics_store(target)
    try:
        store.replace_day(day.isoformat(), calls, turns, entities)
    finally:
        store.close()
    return t1 - t0, time.perf_counter() - t1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used so far, in ms: what a start costs whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(work: Path, target: str) -> tuple[subprocess.Popen[bytes], str, float, float]:
    """``callpipe serve`` over ``work``'s stores; (process, url, ms from the start to the first
    answered ``GET /recordings``, CPU ms the server used until then), polled with a 60 s deadline."""
    port = free_port()
    (work / "recordings").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(work / "recordings"),
        "CALLPIPE_CATALOG": "sqlite",
        "CALLPIPE_ANALYTICS_DB": target,
        "CALLPIPE_API_KEYS": f"admin:{KEY},ingest:{KEY}",
        "CALLPIPE_AUDIT_LOG": str(work / "audit.jsonl"),
        "CALLPIPE_PII_KEY": os.environ.get("CALLPIPE_PII_KEY") or "scale-bench-pii-key-0123456789",
    }
    cmd = [sys.executable, "-m", "callpipe.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = (work / "serve.log").open("ab")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"callpipe serve exited with {proc.returncode}")
        try:
            response = httpx.get(f"{url}/recordings?limit=50", headers=HEADERS, timeout=30)
            response.raise_for_status()
            first = (time.perf_counter() - started) * 1000
            return proc, url, first, cpu_ms(proc.pid)
        except httpx.TransportError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("callpipe serve did not answer GET /recordings in 60 s")


def timed(client: httpx.Client, urls: list[str], **kwargs: Any) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def measure(work: Path, target: str, gen: Generator, days: int, runs: int) -> dict[str, float]:
    """Start the server over the written store, warm up, measure the requests; stop it."""
    proc, url, first_ms, first_cpu = start_serve(work, target)
    out: dict[str, float] = {"first_ms": first_ms, "first_cpu_ms": first_cpu}
    last = FIRST_DAY + timedelta(days=days - 1)
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            login = client.post("/ui/login", data={"key": KEY}, follow_redirects=False)
            if login.status_code != 303:
                raise SystemExit(f"UI login answered {login.status_code}")
            rng = random.Random(11)
            words = [w for w in gen.content if len(w) > 5]
            lists = [
                f"/recordings?intent={rng.choice(INTENTS)}&sentiment={rng.choice(SENTIMENTS)}&limit=50"
                for _ in range(runs)
            ]
            searches = [f"/recordings?q={rng.choice(words)}&status=processed&limit=50" for _ in range(runs)]
            dash_from = (last - timedelta(days=29)).isoformat()
            dash = [f"/ui?date_from={dash_from}&date_to={last.isoformat()}"] * max(5, runs // 4)
            stats = ["/processing/stats"] * runs
            for group in (lists[:5], searches[:5], stats[:3]):  # warm-up
                timed(client, group, headers=HEADERS)
            timed(client, dash[:2])
            out["rss_mb"] = rss_mb(proc.pid)
            out["list_p50_ms"], out["list_p95_ms"] = _p(timed(client, lists, headers=HEADERS))
            out["search_p50_ms"], out["search_p95_ms"] = _p(timed(client, searches, headers=HEADERS))
            out["dashboard_p50_ms"], out["dashboard_p95_ms"] = _p(timed(client, dash))
            out["stats_p50_ms"], out["stats_p95_ms"] = _p(timed(client, stats, headers=HEADERS))
            out["rss_after_mb"] = rss_mb(proc.pid)
            queue = client.get("/processing/stats", headers=HEADERS).json()["processing_queue"]
            out["stats_total"] = float(queue["total_recordings"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def _p(times: list[float]) -> tuple[float, float]:
    return pct(times, 0.5), pct(times, 0.95)


def run(total: int, per_day: int, work: Path, runs: int, target: str | None = None) -> dict[str, float]:
    """Write ``total`` calls (days of ``per_day``) into ``target`` (a PostgreSQL URL, default
    Parquet under ``work``), measure the API, then write one more day."""
    gen = Generator()
    root = work / "analytics"
    target = target or str(root)
    days = (total + per_day - 1) // per_day
    gen_s = write_s = 0.0
    for n in range(days):
        g, w = write_day(work, target, gen, FIRST_DAY + timedelta(days=n), min(per_day, total - n * per_day))
        gen_s, write_s = gen_s + g, write_s + w
    print(
        f"N={total}: {days} days written; generating documents {gen_s:.1f} s, rows + replace_day "
        f"{write_s:.1f} s ({total / (gen_s + write_s):.0f} calls/s); load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    out = measure(work, target, gen, days, runs)
    g, w = write_day(work, target, gen, FIRST_DAY + timedelta(days=days), per_day)
    out["day_write_s"] = w
    size = store_mib(target)
    print(
        f"N={total}: rss {out['rss_mb']:.0f} MB after warm-up ({out['rss_after_mb']:.0f} MB after the runs), "
        f"first {out['first_ms']:.0f} ms ({out['first_cpu_ms']:.0f} ms of server CPU), "
        f"list p50/p95 {out['list_p50_ms']:.1f}/{out['list_p95_ms']:.1f} ms, "
        f"search {out['search_p50_ms']:.1f}/{out['search_p95_ms']:.1f} ms, "
        f"dashboard 30 d {out['dashboard_p50_ms']:.1f}/{out['dashboard_p95_ms']:.1f} ms, "
        f"stats {out['stats_p50_ms']:.1f}/{out['stats_p95_ms']:.1f} ms "
        f"(catalog counts {out['stats_total']:.0f} recordings), "
        f"one more day of {per_day} ({g:.1f} s to generate) written in {w:.2f} s; "
        f"store {size:.0f} MiB; load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return out


def store_mib(target: str) -> float:
    """Size of the analytics tables: the Parquet files, or the PostgreSQL database."""
    if not target.startswith("postgresql://"):
        return sum(p.stat().st_size for p in Path(target).rglob("*") if p.is_file()) / 2**20
    import psycopg2

    with psycopg2.connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        return cur.fetchone()[0] / 2**20


@contextmanager
def throwaway_postgres(keep: bool) -> Iterator[str]:
    """URL of a new database on the local server (127.0.0.1:5432, user postgres), dropped on exit
    unless ``keep``."""
    import psycopg2

    name = f"callpipe_scale_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        if not keep:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, action="append", help="N (repeatable; default 10000)")
    parser.add_argument("--per-day", type=int, default=5000, help="calls a day (default 5000)")
    parser.add_argument("--runs", type=int, default=60, help="requests per measured endpoint")
    parser.add_argument("--keep", type=Path, help="write the data here and leave it (one subfolder per N)")
    parser.add_argument(
        "--backend",
        choices=("embedded", "postgres"),
        default="embedded",
        help="analytics tables: embedded Parquet (default) or a throwaway PostgreSQL database",
    )
    args = parser.parse_args()
    sizes = args.calls or [10_000]
    if any(n < 1 for n in sizes) or args.per_day < 1 or args.runs < 1:
        parser.error("--calls, --per-day and --runs must be positive")
    base = args.keep or Path(tempfile.mkdtemp(prefix="callpipe-scale-"))
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    results = []
    try:
        for total in sizes:
            work = base / f"n{total}"
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            if args.backend == "postgres":
                with throwaway_postgres(keep=args.keep is not None) as url:
                    print(f"N={total}: PostgreSQL database {url.rsplit('/', 1)[1]}", flush=True)
                    results.append((total, run(total, min(args.per_day, total), work, args.runs, url)))
            else:
                results.append((total, run(total, min(args.per_day, total), work, args.runs)))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    total, out = results[-1]
    print(
        f"scale{'' if args.backend == 'embedded' else ' backend=postgres'} N={total} "
        f"rss_mb={out['rss_mb']:.1f} first_ms={out['first_ms']:.1f} "
        f"list_p95_ms={out['list_p95_ms']:.2f} search_p95_ms={out['search_p95_ms']:.2f} "
        f"dashboard_p95_ms={out['dashboard_p95_ms']:.2f} stats_p95_ms={out['stats_p95_ms']:.2f} "
        f"day_write_s={out['day_write_s']:.3f}"
    )


if __name__ == "__main__":
    main()
