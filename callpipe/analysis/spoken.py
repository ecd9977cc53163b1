"""Spoken-form normalisation for Spanish transcripts.

ASR output says numbers, letters and dates in words, without punctuation, often lower-cased and
without accents ("veintitres", "dieciseis"). These helpers turn such words into values while
keeping character offsets into the original text:

- :func:`tokenize` splits text into words, digit runs and single symbols with their offsets;
- :func:`parse_cardinal` reads one cardinal number from a token position
  ("dos mil quinientos treinta" -> 2530) and :func:`words_to_number` a whole string, decimals
  included ("cuarenta y cinco con cincuenta" -> 45.5);
- :func:`spoken_digits` reads a digit sequence said digit by digit or in groups
  ("seiscientos doce treinta y cuatro" -> "61234");
- :func:`parse_letter` reads a spelled letter ("zeta" -> "Z", "i griega" -> "Y");
- :func:`parse_spoken_date` reads a date phrase ("el quince de marzo", "pasado mañana",
  "el próximo lunes", "hace tres días") against a reference day.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

_NON_WORD = re.compile(r"[^0-9a-z]+")

_UNITS = {
    "uno": 1, "un": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9,
}
_TEENS = {
    "diez": 10, "dies": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15,
    "dieciseis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veinte": 20, "veintiuno": 21,
    "veintiun": 21, "veintiuna": 21, "veintidos": 22, "veintitres": 23, "veinticuatro": 24,
    "veinticinco": 25, "veintiseis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29,
}
_TENS = {
    "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80,
    "noventa": 90,
}
# "diez y seis", "veinte y uno": older or ASR-split spellings of 16 and 21.
_SPLIT_TENS = {"diez": 10, "dies": 10, "veinte": 20}
_HUNDREDS = {"ciento": 100}
for _stem, _value in (("dos", 2), ("tres", 3), ("cuatro", 4), ("quin", 5), ("seis", 6), ("sete", 7),
                      ("ocho", 8), ("nove", 9)):
    _HUNDREDS[_stem + "cientos"] = _HUNDREDS[_stem + "cientas"] = _value * 100
_HUNDREDS["quinientos"] = _HUNDREDS["quinientas"] = 500
_MILLION = {"millon", "millones"}
_ARTICLES = {"un", "una"}

NUMBER_WORDS = frozenset({"cero", "cien", "mil", *_UNITS, *_TEENS, *_TENS, *_HUNDREDS, *_MILLION})
"""Normalised words that can belong to a spoken cardinal (besides the connector "y")."""

_LETTER_NAMES = {
    "a": "A", "be": "B", "ce": "C", "de": "D", "e": "E", "efe": "F", "ge": "G", "hache": "H", "i": "I",
    "jota": "J", "ka": "K", "ele": "L", "eme": "M", "ene": "N", "o": "O", "pe": "P", "cu": "Q",
    "erre": "R", "ere": "R", "ese": "S", "te": "T", "u": "U", "uve": "V", "ve": "V", "equis": "X",
    "ye": "Y", "zeta": "Z", "ceta": "Z", "seta": "Z",
}
_B_V_QUALIFIERS = {"larga": "B", "grande": "B", "alta": "B", "corta": "V", "chica": "V", "baja": "V",
                   "pequena": "V", "chiquita": "V"}
AMBIGUOUS_LETTERS = frozenset({"a", "e", "i", "o", "u", "y", "de", "te", "ese", "ve", "ye"})
"""Letter names that are also common Spanish words; callers need context before trusting them."""

MONTHS = {
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7, "agosto": 8,
    "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
}
WEEKDAYS = {"lunes": 0, "martes": 1, "miercoles": 2, "jueves": 3, "viernes": 4, "sabado": 5, "domingo": 6}

_TOKEN_RE = re.compile(r"[^\W\d_]+|[0-9]+|\S")


@dataclass(frozen=True, slots=True)
class Token:
    """One word, digit run or symbol; ``start``/``end`` are offsets in the original text."""

    text: str
    norm: str
    start: int
    end: int

    @property
    def is_digits(self) -> bool:
        return is_digits(self.text)


def is_digits(word: str) -> bool:
    """ASCII digits only: "¹" or "٣" are not read as numbers."""
    return word.isascii() and word.isdigit()


_MAX_NUMBER_DIGITS = 18


def _digits_value(word: str) -> int | None:
    """The value of a digit run, None when longer than any number a caller says (``int()`` of a
    run over 4300 digits raises ValueError, and a pasted blob of digits is no amount or date)."""
    return int(word) if len(word) <= _MAX_NUMBER_DIGITS else None


@lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """Lower-case ``text``, strip accents and punctuation, collapse whitespace."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", stripped).strip()


def normalize_word(word: str) -> str:
    """Lower-case and strip accents ("Millón" -> "millon", "mañana" -> "manana")."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into letter runs, digit runs and single symbols, keeping offsets.

    Letters and digits are separate tokens ("ES91" -> "ES", "91"; "12345678Z" -> "12345678", "Z");
    :func:`adjacent` tells whether two tokens touch.
    """
    return [Token(m.group(), normalize_word(m.group()), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def adjacent(left: Token, right: Token) -> bool:
    """True when nothing (not even a space) separates the two tokens."""
    return left.end == right.start


def _below_thousand(words: Sequence[str], i: int, article_ok: bool) -> tuple[int, int] | None:
    """Read 1..999 at ``i``: [hundreds] [tens [y unit] | teen | unit]."""
    n = len(words)
    value, j = 0, i
    if j < n and words[j] == "cien":
        return 100, j + 1
    if j < n and words[j] in _HUNDREDS:
        value, j = _HUNDREDS[words[j]], j + 1
    if j < n and (words[j] in _TENS or (words[j] in _SPLIT_TENS and _is_y_unit(words, j + 1))):
        value += _TENS.get(words[j]) or _SPLIT_TENS[words[j]]
        j += 1
        if _is_y_unit(words, j):
            value += _UNITS[words[j + 1]]
            j += 2
    elif j < n and words[j] in _TEENS:
        value += _TEENS[words[j]]
        j += 1
    elif j < n and words[j] in _UNITS and (article_ok or j > i or words[j] not in _ARTICLES):
        value += _UNITS[words[j]]
        j += 1
    return (value, j) if j > i else None


def _is_y_unit(words: Sequence[str], j: int) -> bool:
    return j + 1 < len(words) and words[j] == "y" and words[j + 1] in _UNITS


def parse_cardinal(words: Sequence[str], i: int, *, article_ok: bool = False) -> tuple[int, int] | None:
    """Read the longest Spanish cardinal starting at ``words[i]`` (normalised words).

    Returns ``(value, next_index)`` or None. "un"/"una" count as 1 only before "mil"/"millón" unless
    ``article_ok`` (amounts: "un euro"). "cero" is a number on its own. When a thousands group is
    followed by another "mil" ("dos mil cuatro mil ciento ochenta", groups said without pauses),
    the trailing part is left for the next number: 2000, then 4180.
    """
    n = len(words)
    if i >= n:
        return None
    if words[i] == "cero":
        return 0, i + 1
    total, j = 0, i
    seen_thousand = seen_million = False
    tail_start, tail_value = -1, 0
    while j < n:
        part = _below_thousand(words, j, article_ok=True)
        k = part[1] if part else j
        head = part[0] if part else None
        word = words[k] if k < n else ""
        if word in _MILLION and head is not None and not (seen_thousand or seen_million):
            total, j, seen_million = total + head * 1_000_000, k + 1, True
            continue
        if word == "mil" and not seen_thousand and (head is None or head > 0):
            total, j, seen_thousand = total + (1 if head is None else head) * 1000, k + 1, True
            tail_start = -1
            continue
        if part is not None:
            if j == i and not article_ok and words[j] in _ARTICLES and k == j + 1:
                break
            tail_start, tail_value = j, head or 0
            total, j = total + (head or 0), k
        break
    if j == i:
        return None
    if seen_thousand and tail_start > i and j < n and words[j] == "mil":
        return total - tail_value, tail_start
    return total, j


def words_to_number(text: str) -> int | float | None:
    """The number that the whole of ``text`` says, or None.

    "dos mil quinientos treinta" -> 2530; decimals with "coma"/"punto" read their digits
    ("diecinueve coma noventa y nueve" -> 19.99, "uno coma cero cinco" -> 1.05); "con" reads
    hundredths as money does ("cuarenta y cinco con cincuenta" -> 45.5, "cinco con cinco" -> 5.05).
    Digits are accepted too ("45,50" -> 45.5).
    """
    words = [t.norm for t in tokenize(text)]
    if not words:
        return None
    integer, j = _number_or_digits(words, 0)
    if integer is None:
        return None
    if j == len(words):
        return integer
    if words[j] in {"coma", "punto", ",", ".", "con"}:
        digits = spoken_digits(" ".join(words[j + 1 :]))
        if not digits:
            return None
        if words[j] == "con":
            return integer + int(digits) / 100 if len(digits) <= 2 else None
        return float(f"{integer}.{digits}")
    return None


def _number_or_digits(words: Sequence[str], i: int) -> tuple[int | None, int]:
    if i < len(words) and is_digits(words[i]):
        value = _digits_value(words[i])
        return (value, i + 1) if value is not None else (None, i)
    parsed = parse_cardinal(words, i, article_ok=True)
    return (parsed[0], parsed[1]) if parsed else (None, i)


def spoken_digits(text: str) -> str | None:
    """The digit string said by ``text`` ("seis uno dos" -> "612", "doble cero siete" -> "007").

    Groups are read as cardinals and concatenated; None when any word is not part of a number.
    """
    words = [t.norm for t in tokenize(text) if t.norm not in {"-", "."}]
    out: list[str] = []
    i = 0
    while i < len(words):
        got = read_digit_group(words, i)
        if got is None:
            return None
        digits, i = got
        out.append(digits)
    return "".join(out) or None


def read_digit_group(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """One group of a said digit sequence at ``i``: digits, a cardinal, or "doble"/"triple" + digit."""
    if i >= len(words):
        return None
    if is_digits(words[i]):
        return words[i], i + 1
    if words[i] in {"doble", "triple"} and i + 1 < len(words):
        inner = read_digit_group(words, i + 1)
        if inner and len(inner[0]) == 1:
            return inner[0] * (2 if words[i] == "doble" else 3), inner[1]
        return None
    parsed = parse_cardinal(words, i)
    return (str(parsed[0]), parsed[1]) if parsed else None


def parse_letter(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """A spelled or bare letter at ``words[i]`` as (letter, next): "zeta", "z", "i griega", "uve doble"."""
    if i >= len(words):
        return None
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if word == "i" and nxt == "griega":
        return "Y", i + 2
    if (word in {"uve", "doble"} and nxt in {"doble", "uve"} and word != nxt) or (
            word == "doble" and nxt in {"ve", "u", "be"}) or (word == "ve" and nxt == "doble"):
        return "W", i + 2  # "uve doble", "doble ve", "doble u" (Latin American)
    if word in {"be", "ve"} and nxt in _B_V_QUALIFIERS:
        return _B_V_QUALIFIERS[nxt], i + 2  # "be larga", "ve corta"
    if word in _LETTER_NAMES:
        return _LETTER_NAMES[word], i + 1
    if len(word) == 1 and word.isalpha() and word.isascii():
        return word.upper(), i + 1
    return None


_MORNING_LEAD = {"la", "esta", "una", "cada", "media", "toda", "buena", "buenas", "las", "sus"}
_NEXT_MARKERS = {"proximo", "proxima", "siguiente"}


def parse_spoken_date(words: Sequence[str], i: int, reference: date) -> tuple[date, int, float] | None:
    """A date phrase starting at ``words[i]``: ``(date, next_index, confidence)`` or None.

    Day and month ("quince de marzo [de dos mil veinticinco]", "el 3 de febrero"; the reference
    year when none is said), "el día ocho" (reference month), "hoy", "mañana" (not "por la
    mañana"), "pasado mañana", "ayer", "anteayer", weekdays with "el"/"este"/"próximo"/"que viene"
    (the next one) or "pasado" (the last one), "dentro de"/"en"/"hace" N días or semanas.
    """
    n = len(words)
    word = words[i] if i < n else ""
    prev = words[i - 1] if i >= 1 else ""
    nxt = words[i + 1] if i + 1 < n else ""
    if not word:
        return None
    if word == "hoy" and nxt != "en":
        return reference, i + 1, 0.8
    if word == "pasado" and nxt == "manana":
        return reference + timedelta(days=2), i + 2, 0.85
    if word == "manana" and prev not in _MORNING_LEAD:
        return reference + timedelta(days=1), i + 1, 0.85
    if word in {"anteayer", "antier", "antiayer"}:
        return reference - timedelta(days=2), i + 1, 0.85
    if word == "antes" and words[i + 1 : i + 3] == ["de", "ayer"]:
        return reference - timedelta(days=2), i + 3, 0.85
    if word == "ayer":
        return reference - timedelta(days=1), i + 1, 0.85
    return _weekday(words, i, reference) or _offset(words, i, reference) or _day_month(words, i, reference)


def _weekday(words: Sequence[str], i: int, reference: date) -> tuple[date, int, float] | None:
    j = i
    lead = words[j] if j < len(words) else ""
    if lead in {"el", "este"} or lead in _NEXT_MARKERS:
        j += 1
    if j < len(words) and words[j] in _NEXT_MARKERS and lead == "el":
        j += 1
    if j >= len(words) or words[j] not in WEEKDAYS or j == i:
        return None
    target, k = WEEKDAYS[words[j]], j + 1
    after = list(words[k : k + 2])
    ahead = (target - reference.weekday()) % 7
    if after[:1] == ["pasado"] or words[i + 1 : i + 2] == ["pasado"]:
        return reference - timedelta(days=(reference.weekday() - target) % 7 or 7), k + 1, 0.8
    if after == ["que", "viene"]:
        k += 2
    elif after[:1] and after[0] in _NEXT_MARKERS:
        k += 1
    if lead == "este" and ahead == 0:
        return reference, k, 0.75
    return reference + timedelta(days=ahead or 7), k, 0.8


def _offset(words: Sequence[str], i: int, reference: date) -> tuple[date, int, float] | None:
    lead = words[i]
    j = i + 2 if lead == "dentro" and words[i + 1 : i + 2] == ["de"] else i + 1
    if lead not in {"dentro", "en", "hace"} or (lead == "dentro" and j == i + 1):
        return None
    count = _small_number(words, j, 1, 400)
    if count is None or count[1] >= len(words):
        return None
    unit = words[count[1]]
    days = {"dia": 1, "dias": 1, "semana": 7, "semanas": 7}.get(unit)
    if days is None:
        return None
    delta = timedelta(days=count[0] * days)
    return (reference - delta if lead == "hace" else reference + delta), count[1] + 1, 0.75


def _small_number(words: Sequence[str], i: int, low: int, high: int) -> tuple[int, int] | None:
    if i >= len(words):
        return None
    if is_digits(words[i]):
        digits_value = _digits_value(words[i])
        if digits_value is None:
            return None
        value, j = digits_value, i + 1
    elif words[i] == "primero":
        value, j = 1, i + 1
    else:
        parsed = parse_cardinal(words, i, article_ok=True)
        if parsed is None:
            return None
        value, j = parsed
    return (value, j) if low <= value <= high else None


def _day_month(words: Sequence[str], i: int, reference: date) -> tuple[date, int, float] | None:
    if i >= 2 and words[i - 1] == "y" and words[i - 2] in _TENS:
        return None  # the unit of "treinta y uno", whose own reading already failed
    day = _small_number(words, i, 1, 31)
    if day is None:
        return None
    j = day[1]
    if j < len(words) and words[j] == "de":
        j += 1
    if j >= len(words) or words[j] not in MONTHS:
        if i >= 1 and words[i - 1] == "dia":
            return _safe_date(reference.year, reference.month, day[0], day[1], 0.7)
        return None
    month, j = MONTHS[words[j]], j + 1
    year = reference.year
    if j + 1 < len(words) and words[j] in {"de", "del"}:
        said = _small_number(words, j + 1, 1900, 2100)
        if said:
            year, j = said
    return _safe_date(year, month, day[0], j, 0.9)


def _safe_date(year: int, month: int, day: int, j: int, confidence: float) -> tuple[date, int, float] | None:
    try:
        return date(year, month, day), j, confidence
    except ValueError:
        return None
