"""Identifiers read from digit runs: IBAN/CCC accounts, cards, DNI/NIE and phone numbers.

A run is consecutive digit groups, written or said; each is tried as an account, a card, a
national id and finally as one or several phone numbers, and kept only when its check digits
validate (python-stdnum, phonenumbers).
"""

from __future__ import annotations

import re

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.es import ccc as std_ccc
from stdnum.es import dni as std_dni
from stdnum.es import nie as std_nie

from callpipe.analysis.entity_passes.doc import Doc, Run, words
from callpipe.analysis.spoken import AMBIGUOUS_LETTERS, adjacent, parse_letter, read_digit_group

_WRITTEN_IBAN = re.compile(r"\b[A-Za-z]{2} ?[0-9]{2}(?:[ -]?[A-Za-z0-9]){8,32}", re.ASCII)
_NOT_PHONE_CONTEXT = words(
    "pedido referencia incidencia contrato cliente expediente codigo poliza localizador factura ticket "
    "orden serie postal pin clave contrasena cups matricula socio"
)
_CARD_CONTEXT = {"tarjeta", "visa", "mastercard", "master", "amex", "american", "credito", "debito"}
_ID_CONTEXT = {"dni", "nie", "nif", "documento", "identidad", "identificacion"}
_LETTER_LEAD = {"letra", "la", "con", "y", "-", ",", ".", ":", ";", "es", "el", "guion", "final", "al"}
_LEAD_MAX = 6
# May sit between digit groups: fillers, "y" before the last group, and the commas, dots and dashes
# Whisper writes between digits said in groups ("seis, uno, dos, ..." or "seis cero cero, doce, treinta
# y cuatro"), up to _GLUE_MAX in a row ("tres, eh, cuatro", "seis uno dos... tres").
_RUN_GLUE = {"eh", "ehh", "em", "emm", "mm", "mmm", "este", "y", "guion", "-", ".", ",", ";", ":", "(", ")",
             "/"}
_GLUE_MAX = 3
_PHONE_CONTEXT = words(
    "telefono telefonos tel tlf movil fijo celular cel numero llamar llamame llameme llamen llamarme llamale "
    "llamarle marcar marcame marcale marqueme whatsapp wasap whats contacto linea"
)


def written_ibans(doc: Doc) -> None:
    """IBANs written with their country letters, kept at the longest valid prefix."""
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


def _runs(doc: Doc) -> list[Run]:
    norms, runs, i = doc.free, [], 0
    while i < len(norms):
        groups: list[tuple[str, int, int]] = []
        j = i
        while j < len(norms) and norms[j]:
            group = read_digit_group(norms, j)
            if group:
                groups.append((group[0], j, group[1]))
                j = group[1]
            elif groups and (skip := _glue(norms, j)):
                j += skip
            else:
                break
        if groups:
            runs.append(Run(groups))
            i = groups[-1][2]
        else:
            i += 1
    return runs


def _glue(norms: list[str], j: int) -> int:
    """How many glue tokens at ``j`` lead to a next digit group (0 when none does)."""
    k = j
    while k < len(norms) and k - j < _GLUE_MAX and norms[k] in _RUN_GLUE:
        k += 1
        if read_digit_group(norms, k):
            return k - j
    return 0


def identifier_runs(doc: Doc) -> None:
    """Each digit run as an account, a card, a national id or else phone numbers."""
    for run in _runs(doc):
        first = run.groups[0][1]
        if _iban_or_ccc(doc, run, first) or _card(doc, run, first) or _national_id(doc, run, first):
            continue
        _phones(doc, run, first)


def _iban_or_ccc(doc: Doc, run: Run, first: int) -> bool:
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


def _card(doc: Doc, run: Run, first: int) -> bool:
    """A whole run of 13-19 digits with a card network's first digit and a valid Luhn check; two
    phone numbers said in a row (18 digits) stay phones unless a card was mentioned."""
    digits, end = run.digits, run.groups[-1][2]
    if not (13 <= len(digits) <= 19 and digits[0] in "3456" and luhn.is_valid(digits)):
        return False
    mentioned = bool(doc.context(first, 10) & _CARD_CONTEXT)
    if not mentioned and _phone_pieces(run, doc.region):
        return False
    masked = "**** **** **** " + digits[-4:]
    confidence = 0.95 if mentioned else 0.8
    doc.add(doc.out.account_numbers, first, end, "card", masked, text=masked, confidence=confidence)
    return True


def _letter_ok(doc: Doc, k: int, touching: bool, first: int) -> bool:
    """Words like "de", "y", "te" name letters only when glued to the digits, when they end the
    text (no preposition ends an utterance) or when an id word comes shortly before the digits."""
    return (doc.norms[k] not in AMBIGUOUS_LETTERS or touching or k == len(doc.norms) - 1
            or bool(doc.context(first, 6) & _ID_CONTEXT))


def _letter_after(doc: Doc, first: int, last: int) -> tuple[str, int] | None:
    """The control letter after the digits: "z", "-Z", "zeta", "letra zeta", "con la letra z"."""
    norms = doc.free
    lead = last
    while lead < len(norms) and norms[lead] in _LETTER_LEAD and lead - last < _LEAD_MAX:
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


def _letter_before(doc: Doc, first: int) -> tuple[str, int] | None:
    """The NIE's X/Y/Z before the digits as (letter, first token of the letter)."""
    norms = doc.free
    at = first
    # "i griega, dos tres ...", "equis guion uno dos ..."
    while at >= 1 and norms[at - 1] in {",", "-", ".", ":", "guion"} and first - at < 2:
        at -= 1
    if at >= 2 and norms[at - 2 : at] == ["i", "griega"]:
        return "Y", at - 2
    got = parse_letter(norms, at - 1) if at >= 1 else None
    if got is None or got[0] not in "XYZ":
        return None
    touching = adjacent(doc.tokens[at - 1], doc.tokens[at]) and at == first
    return (got[0], at - 1) if _letter_ok(doc, at - 1, touching, first) else None


def _national_id(doc: Doc, run: Run, first: int) -> bool:
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


def _phones(doc: Doc, run: Run, first: int) -> None:
    if doc.context(first, 4) & _NOT_PHONE_CONTEXT:
        return
    plus = first >= 1 and doc.norms[first - 1] in {"+", "mas"} and not doc.claimed[first - 1]
    region, latam = doc.region, doc.latam
    number = _phone_value(run.digits, plus, region, latam)
    if number:
        start = first - 1 if plus else first
        doc.add(doc.out.phone_numbers, start, run.groups[-1][2], "phone", number, confidence=0.9)
        return
    pieces = _phone_pieces(run, region)
    for value, a, b in pieces:
        doc.add(doc.out.phone_numbers, run.groups[a][1], run.groups[b][2], "phone", value, confidence=0.8)
    if pieces:
        return
    if window := _phone_window(run, region, latam):
        value, a, b = window
        doc.add(doc.out.phone_numbers, run.groups[a][1], run.groups[b][2], "phone", value, confidence=0.75)
    elif not latam and doc.context(first, 8) & _PHONE_CONTEXT and not _spanish_plus_one(run.digits) and (
            number := _phone_value(run.digits, False, region, True)):
        # Ten digits after "teléfono"/"número" in a call that names no country: a Latin American
        # number, unless nine of them are a Spanish one (a stray digit said before or after it).
        doc.add(doc.out.phone_numbers, first, run.groups[-1][2], "phone", number, confidence=0.75)


def _spanish_plus_one(digits: str) -> bool:
    """True for ten digits whose first or last nine are a valid Spanish mobile or landline."""
    return len(digits) == 10 and any(
        nine[0] in "6789" and _valid(nine, "ES") for nine in (digits[:9], digits[1:]))


_WINDOW_DROP = 2
"""At most this many digits, in whole groups at either end of a run and set off by a comma or a
filler, may be left out of a phone ("son dos, seis uno dos ...", "... seis siete ocho, dos veces")."""


def _phone_window(run: Run, region: str | None, latam: bool) -> tuple[str, int, int] | None:
    """A valid phone in the run once a short leading or trailing group is left out:
    (E.164, first group, last group), or None."""
    groups = run.groups
    for a in range(len(groups)):
        if sum(len(g[0]) for g in groups[:a]) > _WINDOW_DROP:
            break
        for b in range(len(groups) - 1, a - 1, -1):
            if a == 0 and b == len(groups) - 1:
                continue
            if sum(len(g[0]) for g in groups[b + 1 :]) + sum(len(g[0]) for g in groups[:a]) > _WINDOW_DROP:
                break
            set_off = (a == 0 or groups[a - 1][2] < groups[a][1]) and (
                b == len(groups) - 1 or groups[b][2] < groups[b + 1][1])
            value = set_off and _phone_value("".join(g[0] for g in groups[a : b + 1]), False, region, latam)
            if value:
                return value, a, b
    return None


def _phone_pieces(run: Run, region: str | None = None) -> list[tuple[str, int, int]]:
    """Several numbers said one after another: (E.164, first group, last group) per number, or []
    unless every digit of the run belongs to a valid phone."""
    pieces, begin, acc = [], 0, ""
    for k, (group_digits, _, _) in enumerate(run.groups):
        acc += group_digits
        if len(acc) >= 9 and (value := _phone_value(acc, False, region)):
            pieces.append((value, begin, k))
            begin, acc = k + 1, ""
    return pieces if len(pieces) > 1 and not acc else []


_LATAM_REGIONS = ("MX", "CO", "AR")
"""Ten national digits without a country code: a Mexican, Colombian or Argentine number, the named
country first (a Spanish number has nine), read only when the text sounds Latin American or a phone
word comes shortly before."""
_NINE_DIGIT_REGIONS = ("CL", "PE")
"""Countries whose mobiles have nine digits, like Spain's: read so only when the text names them."""
_COUNTRY_CODES = ("52", "54", "56", "57", "51")
"""Country codes said without "más" in a Latin American call ("cincuenta y dos, cincuenta y cinco ...")."""


def _phone_value(digits: str, plus: bool, region: str | None = None, latam: bool = False) -> str | None:
    if plus:
        return _valid("+" + digits, "ES")
    if digits.startswith("00") and len(digits) > 10:
        return _valid("+" + digits[2:], "ES")
    if len(digits) == 11 and digits.startswith("34"):
        return _valid("+" + digits, "ES")
    if len(digits) == 9:
        if region in _NINE_DIGIT_REGIONS and (value := _valid(digits, region)):
            return value
        return _valid(digits, "ES")
    if len(digits) == 10 and latam:
        # Colombian mobiles start 30x or 35x, which few Mexican area codes do.
        guess = region if region in _LATAM_REGIONS else "CO" if digits.startswith(("30", "35")) else None
        order = ((guess,) if guess else ()) + _LATAM_REGIONS
        return next((v for r in order if (v := _valid(digits, r))), None)
    if 11 <= len(digits) <= 13 and latam and digits.startswith(_COUNTRY_CODES):
        return _valid("+" + digits, "ES")
    return None


def _valid(candidate: str, region: str) -> str | None:
    """``candidate`` in E.164 when it parses as a valid number of ``region`` (or of its "+" code)."""
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
