"""Benchmark: one category rule over synthetic 700-word calls; prints calls/s and extrapolated time.

``--store`` measures the real path instead: ``--calls`` calls (20 turns, 700 words each) written
over ``--days`` call dates into the analytics tables (embedded SQLite/Parquet in a temporary
directory, or ``--url postgresql://...``), then :func:`~callpipe.analytics.categorize.apply_category`
applies one new rule to all of them (what saving a category runs); prints the seconds it took.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from callpipe.categories import CategoryRule, match
from callpipe.schema import RecordingMetadata, Turn

VOCAB = [
    "hola",
    "buenas",
    "tardes",
    "quiero",
    "consultar",
    "factura",
    "luz",
    "contrato",
    "cambio",
    "tarifa",
    "pago",
    "recibo",
    "cuenta",
    "gracias",
    "vale",
    "perfecto",
    "número",
    "cliente",
    "dirección",
    "correo",
    "mes",
    "importe",
    "cobro",
    "línea",
    "teléfono",
]


def _call(rng: random.Random, i: int, words: int = 700, turns: int = 20) -> RecordingMetadata:
    per = words // turns
    return RecordingMetadata(
        recording_id=f"r{i}",
        conversation_id=f"c{i}",
        turns=[
            Turn(
                speaker="agent" if t % 2 else "customer",
                start=t * 10.0,
                end=t * 10.0 + 9.0,
                text=" ".join(rng.choice(VOCAB) for _ in range(per)),
            )
            for t in range(turns)
        ],
    )


RULE = CategoryRule(
    name="baja",
    phrases=["cambio tarifa contrato"],
    near=6,
    speaker="customer",
    **{"not": ["perfecto gracias vale"]},
)


def _day_rows(docs: list[RecordingMetadata], day: str, first: int, count: int) -> tuple[list[Any], list[Any]]:
    """The ``calls`` and ``turns`` rows of ``count`` calls on ``day`` (documents reused cyclically)."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    calls, turns = [], []
    for n in range(count):
        rid, doc = f"r{first + n}", docs[(first + n) % len(docs)]
        calls.append(
            {
                "recording_id": rid,
                "call_date": day,
                "call_start_utc": start + timedelta(seconds=n),
                "status": "processed",
                "primary_intent": "billing",
                "sentiment_label": "neutral",
                "outcome": "resolved",
                "turn_count": len(doc.turns),
            }
        )
        turns += [
            {
                "recording_id": rid,
                "call_date": day,
                "turn_index": i,
                "speaker": t.speaker,
                "start_seconds": t.start,
                "end_seconds": t.end,
                "text": t.text,
            }
            for i, t in enumerate(doc.turns)
        ]
    return calls, turns


def through_store(args: argparse.Namespace, docs: list[RecordingMetadata]) -> None:
    """Fill the tables, then time applying one new category to every stored call."""
    from callpipe.analytics import open_analytics_store
    from callpipe.analytics.categorize import apply_category

    with tempfile.TemporaryDirectory(prefix="callpipe-cat-bench-") as tmp:
        store = open_analytics_store(args.url or tmp)
        per_day = args.calls // args.days
        began = time.perf_counter()
        for d in range(args.days):
            day = (date(2026, 1, 1) + timedelta(days=d)).isoformat()
            calls, turns = _day_rows(docs, day, d * per_day, per_day)
            store.replace_day(day, calls, turns, [])
        filled = time.perf_counter() - began
        store.put_category(RULE)
        began = time.perf_counter()
        result = apply_category(store, RULE.name)
        took = time.perf_counter() - began
        hits, _ = store.list_calls(category=RULE.name, limit=1000)
        store.close()
    print(
        f"store={'postgres' if args.url else 'embedded'} calls={result['covered']} days={args.days}"
        f" fill_seconds={filled:.1f}"
    )
    print(
        f"apply one new category to {result['covered']} stored calls: {took:.1f} s"
        f" ({result['covered'] / took:.0f} calls/s, state={result['state']}, first page hits={len(hits)})"
    )


def main() -> None:
    """Time one rule (proximity + negation + speaker) over ``--calls`` synthetic calls."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2_000, help="distinct calls built, reused cyclically")
    parser.add_argument("--store", action="store_true", help="through the analytics tables (apply_category)")
    parser.add_argument("--days", type=int, default=100, help="call dates the stored calls spread over")
    parser.add_argument("--url", default="", help="postgresql://... (default: embedded, in a temp dir)")
    args = parser.parse_args()
    rng = random.Random(7)
    docs = [_call(rng, i) for i in range(args.sample)]
    if args.store:
        through_store(args, docs)
        return
    rule = RULE
    hits = 0
    began = time.perf_counter()
    for i in range(args.calls):
        hits += match(rule, docs[i % len(docs)]) is not None
    took = time.perf_counter() - began
    rate = args.calls / took
    print(f"calls={args.calls} words/call=700 hits={hits} seconds={took:.2f} calls_per_s={rate:.0f}")
    print(f"extrapolated: 1,000,000 calls in {1_000_000 / rate / 60:.1f} min (one core)")


if __name__ == "__main__":
    main()
