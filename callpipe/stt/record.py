"""One transcript of record: its whitespace tokens grouped into speaker turns, and those turns
re-texted from the corrected words.

The stt stage keeps one transcript (live or re-transcribed) as ``transcription.text`` and splits
*that* text into :class:`~callpipe.schema.Turn` objects whose ``token_start``/``token_end`` give
their tokens in it. The correction stage changes words of ``transcription.text``; every output
token of the corrector knows its source token (:attr:`OfflineCorrectionResult.token_sources`), so
:func:`retext_turns` rebuilds each turn's text from the corrected words: the turns joined are the
corrected transcript, token for token. Analysis reads turns only when :func:`turns_match_text`
says they are that transcript.

Light module: no model, no audio (speaker assignment by channel energy lives in
:mod:`callpipe.stt.turns`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from difflib import SequenceMatcher

from callpipe.recorder.dictionary import make_token, tokenize
from callpipe.schema import Speaker, Turn, WordConfidence

PAUSE_SECONDS = 1.0
"""Between words of an unknown speaker (mono audio), a pause this long starts a new turn."""

Span = tuple[float | None, float | None]


def token_times(text: str, words: Sequence[WordConfidence]) -> list[Span]:
    """(start, end) of each whitespace token of ``text`` from the timed ``words`` describing it.

    Words align to tokens one to one when their counts agree, else by their folded forms; a token
    without a timed word gets (None, None).
    """
    tokens = tokenize(text)
    spans: list[Span] = [(None, None)] * len(tokens)
    if len(words) == len(tokens):
        return [(w.start, w.end) for w in words]
    matcher = SequenceMatcher(
        None, [t.fold for t in tokens], [make_token(w.word.strip()).fold for w in words], autojunk=False
    )
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            word = words[block.b + k]
            spans[block.a + k] = (word.start, word.end)
    return spans


def has_times(spans: Sequence[Span]) -> bool:
    """Whether at least one token has a start time."""
    return any(start is not None for start, _ in spans)


def group_tokens(
    text: str,
    spans: Sequence[Span],
    speakers: Sequence[Speaker],
    channel_speakers: Sequence[Speaker] = (),
    *,
    pause: float = PAUSE_SECONDS,
) -> list[Turn]:
    """Consecutive tokens of one speaker become one turn (an unknown speaker's also split at pauses).

    Tokens without times take the previous token's end (0.0 at the start). ``channel_speakers[i]``
    is the party on channel i (empty for mono).
    """
    tokens = text.split()
    if not (len(tokens) == len(spans) == len(speakers)):
        raise ValueError(f"{len(tokens)} tokens, {len(spans)} spans, {len(speakers)} speakers")
    turns: list[Turn] = []
    last_end = 0.0
    for i, (token, (start, end), speaker) in enumerate(zip(tokens, spans, speakers, strict=True)):
        begin = start if start is not None else last_end
        finish = max(end if end is not None else begin, begin)
        pause_before = start is not None and begin - last_end >= pause
        same = turns and turns[-1].speaker == speaker and not (speaker == "unknown" and pause_before)
        if same:
            last = turns[-1]
            turns[-1] = last.model_copy(
                update={"text": f"{last.text} {token}", "end": max(last.end, finish), "token_end": i + 1}
            )
        else:
            channel = list(channel_speakers).index(speaker) if speaker in channel_speakers else None
            turns.append(
                Turn(
                    speaker=speaker,
                    start=begin,
                    end=finish,
                    text=token,
                    channel=channel,
                    token_start=i,
                    token_end=i + 1,
                )
            )
        last_end = max(last_end, finish)
    return turns


def index_turns(turns: Sequence[Turn]) -> list[Turn]:
    """``turns`` with ``token_start``/``token_end`` set, for a transcript that is the turns joined."""
    out: list[Turn] = []
    position = 0
    for turn in turns:
        count = len(turn.text.split())
        out.append(turn.model_copy(update={"token_start": position, "token_end": position + count}))
        position += count
    return out


def retext_turns(turns: Sequence[Turn], corrected_text: str, sources: Sequence[int]) -> list[Turn]:
    """The turns with the corrected words: output token k of ``corrected_text`` came from source
    token ``sources[k]`` of the uncorrected transcript, and goes to the turn holding that token.

    Turns that lost every word (merged into a correction that starts in an earlier turn) are left
    out. Turns without token ranges (written before they existed) are returned unchanged.
    """
    if not turns or any(t.token_start is None or t.token_end is None for t in turns):
        return list(turns)
    tokens = corrected_text.split()
    if len(tokens) != len(sources):
        raise ValueError(f"{len(tokens)} corrected tokens but {len(sources)} token sources")
    starts = [t.token_start or 0 for t in turns]
    pieces: list[list[str]] = [[] for _ in turns]
    for token, source in zip(tokens, sources, strict=True):
        k = max(0, bisect.bisect_right(starts, source) - 1)
        pieces[k].append(token)
    return [
        turn.model_copy(update={"text": " ".join(words)})
        for turn, words in zip(turns, pieces, strict=True)
        if words
    ]


def turns_match_text(turns: Sequence[Turn], text: str) -> bool:
    """Whether the turns joined are ``text``, token for token (so analysis may read them)."""
    return bool(turns) and " ".join(t.text for t in turns).split() == text.split()
