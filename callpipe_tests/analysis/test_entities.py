"""Entity extraction on Spanish transcript-like text: written and spoken forms, and no false positives."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.es import ccc, dni, nie

from callpipe.analysis.entities import extract_entities, spacy_model
from callpipe.schema import Entities

REF = date(2025, 3, 12)  # a Wednesday
DIGIT_WORDS = ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve")


def say_digits(digits: str) -> str:
    return " ".join(DIGIT_WORDS[int(c)] for c in digits)


def values(entities: Entities, field: str) -> list[str]:
    return [e.value for e in getattr(entities, field)]


def find(text: str, field: str) -> list[str]:
    return values(extract_entities(text, REF, names=False), field)


def check_offsets(text: str, entities: Entities) -> None:
    for field in Entities.model_fields:
        for entity in getattr(entities, field):
            assert entity.start is not None and entity.end is not None
            if entity.kind != "card":
                assert text[entity.start : entity.end] == entity.text


# --- accounts ---------------------------------------------------------------------------------

IBAN = "ES9121000418450200051332"
CCC = "21000418450200051332"


@pytest.mark.parametrize(
    "text",
    [
        "mi iban es ES91 2100 0418 4502 0005 1332 para domiciliar",
        "el iban es es9121000418450200051332 vale",
        f"el iban es e ese {say_digits(IBAN[2:])}",
        "es noventa y uno dos mil cien cero cuatro uno ocho cuatro cinco cero dos cero cero cero cinco "
        "uno tres tres dos",
    ],
)
def test_spanish_iban_written_and_spoken(text: str) -> None:
    found = extract_entities(text, REF, names=False)
    assert [(e.kind, e.value, e.valid) for e in found.account_numbers] == [("iban", IBAN, True)]
    check_offsets(text, found)


def test_foreign_ibans_and_ccc() -> None:
    assert find("my account is gb29 nwbk 6016 1331 9268 19", "account_numbers") == ["GB29NWBK60161331926819"]
    assert find("cuenta alemana DE89 3704 0044 0532 0130 00", "account_numbers") == ["DE89370400440532013000"]
    assert find(f"la cuenta es {CCC[:4]} {CCC[4:8]} {CCC[8:10]} {CCC[10:]}", "account_numbers") == [CCC]
    assert find(f"la cuenta {say_digits(CCC)}", "account_numbers") == [CCC]


def test_wrong_check_digits_give_no_account() -> None:
    assert find("mi iban es ES92 2100 0418 4502 0005 1332", "account_numbers") == []
    assert find("la cuenta es 21000418460200051332", "account_numbers") == []
    assert ccc.is_valid(CCC) and not ccc.is_valid("21000418460200051332")


# --- cards --------------------------------------------------------------------------------------


def _card(prefix: str, length: int, seed: int) -> str:
    rng = random.Random(seed)
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


@pytest.mark.parametrize(
    ("prefix", "length", "render"),
    [("4", 16, "grouped"), ("5", 16, "spoken"), ("37", 15, "compact"), ("4", 13, "compact")],
)
def test_card_is_masked_and_never_stored(prefix: str, length: int, render: str) -> None:
    number = _card(prefix, length, seed=length)
    said = {"grouped": " ".join(number[i : i + 4] for i in range(0, length, 4)),
            "spoken": say_digits(number), "compact": number}[render]
    found = extract_entities(f"le doy la tarjeta {said} y caduca en mayo", REF)
    assert [(e.kind, e.value, e.text) for e in found.account_numbers] == [
        ("card", f"**** **** **** {number[-4:]}", f"**** **** **** {number[-4:]}")]
    dumped = found.model_dump_json()
    assert number not in dumped
    assert number[:8] not in dumped and number[4:12] not in dumped


def test_luhn_invalid_or_unknown_prefix_is_no_card() -> None:
    good = _card("4", 16, seed=1)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert find(f"tarjeta {bad}", "account_numbers") == []
    # Luhn-valid, but no card network starts with 1.
    assert luhn.is_valid("1234567890123452")
    assert find("el codigo de cliente es 1234567890123452", "account_numbers") == []


# --- national ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("mi dni es 12345678z", "dni", "12345678Z"),
        ("dni 12.345.678-Z", "dni", "12345678Z"),
        ("el dni uno dos tres cuatro cinco seis siete ocho zeta", "dni", "12345678Z"),
        ("doce tres cuatro cinco seis siete ocho zeta", "dni", "12345678Z"),
        ("dni uno dos tres cuatro cinco seis siete ocho con la letra zeta", "dni", "12345678Z"),
        ("nie x1234567l", "nie", "X1234567L"),
        ("mi nie es equis uno dos tres cuatro cinco seis siete ele", "nie", "X1234567L"),
        (f"mi nie es i griega {say_digits('7654321')} {nie.calc_check_digit('Y7654321').lower()}", "nie",
         "Y7654321" + nie.calc_check_digit("Y7654321")),
    ],
)
def test_national_ids(text: str, kind: str, value: str) -> None:
    found = extract_entities(text, REF, names=False)
    assert [(e.kind, e.value, e.valid) for e in found.national_ids] == [(kind, value, True)]
    check_offsets(text, found)


def test_letters_that_are_also_words() -> None:
    number = next(str(n) for n in range(10_000_000, 10_000_100) if dni.calc_check_digit(str(n)) == "Y")
    assert find(f"dni {number}-Y", "national_ids") == [number + "Y"]
    assert find(f"mi dni es {say_digits(number)} y gracias", "national_ids") == [number + "Y"]
    # Without an id word nearby, a trailing "y" is the conjunction, not a letter.
    assert find(f"apunte {say_digits(number)} y gracias", "national_ids") == []


def test_wrong_letter_or_lone_digits_give_no_id() -> None:
    assert dni.calc_check_digit("12345678") == "Z"
    assert find("mi dni es 12345678A", "national_ids") == []
    assert find("dni uno dos tres cuatro cinco seis siete ocho te", "national_ids") == []
    assert find("el contrato 12345678 y la fecha de alta", "national_ids") == []
    assert find("nie X1234567T", "national_ids") == []


# --- emails ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("mi correo es juan punto perez arroba gmail punto com", "juan.perez@gmail.com"),
        ("maria guion bajo lopez arroba hotmail punto es", "maria_lopez@hotmail.es"),
        ("lucia barra baja martin arroba outlook punto com es el correo", "lucia_martin@outlook.com"),
        ("pepe guion garcia setenta y ocho arroba yahoo punto es", "pepe-garcia78@yahoo.es"),
        ("su correo es marta punto ruiz arroba gmail com", "marta.ruiz@gmail.com"),
        ("juan.perez arroba gmail.com", "juan.perez@gmail.com"),
        ("escribame a Soporte@Empresa-Ejemplo.COM cuando pueda", "soporte@empresa-ejemplo.com"),
    ],
)
def test_emails(text: str, email: str) -> None:
    found = extract_entities(text, REF, names=False)
    assert values(found, "emails") == [email]
    check_offsets(text, found)


@pytest.mark.parametrize("text", ["le mando un correo arroba el departamento", "arroba", "punto arroba punto",
                                  "que esta arroba de gente", "a@b"])
def test_no_email_without_an_address_shape(text: str) -> None:
    assert find(text, "emails") == []


# --- phones -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        ("mi telefono es 612 345 678", ["+34612345678"]),
        ("llameme al +34 699 88 77 66", ["+34699887766"]),
        ("0034 612 000 111", ["+34612000111"]),
        ("el movil es seis uno dos tres cuatro cinco seis siete ocho", ["+34612345678"]),
        ("seiscientos doce trescientos cuarenta y cinco seiscientos setenta y ocho", ["+34612345678"]),
        ("mas treinta y cuatro seis cero cero uno dos tres cuatro cinco seis", ["+34600123456"]),
        ("+44 20 7946 0958 es el de londres", ["+442079460958"]),
        ("el mio 666 12 34 56 y el de mi mujer 677 65 43 21", ["+34666123456", "+34677654321"]),
    ],
)
def test_phones(text: str, phones: list[str]) -> None:
    found = extract_entities(text, REF, names=False)
    assert values(found, "phone_numbers") == phones
    check_offsets(text, found)


def test_two_phones_in_a_row_are_not_a_card() -> None:
    rng = random.Random(5)
    while True:
        a, b = (f"6{rng.randrange(10**8):08d}" for _ in range(2))
        if luhn.is_valid(a + b):
            break
    found = extract_entities(f"apunte {a[:3]} {a[3:6]} {a[6:]} {b[:3]} {b[3:6]} {b[6:]}", REF, names=False)
    assert values(found, "phone_numbers") == [f"+34{a}", f"+34{b}"]
    assert found.account_numbers == []


@pytest.mark.parametrize(
    "text",
    [
        "el pedido numero 123456789 no ha llegado",
        "el numero de referencia es 612 334 455",
        "el numero de incidencia es seis uno dos tres cuatro cinco seis siete ocho",
        "el codigo postal es 28080",
        "seis uno dos tres cuatro cinco seis siete ocho nueve",
    ],
)
def test_phone_like_numbers_that_are_not_phones(text: str) -> None:
    assert find(text, "phone_numbers") == []


# --- amounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("me han cobrado 45,50 € de mas", 45.50, "EUR"),
        ("pague 45.50 euros", 45.50, "EUR"),
        ("la factura es de 1.234,56 € este mes", 1234.56, "EUR"),
        ("cuesta €45 al mes", 45.0, "EUR"),
        ("son cuarenta y cinco euros con cincuenta", 45.50, "EUR"),
        ("el importe del recibo es cuarenta y cinco con cincuenta", 45.50, "EUR"),
        ("el total es de mil doscientos euros", 1200.0, "EUR"),
        ("dos mil quinientos treinta euros con cinco céntimos", 2530.05, "EUR"),
        ("cien euros", 100.0, "EUR"),
        ("un millón de euros", 1_000_000.0, "EUR"),
        ("medio euro por llamada", 0.50, "EUR"),
        ("un euro y medio", 1.50, "EUR"),
        ("me devolvieron veinte céntimos", 0.20, "EUR"),
        ("son veintitres euros con noventa y nueve", 23.99, "EUR"),
        ("diecinueve coma noventa y nueve euros", 19.99, "EUR"),
        ("compre por 30 dolares", 30.0, "USD"),
        ("doscientas libras", 200.0, "GBP"),
    ],
)
def test_amounts(text: str, amount: float, currency: str) -> None:
    found = extract_entities(text, REF, names=False)
    assert [(a.amount, a.currency, a.value) for a in found.amounts] == [
        (pytest.approx(amount), currency, f"{amount:.2f} {currency}")]
    check_offsets(text, found)


@pytest.mark.parametrize(
    "text",
    ["tengo tres hijos y dos de ellos estudian", "me llamaron cinco veces", "llevo 45 minutos esperando",
     "cuarenta y cinco con cincuenta", "el 3 y el 4", "mi telefono es 612 345 678"],
)
def test_numbers_that_are_not_amounts(text: str) -> None:
    assert find(text, "amounts") == []


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "dates"),
    [
        ("el cargo fue el 15/03/2025", ["2025-03-15"]),
        ("alta el 2025-04-30", ["2025-04-30"]),
        ("la factura del 15 de marzo de 2025", ["2025-03-15"]),
        ("viene el tecnico el quince de marzo", ["2025-03-15"]),
        ("le llamo mañana por la mañana", ["2025-03-13"]),
        ("ayer me cortaron la luz", ["2025-03-11"]),
        ("el proximo lunes pasa el tecnico", ["2025-03-17"]),
        ("el uno de abril de dos mil veinticinco vence", ["2025-04-01"]),
        ("por la mañana no estoy", []),
        ("el treinta y uno de febrero", []),
        ("el 31/02/2025", []),
    ],
)
def test_dates(text: str, dates: list[str]) -> None:
    assert find(text, "dates") == dates


def test_relative_dates_default_to_today() -> None:
    found = extract_entities("le llamo mañana", names=False)
    assert values(found, "dates") == [date.fromordinal(date.today().toordinal() + 1).isoformat()]


# --- names --------------------------------------------------------------------------------------


def test_names_from_cues_companies_and_spacy() -> None:
    text = "hola me llamo maria garcia y llamo desde sevilla por la factura de iberdrola"
    found = extract_entities(text, REF)
    assert values(found, "persons") == ["maria garcia"]
    assert values(found, "organizations") == ["iberdrola"]
    # Locations need the optional spaCy model (GPL-3.0 data); without it the list stays empty.
    assert values(found, "locations") == (["sevilla"] if spacy_model() is not None else [])
    assert extract_entities("me llamo maria garcia", REF, names=False).persons == []


# --- mixed, empty, odd and long input -------------------------------------------------------------


def test_mixed_call_gets_each_value_once() -> None:
    text = ("vale mi dni es 12345678z y mi correo es rosa punto diaz arroba gmail punto com el movil "
            "seis cuatro cuatro cinco cinco seis seis siete siete y me cobraron 45,50 euros ayer")
    found = extract_entities(text, REF, names=False)
    assert values(found, "national_ids") == ["12345678Z"]
    assert values(found, "emails") == ["rosa.diaz@gmail.com"]
    assert values(found, "phone_numbers") == ["+34644556677"]
    assert values(found, "amounts") == ["45.50 EUR"]
    assert values(found, "dates") == ["2025-03-11"]
    assert found.account_numbers == []
    check_offsets(text, found)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "@@@ 123 !!! €€€ ---", "eh eh si si vale vale"])
def test_empty_and_noise_give_nothing(text: str) -> None:
    assert extract_entities(text, REF) == Entities()


def test_non_text_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="needs str"):
        extract_entities(b"hola", REF)  # type: ignore[arg-type]


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_PIECES = st.sampled_from(
    _split(
        "uno dos mil millon cien y con coma euros céntimos € $ + - . , / @ arroba punto guion bajo es e ese "
        "zeta equis i griega letra dni tarjeta 0 00 612 345 12345678 x ES91 hoy mañana lunes próximo hace "
        "dias marzo 15/03/2025 medio doble cero seis quince noventa ñ 𝔘"
    )
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=30), st.booleans())
def test_garbage_never_raises(words: list[str], glue: bool) -> None:
    text = ("" if glue else " ").join(words)
    check_offsets(text, extract_entities(text, REF, names=False))


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_any_unicode_never_raises(text: str) -> None:
    extract_entities(text, REF, names=False)


def test_ten_thousand_words_stay_fast() -> None:
    sentence = ("buenos dias mi telefono es seis uno dos tres cuatro cinco seis siete ocho y me cobraron "
                "cuarenta y cinco euros con cincuenta el quince de marzo escribame a juan punto perez "
                "arroba gmail punto com gracias ")
    text = " ".join((sentence * 400).split()[:10_000])
    found = extract_entities(text, REF, names=False)  # benchmarks/timing_bounds.py times it
    assert len(found.phone_numbers) > 200 and len(found.emails) > 200


@pytest.mark.slow
def test_ten_thousand_words_with_names() -> None:
    sentence = "me llamo maria garcia y vivo en sevilla mi telefono es 612 345 678 "
    text = " ".join((sentence * 700).split()[:10_000])
    found = extract_entities(text, REF)
    assert len(found.phone_numbers) > 400


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("mi número es seis, uno, dos, tres, cuatro, cinco, seis, siete, ocho", "+34612345678"),
        ("apunte: seis cero cero, doce, treinta y cuatro, cincuenta y seis", "+34600123456"),
        ("llámeme al nueve uno, tres cuatro cinco, sesenta y siete, ochenta y nueve", "+34913456789"),
        ("el celular es cinco cinco, uno dos tres cuatro, cinco seis siete ocho", "+525512345678"),
    ],
)
def test_phones_said_in_comma_separated_groups(text: str, value: str) -> None:
    assert [e.value for e in extract_entities(text, names=False).phone_numbers] == [value]


def test_ten_digits_are_a_phone_only_in_latin_american_speech() -> None:
    said = "cinco cinco, uno dos tres cuatro, cinco seis siete ocho"
    assert extract_entities(f"apunte el {said}", names=False).phone_numbers == []
    assert extract_entities(f"el celular es {said}", names=False).phone_numbers


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("me cobraron mil doscientos pesos mexicanos de más", "1200.00 MXN"),
        ("fueron 4500 pesos argentinos", "4500.00 ARS"),
        ("son trescientos mil pesos colombianos", "300000.00 COP"),
        ("me descontaron 15.000 CLP", "15000.00 CLP"),
        ("le paso 200 pesos, pesos chilenos digo", "200.00 CLP"),
    ],
)
def test_amounts_in_pesos(text: str, value: str) -> None:
    assert [a.value for a in extract_entities(text, names=False).amounts] == [value]


def test_dni_said_in_comma_groups_with_its_letter() -> None:
    found = extract_entities("dni cinco cero, seis siete, ocho nueve, uno dos, letra e", names=False)
    assert [e.value for e in found.national_ids] == ["50678912E"]
    assert extract_entities("dni cinco cero, seis siete, ocho nueve, uno dos, letra te",
                            names=False).national_ids == []
