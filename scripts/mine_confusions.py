"""Mine Spanish ASR confusions for the online dictionary from synthetic domain speech.

Builds banking / telecom / utility phrases from templates, speaks each with espeak-ng
(voices ``es`` and ``es-419`` at two speeds, telephone band through sox), transcribes them
with the bundled faster-whisper base model (found by ``callpipe.stt.models.locate_model``;
greedy, ``language="es"``, word timestamps, no temperature fallback), aligns hypothesis to
reference with a word-level Levenshtein alignment and counts the substitutions with the
recogniser's word confidences.

Writes ``callpipe/data/confusions_mined.tsv`` (one row per ``wrong -> right`` pair with
count and confidence statistics). The dictionary ``callpipe/data/confusions_es.jsonl`` is
curated by hand from that report: entries with mining evidence carry ``"source": "mined"``.

Espeak audio is robotic, so the error *rates* say nothing about real calls; the *kinds* of
confusion (which word the model hears instead of which) are what this script is for.

Usage: .venv/bin/python scripts/mine_confusions.py [--phrases 188] [--out PATH]
(188 phrases, all the templates give, took 450 s on 2 shared cores.)
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callpipe.demo_calls import speak_telephone_wav  # noqa: E402
from callpipe.stt.models import locate_model  # noqa: E402
from callpipe.stt.wer import word_alignment  # noqa: E402

DEFAULT_OUT = ROOT / "callpipe" / "data" / "confusions_mined.tsv"
VARIANTS = [("es", 145), ("es-419", 145), ("es", 175), ("es-419", 175)]
GROUP = 5
PUNCT = "¿¡?!.,;:\"'«»()[]…-"

# Templates: {slot} names refer to the lists in SLOTS. Kept free of digits so that the
# reference and Whisper's digit formatting do not produce fake substitutions.
TEMPLATES = [
    "necesito revisar el saldo de mi cuenta {cuenta_tipo}",
    "quiero consultar el saldo disponible de la cuenta {cuenta_tipo}",
    "me han cobrado una comisión por {motivo_comision}",
    "no reconozco un cargo en mi tarjeta de {tarjeta_tipo}",
    "quiero bloquear la tarjeta de {tarjeta_tipo} porque la he perdido",
    "me gustaría hacer una transferencia a la cuenta de mi {familiar}",
    "la transferencia no ha llegado todavía a la cuenta de destino",
    "quiero cancelar la domiciliación del recibo de {suministro}",
    "el recibo de {suministro} me ha llegado duplicado este mes",
    "no puedo hacer un bizum desde la aplicación del banco",
    "he olvidado el pin de la tarjeta y la clave de acceso",
    "quiero pedir un préstamo personal para {motivo_prestamo}",
    "cuánto cuesta la tarifa de {tarifa}",
    "me cuesta entender la factura de este mes",
    "salgo de casa a las ocho y vuelvo por la tarde",
    "la hipoteca tiene un interés variable muy alto",
    "quiero saber el importe de la última cuota de la hipoteca",
    "necesito el extracto de los movimientos de la cuenta",
    "quiero dar de alta una nueva línea {linea_tipo}",
    "quiero dar de baja la línea {linea_tipo} que tengo contratada",
    "la fibra óptica no funciona desde ayer por la tarde",
    "el router no tiene conexión a internet",
    "me quedo sin datos móviles a mitad de mes",
    "quiero la portabilidad de mi número a otra compañía",
    "tengo permanencia en el contrato de {tarifa}",
    "no tengo cobertura en {lugar}",
    "el técnico no ha venido a reparar la avería",
    "quiero cambiar la potencia contratada de la luz",
    "la lectura del contador de {suministro} no es correcta",
    "el suministro de {suministro} está cortado desde esta mañana",
    "me han cortado la luz por un impago",
    "quiero cambiar el titular del contrato de {suministro}",
    "quiero poner una reclamación por la factura de {suministro}",
    "necesito la devolución del recibo que me han cargado",
    "el cajero se ha tragado mi tarjeta",
    "quiero activar los pagos con el móvil",
    "la oficina de mi sucursal está cerrada",
    "quiero cambiar la dirección de envío de las facturas",
    "me llega un mensaje con un código de verificación",
    "la contraseña de la banca online no funciona",
    "quiero abrir una cuenta {cuenta_tipo} a nombre de mi {familiar}",
    "quiero cerrar la cuenta {cuenta_tipo} que tengo en este banco",
    "el número de cuenta empieza por es",
    "me han denegado el crédito sin explicación",
    "la tarjeta de débito no funciona en el extranjero",
    "quiero aumentar el límite de la tarjeta de crédito",
    "he recibido un correo sospechoso pidiendo mis datos",
    "quiero hablar con un agente por favor",
    "la atención al cliente es muy lenta",
    "mi número de cliente no aparece en el sistema",
    "me cobran el roaming aunque estaba en casa",
    "quiero contratar más megas para el móvil",
    "el consumo de gas ha subido mucho este invierno",
    "quiero pasarme a la tarifa de {tarifa}",
    "el recargo por pago atrasado no es justo",
    "necesito un certificado de titularidad de la cuenta",
    "el seguro del hogar está incluido en la hipoteca",
    "quiero fraccionar el pago de la factura",
    "el importe del cargo es mayor de lo normal",
    "quiero saber por qué me han subido la cuota",
    "ha sido imposible contactar con ustedes",
    "he llamado tres veces y nadie me ha ayudado",
    "a ver si me pueden ayudar con la factura",
    "tuve que pagar la penalización por cancelar",
    "hola buenos días llamaba por una incidencia",
    "el contrato está a nombre de mi {familiar}",
    "mi {familiar} es el titular de la línea",
    "me han hecho un cargo que no he autorizado",
    "quiero revisar los movimientos de la tarjeta de {tarjeta_tipo}",
    "la aplicación me pide la firma electrónica",
    "el ingreso en efectivo no aparece en la cuenta",
    "quiero un plan de pensiones con menos comisiones",
    "la nómina no está domiciliada en esta cuenta",
    "la avería de la fibra sigue sin resolverse",
    "se me ha bloqueado la tarjeta sim del móvil",
    "quiero recibir la factura electrónica por correo",
    "el descuento no se ha aplicado en la factura",
    "el precio de la luz ha subido mucho",
    "quiero el bono social de la luz",
    "la empresa de agua no contesta a mis correos",
    "quiero consultar los intereses del depósito a plazo fijo",
    "la comisión de mantenimiento de la cuenta es muy cara",
    "me han retenido la nómina por un embargo",
    "necesito un préstamo hipotecario para comprar un piso",
    "quiero amortizar parte de la hipoteca este año",
    "el cajero automático no me da el dinero",
    "la tarjeta está caducada y no me ha llegado la nueva",
    "me han suplantado la identidad en la banca electrónica",
    "quiero hacer un ingreso en la cuenta de mi {familiar}",
    "quiero cambiar el número de teléfono asociado a la cuenta",
    "la señal del móvil se corta constantemente",
    "la velocidad de la fibra es mucho más baja de lo contratado",
    "el decodificador de la televisión no enciende",
    "quiero activar el desvío de llamadas",
    "me han facturado llamadas que no he hecho",
    "quiero saber cuánto consumo de datos me queda",
    "la compañía me ha subido la cuota sin avisar",
    "el contador de la luz marca un consumo excesivo",
    "quiero solicitar un cambio de comercializadora",
    "la factura de gas tiene una lectura estimada",
    "el boletín eléctrico de la instalación está caducado",
    "quiero dar de alta el suministro de agua en el piso nuevo",
    "hay una fuga de gas en la cocina",
    "el término de potencia es demasiado alto",
    "quiero revisar las condiciones de la tarifa regulada",
    "la devolución del seguro todavía no está en la cuenta",
    "mi cuenta aparece en números rojos",
    "quiero saber cuál es el código swift del banco",
    "la operación ha sido rechazada por saldo insuficiente",
    "he recibido un mensaje diciendo que mi cuenta está bloqueada",
]

SLOTS = {
    "cuenta_tipo": ["corriente", "de ahorro", "nómina", "joven", "bancaria", "online"],
    "motivo_comision": ["mantenimiento", "descubierto", "transferencia", "retirada de efectivo"],
    "tarjeta_tipo": ["crédito", "débito", "prepago"],
    "familiar": ["hijo", "hija", "madre", "padre", "mujer", "marido", "hermano"],
    "suministro": ["luz", "gas", "agua", "teléfono", "internet"],
    "motivo_prestamo": ["un coche", "reformar la casa", "los estudios", "pagar deudas"],
    "tarifa": ["fibra y móvil", "datos ilimitados", "luz con discriminación horaria", "gas natural"],
    "linea_tipo": ["de móvil", "fija", "de prepago", "de contrato"],
    "lugar": ["mi casa", "el pueblo", "la oficina", "el garaje"],
}


@dataclass
class PairStats:
    """Occurrences of one ``wrong -> right`` substitution."""

    count: int = 0
    confidences: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def make_phrases(limit: int, seed: int = 7) -> list[str]:
    """Fill every template with slot values, shuffled deterministically, at most ``limit``."""
    rng = random.Random(seed)
    phrases: set[str] = set()
    for template in TEMPLATES:
        names = [n for n in SLOTS if "{" + n + "}" in template]
        if not names:
            phrases.add(template)
            continue
        for _ in range(8):
            phrases.add(template.format(**{n: rng.choice(SLOTS[n]) for n in names}))
    ordered = sorted(phrases)
    rng.shuffle(ordered)
    return ordered[:limit]


def norm(word: str) -> str:
    return unicodedata.normalize("NFC", word.strip().strip(PUNCT).lower())


def substitutions(ref: list[str], hyp: list[str]) -> list[tuple[str, str, list[int]]]:
    """(right, wrong, hyp indexes) for each run of errors between two matches.

    Runs of equal length give word-for-word pairs; unequal runs of at most three words a
    side give one phrase pair (``bizum`` heard as ``vis um``). Pure insertions/deletions
    are not confusions and are skipped.
    """
    out: list[tuple[str, str, list[int]]] = []
    run_ref: list[int] = []
    run_hyp: list[int] = []

    def flush() -> None:
        if run_ref and run_hyp:
            if len(run_ref) == len(run_hyp):
                for r, h in zip(run_ref, run_hyp, strict=True):
                    out.append((ref[r], hyp[h], [h]))
            elif len(run_ref) <= 3 and len(run_hyp) <= 3:
                phrase_ref = " ".join(ref[r] for r in run_ref)
                out.append((phrase_ref, " ".join(hyp[h] for h in run_hyp), list(run_hyp)))
        run_ref.clear()
        run_hyp.clear()

    for op, r, h in word_alignment(ref, hyp):
        if op == "=":
            flush()
            continue
        if r is not None:
            run_ref.append(r)
        if h is not None:
            run_hyp.append(h)
    flush()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phrases", type=int, default=188)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from faster_whisper import WhisperModel

    model = WhisperModel(str(locate_model()), device="cpu", compute_type="int8", cpu_threads=args.threads)
    phrases = make_phrases(args.phrases)
    stats: dict[tuple[str, str], PairStats] = defaultdict(PairStats)
    ref_words = errors = 0
    audio_seconds = 0.0
    started = time.perf_counter()
    # Several phrases per clip: Whisper encodes a 30 s window whatever the clip length,
    # so ~20 s clips cost about what one 4 s phrase would.
    groups = [phrases[i : i + GROUP] for i in range(0, len(phrases), GROUP)]
    with tempfile.TemporaryDirectory() as tmp:
        for k, group in enumerate(groups):
            text = ". ".join(group) + "."
            ref = [norm(w) for w in text.split()]
            for voice, speed in VARIANTS:
                wav = Path(tmp) / f"g{k}_{voice}_{speed}.wav"
                speak_telephone_wav(text, voice, speed, wav)
                segments, info = model.transcribe(
                    str(wav),
                    language="es",
                    beam_size=1,
                    temperature=0.0,
                    condition_on_previous_text=False,
                    word_timestamps=True,
                    vad_filter=False,
                )
                words = [w for s in segments for w in (s.words or [])]
                audio_seconds += info.duration
                hyp = [norm(w.word) for w in words]
                keep = [i for i, w in enumerate(hyp) if w]
                hyp_words = [hyp[i] for i in keep]
                probs = [words[i].probability for i in keep]
                ref_words += len(ref)
                for right, wrong, idx in substitutions(ref, hyp_words):
                    errors += 1
                    if any(ch.isdigit() for ch in wrong):
                        continue  # digit formatting, not a confusion
                    pair = stats[(wrong, right)]
                    pair.count += 1
                    pair.confidences.append(min(probs[i] for i in idx))
                    if len(pair.examples) < 2:
                        lo = max(0, idx[0] - 4)
                        pair.examples.append(" ".join(hyp_words[lo : idx[-1] + 5]))
            print(f"{k + 1}/{len(groups)} clips groups, {audio_seconds:.0f} s audio", file=sys.stderr)
    elapsed = time.perf_counter() - started

    rows = sorted(stats.items(), key=lambda kv: (-kv[1].count, kv[0]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tsv.tmp")
    with tmp_out.open("w", encoding="utf-8") as fh:
        fh.write(
            f"# mined by scripts/mine_confusions.py: {len(phrases)} phrases x {len(VARIANTS)} espeak-ng "
            f"variants {VARIANTS}, 8 kHz telephone band, faster-whisper base int8 greedy, "
            f"{audio_seconds:.0f} s audio, {ref_words} reference words, {errors} error runs\n"
        )
        fh.write("wrong\tright\tcount\tmean_conf\tmin_conf\tmax_conf\texample\n")
        for (wrong, right), pair in rows:
            c = pair.confidences
            fh.write(
                f"{wrong}\t{right}\t{pair.count}\t{sum(c) / len(c):.3f}\t{min(c):.3f}\t{max(c):.3f}\t"
                f"{pair.examples[0]}\n"
            )
    tmp_out.replace(args.out)
    print(
        f"phrases={len(phrases)} clips={len(groups) * len(VARIANTS)} audio_s={audio_seconds:.1f} "
        f"ref_words={ref_words} error_runs={errors} distinct_pairs={len(rows)} "
        f"repeated_pairs={sum(1 for _, p in rows if p.count >= 2)} elapsed_s={elapsed:.1f} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
