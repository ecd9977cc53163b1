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
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NamedTuple

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
    min_silence_seconds: float | None = Field(default=None, ge=0)
    max_silence_seconds: float | None = Field(default=None, ge=0)
    min_talk_seconds: float | None = Field(default=None, ge=0)
    max_talk_seconds: float | None = Field(default=None, ge=0)
    """Bounds on the call's silence and talk time (a call without the figure does not match)."""

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
        """A short hash of the rule's content: changes whenever the rule does (fields left at their
        default are left out, so a new optional field never changes a stored rule's version)."""
        dumped = self.model_dump(by_alias=True, exclude_defaults=True)
        body = json.dumps(dumped, sort_keys=True, ensure_ascii=True)
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


class TurnView(NamedTuple):
    """What the matcher reads of one turn (from a document or a row of the ``turns`` table)."""

    speaker: str
    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class CallView:
    """What the matcher reads of one call: turns in order, intent, sentiment, outcome, entity kinds."""

    recording_id: str
    turns: list[TurnView]
    intent: str | None = None
    sentiment: str | None = None
    outcome: str | None = None
    entity_kinds: frozenset[str] = field(default_factory=frozenset)
    silence_seconds: float | None = None
    talk_seconds: float | None = None


def view_of(meta: RecordingMetadata) -> CallView:
    """The matcher's view of a metadata document."""
    kinds: set[str] = set()
    if meta.entities is not None:
        kinds = {e.kind for f in type(meta.entities).model_fields for e in getattr(meta.entities, f)}
    return CallView(
        recording_id=meta.recording_id,
        turns=[TurnView(str(t.speaker), t.start, t.end, t.text) for t in meta.turns],
        intent=meta.intent.primary_intent if meta.intent else None,
        sentiment=str(meta.sentiment.label) if meta.sentiment else None,
        outcome=str(meta.outcome),
        entity_kinds=frozenset(kinds),
        silence_seconds=meta.conversation_metrics.silence_seconds,
        talk_seconds=meta.conversation_metrics.talk_time_seconds,
    )


def _turn_in_window(rule: CategoryRule, turn: Turn | TurnView, call_end: float) -> bool:
    if rule.first_seconds is not None:
        return turn.start < rule.first_seconds
    if rule.last_seconds is not None:
        return turn.end > call_end - rule.last_seconds
    return True


def _conditions_hold(rule: CategoryRule, call: CallView) -> bool:
    if rule.intents and call.intent not in rule.intents:
        return False
    if rule.sentiments and call.sentiment not in rule.sentiments:
        return False
    if rule.outcomes and call.outcome not in rule.outcomes:
        return False
    for value, low, high in (
        (call.silence_seconds, rule.min_silence_seconds, rule.max_silence_seconds),
        (call.talk_seconds, rule.min_talk_seconds, rule.max_talk_seconds),
    ):
        if (low is not None or high is not None) and value is None:
            return False
        if (low is not None and value < low) or (high is not None and value > high):
            return False
    return not rule.entity_kinds or set(rule.entity_kinds) <= call.entity_kinds


def match(rule: CategoryRule, meta: RecordingMetadata | CallView) -> CategoryMatch | None:
    """The first turn where ``rule`` matches ``meta`` (a document or a :class:`CallView`), or ``None``."""
    if isinstance(meta, RecordingMetadata):
        meta = view_of(meta)
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


def apply_rules(
    rules: list[CategoryRule], documents: Iterable[RecordingMetadata | CallView]
) -> list[dict[str, object]]:
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


def _validated(item: Any, where: str) -> CategoryRule:
    try:
        return CategoryRule.model_validate(item)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'rule'}: {e['msg']}" for e in exc.errors())
        raise CategoryError(f"{where}: {reasons}") from None


def _yaml(data: str | bytes, where: str) -> Any:
    """Parsed YAML of at most :data:`MAX_RULES_BYTES`; ``CategoryError`` naming ``where`` otherwise."""
    if len(data) > MAX_RULES_BYTES:
        raise CategoryError(f"{where}: larger than {MAX_RULES_BYTES} bytes")
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise CategoryError(f"{where}: not valid YAML ({type(exc).__name__})") from None


def parse_rule(text: str | bytes, name: str | None = None) -> CategoryRule:
    """One category from YAML (or JSON) text; ``name``, when given, fills a missing name and must
    equal a given one. Raises ``CategoryError`` with a readable reason."""
    raw = _yaml(text, "definition")
    if not isinstance(raw, dict):
        raise CategoryError("definition: expected a mapping (name, phrases, ...)")
    if name is not None:
        given = raw.setdefault("name", name)
        if given != name:
            raise CategoryError(f"definition: name {str(given)[:100]!r} differs from {name!r}")
    return _validated(raw, "definition")


def definition_text(rule: CategoryRule) -> str:
    """The rule as YAML text (what the rule store keeps and the UI shows)."""
    body = rule.model_dump(by_alias=True, exclude_defaults=True)
    return yaml.safe_dump(body, allow_unicode=True, sort_keys=False)


def load_rules(path: Path) -> list[CategoryRule]:
    """Load rules from a YAML file holding a list of rules; raise ``CategoryError`` with a readable reason."""
    raw = _yaml(path.read_bytes(), path.name)
    if isinstance(raw, dict) and "categories" in raw:
        raw = raw["categories"]
    if not isinstance(raw, list):
        raise CategoryError(f"{path.name}: expected a list of categories")
    rules = [_validated(item, f"{path.name}: category #{i + 1}") for i, item in enumerate(raw)]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise CategoryError(f"{path.name}: duplicate category names")
    return rules
