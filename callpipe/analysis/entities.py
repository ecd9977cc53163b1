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
Offsets (``start``/``end``) point into the original text. Each pass lives in
:mod:`callpipe.analysis.entity_passes` (one module per kind); this module runs them in order.
"""

from __future__ import annotations

from datetime import date

from callpipe.analysis.entity_passes.amounts import amounts
from callpipe.analysis.entity_passes.dates import numeric_dates, word_dates
from callpipe.analysis.entity_passes.doc import Doc
from callpipe.analysis.entity_passes.emails import spoken_emails, written_emails
from callpipe.analysis.entity_passes.identifiers import identifier_runs, written_ibans
from callpipe.analysis.entity_passes.names import find_names, spacy_model
from callpipe.schema import Entities

__all__ = ["extract_entities", "spacy_model"]


def extract_entities(text: str, reference_date: date | None = None, *, names: bool = True) -> Entities:
    """Find the entities of one transcript.

    ``reference_date`` anchors relative dates ("mañana", "el próximo lunes"); default today.
    ``names=False`` skips the spaCy pass (persons, organizations, locations). Never raises on
    odd text; raises TypeError when ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_entities needs str, got {type(text).__name__}")
    doc = Doc(text, reference_date or date.today())
    if not doc.tokens:
        return doc.out
    written_emails(doc)
    spoken_emails(doc)
    numeric_dates(doc)
    written_ibans(doc)
    amounts(doc, need_currency=True)
    identifier_runs(doc)
    word_dates(doc)
    amounts(doc, need_currency=False)
    if names:
        find_names(doc)
    for field in Entities.model_fields:
        getattr(doc.out, field).sort(key=lambda e: e.start or 0)
    return doc.out
