"""General Spanish vocabulary as rivals of a lexicon candidate.

A doubtful word that sounds like a lexicon term may sound even more like an ordinary Spanish
word: "Preción" is closer to "presión" / "presione" than to the lexicon's "precinto". The
phonetic pass must not pick the domain term then: the lexicon is not the whole language.
:class:`GeneralVocabulary` holds the most frequent Spanish words of ``wordfreq`` bucketed by the
first letter of their phonetic key, and :meth:`GeneralVocabulary.rival` names the best ordinary
word that is more similar to the heard word than the candidate.
"""

from __future__ import annotations

import threading
from functools import cache

from callpipe.correction.phonetic import phonetic_key, strip_accents, word_distance

VOCABULARY_SIZE = 100_000
"""Most frequent ``wordfreq`` Spanish words considered (about 0.7 s to index, once per process)."""
LENGTH_SLACK = 3


class GeneralVocabulary:
    """Frequent Spanish words by the first letter of their phonetic key (built on first use)."""

    def __init__(self, size: int = VOCABULARY_SIZE) -> None:
        self.size = size
        self._buckets: dict[str, list[tuple[str, str]]] | None = None
        self._known: set[str] | None = None
        self._lock = threading.Lock()

    def _index(self) -> dict[str, list[tuple[str, str]]]:
        with self._lock:
            if self._buckets is None:
                from wordfreq import top_n_list

                buckets: dict[str, list[tuple[str, str]]] = {}
                for word in top_n_list("es", self.size):
                    if len(word) >= 3 and word.isalpha():
                        key = phonetic_key(word)
                        if key:
                            buckets.setdefault(key[:1], []).append((word, strip_accents(word)))
                self._buckets = buckets
                self._known = {fold for bucket in buckets.values() for _word, fold in bucket}
            return self._buckets

    def knows(self, word: str) -> bool:
        """Whether ``word`` (accents ignored) is one of the vocabulary's words."""
        self._index()
        assert self._known is not None
        return strip_accents(word.lower()) in self._known

    def rival(self, heard: str, candidate: str, similarity: float) -> str | None:
        """An ordinary word (not the candidate, not the heard word) that sounds more like ``heard``
        than ``candidate`` does (``similarity``); None when no ordinary word is closer.

        Only a heard form that is no ordinary word has rivals: "salmo" is a word, and whether it
        was misheard is the scorer's question (context, frequency), not which word it sounds
        like; "Preción" is no word, so it was some word misheard, and the closest one wins.
        A tie keeps the domain term: "salmo" is as close to "salió" as to "saldo", and in a call
        centre the lexicon is the better prior; "Preción" is closer to "presión" (0.98) than to
        "precinto" (0.85), so that fix is refused."""
        key = phonetic_key(heard)
        if not key or self.knows(heard):
            return None
        heard_fold, candidate_fold = strip_accents(heard), strip_accents(candidate)
        for word, fold in self._index().get(key[:1], []):
            if fold in (heard_fold, candidate_fold) or abs(len(fold) - len(heard_fold)) > LENGTH_SLACK:
                continue
            if word_distance(heard, word).similarity > similarity:
                return word
        return None


@cache
def default_vocabulary() -> GeneralVocabulary:
    """The process-wide vocabulary."""
    return GeneralVocabulary()
