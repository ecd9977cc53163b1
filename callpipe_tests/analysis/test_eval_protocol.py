"""The evaluation protocol: frozen evaluation sets, and no evaluation phrase copied into what the
classifiers read (lexicon, intent cues, topics) unless training data also has it.

1. Every file under ``callpipe/data/eval/`` has its SHA-256 in ``callpipe/data/eval_manifest.sha256``
   (committed with the set). Changing, adding or removing an evaluation file fails the test: a set
   is frozen once written; a new set gets a new file and a new manifest line in its own commit.
2. A lexicon entry, intent cue or topic keyword of three or more words that occurs in a sentiment or
   intent evaluation sentence and in no training sentence was copied from the evaluation set (it
   can only help there). The test lists every such entry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from callpipe.analysis.text import fold, load_examples

DATA = Path(__file__).resolve().parents[2] / "callpipe" / "data"
EVAL = DATA / "eval"
MANIFEST = DATA / "eval_manifest.sha256"
EVAL_SETS = [
    ("sentiment_test.jsonl", "label"),
    ("intent_test.jsonl", "intent"),
    ("sentiment_holdout.jsonl", "label"),
    ("intent_holdout.jsonl", "intent"),
]
MIN_WORDS = 3


def _manifest() -> dict[str, str]:
    entries = {}
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            entries[name.strip()] = digest
    return entries


def test_evaluation_sets_are_frozen() -> None:
    expected = _manifest()
    actual = {
        str(p.relative_to(EVAL)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(EVAL.rglob("*"))
        if p.is_file()
    }
    assert sorted(actual) == sorted(expected), "evaluation files added or removed without a manifest entry"
    changed = [name for name in expected if actual[name] != expected[name]]
    assert not changed, f"frozen evaluation files changed: {changed}"


def _training_texts() -> list[str]:
    texts = [t for t, _ in load_examples(DATA / "sentiment_train.jsonl", "label")]
    doc = json.loads((DATA / "intent_taxonomy.json").read_text(encoding="utf-8"))
    for spec in doc["intents"].values():
        texts += spec.get("examples", [])
        texts.append(spec.get("description", ""))
    if doc.get("train_file"):
        texts += [t for t, _ in load_examples(DATA / doc["train_file"], "intent")]
    return [fold(t) for t in texts]


def _eval_texts() -> list[str]:
    return [fold(t) for name, key in EVAL_SETS for t, _ in load_examples(EVAL / name, key)]


def _phrase_pattern(term: str) -> re.Pattern[str]:
    """A lexicon/topic phrase (words matched folded, a trailing ``*`` = any ending) as a whole-word regex."""
    words = [(fold(w.rstrip("*")), w.endswith("*")) for w in term.split()]
    parts = [re.escape(w) + (r"\w*" if star else "") for w, star in words]
    return re.compile(r"\b" + " ".join(parts) + r"\b")


def _entries() -> Iterator[tuple[str, re.Pattern[str]]]:
    """(where, pattern) for every lexicon entry, lexicon regex, intent cue and topic keyword."""
    lexicon = (DATA / "sentiment_lexicon.tsv").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lexicon, 1):
        if not line.strip() or line.startswith("#"):
            continue
        term = line.split("\t")[0].strip()
        where = f"sentiment_lexicon.tsv:{number} {term!r}"
        if term.startswith("re:"):
            yield where, re.compile(term[3:])
        else:
            yield where, _phrase_pattern(term)
    doc = json.loads((DATA / "intent_taxonomy.json").read_text(encoding="utf-8"))
    for label, spec in doc["intents"].items():
        for cue in spec.get("cues", []):
            yield f"intent_taxonomy.json {label} cue {cue!r}", re.compile(cue)
    topics = json.loads((DATA / "topics.json").read_text(encoding="utf-8"))["topics"]
    for topic, keywords in topics.items():
        for keyword in keywords:
            yield f"topics.json {topic} {keyword!r}", _phrase_pattern(keyword)


def leaked_entries() -> list[str]:
    """Entries that match 3+ words of an evaluation sentence and no training sentence."""
    training, evaluation = _training_texts(), _eval_texts()
    leaks = []
    for where, pattern in _entries():
        spans = [m.group(0) for text in evaluation for m in pattern.finditer(text)]
        long_spans = [s for s in spans if len(s.split()) >= MIN_WORDS]
        if long_spans and not any(pattern.search(text) for text in training):
            leaks.append(f"{where} matches {long_spans[0]!r}")
    return leaks


def test_leak_check_catches_a_copied_phrase() -> None:
    pattern = _phrase_pattern("me dej* tirado")
    assert pattern.search(fold("y al final me dejaron tirado en la calle"))
    assert not pattern.search(fold("me dejó bien atendido"))


def test_no_lexicon_entry_or_cue_is_copied_from_an_evaluation_set() -> None:
    leaks = leaked_entries()
    assert not leaks, "copied from an evaluation set (in no training sentence):\n" + "\n".join(leaks)


def test_no_evaluation_sentence_is_in_the_training_data() -> None:
    training = set(_training_texts())
    copied = sorted({text for text in _eval_texts() if text in training})
    assert not copied, f"evaluation sentences found in training data: {copied}"
