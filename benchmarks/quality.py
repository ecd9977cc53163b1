"""The quality table of callpipe on its held-out sets, with targets.

- WER of the live transcript and after offline processing, on real recorded Spanish speech:
  the es-MX telephone prompts of Debian's ``asterisk-core-sounds-es-gsm`` (CC-BY-SA-3.0, texts in
  ``asterisk-core-sounds-es``). Live = the bundled Whisper base, greedy (what a streaming bot
  gives); offline = callpipe's path: WER gate, premium re-transcription (beam 5, VAD), hybrid
  correction. Also on the synthetic stereo demo calls through the full pipeline.
- Sentiment polarity and intent accuracy on ``callpipe/data/eval/*_test.jsonl`` (never fitted on).
- Entity precision/recall per kind on ``callpipe/data/eval/entities_test.jsonl``.
- Seconds per stage per audio minute, from the demo-call pipeline run.

    .venv/bin/python benchmarks/quality.py [--real-clips 60]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from entities_eval import evaluate as entity_counts  # noqa: E402
from wer_calibration import REAL_SOUNDS, REAL_TEXT, load_real_prompts  # noqa: E402

from callpipe.analysis.analyzer import Analyzer  # noqa: E402
from callpipe.analysis.text import load_examples  # noqa: E402
from callpipe.correction import process_offline  # noqa: E402
from callpipe.demo_calls import load_demo_calls  # noqa: E402
from callpipe.finalizer import process_recording  # noqa: E402
from callpipe.recorder import Recorder  # noqa: E402
from callpipe.stage_list import StageModels  # noqa: E402
from callpipe.storage import LocalStore  # noqa: E402
from callpipe.stt import Transcriber, estimate_wer, needs_retranscription  # noqa: E402
from callpipe.stt.audio_input import decode_channels  # noqa: E402
from callpipe.stt.wer import align_words, normalize_spanish  # noqa: E402

EVAL = BENCH.parent / "callpipe" / "data" / "eval"
POLARITY = {"positive": "positive", "neutral": "neutral", "negative": "negative", "frustrated": "negative"}
ENTITY_TARGET_KINDS = ["account", "national_id", "email", "phone", "amount"]


def corpus_wer(pairs: list[tuple[str, str]], fold_enye: bool = False) -> float:
    errors = words = 0
    for reference, hypothesis in pairs:
        ref, hyp = normalize_spanish(reference), normalize_spanish(hypothesis)
        if fold_enye:
            ref, hyp = [w.replace("ñ", "n") for w in ref], [w.replace("ñ", "n") for w in hyp]
        result = align_words(ref, hyp)
        errors += result.errors
        words += len(ref)
    return errors / words if words else 0.0


def real_speech(transcriber: Transcriber, clips: int) -> dict[str, float] | None:
    if not (REAL_SOUNDS.is_dir() and REAL_TEXT.is_file()):
        print("real speech: asterisk-core-sounds-es(-gsm) not installed; skipped")
        return None
    prompts = random.Random(7).sample(load_real_prompts(REAL_SOUNDS, REAL_TEXT), clips)
    live_pairs, offline_pairs, audio, retranscribed = [], [], 0.0, 0
    for stem, text in prompts:
        samples = decode_channels(REAL_SOUNDS / f"{stem}.gsm")[0]
        audio += len(samples) / 16000
        live = transcriber.transcribe_samples(samples)
        words = live.word_confidences
        final_text, final_words = live.text, words
        if needs_retranscription(estimate_wer(words) if words else 1.0):
            premium = transcriber.transcribe_samples(samples, premium=True)
            retranscribed += 1
            final_text, final_words = premium.text, premium.word_confidences
        corrected = process_offline(final_text, final_words).corrected_text
        live_pairs.append((text, live.text))
        offline_pairs.append((text, corrected))
    return {
        "clips": len(prompts),
        "audio_minutes": audio / 60,
        "retranscribed": retranscribed,
        "live": corpus_wer(live_pairs, True),
        "offline": corpus_wer(offline_pairs, True),
    }


def demo_pipeline() -> tuple[dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        store, services = LocalStore(tmp), StageModels()
        recorder = Recorder(store)
        audio_minutes, live_pairs, final_pairs = 0.0, [], []
        stage_seconds: dict[str, float] = defaultdict(float)
        for call in load_demo_calls():
            saved = recorder.record_sync(
                call.audio,
                call.conversation_id,
                transcription=call.live_text,
                word_confidences=call.live_word_confidences,
                timestamp=datetime(2026, 11, 1, 10, tzinfo=UTC),
                audio_format="flac",
            )
            meta = process_recording(store, saved.save.recording_id, services)
            audio_minutes += meta.audio.duration_seconds / 60
            live_pairs.append((call.reference_text, call.live_text))
            final_pairs.append((call.reference_text, meta.transcription.corrected_text or ""))
            for stage, seconds in meta.processing_metrics.stage_seconds.items():
                stage_seconds[stage] += seconds
    per_minute = {stage: seconds / audio_minutes for stage, seconds in stage_seconds.items()}
    return (
        {"calls": len(live_pairs), "live": corpus_wer(live_pairs), "offline": corpus_wer(final_pairs)},
        per_minute,
    )


def accuracy() -> dict[str, float]:
    analyzer = Analyzer()
    sentiment = load_examples(EVAL / "sentiment_test.jsonl", "label")
    intents = load_examples(EVAL / "intent_test.jsonl", "intent")
    polarity_hits = sum(POLARITY[analyzer.analyze(t).sentiment.label] == POLARITY[g] for t, g in sentiment)
    intent_hits = sum(analyzer.analyze(t).intent.primary_intent == g for t, g in intents)
    return {
        "polarity": polarity_hits / len(sentiment),
        "intent": intent_hits / len(intents),
        "n_sentiment": len(sentiment),
        "n_intent": len(intents),
    }


def row(measure: str, dataset: str, value: str, target: str = "") -> None:
    print(f"| {measure} | {dataset} | {value} | {target} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-clips", type=int, default=60)
    args = parser.parse_args()
    started = time.perf_counter()
    transcriber = Transcriber()
    real = real_speech(transcriber, args.real_clips) if args.real_clips else None
    demo, per_minute = demo_pipeline()
    acc = accuracy()
    entities = entity_counts(EVAL / "entities_test.jsonl", names=True, show_errors=False)

    print("\n| measure | set | value | target |\n|---|---|---|---|")
    if real:
        clips = f"real es-MX prompts, {real['clips']} clips, {real['audio_minutes']:.1f} min"
        row("WER live (greedy)", clips, f"{real['live']:.3f}")
        offline = f"WER offline ({real['retranscribed']} re-transcribed, corrected)"
        row(offline, "same", f"{real['offline']:.3f}", f"<= {real['live'] / 2:.3f} (half of live)")
    row("WER live", f"demo calls (espeak, stereo), {demo['calls']} calls", f"{demo['live']:.3f}")
    row("WER offline (full pipeline)", "same", f"{demo['offline']:.3f}", f"<= {demo['live'] / 2:.3f}")
    row("sentiment polarity accuracy", f"held-out, n={acc['n_sentiment']}", f"{acc['polarity']:.3f}", "0.85")
    row("intent accuracy", f"held-out, n={acc['n_intent']}", f"{acc['intent']:.3f}", "0.85")
    for kind in [*ENTITY_TARGET_KINDS, "card", "date"]:
        tp, fp, fn = entities[kind]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        target = "0.95 / 0.95" if kind in ENTITY_TARGET_KINDS else ""
        row(
            f"entity {kind} precision / recall",
            f"held-out, {tp + fn} gold",
            f"{precision:.3f} / {recall:.3f}",
            target,
        )
    for stage, seconds in sorted(per_minute.items(), key=lambda kv: -kv[1]):
        row(f"seconds per audio minute: {stage}", "demo calls", f"{seconds:.2f}")
    print(f"\n(total benchmark time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
