"""The working state shared by the entity passes: tokens, which of them are claimed, and the output.

Each pass reads ``Doc.free`` (claimed tokens blanked) and records what it finds with
:meth:`Doc.add`, which claims the tokens so no later pass reads a digit or word twice.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date
from typing import Any

from callpipe.analysis.entity_passes.regions import latam_text, text_region
from callpipe.analysis.entity_passes.regions import words as words  # re-exported: the passes' word lists
from callpipe.analysis.spoken import Token, tokenize
from callpipe.schema import Amount, Entities, Entity


@dataclass(slots=True)
class Run:
    """Consecutive digit groups: (digits, first token, next token) per group."""

    groups: list[tuple[str, int, int]]

    @property
    def digits(self) -> str:
        return "".join(g[0] for g in self.groups)

    def prefix_ends(self) -> list[tuple[str, int]]:
        """Each group boundary as (digits so far, token index after that group)."""
        out, acc = [], ""
        for digits, _, end in self.groups:
            acc += digits
            out.append((acc, end))
        return out


class Doc:
    """One transcript being read: its tokens, which are claimed, and the entities found so far."""

    def __init__(self, text: str, reference: date) -> None:
        self.text = text
        self.reference = reference
        self.tokens: list[Token] = tokenize(text)
        self.norms = [t.norm for t in self.tokens]
        self.claimed = [False] * len(self.tokens)
        self.free = list(self.norms)  # claimed tokens blanked: no parser reads into a claimed span
        self.starts = [t.start for t in self.tokens]
        self.ends = [t.end for t in self.tokens]
        self.out = Entities()
        self.region = text_region(self.norms)  # the Latin American country the text names, if any
        self.latam = latam_text(self.norms)  # whether the text sounds Latin American

    def is_free(self, i: int, j: int) -> bool:
        """True when ``[i, j)`` is non-empty and no token in it is claimed."""
        return i < j and not any(self.claimed[i:j])

    def token_range(self, start: int, end: int) -> tuple[int, int]:
        """Tokens overlapping the characters ``[start, end)``."""
        return bisect_right(self.ends, start), bisect_left(self.starts, end)

    def add(self, bucket: list[Any], i: int, j: int, kind: str, value: str, *, text: str | None = None,
            confidence: float = 0.95, amount: float | None = None, currency: str = "EUR") -> None:
        """Record an entity over tokens ``[i, j)`` and claim them."""
        start, end = self.tokens[i].start, self.tokens[j - 1].end
        fields: dict[str, Any] = {"kind": kind, "text": text if text is not None else self.text[start:end],
                                  "value": value, "start": start, "end": end, "valid": True,
                                  "confidence": confidence}
        if amount is not None:
            bucket.append(Amount(**fields, amount=amount, currency=currency))
        else:
            bucket.append(Entity(**fields))
        for k in range(i, j):
            self.claimed[k] = True
            self.free[k] = ""

    def context(self, i: int, before: int) -> set[str]:
        """The normalised words of the ``before`` tokens preceding token ``i``."""
        return set(self.norms[max(0, i - before) : i])

