"""Entities said the way callers say them in Spain and Latin America: phones in digit-word groups
joined by commas, fillers or "y", pesos and dollars, DNI/NIE letters after a comma or "la letra es";
and ordinary digit-word sentences (counts, times, ages) that hold none of them."""

from __future__ import annotations

from datetime import date

import pytest

from callpipe.analysis.entities import extract_entities
from callpipe.schema import Entities

REF = date(2025, 3, 12)


def found(text: str) -> Entities:
    return extract_entities(text, REF, names=False)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("seis uno dos, tres cuatro cinco y seis siete ocho", "+34612345678"),
        ("eh, seis uno dos, eh, tres cuatro cinco, seis siete ocho", "+34612345678"),
        ("Mi número es seis, uno, dos; tres, cuatro, cinco; seis, siete, ocho.", "+34612345678"),
        ("seis uno dos... tres cuatro cinco... seis siete ocho", "+34612345678"),
        # A short count set off by a comma before or after the number is left out of it.
        ("mi telefono es seis uno dos, tres cuatro cinco, seis siete ocho, dos veces", "+34612345678"),
        ("son dos, seis cinco cuatro, nueve ocho siete, tres dos uno", "+34654987321"),
        # Ten digits: Latin American words, a named country, or a phone word shortly before.
        ("anote mi celular, tres cero cero, cuatro cinco seis, setenta y ocho, doce", "+573004567812"),
        ("mi numero es 55 1234 5678", "+525512345678"),
        ("marcame al cincuenta y cinco, doce, treinta y cuatro, cincuenta y seis, setenta y ocho",
         "+525512345678"),
        ("(55) 1234-5678 es mi celular", "+525512345678"),
        ("el numero es tres uno cero, cuatro cinco seis, siete ocho nueve cero, en bogota", "+573104567890"),
        ("el celular es mas cincuenta y siete, trescientos diez, cuatrocientos cincuenta y seis, setenta "
         "y ocho, noventa", "+573104567890"),
    ],
)
def test_phones_said_in_groups(text: str, value: str) -> None:
    assert [e.value for e in found(text).phone_numbers] == [value]


def test_ten_digits_said_in_one_breath_stay_no_phone_in_spain() -> None:
    assert found("mi telefono es seis uno dos tres cuatro cinco seis siete ocho dos").phone_numbers == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("me cobraron 200 mil pesos", "200000.00 MXN"),
        ("son 2 millones de pesos", "2000000.00 MXN"),
        ("la cuota son 120.000 pesos, aca en colombia", "120000.00 COP"),
        ("mil doscientos pesos, en buenos aires", "1200.00 ARS"),
        ("el saldo es de $1,500.50 pesos", "1500.50 MXN"),
        ("fueron $500 en colombia", "500.00 COP"),
        ("me cobraron $20 en madrid", "20.00 USD"),
        ("me cobraron US$ 150 en mexico", "150.00 USD"),
        ("USD 200 de cargo", "200.00 USD"),
        ("la factura es de COP 89.900", "89900.00 COP"),
        ("son cincuenta soles", "50.00 PEN"),
        ("mil quinientos pesitos", "1500.00 MXN"),
        ("me cobraron medio millon de pesos", "500000.00 MXN"),
        ("me cobraron un millon y medio de pesos", "1500000.00 MXN"),
        ("me cobraron cincuenta pavos", "50.00 EUR"),
    ],
)
def test_amounts_in_pesos_and_dollars(text: str, value: str) -> None:
    assert [a.value for a in found(text).amounts] == [value]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("el nie es equis, uno dos tres cuatro cinco seis siete, ele", "X1234567L"),
        ("el nie, i griega, dos tres cuatro, cinco seis siete ocho, zeta", "Y2345678Z"),
        ("dni cuatro cinco ocho siete uno dos tres cero, la letra es la efe", "45871230F"),
        ("dni cuatro cinco ocho siete uno dos tres cero guion efe", "45871230F"),
        ("nie equis guion uno dos tres cuatro cinco seis siete guion ele", "X1234567L"),
        ("dni dos nueve tres ocho cuatro siete cinco seis doble ve", "29384756W"),
        ("el nie es la equis, noventa, ochenta y uno, setenta y dos, seis, y la letra ese", "X9081726S"),
    ],
)
def test_ids_said_as_digit_words_and_a_letter(text: str, value: str) -> None:
    assert [e.value for e in found(text).national_ids] == [value]


def test_b_and_v_told_apart_the_latin_american_way() -> None:
    # 29384756 takes W; 48800215 takes B; a wrong letter is no id.
    assert [e.value for e in found("dni cuatro ocho ocho cero cero dos uno cinco be larga").national_ids] == [
        "48800215B"]
    assert found("dni cuatro ocho ocho cero cero dos uno cinco ve corta").national_ids == []


@pytest.mark.parametrize(
    "text",
    [
        "he llamado tres, cuatro, cinco veces, seis, siete, ocho y nueve ya",
        "me llamaron a las nueve, a las diez, a las once y a las doce, y a la una y media",
        "tengo sesenta y cinco años, mi mujer sesenta y dos y mi hijo treinta y ocho",
        "pulse el uno, el dos, el tres, el nueve, el cero y luego almohadilla",
        "uno, dos, tres, cuatro, cinco, seis, siete, ocho, nueve, diez, ya esta contado",
        "mi hija tiene nueve, mi hijo siete y el pequeño dos, y los gemelos cuatro",
        "el pedido seis uno dos, tres cuatro cinco, seis siete ocho",
        "tengo tres lineas, una de seis gigas, otra de ocho y otra de doce",
    ],
)
def test_ordinary_digit_words_are_no_entity(text: str) -> None:
    got = found(text)
    assert got.phone_numbers == [] and got.national_ids == [] and got.amounts == []
    assert got.account_numbers == []
