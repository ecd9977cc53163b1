"""Near-duplicate sentences between labelled sets (training data, taxonomy examples, evaluation sets).

Two sentences are near-duplicates when, after :func:`~callpipe.analysis.text.fold` (lower case, no
accents, no punctuation), either

- their token sets have a Jaccard similarity of at least :data:`JACCARD` (0.6), both having at least
  :data:`MIN_TOKENS` tokens, or
- one becomes the other by 1-3 word insertions, deletions or substitutions (word-level Levenshtein,
  :data:`MAX_EDITS`), and those edits are at most half of the longer sentence ("quiero pagar la
  factura de enero" / "... de marzo" is one edit: a template fill), both having at least
  :data:`MIN_TOKENS` tokens. Without those bounds any two short sentences would be "near".

Identical folded sentences are near-duplicates too. :func:`near_duplicate_pairs` compares every
sentence of one set with every sentence of another (a token-overlap bound skips most pairs before
the edit distance is computed). :func:`pair_key` names a pair by hashes of its two folded texts, so
a list of known pairs can be committed without copying evaluation text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from callpipe.analysis.text import fold

JACCARD = 0.6
MAX_EDITS = 3
MIN_TOKENS = 3


def word_edits(a: Sequence[str], b: Sequence[str], limit: int = MAX_EDITS) -> int:
    """Word-level Levenshtein distance, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, word in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, other in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def is_near_duplicate(a: str, b: str) -> bool:
    """True when the two sentences are near-duplicates (see the module docstring)."""
    ta, tb = fold(a).split(), fold(b).split()
    return _near(ta, set(ta), tb, set(tb))


def _near(ta: list[str], sa: set[str], tb: list[str], sb: set[str]) -> bool:
    if not ta or not tb:
        return False
    if ta == tb:
        return True
    shared = len(sa & sb)
    if min(len(sa), len(sb)) >= MIN_TOKENS and shared / len(sa | sb) >= JACCARD:
        return True
    longest = max(len(ta), len(tb))
    # k edits leave at least longest - k words in common as a multiset; repeated words can make the
    # multiset overlap exceed the set overlap by at most the number of repeats.
    repeats = max(len(ta) - len(sa), len(tb) - len(sb))
    if shared == 0 or shared + repeats < longest - MAX_EDITS:
        return False
    if min(len(ta), len(tb)) < MIN_TOKENS:
        return False
    edits = word_edits(ta, tb)
    return edits <= MAX_EDITS and 2 * edits <= longest


def near_duplicate_pairs(left: Iterable[str], right: Iterable[str]) -> list[tuple[str, str]]:
    """Every (left sentence, right sentence) pair that are near-duplicates, in input order."""
    rights = [(text, tokens, set(tokens)) for text in dict.fromkeys(right) for tokens in [fold(text).split()]]
    out = []
    for text in dict.fromkeys(left):
        ta = fold(text).split()
        sa = set(ta)
        out += [(text, other) for other, tb, sb in rights if _near(ta, sa, tb, sb)]
    return out


def pair_key(a: str, b: str) -> str:
    """An order-free name of a pair: the first 16 hex digits of SHA-256 of each folded text."""
    ha, hb = (hashlib.sha256(fold(t).encode()).hexdigest()[:16] for t in (a, b))
    return ":".join(sorted((ha, hb)))
