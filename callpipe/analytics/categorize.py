"""The ``categories`` stage: analyst-defined rules (:mod:`callpipe.categories`) applied to the
calls already in the analytics tables. It reads turns, intent, sentiment, outcome and entity
kinds from the tables, never audio, STT or analysis, and writes ``call_categories``
(:mod:`callpipe.analytics.category_tables`).

Two ways in:

- a day write (``replace_day``) applies every stored rule to that day's calls, in the day's
  transaction: new calls get the current categories;
- :func:`apply_category` applies one rule to every stored call, a call date at a time, recording
  ``covered / total`` as it goes: what saving or editing a category runs (``callpipe serve`` in a
  background thread, :class:`CategoryRunner`; or ``callpipe categories apply``).

:class:`CategoryTablesMixin` gives both backends the same category methods; each backend
provides ``_category_tx`` (a cursor in a write transaction), ``_category_read`` (a read cursor),
``category_days`` and ``category_inputs``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from callpipe.analytics import category_tables as ct
from callpipe.categories import CallView, CategoryError, CategoryRule, TurnView, match, parse_rule

log = logging.getLogger("callpipe.categories")
Rows = list[dict[str, Any]]


def views_from_rows(calls: Rows, turns: Rows, entities: Rows) -> list[CallView]:
    """The matcher's view of each processed call of a day, from its table rows."""
    by_call: dict[str, list[tuple[int, TurnView]]] = {}
    for t in turns:
        by_call.setdefault(str(t["recording_id"]), []).append(
            (
                int(t["turn_index"]),
                TurnView(
                    str(t.get("speaker") or "unknown"),
                    float(t.get("start_seconds") or 0.0),
                    float(t.get("end_seconds") or 0.0),
                    str(t.get("text") or ""),
                ),
            )
        )
    kinds: dict[str, set[str]] = {}
    for e in entities:
        if e.get("kind"):
            kinds.setdefault(str(e["recording_id"]), set()).add(str(e["kind"]))
    views = []
    for c in calls:
        rid = str(c["recording_id"])
        if c.get("status", "processed") != "processed" or rid not in by_call:
            continue
        views.append(
            CallView(
                recording_id=rid,
                turns=[turn for _, turn in sorted(by_call[rid], key=lambda x: x[0])],
                intent=c.get("primary_intent"),
                sentiment=c.get("sentiment_label"),
                outcome=c.get("outcome"),
                entity_kinds=frozenset(kinds.get(rid, ())),
                silence_seconds=c.get("silence_seconds"),
                talk_seconds=c.get("talk_seconds"),
            )
        )
    return views


def day_matches(rules: list[CategoryRule], day: str, calls: Rows, turns: Rows, entities: Rows) -> Rows:
    """``call_categories`` rows of one day's calls for ``rules``."""
    if not rules:
        return []
    out: Rows = []
    for view in views_from_rows(calls, turns, entities):
        for rule in rules:
            found = match(rule, view)
            if found is not None:
                out.append(
                    {
                        "recording_id": view.recording_id,
                        "category": rule.name,
                        "version": found.version,
                        "turn_index": found.turn_index,
                        "matched": " ".join(found.matched),
                        "call_date": day,
                    }
                )
    return out


def parsed(stored: list[dict[str, Any]]) -> list[CategoryRule]:
    """The stored rules that still validate (one that does not is logged by name and skipped)."""
    out = []
    for row in stored:
        try:
            out.append(parse_rule(row["definition"], row["name"]))
        except CategoryError:
            log.warning("stored category %s no longer validates; skipped", row["name"])
    return out


class CategoryTablesMixin:
    """Category methods shared by the embedded and the PostgreSQL analytics stores."""

    def _category_tx(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _category_read(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def category_days(self) -> list[tuple[str, int]]:
        """``(call_date, processed calls)`` of every stored day, oldest first."""
        raise NotImplementedError

    def category_inputs(self, day: str) -> tuple[Rows, Rows, Rows]:
        """One day's ``calls``, ``turns`` and ``entities`` rows (the columns the matcher reads)."""
        raise NotImplementedError

    def put_category(self, rule: CategoryRule) -> None:
        """Store (or replace) a rule; its matches are updated by :func:`apply_category`."""
        from callpipe.categories import definition_text

        with self._category_tx() as cur:
            ct.put_rule(cur, rule.name, definition_text(rule), rule.version)

    def delete_category(self, name: str) -> bool:
        """Remove a rule and every call's match of it at once; whether it existed."""
        with self._category_tx() as cur:
            return ct.delete_category(cur, name)

    def categories(self, name: str | None = None) -> Rows:
        """Stored rules with their progress (``progress``: covered / total, state)."""
        with self._category_read() as cur:
            found = ct.rules(cur, name)
            for row in found:
                row["progress"] = ct.progress(cur, row["name"])
        return found

    def category_rules(self) -> list[CategoryRule]:
        """Every stored rule that validates."""
        return parsed(self.categories())

    def replace_category_day(self, name: str, day: str, rows: Rows) -> None:
        """One category's matches on one call date become ``rows``."""
        with self._category_tx() as cur:
            ct.replace_category_day(cur, name, day, rows)

    def set_category_progress(self, name: str, version: str, covered: int, total: int, state: str) -> None:
        """Record how far applying ``name`` to history has got."""
        with self._category_tx() as cur:
            ct.set_progress(cur, name, version, covered, total, state)

    def call_categories(self, recording_id: str) -> Rows:
        """The categories a call matches, with the turn and the words that matched."""
        with self._category_read() as cur:
            return ct.matches_of(cur, recording_id)

    def category_counts(self, date_from: date | None = None, date_to: date | None = None) -> Rows:
        """Calls per category and call date (the dashboard's chart)."""
        with self._category_read() as cur:
            return ct.counts_by_day(cur, date_from, date_to)


def apply_category(
    tables: Any, name: str, *, on_progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Apply the stored rule ``name`` to every stored call, a call date at a time.

    Only this stage runs: turns and analysis results are read from the tables. Stops early (state
    ``superseded``) when the rule is edited or deleted meanwhile; the newer apply covers it.
    """
    stored = tables.categories(name)
    if not stored:
        raise CategoryError(f"no category {name!r}")
    rule = parse_rule(stored[0]["definition"], name)
    days = tables.category_days()
    total, covered = sum(n for _, n in days), 0
    tables.set_category_progress(name, rule.version, 0, total, "running")
    for day, count in days:
        current = tables.categories(name)
        if not current or current[0]["version"] != rule.version:
            return {
                "name": name,
                "version": rule.version,
                "covered": covered,
                "total": total,
                "state": "superseded",
            }
        calls, turns, entities = tables.category_inputs(day)
        tables.replace_category_day(name, day, day_matches([rule], day, calls, turns, entities))
        covered += count
        tables.set_category_progress(name, rule.version, covered, total, "running")
        if on_progress is not None:
            on_progress(covered, total)
    tables.set_category_progress(name, rule.version, covered, total, "done")
    return {"name": name, "version": rule.version, "covered": covered, "total": total, "state": "done"}


def load_categories(tables: Any, rules: list[CategoryRule], *, apply: bool = True) -> dict[str, Any]:
    """Store ``rules`` (a YAML file's, :func:`~callpipe.categories.load_rules`) and, with ``apply``,
    apply each to every stored call (in this process); each rule's result."""
    out: dict[str, Any] = {}
    for rule in rules:
        tables.put_category(rule)
        out[rule.name] = apply_category(tables, rule.name) if apply else {"version": rule.version}
    return out


class CategoryRunner:
    """Applies saved categories to history in background threads (one at a time per name: a
    save while one runs waits for it, which then stops as superseded)."""

    def __init__(self, open_writer: Callable[[], Any]) -> None:
        self._open_writer = open_writer
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self, name: str) -> threading.Thread:
        """Start applying ``name`` to every stored call; returns the thread."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
            self.threads = [t for t in self.threads if t.is_alive()]
        thread = threading.Thread(target=self._run, args=(name, lock), name=f"category-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)
        return thread

    def _run(self, name: str, lock: threading.Lock) -> None:
        with lock, self._writer() as tables:
            try:
                result = apply_category(tables, name)
                log.info("category %s applied: %s/%s calls", name, result["covered"], result["total"])
            except CategoryError:
                return  # deleted before it started
            except Exception as exc:
                log.warning("category %s: applying to history failed: %s", name, type(exc).__name__)
                with contextlib.suppress(Exception):
                    stored = tables.categories(name)
                    if stored:
                        p = stored[0]["progress"] or {}
                        tables.set_category_progress(
                            name, stored[0]["version"], p.get("covered", 0), p.get("total", 0), "failed"
                        )

    @contextlib.contextmanager
    def _writer(self) -> Iterator[Any]:
        tables = self._open_writer()
        try:
            yield tables
        finally:
            tables.close()
