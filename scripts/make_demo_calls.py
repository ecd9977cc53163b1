"""Regenerate the committed demo calls under callpipe/data/demo_calls/.

Each dialogue of ``callpipe.demo_calls.DIALOGUES`` is spoken by espeak-ng into stereo 8 kHz
audio, stored as FLAC (agent left, customer right). Its live transcript is what a streaming
recogniser would give: the bundled Whisper base, greedy, on the mono mix, with the real word probabilities.

    .venv/bin/python scripts/make_demo_calls.py [CALL_ID ...]

Calls of ``MONO_CALLS`` are mixed into one channel (their speakers come from diarization).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import soundfile

from callpipe.demo_calls import DIALOGUES, MONO_CALLS, demo_calls_dir, synthesize_call
from callpipe.stt import Transcriber


def to_flac(wav: bytes) -> bytes:
    """Lossless FLAC: the committed set stays small (one channel is silent half the time)."""
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="int16")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def main() -> None:
    out = Path(demo_calls_dir())
    out.mkdir(parents=True, exist_ok=True)
    transcriber = Transcriber(beam_size=1)
    only = set(sys.argv[1:])  # call ids to regenerate (default: all)
    for index, (call_id, turns) in enumerate(DIALOGUES.items()):
        if only and call_id not in only:
            continue
        if call_id in MONO_CALLS:
            audio = to_flac(synthesize_call(turns, mono=True, voices=MONO_CALLS[call_id]))
        else:
            audio = to_flac(synthesize_call(turns))
        (out / f"{call_id}.flac").write_bytes(audio)
        live = transcriber.transcribe(audio, premium=False)
        meta = {
            "call_id": call_id,
            "conversation_id": f"demo-conv-{index + 1:03d}",
            "direction": "inbound",
            "agent_id": f"agent-{index % 3 + 1:03d}",
            "turns": [{"speaker": s, "text": t} for s, t in turns],
            "live_transcript": {
                "source": f"{transcriber.model_id}, greedy, mono mix",
                "text": live.text,
                "word_confidences": [w.model_dump() for w in live.word_confidences],
            },
        }
        (out / f"{call_id}.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        print(f"{call_id}: {live.duration:.1f}s audio, {len(live.word_confidences)} words: {live.text[:80]}")


if __name__ == "__main__":
    main()
