"""Sentiment and intent on *spoken* calls: speech -> Whisper -> callpipe, next to the typed text.

Usage: ``python benchmarks/spoken_eval.py [--set holdout|test] [--beam] [--every K] [--cache DIR] [--errors]``

Each snippet of the evaluation set is spoken by espeak-ng (voice ``es``, rate 130, pitch 50, no
randomness), resampled to 16 kHz by sox without dither, transcribed by the bundled Whisper base
(greedy like the live recorder; ``--beam`` uses the offline beam-5 + VAD mode), and the transcript
is classified by the same :class:`Analyzer` as the typed text. Accuracy and macro-F1 are printed
for both, with the word error rate of the transcripts (jiwer when installed, else a built-in edit distance).

espeak's voice is robotic and Whisper base mis-hears many of its words, so the spoken numbers are a
lower bound for real callers; they show how much of the classifiers' accuracy survives ASR errors.
Transcripts are cached per (text, voice settings, decoding mode, model) under ``--cache`` (default
``~/.cache/callpipe/spoken-eval``), so a second run only re-classifies. Every number printed is
measured in this run or read from that cache of this machine's own transcripts.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from analysis_eval import EVAL, EVAL_SETS, POLARITY, report, show_errors  # noqa: E402

from callpipe.analysis.analyzer import Analyzer  # noqa: E402
from callpipe.analysis.text import fold, load_examples  # noqa: E402

VOICE = ("es", 130, 50)
"""espeak-ng voice, words per minute, pitch (130 wpm: at 150 Whisper base mis-heard 46% of the words)."""


def speak(text: str, directory: Path) -> Path:
    """espeak-ng speech of ``text`` as a 16 kHz mono 16-bit WAV (deterministic)."""
    voice, rate, pitch = VOICE
    raw, out = directory / "raw.wav", directory / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(raw), text], check=True
    )
    # -D: no dither, so the same text always gives the same samples
    subprocess.run(["sox", "-D", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True)
    return out


def word_error_rate(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER on folded words (jiwer when installed)."""
    refs, hyps = [fold(r) for r in refs], [fold(h) or "<vacio>" for h in hyps]
    try:
        import jiwer

        return float(jiwer.wer(refs, hyps))
    except ImportError:
        errors = total = 0
        for r, h in zip(refs, hyps, strict=True):
            a, b = r.split(), h.split()
            row = list(range(len(b) + 1))
            for i, x in enumerate(a, 1):
                prev, row[0] = row[0], i
                for j, y in enumerate(b, 1):
                    prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
            errors += row[-1]
            total += len(a)
        return errors / max(total, 1)


def transcripts(texts: list[str], beam: bool, cache: Path) -> tuple[list[str], int, float]:
    """Whisper transcripts of the spoken ``texts`` (cached); also how many were decoded and their seconds."""
    from callpipe.stt.transcriber import Transcriber

    transcriber: Transcriber | None = None
    cache.mkdir(parents=True, exist_ok=True)
    out, decoded, seconds = [], 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for text in texts:
            mode = "beam5+vad" if beam else "greedy"
            key = hashlib.sha256(repr((text, VOICE, "sox-D", mode, "whisper-base")).encode()).hexdigest()[:32]
            path = cache / f"{key}.txt"
            if path.exists():
                out.append(path.read_text(encoding="utf-8"))
                continue
            if transcriber is None:
                transcriber = Transcriber()
            wav = speak(text, Path(tmp))
            started = time.perf_counter()
            result = transcriber.transcribe(wav, premium=beam)
            seconds += time.perf_counter() - started
            decoded += 1
            part = path.with_suffix(".part")
            part.write_text(result.text, encoding="utf-8")
            os.replace(part, path)
            out.append(result.text)
    return out, decoded, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(EVAL_SETS), default="holdout")
    parser.add_argument("--beam", action="store_true", help="offline mode: beam 5 + VAD (default greedy)")
    parser.add_argument("--every", type=int, default=1, help="every K-th snippet per file")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "callpipe" / "spoken-eval")
    parser.add_argument("--errors", action="store_true", help="list every misclassified spoken snippet")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    sentiment_file, intent_file = EVAL_SETS[args.set]
    rows = {
        "sentiment": load_examples(EVAL / sentiment_file, "label"),
        "intent": load_examples(EVAL / intent_file, "intent"),
    }
    rows = {k: v[:: max(1, args.every)] for k, v in rows.items()}
    texts = [t for v in rows.values() for t, _ in v]
    heard, decoded, seconds = transcripts(texts, args.beam, args.cache)
    mode = "beam 5 + VAD" if args.beam else "greedy"
    print(f"{len(texts)} snippets of {args.set!r} spoken by espeak-ng {VOICE}, Whisper base {mode}: "
          f"{decoded} decoded in {seconds:.1f} s, {len(texts) - decoded} from cache; "
          f"WER {word_error_rate(texts, heard):.3f}")
    analyzer = Analyzer()
    spoken = dict(zip(texts, heard, strict=True))
    for source in ("typed", "spoken"):
        pick = (lambda t: t) if source == "typed" else spoken.__getitem__
        s_rows = [(pick(t), g) for t, g in rows["sentiment"]]
        i_rows = [(pick(t), g) for t, g in rows["intent"]]
        pred_s = [analyzer.analyze(t).sentiment.label for t, _ in s_rows]
        pred_i = [analyzer.analyze(t).intent.primary_intent for t, _ in i_rows]
        gold_s = [g for _, g in s_rows]
        report(f"{source} sentiment polarity", [POLARITY[g] for g in gold_s], [POLARITY[p] for p in pred_s])
        report(f"{source} sentiment 4-class", gold_s, pred_s)
        report(f"{source} intent", [g for _, g in i_rows], pred_i)
        if args.errors and source == "spoken":
            show_errors(s_rows, pred_s)
            show_errors(i_rows, pred_i)


if __name__ == "__main__":
    main()
