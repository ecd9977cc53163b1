"""Word error rate with Spanish text normalisation.

Both texts go through the same normaliser before alignment: lower case, punctuation removed,
accents stripped (``ñ`` kept), numbers written with digits spelled out in Spanish words
("1.500 €" -> "mil quinientos euros"), and forms that only differ by gender or apocope
("un"/"una"/"uno", "doscientas"/"doscientos") folded together, so that a transcript is not
charged for writing "21" where the reference says "veintiún".
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# fmt: off
_UNITS = (
    "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez",
    "once", "doce", "trece", "catorce", "quince", "dieciseis", "diecisiete", "dieciocho",
    "diecinueve", "veinte", "veintiuno", "veintidos", "veintitres", "veinticuatro", "veinticinco",
    "veintiseis", "veintisiete", "veintiocho", "veintinueve",
)
# fmt: on
_TENS = {3: "treinta", 4: "cuarenta", 5: "cincuenta", 6: "sesenta", 7: "setenta", 8: "ochenta", 9: "noventa"}
_HUNDREDS = {
    1: "ciento",
    2: "doscientos",
    3: "trescientos",
    4: "cuatrocientos",
    5: "quinientos",
    6: "seiscientos",
    7: "setecientos",
    8: "ochocientos",
    9: "novecientos",
}
_SYMBOLS = {"%": " por ciento ", "€": " euros ", "$": " dolares ", "&": " y ", "+": " mas "}
_FOLD = {"un": "uno", "una": "uno", "veintiun": "veintiuno", "veintiuna": "veintiuno"}
# 1.500 / 1.500.000 (thousands dots), 3,75 or 3.5 (decimals), plain digit runs.
_NUMBER = re.compile(r"\d{1,3}(?:\.\d{3})+(?![\d.,]\d)|\d+(?:[.,]\d+)?")
_WORD = re.compile(r"[a-zñ0-9]+(?:'[a-zñ]+)?")
_LONG_DIGITS = 7  # digit runs this long (phones, accounts) are read digit by digit


def number_to_words(number: int) -> str:
    """Spell a non-negative integer in Spanish (masculine, ``uno`` form), e.g. 1500 -> 'mil quinientos'."""
    if number < 0:
        raise ValueError("number_to_words takes a non-negative integer")
    if number < 30:
        return _UNITS[number]
    if number < 100:
        tens, unit = divmod(number, 10)
        return _TENS[tens] + (f" y {_UNITS[unit]}" if unit else "")
    if number == 100:
        return "cien"
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return _HUNDREDS[hundreds] + (f" {number_to_words(rest)}" if rest else "")
    if number < 1_000_000:
        thousands, rest = divmod(number, 1000)
        head = "mil" if thousands == 1 else f"{number_to_words(thousands)} mil"
        return head + (f" {number_to_words(rest)}" if rest else "")
    millions, rest = divmod(number, 1_000_000)
    head = "uno millon" if millions == 1 else f"{number_to_words(millions)} millones"
    return head + (f" {number_to_words(rest)}" if rest else "")


def _spell_number(match: re.Match[str]) -> str:
    token = match.group(0)
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", token):
        return f" {number_to_words(int(token.replace('.', '')))} "
    if "," in token or "." in token:
        whole, fraction = re.split(r"[.,]", token)
        return f" {_spell_digits_or_number(whole)} coma {_spell_digits_or_number(fraction)} "
    return f" {_spell_digits_or_number(token)} "


def _spell_digits_or_number(digits: str) -> str:
    if len(digits) >= _LONG_DIGITS or (len(digits) > 1 and digits.startswith("0")):
        return " ".join(_UNITS[int(d)] for d in digits)
    return number_to_words(int(digits))


def _strip_accents(text: str) -> str:
    # Keep ñ: it distinguishes words (ano / año); drop every other combining mark.
    text = text.replace("ñ", "\0")
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped).replace("\0", "ñ")


def normalize_spanish(text: str, *, strip_accents: bool = True) -> list[str]:
    """Return the normalised word list of ``text`` used for WER."""
    text = unicodedata.normalize("NFC", text).lower()
    for symbol, spoken in _SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = _NUMBER.sub(_spell_number, text)
    if strip_accents:
        text = _strip_accents(text)
    words = _WORD.findall(text) if strip_accents else re.findall(r"[^\W_]+(?:'[^\W_]+)?", text)
    folded = []
    for word in words:
        word = _FOLD.get(word, word)
        if word.endswith("ientas"):
            word = word[: -len("as")] + "os"
        folded.append(word)
    return folded


@dataclass(frozen=True)
class WerResult:
    """Alignment counts of one hypothesis against one reference."""

    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors / reference words; 0.0 for two empty texts, 1.0 for words against an empty reference."""
        if self.reference_words == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.reference_words


def word_alignment(reference: list[str], hypothesis: list[str]) -> list[tuple[str, int | None, int | None]]:
    """Levenshtein alignment of two word lists (substitution, deletion, insertion all cost 1).

    In order, ``(op, reference index, hypothesis index)`` per step: ``op`` is ``=`` (same word),
    ``S`` (substitution), ``D`` (deletion, no hypothesis index) or ``I`` (insertion, no
    reference index).
    """
    rows, cols = len(reference), len(hypothesis)
    # cost[i][j] for reference[:i] vs hypothesis[:j]; kept whole for the backtrace.
    cost = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows + 1):
        cost[i][0] = i
    for j in range(cols + 1):
        cost[0][j] = j
    for i in range(1, rows + 1):
        ref_word, row, prev = reference[i - 1], cost[i], cost[i - 1]
        for j in range(1, cols + 1):
            diagonal = prev[j - 1] + (ref_word != hypothesis[j - 1])
            row[j] = min(diagonal, prev[j] + 1, row[j - 1] + 1)
    ops: list[tuple[str, int | None, int | None]] = []
    i, j = rows, cols
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            ops.append(("=" if reference[i - 1] == hypothesis[j - 1] else "S", i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            ops.append(("D", i - 1, None))
            i -= 1
        else:
            ops.append(("I", None, j - 1))
            j -= 1
    ops.reverse()
    return ops


def align_words(reference: list[str], hypothesis: list[str]) -> WerResult:
    """Substitutions, deletions and insertions of the :func:`word_alignment` of two word lists."""
    ops = Counter(op for op, _, _ in word_alignment(reference, hypothesis))
    return WerResult(
        substitutions=ops["S"], deletions=ops["D"], insertions=ops["I"], reference_words=len(reference)
    )


def wer_details(reference: str, hypothesis: str, *, normalize: bool = True) -> WerResult:
    """Align ``hypothesis`` against ``reference`` (normalised with :func:`normalize_spanish`)."""
    if normalize:
        return align_words(normalize_spanish(reference), normalize_spanish(hypothesis))
    return align_words(reference.split(), hypothesis.split())


def word_error_rate(reference: str, hypothesis: str, *, normalize: bool = True) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (may exceed 1.0 with insertions)."""
    return wer_details(reference, hypothesis, normalize=normalize).wer


def corpus_wer(pairs: Iterable[tuple[str, str]], *, normalize: bool = True) -> float:
    """Total errors over total reference words for (reference, hypothesis) pairs."""
    errors = words = 0
    for reference, hypothesis in pairs:
        result = wer_details(reference, hypothesis, normalize=normalize)
        errors += result.errors
        words += result.reference_words
    if words == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / words


def judge_fixes(
    reference: str, text: str, fixes: Iterable[tuple[int, int, str]], *, fold: bool = True
) -> list[bool]:
    """Whether each fix of ``text`` is right against ``reference``.

    A fix is ``(position, count, replacement)``: whitespace tokens ``position`` to
    ``position + count`` of ``text`` replaced by ``replacement``. It is right when the normalised
    replacement equals the reference words aligned (:func:`word_alignment`) to those tokens, so that
    the fix makes that stretch match the reference. ``fold`` also folds ñ to n (for references
    written without it).
    """

    def words(piece: str) -> list[str]:
        out = normalize_spanish(piece)
        return [w.replace("ñ", "n") for w in out] if fold else out

    hypothesis: list[str] = []
    owner: list[int] = []
    for index, token in enumerate(text.split()):
        for word in words(token):
            hypothesis.append(word)
            owner.append(index)
    ref = words(reference)
    aligned: dict[int, list[str]] = {}
    for _op, r, h in word_alignment(ref, hypothesis):
        if h is not None and r is not None:
            aligned.setdefault(owner[h], []).append(ref[r])
    verdicts = []
    for position, count, replacement in fixes:
        truth = [w for k in range(position, position + max(count, 1)) for w in aligned.get(k, [])]
        verdicts.append(bool(truth) and truth == words(replacement))
    return verdicts
