"""Demo calls: Spanish two-party dialogues spoken by espeak-ng into stereo telephone audio.

The committed demo set under ``callpipe/data/demo_calls/`` was made by
``scripts/make_demo_calls.py`` from :data:`DIALOGUES`; :func:`synthesize_call` is also used to
generate any number of calls for tests and benchmarks. Channel 0 is the agent, channel 1 the
customer, as a call-center recorder would store them. espeak audio is robotic: use it to test
plumbing, not to claim accuracy.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 8000
AGENT_VOICE = "es"
CUSTOMER_VOICE = "es-419"
_GAP_SECONDS = 0.45


@dataclass(frozen=True)
class DemoCall:
    """One demo call: its script, its audio and (for committed calls) the live transcript."""

    call_id: str
    conversation_id: str
    turns: list[tuple[str, str]]
    direction: str = "inbound"
    agent_id: str = "agent-001"
    audio: bytes = b""
    live_text: str = ""
    live_word_confidences: list[dict[str, Any]] = field(default_factory=list)
    demo_live: dict[str, Any] | None = None
    """The scripted live transcript ``callpipe demo`` records instead (:data:`LIVE_CONFUSIONS`)."""

    @property
    def reference_text(self) -> str:
        """What was really said, turn after turn (the ground truth for WER)."""
        return " ".join(text for _, text in self.turns)


DIALOGUES: dict[str, list[tuple[str, str]]] = {
    "saldo": [
        ("agent", "Buenos días, le atiende Laura de Banco Sol, ¿en qué puedo ayudarle?"),
        ("customer", "Hola, necesito revisar el saldo de mi cuenta corriente."),
        ("agent", "Claro, ¿me indica su documento de identidad?"),
        ("customer", "Sí, es doce tres cuatro cinco seis siete ocho zeta."),
        ("agent", "Gracias. Su saldo disponible es de mil doscientos cuarenta euros con cincuenta."),
        ("customer", "Perfecto, muchas gracias por la ayuda."),
    ],
    "tarjeta": [
        ("agent", "Banco Sol, buenas tardes, le atiende Carlos."),
        ("customer", "Me han robado la tarjeta y quiero bloquearla ahora mismo."),
        ("agent", "Lo siento mucho. La bloqueo ahora. ¿Reconoce el último cargo?"),
        ("customer", "No, no reconozco un cargo de cuarenta y cinco euros de ayer."),
        ("agent", "Abro una reclamación por fraude y le enviamos una tarjeta nueva."),
        ("customer", "De acuerdo, gracias."),
    ],
    "factura": [
        ("agent", "Telefonía Norte, buenos días, ¿en qué puedo ayudarle?"),
        ("customer", "Es la tercera vez que llamo por la factura de este mes, estoy harto."),
        ("agent", "Disculpe las molestias. ¿Qué importe le han cobrado?"),
        ("customer", "Ochenta y nueve euros, y mi tarifa es de treinta y cinco euros al mes."),
        ("agent", "Veo el error, le devolvemos la diferencia en la próxima factura."),
        ("customer", "Eso me dijeron la última vez y sigo esperando."),
    ],
    "baja": [
        ("agent", "Energía Clara, le atiende Marta, buenas tardes."),
        ("customer", "Quiero darme de baja del contrato de luz, me mudo a otra ciudad."),
        ("agent", "Entendido. ¿Desde qué fecha quiere la baja?"),
        ("customer", "Desde el quince de marzo, por favor."),
        ("agent", "Hecho, le enviaremos la factura final a su correo."),
        ("customer", "Muy bien, gracias."),
    ],
    "transferencia": [
        ("agent", "Banco Sol, le atiende Pablo, dígame."),
        ("customer", "Quiero hacer una transferencia de quinientos euros a la cuenta de mi hermana."),
        ("agent", "¿Me dice el número de cuenta de destino?"),
        (
            "customer",
            "Sí, es ES nueve uno dos uno cero cero cero cuatro uno ocho cuatro cinco cero "
            "dos cero cero cero cinco uno tres tres dos.",
        ),
        ("agent", "La transferencia queda programada para hoy."),
        ("customer", "Genial, muchas gracias."),
    ],
    "correo": [
        ("agent", "Buenos días, servicio de atención al cliente, le atiende Ana."),
        ("customer", "Quiero cambiar el correo electrónico de mi cuenta."),
        ("agent", "Por supuesto, ¿cuál es el nuevo correo?"),
        ("customer", "Juan punto pérez arroba gmail punto com."),
        ("agent", "Actualizado. ¿Necesita algo más?"),
        ("customer", "No, eso es todo, gracias."),
    ],
}

MONO_CALLS: dict[str, tuple[str, str]] = {"domicilio": ("es+f3", "es-419+m2")}
"""Demo calls recorded mono (both parties on one channel, as most call-center recorders store
them), with their agent and customer espeak-ng voices; their speakers come from diarization."""

DIALOGUES["domicilio"] = [
    ("agent", "Buenas tardes, Seguros Faro, le atiende Lucía, ¿en qué puedo ayudarle?"),
    ("customer", "Hola, quiero cambiar la dirección de mi póliza de hogar."),
    ("agent", "Por supuesto, ¿me indica su documento de identidad?"),
    ("customer", "Sí, es cuatro cinco seis siete uno dos tres ocho jota."),
    ("agent", "Gracias. ¿Cuál es la nueva dirección?"),
    ("customer", "Calle Mayor número diez, en Valencia."),
    ("agent", "Hecho, queda actualizada. ¿Necesita algo más?"),
    ("customer", "No, nada más, muchas gracias."),
]

DIALOGUES["siniestro"] = [
    ("agent", "Seguros Faro, buenos días, le atiende Andrés."),
    ("customer", "Hola, quería saber cómo va el parte del golpe que tuve con el coche."),
    ("agent", "Los partes de automóvil los gestiona el departamento de siniestros."),
    ("customer", "¿Me puede pasar con ellos?"),
    ("agent", "Claro, le paso ahora con un compañero de siniestros, no cuelgue."),
    ("customer", "Vale, espero."),
]
DIALOGUES["cobertura"] = [
    ("agent", "Telefonía Norte, buenas tardes, le atiende Elena."),
    ("customer", "Hola, llamo porque me han cobrado una..."),
    ("agent", "Perdone, no le oigo bien, ¿me escucha?"),
    ("customer", "Que le digo que..."),
    ("agent", "¿Hola? ¿Sigue ahí? Se ha cortado la llamada."),
]
"""Calls ending transferred and abandoned, so that the demo has a call of each outcome."""

LIVE_CONFUSIONS: dict[str, list[tuple[int, str, str]]] = {
    "saldo": [(1, "saldo", "salgo"), (1, "cuenta", "cuesta"), (4, "saldo", "salgo")],
    "tarjeta": [(1, "tarjeta", "tarjeda"), (4, "reclamación", "retramación")],
    "transferencia": [(1, "transferencia", "tranferencia"), (2, "cuenta", "cuesta")],
    "correo": [(1, "correo", "coveo"), (1, "electrónico", "electronico")],
}
"""Live-transcript errors of the scripted live transcripts ``callpipe demo`` records: ``(turn, right
word, what the recogniser heard)``, each a known confusion of ``callpipe/data/confusions_es.jsonl``
that the online correction fixes. The demo's other calls (``factura``, ``baja``) are recorded with
their real Whisper greedy live transcript, whose low confidences get them re-transcribed. Tests and
benchmarks use the real live transcripts of every call (:attr:`DemoCall.live_text`)."""


def scripted_live_transcript(
    call_id: str, turns: list[tuple[str, str]], confusions: list[tuple[int, str, str]]
) -> dict[str, Any]:
    """The live transcript a streaming recogniser could give for ``turns``: the words said, with
    each ``(turn, right, heard)`` confusion heard wrong at low confidence (0.35-0.5) and the other
    words at 0.86-0.98 (seeded by ``call_id``), no timings."""
    rng = random.Random(call_id)
    pending = list(confusions)
    words: list[dict[str, Any]] = []
    for index, (_, text) in enumerate(turns):
        for word in text.split():
            core = word.strip(".,;:¿?¡!")
            hit = next((c for c in pending if c[0] == index and c[1] == core.lower()), None)
            if hit is not None:
                pending.remove(hit)
                heard = word.replace(core, hit[2] if core.islower() else hit[2].capitalize())
                words.append({"word": heard, "confidence": round(rng.uniform(0.35, 0.5), 3)})
            else:
                words.append({"word": word, "confidence": round(rng.uniform(0.86, 0.98), 3)})
    if pending:
        raise ValueError(f"{call_id}: confusions not found in the dialogue: {pending}")
    return {
        "source": "scripted: the words said, with known confusions heard at low confidence",
        "text": " ".join(w["word"] for w in words),
        "word_confidences": words,
    }


class SynthesisError(RuntimeError):
    """espeak-ng or sox is missing or failed."""


def speak_telephone_wav(text: str, voice: str, speed: int, path: Path) -> None:
    """Speak ``text`` into the WAV file ``path``: 8 kHz mono, 300-3400 Hz (telephone band).

    For the evaluation scripts; espeak-ng's messages pass through, sox's are dropped.
    Raises ``subprocess.CalledProcessError`` when either tool fails.
    """
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", "-R", "-D", str(raw), "-r", "8000", "-c", "1", str(path), "sinc", "300-3400"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    raw.unlink()


def _speak(text: str, voice: str, speed: int) -> np.ndarray:
    """Speak ``text`` with espeak-ng and return mono int16 samples at :data:`SAMPLE_RATE`."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SynthesisError(f"{tool} is not installed (Debian package '{tool}')")
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", "-R", "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out)],
            check=True,
            capture_output=True,
        )
        with wave.open(str(out), "rb") as handle:
            return np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)


def synthesize_call(
    turns: list[tuple[str, str]],
    *,
    speed: int = 150,
    mono: bool = False,
    voices: tuple[str, str] = (AGENT_VOICE, CUSTOMER_VOICE),
) -> bytes:
    """Render a dialogue as stereo 8 kHz 16-bit WAV: agent on channel 0, customer on channel 1
    (``mono``: both mixed into one channel); ``voices``: the agent's and the customer's."""
    pieces: list[tuple[int, np.ndarray]] = []
    cursor = int(0.3 * SAMPLE_RATE)
    for speaker, text in turns:
        voice = voices[0] if speaker == "agent" else voices[1]
        samples = _speak(text, voice, speed)
        channel = 0 if speaker == "agent" else 1
        pieces.append((channel, np.pad(samples, (cursor, 0))))
        cursor += len(samples) + int(_GAP_SECONDS * SAMPLE_RATE)
    total = cursor + int(0.3 * SAMPLE_RATE)
    stereo = np.zeros((total, 2), dtype=np.int16)
    for channel, samples in pieces:
        stereo[: len(samples), channel] += samples
    if mono:
        stereo = np.clip(stereo.astype(np.int32).sum(axis=1, keepdims=True), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1 if mono else 2)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(stereo.tobytes())
    return buffer.getvalue()


def demo_calls_dir() -> Path:
    """Directory of the committed demo calls inside the installed package."""
    return Path(str(resources.files("callpipe") / "data" / "demo_calls"))


def load_demo_calls() -> list[DemoCall]:
    """The committed demo calls, with audio and the live transcript recorded for each."""
    calls = []
    for meta_path in sorted(demo_calls_dir().glob("*.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        turns = [(t["speaker"], t["text"]) for t in meta["turns"]]
        calls.append(
            DemoCall(
                call_id=meta["call_id"],
                conversation_id=meta["conversation_id"],
                turns=turns,
                direction=meta.get("direction", "inbound"),
                agent_id=meta.get("agent_id", "agent-001"),
                audio=meta_path.with_suffix(".flac").read_bytes(),
                live_text=meta["live_transcript"]["text"],
                live_word_confidences=meta["live_transcript"]["word_confidences"],
                demo_live=(
                    scripted_live_transcript(meta["call_id"], turns, LIVE_CONFUSIONS[meta["call_id"]])
                    if meta["call_id"] in LIVE_CONFUSIONS
                    else None
                ),
            )
        )
    return calls
