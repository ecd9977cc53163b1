"""Call outcome accuracy on the frozen fresh set (``callpipe/data/eval/outcome_fresh.jsonl``).

    .venv/bin/python benchmarks/analysis_eval.py --outcome

Prints accuracy, recall per class and the confusion matrix (rows: gold, columns: predicted).
The set is a report set: nothing was tuned on it; it prints no call text.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from callpipe import schema
from callpipe.analysis.outcome import infer_outcome

FRESH = Path(__file__).resolve().parent.parent / "callpipe" / "data" / "eval" / "outcome_fresh.jsonl"
LABELS = ["resolved", "escalated", "abandoned", "transferred", "unknown"]


def outcome_eval(path: Path = FRESH) -> float:
    """Run the outcome inference over every call of ``path``; print and return the accuracy."""
    confusion: Counter[tuple[str, str]] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        call = json.loads(line)
        turns = [
            schema.Turn(
                speaker=t["speaker"] if t["speaker"] in ("agent", "customer") else "unknown",
                start=float(i),
                end=float(i) + 1.0,
                text=t["text"],
            )
            for i, t in enumerate(call["turns"])
        ]
        confusion[(call["outcome"], infer_outcome("", turns).label.value)] += 1
    total = sum(confusion.values())
    right = sum(n for (gold, got), n in confusion.items() if gold == got)
    print(f"outcome ({path.name}): accuracy {right / total:.3f} ({right}/{total})")
    for gold in LABELS[:-1]:
        row = sum(n for (g, _), n in confusion.items() if g == gold)
        if row:
            hit = confusion[(gold, gold)]
            print(f"  recall {gold:<12} {hit / row:.3f} ({hit}/{row})")
    print("  confusion (gold \\ predicted): " + " ".join(f"{label[:5]:>6}" for label in LABELS))
    for gold in LABELS[:-1]:
        print(f"  {gold:<12}" + " " * 18 + " ".join(f"{confusion[(gold, got)]:>6}" for got in LABELS))
    return right / total
