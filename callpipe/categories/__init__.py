"""Analyst-defined call categories: YAML rules matched against recording metadata (pure core)."""

from callpipe.categories.rules import (
    CategoryError,
    CategoryMatch,
    CategoryRule,
    apply_rules,
    load_rules,
    match,
    normalize,
)

__all__ = [
    "CategoryError",
    "CategoryMatch",
    "CategoryRule",
    "apply_rules",
    "load_rules",
    "match",
    "normalize",
]
