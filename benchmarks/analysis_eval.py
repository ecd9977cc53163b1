"""Accuracy and speed of sentiment and intent analysis on held-out Spanish utterances.

Usage: ``python benchmarks/analysis_eval.py [--set test|holdout|fresh] [--head auto|softmax|mlp] [--cv K]
[--noise P] [--errors]``

``fresh`` (``sentiment_fresh.jsonl``, ``intent_fresh.jsonl``) was written by a helper who never saw
the training data or the taxonomy, and committed before the tuning of issue 18; it is listed when
its files exist. Every set is also reported on its de-duplicated part: the sentences with no
near-duplicate (:mod:`callpipe.analysis.near_duplicates`) in the training data, the taxonomy
examples or another evaluation set (a quarter of ``intent_holdout`` is close to training or
``intent_test``). Calibration: expected calibration error (ECE, 10 equal-width bins) of the
confidence against being right, the reliability table, and how many confidences are >= 0.99.

Default: evaluates both frozen sets in ``callpipe/data/eval/``: ``test`` (``sentiment_test.jsonl``,
``intent_test.jsonl``, the original held-out set; 24 lexicon entries and 4 intent cues had been
copied from it and were removed, see ``callpipe_tests/analysis/test_eval_protocol.py``) and
``holdout`` (``sentiment_holdout.jsonl``, ``intent_holdout.jsonl``, written and committed before the
tuning that followed). Neither is used to fit or tune the models; training data is
``callpipe/data/sentiment_train.jsonl`` and ``intent_train.jsonl`` (+ taxonomy examples). Each
utterance goes through the full ``Analyzer.analyze`` (sentiment, intent, entities, topics); "ms per
call" is that wall time. Also times whole hand-written calls (10 turns).

``--noise P``: degrade the held-out utterances like a weak ASR first (accents dropped, and each
word with probability P loses or doubles one letter, seeded) to see how much accuracy holds.

``--cv K``: K-fold cross-validation on the *training* sets instead (what the fusion weight, cue
boost and thresholds were chosen on). Every number printed is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callpipe.analysis.analyzer import Analyzer  # noqa: E402
from callpipe.analysis.embeddings import get_embedder  # noqa: E402
from callpipe.analysis.intent import IntentModel, load_taxonomy  # noqa: E402
from callpipe.analysis.near_duplicates import near_duplicate_pairs  # noqa: E402
from callpipe.analysis.polarity_lexicon import Lexicon  # noqa: E402
from callpipe.analysis.sentiment import DEFAULT_TRAIN, SentimentModel  # noqa: E402
from callpipe.analysis.text import fold, load_examples  # noqa: E402
from callpipe.analysis.torch_head import HEADS  # noqa: E402

EVAL = ROOT / "callpipe" / "data" / "eval"
POLARITY = {"positive": "positive", "neutral": "neutral", "negative": "negative", "frustrated": "negative"}


def macro_f1(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Unweighted mean of per-label F1 over the gold labels."""
    scores = []
    for label in sorted(set(gold)):
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(p == label != g for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label != p for g, p in zip(gold, pred, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return statistics.mean(scores)


def report(name: str, gold: Sequence[str], pred: Sequence[str]) -> None:
    """Print accuracy, macro-F1 and the most frequent confusions."""
    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
    print(f"{name}: accuracy {acc:.3f}  macro-F1 {macro_f1(gold, pred):.3f}  (n={len(gold)})")
    confusions = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)
    if confusions:
        top = ", ".join(f"{g}->{p} x{n}" for (g, p), n in confusions.most_common(8))
        print(f"  confusions: {top}")
    per_label = Counter(gold)
    right = Counter(g for g, p in zip(gold, pred, strict=True) if g == p)
    print(
        "  recall per label: " + ", ".join(f"{lab} {right[lab]}/{n}" for lab, n in sorted(per_label.items()))
    )


def show_errors(rows: Sequence[tuple[str, str]], pred: Sequence[str]) -> None:
    for (text, gold), p in zip(rows, pred, strict=True):
        if gold != p:
            print(f"    {gold:>20} -> {p:<20} | {text}")


def degrade(text: str, p: float, rng: random.Random) -> str:
    """Drop accents and, per word with probability ``p``, delete or double one letter."""
    words = []
    for word in fold(text).split():
        if len(word) > 3 and rng.random() < p:
            i = rng.randrange(1, len(word))
            word = word[:i] + word[i + 1 :] if rng.random() < 0.5 else word[:i] + word[i] + word[i:]
        words.append(word)
    return " ".join(words)


EVAL_SETS = {
    "test": ("sentiment_test.jsonl", "intent_test.jsonl"),
    "holdout": ("sentiment_holdout.jsonl", "intent_holdout.jsonl"),
}
"""``test``: the original held-out set; ``holdout``: the frozen set written before the 2026-12 tuning;
``fresh``: written by a stranger to the training data (issue 18), when present."""
if (EVAL / "intent_fresh.jsonl").is_file() and (EVAL / "sentiment_fresh.jsonl").is_file():
    EVAL_SETS["fresh"] = ("sentiment_fresh.jsonl", "intent_fresh.jsonl")


def _other_texts(exclude: str) -> list[str]:
    """Training sentences, taxonomy examples and every evaluation sentence not in file ``exclude``."""
    texts = [t for t, _ in load_examples(DEFAULT_TRAIN, "label")]
    texts += [t for examples in load_taxonomy().examples.values() for t in examples]
    for name in sorted(EVAL.glob("*.jsonl")):
        if name.name != exclude and (name.name.startswith(("sentiment_", "intent_", "entities_"))):
            for line in name.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    texts.append(json.loads(line)["text"])
    return texts


def deduplicated(rows: Sequence[tuple[str, str]], file_name: str) -> list[int]:
    """Indexes of ``rows`` with no near-duplicate outside their own file."""
    near = {a for a, _ in near_duplicate_pairs([t for t, _ in rows], _other_texts(file_name))}
    return [i for i, (text, _) in enumerate(rows) if text not in near]


def calibration(name: str, confidences: Sequence[float], right: Sequence[bool], bins: int = 10) -> None:
    """Print ECE, a reliability table and the count of confidences >= 0.99."""
    n = len(confidences)
    ece, table = 0.0, []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if not idx:
            continue
        conf = statistics.mean(confidences[i] for i in idx)
        acc = sum(right[i] for i in idx) / len(idx)
        ece += len(idx) / n * abs(conf - acc)
        table.append(f"[{lo:.1f},{hi:.1f}) n={len(idx)} conf {conf:.2f} acc {acc:.2f}")
    top = sum(c >= 0.99 for c in confidences)
    print(f"  calibration {name}: ECE {ece:.3f}, confidences >= 0.99: {top}/{n}")
    print("    reliability: " + "; ".join(table))


def held_out(
    errors: bool, noise: float | None, which: Sequence[str] = ("test", "holdout"), head: str | None = None
) -> None:
    start = time.perf_counter()
    analyzer = Analyzer(head=head)
    print(f"Analyzer built in {time.perf_counter() - start:.1f} s; {analyzer.models}")
    analyzer.analyze("hola buenas quería saber el saldo")  # first call loads the entity extractor
    for name in which:
        print(f"== evaluation set {name!r}: {', '.join(EVAL_SETS[name])}")
        evaluate(analyzer, name, errors, noise)
    calls(analyzer)


def evaluate(analyzer: Analyzer, name: str, errors: bool, noise: float | None) -> None:
    """Accuracy of ``analyzer`` on one evaluation set (see :data:`EVAL_SETS`)."""
    sentiment_file, intent_file = EVAL_SETS[name]
    sentiment_rows = load_examples(EVAL / sentiment_file, "label")
    intent_rows = load_examples(EVAL / intent_file, "intent")
    if noise is not None:
        rng = random.Random(0)
        sentiment_rows = [(degrade(t, noise, rng), label) for t, label in sentiment_rows]
        intent_rows = [(degrade(t, noise, rng), label) for t, label in intent_rows]
        print(f"held-out utterances degraded: accents dropped, letter noise p={noise}")

    def run(rows: list[tuple[str, str]]) -> tuple[list, list[float]]:
        results, times = [], []
        for text, _ in rows:
            t0 = time.perf_counter()
            results.append(analyzer.analyze(text))
            times.append((time.perf_counter() - t0) * 1000)
        return results, times

    s_results, s_times = run(sentiment_rows)
    i_results, i_times = run(intent_rows)
    gold4 = [label for _, label in sentiment_rows]
    pred4 = [r.sentiment.label for r in s_results]
    s_keep, i_keep = deduplicated(sentiment_rows, sentiment_file), deduplicated(intent_rows, intent_file)
    for part, keep_s in (("", range(len(gold4))), (" [de-duplicated]", s_keep)):
        g4, p4 = [gold4[i] for i in keep_s], [pred4[i] for i in keep_s]
        report(f"sentiment polarity (pos/neu/neg, frustrated=neg){part}",
               [POLARITY[g] for g in g4], [POLARITY[p] for p in p4])
        report(f"sentiment 4-class{part}", g4, p4)
    calibration("sentiment 4-class", [r.sentiment.confidence for r in s_results],
                [g == p for g, p in zip(gold4, pred4, strict=True)])
    if errors:
        show_errors(sentiment_rows, pred4)
    gold_i = [label for _, label in intent_rows]
    pred_i = [r.intent.primary_intent for r in i_results]
    report("intent", gold_i, pred_i)
    report("intent [de-duplicated]", [gold_i[i] for i in i_keep], [pred_i[i] for i in i_keep])
    calibration("intent", [r.intent.confidence for r in i_results],
                [g == p for g, p in zip(gold_i, pred_i, strict=True)])
    if errors:
        show_errors(intent_rows, pred_i)
    times = s_times + i_times
    print(
        f"analyze() per utterance: median {statistics.median(times):.1f} ms, "
        f"p95 {sorted(times)[int(0.95 * len(times)) - 1]:.1f} ms (n={len(times)}, embeddings not cached)"
    )


def calls(analyzer: Analyzer) -> None:
    from callpipe_tests.analysis.sample_calls import CALLS, turns

    times, words = [], []
    for call in CALLS.values():
        t = turns(call)
        t0 = time.perf_counter()
        analyzer.analyze("", t)
        times.append((time.perf_counter() - t0) * 1000)
        words.append(sum(len(x.text.split()) for x in t))
    print(
        f"analyze() per 10-turn call ({min(words)}-{max(words)} words): "
        f"mean {statistics.mean(times):.0f} ms over {len(times)} calls"
    )


def folds(n: int, k: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(0).shuffle(order)
    return [order[i::k] for i in range(k)]


def cross_validate(k: int, errors: bool, head: str = "auto") -> None:
    embedder = get_embedder()
    lexicon = Lexicon.load()
    rows = load_examples(DEFAULT_TRAIN, "label")
    pred = [""] * len(rows)
    conf = [0.0] * len(rows)
    for part in folds(len(rows), k):
        held = set(part)
        model = SentimentModel(embedder, lexicon, [r for i, r in enumerate(rows) if i not in held], head=head)
        for i, result in zip(part, model.score_many([rows[i][0] for i in part]), strict=True):
            pred[i], conf[i] = result.label, result.confidence
    gold = [label for _, label in rows]
    calibration(f"CV{k} sentiment 4-class", conf, [p == g for p, g in zip(pred, gold, strict=True)])
    report(f"CV{k} sentiment polarity", [POLARITY[g] for g in gold], [POLARITY[p] for p in pred])
    report(f"CV{k} sentiment 4-class", gold, pred)
    if errors:
        show_errors(rows, pred)
    taxonomy = load_taxonomy()
    rows = [(t, label) for label, texts in taxonomy.examples.items() for t in texts]
    pred = [""] * len(rows)
    conf = [0.0] * len(rows)
    for part in folds(len(rows), k):
        held = set(part)
        model = IntentModel(embedder, taxonomy, [r for i, r in enumerate(rows) if i not in held], head=head)
        for i in part:
            result = model.analyze(rows[i][0])
            pred[i], conf[i] = result.primary_intent, result.confidence
    report(f"CV{k} intent", [label for _, label in rows], pred)
    calibration(f"CV{k} intent", conf, [p == label for p, (_, label) in zip(pred, rows, strict=True)])
    if errors:
        show_errors(rows, pred)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outcome", action="store_true", help="call outcome accuracy on the frozen fresh set"
    )
    parser.add_argument("--cv", type=int, default=0, help="K-fold cross-validation on the training sets")
    parser.add_argument("--noise", type=float, default=None, help="degrade held-out text like a weak ASR")
    parser.add_argument("--errors", action="store_true", help="list every misclassified utterance")
    parser.add_argument("--head", choices=HEADS, default=None, help="classifier head (default: auto)")
    parser.add_argument(
        "--set", choices=sorted(EVAL_SETS), action="append", help="evaluation set(s) (default all)"
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.outcome:
        from outcome_eval import outcome_eval

        outcome_eval()
        return
    if args.cv:
        cross_validate(args.cv, args.errors, args.head or "auto")
    else:
        held_out(args.errors, args.noise, args.set or list(EVAL_SETS), args.head)


if __name__ == "__main__":
    main()
