"""Two-party mono test calls for diarization, made deterministically from different voices.

A call alternates agent and customer turns; each party is one *voice*: an espeak-ng voice
variant (``es``, ``es-419``, ``+f3``, ``+m2`` ..., with its own pitch and speed) or the recorded
human prompts of Debian's asterisk-core-sounds-es (Allison, a real woman's voice; what she says is
an IVR prompt, not the dialogue). Pauses of 0.15-0.8 s between turns and, on some turns, an
overlap of up to 0.4 s with the previous one. 8 kHz telephone band (300-3400 Hz), 16-bit mono.

The construction parameters are fixed here before any threshold was tuned: :data:`TEST_SEEDS`
with :data:`TEST_VOICES` is the set ``benchmarks/diarization.py`` reports; :data:`DEV_SEEDS`
with :data:`DEV_VOICES` (other seeds, other voices) is the only set thresholds were tuned on.
:data:`DEV2_CALLS` (written before the second round of tuning, after the test set showed that
same-family espeak voices did not separate) is a harder tuning set: each call pairs two variants of
one espeak family (none of the test set's voices or pairs), or the human voice's long prompts
(7-14 s files, cut to 6 s; the test set only uses the 2-7 s ones) against an espeak voice.
"""

from __future__ import annotations

import io
import random
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 8000
HUMAN_DIR = Path("/usr/share/asterisk/sounds/es_MX_f_Allison")
HUMAN = "human"
HUMAN_LONG = "human-long"
"""The same recorded voice from its long prompts only (never drawn by the test set)."""
Voice = tuple[str, int, int]  # espeak voice (or HUMAN), pitch 0-99, speed (words per minute)

TEST_SEEDS = tuple(range(20))
TEST_VOICES: tuple[Voice, ...] = (
    ("es", 50, 150),
    ("es-419", 40, 160),
    ("es+f3", 60, 150),
    ("es+m2", 35, 145),
    ("es-419+f2", 70, 165),
    (HUMAN, 0, 0),
    ("es+m3", 25, 140),
    (HUMAN, 0, 0),
)
DEV_SEEDS = tuple(range(100, 110))
DEV_VOICES: tuple[Voice, ...] = (
    ("es+f4", 65, 155),
    ("es-419+m1", 45, 150),
    ("es+m4", 30, 160),
    (HUMAN, 0, 0),
    ("es-419+f4", 75, 140),
)
DEV2_SEEDS = tuple(range(200, 214))
DEV2_PAIRS: tuple[tuple[Voice, Voice], ...] = (
    (("es+m5", 40, 150), ("es+m6", 30, 145)),
    (("es+f1", 65, 155), ("es+f4", 72, 160)),
    (("es-419+m1", 45, 150), ("es-419+m4", 35, 155)),
    (("es-419+f1", 62, 150), ("es-419+f4", 70, 160)),
    (("es+m4", 30, 160), ("es-419+m5", 38, 150)),
    (("es", 56, 155), ("es+m1", 45, 150)),
    ((HUMAN_LONG, 0, 0), ("es+f1", 62, 150)),
)
"""Call ``DEV2_SEEDS[i]`` pairs the two voices of ``DEV2_PAIRS[i % 7]`` (who is the agent: the seed)."""
DEV2_ONE_VOICES: tuple[Voice, ...] = (("es+m5", 40, 150), ("es-419+f1", 62, 150), ("es+m1", 45, 150))

AGENT_OPENINGS = (
    "Buenas tardes, le atiende Sergio de Seguros Faro, ¿en qué puedo ayudarle?",
    "Hola, gracias por llamar a Agua Viva, mi nombre es Elena, dígame.",
    "Buenos días, Telefonía Río, le habla Jorge, ¿en qué le puedo ayudar?",
)
AGENT_LINES = (
    "De acuerdo, ¿me facilita su número de cliente, por favor?",
    "Un momento, que lo compruebo en el sistema.",
    "Perfecto, ya lo tengo, le enviamos la confirmación por mensaje.",
    "¿Me confirma su documento de identidad?",
    "Entendido, queda registrado. ¿Algo más en lo que pueda ayudarle?",
)
CUSTOMER_LINES = (
    "Hola, quiero cambiar la dirección de envío de mis pedidos.",
    "Sí, claro, es el cuatro siete dos nueve uno.",
    "Necesito saber por qué me llegó un recibo tan alto este mes.",
    "Vale, muchas gracias, eso era todo.",
    "Pues mire, llevo dos días sin conexión en casa.",
)
OUTBOUND_OPENING = (
    "¿Sí? ¿Diga?",
    "Buenos días, le llamo de Seguros Faro por su renovación, le atiende Sergio.",
)


@dataclass(frozen=True)
class GeneratedCall:
    """A generated mono call and who spoke when (``(role, start, end)`` in seconds)."""

    name: str
    wav: bytes
    segments: list[tuple[str, float, float]]
    direction: str
    voices: dict[str, Voice]


def _espeak(text: str, voice: Voice) -> np.ndarray:
    name, pitch, speed = voice
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", name, "-p", str(pitch), "-s", str(speed), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        _telephone(raw, out)
        return _read(out)


def _human(rng: random.Random, *, long: bool = False) -> np.ndarray:
    if long:  # 7-14 s prompts, cut to 6 s
        prompts = sorted(p for p in HUMAN_DIR.glob("*.gsm") if 12000 <= p.stat().st_size < 24000)
    else:
        prompts = sorted(p for p in HUMAN_DIR.glob("*.gsm") if 3300 < p.stat().st_size < 12000)  # 2-7 s
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        _telephone(rng.choice(prompts), out)
        audio = _read(out)
        return audio[: 6 * RATE] if long else audio


def _telephone(source: Path, out: Path) -> None:
    subprocess.run(
        [
            "sox",
            "-R",
            "-D",
            str(source),
            "-r",
            str(RATE),
            "-c",
            "1",
            "-b",
            "16",
            str(out),
            "sinc",
            "300-3400",
        ],
        check=True,
        capture_output=True,
    )


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)


def make_call(seed: int, voices: tuple[Voice, ...], *, turns: int = 6) -> GeneratedCall:
    """The two-party call of ``seed`` drawn from ``voices`` (two different voices)."""
    rng = random.Random(seed)
    agent_voice, customer_voice = rng.sample(voices, 2)
    while agent_voice[0] == customer_voice[0] == HUMAN:
        customer_voice = rng.choice(voices)
    outbound = rng.random() < 0.2
    script: list[tuple[str, str]] = []
    if outbound:
        script += [("customer", OUTBOUND_OPENING[0]), ("agent", OUTBOUND_OPENING[1])]
    else:
        script.append(("agent", rng.choice(AGENT_OPENINGS)))
    agent_lines, customer_lines = rng.sample(AGENT_LINES, 4), rng.sample(CUSTOMER_LINES, 4)
    while len(script) < turns:
        role = "customer" if script[-1][0] == "agent" else "agent"
        script.append((role, (customer_lines if role == "customer" else agent_lines).pop()))
    cursor = int(0.3 * RATE)
    placed: list[tuple[str, int, np.ndarray]] = []
    for index, (role, text) in enumerate(script):
        voice = agent_voice if role == "agent" else customer_voice
        if voice[0] in (HUMAN, HUMAN_LONG):
            audio = _human(rng, long=voice[0] == HUMAN_LONG)
        else:
            audio = _espeak(text, voice)
        if index and rng.random() < 0.25:
            cursor -= int(rng.uniform(0.15, 0.4) * RATE)  # overlap the previous turn's end
        placed.append((role, cursor, audio))
        cursor += len(audio) + int(rng.uniform(0.15, 0.8) * RATE)
    mix = np.zeros(cursor + int(0.3 * RATE), dtype=np.int32)
    for _, start, audio in placed:
        mix[start : start + len(audio)] += audio
    mono = np.clip(mix, -32768, 32767).astype(np.int16)
    segments = [(role, start / RATE, (start + len(a)) / RATE) for role, start, a in placed]
    return GeneratedCall(
        name=f"mono-{seed}",
        wav=_wav(mono),
        segments=segments,
        direction="outbound" if outbound else "inbound",
        voices={"agent": agent_voice, "customer": customer_voice},
    )


def dev2_call(index: int) -> GeneratedCall:
    """The ``index``-th call of the harder tuning set (:data:`DEV2_SEEDS`, :data:`DEV2_PAIRS`)."""
    seed = DEV2_SEEDS[index]
    call = make_call(seed, DEV2_PAIRS[index % len(DEV2_PAIRS)])
    return GeneratedCall(f"dev2-{seed}", call.wav, call.segments, call.direction, call.voices)


def one_voice_call(seed: int, voice: Voice = ("es", 50, 150)) -> GeneratedCall:
    """A mono call whose "two parties" are the same espeak voice (must stay unknown)."""
    rng = random.Random(seed)
    lines = [rng.choice(AGENT_OPENINGS), *rng.sample(CUSTOMER_LINES, 2), *rng.sample(AGENT_LINES, 2)]
    pieces, segments, cursor = [], [], 0.0
    for i, text in enumerate(lines):
        audio = _espeak(text, voice)
        pieces += [np.zeros(int(0.4 * RATE), dtype=np.int16), audio]
        segments.append(
            ("agent" if i % 2 == 0 else "customer", cursor + 0.4, cursor + 0.4 + len(audio) / RATE)
        )
        cursor += 0.4 + len(audio) / RATE
    return GeneratedCall(
        f"one-voice-{seed}", _wav(np.concatenate(pieces)), segments, "inbound", {"both": voice}
    )


def _wav(mono: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(mono.tobytes())
    return buffer.getvalue()


def true_speaker(segments: list[tuple[str, float, float]], start: float, end: float) -> str:
    """The party whose speech overlaps [start, end] most (``none`` when nobody's does)."""
    best, overlap = "none", 0.0
    for role, lo, hi in segments:
        shared = min(hi, end) - max(lo, start)
        if shared > overlap:
            best, overlap = role, shared
    return best
