"""Context-aware dictionary of known Spanish ASR confusions (banking, telecom, utilities).

The shipped list lives in ``callpipe/data/confusions_es.jsonl``; a file named by the
environment variable ``CALLPIPE_CONFUSIONS_FILE`` (same format) is merged on top.

File format (JSON Lines, UTF-8): blank lines and lines starting with ``#`` are ignored; a
line ``{"meta": {...}}`` carries free-form metadata; every other line is one entry::

    {"wrong": "salgo", "right": "saldo", "before": ["el", "mi"], "after": ["disponible"],
     "near": ["cuenta"], "veto": ["salgo de casa"], "window": 3, "threshold": 0.7,
     "source": "curated", "domain": "banking"}

- ``wrong`` / ``right``: one or more words; ``wrong`` matches the lower-cased token text
  exactly (accents count), ``right`` is written as it should appear (``"IBAN"``).
- ``before`` / ``after``: cue phrases that must sit right next to the match (ending just
  before it / starting just after it).
- ``near``: cue phrases anywhere within ``window`` words on either side.
- ``veto``: phrases that block the fix when they occur inside the window (the match
  included), e.g. ``"cuánto cuesta"``.
- A fix needs at least one supporting cue and no veto. An entry with no cues must say
  ``"context_free": true`` (for forms that are never right, e.g. ``"a sido"``).
- ``threshold``: per-entry confidence threshold; ``None`` means the caller's default.
- ``source``: ``"curated"`` or ``"mined"`` (then ``count`` = times seen in mining).

Cues and vetoes are compared without accents and case. An extension entry with the same
``wrong`` and ``right`` as a shipped one replaces it; other entries are added.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from callpipe.settings import Settings

ENV_FILE = "CALLPIPE_CONFUSIONS_FILE"
DEFAULT_WINDOW = 3
SHIPPED_NAME = "confusions_es.jsonl"

LEADING_PUNCT = "¿¡\"'«“‘([{-—"
TRAILING_PUNCT = ".,;:!?\"'»”’)]}…-—"
_FOLD = str.maketrans("áéíóúüàèìòùÁÉÍÓÚÜÀÈÌÒÙ", "aeiouuaeiouAEIOUUAEIOU")
_ENTRY_KEYS = {
    "wrong", "right", "before", "after", "near", "veto", "window", "threshold",
    "context_free", "source", "count", "domain", "note",
}  # fmt: skip


class ConfusionFileError(ValueError):
    """A confusions file is missing or malformed; the message names the file and line."""


def fold(text: str) -> str:
    """Lower-case ``text`` and drop Spanish accents (ñ is kept)."""
    return text.lower().translate(_FOLD)


@dataclass(frozen=True, slots=True)
class Token:
    """One whitespace token of a transcript, split into punctuation and word."""

    text: str
    lead: str
    core: str
    trail: str
    norm: str
    fold: str


def make_token(raw: str) -> Token:
    """Split a whitespace token: ``"¿Cuesta?"`` -> lead ``"¿"``, core ``"Cuesta"``, trail ``"?"``."""
    core = raw.lstrip(LEADING_PUNCT)
    lead = raw[: len(raw) - len(core)]
    stripped = core.rstrip(TRAILING_PUNCT)
    trail = core[len(stripped) :]
    norm = stripped.lower()
    return Token(raw, lead, stripped, trail, norm, norm.translate(_FOLD))


def tokenize(text: str) -> list[Token]:
    """Spanish-aware tokenizer: whitespace tokens (the unit word confidences align to).

    Opening ``¿``/``¡``, quotes and brackets are kept in ``lead``, closing punctuation in
    ``trail``; a token made only of punctuation has an empty ``core``.
    """
    return [make_token(raw) for raw in text.split()]


@dataclass(frozen=True, slots=True)
class ConfusionEntry:
    """One known confusion ``wrong -> right`` with the context that licenses the fix."""

    wrong: str
    right: str
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    near: tuple[str, ...] = ()
    veto: tuple[str, ...] = ()
    window: int = DEFAULT_WINDOW
    threshold: float | None = None
    context_free: bool = False
    source: str = "curated"
    count: int | None = None
    domain: str | None = None
    note: str | None = None
    origin: str = ""
    wrong_words: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _before: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    _after: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    _near: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)
    _veto: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wrong_words", tuple(self.wrong.lower().split()))
        for name in ("before", "after", "near", "veto"):
            phrases = tuple(tuple(fold(p).split()) for p in getattr(self, name))
            object.__setattr__(self, "_" + name, phrases)

    @property
    def rule(self) -> str:
        return f"{self.wrong} -> {self.right}"


@dataclass(frozen=True, slots=True)
class Fix:
    """A dictionary fix that the context supports: tokens ``start:end`` become ``entry.right``."""

    entry: ConfusionEntry
    start: int
    end: int
    evidence: dict[str, Any]


def _has_phrase(words: Sequence[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    if n == 1:
        return phrase[0] in words
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


class ConfusionDictionary:
    """Precompiled confusion entries indexed by their first (lower-cased) word."""

    def __init__(self, entries: Iterable[ConfusionEntry]) -> None:
        merged: dict[tuple[str, str], ConfusionEntry] = {}
        for entry in entries:
            merged[(entry.wrong.lower(), entry.right)] = entry
        self._entries = tuple(merged.values())
        index: dict[str, list[ConfusionEntry]] = {}
        for entry in self._entries:
            index.setdefault(entry.wrong_words[0], []).append(entry)
        # Longest match first, so "tarjeta de credito" wins over a one-word entry.
        self._index = {k: tuple(sorted(v, key=lambda e: -len(e.wrong_words))) for k, v in index.items()}

    @classmethod
    def load_default(cls) -> ConfusionDictionary:
        """The shipped dictionary plus the file named by ``CALLPIPE_CONFUSIONS_FILE``, if set."""
        shipped = resources.files("callpipe").joinpath("data", SHIPPED_NAME)
        entries = parse_confusions(shipped.read_text(encoding="utf-8"), f"callpipe/data/{SHIPPED_NAME}")
        extra = Settings.from_env(only=[ENV_FILE]).callpipe_confusions_file
        if extra:
            entries.extend(load_confusions_file(Path(extra)))
        return cls(entries)

    @property
    def entries(self) -> tuple[ConfusionEntry, ...]:
        """All entries after merging (extension entries replace same wrong/right pairs)."""
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entries_for(self, word: str) -> tuple[ConfusionEntry, ...]:
        """Entries whose ``wrong`` starts with ``word`` (lower-cased), longest first."""
        return self._index.get(word.lower(), ())

    def matches(self, tokens: Sequence[Token], start: int, entry: ConfusionEntry) -> bool:
        """Whether ``entry.wrong`` is spelled by the tokens at ``start`` (no punctuation inside)."""
        words = entry.wrong_words
        end = start + len(words)
        if end > len(tokens):
            return False
        for k, word in enumerate(words):
            token = tokens[start + k]
            if token.norm != word or (k > 0 and token.lead) or (start + k < end - 1 and token.trail):
                return False
        return True

    def fixes_at(self, tokens: Sequence[Token], index: int) -> list[Fix]:
        """Fixes for the tokens starting at ``index`` that the context supports, longest first.

        Confidence is not looked at here: callers gate on it (see ``callpipe.recorder.online``).
        """
        fixes: list[Fix] = []
        for entry in self._index.get(tokens[index].norm, ()):
            if not self.matches(tokens, index, entry):
                continue
            end = index + len(entry.wrong_words)
            evidence = self.context_evidence(tokens, index, end, entry)
            if evidence is not None:
                fixes.append(Fix(entry, index, end, evidence))
        return fixes

    def find_fixes(self, tokens: Sequence[Token]) -> list[Fix]:
        """Leftmost-longest, non-overlapping fixes over a whole utterance (no confidence gate)."""
        out: list[Fix] = []
        i = 0
        while i < len(tokens):
            fixes = self.fixes_at(tokens, i)
            if fixes:
                out.append(fixes[0])
                i = fixes[0].end
            else:
                i += 1
        return out

    @staticmethod
    def context_evidence(
        tokens: Sequence[Token], start: int, end: int, entry: ConfusionEntry
    ) -> dict[str, Any] | None:
        """Evidence when the context supports ``entry`` at tokens ``start:end``, else ``None``.

        ``None`` when a veto phrase occurs in the window or no cue does (and the entry is not
        context-free). The evidence names the rule, its source, the cue and its side.
        """
        w = entry.window
        lo, hi = max(0, start - w), min(len(tokens), end + w)
        if entry._veto:
            region = [t.fold for t in tokens[lo:hi]]
            for phrase in entry._veto:
                if _has_phrase(region, phrase):
                    return None
        evidence: dict[str, Any] = {"rule": entry.rule, "source": entry.source}
        if entry.count is not None:
            evidence["count"] = entry.count
        for phrase in entry._before:
            s = start - len(phrase)
            if s >= 0 and tuple(t.fold for t in tokens[s:start]) == phrase:
                evidence.update(cue=" ".join(phrase), side="before")
                return evidence
        for phrase in entry._after:
            e = end + len(phrase)
            if e <= len(tokens) and tuple(t.fold for t in tokens[end:e]) == phrase:
                evidence.update(cue=" ".join(phrase), side="after")
                return evidence
        if entry._near:
            left = [t.fold for t in tokens[lo:start]]
            right = [t.fold for t in tokens[end:hi]]
            for phrase in entry._near:
                if _has_phrase(left, phrase) or _has_phrase(right, phrase):
                    evidence.update(cue=" ".join(phrase), side="near")
                    return evidence
        if entry.context_free:
            evidence.update(cue=None, side="context_free")
            return evidence
        return None


def load_confusions_file(path: Path) -> list[ConfusionEntry]:
    """Read and validate one confusions file; raises :class:`ConfusionFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfusionFileError(f"{path}: cannot read confusions file ({exc})") from exc
    return parse_confusions(text, str(path))


def parse_confusions(text: str, name: str) -> list[ConfusionEntry]:
    """Parse the JSON Lines ``text`` of a confusions file called ``name`` (used in errors)."""
    entries: list[ConfusionEntry] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{name} line {lineno}"
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ConfusionFileError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(data, dict):
            raise ConfusionFileError(f"{where}: expected a JSON object")
        if "meta" in data and len(data) == 1:
            continue
        entries.append(_entry_from_dict(data, where))
    return entries


def _entry_from_dict(data: dict[str, Any], where: str) -> ConfusionEntry:
    unknown = set(data) - _ENTRY_KEYS
    if unknown:
        raise ConfusionFileError(f"{where}: unknown field(s) {sorted(unknown)}")
    wrong, right = data.get("wrong"), data.get("right")
    for key, value in (("wrong", wrong), ("right", right)):
        if not isinstance(value, str) or not value.split():
            raise ConfusionFileError(f"{where}: {key!r} must be a non-empty string")
    assert isinstance(wrong, str) and isinstance(right, str)
    if " ".join(wrong.lower().split()) == " ".join(right.lower().split()):
        raise ConfusionFileError(f"{where}: 'wrong' and 'right' are the same ({wrong!r})")
    cues: dict[str, tuple[str, ...]] = {}
    for key in ("before", "after", "near", "veto"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(p, str) and p.split() for p in value):
            raise ConfusionFileError(f"{where}: {key!r} must be a list of non-empty strings")
        cues[key] = tuple(" ".join(p.split()) for p in value)
    context_free = data.get("context_free", False)
    if not isinstance(context_free, bool):
        raise ConfusionFileError(f"{where}: 'context_free' must be true or false")
    if not (context_free or cues["before"] or cues["after"] or cues["near"]):
        raise ConfusionFileError(f"{where}: no context cues (before/after/near); set context_free to allow")
    window = data.get("window", DEFAULT_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 10:
        raise ConfusionFileError(f"{where}: 'window' must be an integer from 1 to 10")
    threshold = data.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1
    ):
        raise ConfusionFileError(f"{where}: 'threshold' must be a number in (0, 1]")
    source = data.get("source", "curated")
    if source not in ("curated", "mined"):
        raise ConfusionFileError(f"{where}: 'source' must be 'curated' or 'mined'")
    count = data.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ConfusionFileError(f"{where}: 'count' must be a positive integer")
    if source == "mined" and count is None:
        raise ConfusionFileError(f"{where}: mined entries need a 'count'")
    for key in ("domain", "note"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ConfusionFileError(f"{where}: {key!r} must be a string")
    return ConfusionEntry(
        wrong=" ".join(wrong.lower().split()),
        right=" ".join(right.split()),
        window=window,
        threshold=None if threshold is None else float(threshold),
        context_free=context_free,
        source=source,
        count=count,
        domain=data.get("domain"),
        note=data.get("note"),
        origin=where,
        **cues,
    )
