"""Dates, numeric ("15/03/2024", "2024-03-15") and said ("el quince de marzo", "el próximo lunes")."""

from __future__ import annotations

import re
from datetime import date

from callpipe.analysis.entity_passes.doc import Doc
from callpipe.analysis.spoken import parse_spoken_date

_NUMERIC_DATE = re.compile(
    r"\b([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})\b|\b([0-9]{4})-([0-9]{2})-([0-9]{2})\b", re.ASCII
)


def numeric_dates(doc: Doc) -> None:
    """Valid day/month/year and ISO dates written with digits."""
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


def word_dates(doc: Doc) -> None:
    """Said dates on free tokens, relative ones anchored at ``doc.reference``."""
    i = 0
    while i < len(doc.tokens):
        found = parse_spoken_date(doc.free, i, doc.reference) if not doc.claimed[i] else None
        if found:
            value, j, confidence = found
            doc.add(doc.out.dates, i, j, "date", value.isoformat(), confidence=confidence)
            i = j
        else:
            i += 1

