"""Domain lexicon and phrases (callpipe.correction.domain_lexicon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callpipe.correction.domain_lexicon import (
    LEXICON_ENV,
    PHRASES_ENV,
    DomainLexicon,
    LexiconFileError,
    parse_lexicon,
    parse_phrases,
)


def test_shipped_lexicon_covers_the_domains() -> None:
    lexicon = DomainLexicon.load_default()
    assert len(lexicon) >= 400  # a few hundred lemmas plus inflections
    for word in ("saldo", "domiciliación", "portabilidad", "kilovatios", "bizum", "comisiones", "contador"):
        assert word in lexicon, word
    assert "Domiciliacion" in lexicon  # case and accents ignored
    term = lexicon.get("iban")
    assert term is not None and term.form == "IBAN" and term.domain == "banking"
    assert lexicon.get("comisiones").lemma == "comisión"
    assert "casa" not in lexicon
    assert len(lexicon.phrases) >= 150
    assert any(p.text == "el recibo de la luz" for p in lexicon.phrases)


def test_parse_errors_name_file_and_line() -> None:
    with pytest.raises(LexiconFileError, match=r"x\.txt line 2: malformed section header"):
        parse_lexicon("saldo\n[banking\n", "x.txt")
    with pytest.raises(LexiconFileError, match=r"x\.txt line 1: '123' is not a word"):
        parse_lexicon("123\n", "x.txt")
    with pytest.raises(LexiconFileError, match=r"p\.txt line 3: a phrase has 2 to 8 words"):
        parse_phrases("# comment\nbloquear la tarjeta\nsaldo\n", "p.txt")


def test_environment_files_extend_the_shipped_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terms = tmp_path / "terms.txt"
    terms.write_text("[products]\nSuperTarifa supertarifas\n", encoding="utf-8")
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("contratar la supertarifa familiar\n", encoding="utf-8")
    monkeypatch.setenv(LEXICON_ENV, str(terms))
    monkeypatch.setenv(PHRASES_ENV, str(phrases))
    lexicon = DomainLexicon.load_default()
    assert lexicon.get("supertarifa").domain == "products"
    assert "saldo" in lexicon
    assert any(p.text == "contratar la supertarifa familiar" for p in lexicon.phrases)
    monkeypatch.setenv(LEXICON_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(LexiconFileError, match=r"missing\.txt: cannot read"):
        DomainLexicon.load_default()
