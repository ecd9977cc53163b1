"""Domain lexicon (banking, telecom, utilities terms) and known domain phrases.

Shipped files: ``callpipe/data/domain_lexicon_es.txt`` and ``callpipe/data/domain_phrases_es.txt``.
Files named by ``CALLPIPE_LEXICON_FILE`` / ``CALLPIPE_PHRASES_FILE`` (same formats) are added
on top, so a deployment can add its product names without editing the package.

Lexicon format: one lemma per line followed by its inflected forms, separated by spaces, each
written as it should appear in a corrected transcript (``IBAN``, ``préstamo``); a line
``[domain]`` names the domain of the lines below it; ``#`` starts a comment.

Phrases format: one phrase per line (2 to 8 words), ``#`` starts a comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from callpipe.correction.phonetic import phonetic_key
from callpipe.recorder.dictionary import fold
from callpipe.settings import Settings

LEXICON_ENV = "CALLPIPE_LEXICON_FILE"
PHRASES_ENV = "CALLPIPE_PHRASES_FILE"
LEXICON_NAME = "domain_lexicon_es.txt"
PHRASES_NAME = "domain_phrases_es.txt"
MAX_PHRASE_WORDS = 8


class LexiconFileError(ValueError):
    """A lexicon or phrases file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LexiconTerm:
    """One written form of a domain term."""

    form: str
    lemma: str
    domain: str
    fold: str
    key: str


@dataclass(frozen=True, slots=True)
class DomainPhrase:
    """A phrase callers or agents say; ``words`` are the written words, ``folds`` their folded forms."""

    text: str
    words: tuple[str, ...]
    folds: tuple[str, ...]


class DomainLexicon:
    """Domain terms indexed by folded spelling, plus the known domain phrases."""

    def __init__(self, terms: list[LexiconTerm], phrases: list[DomainPhrase]) -> None:
        by_fold: dict[str, LexiconTerm] = {}
        for term in terms:
            by_fold.setdefault(term.fold, term)  # first spelling wins (shipped before extensions)
        self._by_fold = by_fold
        self.terms: tuple[LexiconTerm, ...] = tuple(by_fold.values())
        unique: dict[tuple[str, ...], DomainPhrase] = {}
        for phrase in phrases:
            unique.setdefault(phrase.folds, phrase)
        self.phrases: tuple[DomainPhrase, ...] = tuple(unique.values())

    @classmethod
    def load_default(cls) -> DomainLexicon:
        """The shipped lexicon and phrases plus the files named by the environment variables."""
        data = resources.files("callpipe").joinpath("data")
        terms = parse_lexicon(data.joinpath(LEXICON_NAME).read_text("utf-8"), f"callpipe/data/{LEXICON_NAME}")
        phrases = parse_phrases(
            data.joinpath(PHRASES_NAME).read_text("utf-8"), f"callpipe/data/{PHRASES_NAME}"
        )
        settings = Settings.from_env(only=[LEXICON_ENV, PHRASES_ENV])
        extra_terms, extra_phrases = settings.callpipe_lexicon_file, settings.callpipe_phrases_file
        if extra_terms:
            terms.extend(parse_lexicon(_read(Path(extra_terms)), extra_terms))
        if extra_phrases:
            phrases.extend(parse_phrases(_read(Path(extra_phrases)), extra_phrases))
        return cls(terms, phrases)

    def __len__(self) -> int:
        return len(self.terms)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and fold(word) in self._by_fold

    def get(self, word: str) -> LexiconTerm | None:
        """The term spelled like ``word`` (case and accents ignored), or ``None``."""
        return self._by_fold.get(fold(word))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LexiconFileError(f"{path}: cannot read ({exc})") from exc


def _content_lines(text: str) -> list[tuple[int, str]]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.split("#", 1)[0].strip()
        if stripped:
            out.append((lineno, stripped))
    return out


def parse_lexicon(text: str, name: str) -> list[LexiconTerm]:
    """Terms of a lexicon file's ``text``; ``name`` is used in error messages."""
    terms: list[LexiconTerm] = []
    domain = "general"
    for lineno, line in _content_lines(text):
        if line.startswith("["):
            if not line.endswith("]") or not line[1:-1].strip():
                raise LexiconFileError(f"{name} line {lineno}: malformed section header {line!r}")
            domain = line[1:-1].strip()
            continue
        forms = line.split()
        for form in forms:
            if not any(ch.isalpha() for ch in form) or any(ch.isdigit() for ch in form):
                raise LexiconFileError(f"{name} line {lineno}: {form!r} is not a word")
            terms.append(LexiconTerm(form, forms[0], domain, fold(form), phonetic_key(form)))
    return terms


def parse_phrases(text: str, name: str) -> list[DomainPhrase]:
    """Phrases of a phrases file's ``text``; ``name`` is used in error messages."""
    phrases: list[DomainPhrase] = []
    for lineno, line in _content_lines(text):
        words = tuple(line.split())
        if not 2 <= len(words) <= MAX_PHRASE_WORDS:
            raise LexiconFileError(f"{name} line {lineno}: a phrase has 2 to {MAX_PHRASE_WORDS} words")
        phrases.append(DomainPhrase(" ".join(words), words, tuple(fold(w) for w in words)))
    return phrases
