"""Text helpers shared by the sentiment, intent and topic analysers.

Transcripts arrive lower- or mixed-case, mostly without punctuation, with or without accents
(ASR output varies). Matching against lexicons and keyword lists therefore happens on *folded*
text: lower-case, accents removed (``ñ`` becomes ``n``), anything but letters and digits turned
into spaces. Embeddings are computed on the original wording instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from callpipe.analysis.embeddings import AnalysisError
from callpipe.analysis.spoken import fold


class TrainingDataError(AnalysisError):
    """A labelled-examples file is missing or malformed."""




def tokens(text: str) -> list[str]:
    """Folded words of ``text``."""
    folded = fold(text)
    return folded.split() if folded else []


def word_windows(text: str, size: int = 40) -> list[str]:
    """Split ``text`` into consecutive windows of about ``size`` words (original wording kept).

    Unpunctuated transcripts have no sentences, so fixed word windows stand in for them. A short
    tail (under half a window) joins the previous window. Empty text gives no windows.
    """
    if size < 1:
        raise ValueError(f"window size must be at least 1, got {size}")
    words = text.split()
    if not words:
        return []
    windows = [words[i : i + size] for i in range(0, len(words), size)]
    if len(windows) > 1 and len(windows[-1]) < size / 2:
        windows[-2].extend(windows.pop())
    return [" ".join(w) for w in windows]


def load_examples(path: str | Path, label_key: str) -> list[tuple[str, str]]:
    """Read ``{"text": ..., label_key: ...}`` JSON lines as (text, label) pairs."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TrainingDataError(f"cannot read examples {path}: {exc.strerror}") from exc
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append((str(row["text"]), str(row[label_key])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TrainingDataError(
                f"{path.name}:{number}: expected JSON with 'text' and '{label_key}'"
            ) from exc
    return examples
