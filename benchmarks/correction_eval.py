"""Evaluate the offline hybrid correction (``callpipe.correction``) and build its eval sets.

Evaluation (default): for ``callpipe/data/eval/correction_dev.jsonl`` and ``correction_test.jsonl``
prints WER before/after correction (overall and per source kind), corrections by method, how
many corrections were right, how many correct words were wrongly changed (false corrections),
and milliseconds per utterance (after a warm-up that loads the models).

Build (``--build``): turns ``correction_sources.jsonl`` into the two eval sets. Sentences of
kind ``tts`` are spoken by espeak-ng (voice ``es`` or ``es-419``, 140-170 words/min, 8 kHz
telephone band through sox) and transcribed by the bundled faster-whisper base model (int8,
greedy, ``language="es"``, word timestamps), so errors and word confidences are the model's.
Robotic audio has a low log-probability, so the temperature fallback is kept only for
repetition loops (compression ratio above 2.4); segments still looping are dropped, as the
STT stage's hallucination filter does.
Sentences of kind ``hand`` carry a hand-written hypothesis; their confidences are drawn with a
fixed seed: wrong words 0.20-0.80, correct words mostly 0.86-0.99 and 15% of them 0.30-0.85
(correct words with low confidence are what a careless corrector breaks).

Usage: .venv/bin/python benchmarks/correction_eval.py [--build] [--split dev|test] [--show N] [--embeddings]
       [--exact-only]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callpipe.demo_calls import speak_telephone_wav  # noqa: E402
from callpipe.recorder.dictionary import tokenize  # noqa: E402
from callpipe.stt.wer import align_words, normalize_spanish  # noqa: E402

EVAL_DIR = ROOT / "callpipe" / "data" / "eval"
SOURCES = EVAL_DIR / "correction_sources.jsonl"
VOICES = ("es", "es-419")
SPEEDS = (140, 155, 170)
COMPRESSION_RATIO_LIMIT = 2.4


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            row = json.loads(line)
            if "meta" not in row:
                rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------- build


def hand_confidences(reference: str, hypothesis: str, rng: random.Random) -> list[dict[str, Any]]:
    """Seeded confidences for a hand-written hypothesis (see the module docstring)."""
    hyp = tokenize(hypothesis)
    ref = [t.fold for t in tokenize(reference)]
    correct = set()
    matcher = SequenceMatcher(None, ref, [t.fold for t in hyp], autojunk=False)
    for block in matcher.get_matching_blocks():
        correct.update(range(block.b, block.b + block.size))
    out = []
    for i, token in enumerate(hyp):
        if i not in correct:
            conf = rng.uniform(0.20, 0.80)
        elif rng.random() < 0.15:
            conf = rng.uniform(0.30, 0.85)
        else:
            conf = rng.uniform(0.86, 0.99)
        out.append({"word": token.text, "confidence": round(conf, 4)})
    return out


def build(threads: int) -> None:
    """Write correction_dev.jsonl and correction_test.jsonl from the sources file."""
    from faster_whisper import WhisperModel

    from callpipe.stt.models import locate_model

    model_dir = locate_model()
    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
    rng = random.Random(20240611)
    out: dict[str, list[dict[str, Any]]] = {"dev": [], "test": []}
    counters: Counter[str] = Counter()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for row in read_jsonl(SOURCES):
            split, kind, reference = row["split"], row["kind"], row["reference"]
            counters[f"{split}-{kind}"] += 1
            item_id = f"{split}-{kind}-{counters[f'{split}-{kind}']:03d}"
            if kind == "hand":
                record = {
                    "id": item_id,
                    "source": "hand-made confusions, seeded confidences",
                    "reference": reference,
                    "hypothesis": row["hypothesis"],
                    "word_confidences": hand_confidences(reference, row["hypothesis"], rng),
                }
            else:
                voice, speed = rng.choice(VOICES), rng.choice(SPEEDS)
                wav = Path(tmp) / f"{item_id}.wav"
                speak_telephone_wav(reference, voice, speed, wav)
                segments, _ = model.transcribe(
                    str(wav),
                    language="es",
                    beam_size=1,
                    log_prob_threshold=None,  # re-decode at a higher temperature only on a loop
                    word_timestamps=True,
                    vad_filter=False,
                )
                # Like the STT stage's hallucination filter: drop looping segments.
                kept = [s for s in segments if s.compression_ratio <= COMPRESSION_RATIO_LIMIT]
                confidences = [
                    {"word": piece, "confidence": round(float(w.probability), 4)}
                    for s in kept
                    for w in (s.words or [])
                    for piece in w.word.split()
                ]
                record = {
                    "id": item_id,
                    "source": f"espeak-ng {voice} -s {speed}, 8 kHz; faster-whisper base int8 greedy",
                    "reference": reference,
                    "hypothesis": " ".join(c["word"] for c in confidences),
                    "word_confidences": confidences,
                }
            out[split].append(record)
            print(f"{item_id}: {record['hypothesis']}", file=sys.stderr)
    for split, records in out.items():
        path = EVAL_DIR / f"correction_{split}.jsonl"
        tmp_path = path.with_suffix(".jsonl.tmp")
        tmp_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
        tmp_path.replace(path)
        print(f"wrote {path.relative_to(ROOT)}: {len(records)} utterances")
    print(f"build took {time.perf_counter() - started:.1f} s")


# ------------------------------------------------------------------------------------- evaluate


def _correct_positions(reference: str, text: str) -> set[int]:
    """Indexes of the whitespace tokens of ``text`` that align equal to ``reference`` (accents ignored)."""
    ref = [t.fold for t in tokenize(reference)]
    hyp = [t.fold for t in tokenize(text)]
    matcher = SequenceMatcher(None, ref, hyp, autojunk=False)
    return {b.b + k for b in matcher.get_matching_blocks() for k in range(b.size)}


def judge_corrections(reference: str, before: str, after: str, corrections: list[Any]) -> list[str]:
    """Classify each correction: ``fixed`` (wrong word(s) -> right), ``broken`` (right -> wrong: a
    false correction), ``still_wrong`` or ``neutral`` (right -> right, e.g. an accent), in the
    order of ``corrections`` (sorted by position)."""
    ok_before = _correct_positions(reference, before)
    ok_after = _correct_positions(reference, after)
    out: list[str] = []
    shift = 0
    for c in corrections:
        n_in, n_out = len(c.original.split()), len(c.corrected.split())
        was_right = all(c.position + k in ok_before for k in range(n_in))
        start = c.position + shift
        is_right = all(start + k in ok_after for k in range(n_out))
        shift += n_out - n_in
        if was_right:
            out.append("neutral" if is_right else "broken")
        else:
            out.append("fixed" if is_right else "still_wrong")
    return out


def evaluate(split: str, show: int, use_embeddings: bool, exact_only: bool) -> None:
    from callpipe.correction import HybridCorrector, ScorerWeights

    path = EVAL_DIR / f"correction_{split}.jsonl"
    rows = read_jsonl(path)
    # max_confidence 0 leaves no word doubtful: the dictionary stage alone (ablation).
    weights = ScorerWeights(max_confidence=0.0) if exact_only else None
    corrector = HybridCorrector(weights=weights, use_embeddings=use_embeddings)
    corrector.process("el recibo de la lu", [0.9, 0.9, 0.9, 0.9, 0.3])  # warm-up: loads the models
    by_kind: dict[str, list[int]] = {}
    methods: Counter[str] = Counter()
    verdicts: dict[str, Counter[str]] = {}
    elapsed: list[float] = []
    shown = 0
    for row in rows:
        started = time.perf_counter()
        result = corrector.process(row["hypothesis"], row["word_confidences"])
        elapsed.append(time.perf_counter() - started)
        ref = normalize_spanish(row["reference"])
        kind = row["id"].split("-")[1]
        stats = by_kind.setdefault(kind, [0, 0, 0, 0])
        stats[0] += align_words(ref, normalize_spanish(row["hypothesis"])).errors
        stats[1] += align_words(ref, normalize_spanish(result.corrected_text)).errors
        stats[2] += len(ref)
        stats[3] += 1
        for c in result.corrections:
            methods[c.method] += 1
        judged = judge_corrections(
            row["reference"], row["hypothesis"], result.corrected_text, result.corrections
        )
        for c, verdict in zip(result.corrections, judged, strict=True):
            verdicts.setdefault(c.method, Counter())[verdict] += 1
        if shown < show and result.corrections:
            shown += 1
            print(f"  {row['id']}: {row['hypothesis']!r}\n    -> {result.corrected_text!r}")
            print(f"    ref {row['reference']!r}")
            for c in result.corrections:
                ev = {k: c.evidence.get(k) for k in ("rule", "score", "phrase", "context", "similarity")}
                print(f"    {c.method} {c.original!r}->{c.corrected!r} conf={c.confidence:.2f} {ev}")
    total = [sum(s[k] for s in by_kind.values()) for k in range(4)]
    mode = "with e5 embeddings" if use_embeddings else "without e5 embeddings"
    mode = "exact stage only" if exact_only else mode
    print(f"== {path.relative_to(ROOT)} ({mode}): {total[3]} utterances, {total[2]} reference words")
    for kind, s in [*sorted(by_kind.items()), ("all", total)]:
        print(
            f"  {kind:5s} WER before {s[0] / s[2]:.4f}  after {s[1] / s[2]:.4f}  "
            f"({s[0]} -> {s[1]} errors, {s[3]} utterances)"
        )
    by_method = ", ".join(f"{m} {n}" for m, n in sorted(methods.items()))
    print(f"  corrections: {sum(methods.values())} ({by_method})")
    for method, counts in sorted(verdicts.items()):
        print(
            f"    {method:8s} fixed {counts['fixed']:3d}  false (right -> wrong) {counts['broken']:3d}  "
            f"still wrong {counts['still_wrong']:3d}  neutral {counts['neutral']:3d}"
        )
    all_counts = sum(verdicts.values(), Counter())
    print(f"  false corrections (correct words changed): {all_counts['broken']}")
    ms = sorted(1000 * e for e in elapsed)
    mean, median = sum(ms) / len(ms), ms[len(ms) // 2]
    print(f"  time per utterance: mean {mean:.1f} ms, median {median:.1f} ms, max {ms[-1]:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="regenerate the eval sets (espeak + whisper)")
    parser.add_argument("--split", choices=("dev", "test"), action="append")
    parser.add_argument("--show", type=int, default=0, help="print N corrected utterances per split")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--embeddings", action="store_true", help="add e5 embeddings to phrase retrieval")
    parser.add_argument("--exact-only", action="store_true", help="ablation: dictionary stage alone")
    args = parser.parse_args(argv)
    if args.build:
        build(args.threads)
        return 0
    for split in args.split or ["dev", "test"]:
        evaluate(split, args.show, args.embeddings, args.exact_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
