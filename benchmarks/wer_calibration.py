"""Calibrate the STT quality gate (``callpipe.stt.quality.estimate_wer``) against measured WER.

Synthesises Spanish call-center phrases with espeak-ng (voices es / es-419, three speeds) and
degrades some of them (8 kHz telephone band via sox, white noise at 10 or 3 dB SNR) to spread
the difficulty. When the Debian packages ``asterisk-core-sounds-es-gsm`` and
``asterisk-core-sounds-es`` (real recorded es-MX telephone prompts with their texts,
CC-BY-SA-3.0) are installed, or ``--real-sounds/--real-text`` point at extracted copies, real
speech clips are added (some with 10 dB noise): espeak alone is so hard for Whisper base that
almost every clip is above the gate's threshold. Each clip is transcribed in greedy (normal)
mode and its true WER measured with ``callpipe.stt.wer``; the estimator's coefficients are
fitted on the clips of half of the phrases and reported on the other half: Pearson / Spearman
correlation, MAE and the gate's precision/recall for "true WER > 0.2". ``--write`` stores the
coefficients in callpipe/data/wer_calibration.json.

    .venv/bin/python benchmarks/wer_calibration.py [--rows cache.json] [--write]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from callpipe.stt.audio_input import decode_channels
from callpipe.stt.quality import OFFLINE_RETRANSCRIBE_WER_THRESHOLD, predict_wer, uncertainty_features
from callpipe.stt.transcriber import Transcriber
from callpipe.stt.wer import align_words, normalize_spanish, wer_details

OUTPUT = Path(__file__).resolve().parents[1] / "callpipe" / "data" / "wer_calibration.json"
REAL_SOUNDS = Path("/usr/share/asterisk/sounds/es_MX_f_Allison")
MIN_REAL_WORDS = 4
REAL_TEXT = Path("/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz")
FEATURES = {
    "confidences": ["mean_uncertainty", "low_fraction"],
    "decoder": ["mean_uncertainty", "low_fraction", "neg_logprob"],
}
VOICES = ("es", "es-419")
SPEEDS = (125, 155, 185)
DEGRADATIONS = ("clean", "telephone", "noise10", "noise3")
PHRASES = [
    "Buenos días, le atiende Laura, ¿en qué puedo ayudarle?",
    "Quiero consultar el saldo de mi cuenta corriente.",
    "Me han cobrado dos veces la misma factura este mes.",
    "¿Me puede indicar su número de documento de identidad?",
    "La transferencia tardará entre uno y dos días hábiles.",
    "Necesito cambiar la dirección de envío de mi pedido.",
    "Mi tarjeta ha sido bloqueada y no puedo pagar.",
    "Le paso con el departamento de reclamaciones.",
    "El importe pendiente es de ciento veinte euros.",
    "¿Desea que le enviemos el justificante por correo electrónico?",
    "Llevo tres días sin conexión a internet en casa.",
    "Vamos a programar la visita de un técnico para mañana.",
    "Quiero darme de baja del servicio de televisión.",
    "Su contrato tiene permanencia hasta el mes de octubre.",
    "Disculpe las molestias, ahora mismo lo revisamos.",
    "¿Podría repetirme el código postal, por favor?",
    "He recibido un cargo que no reconozco en mi extracto.",
    "La oferta incluye fibra, móvil y llamadas ilimitadas.",
    "Le confirmo que la devolución ya está tramitada.",
    "Estoy muy molesto porque nadie me ha llamado.",
    "¿A nombre de quién está la póliza del seguro?",
    "El plazo para presentar la reclamación es de treinta días.",
    "Quiero aplazar el pago del recibo hasta final de mes.",
    "Su número de incidencia es el cuatro cinco siete dos.",
    "Gracias por su paciencia, enseguida le atiendo.",
    "Necesito una copia de las facturas del último año.",
    "No funciona la aplicación del banco en mi teléfono.",
    "Voy a abrir una incidencia con prioridad alta.",
    "¿Le puedo ayudar en algo más?",
    "La entrega está prevista para el jueves por la tarde.",
    "He perdido la contraseña de acceso a la web.",
    "Le enviaremos un mensaje con el código de verificación.",
    "Quiero contratar una tarifa con más datos móviles.",
    "El técnico no vino a la cita que teníamos ayer.",
    "Su préstamo tiene un interés fijo del cuatro por ciento.",
    "Por motivos de seguridad, esta llamada puede ser grabada.",
    "Me gustaría hablar con un supervisor, por favor.",
    "La factura de la luz ha subido mucho este invierno.",
    "Puede consultar el estado del pedido en nuestra página web.",
    "Muchas gracias por llamar, que tenga un buen día.",
]


def synthesize(text: str, voice: str, speed: int, degradation: str, rng: np.random.Generator) -> np.ndarray:
    """espeak-ng clip at 16 kHz, optionally band-limited to 8 kHz telephony or mixed with noise."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
        effects = ["rate", "8000", "sinc", "300-3400"] if degradation == "telephone" else ["rate", "16000"]
        subprocess.run(["sox", str(raw), "-c", "1", "-b", "16", str(out), *effects], check=True)
        samples = decode_channels(out)[0]
    samples = np.pad(samples, (int(0.3 * 16000), int(0.3 * 16000)))
    if degradation.startswith("noise"):
        snr_db = float(degradation.removeprefix("noise"))
        power = float(np.mean(samples[samples != 0] ** 2))
        noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), samples.shape)
        samples = np.clip(samples + noise, -1.0, 1.0).astype(np.float32)
    return samples


def collect(transcriber: Transcriber, clips_per_phrase: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    chooser = random.Random(seed)
    conditions = [(v, s, d) for v in VOICES for s in SPEEDS for d in DEGRADATIONS]
    rows = []
    for index, phrase in enumerate(PHRASES):
        for voice, speed, degradation in chooser.sample(conditions, clips_per_phrase):
            samples = synthesize(phrase, voice, speed, degradation, rng)
            result = transcriber.transcribe_samples(samples)
            truth = wer_details(phrase, result.text)
            rows.append(
                {
                    "phrase": index,
                    "condition": f"{voice}/{speed}/{degradation}",
                    "audio_seconds": len(samples) / 16000,
                    "elapsed": result.elapsed_seconds,
                    "hypothesis": result.text,
                    "true_wer": truth.wer,
                    "features": uncertainty_features(result.word_confidences, result.segments),
                }
            )
    return rows


def load_real_prompts(sounds: Path, text: Path) -> list[tuple[str, str]]:
    """(file stem, text) of the Asterisk Spanish prompt sentences that have a .gsm file."""
    opener = gzip.open if text.suffix == ".gz" else open
    with opener(text, "rt", encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    prompts = []
    for line in lines:
        match = re.match(r"^([\w/-]+):\s*(.+)$", line)
        # "[tono simple]"-style entries are sound effects; single digits, letters and words are
        # not call speech (and a one-word WER is 0 or 1): keep sentences.
        if (
            match
            and "[" not in match.group(2)
            and len(match.group(2).split()) >= MIN_REAL_WORDS
            and (sounds / f"{match.group(1)}.gsm").is_file()
        ):
            prompts.append((match.group(1), match.group(2).strip()))
    return sorted(prompts)


def collect_real(
    transcriber: Transcriber, sounds: Path, prompts: list[tuple[str, str]], count: int, seed: int
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    chosen = random.Random(seed).sample(prompts, min(count, len(prompts)))
    rows = []
    for index, (stem, text) in enumerate(chosen):
        samples = decode_channels(sounds / f"{stem}.gsm")[0]
        degradation = "noise10" if index % 3 == 2 else "clean"
        if degradation == "noise10":
            power = float(np.mean(samples[np.abs(samples) > 1e-4] ** 2))
            noise = rng.normal(0.0, np.sqrt(power / 10), samples.shape)
            samples = np.clip(samples + noise, -1.0, 1.0).astype(np.float32)
        result = transcriber.transcribe_samples(samples)
        # The prompt texts are written without accents and without ñ ("contrasena"): fold ñ too.
        reference = [w.replace("ñ", "n") for w in normalize_spanish(text)]
        hypothesis = [w.replace("ñ", "n") for w in normalize_spanish(result.text)]
        rows.append(
            {
                "source": "asterisk",
                "phrase": f"asterisk:{stem}",
                "condition": f"es_MX_f_Allison/gsm/{degradation}",
                "audio_seconds": len(samples) / 16000,
                "elapsed": result.elapsed_seconds,
                "hypothesis": result.text,
                "true_wer": align_words(reference, hypothesis).wer,
                "features": uncertainty_features(result.word_confidences, result.segments),
            }
        )
    return rows


def fit(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Least squares on [1, features] -> min(true WER, 1); features with a negative slope are dropped
    and the fit repeated, so the estimate never falls as uncertainty rises."""
    rows = [r for r in rows if r["features"]["words"] > 0]  # empty transcripts estimate 1.0 by rule
    target = np.array([min(r["true_wer"], 1.0) for r in rows])
    active = list(names)
    while True:
        design = np.column_stack([np.ones(len(rows))] + [[r["features"][n] for r in rows] for n in active])
        coefs, *_ = np.linalg.lstsq(design, target, rcond=None)
        negative = [n for n, c in zip(active, coefs[1:], strict=True) if c < 0]
        if not negative:
            break
        active.remove(negative[0])
    return {
        "intercept": round(float(coefs[0]), 6),
        "coefficients": {n: round(float(c), 6) for n, c in zip(active, coefs[1:], strict=True)},
    }


def _ranks(values: np.ndarray) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):  # average ranks of ties
        ties = values == value
        ranks[ties] = ranks[ties].mean()
    return ranks


def evaluate(estimates: np.ndarray, truth: np.ndarray, threshold: float) -> dict[str, float]:
    bad, flagged = truth > threshold, estimates > threshold
    true_positive = int(np.sum(bad & flagged))
    return {
        "n": len(truth),
        "pearson": round(float(np.corrcoef(estimates, truth)[0, 1]), 3),
        "spearman": round(float(np.corrcoef(_ranks(estimates), _ranks(truth))[0, 1]), 3),
        "mae": round(float(np.mean(np.abs(estimates - np.minimum(truth, 1.0)))), 3),
        "share_true_wer_over_threshold": round(float(bad.mean()), 3),
        "gate_precision": round(true_positive / max(int(flagged.sum()), 1), 3),
        "gate_recall": round(true_positive / max(int(bad.sum()), 1), 3),
        "gate_accuracy": round(float(np.mean(bad == flagged)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips-per-phrase", type=int, default=3)
    parser.add_argument("--real-clips", type=int, default=120, help="real prompts to use when available")
    parser.add_argument("--real-sounds", type=Path, default=REAL_SOUNDS)
    parser.add_argument("--real-text", type=Path, default=REAL_TEXT)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", type=Path, help="reuse (if present) or save the measured rows here")
    parser.add_argument("--write", action="store_true", help=f"store the coefficients in {OUTPUT}")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    if args.rows and args.rows.exists():
        rows = json.loads(args.rows.read_text())
        print(f"reusing {len(rows)} measured clips from {args.rows}")
    sources = {r["source"] for r in rows}
    real_available = args.real_sounds.is_dir() and args.real_text.is_file()
    missing = {"espeak"} | ({"asterisk"} if real_available and args.real_clips else set())
    missing -= sources
    if missing:
        transcriber = Transcriber()
        print(
            f"model load {transcriber.load_seconds:.2f}s on {transcriber.device}/{transcriber.compute_type}"
        )
        started = time.perf_counter()
        if "espeak" in missing:
            rows += collect(transcriber, args.clips_per_phrase, args.seed)
        if "asterisk" in missing:
            prompts = load_real_prompts(args.real_sounds, args.real_text)
            rows += collect_real(transcriber, args.real_sounds, prompts, args.real_clips, args.seed)
        print(f"transcribed {len(rows)} clips in {time.perf_counter() - started:.0f}s")
        if args.rows:
            args.rows.write_text(json.dumps(rows))
    if not real_available:
        print("real prompts not found (asterisk-core-sounds-es-gsm): espeak clips only")
    for source in sorted({r["source"] for r in rows}):
        part = [r for r in rows if r["source"] == source]
        audio = sum(r["audio_seconds"] for r in part)
        print(
            f"{source}: {len(part)} clips, {audio:.0f}s audio, mean clip {audio / len(part):.1f}s, "
            f"greedy {sum(r['elapsed'] for r in part) / len(part):.2f}s per clip, "
            f"true WER mean {np.mean([r['true_wer'] for r in part]):.3f}, "
            f"share > {OFFLINE_RETRANSCRIBE_WER_THRESHOLD}: "
            f"{np.mean([r['true_wer'] > OFFLINE_RETRANSCRIBE_WER_THRESHOLD for r in part]):.2f}"
        )

    phrases = sorted({r["phrase"] for r in rows})
    train_phrases = set(random.Random(args.seed).sample(phrases, len(phrases) // 2))
    train = [r for r in rows if r["phrase"] in train_phrases]
    test = [r for r in rows if r["phrase"] not in train_phrases]
    threshold = OFFLINE_RETRANSCRIBE_WER_THRESHOLD
    models = {kind: fit(train, names) for kind, names in FEATURES.items()}
    calibration = {"models": models}
    report: dict[str, Any] = {}
    for label, subset in [("all", test)] + [
        (source, [r for r in test if r["source"] == source]) for source in sorted({r["source"] for r in test})
    ]:
        truth = np.array([r["true_wer"] for r in subset])
        report[label] = {
            kind: evaluate(np.array([_estimate(r, kind, calibration) for r in subset]), truth, threshold)
            for kind in FEATURES
        }
        raw = np.array([r["features"]["mean_uncertainty"] for r in subset])
        report[label]["uncalibrated_mean_uncertainty"] = evaluate(raw, truth, threshold)
    print(f"fitted on {len(train)} clips, held out {len(test)} clips (split by phrase)")
    for label, kinds in report.items():
        for kind, metrics in kinds.items():
            print(f"{label:9s} {kind:30s} " + " ".join(f"{k}={v}" for k, v in metrics.items()))
    print("coefficients:", json.dumps(models))
    if args.write:
        document = {
            "version": 1,
            "models": models,
            "how": (
                "benchmarks/wer_calibration.py: espeak-ng Spanish call-center phrases (voices es/es-419, "
                "speeds 125/155/185, clean / 8 kHz telephone band / white noise 10 dB / 3 dB)"
                + (
                    " plus real es-MX telephone prompts (Debian asterisk-core-sounds-es-gsm, CC-BY-SA-3.0, "
                    "a third with 10 dB noise)"
                    if "asterisk" in {r["source"] for r in rows}
                    else ""
                )
                + ", transcribed by the bundled Whisper base in greedy mode; least squares of "
                "min(true WER, 1) on the features with non-negative slopes; fitted on the clips of half "
                "of the phrases, reported on the other half (held_out)."
            ),
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seed": args.seed,
            "train_clips": len(train),
            "held_out": report,
        }
        OUTPUT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {OUTPUT}")


def _estimate(row: dict[str, Any], kind: str, calibration: dict[str, Any]) -> float:
    features = dict(row["features"])
    if kind == "confidences":
        features.pop("neg_logprob", None)
    return predict_wer(features, calibration=calibration)


if __name__ == "__main__":
    main()
