"""Spoken-form normalisation: numbers, digit sequences, letters and date phrases in Spanish."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callpipe.analysis.spoken import (
    normalize_word,
    parse_cardinal,
    parse_letter,
    parse_spoken_date,
    spoken_digits,
    tokenize,
    words_to_number,
)


# An independent writer of Spanish cardinals, to check the reader against.
def _split(text: str) -> list[str]:
    return text.split()


_UNITS = _split("cero uno dos tres cuatro cinco seis siete ocho nueve")
_TEENS = _split(
    "diez once doce trece catorce quince dieciséis diecisiete dieciocho diecinueve veinte veintiuno "
    "veintidós veintitrés veinticuatro veinticinco veintiséis veintisiete veintiocho veintinueve"
)
_TENS = _split("_ _ _ treinta cuarenta cincuenta sesenta setenta ochenta noventa")
_HUNDREDS = _split(
    "_ ciento doscientos trescientos cuatrocientos quinientos seiscientos setecientos ochocientos novecientos"
)


def _say_below_1000(n: int) -> list[str]:
    if n == 100:
        return ["cien"]
    out = [_HUNDREDS[n // 100]] if n >= 100 else []
    n %= 100
    if 0 < n < 10:
        out.append(_UNITS[n])
    elif 10 <= n < 30:
        out.append(_TEENS[n - 10])
    elif n >= 30:
        out += [_TENS[n // 10]] + (["y", _UNITS[n % 10]] if n % 10 else [])
    return out


def say(n: int) -> str:
    if n == 0:
        return "cero"
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    words: list[str] = []
    if millions:
        words += ["un", "millón"] if millions == 1 else [*_say_below_1000(millions), "millones"]
    if thousands:
        words += ["mil"] if thousands == 1 else [*_say_below_1000(thousands), "mil"]
    return " ".join(words + _say_below_1000(units))


def _no_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dos mil quinientos treinta", 2530),
        ("mil doscientos", 1200),
        ("cien", 100),
        ("ciento veinte", 120),
        ("un millón", 1_000_000),
        ("dos millones trescientos mil", 2_300_000),
        ("veintitres", 23),  # no accent, as ASR often writes it
        ("dieciseis", 16),
        ("diez y seis", 16),
        ("veinte y uno", 21),
        ("doscientas", 200),
        ("una", 1),
        ("treinta y una", 31),
        ("veintiún", 21),
        ("Novecientos Noventa Y Nueve", 999),
        ("cero", 0),
        ("cuarenta y cinco con cincuenta", 45.5),
        ("cinco con cinco", 5.05),
        ("diecinueve coma noventa y nueve", 19.99),
        ("uno coma cero cinco", 1.05),
        ("tres punto cinco", 3.5),
        ("45,50", 45.5),
    ],
)
def test_words_to_number(text: str, expected: float) -> None:
    assert words_to_number(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "hola", "seis uno dos", "cuarenta y", "mil mil", "coma cinco", "euros"])
def test_words_to_number_rejects_what_is_not_one_number(text: str) -> None:
    assert words_to_number(text) is None


@given(st.integers(min_value=0, max_value=999_999_999), st.booleans())
def test_words_to_number_reads_every_written_cardinal(n: int, strip_accents: bool) -> None:
    text = say(n)
    assert words_to_number(_no_accents(text) if strip_accents else text) == n


def test_parse_cardinal_stops_where_a_new_group_begins() -> None:
    words = ["seiscientos", "doce", "trescientos", "cuarenta", "y", "cinco"]
    assert parse_cardinal(words, 0) == (612, 2)
    assert parse_cardinal(words, 2) == (345, 6)
    # Groups said without pauses: "dos mil | cuatro mil ciento ochenta", not 2004 then 1180.
    assert parse_cardinal(["dos", "mil", "cuatro", "mil", "ciento", "ochenta"], 0) == (2000, 2)


def test_parse_cardinal_reads_articles_only_when_asked() -> None:
    assert parse_cardinal(["un", "euro"], 0) is None
    assert parse_cardinal(["un", "euro"], 0, article_ok=True) == (1, 1)
    assert parse_cardinal(["un", "millon"], 0) == (1_000_000, 2)


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("seis uno dos tres cuatro cinco seis siete ocho", "612345678"),
        ("seiscientos doce trescientos cuarenta y cinco seiscientos setenta y ocho", "612345678"),
        ("seiscientos doce treinta y cuatro cincuenta y seis setenta y ocho", "612345678"),
        ("cero cero cuarenta y nueve", "0049"),
        ("doble cero siete", "007"),
        ("612 trescientos cuarenta y cinco 678", "612345678"),
        ("dos mil cien cero cuatro uno ocho", "21000418"),
    ],
)
def test_spoken_digits(text: str, digits: str) -> None:
    assert spoken_digits(text) == digits


def test_spoken_digits_rejects_words() -> None:
    assert spoken_digits("seis uno gato") is None
    assert spoken_digits("") is None


@pytest.mark.parametrize(
    ("words", "letter"),
    [(["zeta"], "Z"), (["equis"], "X"), (["i", "griega"], "Y"), (["uve", "doble"], "W"), (["x"], "X"),
     (["ele"], "L"), (["jota"], "J"), (["erre"], "R")],
)
def test_parse_letter(words: list[str], letter: str) -> None:
    assert parse_letter(words, 0) == (letter, len(words))


def test_parse_letter_rejects_words() -> None:
    assert parse_letter(["casa"], 0) is None
    assert parse_letter([], 0) is None


def test_tokenize_keeps_offsets_and_splits_letters_from_digits() -> None:
    text = "Mi IBAN: ES91 2100, DNI 12345678Z"
    tokens = tokenize(text)
    assert [t.text for t in tokens] == ["Mi", "IBAN", ":", "ES", "91", "2100", ",", "DNI", "12345678", "Z"]
    assert all(text[t.start : t.end] == t.text for t in tokens)
    assert normalize_word("Millón") == "millon"
    assert normalize_word("mañana") == "manana"


REF = date(2025, 3, 12)  # a Wednesday


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("el quince de marzo", "2025-03-15"),
        ("quince de marzo de dos mil veintiseis", "2026-03-15"),
        ("3 de febrero de 2024", "2024-02-03"),
        ("primero de mayo", "2025-05-01"),
        ("treinta y uno de diciembre", "2025-12-31"),
        ("hoy", "2025-03-12"),
        ("mañana", "2025-03-13"),
        ("manana", "2025-03-13"),
        ("pasado mañana", "2025-03-14"),
        ("ayer", "2025-03-11"),
        ("anteayer", "2025-03-10"),
        ("antes de ayer", "2025-03-10"),
        ("el próximo lunes", "2025-03-17"),
        ("el lunes que viene", "2025-03-17"),
        ("el viernes", "2025-03-14"),
        ("el miercoles", "2025-03-19"),
        ("este miercoles", "2025-03-12"),
        ("el lunes pasado", "2025-03-10"),
        ("dentro de tres dias", "2025-03-15"),
        ("dentro de una semana", "2025-03-19"),
        ("hace dos semanas", "2025-02-26"),
    ],
)
def test_parse_spoken_date(phrase: str, expected: str) -> None:
    words = [t.norm for t in tokenize(phrase)]
    start = 1 if words[0] == "el" and words[1] not in {"proximo", "lunes", "viernes", "miercoles"} else 0
    found = parse_spoken_date(words, start, REF)
    assert found is not None
    assert found[0].isoformat() == expected
    assert found[1] == len(words)


@pytest.mark.parametrize(
    "phrase",
    ["por la mañana", "esta mañana", "treinta de febrero", "los lunes", "hoy en dia", "el 3", "quince"],
)
def test_parse_spoken_date_rejects(phrase: str) -> None:
    words = [t.norm for t in tokenize(phrase)]
    assert all(parse_spoken_date(words, i, REF) is None for i in range(len(words)))
