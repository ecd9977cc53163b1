"""Analyst-defined call categories: YAML rules matched against recording metadata (pure core)."""

from callpipe.categories.rules import (
    CallView,
    CategoryError,
    CategoryMatch,
    CategoryRule,
    TurnView,
    apply_rules,
    definition_text,
    load_rules,
    match,
    normalize,
    parse_rule,
    view_of,
)

__all__ = [
    "CallView",
    "CategoryError",
    "CategoryMatch",
    "CategoryRule",
    "TurnView",
    "apply_rules",
    "definition_text",
    "load_rules",
    "match",
    "normalize",
    "parse_rule",
    "view_of",
]
