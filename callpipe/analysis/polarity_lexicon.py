"""Spanish call-centre polarity lexicon with negation, intensifiers and frustration cues.

Terms are matched on folded tokens (see :mod:`callpipe.analysis.text`), longest phrase first. A
negator up to three words before a polar term flips it ("no estoy nada contento"), unless a
"pero"/"aunque"/"sino" stands between; an intensifier up to two words before scales it ("muy
mal"). Phrases tagged ``fixed`` carry their own negation ("ningún problema", "no funciona") and
are never flipped. Regular-expression cues catch waiting and repetition ("llevo tres semanas
esperando", "ya es la tercera vez"); repeated "no no no" and exclamation marks add frustration.
The file format is documented at the top of ``data/sentiment_lexicon.tsv``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from callpipe.analysis.embeddings import AnalysisError
from callpipe.analysis.text import fold

DEFAULT_LEXICON = Path(__file__).resolve().parent.parent / "data" / "sentiment_lexicon.tsv"
_BREAKERS = frozenset({"pero", "aunque", "sino"})
_TAGS = frozenset({"negator", "intensifier", "fixed", "frustration", "anger", "worry", "gratitude"})


class LexiconError(AnalysisError):
    """The lexicon file is malformed."""


@dataclass(frozen=True)
class _Entry:
    words: tuple[str, ...]
    weight: float
    tags: frozenset[str]

    def matches(self, toks: list[str], i: int) -> bool:
        if i + len(self.words) > len(toks):
            return False
        for pattern, tok in zip(self.words, toks[i : i + len(self.words)], strict=False):
            if pattern.endswith("*"):
                if not tok.startswith(pattern[:-1]):
                    return False
            elif pattern != tok:
                return False
        return True


@dataclass
class LexiconScore:
    """What the lexicon found in one text. Weights are after negation and intensifiers."""

    positive: float = 0.0
    negative: float = 0.0
    frustration: float = 0.0
    gratitude: float = 0.0
    anger: float = 0.0
    worry: float = 0.0
    hits: list[tuple[str, float]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.positive - self.negative

    def add(self, other: LexiconScore) -> None:
        for name in ("positive", "negative", "frustration", "gratitude", "anger", "worry"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.hits.extend(other.hits)

    def probs(self, scale: float) -> np.ndarray | None:
        """Distribution over :data:`LABELS`, or None when nothing polar was found."""
        if not self.positive and not self.negative:
            return None
        s = math.tanh(self.total / scale)
        neg_mass = max(-s, 0.0)
        frus_share = min(1.0, self.frustration / self.negative) if self.negative else 0.0
        return np.array([max(s, 0.0), 1.0 - abs(s), neg_mass * (1 - frus_share), neg_mass * frus_share])


class Lexicon:
    """Phrase lexicon with negators, intensifiers and regular-expression cues."""

    def __init__(
        self, entries: Sequence[_Entry], patterns: Sequence[tuple[re.Pattern[str], float, frozenset[str]]]
    ):
        self._by_word: dict[str, list[_Entry]] = {}
        self._by_prefix: dict[str, list[_Entry]] = {}
        for entry in entries:
            head = entry.words[0]
            if head.endswith("*"):
                self._by_prefix.setdefault(head[:3], []).append(entry)
            else:
                self._by_word.setdefault(head, []).append(entry)
        self._patterns = list(patterns)
        self.size = len(entries) + len(patterns)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_LEXICON) -> Lexicon:
        """Read a lexicon TSV (format documented at the top of ``data/sentiment_lexicon.tsv``)."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise LexiconError(f"cannot read lexicon {path}: {exc.strerror}") from exc
        entries: list[_Entry] = []
        patterns: list[tuple[re.Pattern[str], float, frozenset[str]]] = []
        seen: set[str] = set()
        for number, line in enumerate(lines, 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            where = f"{path.name}:{number}"
            if len(cols) < 2:
                raise LexiconError(f"{where}: expected 'term<TAB>weight[<TAB>tags]'")
            term, weight_text = cols[0].strip(), cols[1].strip()
            tags = (
                frozenset(t.strip() for t in cols[2].split(",") if t.strip())
                if len(cols) > 2
                else frozenset()
            )
            try:
                weight = float(weight_text)
            except ValueError:
                raise LexiconError(f"{where}: weight {weight_text!r} is not a number") from None
            if tags - _TAGS:
                raise LexiconError(f"{where}: unknown tags {sorted(tags - _TAGS)}")
            if term.startswith("re:"):
                try:
                    patterns.append((re.compile(term[3:]), weight, tags))
                except re.error as exc:
                    raise LexiconError(f"{where}: bad regular expression: {exc}") from None
                continue
            words = tuple(fold(w.rstrip("*")) + ("*" if w.endswith("*") else "") for w in term.split())
            if not words or any(w.endswith("*") and len(w) < 4 for w in words):
                raise LexiconError(f"{where}: empty term or prefix shorter than 3 letters: {term!r}")
            key = " ".join(words)
            if key in seen:
                raise LexiconError(f"{where}: duplicate term {term!r}")
            seen.add(key)
            entries.append(_Entry(words, weight, tags))
        return cls(entries, patterns)

    def _candidates(self, tok: str) -> list[_Entry]:
        return self._by_word.get(tok, []) + self._by_prefix.get(tok[:3], [])

    def score(self, text: str) -> LexiconScore:
        """Polarity evidence in ``text`` (see the module docstring for the rules)."""
        folded = fold(text)
        toks = folded.split()
        matched: list[tuple[int, _Entry]] = []
        i = 0
        while i < len(toks):
            best = None
            for entry in self._candidates(toks[i]):
                if entry.matches(toks, i) and (best is None or len(entry.words) > len(best.words)):
                    best = entry
            if best is None:
                i += 1
                continue
            matched.append((i, best))
            i += len(best.words)
        role = {start: entry for start, entry in matched if len(entry.words) == 1}
        result = LexiconScore()
        for start, entry in matched:
            if entry.weight == 0 or {"negator", "intensifier"} & entry.tags:
                continue
            weight = entry.weight
            if "fixed" not in entry.tags:
                weight = _modify(weight, toks, start, role)
            _account(result, " ".join(entry.words), weight, entry.tags)
        spans: list[tuple[int, int]] = []
        for pattern, weight, tags in self._patterns:
            for match in pattern.finditer(folded):
                # overlapping cues ("llevo tres semanas esperando", "semanas esperando") count once
                if any(match.start() < end and start < match.end() for start, end in spans):
                    continue
                spans.append(match.span())
                _account(result, match.group(0), weight, tags)
        repeats = _repetition(toks) + text.count("!") / 2
        if repeats:
            _account(result, "<repetition>", -1.0 * repeats, frozenset({"frustration"}))
        return result


def _modify(weight: float, toks: list[str], start: int, role: dict[int, _Entry]) -> float:
    """Apply intensifiers (two words back) and negation (three words back, stopping at 'pero')."""
    for j in range(start - 1, max(start - 3, -1), -1):
        entry = role.get(j)
        if entry is not None and "intensifier" in entry.tags:
            weight *= entry.weight
            break
    for j in range(start - 1, max(start - 4, -1), -1):
        if toks[j] in _BREAKERS:
            break
        entry = role.get(j)
        if entry is not None and "negator" in entry.tags:
            return weight * (-0.8 if weight > 0 else -0.5)
    return weight


def _account(result: LexiconScore, term: str, weight: float, tags: frozenset[str]) -> None:
    result.hits.append((term, round(weight, 3)))
    if weight > 0:
        result.positive += weight
        if "gratitude" in tags:
            result.gratitude += weight
        return
    result.negative += -weight
    for tag in ("frustration", "anger", "worry"):
        if tag in tags:
            setattr(result, tag, getattr(result, tag) - weight)


def _repetition(toks: list[str]) -> float:
    """Count insistent repetitions: "no no no", "que no que no"."""
    count = 0.0
    run = 1
    for a, b in itertools.pairwise(toks):
        run = run + 1 if a == b and a in {"no", "ya", "nada"} else 1
        if run == 3:
            count += 1
    return count
