"""Category rules: model, YAML loading, version hash and matcher.

A rule matches a recording when one of its ``phrases`` occurs in a turn (accent- and
case-insensitive, whole words), said by the rule's ``speaker``, inside the optional time
window, no ``not`` phrase occurs in the call, and every condition on intent, sentiment,
outcome and entity kinds holds.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from callpipe.schema import RecordingMetadata, Turn

MAX_RULES_BYTES = 1_000_000
_WORD = re.compile(r"\w+")


class CategoryError(ValueError):
    """A rules file that cannot be read or validated."""


def normalize(text: str) -> str:
    """Lower-case ``text`` and strip accents (``Línea`` -> ``linea``; ``ñ`` becomes ``n``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return _WORD.findall(normalize(text))


class CategoryMatch(BaseModel):
    """Where a rule matched: the turn index and the normalized words that matched."""

    category: str
    version: str
    turn_index: int
    matched: list[str]


class CategoryRule(BaseModel):
    """One analyst-defined category."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=100)
    phrases: list[str] = Field(min_length=1, max_length=200)
    near: int | None = Field(default=None, ge=1, le=100)
    """When set, the words of a phrase need only occur within a span of ``near`` words, in any order."""
    not_phrases: list[str] = Field(default_factory=list, alias="not", max_length=200)
    speaker: Literal["agent", "customer", "any"] = "any"
    intents: list[str] = Field(default_factory=list)
    sentiments: list[str] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list)
    entity_kinds: list[str] = Field(default_factory=list)
    first_seconds: float | None = Field(default=None, gt=0)
    last_seconds: float | None = Field(default=None, gt=0)

    @field_validator("phrases", "not_phrases")
    @classmethod
    def _phrases_have_words(cls, value: list[str]) -> list[str]:
        for phrase in value:
            if not _words(phrase) or len(phrase) > 200:
                raise ValueError(f"phrase {phrase!r} must have 1..200 characters with a word")
        return value

    @model_validator(mode="after")
    def _one_window(self) -> CategoryRule:
        if self.first_seconds is not None and self.last_seconds is not None:
            raise ValueError("use first_seconds or last_seconds, not both")
        return self

    @cached_property
    def version(self) -> str:
        """A short hash of the rule's content: changes whenever the rule does."""
        body = json.dumps(self.model_dump(by_alias=True), sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    @cached_property
    def _exact(self) -> re.Pattern[str]:
        alts = sorted((r"\s+".join(map(re.escape, _words(p))) for p in self.phrases), key=len, reverse=True)
        return re.compile(r"\b(?:" + "|".join(alts) + r")\b")

    @cached_property
    def _negated(self) -> re.Pattern[str] | None:
        if not self.not_phrases:
            return None
        alts = (r"\s+".join(map(re.escape, _words(p))) for p in self.not_phrases)
        return re.compile(r"\b(?:" + "|".join(alts) + r")\b")

    @cached_property
    def _phrase_words(self) -> list[list[str]]:
        return [_words(p) for p in self.phrases]


def _near_match(words: list[str], wanted: list[str], span: int) -> list[str] | None:
    need = set(wanted)
    last: dict[str, int] = {}
    for i, word in enumerate(words):
        if word in need:
            last[word] = i
            if len(last) == len(need) and i - min(last.values()) < span:
                return sorted(last, key=last.__getitem__)
    return None


def _turn_in_window(rule: CategoryRule, turn: Turn, call_end: float) -> bool:
    if rule.first_seconds is not None:
        return turn.start < rule.first_seconds
    if rule.last_seconds is not None:
        return turn.end > call_end - rule.last_seconds
    return True


def _conditions_hold(rule: CategoryRule, meta: RecordingMetadata) -> bool:
    if rule.intents and (meta.intent is None or meta.intent.primary_intent not in rule.intents):
        return False
    if rule.sentiments and (meta.sentiment is None or meta.sentiment.label not in rule.sentiments):
        return False
    if rule.outcomes and str(meta.outcome) not in rule.outcomes:
        return False
    if rule.entity_kinds:
        if meta.entities is None:
            return False
        kinds = {e.kind for field in type(meta.entities).model_fields for e in getattr(meta.entities, field)}
        if not set(rule.entity_kinds) <= kinds:
            return False
    return True


def match(rule: CategoryRule, meta: RecordingMetadata) -> CategoryMatch | None:
    """Return the first turn where ``rule`` matches ``meta``, or ``None``."""
    if not _conditions_hold(rule, meta):
        return None
    texts = [normalize(t.text) for t in meta.turns]
    if rule._negated is not None and any(rule._negated.search(t) for t in texts):
        return None
    call_end = max((t.end for t in meta.turns), default=0.0)
    for index, (turn, text) in enumerate(zip(meta.turns, texts, strict=True)):
        if rule.speaker != "any" and turn.speaker != rule.speaker:
            continue
        if not _turn_in_window(rule, turn, call_end):
            continue
        if rule.near is None:
            found = rule._exact.search(text)
            if found:
                return CategoryMatch(category=rule.name, version=rule.version, turn_index=index,
                                     matched=_WORD.findall(found.group(0)))
            continue
        words = _WORD.findall(text)
        for wanted in rule._phrase_words:
            hit = _near_match(words, wanted, rule.near)
            if hit:
                return CategoryMatch(category=rule.name, version=rule.version, turn_index=index, matched=hit)
    return None


def apply_rules(rules: list[CategoryRule], documents: Iterable[RecordingMetadata]) -> list[dict[str, object]]:
    """Apply every rule to every document.

    Returns one row per match: recording_id, category, version, turn_index, matched.
    """
    rows: list[dict[str, object]] = []
    for meta in documents:
        for rule in rules:
            found = match(rule, meta)
            if found is not None:
                rows.append({"recording_id": meta.recording_id, "category": found.category,
                             "version": found.version, "turn_index": found.turn_index,
                             "matched": " ".join(found.matched)})
    return rows


def load_rules(path: Path) -> list[CategoryRule]:
    """Load rules from a YAML file holding a list of rules; raise ``CategoryError`` with a readable reason."""
    data = path.read_bytes()
    if len(data) > MAX_RULES_BYTES:
        raise CategoryError(f"{path.name}: larger than {MAX_RULES_BYTES} bytes")
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise CategoryError(f"{path.name}: not valid YAML ({type(exc).__name__})") from None
    if isinstance(raw, dict) and "categories" in raw:
        raw = raw["categories"]
    if not isinstance(raw, list):
        raise CategoryError(f"{path.name}: expected a list of categories")
    rules: list[CategoryRule] = []
    for i, item in enumerate(raw):
        try:
            rules.append(CategoryRule.model_validate(item))
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'rule'}: {e['msg']}" for e in exc.errors())
            raise CategoryError(f"{path.name}: category #{i + 1}: {reasons}") from None
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise CategoryError(f"{path.name}: duplicate category names")
    return rules
