from __future__ import annotations

import pytest

from callpipe.stt.wer import corpus_wer, normalize_spanish, number_to_words, wer_details, word_error_rate


def _norm(text: str) -> str:
    return " ".join(normalize_spanish(text))


def test_normalisation_folds_case_punctuation_accents_and_numbers():
    assert _norm("¡Buenos DÍAS! ¿En qué puedo ayudarle?") == "buenos dias en que puedo ayudarle"
    assert _norm("Son 1.500 € y el 21%") == "son mil quinientos euros y el veintiuno por ciento"
    assert _norm("3,75") == "tres coma setenta y cinco"
    assert _norm("doscientas") == _norm("200")
    assert _norm("veintiún euros") == _norm("21 euros")
    assert _norm("El año del señor Núñez") == "el año del señor nuñez"
    assert _norm("612345678") == "seis uno dos tres cuatro cinco seis siete ocho"


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "cero"),
        (16, "dieciseis"),
        (21, "veintiuno"),
        (45, "cuarenta y cinco"),
        (100, "cien"),
        (101, "ciento uno"),
        (999, "novecientos noventa y nueve"),
        (1000, "mil"),
        (2024, "dos mil veinticuatro"),
        (1_000_000, "uno millon"),
        (3_200_000, "tres millones doscientos mil"),
    ],
)
def test_number_to_words(number, words):
    assert number_to_words(number) == words


def test_error_counts():
    result = wer_details("quiero consultar el saldo de mi cuenta", "quiero consultar saldo de mi cuenta ya")
    assert (result.substitutions, result.deletions, result.insertions) == (0, 1, 1)
    assert result.wer == pytest.approx(2 / 7)
    assert word_error_rate("el saldo de mi cuenta", "el salvo de mi cuenta") == pytest.approx(0.2)
    assert word_error_rate("Buenos días.", "buenos dias") == 0.0
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "hola") == 1.0
    assert word_error_rate("a b", "c d e f") == 2.0


def test_corpus_wer_weights_by_reference_length():
    pairs = [("uno dos tres cuatro", "uno dos tres cuatro"), ("hola", "adios")]
    assert corpus_wer(pairs) == pytest.approx(1 / 5)


def test_judge_fixes_right_only_when_the_fix_matches_the_reference():
    from callpipe.stt.wer import judge_fixes

    reference = "Presione la tecla numeral para consultar su saldo"
    text = "Preción la tecla numeral para consultar su salmo"
    verdicts = judge_fixes(reference, text, [(0, 1, "Precinto"), (7, 1, "saldo"), (0, 1, "Presione")])
    assert verdicts == [False, True, True]
