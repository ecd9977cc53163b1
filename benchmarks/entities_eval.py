"""Precision, recall and F1 of entity extraction per kind on the labelled Spanish sentences.

Usage: ``python benchmarks/entities_eval.py [--split dev|dev2|test|fresh|synth|all] [--no-names] [--errors]``

Reads ``callpipe/data/eval/entities_{dev,test,fresh,synth}.jsonl`` and ``callpipe/data/entities_dev2.jsonl``:
``dev`` and ``dev2`` (phones said in comma-separated digit-word groups, amounts in pesos and dollars,
DNI/NIE said as digit words plus letter, ordinary counts) were used to tune the extractor; ``test``
(hand-written sentences) was written before tuning and is never tuned on; ``fresh`` (written by
other hands, never seen while tuning) is a report set too;
``synth`` (250 templated sentences with random valid and invalid values, spoken and written) was
generated after the extractor existed and is never tuned on either. A prediction counts when its normalised
value equals a gold value of the same kind in the same sentence (multiset match). Also times one
10,000-word transcript. Every number printed is measured here.
"""

from __future__ import annotations

import argparse
import json
import time
import unicodedata
from collections import Counter
from datetime import date
from pathlib import Path

from callpipe.analysis.entities import extract_entities, spacy_model
from callpipe.schema import Entities

DATA = Path(__file__).resolve().parent.parent / "callpipe" / "data" / "eval"
SPLIT_PATHS = {split: DATA / f"entities_{split}.jsonl" for split in ("dev", "test", "fresh", "synth")}
SPLIT_PATHS["dev2"] = DATA.parent / "entities_dev2.jsonl"
KIND_GROUP = {"iban": "account", "ccc": "account", "card": "card", "dni": "national_id",
              "nie": "national_id", "email": "email", "phone": "phone", "amount": "amount", "date": "date",
              "person": "person", "organization": "organization", "location": "location"}
GROUPS = ["account", "card", "national_id", "email", "phone", "amount", "date", "person", "organization",
          "location"]


def _norm(value: str) -> str:
    decomposed = unicodedata.normalize("NFD", value.lower().strip())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def predicted(entities: Entities) -> dict[str, Counter[str]]:
    """Normalised predicted values per evaluation group."""
    out: dict[str, Counter[str]] = {g: Counter() for g in GROUPS}
    for field in Entities.model_fields:
        for entity in getattr(entities, field):
            out[KIND_GROUP[entity.kind]][_norm(entity.value)] += 1
    return out


def evaluate(path: Path, names: bool, show_errors: bool) -> dict[str, tuple[int, int, int]]:
    """(true positives, false positives, false negatives) per group over one file."""
    counts = {g: [0, 0, 0] for g in GROUPS}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        got = predicted(extract_entities(record["text"], date.fromisoformat(record["reference_date"]),
                                         names=names))
        for group in GROUPS:
            gold = Counter(_norm(v) for v in record["gold"].get(group, []))
            hits = sum((gold & got[group]).values())
            fp, fn = sum(got[group].values()) - hits, sum(gold.values()) - hits
            counts[group][0] += hits
            counts[group][1] += fp
            counts[group][2] += fn
            if show_errors and (fp or fn):
                print(f"  {record['id']} {group}: gold={sorted(gold.elements())} "
                      f"got={sorted(got[group].elements())} | {record['text'][:90]}")
    return {g: (c[0], c[1], c[2]) for g, c in counts.items()}


def report(name: str, counts: dict[str, tuple[int, int, int]], groups: list[str]) -> None:
    print(f"\n{name}")
    print(f"{'kind':<14}{'gold':>6}{'pred':>6}{'P':>8}{'R':>8}{'F1':>8}")
    for group in groups:
        tp, fp, fn = counts[group]
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        print(f"{group:<14}{tp + fn:>6}{tp + fp:>6}{p:>8.3f}{r:>8.3f}{f1:>8.3f}")


def time_long_text(names: bool) -> None:
    sentence = ("buenos dias mi telefono es seis uno dos tres cuatro cinco seis siete ocho y me cobraron "
                "cuarenta y cinco euros con cincuenta el quince de marzo escribame a juan punto perez "
                "arroba gmail punto com gracias ")
    words = sentence.split()
    text = " ".join(words * (10_000 // len(words) + 1))
    text = " ".join(text.split()[:10_000])
    extract_entities(text[:2000], names=names)
    start = time.perf_counter()
    found = extract_entities(text, names=names)
    elapsed = time.perf_counter() - start
    print(f"\n10,000 words ({len(text)} chars, names={names}): {elapsed:.3f} s, "
          f"{len(found.phone_numbers)} phones, {len(found.amounts)} amounts, {len(found.emails)} emails")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=[*SPLIT_PATHS, "all"], default="all")
    parser.add_argument("--no-names", action="store_true", help="skip the spaCy/name pass")
    parser.add_argument("--errors", action="store_true", help="print each sentence with a miss")
    args = parser.parse_args()
    names = not args.no_names
    has_model = names and spacy_model() is not None
    groups = GROUPS if has_model else GROUPS[:7]
    print(f"spaCy Spanish model: {'loaded' if has_model else 'not used'}")
    splits = list(SPLIT_PATHS) if args.split == "all" else [args.split]
    for split in splits:
        path = SPLIT_PATHS[split]
        lines = len(path.read_text(encoding="utf-8").splitlines())
        report(f"{split} ({lines} sentences)", evaluate(path, names, args.errors), groups)
    time_long_text(names)


if __name__ == "__main__":
    main()
