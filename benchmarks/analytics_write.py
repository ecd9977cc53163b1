"""Cost of writing a day's analytics rows, next to the cost of the day's run; and call-list queries.

What the table assets (``calls``, ``turns``, ``entities``, ``day_aggregates``) add to a run is:
read every metadata document of the day from the store,
build the rows (:func:`callpipe.analytics.rows_for_day`, with ``PII_REDACTION=mask`` redaction of
each turn) and replace the day's Parquet files. This script times exactly that for N generated
calls saved in a real local store (default N=200), and compares it with a day run it measures
itself: ``--run-calls K`` materializes the whole graph on K demo calls (real models) and reports
its seconds, per call, extrapolated to N (say so when quoting it). ``--query-days D`` fills D days
of 1,000 calls and times ``list_calls`` with two filters and a text search (the API's query).

    .venv/bin/python benchmarks/analytics_write.py [--calls 200] [--run-calls 6] [--query-days 100]

Prints numbers only; the load average is printed with them (the machine may be shared).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import wave
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import generated_calls
from callpipe.storage import LocalStore
from callpipe.summary import day_documents

DAY = "2026-03-02"


def _tiny_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


def _write_once(store: LocalStore, root: Path) -> dict[str, float]:
    from callpipe.defs.partitions import partition_window

    t0 = time.perf_counter()
    docs, _ = day_documents(store, *partition_window(DAY, "UTC"))
    t1 = time.perf_counter()
    calls, turns, entities = rows_for_day(docs, timezone="UTC")
    t2 = time.perf_counter()
    tables = open_analytics_store(str(root))
    tables.replace_day(DAY, calls, turns, entities)
    tables.close()
    t3 = time.perf_counter()
    return {"read": t1 - t0, "rows": t2 - t1, "write": t3 - t2, "total": t3 - t0, "turns": len(turns)}


def write_cost(n: int, repeats: int) -> dict[str, float]:
    """Median seconds of each part of the day's analytics write for ``n`` generated calls."""
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "recordings")
        audio = _tiny_wav()
        for meta in generated_calls(DAY, n, failed_every=25, pending_every=40):
            doc = meta.model_dump(mode="json")
            store.save_recording(audio, meta.conversation_id, metadata=doc, recording_id=meta.recording_id)
        runs = [_write_once(store, Path(tmp) / "analytics") for _ in range(repeats)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def measured_run(k: int) -> dict[str, Any]:
    """Seconds of one real day run (whole graph, real models) on ``k`` demo calls."""
    import dagster as dg

    from callpipe.batch import quiet_run_config
    from callpipe.defs.assets import ALL_ASSETS
    from callpipe.defs.resources import AnalyticsTablesResource, RecordingStoreResource, StageModelsResource
    from callpipe.demo_calls import load_demo_calls
    from callpipe_tests.demo_recordings import record_demo_calls

    ids = [c.call_id for c in load_demo_calls()]
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        store = LocalStore(Path(tmp) / "recordings")
        for start in range(0, k, len(ids)):
            chunk = ids[: min(len(ids), k - start)]
            record_demo_calls(store, DAY, chunk, suffix=f"-{start}", first_minute=start)
        resources = {
            "store": RecordingStoreResource(backend="local", local_path=str(store.root)),
            "tables": AnalyticsTablesResource(),
            "models": StageModelsResource(),
        }
        started = time.perf_counter()
        result = dg.materialize(
            ALL_ASSETS,
            partition_key=DAY,
            resources=resources,
            instance=instance,
            run_config=quiet_run_config(),
        )
        seconds = time.perf_counter() - started
        event = instance.get_latest_materialization_event(dg.AssetKey("calls"))
        write = event.asset_materialization.metadata["write_seconds"].value if event else None
    return {"calls": k, "seconds": seconds, "success": result.success, "write_seconds_in_run": write}


def query_cost(days: int, per_day: int = 1000, repeats: int = 60) -> dict[str, float]:
    """p50/p95 ms of ``list_calls`` (intent + sentiment + q) over ``days * per_day`` calls."""
    base_calls, base_turns, base_entities = rows_for_day(generated_calls(DAY, per_day), timezone="UTC")
    with tempfile.TemporaryDirectory() as tmp:
        tables = open_analytics_store(str(Path(tmp) / "analytics"))
        fill = time.perf_counter()
        for d in range(days):
            day = date.fromordinal(date(2025, 1, 1).toordinal() + d)
            shift = day - date.fromisoformat(DAY)

            def moved(rows: list[dict[str, Any]], day: date = day, shift: Any = shift) -> list[Any]:
                out = []
                for row in rows:
                    rid = f"{day}-{row['recording_id']}"
                    row = {**row, "call_date": day.isoformat(), "recording_id": rid}
                    if "call_start_utc" in row:
                        row["call_start_utc"] = row["call_start_utc"] + shift
                    out.append(row)
                return out

            tables.replace_day(day.isoformat(), moved(base_calls), moved(base_turns), moved(base_entities))
        fill = time.perf_counter() - fill
        load = time.perf_counter()
        tables.list_calls(limit=1)  # first query loads the files into memory
        load = time.perf_counter() - load
        timings = []
        for i in range(repeats):
            started = time.perf_counter()
            q = "portabilidad" if i % 2 else "baja hoy"
            rows, _ = tables.list_calls(intent="cancellation", sentiment="negative", q=q, limit=50)
            timings.append((time.perf_counter() - started) * 1000)
        tables.close()
    timings.sort()
    return {
        "calls": days * per_day,
        "fill_s": fill,
        "first_query_load_s": load,
        "p50_ms": statistics.median(timings),
        "p95_ms": timings[int(0.95 * len(timings)) - 1],
        "rows_returned": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-calls", type=int, default=0, help="measure a real day run on K demo calls")
    parser.add_argument("--query-days", type=int, default=0, help="time list_calls over D x 1,000 calls")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cost = write_cost(args.calls, args.repeats)
    print(
        f"analytics write, N={args.calls} generated calls ({int(cost['turns'])} turns), "
        f"median of {args.repeats}: "
        f"read documents {cost['read']:.3f} s, build rows {cost['rows']:.3f} s, "
        f"write Parquet {cost['write']:.3f} s, total {cost['total']:.3f} s"
    )
    if args.run_calls:
        run = measured_run(args.run_calls)
        per_call = run["seconds"] / run["calls"]
        estimate = per_call * args.calls
        print(
            f"measured day run: {run['calls']} demo calls in {run['seconds']:.1f} s "
            f"(success={run['success']}, "
            f"{per_call:.2f} s per call; its tables write took {run['write_seconds_in_run']} s)"
        )
        print(
            f"write share at N={args.calls}: {cost['total']:.3f} s of an estimated {estimate:.0f} s run "
            f"(measured per-call run time x {args.calls}) = {100 * cost['total'] / estimate:.3f}%"
        )
    if args.query_days:
        q = query_cost(args.query_days)
        print(
            f"list_calls over {q['calls']} calls (intent + sentiment + q, limit 50): "
            f"p50 {q['p50_ms']:.1f} ms, p95 {q['p95_ms']:.1f} ms; filling took {q['fill_s']:.1f} s, "
            f"first query (load) {q['first_query_load_s']:.2f} s"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
