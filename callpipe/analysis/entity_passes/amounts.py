"""Money amounts, written ("45,50 €", "1.234,56 euros") and said ("cuarenta y cinco euros con cincuenta")."""

from __future__ import annotations

from callpipe.analysis.entity_passes.doc import Doc, words
from callpipe.analysis.entity_passes.regions import DEFAULT_REGION, PESO_CODES
from callpipe.analysis.spoken import adjacent, parse_cardinal, read_digit_group

_CURRENCIES = {
    "€": "EUR", "euro": "EUR", "euros": "EUR", "eur": "EUR", "$": "USD", "dolar": "USD",
    "dolares": "USD", "usd": "USD", "£": "GBP", "libra": "GBP", "libras": "GBP", "gbp": "GBP",
    "mxn": "MXN", "ars": "ARS", "cop": "COP", "clp": "CLP", "soles": "PEN", "pen": "PEN",
    "pavos": "EUR",  # Spain's slang for euros: "cincuenta pavos"
}
_PREFIX_CODES = {"usd", "eur", "mxn", "ars", "cop", "clp", "gbp", "pen"}
"""Codes also said or written before the number ("USD 200", "COP 89.900")."""
_PESOS = {"peso", "pesos", "pesitos"}
_PESO_COUNTRIES = {
    "mexicano": "MXN", "mexicanos": "MXN", "argentino": "ARS", "argentinos": "ARS",
    "colombiano": "COP", "colombianos": "COP", "chileno": "CLP", "chilenos": "CLP",
}
_PESO_CODES = {"mxn", "ars", "cop", "clp"}
DEFAULT_PESO = PESO_CODES[DEFAULT_REGION]
"""Currency of "pesos" said without a country (and none named elsewhere in the text)."""
_SCALES = {"mil": 1000, "millon": 1_000_000, "millones": 1_000_000}
_CENTS = {"centimo", "centimos", "cts", "cent", "centavos"}
_MONEY_WORDS = words(
    "importe recibo factura cuota pagar pago pague pagado pagamos cobrar cobro cobrado cobraron cobran "
    "cargo cargaron precio cuesta cuestan coste costo saldo deuda total abonar abono devolver devolucion "
    "reembolso tarifa dinero euros euro pesos peso plata"
)

def _written_number(doc: Doc, i: int) -> tuple[float, int] | None:
    """Digits with thousands/decimal separators written tight: "1.234,56", "45.50", "12.500"."""
    toks = doc.tokens
    groups, seps, j = [toks[i].text], [], i + 1
    while (j + 1 < len(toks) and toks[j].text in ".," and toks[j + 1].is_digits
           and adjacent(toks[j - 1], toks[j]) and adjacent(toks[j], toks[j + 1])):
        seps.append(toks[j].text)
        groups.append(toks[j + 1].text)
        j += 2
    if not seps:
        return float(groups[0]), j
    if len(groups[-1]) <= 2 and all(len(g) == 3 for g in groups[1:-1]) and seps[-1] not in seps[:-1]:
        return float("".join(groups[:-1]) + "." + groups[-1]), j
    if all(len(g) == 3 for g in groups[1:]) and len(set(seps)) == 1:
        return float("".join(groups)), j
    return float(groups[0]), i + 1


def _number_at(doc: Doc, norms: list[str], i: int) -> tuple[float, int] | None:
    if i >= len(norms) or not norms[i]:
        return None
    if doc.tokens[i].is_digits:
        value, j = _written_number(doc, i)
        if j < len(norms) and norms[j] in _SCALES:  # "200 mil pesos", "1,5 millones"
            value, j = value * _SCALES[norms[j]], j + 1
    elif norms[i] in {"medio", "media"}:
        value, j = 0.5, i + 1
        if j < len(norms) and norms[j] in {"millon", "mil"}:  # "medio millón de pesos"
            value, j = value * _SCALES[norms[j]], j + 1
    elif parsed := parse_cardinal(norms, i, article_ok=True):
        value, j = float(parsed[0]), parsed[1]
    else:
        return None
    if norms[j - 1] in {"millon", "millones"} and norms[j : j + 2] == ["y", "medio"]:
        value, j = value + 500_000, j + 2  # "un millón y medio de pesos"
    return value, j


def _cents_at(doc: Doc, norms: list[str], i: int) -> tuple[float, int] | None:
    """A 0..99 fraction after "con"/"coma": "cincuenta" -> 0.50, "coma cinco" -> 0.5."""
    if i + 1 >= len(norms) or norms[i] not in {"con", "coma", "punto"}:
        return None
    group = read_digit_group(norms, i + 1)
    if group is None or len(group[0]) > 2:
        return None
    digits, j = group
    if norms[i] == "con":
        return int(digits) / 100, j
    while j < len(norms) and len(digits) < 2 and (more := read_digit_group(norms, j)) and len(more[0]) == 1:
        digits, j = digits + more[0], more[1]
    return float("0." + digits), j


def _currency_at(norms: list[str], i: int, after_million: bool, peso: str) -> tuple[str, int] | None:
    """The currency word at ``i`` as (code, next token); bare "pesos" are ``peso``."""
    if after_million and i + 1 < len(norms) and norms[i] == "de":
        i += 1
    if i < len(norms) and norms[i] in _PESOS:
        if i + 1 < len(norms) and norms[i + 1] in _PESO_COUNTRIES:
            return _PESO_COUNTRIES[norms[i + 1]], i + 2
        if i + 1 < len(norms) and norms[i + 1] in _PESO_CODES:
            return _CURRENCIES[norms[i + 1]], i + 2
        return peso, i + 1
    if i < len(norms) and norms[i] in _CURRENCIES:
        return _CURRENCIES[norms[i]], i + 1
    if i < len(norms) and norms[i] in _CENTS:
        return "cents", i + 1
    return None


def _peso_of_text(doc: Doc) -> str:
    """The peso of the country the text names ("pesos colombianos" earlier, "aquí en Bogotá")."""
    return PESO_CODES.get(doc.region or DEFAULT_REGION, DEFAULT_PESO)


def _symbol_at(doc: Doc, norms: list[str], i: int) -> str | None:
    """The currency of a sign or code before the number: "€", "£", "$" (pesos in a Latin American
    call), "USD", "COP"."""
    if norms[i] == "$":
        us = i >= 1 and norms[i - 1] == "us" and doc.tokens[i - 1].end == doc.tokens[i].start  # "US$"
        return _peso_of_text(doc) if doc.latam and not us else "USD"
    code_first = norms[i] in _PREFIX_CODES and i + 1 < len(norms) and doc.tokens[i + 1].is_digits
    if norms[i] in {"€", "£"} or code_first:
        return _CURRENCIES[norms[i]]
    return None


def _amount_at(
    doc: Doc, norms: list[str], i: int, need_currency: bool
) -> tuple[float, str, int, float] | None:
    """(amount, currency, next token, confidence) for an amount starting at token ``i``."""
    symbol = _symbol_at(doc, norms, i)
    number = _number_at(doc, norms, i + 1 if symbol else i)
    if number is None:
        return None
    value, j = number
    if symbol:
        # "$1,500.50 pesos", "$20 dólares": the word after the number wins over the sign.
        after = _currency_at(norms, j, norms[j - 1] in _SCALES, _peso_of_text(doc))
        if after and after[0] != "cents":
            return value, after[0], after[1], 0.95
        return value, symbol, j, 0.95
    fraction = _cents_at(doc, norms, j)
    if fraction:
        value, j = value + fraction[0], fraction[1]
    after_million = norms[j - 1] in {"millon", "millones"} or (
        j >= 3 and norms[j - 3] in {"millon", "millones"} and norms[j - 2 : j] == ["y", "medio"])
    currency = _currency_at(norms, j, after_million, _peso_of_text(doc))
    if currency is None:
        if need_currency or not fraction or not (doc.context(i, 8) & _MONEY_WORDS):
            return None
        return value, "EUR", j, 0.7
    code, j = currency
    if code == "cents":
        return value / 100, "EUR", j, 0.9
    if not fraction:
        if j + 1 < len(norms) and norms[j] == "y" and norms[j + 1] in {"medio", "media"}:
            return value + 0.5, code, j + 2, 0.95
        after = _cents_at(doc, norms, j)
        if after is None and j < len(norms) and norms[j] == "y":
            group = read_digit_group(norms, j + 1)
            if group and len(group[0]) <= 2 and group[1] < len(norms) and norms[group[1]] in _CENTS:
                after = int(group[0]) / 100, group[1]
        if after and norms[j] in {"con", "y"}:
            value, j = value + after[0], after[1]
            if j < len(norms) and norms[j] in _CENTS:
                j += 1
    return value, code, j, 0.95


_MAX_AMOUNT = 1e15


def amounts(doc: Doc, need_currency: bool) -> None:
    """Amounts on free tokens; without ``need_currency`` also "cuarenta con cincuenta" after a money word."""
    i = 0
    while i < len(doc.tokens):
        norms = doc.free
        found = _amount_at(doc, norms, i, need_currency) if norms[i] else None
        # A pasted run of hundreds of digits parses as inf, which JSON stores as null: no amount.
        if found and found[0] < _MAX_AMOUNT and doc.is_free(i, found[2]):
            value, currency, j, confidence = found
            value = round(value, 2)
            doc.add(doc.out.amounts, i, j, "amount", f"{value:.2f} {currency}", confidence=confidence,
                    amount=value, currency=currency)
            i = j
        else:
            i += 1

