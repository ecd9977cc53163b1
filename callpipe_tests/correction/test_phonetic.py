"""Spanish phonetic key and distances (callpipe.correction.phonetic)."""

from __future__ import annotations

import pytest

from callpipe.correction.phonetic import phonetic_key, sound_similarity, strip_accents, word_distance


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("vizum", "bizum"),  # b/v
        ("cerveza", "serbesa"),  # seseo: c before e/i, z, s
        ("domisiliasión", "domiciliación"),
        ("cavallo", "cabayo"),  # ll/y (yeísmo)
        ("hipoteca", "ipoteca"),  # silent h
        ("gente", "jente"),  # g before e/i and j
        ("kilovatio", "quilobatio"),  # qu/k and b/v
        ("carro", "caro"),  # rr/r
        ("acción", "accion"),  # accents removed
        ("whatsapp", "uatsap"),  # w -> U, doubled letters collapse
    ],
)
def test_words_that_sound_alike_share_a_key(a: str, b: str) -> None:
    assert phonetic_key(a) == phonetic_key(b)


@pytest.mark.parametrize(
    ("word", "key"),
    [
        ("extracto", "EKSTRAKTO"),  # x -> KS, c before a consonant -> K
        ("acción", "AKSION"),  # cc: K then S
        ("pañuelo", "PANYUELO"),  # ñ -> NY
        ("chaqueta", "CAKETA"),  # ch -> C, qu -> K
        ("cigüeña", "SIGUENYA"),  # gü keeps the u
        ("hoy", "OI"),  # y not before a vowel is a vowel
        ("leer", "LER"),  # doubled symbols collapse
        ("IBAN", "IBAN"),
        ("", ""),
    ],
)
def test_key_rules(word: str, key: str) -> None:
    assert phonetic_key(word) == key


def test_different_sounds_keep_different_keys() -> None:
    assert phonetic_key("casa") == phonetic_key("caza")  # seseo merges s and z (documented choice)
    assert phonetic_key("gerra") != phonetic_key("guerra")  # ge is /xe/, gue is /ge/
    assert phonetic_key("pero") == phonetic_key("perro")  # documented merge of r/rr
    assert phonetic_key("gato") != phonetic_key("jato")  # g before a stays G
    assert phonetic_key("año") != phonetic_key("ano")  # ñ is not n


def test_strip_accents_keeps_enye() -> None:
    assert strip_accents("Comisión Ñandú Güera") == "comision ñandu güera"


def test_word_distance_reports_jellyfish_numbers() -> None:
    d = word_distance("homicilación", "domiciliación")
    assert d.key_damerau == 2
    assert 0.85 < d.key_jaro_winkler < 1.0
    assert d.spelling_damerau == 2
    evidence = d.as_evidence()
    assert evidence["key_original"] == "OMISILASION"
    assert evidence["key_candidate"] == "DOMISILIASION"
    assert 0.8 < evidence["similarity"] < 0.95
    same = word_distance("recivo", "recibo")
    assert same.key_damerau == 0 and same.key_jaro_winkler == 1.0
    assert same.similarity > d.similarity


def test_sound_similarity_orders_candidates() -> None:
    assert sound_similarity("lus", "luz") == 1.0
    assert sound_similarity("salvo", "saldo") > sound_similarity("salvo", "cuenta")
    assert sound_similarity("", "luz") == 0.0
