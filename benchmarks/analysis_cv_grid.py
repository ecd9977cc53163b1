"""Choose the n-gram weight and the temperature of the intent and sentiment models by K-fold
cross-validation on the training data only (no evaluation set is read).

Usage: ``python benchmarks/analysis_cv_grid.py [--k 5]``

For each (n-gram weight, temperature) it prints cross-validated accuracy, mean log-loss of the
gold label and ECE (10 bins) of the confidence. The defaults in ``callpipe/analysis/intent.py`` and
``sentiment.py`` (``NGRAM_WEIGHT``, ``TEMPERATURE``) are, among the settings within 0.005 of the
best cross-validated accuracy (polarity for sentiment), the one with the lowest ECE.
Every number printed is measured in this run.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.analysis_eval import POLARITY, folds  # noqa: E402
from callpipe.analysis.embeddings import get_embedder  # noqa: E402
from callpipe.analysis.intent import IntentModel, load_taxonomy  # noqa: E402
from callpipe.analysis.polarity_lexicon import Lexicon  # noqa: E402
from callpipe.analysis.sentiment import DEFAULT_TRAIN, LABELS, SentimentModel  # noqa: E402
from callpipe.analysis.text import load_examples  # noqa: E402


def ece(conf: list[float], right: list[bool], bins: int = 10) -> float:
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(conf) if lo <= c < hi or (b == bins - 1 and c >= 1)]
        if idx:
            gap = np.mean([conf[i] for i in idx]) - np.mean([right[i] for i in idx])
            total += len(idx) / len(conf) * abs(gap)
    return total


def intent_grid(k: int, weights: list[float], temps: list[float]) -> None:
    embedder, taxonomy = get_embedder(), load_taxonomy()
    rows = [(t, label) for label, texts in taxonomy.examples.items() for t in texts]
    parts = folds(len(rows), k)
    for w in weights:
        for temp in temps:
            right, conf, nll = [], [], []
            for part in parts:
                held = set(part)
                model = IntentModel(embedder, taxonomy, [r for i, r in enumerate(rows) if i not in held],
                                    ngram_weight=w, temperature=temp)
                for i in part:
                    text, gold = rows[i]
                    result = model.analyze(text)
                    right.append(result.primary_intent == gold)
                    conf.append(result.confidence)
                    nll.append(-math.log(max(model.probs([text])[0][model.labels.index(gold)], 1e-9)))
            top = sum(c >= 0.99 for c in conf)
            print(f"intent    w={w:<5} T={temp:<4} acc {np.mean(right):.3f}  log-loss {np.mean(nll):.3f}  "
                  f"ECE {ece(conf, right):.3f}  conf>=0.99 {top}/{len(conf)}", flush=True)


def sentiment_grid(k: int, weights: list[float], temps: list[float]) -> None:
    embedder, lexicon = get_embedder(), Lexicon.load()
    rows = load_examples(DEFAULT_TRAIN, "label")
    parts = folds(len(rows), k)
    for w in weights:
        for temp in temps:
            right, right4, conf, nll = [], [], [], []
            for part in parts:
                held = set(part)
                model = SentimentModel(embedder, lexicon, [r for i, r in enumerate(rows) if i not in held],
                                       ngram_weight=w, temperature=temp)
                for i, result in zip(part, model.score_many([rows[i][0] for i in part]), strict=True):
                    gold = rows[i][1]
                    right.append(POLARITY[result.label] == POLARITY[gold])
                    right4.append(result.label == gold)
                    conf.append(result.confidence)
                    nll.append(-math.log(max(float(result.probs[LABELS.index(gold)]), 1e-9)))
            print(f"sentiment w={w:<5} T={temp:<4} polarity acc {np.mean(right):.3f}  "
                  f"4-class {np.mean(right4):.3f}  log-loss {np.mean(nll):.3f}  "
                  f"ECE(4-class) {ece(conf, right4):.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--only", choices=["intent", "sentiment"], default=None)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.only != "sentiment":
        intent_grid(args.k, [0.0, 10.0, 20.0, 40.0, 80.0], [1.0, 1.5, 2.0, 3.0])
    if args.only != "intent":
        sentiment_grid(args.k, [0.0, 10.0, 20.0, 40.0], [1.0, 1.3, 1.6])


if __name__ == "__main__":
    main()
