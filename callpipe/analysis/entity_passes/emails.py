"""Email addresses, written ("ana.perez@gmail.com") and spoken ("ana punto perez arroba gmail punto com")."""

from __future__ import annotations

import re

from callpipe.analysis.entity_passes.doc import Doc, words
from callpipe.analysis.spoken import read_digit_group

_WRITTEN_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_EMAIL_SHAPE = re.compile(r"^[a-z0-9_%+-]+(?:\.[a-z0-9_%+-]+)*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,6}$")

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
_STOPWORDS = words(
    "a al algo asi bueno como con correo de del dirección direccion e el electronico email en es eh "
    "email escribame escriba este esta la las le lo los mail mande mandelo me mi mis nombre o para "
    "pero por pues que se seria ser sería si su sus te tengo tiene tu un una vale y ya mandar envie "
    "enviar usuario cuenta"
)


def written_emails(doc: Doc) -> None:
    """Addresses written with "@" that have a plausible shape."""
    for m in _WRITTEN_EMAIL.finditer(doc.text):
        value = m.group().lower().rstrip(".")
        i, j = doc.token_range(m.start(), m.start() + len(value))
        if _EMAIL_SHAPE.match(value) and doc.is_free(i, j):
            doc.add(doc.out.emails, i, j, "email", value, confidence=0.97)


def spoken_emails(doc: Doc) -> None:
    """Addresses said around "arroba", with "punto"/"guion" and common domain slips mended."""
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

