"""Start-up and per-call cost of the analysis stage.

Usage: ``python benchmarks/analysis_startup.py [--rounds N] [--builds N]``

1. ``Analyzer()`` build time with an empty model cache (cold: embeds the training utterances and
   fits the classifiers) and with the cache filled (warm), each build in a fresh Python process so
   that no in-memory embedding is reused. The whole run uses a temporary ``CALLPIPE_MODEL_CACHE``.
   The first ``analyze()`` of a process also loads the entity extractor (spaCy); timed apart.
2. ``analyze()`` per 10-turn call: the hand-written calls of ``callpipe_tests/analysis/sample_calls.py``,
   each run with a new embedder (empty in-memory cache), median over calls and rounds. Each run is
   paired with one of the same three stages run one after the other with their own embedding
   batches (as ``analyze()`` did before it embedded a transcript in one batch), back to back.

Every number printed is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def child_build() -> None:
    """Runs in a fresh process: time the imports, ``Analyzer()`` and the first ``analyze()``."""
    t0 = time.perf_counter()
    from callpipe.analysis.analyzer import Analyzer

    t1 = time.perf_counter()
    analyzer = Analyzer()
    t2 = time.perf_counter()
    analyzer.analyze("hola buenas quería saber el saldo de mi cuenta")
    t3 = time.perf_counter()
    print(json.dumps({"imports": t1 - t0, "build": t2 - t1, "first_analyze": t3 - t2}))


def run_child() -> dict[str, float]:
    command = [sys.executable, __file__, "--child-build"]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def builds(cache: Path, n_warm: int) -> None:
    cold = run_child()
    files = sorted((cache / "analysis").glob("*.npz"))
    size = sum(f.stat().st_size for f in files)
    warm = [run_child() for _ in range(n_warm)]
    print(f"Analyzer() build, cold cache (embed + fit): {cold['build']:.2f} s")
    print(f"  wrote {len(files)} cache files, {size} bytes in all")
    builds_s = [w["build"] for w in warm]
    print(
        f"Analyzer() build, warm cache: median {statistics.median(builds_s):.3f} s "
        f"(min {min(builds_s):.3f}, max {max(builds_s):.3f}, n={len(warm)} processes)"
    )
    imports = statistics.median(w["imports"] for w in warm)
    first = statistics.median(w["first_analyze"] for w in warm)
    print(f"  imports before the build: median {imports:.2f} s")
    print(f"  first analyze() of a process (loads the entity extractor): median {first:.2f} s")


def per_call(rounds: int) -> None:
    from callpipe.analysis.analyzer import Analysis, Analyzer, _entities
    from callpipe.analysis.embeddings import Embedder
    from callpipe_tests.analysis.sample_calls import CALLS, turns

    calls = [turns(call) for call in CALLS.values()]
    words = [sum(len(t.text.split()) for t in call) for call in calls]
    Analyzer().analyze("hola buenas quería saber el saldo")  # loads the entity extractor

    def one_batch(analyzer: Analyzer, call: list) -> None:
        analyzer.analyze("", call)

    def by_stage(analyzer: Analyzer, call: list) -> None:
        text = " ".join(t.text for t in call)
        Analysis(
            sentiment=analyzer.sentiment.analyze(text, call),
            intent=analyzer.intent.analyze(text, call),
            entities=_entities(text, None),
            topics=analyzer.topics.analyze(text, call),
        )

    times: dict[str, list[float]] = {"one": [], "stages": []}
    ratios = []
    for r in range(rounds):
        for i, call in enumerate(calls):
            # Both ways back to back, order alternating, each with an empty in-memory embedding
            # cache: the machine's load changes slowly, so the pair sees about the same load.
            pair = {}
            for mode in ("one", "stages") if (r + i) % 2 == 0 else ("stages", "one"):
                analyzer = Analyzer(embedder=Embedder())
                t0 = time.perf_counter()
                (one_batch if mode == "one" else by_stage)(analyzer, call)
                pair[mode] = (time.perf_counter() - t0) * 1000
                times[mode].append(pair[mode])
            ratios.append(pair["one"] / pair["stages"])
    one, stages = statistics.median(times["one"]), statistics.median(times["stages"])
    print(
        f"analyze() per 10-turn call ({min(words)}-{max(words)} words): median {one:.0f} ms "
        f"(n={len(times['one'])}: {len(calls)} calls x {rounds} rounds)"
    )
    print(
        f"  same stages, each with its own embedding batch: median {stages:.0f} ms; "
        f"median ratio one-batch/stages of back-to-back pairs {statistics.median(ratios):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds over the sample calls")
    parser.add_argument("--builds", type=int, default=3, help="warm-cache builds (processes)")
    parser.add_argument("--child-build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_build:
        child_build()
        return
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="callpipe-cache-") as tmp:
        os.environ["CALLPIPE_MODEL_CACHE"] = tmp  # inherited by the build processes
        builds(Path(tmp), args.builds)
        per_call(args.rounds)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
