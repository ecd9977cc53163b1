"""The evaluation protocol: frozen evaluation sets, and no evaluation phrase copied into what the
classifiers read (lexicon, intent cues, topics) unless training data also has it.

1. Every file under ``callpipe/data/eval/`` has its SHA-256 in ``callpipe/data/eval_manifest.sha256``
   (committed with the set). Changing, adding or removing an evaluation file fails the test: a set
   is frozen once written; a new set gets a new file and a new manifest line in its own commit.
2. A lexicon entry, intent cue or topic keyword of two or more words that occurs in a sentiment or
   intent evaluation sentence and in no training sentence was copied from the evaluation set (it
   can only help there). The test lists every such entry.
3. No sentence of one set is a near-duplicate (:mod:`callpipe.analysis.near_duplicates`: token
   Jaccard >= 0.6 or 1-3 word edits) of a sentence of another set, for every pair of sets among the
   training data (sentiment and intent training files, taxonomy examples) and every evaluation set
   (sentiment, intent and entity sentences). Frozen sets written before this check already hold
   such pairs (a quarter of ``intent_holdout`` is close to training or ``intent_test``); they are
   listed, by hashes only, in ``known_near_duplicates.txt`` and may stay. Any other pair fails: a
   new evaluation set must be fresh, and a new training sentence that lands near an evaluation
   sentence is removed or rewritten (evaluation files are never edited).
   ``benchmarks/analysis_eval.py`` also reports every set restricted to its de-duplicated part.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from callpipe.analysis.near_duplicates import is_near_duplicate, near_duplicate_pairs, pair_key
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
FRESH_SETS = [("sentiment_fresh.jsonl", "label"), ("intent_fresh.jsonl", "intent")]
"""Written after the near-duplicate check by a writer who never saw the training data; read when present."""
ENTITY_SETS = ["entities_dev.jsonl", "entities_test.jsonl", "entities_synth.jsonl", "entities_fresh.jsonl"]
MIN_WORDS = 2
KNOWN = Path(__file__).with_name("known_near_duplicates.txt")
OLDER_THAN_FRESH = {"ya va", "sin ningun problema", "va lento", "datos moviles"}
"""Entries already in the lexicon/topics at d9825ef, before the fresh sets were written (a9f25bd) by a
writer who never saw them: a fresh sentence that contains one is a coincidence, not a copy. They are
still checked against every older evaluation set."""


def _labelled_sets() -> list[tuple[str, str]]:
    return EVAL_SETS + [(name, key) for name, key in FRESH_SETS if (EVAL / name).is_file()]


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


def _eval_texts(*, fresh: bool = True) -> list[str]:
    sets = _labelled_sets() if fresh else EVAL_SETS
    return [fold(t) for name, key in sets for t, _ in load_examples(EVAL / name, key)]


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
    """Entries that match 2+ words of an evaluation sentence and no training sentence."""
    training, evaluation, older = _training_texts(), _eval_texts(), _eval_texts(fresh=False)
    leaks = []
    for where, pattern in _entries():
        term = re.sub(r"^.*? '(.*)'$", r"\1", where)
        texts = older if term in OLDER_THAN_FRESH else evaluation
        spans = [m.group(0) for text in texts for m in pattern.finditer(text)]
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


def named_sets() -> dict[str, list[str]]:
    """Every set the near-duplicate check compares: training files, taxonomy examples, evaluation sets."""
    doc = json.loads((DATA / "intent_taxonomy.json").read_text(encoding="utf-8"))
    sets = {
        "train:sentiment_train.jsonl": [t for t, _ in load_examples(DATA / "sentiment_train.jsonl", "label")],
        "train:taxonomy examples": [e for spec in doc["intents"].values() for e in spec.get("examples", [])],
    }
    if doc.get("train_file"):
        sets[f"train:{doc['train_file']}"] = [t for t, _ in load_examples(DATA / doc["train_file"], "intent")]
    for name, key in _labelled_sets():
        sets[f"eval:{name}"] = [t for t, _ in load_examples(EVAL / name, key)]
    for name in ENTITY_SETS:
        if (EVAL / name).is_file():
            lines = (EVAL / name).read_text(encoding="utf-8").splitlines()
            sets[f"eval:{name}"] = [json.loads(line)["text"] for line in lines if line.strip()]
    return sets


def near_duplicates_between_sets() -> dict[str, tuple[str, str]]:
    """{pair key: (set, set)} for near-duplicate sentences of two different sets (training vs training
    excepted: both are fitted on)."""
    sets = named_sets()
    names = list(sets)
    found: dict[str, tuple[str, str]] = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if a.startswith("train:") and b.startswith("train:"):
                continue
            for x, y in near_duplicate_pairs(sets[a], sets[b]):
                found[pair_key(x, y)] = (a, b)
    return found


def _known() -> set[str]:
    lines = KNOWN.read_text(encoding="utf-8").splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


def test_near_duplicate_rule() -> None:
    assert is_near_duplicate("quiero pagar la factura de enero", "Quiero pagar la factura de marzo")
    assert is_near_duplicate("me cobraron dos veces la cuota del gimnasio", "me cobraron dos veces la cuota")
    assert is_near_duplicate("no me funciona el router desde ayer", "desde ayer no me funciona el router")
    assert not is_near_duplicate("quiero cancelar", "quiero pagar")
    assert not is_near_duplicate("quiero saber mi saldo", "me han robado la tarjeta en el metro")


def test_no_new_near_duplicate_between_sets() -> None:
    found = near_duplicates_between_sets()
    new = {key: where for key, where in found.items() if key not in _known()}
    assert not new, (
        "near-duplicates not in known_near_duplicates.txt (rewrite or drop the training sentence; "
        f"never edit an evaluation set): {sorted(new.values())}"
    )
