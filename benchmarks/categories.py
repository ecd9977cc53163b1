"""Benchmark: one category rule over synthetic 700-word calls; prints calls/s and extrapolated time."""

from __future__ import annotations

import argparse
import random
import time

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


def main() -> None:
    """Time one rule (proximity + negation + speaker) over ``--calls`` synthetic calls."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2_000, help="distinct calls built, reused cyclically")
    args = parser.parse_args()
    rng = random.Random(7)
    docs = [_call(rng, i) for i in range(args.sample)]
    rule = CategoryRule(
        name="baja",
        phrases=["cambio tarifa contrato"],
        near=6,
        speaker="customer",
        **{"not": ["perfecto gracias vale"]},
    )
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
