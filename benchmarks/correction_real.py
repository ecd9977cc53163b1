"""Precision of the offline hybrid correction on real telephone speech.

For each call of a set (``dev``: ``real_speech.py``'s calls; ``report``: the frozen set of
``real_speech_set.py``) the live (greedy) and premium (beam 5) transcripts are corrected by
:class:`callpipe.correction.HybridCorrector`; every fix is judged by
:func:`callpipe.stt.wer.judge_fixes` (right when it makes those words match the reference). Prints
fixes, right fixes, precision and WER before/after per transcript kind; on the dev set it also
lists the wrong fixes. ``--cache`` keeps the transcripts (Whisper runs once).

    .venv/bin/python benchmarks/correction_real.py --set dev|report [--cache /tmp/x.json]

Measured 2026-12-07 on the dev set (8 calls, 2 shared cores, load 2.6), with the rule that a heard
non-word closer to an ordinary Spanish word than to the lexicon term keeps its form: live 3 fixes,
3 right (precision 1.00, WER 0.191 -> 0.186); premium 2 fixes, 2 right (1.00, 0.181 -> 0.177).
Few fixes: the precision is of 5 decisions. The report set, once (load 3.0): live 6 fixes, 5 right
(0.83, WER 0.200 -> 0.196); premium 5 fixes, 3 right (0.60, 0.186 -> 0.184): below the 0.9 goal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from real_speech import build_calls, corpus_wer  # noqa: E402
from real_speech_set import build_report_calls  # noqa: E402


def transcripts(calls: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Live and premium text plus word confidences of every call."""
    from callpipe.stt import Transcriber

    transcriber = Transcriber()
    out: dict[str, list[dict[str, Any]]] = {"live": [], "premium": []}
    for call in calls:
        for kind in out:
            result = transcriber.transcribe(str(call["path"]), premium=kind == "premium")
            words = [w.model_dump() for w in result.word_confidences]
            out[kind].append({"id": call["id"], "text": result.text, "words": words})
    return out


def judge(
    calls: list[dict[str, Any]], rows: list[dict[str, Any]], corrector: Any
) -> tuple[int, int, list[str], list[str]]:
    """(fixes, right fixes, corrected texts, descriptions of the wrong fixes)."""
    from callpipe.stt.wer import judge_fixes

    fixes = right = 0
    texts, wrong = [], []
    for call, row in zip(calls, rows, strict=True):
        result = corrector.process(row["text"], row["words"])
        texts.append(result.corrected_text)
        spans = [(c.position or 0, len(c.original.split()), c.corrected) for c in result.corrections]
        verdicts = judge_fixes(call["reference"], row["text"], spans)
        fixes += len(verdicts)
        right += sum(verdicts)
        wrong += [
            f"{call['id']}: {c.original!r} -> {c.corrected!r} ({c.method}, conf {c.confidence})"
            for c, ok in zip(result.corrections, verdicts, strict=True)
            if not ok
        ]
    return fixes, right, texts, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=("dev", "report"), default="dev")
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    from callpipe.correction import HybridCorrector

    with tempfile.TemporaryDirectory(prefix="correction-real-") as tmp:
        calls = build_calls(Path(tmp), 8, 46.0, 12) if args.set == "dev" else build_report_calls(Path(tmp))
        if args.cache and args.cache.is_file():
            cached = json.loads(args.cache.read_text(encoding="utf-8"))
        else:
            cached = transcripts(calls)
            if args.cache:
                args.cache.write_text(json.dumps(cached), encoding="utf-8")
    corrector = HybridCorrector()
    print(f"{args.set} set: {len(calls)} calls; load {os.getloadavg()[0]:.2f}")
    print("| transcript | fixes | right | precision | WER before | WER after |\n|---|---|---|---|---|---|")
    wrongs = []
    for kind, rows in cached.items():
        fixes, right, texts, wrong = judge(calls, rows, corrector)
        before = corpus_wer(calls, [r["text"] for r in rows])
        precision = right / fixes if fixes else float("nan")
        after = corpus_wer(calls, texts)
        print(f"| {kind} | {fixes} | {right} | {precision:.2f} | {before:.3f} | {after:.3f} |")
        wrongs += [f"{kind} {w}" for w in wrong]
    if args.set == "dev":
        print("\nwrong fixes (dev set only):", *wrongs, sep="\n  ")


if __name__ == "__main__":
    main()
