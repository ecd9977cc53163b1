"""Spanish phonetic key and sound/spelling distances for ASR correction.

:func:`phonetic_key` maps a word to a key in which spellings that sound alike collide:

- accents are removed (``ñ`` and the ``ü`` of ``güe``/``güi`` are kept as sounds);
- ``b``/``v`` -> ``B``; ``w`` -> ``U`` (``wifi`` ~ ``güifi``);
- seseo: ``c`` before ``e``/``i``, ``z`` and ``s`` -> ``S``. Chosen because Whisper learnt from
  Latin American and Andalusian speech as much as from Castilian, so it writes ``s`` for a
  ``z``/``c`` sound and the reverse; most Spanish-speaking callers do not distinguish them either;
- ``qu``/``k`` and ``c`` before ``a``/``o``/``u`` or a consonant -> ``K``; ``x`` -> ``KS``;
- ``g`` before ``e``/``i`` and ``j`` -> ``J``; ``gu`` before ``e``/``i`` -> ``G`` (``gü`` -> ``GU``);
- ``ll`` and ``y`` before a vowel -> ``Y`` (yeísmo); ``y`` elsewhere is the vowel ``I``;
- ``ch`` -> ``C`` (no other rule yields ``C``); ``ñ`` -> ``NY``; silent ``h``;
- ``rr``/``r`` -> ``R`` and any doubled symbol is collapsed (``cc`` stays ``KS``).

Distances come from jellyfish 1.3 (``jaro_winkler_similarity``,
``damerau_levenshtein_distance``), on keys and on accent-folded spellings.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_FRONT = frozenset("ei")
_VOWELS = frozenset("aeiou")
_SIMPLE = {
    "a": "A", "e": "E", "i": "I", "o": "O", "u": "U", "b": "B", "v": "B", "w": "U", "z": "S",
    "s": "S", "k": "K", "j": "J", "x": "KS", "ñ": "NY", "d": "D", "f": "F", "l": "L", "m": "M",
    "n": "N", "p": "P", "r": "R", "t": "T",
}  # fmt: skip


def strip_accents(word: str) -> str:
    """Lower-case ``word`` and drop accents, keeping ``ñ`` and ``ü``."""
    text = unicodedata.normalize("NFC", word.lower()).replace("ñ", "\0").replace("ü", "\1")
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return text.replace("\0", "ñ").replace("\1", "ü")


@lru_cache(maxsize=65536)
def phonetic_key(word: str) -> str:
    """Spanish sound key of ``word`` (see the module docstring): ``"Domisiliasión"`` -> ``"DOMISILIASION"``.

    Digits are kept as they are; other characters (hyphens, apostrophes) are dropped.
    """
    text = strip_accents(word)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        after = text[i + 2] if i + 2 < n else ""
        step = 1
        if ch == "c":
            if nxt == "h":
                out.append("C")
                step = 2
            else:
                out.append("S" if nxt in _FRONT else "K")
        elif ch == "q":
            out.append("K")
            step = 2 if nxt == "u" else 1
        elif ch == "g":
            if nxt in _FRONT:
                out.append("J")
            elif nxt == "u" and after in _FRONT:
                out.append("G")
                step = 2  # the u of gue/gui is silent
            elif nxt == "ü":
                out.append("GU")
                step = 2
            else:
                out.append("G")
        elif ch == "l" and nxt == "l":
            out.append("Y")
            step = 2
        elif ch == "y":
            out.append("Y" if nxt in _VOWELS else "I")
        elif ch == "ü":
            out.append("U")
        elif ch == "h":
            pass
        elif ch in _SIMPLE:
            out.append(_SIMPLE[ch])
        elif ch.isdigit():
            out.append(ch)
        i += step
    key = "".join(out)
    collapsed = [c for k, c in enumerate(key) if k == 0 or c != key[k - 1] or c.isdigit()]
    return "".join(collapsed)


@dataclass(frozen=True, slots=True)
class WordDistance:
    """How alike two words are, in sound (keys) and in spelling (accent-folded)."""

    key_a: str
    key_b: str
    key_jaro_winkler: float
    key_damerau: int
    spelling_jaro_winkler: float
    spelling_damerau: int

    @property
    def similarity(self) -> float:
        """One number in [0, 1]: mean of key and spelling Jaro-Winkler, less a length-scaled edit cost."""
        longest = max(len(self.key_a), len(self.key_b), 1)
        edit = 1.0 - min(self.key_damerau, longest) / longest
        return (self.key_jaro_winkler + self.spelling_jaro_winkler + 2 * edit) / 4

    def as_evidence(self) -> dict[str, float | int | str]:
        """The numbers, rounded, for ``Correction.evidence``."""
        return {
            "key_original": self.key_a,
            "key_candidate": self.key_b,
            "key_jaro_winkler": round(self.key_jaro_winkler, 4),
            "key_damerau_levenshtein": self.key_damerau,
            "spelling_jaro_winkler": round(self.spelling_jaro_winkler, 4),
            "spelling_damerau_levenshtein": self.spelling_damerau,
            "similarity": round(self.similarity, 4),
        }


def word_distance(a: str, b: str) -> WordDistance:
    """Sound and spelling distances between the words ``a`` and ``b``."""
    import jellyfish  # deferred: keeps ``import callpipe.correction`` light

    key_a, key_b = phonetic_key(a), phonetic_key(b)
    fold_a, fold_b = strip_accents(a), strip_accents(b)
    return WordDistance(
        key_a=key_a,
        key_b=key_b,
        key_jaro_winkler=jellyfish.jaro_winkler_similarity(key_a, key_b) if key_a and key_b else 0.0,
        key_damerau=jellyfish.damerau_levenshtein_distance(key_a, key_b),
        spelling_jaro_winkler=jellyfish.jaro_winkler_similarity(fold_a, fold_b) if fold_a and fold_b else 0.0,
        spelling_damerau=jellyfish.damerau_levenshtein_distance(fold_a, fold_b),
    )


@lru_cache(maxsize=262144)
def sound_similarity(a: str, b: str) -> float:
    """Jaro-Winkler similarity of the phonetic keys of ``a`` and ``b`` (1.0 = same sound key)."""
    import jellyfish

    key_a, key_b = phonetic_key(a), phonetic_key(b)
    if not key_a or not key_b:
        return 1.0 if key_a == key_b else 0.0
    return jellyfish.jaro_winkler_similarity(key_a, key_b)
