"""Speaker turns and conversation metrics.

Stereo call recordings carry one party per channel (channel 0 = agent, channel 1 = customer
unless told otherwise, env ``CALLPIPE_AGENT_CHANNEL``): each channel is transcribed on its own
and the segments are merged by time into labelled turns. Mono recordings (or "stereo" files
whose two channels hold the same signal) are diarized by voice over Whisper's word timestamps
(:mod:`callpipe.speakers`): each word gets agent, customer, or "unknown" when the voices do not
separate (then the turns are per segment, as before), and each turn a ``speaker_confidence``.

Talk time, silence, overlap and interruptions come from the Silero VAD bundled with
faster-whisper run on each channel, not from Whisper's segment times (which absorb pauses).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps
from pydantic import BaseModel, Field

from callpipe.schema import ConversationMetrics, Speaker, Turn, WordConfidence
from callpipe.stt.audio_input import SAMPLE_RATE, AudioSource, decode_channels, duplicated_channels
from callpipe.stt.record import group_tokens, has_times, index_turns, token_times
from callpipe.stt.result import TranscriptResult
from callpipe.stt.transcriber import Transcriber

Interval = tuple[float, float]
INTERRUPTION_SECONDS = 0.5
"""A start counts as an interruption when the other party keeps talking this long after it."""

# Tighter than faster-whisper's transcription defaults (2 s silence, 400 ms padding), which
# are tuned to keep words whole, not to measure who talks when.
METRICS_VAD = VadOptions(
    threshold=0.5, min_speech_duration_ms=120, min_silence_duration_ms=250, speech_pad_ms=60
)
_log = logging.getLogger(__name__)


class ConversationTranscript(BaseModel):
    """Turns, metrics and the per-channel transcripts of one recording."""

    turns: list[Turn]
    metrics: ConversationMetrics
    channels: list[TranscriptResult]
    speech: dict[str, list[Interval]] = Field(description="VAD speech intervals (s) per speaker")
    stereo: bool
    duration: float
    diarization_seconds: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(turn.text for turn in self.turns)

    @property
    def word_confidences(self) -> list[WordConfidence]:
        """Every channel's words in time order."""
        words = [w for result in self.channels for w in result.word_confidences]
        return sorted(words, key=lambda w: (w.start or 0.0, w.end or 0.0))


def speech_intervals(samples: np.ndarray, options: VadOptions | None = None) -> list[Interval]:
    """Speech intervals in seconds of one 16 kHz channel (Silero VAD from faster-whisper)."""
    if samples.size == 0:
        return []
    chunks = get_speech_timestamps(samples, vad_options=options or METRICS_VAD, sampling_rate=SAMPLE_RATE)
    return [(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks]


def default_agent_channel() -> int:
    """Channel holding the agent: ``CALLPIPE_AGENT_CHANNEL`` (0 or 1), default 0."""
    value = os.environ.get("CALLPIPE_AGENT_CHANNEL", "0").strip() or "0"
    if value not in {"0", "1"}:
        raise ValueError(f"CALLPIPE_AGENT_CHANNEL must be 0 or 1, got {value!r}")
    return int(value)


def transcribe_conversation(
    transcriber: Transcriber,
    audio: AudioSource,
    *,
    agent_channel: int | None = None,
    premium: bool = False,
    domain_terms: Sequence[str] | None = None,
    direction: str | None = "inbound",
) -> ConversationTranscript:
    """Transcribe a call into speaker turns plus :class:`~callpipe.schema.ConversationMetrics`.

    One Whisper pass over the mono mix. For stereo (one party per channel) each word goes to the
    party whose channel carries its energy: per-channel transcription costs about twice the
    decoding and, measured on the demo calls, gives worse text, since a channel that is silent half
    the time leaves Whisper without context and invites hallucinations over the gaps.
    """
    channels = decode_channels(audio)
    duration = channels.shape[1] / SAMPLE_RATE
    stereo = channels.shape[0] == 2 and not duplicated_channels(channels)
    if channels.shape[0] > 2:
        _log.warning("%d-channel audio: mixing down to mono, speakers unknown", channels.shape[0])
    mono = channels[0] if channels.shape[0] == 1 else channels.mean(axis=0, dtype=np.float32)
    result = transcriber.transcribe_samples(mono, premium=premium, domain_terms=domain_terms)
    if stereo:
        speakers = _channel_speakers(agent_channel)
        words = result.word_confidences
        turns = words_to_turns(words, word_speakers(words, channels, speakers), speakers)
        speech = {speakers[i]: speech_intervals(channels[i]) for i in range(2)}
    else:
        turns, speech, diarization_seconds = _mono_turns(mono, result, direction)
    turns = index_turns(turns)  # the transcript of record is these turns joined
    metrics = conversation_metrics(turns, duration, vad_speech=speech)
    return ConversationTranscript(
        turns=turns,
        metrics=metrics,
        channels=[result],
        speech=speech,
        stereo=stereo,
        duration=duration,
        diarization_seconds=0.0 if stereo else diarization_seconds,
    )


def _mono_turns(
    mono: np.ndarray, result: TranscriptResult, direction: str | None
) -> tuple[list[Turn], dict[str, list[Interval]], float]:
    """Diarized turns of a mono call, or per-segment "unknown" turns when the voices do not separate."""
    from callpipe.speakers.attribute import mono_speakers, party_speech

    vad = speech_intervals(mono)
    words = result.word_confidences
    spans = [(w.start, w.end) for w in words]
    found = mono_speakers(mono, [w.word for w in words], spans, direction=direction)
    if not found.separated:
        _log.info("mono call: speakers unknown (%s)", found.reason)
        turns = [
            Turn(speaker="unknown", start=s.start, end=s.end, text=s.text.strip())
            for s in result.segments
            if s.text.strip()
        ]
        return turns, {"unknown": vad}, found.seconds
    turns = with_confidences(words_to_turns(words, found.speakers, []), found.confidences)
    return turns, party_speech(vad, [(t.speaker, t.start, t.end) for t in turns]), found.seconds


def with_confidences(turns: Sequence[Turn], confidences: Sequence[float]) -> list[Turn]:
    """Each turn's ``speaker_confidence``: the mean of its tokens' (turns in token order)."""
    out, position = [], 0
    for turn in turns:
        count = len(turn.text.split())
        chunk = confidences[position : position + count]
        position += count
        value = round(sum(chunk) / len(chunk), 3) if chunk else None
        out.append(turn.model_copy(update={"speaker_confidence": value}))
    return out


def word_speakers(
    words: Sequence[WordConfidence], channels: np.ndarray, speakers: Sequence[Speaker]
) -> list[Speaker]:
    """The speaker of each word: the channel with the most energy over the word's time span.

    A word without timestamps (or over digital silence) takes its predecessor's speaker.
    """
    out: list[Speaker] = []
    previous: Speaker = "unknown"
    for word in words:
        speaker = previous
        if word.start is not None and word.end is not None:
            lo = max(0, int(word.start * SAMPLE_RATE))
            hi = min(channels.shape[1], max(lo + 1, int(word.end * SAMPLE_RATE)))
            energy = np.square(channels[:, lo:hi], dtype=np.float64).mean(axis=1)
            if energy.max() > 0:
                speaker = speakers[int(np.argmax(energy))]
        out.append(speaker)
        previous = speaker
    return out


def words_to_turns(
    words: Sequence[WordConfidence], speakers: Sequence[Speaker], channel_speakers: Sequence[Speaker]
) -> list[Turn]:
    """Consecutive words of one speaker become one turn (``channel_speakers[i]`` is on channel i)."""
    turns: list[Turn] = []
    for word, speaker in zip(words, speakers, strict=True):
        start = word.start if word.start is not None else (turns[-1].end if turns else 0.0)
        end = max(word.end if word.end is not None else start, start)
        if turns and turns[-1].speaker == speaker:
            last = turns[-1]
            text = f"{last.text} {word.word}"
            turns[-1] = last.model_copy(update={"text": text, "end": max(last.end, end)})
        else:
            channel = channel_speakers.index(speaker) if speaker in channel_speakers else None
            turns.append(Turn(speaker=speaker, start=start, end=end, text=word.word, channel=channel))
    return turns


def vad_metrics(audio: AudioSource, *, agent_channel: int | None = None) -> ConversationMetrics:
    """Talk, silence, overlap and interruptions from the VAD alone (no transcription), for calls
    that keep their live transcript. Turn count and words per minute are then unknown (None)."""
    channels = decode_channels(audio)
    duration = channels.shape[1] / SAMPLE_RATE
    if channels.shape[0] == 2 and not duplicated_channels(channels):
        speakers = _channel_speakers(agent_channel)
        speech = {speakers[i]: speech_intervals(channels[i]) for i in range(2)}
    else:
        speech = {"unknown": speech_intervals(channels.mean(axis=0, dtype=np.float32))}
    metrics = conversation_metrics([], duration, vad_speech=speech)
    return metrics.model_copy(update={"turn_count": None, "words_per_minute": None})


def transcript_turns(
    audio: AudioSource,
    text: str,
    words: Sequence[WordConfidence],
    *,
    agent_channel: int | None = None,
    direction: str | None = "inbound",
) -> tuple[list[Turn], ConversationMetrics]:
    """Turns and metrics of a transcript made elsewhere (the live one) over ``audio``.

    With word timestamps each token goes to the party whose channel carries its energy (stereo)
    or, on a mono call, to the voice :mod:`callpipe.speakers` finds (or to "unknown" turns split
    at pauses when the voices do not separate). Without timestamps the whole text is one
    "unknown" turn, and turn count and words per minute are unknown (None), as in
    :func:`vad_metrics`. Talk time, silence, overlap and interruptions come from the VAD.
    """
    channels = decode_channels(audio)
    duration = channels.shape[1] / SAMPLE_RATE
    stereo = channels.shape[0] == 2 and not duplicated_channels(channels)
    spans = token_times(text, words)
    tokens = text.split()
    if stereo:
        parties = _channel_speakers(agent_channel)
        speech = {parties[i]: speech_intervals(channels[i]) for i in range(2)}
    else:
        parties = []
        speech = {"unknown": speech_intervals(channels.mean(axis=0, dtype=np.float32))}
    if not tokens:
        return [], conversation_metrics([], duration, vad_speech=speech)
    if not has_times(spans):
        turns = [Turn(start=0.0, end=duration, text=" ".join(tokens), token_start=0, token_end=len(tokens))]
        metrics = conversation_metrics([], duration, vad_speech=speech)
        return turns, metrics.model_copy(update={"turn_count": None, "words_per_minute": None})
    if stereo:
        timed = [
            WordConfidence(word=t, confidence=1.0, start=s, end=e)
            for t, (s, e) in zip(tokens, spans, strict=True)
        ]
        turns = group_tokens(text, spans, word_speakers(timed, channels, parties), parties)
        return turns, conversation_metrics(turns, duration, vad_speech=speech)
    from callpipe.speakers.attribute import mono_speakers, party_speech

    mono = channels.mean(axis=0, dtype=np.float32)
    found = mono_speakers(mono, tokens, spans, direction=direction)
    turns = group_tokens(text, spans, found.speakers, parties)
    if found.separated:
        turns = with_confidences(turns, found.confidences)
        speech = party_speech(speech["unknown"], [(t.speaker, t.start, t.end) for t in turns])
    return turns, conversation_metrics(turns, duration, vad_speech=speech)


def merge_turns(segments: Sequence[Turn]) -> list[Turn]:
    """Order segment-level turns by start time and join consecutive ones of the same speaker."""
    merged: list[Turn] = []
    for seg in sorted(segments, key=lambda t: (t.start, t.end)):
        if merged and merged[-1].speaker == seg.speaker and seg.speaker != "unknown":
            last = merged[-1]
            merged[-1] = last.model_copy(
                update={"end": max(last.end, seg.end), "text": f"{last.text} {seg.text}"}
            )
        else:
            merged.append(seg)
    return merged


def conversation_metrics(
    turns: Sequence[Turn], duration: float, vad_speech: Mapping[str, Sequence[Interval]] | None = None
) -> ConversationMetrics:
    """Talk time per party, silence, overlap, interruptions, turn count and words per minute.

    ``vad_speech`` maps speaker -> speech intervals (seconds); without it the turns' spans are
    used. Overlap and interruptions need both "agent" and "customer"; for mono audio they,
    and the per-party talk times, are None.
    """
    if vad_speech is None:
        spans: dict[str, list[Interval]] = {}
        for turn in turns:
            spans.setdefault(turn.speaker, []).append((turn.start, turn.end))
        vad_speech = spans
    speech = {speaker: _union(intervals, duration) for speaker, intervals in vad_speech.items()}
    everything = _union([iv for intervals in speech.values() for iv in intervals], duration)
    talk = _length(everything)
    agent, customer = speech.get("agent"), speech.get("customer")
    two_party = agent is not None and customer is not None
    words = sum(len(turn.text.split()) for turn in turns)
    return ConversationMetrics(
        talk_time_agent_seconds=_length(agent) if agent is not None else None,
        talk_time_customer_seconds=_length(customer) if customer is not None else None,
        talk_time_seconds=talk,
        silence_seconds=max(0.0, duration - talk),
        overlap_seconds=_length(_intersection(agent, customer)) if two_party else None,
        interruptions=_interruptions(agent, customer) if two_party else None,
        turn_count=len(turns),
        words_per_minute=words / (talk / 60.0) if talk > 0 and turns else None,
    )


def _channel_speakers(agent_channel: int | None) -> list[Speaker]:
    agent = default_agent_channel() if agent_channel is None else agent_channel
    if agent not in (0, 1):
        raise ValueError(f"agent_channel must be 0 or 1, got {agent}")
    return ["agent", "customer"] if agent == 0 else ["customer", "agent"]


def _union(intervals: Sequence[Interval], duration: float) -> list[Interval]:
    clipped = sorted((max(0.0, s), min(duration, e)) for s, e in intervals if min(duration, e) > max(0.0, s))
    merged: list[Interval] = []
    for start, end in clipped:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: Sequence[Interval] | None) -> float:
    return sum(end - start for start, end in intervals or [])


def _intersection(first: Sequence[Interval] | None, second: Sequence[Interval] | None) -> list[Interval]:
    overlaps = []
    for s1, e1 in first or []:
        for s2, e2 in second or []:
            start, end = max(s1, s2), min(e1, e2)
            if end > start:
                overlaps.append((start, end))
    return overlaps


def _interruptions(agent: Sequence[Interval] | None, customer: Sequence[Interval] | None) -> int:
    count = 0
    for mine, theirs in ((agent or [], customer or []), (customer or [], agent or [])):
        for start, _ in mine:
            if any(s < start and e - start > INTERRUPTION_SECONDS for s, e in theirs):
                count += 1
    return count
